//! Storage: one connection type over SQLite and PostgreSQL, pools, embedded migrations,
//! and the queries, beside the rows they own. Query functions take a connection and
//! return `QueryResult`; they make no policy decision (who may do what is `service`'s).
//!
//! - `schema.rs`, `models.rs`: the tables and their row types
//! - `page.rs`: the one paginator of every list (sort, limit/offset, exact total)
//! - `tokens.rs`: API tokens (lists, the org token table, revoke, last-used flush)
//! - `principals.rs`: people, service accounts and apps
//! - `org.rs`: organizations, token policy, role catalogue
//! - `sessions.rs`: login sessions, revoked access-token ids, reset codes
//! - `audit.rs`: the audit log
//! - `saved.rs`: saved searches of the token table
//! - `webhooks.rs`: webhooks, the notification outbox and its delivery log, the expiry scan
//! - `trust_policies.rs`: trust policies of external issuers and apps' delegation allowances
pub mod audit;
pub mod models;
pub mod org;
pub mod page;
pub mod principals;
pub mod revocations;
pub mod saved;
pub mod schema;
pub mod sessions;
pub mod tokens;
pub mod trust_policies;
pub mod webhooks;

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Runs a diesel query on the concrete connection inside an `AnyConnection`. The hot path
/// uses it because MultiConnection re-serialises the SQL text of every query it forwards,
/// while a concrete connection finds its prepared statement by type alone.
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::store::AnyConnection::Sqlite($c) => $body,
            $crate::store::AnyConnection::Postgresql($c) => $body,
        }
    };
}

pub type DbPool = Pool<Manager>;
pub type Conn = PooledConnection<Manager>;

/// How long a request waits for a pooled connection. Beyond it the request answers 503
/// (database unavailable) rather than hanging. SQLite's single writer queues longer.
pub const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(2);
const SQLITE_WRITER_TIMEOUT: Duration = Duration::from_secs(10);
/// While the last attempt to connect failed, requests wait only this long.
const CHECKOUT_TIMEOUT_WHILE_DOWN: Duration = Duration::from_millis(250);
/// What a 503 for an unavailable database asks clients to wait, in seconds.
pub const RETRY_AFTER: u64 = 5;

thread_local! {
    /// Set when a query on this thread lost its connection; the pool then discards the
    /// connection being returned instead of handing it out again.
    static LOST: Cell<bool> = const { Cell::new(false) };
}

/// Connection losses seen in this process, so that the maintenance pass sweeps pools.
static LOSSES: AtomicU64 = AtomicU64::new(0);

/// Whether a query error means the connection is gone (server stopped, connection
/// terminated, network down) rather than anything about the query.
pub fn connection_lost(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as K, Error as D};
    matches!(e, D::DatabaseError(K::ClosedConnection | K::UnableToSendCommand, _) | D::BrokenTransactionManager)
}

/// Whether a query failed because the database's disk is full (SQLite's SQLITE_FULL,
/// "database or disk is full"; PostgreSQL's "No space left on device", SQLSTATE 53100).
/// The transaction was rolled back and nothing was written: worth a 503 and a retry once
/// space is freed, not a 500.
pub fn disk_full(e: &diesel::result::Error) -> bool {
    match e {
        diesel::result::Error::DatabaseError(_, info) => {
            let m = info.message();
            m.contains("database or disk is full") || m.contains("No space left on device")
        }
        _ => false,
    }
}

/// Marks this thread's connection lost when `e` says it is, so that the pool discards it
/// when it is returned (and the maintenance pass sweeps the pools). Called explicitly by
/// every path that turns a query failure into its own error: the service layer's
/// conversions (`crate::error`) and the usage flush (`app::State::flush_usage`).
pub fn mark_if_lost(e: &diesel::result::Error) {
    if connection_lost(e) {
        LOST.with(|l| l.set(true));
        LOSSES.fetch_add(1, Ordering::Relaxed);
    }
}

/// The pool's connection manager: opens connections with the backend's own error message
/// (MultiConnection's establish only says "invalid connection url"), notes whether the
/// database answers, and discards connections that lost their server.
#[derive(Debug)]
pub struct Manager {
    backend: Backend,
    /// The URL (PostgreSQL) or file path (SQLite).
    url: String,
    health: Arc<Health>,
}

