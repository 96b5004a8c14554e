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
    println!("cargo::rustc-check-cfg=cfg(tokend_skip_node)");
    println!("cargo::rustc-check-cfg=cfg(tokend_skip_private_pg)");
    println!("cargo::rustc-check-cfg=cfg(tokend_skip_tmpfs)");
    println!("cargo:rerun-if-env-changed=TOKEND_NODE_CLIENTS_DIR");
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
    // The real Node clients (tests/it/apps_and_service_accounts.rs) need `node` and a
    // node_modules with openid-client and jose (see `node_clients_dir`).
    let node = on_path("node") && node_clients_dir().is_some();
    if !ci && !node {
        println!("cargo:rustc-cfg=tokend_skip_node");
    }
    // The PostgreSQL outage test (tests/it/instances_and_outages.rs) runs a private
    // PostgreSQL from Debian's server binaries.
    if !ci && initdb().is_none() {
        println!("cargo:rustc-cfg=tokend_skip_private_pg");
    }
    // The full-disk test mounts a small tmpfs: root only.
    if !ci && !is_root() {
        println!("cargo:rustc-cfg=tokend_skip_tmpfs");
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

/// Where the Node clients' modules may be (tests/it/apps_and_service_accounts.rs looks in
/// the same places): $TOKEND_NODE_CLIENTS_DIR, ../shared/clients, target/tmp/node-clients.
/// The directories that exist are watched, so an `npm install` there is noticed.
fn node_clients_dir() -> Option<std::path::PathBuf> {
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let target = std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or(manifest.join("target"));
    let mut candidates: Vec<std::path::PathBuf> = Vec::new();
    if let Ok(d) = std::env::var("TOKEND_NODE_CLIENTS_DIR") {
        candidates.push(d.into());
    }
    candidates.push(manifest.join("../shared/clients"));
    candidates.push(target.join("tmp/node-clients"));
    for d in candidates.iter().filter(|d| d.is_dir()) {
        println!("cargo:rerun-if-changed={}", d.display());
    }
    candidates
        .into_iter()
        .find(|d| d.join("node_modules/openid-client").is_dir() && d.join("node_modules/jose").is_dir())
}

/// Debian's PostgreSQL server binaries (`/usr/lib/postgresql/*/bin/initdb`).
fn initdb() -> Option<std::path::PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin/initdb")))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}
