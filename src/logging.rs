//! Log output: env_logger's text lines (the default) or, with `TOKEND_LOG_FORMAT=json`, one
//! JSON object per line (`timestamp`, `level`, `target`, `message`, and `request_id` when
//! the line was logged while serving a request), the convention of log pipelines. The
//! request id is the `X-Request-Id` the observe middleware accepted or generated, carried
//! in a task-local for the request's task, and into work it hands to the blocking pool
//! (`carry`: a thread-local for the duration of that work), so every line of a request has it.
use std::future::Future;
use std::io::Write;

tokio::task_local! {
    static REQUEST_ID: String;
}

std::thread_local! {
    /// The request id of the work a blocking-pool thread is running for (see `carry`).
    static CARRIED: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The log formats `TOKEND_LOG_FORMAT` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl Format {
    pub fn parse(v: &str) -> Option<Format> {
        match v {
            "" | "text" => Some(Format::Text),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// Installs the global logger (`RUST_LOG` filter, default `info`).
pub fn init(format: Format) {
    let mut b = builder(env_logger::Env::default().default_filter_or("info"));
    if format == Format::Json {
        b.format(|buf, record| {
            let line = json_line(
                &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                record.level().as_str(),
                record.target(),
                &record.args().to_string(),
                request_id().as_deref(),
            );
            writeln!(buf, "{line}")
        });
    }
    b.init();
}

/// The filter from `env`, with ureq capped at warnings whatever `RUST_LOG` says: its debug
/// lines carry whole webhook URLs, query strings (often credentials) included.
fn builder(env: env_logger::Env) -> env_logger::Builder {
    let mut b = env_logger::Builder::from_env(env);
    b.filter_module("ureq", log::LevelFilter::Warn);
    b
}

/// One log line as a JSON object (no newline inside: serde_json escapes control characters).
pub fn json_line(timestamp: &str, level: &str, target: &str, message: &str, request_id: Option<&str>) -> String {
    let mut v = serde_json::json!({
        "timestamp": timestamp,
        "level": level,
        "target": target,
        "message": message,
    });
    if let Some(id) = request_id {
        v["request_id"] = serde_json::Value::String(id.to_string());
    }
    v.to_string()
}

/// The id of the request being served by this task (or whose work this blocking-pool
/// thread is running, see `carry`), if any.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok().or_else(|| CARRIED.with(|c| c.borrow().clone()))
}

/// Wraps `f`, about to be run on another thread (the blocking pool), so that its log lines
/// carry the request id of the caller; the thread forgets it when `f` returns (or panics).
pub fn carry<T>(f: impl FnOnce() -> T) -> impl FnOnce() -> T {
    let id = request_id();
    move || {
        struct Reset(Option<String>);
        impl Drop for Reset {
            fn drop(&mut self) {
                let previous = self.0.take();
                CARRIED.with(|c| *c.borrow_mut() = previous);
            }
        }
        let _reset = Reset(CARRIED.with(|c| c.replace(id)));
        f()
    }
}

/// Runs `f` (a request's handling) with `id` as its request id.
pub async fn with_request_id<F: Future>(id: String, f: F) -> F::Output {
    REQUEST_ID.scope(id, f).await
}

/// An incoming `X-Request-Id` worth keeping: 1 to 128 characters of `A-Z a-z 0-9 - _ . : /`.
/// Anything else is replaced by a generated one (a header must not inject into log lines).
pub fn accept_request_id(v: &[u8]) -> Option<&str> {
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'));
    if ok {
        std::str::from_utf8(v).ok()
    } else {
        None
    }
}

/// A new request id without a syscall: a random per-process prefix and a counter.
pub fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_string());
    format!("{prefix}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// An error and its sources, `outer: inner: innermost`, for a log line: a wrapped cause
/// (a lost connection under a storage error, say) is what the operator needs to see.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let part = c.to_string();
        // thiserror's `transparent` and `{0}` messages repeat their source's text.
        if !s.ends_with(&part) {
            s.push_str(": ");
            s.push_str(&part);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ureq_debug_lines_are_never_logged() {
        use log::Log;
        let env = env_logger::Env::new().filter_or("TOKEND_TEST_NO_SUCH_VARIABLE", "debug,ureq=trace");
        let logger = builder(env).build();
        let on =
            |target: &'static str, level| logger.enabled(&log::Metadata::builder().target(target).level(level).build());
        assert!(!on("ureq::unit", log::Level::Debug), "webhook URLs stay out of the log");
        assert!(on("ureq::unit", log::Level::Warn));
        assert!(on("tokend::app", log::Level::Debug), "the rest follows RUST_LOG");
    }

    #[test]
    fn json_lines_are_one_object_each() {
        let line = json_line("2026-11-28T16:00:00.000Z", "WARN", "tokend::app", "two\nlines \"quoted\"", Some("r-1"));
        assert!(!line.contains('\n'), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["timestamp"], "2026-11-28T16:00:00.000Z");
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["target"], "tokend::app");
        assert_eq!(v["message"], "two\nlines \"quoted\"");
        assert_eq!(v["request_id"], "r-1");
        let v: serde_json::Value = serde_json::from_str(&json_line("t", "INFO", "x", "m", None)).unwrap();
        assert!(v.get("request_id").is_none());
    }

    #[test]
    fn request_ids() {
        assert_eq!(accept_request_id(b"abc-123_X.y:z/1"), Some("abc-123_X.y:z/1"));
        for bad in [&b""[..], b"a b", b"a\nb", b"\"x\"", b"\xff", &[b'a'; 129]] {
            assert_eq!(accept_request_id(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        let (a, b) = (new_request_id(), new_request_id());
        assert_ne!(a, b);
        assert!(accept_request_id(a.as_bytes()).is_some());
    }

    #[test]
    fn the_task_local_carries_the_id() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(request_id(), None);
        let seen = rt.block_on(with_request_id("r-9".into(), async { request_id() }));
        assert_eq!(seen.as_deref(), Some("r-9"));
    }

    #[test]
    fn carry_takes_the_id_to_another_thread_and_no_further() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let work = rt.block_on(with_request_id("r-10".into(), async { carry(request_id) }));
        // Run where the task-local is not set (as on the blocking pool), on a thread that is
        // then reused for other work.
        let t = std::thread::spawn(move || {
            let inside = work();
            (inside, request_id())
        });
        let (inside, after) = t.join().unwrap();
        assert_eq!(inside.as_deref(), Some("r-10"), "the blocking work logs with its request's id");
        assert_eq!(after, None, "the thread forgets it afterwards");
        assert_eq!(carry(request_id)(), None, "no request, no id");
    }
}