/// Whether the database answered the last attempt to connect, and if not, why.
#[derive(Debug, Default)]
pub struct Health {
    down: AtomicBool,
    reason: parking_lot::Mutex<String>,
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, Self::Error> {
        let r = match self.backend {
            Backend::Postgres => diesel::PgConnection::establish(&self.url).map(AnyConnection::Postgresql),
            Backend::Sqlite => diesel::SqliteConnection::establish(&self.url).map(AnyConnection::Sqlite),
        };
        match r {
            Ok(c) => {
                if self.health.down.swap(false, Ordering::Relaxed) {
                    log::warn!("database reachable again");
                }
                Ok(c)
            }
            Err(e) => {
                let reason = redact(&e.to_string(), &self.url);
                *self.health.reason.lock() = reason.clone();
                self.health.down.store(true, Ordering::Relaxed);
                Err(diesel::r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(reason)))
            }
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        LOST.with(|l| l.replace(false)) || std::thread::panicking() || conn.is_broken()
    }
}

/// r2d2's error handler: its default logs every failed (re)connection attempt, a multi-line
/// ERROR many times a second during an outage. This one logs one line at most every
/// `POOL_ERROR_LOG_SECONDS`, with how many attempts failed since; `Manager::connect` logs
/// once when the database answers again.
#[derive(Debug, Default)]
pub struct PoolErrors {
    last: AtomicI64,
    failed: AtomicU64,
}

/// The least time between two logged pool errors.
pub const POOL_ERROR_LOG_SECONDS: i64 = 30;

impl PoolErrors {
    /// Whether an error at `now` is logged, and how many failed attempts it stands for.
    fn admit(&self, now: i64) -> Option<u64> {
        let failed = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.last.load(Ordering::Relaxed);
        if now - last < POOL_ERROR_LOG_SECONDS
            || self.last.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return None;
        }
        self.failed.fetch_sub(failed, Ordering::Relaxed);
        Some(failed)
    }
}

impl diesel::r2d2::HandleError<diesel::r2d2::Error> for PoolErrors {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        if let Some(n) = self.admit(now) {
            let line = error.to_string().replace('\n', " ");
            log::warn!("database connections failing ({n} attempt(s) since the last message): {line}");
        }
    }
}

/// Logs an unavailable database at most once a second (every request during an outage
/// would otherwise log it).
pub fn log_unavailable(e: &StoreError) {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    if LAST.swap(now, Ordering::Relaxed) != now {
        log::warn!("database unavailable, answering 503: {e}");
    }
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    #[error("invalid DATABASE_URL: {0}")]
    BadUrl(String),
    #[error("cannot open the database at {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("database migration failed: {0}")]
    Migrate(String),
    #[error("no database connection: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database: {0}")]
    Query(#[source] diesel::result::Error),
    /// The blocking task running a read did not finish (it panicked or was cancelled).
    #[error("database task failed")]
    Task(#[source] tokio::task::JoinError),
    /// A read was asked of no connection (`service::oauth::credential_cache::MemoryOnly`):
    /// the caller serves the request again with one. Never answered to a client.
    #[error("a database read is needed")]
    NeedsDatabase,
}

impl StoreError {
    /// The database cannot be reached (no connection within the checkout timeout, or the
    /// connection was lost): worth a 503 and a retry, not a 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Pool(_) | StoreError::Connect { .. } => true,
            StoreError::Query(e) => connection_lost(e) || disk_full(e),
            StoreError::BadUrl(_) | StoreError::Migrate(_) | StoreError::Task(_) | StoreError::NeedsDatabase => false,
        }
    }
}

/// Pure: a failed query is a store error. Whether it lost the connection is marked
/// explicitly where the failure is handled ([`mark_if_lost`]).
impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> StoreError {
        StoreError::Query(e)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Two pools: many readers, and for SQLite a single writer so that writers queue in
/// process instead of failing with SQLITE_BUSY. On PostgreSQL both are the same pool.
#[derive(Clone)]
pub struct Db {
    read: DbPool,
    write: DbPool,
    pub backend: Backend,
    /// The SQLite file, for per-thread reader connections.
    sqlite_path: Option<String>,
    target: String,
    health: Arc<Health>,
    /// `LOSSES` when the pools were last swept.
    swept: Arc<AtomicU64>,
}

#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<AnyConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut AnyConnection) -> Result<(), diesel::r2d2::Error> {
        // synchronous=FULL: a revocation acknowledged to a client survives power loss too.
        conn.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA mmap_size = 268435456;")
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// What a URL points at, for messages: scheme and host only, never user or password.
pub fn describe_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) if scheme.starts_with("postgres") => {
            let after_user = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
            let host = after_user.split(['/', '?']).next().unwrap_or_default();
            format!("{scheme}://{host}")
        }
        Some((scheme, rest)) => format!("{scheme}://{rest}"),
        None => "(unrecognised URL)".to_string(),
    }
}

