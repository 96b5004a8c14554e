//! The CLI's private directory: the session (`session.json`) and cached access tokens
//! (`cache/`). `TOKEND_CONFIG_DIR`, else `$XDG_CONFIG_HOME/tokend`, else
//! `$HOME/.config/tokend`. The directories are mode 0700 and every file 0600, written to a
//! temporary name and renamed, so a reader never sees half a file and no other user can read
//! one. The password is never stored: only what the server's login answered.
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Failure;

/// A signed-in session: the server and the login's access token (management audience).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Session {
    pub server: String,
    pub email: String,
    pub access_token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// An access token from an exchange, kept until shortly before it expires.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Cached {
    pub access_token: String,
    pub token_type: String,
    pub expires_at: i64,
    #[serde(default)]
    pub scope: String,
}

pub fn dir() -> Result<PathBuf, Failure> {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = non_empty("TOKEND_CONFIG_DIR") {
        return Ok(d);
    }
    if let Some(d) = non_empty("XDG_CONFIG_HOME") {
        return Ok(d.join("tokend"));
    }
    if let Some(h) = non_empty("HOME") {
        return Ok(h.join(".config").join("tokend"));
    }
    Err(Failure::usage("no place for the session: set TOKEND_CONFIG_DIR, XDG_CONFIG_HOME or HOME"))
}

fn private_dir(d: &Path) -> Result<(), Failure> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(d)
        .map_err(|e| Failure::error(format!("creating {}: {e}", d.display())))?;
    // An existing directory is made private too.
    fs::set_permissions(d, fs::Permissions::from_mode(0o700))
        .map_err(|e| Failure::error(format!("making {} private: {e}", d.display())))
}

/// Writes `value` as JSON to `path` with mode 0600 (temporary file, then rename).
fn write_private(path: &Path, value: &impl Serialize) -> Result<(), Failure> {
    let parent = path.parent().unwrap_or(Path::new("."));
    private_dir(parent)?;
    let tmp = parent.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("f"),
        std::process::id()
    ));
    let body = serde_json::to_vec_pretty(value).map_err(|e| Failure::error(e.to_string()))?;
    let write = || -> std::io::Result<()> {
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Failure::error(format!("writing {}: {e}", path.display()))
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, Failure> {
    match fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|_| Failure::error(format!("{} is damaged; remove it (or run `tokend logout`)", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::error(format!("reading {}: {e}", path.display()))),
    }
}

pub fn session_path() -> Result<PathBuf, Failure> {
    Ok(dir()?.join("session.json"))
}

pub fn save_session(s: &Session) -> Result<PathBuf, Failure> {
    let p = session_path()?;
    write_private(&p, s)?;
    Ok(p)
}

/// The stored session, if any (expired or not).
pub fn load_session() -> Result<Option<Session>, Failure> {
    read_json(&session_path()?)
}

/// The session, refusing a missing or expired one (exit 3, saying what to run).
pub fn live_session() -> Result<Session, Failure> {
    let Some(s) = load_session()? else {
        return Err(Failure::auth("not signed in: run `tokend login --server URL`"));
    };
    if s.expires_at <= super::now() + 5 {
        return Err(Failure::auth(format!(
            "your session on {} expired at {}: run `tokend login --server {}`",
            s.server,
            tokend::clock::rfc3339(s.expires_at),
            s.server
        )));
    }
    Ok(s)
}

/// Removes the session and every cached access token.
pub fn forget() -> Result<(), Failure> {
    let d = dir()?;
    for p in [d.join("session.json")] {
        if let Err(e) = fs::remove_file(&p) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(Failure::error(format!("removing {}: {e}", p.display())));
            }
        }
    }
    match fs::remove_dir_all(d.join("cache")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Failure::error(format!("removing {}: {e}", d.join("cache").display())))
        }
        _ => Ok(()),
    }
}

/// The cache file of one (server, API token, audience, scope): named by a SHA-256 of them,
/// so the file name reveals nothing of the token.
pub fn cache_path(key: &[&str]) -> Result<PathBuf, Failure> {
    let name = tokend::secrets::hash(&key.join("\u{0}"));
    Ok(dir()?.join("cache").join(format!("{name}.json")))
}

pub fn load_cached(path: &Path) -> Option<Cached> {
    read_json(path).ok().flatten()
}

pub fn save_cached(path: &Path, c: &Cached) -> Result<(), Failure> {
    write_private(path, c)
}
