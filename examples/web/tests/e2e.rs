//! End-to-end test in a real headless Chromium, driven through chromedriver's W3C WebDriver
//! API. Compiled only with `--features e2e`; then Chromium and chromedriver must be
//! installed (`scripts/install-browser.sh`): a missing browser fails the test.
//!
//! Writes a screenshot of the devices page to `target/e2e/devices.png`.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use session_kit::SessionStore;
use session_web_example::{app, AppOptions};

/// The W3C WebDriver web element identifier key.
const W3C_ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
}

fn find_program(env: &str, candidates: &[&str]) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    for c in candidates {
        let p = Path::new(c);
        if p.is_absolute() && p.exists() {
            return p.to_path_buf();
        }
        if !p.is_absolute() {
            if let Some(paths) = std::env::var_os("PATH") {
                for dir in std::env::split_paths(&paths) {
                    let full = dir.join(p);
                    if full.exists() {
                        return full;
                    }
                }
            }
        }
    }
    panic!(
        "{} not found (looked for {candidates:?}; set {env} to override). \
         Install Debian's chromium and chromium-driver with scripts/install-browser.sh",
        candidates[0]
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver, killed (by its own handle) when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver runs in its own process group with the browsers it started: end the
        // whole group (by its id), so a failed test leaves no Chromium behind.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(http: &reqwest::Client) -> Driver {
    let bin = find_program(
        "CHROMEDRIVER",
        &["chromedriver", "/usr/lib/chromium/chromedriver"],
    );
    let port = free_port();
    let child = Command::new(&bin)
        .process_group(0)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {}: {e}", bin.display()));
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(res) = http.get(format!("{}/status", driver.url)).send().await {
            if let Ok(v) = res.json::<Value>().await {
                if v["value"]["ready"] == json!(true) {
                    return driver;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One browser: a WebDriver session with its own fresh Chromium profile.
struct Browser {
    http: reqwest::Client,
    base: String,
    profile: PathBuf,
}

impl Browser {
    async fn open(http: &reqwest::Client, driver: &Driver, name: &str) -> Self {
        let chromium = find_program(
            "CHROME_BIN",
            &[
                "/usr/lib/chromium/chromium",
                "chromium",
                "/usr/bin/chromium",
            ],
        );
        let profile = std::env::temp_dir().join(format!(
            "session-e2e-{}-{name}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_micros()
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-crash-reporter".to_owned(),
            "--disable-breakpad".to_owned(),
            "--window-size=1200,800".to_owned(),
            format!("--user-data-dir={}", profile.display()),
            format!(
                "--user-agent=Mozilla/5.0 (X11; Linux x86_64) E2E-Browser-{name} HeadlessChromium"
            ),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium.to_string_lossy(), "args": args}
        }}});
        let res: Value = http
            .post(format!("{}/session", driver.url))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = res["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver could not start Chromium: {res}"))
            .to_owned();
        Self {
            http: http.clone(),
            base: format!("{}/session/{id}", driver.url),
            profile,
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if let Some(err) = v["value"].get("error") {
            panic!("webdriver {path}: {err} {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn refresh(&self) {
        self.cmd(reqwest::Method::POST, "/refresh", Some(json!({})))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v: Value = self
                .http
                .post(format!("{}/element", self.base))
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let value = &v["value"];
            if let Some(id) = value.get(W3C_ELEMENT).and_then(Value::as_str) {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "element {css} not found: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.cmd(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the element's text satisfies `ok` (pages load after a click).
    async fn wait_text(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v: Value = self
                .http
                .post(format!("{}/element", self.base))
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(id) = v["value"].get(W3C_ELEMENT).and_then(Value::as_str) {
                let t: Value = self
                    .http
                    .get(format!("{}/element/{id}/text", self.base))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if let Some(text) = t["value"].as_str() {
                    if ok(text) {
                        return text.to_owned();
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "{css} never had the expected text"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The session cookie as the browser holds it (WebDriver sees HttpOnly cookies).
    async fn session_cookie(&self) -> Option<String> {
        let cookies = self.cmd(reqwest::Method::GET, "/cookie", None).await;
        cookies.as_array().unwrap().iter().find_map(|c| {
            (c["name"] == json!("id")).then(|| c["value"].as_str().unwrap().to_owned())
        })
    }

    async fn screenshot(&self, path: &Path) {
        let b64 = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    async fn close(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

async fn open_store() -> Arc<dyn SessionStore> {
    #[cfg(feature = "sqlite")]
    {
        let dir = target_dir().join("e2e");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("e2e.sqlite");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("e2e.sqlite{suffix}")));
        }
        session_kit::connect(&format!("sqlite:{}", file.display()))
            .await
            .unwrap()
    }
    #[cfg(not(feature = "sqlite"))]
    {
        Arc::new(session_kit::MemoryStore::new())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_login_devices_logout_others_and_logout() {
    let started = Instant::now();
    let store = open_store().await;
    let site = session_http_testkit::serve(app(store.clone(), &AppOptions::default())).await;

    let http = reqwest::Client::new();
    let driver = start_driver(&http).await;
    let a = Browser::open(&http, &driver, "A").await;
    let b = Browser::open(&http, &driver, "B").await;

    // A: anonymous, then a counter press creates a session.
    a.goto(&site).await;
    assert!(a.text("#who").await.contains("Not signed in"));
    assert_eq!(a.session_cookie().await, None);
    a.click("#increment").await;
    a.wait_text("#counter", |t| t == "1").await;
    let anonymous = a
        .session_cookie()
        .await
        .expect("cookie after the first write");

    // Login cycles the key and keeps the data; it persists across reloads.
    a.type_into("#username", "alice").await;
    a.click("#login").await;
    a.wait_text("#who", |t| t.contains("alice")).await;
    let a_key = a.session_cookie().await.expect("cookie after login");
    assert_ne!(a_key, anonymous, "the cookie value changes at login");
    assert_eq!(a.text("#counter").await, "1");
    a.refresh().await;
    a.wait_text("#who", |t| t.contains("alice")).await;
    a.goto(&site).await;
    assert!(a.text("#who").await.contains("Signed in as alice"));
    assert_eq!(a.session_cookie().await.as_deref(), Some(a_key.as_str()));

    // B: a second browser (own profile, own cookies) logs in as the same user.
    b.goto(&site).await;
    b.type_into("#username", "alice").await;
    b.click("#login").await;
    b.wait_text("#who", |t| t.contains("alice")).await;
    let b_key = b.session_cookie().await.expect("B's cookie");
    assert_ne!(a_key, b_key);

    // A's devices page shows both browsers.
    a.goto(&format!("{site}/devices")).await;
    a.wait_text("#count", |t| t == "2").await;
    let table = a.text("#devices").await;
    assert!(table.contains("E2E-Browser-A"), "{table}");
    assert!(table.contains("E2E-Browser-B"), "{table}");
    assert!(table.contains("127.0.0.1"), "{table}");
    assert!(table.contains("This device"), "{table}");
    let shot = target_dir().join("e2e").join("devices.png");
    a.screenshot(&shot).await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);

    // "Log out other devices" ends B's session.
    a.click("#logout-others").await;
    a.wait_text("#ended", |t| t.contains("Logged out 1 other"))
        .await;
    a.wait_text("#count", |t| t == "1").await;
    b.refresh().await;
    b.wait_text("#who", |t| t.contains("Not signed in")).await;
    assert_eq!(
        b.session_cookie().await,
        None,
        "B's dead cookie was removed"
    );
    assert_eq!(store.list_for_user("alice").await.unwrap().len(), 1);

    // A is still signed in; logout removes the cookie and the session.
    a.goto(&site).await;
    assert!(a.text("#who").await.contains("alice"));
    a.click("#logout").await;
    a.wait_text("#who", |t| t.contains("Not signed in")).await;
    assert_eq!(a.session_cookie().await, None, "logout removes the cookie");
    assert!(store.list_for_user("alice").await.unwrap().is_empty());

    a.close().await;
    b.close().await;
    drop(driver);
    let shot = shot.canonicalize().unwrap_or(shot);
    eprintln!(
        "e2e finished in {:.1}s; screenshot at {}",
        started.elapsed().as_secs_f64(),
        shot.display()
    );
}