/// The file path of a `sqlite:` URL; None for other backends.
pub fn sqlite_path(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))
}

/// The database holds password hashes, token hashes and the audit log: private to the
/// service user (API.md: "directory 0700, files 0600").
///
/// - The directory is made 0700 only when tokend creates it; an existing directory is left
///   as the operator made it (it may be shared on purpose, e.g. with a backup group).
/// - The database file is created 0600 before SQLite opens it, so it is never readable by
///   others even for a moment; an existing file is set to 0600 on every start, and so are
///   its `-wal` and `-shm` files (see `restrict_sqlite_files`).
///
/// `file:` URIs are passed to SQLite untouched.
fn prepare_sqlite_files(path: &str) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if path.starts_with("file:") {
        return Ok(());
    }
    let db = std::path::Path::new(path);
    if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| format!("cannot create directory {}: {e}", parent.display()))?;
            // The mode above passes through the umask; this one does not.
            set_mode(parent, 0o700)?;
        }
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(db) {
        Ok(_) => Ok(()),
        // Existing database (or another process created it just now).
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create {}: {e}", db.display())),
    }
}

/// Sets the database file and its `-wal` / `-shm` companions (those that exist) to 0600.
/// A file tokend may use but not chmod (another owner) is reported, not fatal.
fn restrict_sqlite_files(path: &str) {
    if path.starts_with("file:") {
        return;
    }
    for file in [path.to_string(), format!("{path}-wal"), format!("{path}-shm")] {
        let p = std::path::Path::new(&file);
        if p.exists() {
            if let Err(e) = set_mode(p, 0o600) {
                log::warn!("{e}; the database should be readable by the service user only");
            }
        }
    }
}

fn set_mode(path: &std::path::Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set mode {mode:o} on {}: {e}", path.display()))
}

