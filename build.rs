// embed_migrations! does not notice edited migration files on its own.
//
// Tests that need PostgreSQL or real clients: when TOKEND_TEST_DATABASE_URL is unset and CI
// is not true, they are marked ignored (so the summary counts them as skipped, visibly);
// under CI=true they run and fail, saying why.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=TOKEND_TEST_DATABASE_URL");
    println!("cargo:rerun-if-env-changed=CI");
    println!("cargo::rustc-check-cfg=cfg(tokend_skip_pg)");
    println!("cargo::rustc-check-cfg=cfg(tokend_ci)");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let pg = std::env::var("TOKEND_TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty());
    if ci {
        println!("cargo:rustc-cfg=tokend_ci");
    } else if !pg {
        println!("cargo:rustc-cfg=tokend_skip_pg");
    }
}
