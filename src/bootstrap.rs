//! First-start credentials. The owner's generated password and first API token go to a
//! private file beside the database, never to stdout or the log: stdout is the log store of
//! containers and service managers. Only the file's path is logged.
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::service::org::orgs::CreatedOrg;

pub const CREDENTIALS_FILE: &str = "first-start-credentials.txt";

/// Where the credentials file goes: the directory of the SQLite database file, or the key
/// directory on PostgreSQL (the one directory of a PostgreSQL deployment that is already
/// private to the service).
pub fn credentials_dir(cfg: &Config) -> PathBuf {
    match crate::store::sqlite_path(&cfg.database_url) {
        Some(path) => {
            let path = path.strip_prefix("file:").unwrap_or(path);
            let path = path.split('?').next().unwrap_or(path);
            match Path::new(path).parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            }
        }
        None => cfg.keys_dir.clone(),
    }
}

/// The file's content: one `key: value` per line.
pub fn credentials_text(created: &CreatedOrg, owner_email: &str) -> String {
    let mut s = format!("org_id: {}\nowner_email: {owner_email}\n", created.org_id);
    if let Some(p) = &created.password {
        s.push_str(&format!("password: {p}\n"));
    }
    s.push_str(&format!("api_token: {}\n", created.token));
    s
}

#[derive(thiserror::Error, Debug)]
#[error("cannot write the first-start credentials to {path}: {reason}")]
pub struct CredentialsError {
    pub path: String,
    pub reason: String,
}

/// Writes `dir/first-start-credentials.txt`, created with mode 0600 in the same call that
/// creates it (`create_new`: never an existing file, never a moment with a wider mode).
/// An existing file is an error: it may hold credentials nobody has read yet.
pub fn write_credentials(dir: &Path, created: &CreatedOrg, owner_email: &str) -> Result<PathBuf, CredentialsError> {
    let path = dir.join(CREDENTIALS_FILE);
    let err = |reason: String| CredentialsError { path: path.display().to_string(), reason };
    let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(err(
                "the file already exists (from an earlier first start?); read it, delete it and start again".into(),
            ))
        }
        Err(e) => return Err(err(e.to_string())),
    };
    let written = file.write_all(credentials_text(created, owner_email).as_bytes()).and_then(|_| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(&path);
        return Err(err(e.to_string()));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn created(password: Option<&str>) -> CreatedOrg {
        CreatedOrg {
            org_id: "org1".into(),
            owner_id: "u1".into(),
            password: password.map(str::to_string),
            token: "tkd_pat_abc".into(),
        }
    }

    #[test]
    fn written_private_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_credentials(dir.path(), &created(Some("pw-123456789")), "admin@localhost").unwrap();
        assert_eq!(path, dir.path().join(CREDENTIALS_FILE));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "org_id: org1\nowner_email: admin@localhost\npassword: pw-123456789\napi_token: tkd_pat_abc\n"
        );
        // Never overwritten.
        let err = write_credentials(dir.path(), &created(None), "admin@localhost").unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        assert!(std::fs::read_to_string(&path).unwrap().contains("pw-123456789"));
        std::fs::remove_file(&path).unwrap();
        write_credentials(dir.path(), &created(None), "admin@localhost").unwrap();
        assert!(!std::fs::read_to_string(&path).unwrap().contains("password"));
    }

    #[test]
    fn beside_the_database() {
        let keys = Path::new("/srv/keys");
        let dir = |url: &str| credentials_dir(&Config::for_test(url, keys));
        assert_eq!(dir("sqlite:///var/lib/tokend/tokend.db"), PathBuf::from("/var/lib/tokend"));
        assert_eq!(dir("sqlite://./data/tokend.db"), PathBuf::from("./data"));
        assert_eq!(dir("sqlite://tokend.db"), PathBuf::from("."));
        assert_eq!(dir("postgres://u@h/db"), PathBuf::from("/srv/keys"));
    }
}
