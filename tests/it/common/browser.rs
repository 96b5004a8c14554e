//! A small W3C WebDriver client over ureq (JSON over HTTP) driving Debian's Chromium
//! through chromedriver: one chromedriver and one headless browser per test, killed on
//! drop. `browser_tests!` marks the tests ignored (`SKIPPED: …`) when chromedriver was
//! not found at build time, except under `CI=true`, where they run and fail.
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use super::Server;

/// Generates `sqlite::NAME` and `postgres::NAME` browser tests for `fn NAME(b: &Backend)`.
#[macro_export]
macro_rules! browser_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test]
            #[cfg_attr(tokend_skip_browser, ignore = "SKIPPED: chromium/chromedriver not installed (apt-get install chromium chromium-driver)")]
            fn $name() { super::$name(&$crate::common::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test]
            #[cfg_attr(tokend_skip_browser, ignore = "SKIPPED: chromium/chromedriver not installed (apt-get install chromium chromium-driver)")]
            #[cfg_attr(all(tokend_skip_pg, not(tokend_skip_browser)), ignore = "SKIPPED: TOKEND_TEST_DATABASE_URL is not set")]
            fn $name() { super::$name(&$crate::common::Backend::postgres()) } )*
        }
    };
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where screenshots go: `target/console-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("console-screenshots")
}

fn chromedriver() -> String {
    std::env::var("TOKEND_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into())
}

fn chromium() -> String {
    std::env::var("TOKEND_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

pub struct El<'a> {
    b: &'a Browser,
    id: String,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium (1280 × 900).
    #[track_caller]
    pub fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start chromedriver ({e}): install chromium and chromium-driver (apt-get install -y chromium chromium-driver)")
            });
        let base = format!("http://127.0.0.1:{port}");
        // Wait until chromedriver answers /status (it starts in well under a second).
        let started = Instant::now();
        loop {
            if ureq::get(&format!("{base}/status")).call().is_ok() {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                         format!("--user-data-dir={}", profile.path().display())],
            },
        }}});
        let r: Value = ureq::post(&format!("{base}/session"))
            .send_json(caps)
            .unwrap_or_else(|e| panic!("new WebDriver session: {}", describe(e)))
            .into_json()
            .unwrap();
        let session = r["value"]["sessionId"].as_str().expect("sessionId").to_string();
        let mut b = Browser { driver, base, session, _profile: profile };
        // Finding an element waits up to 10 s for it to appear (pages load and scripts run).
        b.cmd("POST", "/timeouts", json!({"implicit": 10_000, "pageLoad": 30_000}));
        b.set_width(1280);
        b
    }

    #[track_caller]
    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        let r = match method {
            "GET" => ureq::get(&url).call(),
            "DELETE" => ureq::delete(&url).call(),
            _ => ureq::post(&url).send_json(body),
        };
        match r {
            Ok(resp) => resp.into_json::<Value>().unwrap()["value"].clone(),
            Err(e) => panic!("WebDriver {method} {path}: {}", describe(e)),
        }
    }

    /// Like `cmd`, answering the WebDriver error instead of panicking.
    #[track_caller]
    fn try_cmd(&self, method: &str, path: &str, body: Value) -> Result<Value, Value> {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        let r = if method == "GET" { ureq::get(&url).call() } else { ureq::post(&url).send_json(body) };
        match r {
            Ok(resp) => Ok(resp.into_json::<Value>().unwrap()["value"].clone()),
            Err(ureq::Error::Status(_, resp)) => Err(resp.into_json::<Value>().unwrap_or(Value::Null)),
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        }
    }

    #[track_caller]
    pub fn go(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url }));
    }

    #[track_caller]
    pub fn url(&self) -> String {
        self.cmd("GET", "/url", Value::Null).as_str().unwrap().to_string()
    }

    /// The path of the current page (`/console/me/tokens`).
    #[track_caller]
    pub fn path(&self) -> String {
        let u = self.url();
        let after = u.split_once("://").map(|(_, r)| r).unwrap_or(&u);
        after.find('/').map(|i| after[i..].to_string()).unwrap_or_else(|| "/".into())
    }

    /// The element matching `css` (waits for it to appear; panics when it never does).
    #[track_caller]
    pub fn find(&self, css: &str) -> El<'_> {
        match self.try_cmd("POST", "/element", json!({"using": "css selector", "value": css})) {
            Ok(v) => El { b: self, id: v[ELEMENT].as_str().unwrap().to_string() },
            Err(e) => panic!("no element {css:?} on {}: {e}", self.url()),
        }
    }

    /// Whether the page's HTML contains `text` now.
    #[track_caller]
    pub fn source_has(&self, text: &str) -> bool {
        self.script("return document.documentElement.outerHTML.includes(arguments[0])", json!([text])) == json!(true)
    }

    /// Whether an element matching `css` is on the page now (no waiting).
    #[track_caller]
    pub fn has(&self, css: &str) -> bool {
        self.script("return document.querySelector(arguments[0]) !== null", json!([css])) == json!(true)
    }

    #[track_caller]
    pub fn script(&self, js: &str, args: Value) -> Value {
        self.cmd("POST", "/execute/sync", json!({"script": js, "args": args}))
    }

    /// Runs an asynchronous script (its last argument is the callback that answers).
    #[track_caller]
    pub fn script_async(&self, js: &str, args: Value) -> Value {
        self.cmd("POST", "/execute/async", json!({"script": js, "args": args}))
    }

    /// Sets the window to `width` × `height` px.
    #[track_caller]
    pub fn set_size(&mut self, width: u32, height: u32) {
        self.cmd("POST", "/window/rect", json!({"width": width, "height": height}));
    }

    #[track_caller]
    pub fn set_width(&mut self, width: u32) {
        self.cmd("POST", "/window/rect", json!({"width": width, "height": 900}));
    }

    /// Writes `target/console-screenshots/{name}-1280.png` and `{name}-390.png` (the
    /// window resized to 390 px wide, the height of the page up to 2400 px), then
    /// restores 1280 px.
    #[track_caller]
    pub fn screenshot(&mut self, name: &str) {
        std::fs::create_dir_all(screenshot_dir()).unwrap();
        for width in [1280u32, 390] {
            self.cmd("POST", "/window/rect", json!({"width": width, "height": 900}));
            let h = self.script("return document.documentElement.scrollHeight", json!([])).as_u64().unwrap_or(900);
            let h = (h as u32 + 140).clamp(600, 2400);
            self.cmd("POST", "/window/rect", json!({"width": width, "height": h}));
            let png = self.cmd("GET", "/screenshot", Value::Null);
            let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
            std::fs::write(screenshot_dir().join(format!("{name}-{width}.png")), bytes).unwrap();
        }
        self.set_width(1280);
    }

    /// Clicks `css` and waits until the page it leads to has loaded (a form POST or a
    /// link): the old document is marked first, so the wait ends on the new one.
    #[track_caller]
    pub fn click_and_load(&self, css: &str) {
        let el = self.find(css);
        self.script("window.__tokendOldPage = true", json!([]));
        el.click();
        self.wait_loaded();
    }

    /// Waits until the document marked by `click_and_load` (or by `mark`) is replaced.
    #[track_caller]
    pub fn wait_loaded(&self) {
        let started = Instant::now();
        loop {
            let v = self.try_cmd(
                "POST",
                "/execute/sync",
                json!({"script": "return document.readyState === 'complete' && !window.__tokendOldPage", "args": []}),
            );
            if v == Ok(json!(true)) {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "the next page did not load (still {})", self.url());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until the element matching `css` has non-empty text (set by a script) and
    /// answers it.
    #[track_caller]
    pub fn wait_text(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let t = self.find(css).text();
            if !t.is_empty() {
                return t;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "{css} stayed empty");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Marks the current document (then `wait_loaded` waits for the next one).
    #[track_caller]
    pub fn mark(&self) {
        self.script("window.__tokendOldPage = true", json!([]));
    }

    /// Signs in through the page (asserts that it lands on "My tokens").
    #[track_caller]
    pub fn sign_in(&self, s: &Server, email: &str, password: &str) {
        self.go(&s.url("/console/sign-in"));
        self.find("#email").send_keys(email);
        self.find("#password").send_keys(password);
        self.click_and_load("#sign-in-submit");
        assert_eq!(self.path(), "/console/me/tokens", "signed in: {}", self.find("main").text());
    }
}

impl El<'_> {
    #[track_caller]
    fn path(&self, rest: &str) -> String {
        format!("/element/{}{}", self.id, rest)
    }
    #[track_caller]
    pub fn click(&self) {
        self.b.cmd("POST", &self.path("/click"), json!({}));
    }
    #[track_caller]
    pub fn send_keys(&self, text: &str) {
        self.b.cmd("POST", &self.path("/value"), json!({ "text": text }));
    }
    #[track_caller]
    pub fn clear(&self) {
        self.b.cmd("POST", &self.path("/clear"), json!({}));
    }
    #[track_caller]
    pub fn text(&self) -> String {
        self.b.cmd("GET", &self.path("/text"), Value::Null).as_str().unwrap_or_default().to_string()
    }
    #[track_caller]
    pub fn attr(&self, name: &str) -> Option<String> {
        self.b.cmd("GET", &self.path(&format!("/attribute/{name}")), Value::Null).as_str().map(str::to_string)
    }
    #[track_caller]
    pub fn displayed(&self) -> bool {
        self.b.cmd("GET", &self.path("/displayed"), Value::Null) == json!(true)
    }
    /// The element matching `css` inside this one.
    #[track_caller]
    pub fn find(&self, css: &str) -> El<'_> {
        match self.b.try_cmd("POST", &self.path("/element"), json!({"using": "css selector", "value": css})) {
            Ok(v) => El { b: self.b, id: v[ELEMENT].as_str().unwrap().to_string() },
            Err(e) => panic!("no element {css:?} inside: {e}"),
        }
    }
}

fn describe(e: ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, r) => format!("{code}: {}", r.into_string().unwrap_or_default()),
        other => other.to_string(),
    }
}

/// A console session over plain HTTP (no browser): the cookie and the CSRF token, for
/// status and header checks and the escalation matrix. Redirects are not followed.
pub struct ConsoleHttp {
    pub base: String,
    pub cookie: String,
    pub csrf: String,
    agent: ureq::Agent,
}

/// The value of the hidden `csrf` field of a page.
#[track_caller]
pub fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field on the page");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// `name=value` of a Set-Cookie header named `name`.
fn set_cookie(r: &super::Resp, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.split(';').next().unwrap_or("").to_string())
        .find(|kv| kv.starts_with(&format!("{name}=")))
}

pub fn no_redirects() -> ureq::Agent {
    ureq::AgentBuilder::new().redirects(0).build()
}

impl ConsoleHttp {
    /// Signs in through the sign-in form as a browser would (same origin).
    #[track_caller]
    pub fn sign_in(s: &Server, email: &str, password: &str) -> ConsoleHttp {
        let agent = no_redirects();
        let form = super::Resp::from(agent.get(&s.url("/console/sign-in")).call());
        assert_eq!(form.status, 200, "the sign-in page: {}", form.text);
        let pre = set_cookie(&form, "tokend_console_pre").expect("a pre-session cookie");
        let csrf = csrf_in(&form.text);
        let r = super::Resp::from(
            agent.post(&s.url("/console/sign-in")).set("Cookie", &pre).set("Origin", &s.base).send_form(&[
                ("csrf", &csrf),
                ("email", email),
                ("password", password),
            ]),
        );
        assert_eq!(r.status, 303, "signed in: {}", r.text);
        let cookie = set_cookie(&r, "tokend_console").expect("a session cookie");
        let mut c = ConsoleHttp { base: s.base.clone(), cookie, csrf: String::new(), agent };
        let page = c.get("/console/me/tokens");
        assert_eq!(page.status, 200, "{}", page.text);
        c.csrf = csrf_in(&page.text);
        c
    }

    /// No session at all (no cookie).
    pub fn anonymous(s: &Server) -> ConsoleHttp {
        ConsoleHttp { base: s.base.clone(), cookie: String::new(), csrf: String::new(), agent: no_redirects() }
    }

    #[track_caller]
    pub fn get(&self, path: &str) -> super::Resp {
        super::Resp::from(self.agent.get(&format!("{}{path}", self.base)).set("Cookie", &self.cookie).call())
    }

    /// A same-origin form POST with this session's CSRF token added.
    #[track_caller]
    pub fn post(&self, path: &str, pairs: &[(&str, &str)]) -> super::Resp {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(pairs);
        self.post_raw(path, &all, &[("Origin", &self.base.clone())])
    }

    /// A form POST with exactly these fields and extra headers.
    #[track_caller]
    pub fn post_raw(&self, path: &str, pairs: &[(&str, &str)], headers: &[(&str, &str)]) -> super::Resp {
        let mut req = self.agent.post(&format!("{}{path}", self.base)).set("Cookie", &self.cookie);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        super::Resp::from(req.send_form(pairs))
    }
}

/// The console's confirmation dialog is shown with `expect` in its text; confirms it and
/// waits for the next page.
#[track_caller]
pub fn confirm(br: &Browser, expect: &str) {
    assert!(br.find("#confirm").displayed(), "asks first");
    assert!(br.find("#confirm-text").text().contains(expect), "{}", br.find("#confirm-text").text());
    br.mark();
    br.find("#confirm-ok").click();
    br.wait_loaded();
}