impl Db {
    pub fn connect(url: &str, read_pool_size: u32) -> Result<Db, StoreError> {
        let target = describe_url(url);
        if let Some(path) = sqlite_path(url) {
            if path.is_empty() || path.contains(":memory:") {
                return Err(StoreError::BadUrl(
                    "sqlite needs a file path (each pooled in-memory connection would be a separate database)".into(),
                ));
            }
            prepare_sqlite_files(path).map_err(|reason| StoreError::Connect { target: target.clone(), reason })?;
            let mut first = diesel::SqliteConnection::establish(path)
                .map_err(|e| StoreError::Connect { target: target.clone(), reason: e.to_string() })?;
            first
                .batch_execute("PRAGMA journal_mode = WAL;")
                .map_err(|e| StoreError::Connect { target: target.clone(), reason: e.to_string() })?;
            // SQLite gives -wal and -shm the database file's mode; say so explicitly anyway.
            restrict_sqlite_files(path);
            let health = Arc::new(Health::default());
            let build = |size: u32, timeout: Duration| {
                Pool::builder()
                    .max_size(size)
                    .min_idle(Some(1))
                    .connection_timeout(timeout)
                    // A "SELECT 1" before every checkout doubles the hot path's queries.
                    .test_on_check_out(false)
                    .connection_customizer(Box::new(SqlitePragmas))
                    .error_handler(Box::new(PoolErrors::default()))
                    .build(Manager { backend: Backend::Sqlite, url: path.to_string(), health: health.clone() })
            };
            let read = build(read_pool_size.max(1), CHECKOUT_TIMEOUT)?;
            let write = build(1, SQLITE_WRITER_TIMEOUT)?;
            Ok(Db {
                read,
                write,
                backend: Backend::Sqlite,
                sqlite_path: Some(path.to_string()),
                target,
                health,
                swept: Arc::new(AtomicU64::new(LOSSES.load(Ordering::Relaxed))),
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // Fail at start-up with libpq's own reason.
            diesel::PgConnection::establish(url)
                .map_err(|e| StoreError::Connect { target: target.clone(), reason: redact(&e.to_string(), url) })?;
            let health = Arc::new(Health::default());
            let pool = Pool::builder()
                .max_size(read_pool_size.max(2) + 2)
                .min_idle(Some(1))
                .test_on_check_out(false)
                .connection_timeout(CHECKOUT_TIMEOUT)
                .error_handler(Box::new(PoolErrors::default()))
                .build(Manager { backend: Backend::Postgres, url: url.to_string(), health: health.clone() })?;
            Ok(Db {
                read: pool.clone(),
                write: pool,
                backend: Backend::Postgres,
                sqlite_path: None,
                target,
                health,
                swept: Arc::new(AtomicU64::new(LOSSES.load(Ordering::Relaxed))),
            })
        } else {
            Err(StoreError::BadUrl(format!("{target}: expected sqlite://PATH or postgres://…")))
        }
    }

    /// A pooled connection; while connecting fails, a short wait and the server's reason.
    fn checkout(&self, pool: &DbPool) -> Result<Conn, StoreError> {
        if !self.health.down.load(Ordering::Relaxed) {
            return Ok(pool.get()?);
        }
        pool.get_timeout(CHECKOUT_TIMEOUT_WHILE_DOWN).map_err(|e| {
            if self.health.down.load(Ordering::Relaxed) {
                let reason = self.health.reason.lock().clone();
                StoreError::Connect { target: self.target.clone(), reason }
            } else {
                StoreError::Pool(e)
            }
        })
    }

    /// After a connection was lost somewhere in the process: checks each idle pooled
    /// connection once and discards the dead ones, so that they do not fail requests one
    /// by one once the database is back. Called by the maintenance pass.
    pub fn sweep(&self) {
        let losses = LOSSES.load(Ordering::Relaxed);
        if self.swept.swap(losses, Ordering::Relaxed) == losses || self.backend != Backend::Postgres {
            return;
        }
        let mut alive = Vec::new();
        while let Some(mut conn) = self.read.try_get() {
            match conn.batch_execute("SELECT 1") {
                Ok(()) => alive.push(conn),
                Err(e) => {
                    // Marked as lost by `note`, so the pool discards it on return.
                    mark_if_lost(&e);
                    drop(conn);
                }
            }
            if alive.len() as u32 >= self.read.max_size() {
                break;
            }
        }
    }

    pub fn read(&self) -> Result<Conn, StoreError> {
        self.checkout(&self.read)
    }

    pub fn write(&self) -> Result<Conn, StoreError> {
        self.checkout(&self.write)
    }

    pub fn migrate(&self) -> Result<usize, StoreError> {
        let mut conn = self.write()?;
        let applied = match &mut *conn {
            AnyConnection::Sqlite(c) => c
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|v| v.len())
                .map_err(|e| StoreError::Migrate(e.to_string()))?,
            AnyConnection::Postgresql(c) => {
                // Several instances may start at once against one database.
                c.batch_execute("SELECT pg_advisory_lock(7320151)")?;
                let r = c
                    .run_pending_migrations(PG_MIGRATIONS)
                    .map(|v| v.len())
                    .map_err(|e| StoreError::Migrate(e.to_string()));
                c.batch_execute("SELECT pg_advisory_unlock(7320151)")?;
                r?
            }
        };
        Ok(applied)
    }

    /// SQLite: runs `f` with a read connection owned by the calling thread (an HTTP
    /// worker), opened on first use and kept for the thread's life. Falls back to the pool
    /// on PostgreSQL.
    pub fn with_thread_reader<T>(&self, f: impl FnOnce(&mut AnyConnection) -> T) -> Result<T, StoreError> {
        thread_local! {
            static READER: std::cell::RefCell<Option<(String, AnyConnection)>> = const { std::cell::RefCell::new(None) };
        }
        let Some(path) = &self.sqlite_path else { return Ok(f(&mut *self.read()?)) };
        READER.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().is_none_or(|(p, _)| p != path) {
                let mut conn = AnyConnection::establish(path)
                    .map_err(|e| StoreError::Connect { target: describe_url(path), reason: e.to_string() })?;
                SqlitePragmas
                    .on_acquire(&mut conn)
                    .map_err(|e| StoreError::Connect { target: describe_url(path), reason: e.to_string() })?;
                *slot = Some((path.clone(), conn));
            }
            match slot.as_mut() {
                Some((_, conn)) => Ok(f(conn)),
                None => unreachable!("set above"),
            }
        })
    }

    /// The token path's read strategy, per backend. On SQLite `f` runs inline on the
    /// calling thread (an HTTP worker) with that thread's own connection: an indexed read
    /// of a local file takes microseconds, less than handing it to another thread or
    /// checking a connection out of the pool. On PostgreSQL (a network round trip) it runs
    /// on the runtime's blocking pool with a pooled read connection, so that the worker
    /// keeps serving while it waits.
    pub async fn read_hot<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.backend == Backend::Sqlite {
            return self.with_thread_reader(f);
        }
        let db = self.clone();
        // The request id goes along, so lines logged by `f` still name the request.
        let work = crate::logging::carry(move || db.read().map(|mut c| f(&mut c)));
        tokio::task::spawn_blocking(work).await.map_err(StoreError::Task)?
    }

    pub fn is_sqlite(&self) -> bool {
        self.backend == Backend::Sqlite
    }

    /// SQLite: a [`CommitWatch`] on this database file. None on PostgreSQL.
    pub fn commit_watch(&self) -> Result<Option<CommitWatch>, StoreError> {
        let Some(path) = &self.sqlite_path else { return Ok(None) };
        let conn = diesel::SqliteConnection::establish(path)
            .map_err(|e| StoreError::Connect { target: describe_url(path), reason: e.to_string() })?;
        Ok(Some(CommitWatch { conn }))
    }

    /// For a process about to exit (the command line): waits, at most 2 s, until the pool's
    /// background replenishment (started when a checkout took its last idle connection) has
    /// connected, so that exit does not tear down libpq/OpenSSL under a connection being
    /// established (seen as a crash at exit). PostgreSQL only; SQLite needs nothing.
    pub fn settle(&self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        // The pool starts with one connection (min_idle 1); the checkout that took it
        // asked for a second, counted once it is connected.
        while self.write.state().connections < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Readiness probe: one round trip.
    pub fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.read()?;
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }
}

