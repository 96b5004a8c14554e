//! The six cargo-fuzz targets, replayed on stable in `cargo test`: CI has no cargo-fuzz,
//! so without this their seeds and past crash inputs would never run there. Each target's
//! body is one file under fuzz/bodies/, compiled both into the fuzz target and here, so
//! the replay cannot drift from what is fuzzed. Inputs: every file of
//! fuzz/seeds/<target>/ (the regression inputs of fuzz/README.md's findings are seeds
//! too), plus fuzz/artifacts/<target>/ when a local fuzzing run left crash inputs there.
use std::path::{Path, PathBuf};

#[path = "../../fuzz/bodies/basic_decode.rs"]
mod basic_decode;
#[path = "../../fuzz/bodies/form_parse.rs"]
mod form_parse;
#[path = "../../fuzz/bodies/jwt_verify.rs"]
mod jwt_verify;
#[path = "../../fuzz/bodies/key_file.rs"]
mod key_file;
#[path = "../../fuzz/bodies/secret_parse.rs"]
mod secret_parse;
#[path = "../../fuzz/bodies/table_query.rs"]
mod table_query;

/// The inputs of `target`: its seeds (at least one: an empty or missing seed directory
/// fails) and any local crash artifacts.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in [fuzz.join("seeds").join(target), fuzz.join("artifacts").join(target)] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_file() {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    assert!(out.iter().any(|(p, _)| p.starts_with(fuzz.join("seeds"))), "no seeds for {target}");
    out
}

/// Runs `run` on every input, naming the file of one that fails.
fn replay(target: &str, run: impl Fn(&[u8])) {
    for (path, bytes) in inputs(target) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&bytes)));
        if let Err(e) = r {
            let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
            panic!("{target}: {} fails: {}", path.display(), msg.unwrap_or_default());
        }
    }
}

/// libFuzzer hands a `&str` target only the inputs that are UTF-8.
fn as_str(run: fn(&str)) -> impl Fn(&[u8]) {
    move |b| {
        if let Ok(s) = std::str::from_utf8(b) {
            run(s)
        }
    }
}

#[test]
fn basic_decode_seeds() {
    replay("basic_decode", basic_decode::run);
}

#[test]
fn form_parse_seeds() {
    replay("form_parse", form_parse::run);
}

#[test]
fn jwt_verify_seeds() {
    replay("jwt_verify", jwt_verify::run);
}

#[test]
fn key_file_seeds() {
    replay("key_file", key_file::run);
}

#[test]
fn secret_parse_seeds() {
    replay("secret_parse", as_str(secret_parse::run));
}

#[test]
fn table_query_seeds() {
    replay("table_query", as_str(table_query::run));
}
