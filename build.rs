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
    println!("cargo::rustc-check-cfg=cfg(tokend_skip_browser)");
    println!("cargo::rustc-check-cfg=cfg(tokend_skip_prometheus)");
    println!("cargo::rustc-check-cfg=cfg(tokend_skip_nginx)");
    println!("cargo:rerun-if-env-changed=TOKEND_NGINX");
    println!("cargo:rerun-if-env-changed=TOKEND_CHROMEDRIVER");
    println!("cargo:rerun-if-env-changed=TOKEND_PROMETHEUS");
    println!("cargo:rerun-if-env-changed=PATH");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let pg = std::env::var("TOKEND_TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty());
    // The console's browser tests need chromedriver (and Debian's chromium beside it).
    if !ci && !browser_available() {
        println!("cargo:rustc-cfg=tokend_skip_browser");
    }
    // The Prometheus test (tests/it/api_tokens_as_client.rs) runs Debian's prometheus.
    let prometheus = std::env::var("TOKEND_PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
    if !ci && !on_path(&prometheus) {
        println!("cargo:rustc-cfg=tokend_skip_prometheus");
    }
    // The forward-auth test runs a real nginx (Debian's package: /usr/sbin/nginx).
    if !ci && nginx().is_none() {
        println!("cargo:rustc-cfg=tokend_skip_nginx");
    }
    if ci {
        println!("cargo:rustc-cfg=tokend_ci");
    } else if !pg {
        println!("cargo:rustc-cfg=tokend_skip_pg");
    }
}

fn browser_available() -> bool {
    let driver = std::env::var("TOKEND_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    on_path(&driver)
}

/// An absolute path that is a file, or a name found on PATH.
fn on_path(name: &str) -> bool {
    let p = std::path::Path::new(name);
    if p.is_absolute() {
        return p.is_file();
    }
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(name).is_file()))
}

/// nginx: TOKEND_NGINX, else `nginx` on PATH, else Debian's /usr/sbin/nginx (not on a
/// normal user's PATH). tests/it/gateway_and_feed.rs looks it up the same way.
fn nginx() -> Option<std::path::PathBuf> {
    if let Ok(p) = std::env::var("TOKEND_NGINX") {
        return Some(std::path::PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("nginx"))
        .chain([std::path::PathBuf::from("/usr/sbin/nginx")])
        .find(|p| p.is_file())
}