/// SQLite: a connection of its own that reads `PRAGMA data_version`, a number that moves
/// whenever another connection commits to the database file (this process's writer, or
/// another process such as `tokend leaks check`). The credential cache's watcher
/// (`app::credential_listener`) asks it every few milliseconds.
pub struct CommitWatch {
    conn: diesel::SqliteConnection,
}

impl CommitWatch {
    pub fn version(&mut self) -> QueryResult<i64> {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT data_version FROM pragma_data_version())",
        ))
        .get_result(&mut self.conn)
    }
}

pub fn redact(message: &str, url: &str) -> String {
    let mut out = message.to_string();
    if let Some((_, rest)) = url.split_once("://") {
        if let Some((userinfo, _)) = rest.rsplit_once('@') {
            if let Some((_, password)) = userinfo.split_once(':') {
                if !password.is_empty() {
                    out = out.replace(password, "***");
                }
            }
        }
    }
    out
}

/// Role lists are stored as sorted JSON arrays so that `LIKE '%"role"%'` finds holders.
pub fn roles_to_text(roles: &[String]) -> String {
    let mut v: Vec<&String> = roles.iter().collect();
    v.sort();
    v.dedup();
    serde_json::to_string(&v).unwrap_or_else(|_| "[]".into())
}

pub fn roles_from_text(text: &str) -> Vec<String> {
    plain_string_array(text).unwrap_or_else(|| serde_json::from_str(text).unwrap_or_default())
}

/// The form `roles_to_text` writes, `["a","b"]` with no escape, space or control
/// character, split without a JSON parser: the token path reads a roles column on every
/// grant. None for anything else (then serde_json decides, exactly as before).
fn plain_string_array(text: &str) -> Option<Vec<String>> {
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    if inner.is_empty() {
        return Some(Vec::new());
    }
    if inner.bytes().any(|b| b == b'\\' || b <= b' ') {
        return None;
    }
    let inner = inner.strip_prefix('"')?.strip_suffix('"')?;
    let names: Vec<String> = inner.split("\",\"").map(str::to_string).collect();
    // A quote left inside a name means the text was not plain `"a","b"` pairs.
    if names.iter().any(|n| n.contains('"')) {
        return None;
    }
    Some(names)
}

pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_text_fast_path_agrees_with_json() {
        for text in [
            "[]",
            "[\"a\"]",
            "[\"org:admin\",\"org:member\"]",
            "[\"é\",\"x\"]",
            "[ \"a\" ]",
            "[\"a\\\"b\"]",
            "[\"a\",]",
            "[\"a\"\"b\"]",
            "[\"\"]",
            "[\"a\",\"\"]",
            "[1]",
            "",
            "[",
            "[\"a\"",
            "nope",
            "[\"a\tb\"]",
        ] {
            let json: Vec<String> = serde_json::from_str(text).unwrap_or_default();
            assert_eq!(roles_from_text(text), json, "{text:?}");
        }
    }

    #[test]
    fn pool_errors_are_logged_at_most_every_thirty_seconds() {
        let p = PoolErrors::default();
        assert_eq!(p.admit(1000), Some(1));
        assert!(
            (0..500).all(|i| p.admit(1000 + i % POOL_ERROR_LOG_SECONDS).is_none()),
            "an outage's retries are quiet"
        );
        assert_eq!(p.admit(1000 + POOL_ERROR_LOG_SECONDS), Some(501), "then one line counting them");
    }

    #[test]
    fn describe_url_hides_credentials() {
        let d = describe_url("postgres://bob:s3cret@db.example:5432/tokend?sslmode=require");
        assert_eq!(d, "postgres://db.example:5432");
        assert!(!d.contains("s3cret"));
        assert_eq!(describe_url("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }

    #[test]
    fn sqlite_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/data");
        let path = data.join("tokend.db");
        let db = Db::connect(&format!("sqlite://{}", path.display()), 1).unwrap();
        db.migrate().unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&path), 0o600);
        for suffix in ["-wal", "-shm"] {
            let p = data.join(format!("tokend.db{suffix}"));
            if p.exists() {
                assert_eq!(mode(&p), 0o600, "{}", p.display());
            }
        }
        drop(db);
        // An existing directory keeps its mode; an existing database file is made private.
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o750)).unwrap();
        let file = shared.join("x.db");
        std::fs::write(&file, b"").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _db = Db::connect(&format!("sqlite://{}", file.display()), 1).unwrap();
        assert_eq!(mode(&shared), 0o750);
        assert_eq!(mode(&file), 0o600);
    }

    #[test]
    fn a_full_disk_is_unavailable_not_internal() {
        use diesel::result::{DatabaseErrorKind as K, Error as D};
        let full = StoreError::Query(D::DatabaseError(K::Unknown, Box::new("database or disk is full".to_string())));
        assert!(full.is_unavailable(), "SQLITE_FULL answers 503");
        let pg = StoreError::Query(D::DatabaseError(
            K::Unknown,
            Box::new("could not extend file \"base/1/2\": No space left on device".to_string()),
        ));
        assert!(pg.is_unavailable(), "PostgreSQL's disk full answers 503");
        let other = StoreError::Query(D::DatabaseError(K::UniqueViolation, Box::new("duplicate key".to_string())));
        assert!(!other.is_unavailable());
        assert!(!StoreError::Query(D::NotFound).is_unavailable());
    }

    /// A real SQLITE_FULL (max_page_count reached) is classified as a full disk.
    #[test]
    fn sqlite_full_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.db");
        let mut c = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        c.batch_execute("CREATE TABLE t (x TEXT); PRAGMA max_page_count = 3;").unwrap();
        let e = (0..100)
            .find_map(|_| c.batch_execute("INSERT INTO t VALUES (hex(randomblob(2000)))").err())
            .expect("the database fills up");
        assert!(disk_full(&e), "{e}");
        assert!(StoreError::from(e).is_unavailable());
    }

    #[test]
    fn redact_removes_password() {
        let r = redact("password s3cret wrong", "postgres://u:s3cret@h/db");
        assert!(!r.contains("s3cret"));
    }
}

diesel::define_sql_function! {
    /// SQL lower(): case-insensitive search on both backends (SQLite LIKE is, PostgreSQL's is not).
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}
