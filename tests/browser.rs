//! The web console in a real browser: headless Chromium driven over WebDriver (chromedriver)
//! against a running relay. Sign in with the token, find a dead delivery, redeliver it and see
//! the new successful attempt; open the playground, edit a template and see the preview
//! change. A screenshot of each page is saved as `target/console-*.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them the
//! test is skipped with a message, except when `CI` is set: then it fails. `CHROMIUM` and
//! `CHROMEDRIVER` override the binaries' paths.
//!
//! The WebDriver client is the few W3C endpoints the test needs, over reqwest.
//!
//! A test binary of its own, so the browser's CPU load does not overlap the API suite's
//! timing-sensitive tests (cargo runs test binaries one after the other).

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use base64::Engine;
use fake_robot::Fault;
use futures_util::FutureExt;
use helpers::*;
use serde_json::{Value, json};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PUSH: &[u8] = include_bytes!("../samples/push.json");

const ADMIN_TOKEN: &str = "admin-token-Br0wser-0123456789";

fn admin_yaml() -> String {
    format!("admin:\n  token: {ADMIN_TOKEN}\n")
}

/// Fails if any configured secret (or the admin token) is in `text`.
#[track_caller]
fn assert_no_secrets(what: &str, text: &str) {
    for secret in SECRETS.iter().chain([&ADMIN_TOKEN]) {
        assert!(
            !text.contains(secret),
            "{what} contains the secret {secret:?}"
        );
    }
}

/// How long any one thing may take to show up in the page (CI machines are slow and shared).
const PATIENCE: Duration = Duration::from_secs(30);

/// The W3C WebDriver element key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_binary(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path).chain([
            PathBuf::from("/usr/bin"),
            PathBuf::from("/usr/lib/chromium"),
        ]) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// The browser and its driver, or None (skip) when they are missing outside CI.
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = find_binary(
        "CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let driver = find_binary("CHROMEDRIVER", &["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        (c, d) => {
            let missing = [
                (c.is_none(), "chromium"),
                (d.is_none(), "chromedriver (Debian: chromium-driver)"),
            ]
            .iter()
            .filter(|(m, _)| *m)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(" and ");
            if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
                panic!(
                    "the browser test must run in CI, but {missing} is not installed (.ci/run installs chromium and chromium-driver)"
                );
            }
            eprintln!(
                "SKIPPED: the console browser test needs {missing}: apt-get install -y chromium chromium-driver"
            );
            None
        }
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// A chromedriver process and one browser session.
struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    base: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    async fn start(chromium: &Path, chromedriver: &Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let profile = tempfile::tempdir().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let mut browser = Browser {
            driver,
            http,
            session: String::new(),
            base,
            _profile: profile,
        };
        let ready = eventually(Duration::from_secs(20), || {
            let http = browser.http.clone();
            let url = format!("{}/status", browser.base);
            async move {
                http.get(url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await;
        assert!(ready, "chromedriver did not start");
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_str().unwrap(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1400,1000", "--hide-scrollbars", "--force-device-scale-factor=1",
                    "--lang=en-US", "--no-first-run", "--no-default-browser-check",
                    format!("--user-data-dir={}", browser._profile.path().display()),
                ]
            }
        }}});
        let v = browser.raw("POST", "/session", Some(caps)).await;
        browser.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_owned();
        browser
    }

    async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or(json!({}))),
        };
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "webdriver {method} {path}: {status} {v}"
        );
        v["value"].clone()
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.raw(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).await;
    }

    /// Runs JavaScript in the page and returns its value.
    async fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// The element matching `css`, waiting for it to appear.
    async fn find(&self, css: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let res = self
                .http
                .post(format!("{}/session/{}/element", self.base, self.session))
                .json(&json!({ "using": "css selector", "value": css }))
                .send()
                .await
                .unwrap();
            if res.status().is_success() {
                let v: Value = res.json().await.unwrap();
                return v["value"][ELEMENT].as_str().unwrap().to_owned();
            }
            if tokio::time::Instant::now() > deadline {
                let body = self.js("return document.body.innerText", json!([])).await;
                panic!(
                    "no element {css} after {PATIENCE:?}; the page says:\n{}",
                    body.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.cmd("POST", &format!("/element/{el}/click"), None)
            .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.cmd("POST", &format!("/element/{el}/clear"), None)
            .await;
        self.cmd(
            "POST",
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let el = self.find(css).await;
        self.cmd("GET", &format!("/element/{el}/text"), None)
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Waits until `script` (a function body returning a boolean) is true.
    async fn wait_for(&self, what: &str, script: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if self.js(script, json!([])).await == json!(true) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let body = self.js("return document.body.innerText", json!([])).await;
                panic!(
                    "{what}: not after {PATIENCE:?}; the page says:\n{}",
                    body.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        // Let fonts and layout settle; no toast over the page.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.js("document.querySelector('#toast').hidden = true", json!([]))
            .await;
        let v = self.cmd("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        let path = target_dir().join(format!("console-{name}.png"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, png).unwrap();
        path
    }

    async fn quit(&self) {
        if !self.session.is_empty() {
            let _ = self
                .http
                .delete(format!("{}/session/{}", self.base, self.session))
                .send()
                .await;
        }
    }
}

#[tokio::test]
async fn the_console_redelivers_a_dead_delivery_and_previews_an_edited_template() {
    let Some((chromium, chromedriver)) = browser_binaries() else {
        return;
    };
    let app = TestRelay::spawn_with(&admin_yaml()).await;
    // A delivery that fails for good: the robot says its token does not exist.
    app.robots
        .dingtalk
        .push_fault(Fault::PlatformError(300001, "token is not exist".into()));
    // Something in every state of the other channels, so the status page has numbers.
    let res = app.send("Push Hook", PUSH).await;
    assert_eq!(res.status(), 200);
    let store = app.relay.as_ref().unwrap().store.clone();
    assert!(
        eventually(PATIENCE, || {
            let store = store.clone();
            async move {
                store
                    .count_by_state()
                    .await
                    .unwrap()
                    .iter()
                    .any(|(s, n)| *s == gitee_relay::store::DeliveryState::Dead && *n == 1)
            }
        })
        .await
    );

    let browser = Browser::start(&chromium, &chromedriver).await;
    let outcome = AssertUnwindSafe(drive(&browser, &app)).catch_unwind().await;
    browser.quit().await;
    drop(browser);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn drive(b: &Browser, app: &TestRelay) {
    let mut shots = Vec::new();
    // Sign in.
    b.goto(&format!("{}/", app.base)).await;
    b.find("#login:not([hidden]) #token").await;
    b.type_into("#token", "not-the-token-0123456789").await;
    b.click("#login-button").await;
    b.wait_for(
        "a wrong token is refused",
        "return document.querySelector('#login-error').textContent.includes('not right')",
    )
    .await;
    b.type_into("#token", ADMIN_TOKEN).await;
    b.click("#login-button").await;

    // Status: the ding channel shows one dead delivery and its error.
    b.find("#channels article[data-channel=ding]").await;
    b.wait_for(
        "the ding card shows the dead delivery",
        "const c = document.querySelector('article[data-channel=ding]'); return !!c && c.innerText.includes('token is not exist');",
    )
    .await;
    shots.push(b.screenshot("status").await);

    // Deliveries filtered to dead ones: exactly the ding delivery.
    b.goto(&format!("{}/#/deliveries?state=dead", app.base))
        .await;
    b.find("#deliveries-table tr[data-state=dead]").await;
    let rows = b
        .js(
            "return document.querySelectorAll('#deliveries-table tbody tr[data-id]').length",
            json!([]),
        )
        .await;
    assert_eq!(rows, json!(1));
    assert!(b.text("#deliveries-table tbody").await.contains("ding"));
    shots.push(b.screenshot("deliveries").await);

    // Its page: the failed attempt, then redeliver.
    b.click("#deliveries-table tr[data-state=dead]").await;
    b.find("#delivery-title[data-state=dead]").await;
    let attempt = b.text("#attempts .attempt[data-outcome=dead]").await;
    assert!(attempt.contains("token is not exist"), "{attempt}");
    assert!(
        attempt.contains("access_token=***"),
        "the URL is masked: {attempt}"
    );
    let dead_id = b
        .js(
            "return document.querySelector('#delivery-title').dataset.id",
            json!([]),
        )
        .await;
    b.find("#message .chat").await;
    shots.push(b.screenshot("delivery-dead").await);
    b.click("#redeliver:not([disabled])").await;
    b.wait_for(
        "the page moves to the new delivery",
        &format!("const t = document.querySelector('#delivery-title'); return !!t && t.dataset.id !== '{}';", dead_id.as_str().unwrap()),
    )
    .await;
    b.find("#attempts .attempt[data-outcome=delivered]").await;
    b.find("#delivery-title[data-state=delivered]").await;
    let message = b.text("#message .chat").await;
    assert!(message.contains("acme/app"), "{message}");
    assert_eq!(app.robots.dingtalk.accepted_count(), 1);
    shots.push(b.screenshot("delivery").await);

    // Events.
    b.goto(&format!("{}/#/events", app.base)).await;
    b.find("#events-table tr[data-id]").await;
    shots.push(b.screenshot("events").await);

    // The playground: a Feishu card as the chat shows it.
    b.goto(&format!(
        "{}/#/playground?channel=lark&sample=merge_request_open",
        app.base
    ))
    .await;
    b.wait_for(
        "the Feishu card preview",
        "const p = document.querySelector('#pg-preview .lark-card'); return !!p && p.innerText.includes('acme/app');",
    )
    .await;
    shots.push(b.screenshot("playground-card").await);

    // The slack channel's push template, then an edit.
    b.goto(&format!(
        "{}/#/playground?channel=slack&sample=push",
        app.base
    ))
    .await;
    b.wait_for(
        "the template and its preview load",
        "const t = document.querySelector('#pg-template'); const p = document.querySelector('#pg-preview'); return !!t && t.value.includes('blocks') && !!p && p.innerText.includes('acme/app');",
    )
    .await;
    let before = b.text("#pg-preview").await;
    assert!(!before.contains("Hello from the playground"));
    b.type_into(
        "#pg-template",
        r#"{ "text": "Hello from the playground: *{{repo.full_name}}* by {{actor.name}}" }"#,
    )
    .await;
    b.wait_for(
        "the preview shows the edited template",
        "return document.querySelector('#pg-preview').innerText.includes('Hello from the playground: acme/app');",
    )
    .await;
    let body = b.text("#pg-body").await;
    assert!(body.contains("Hello from the playground"), "{body}");
    shots.push(b.screenshot("playground").await);

    // A broken edit shows the template error; the last good preview stays.
    b.type_into("#pg-template", r#"{ "text": "{{repo.nme}}" }"#)
        .await;
    b.wait_for(
        "the template error shows",
        "const e = document.querySelector('#pg-error'); return !e.hidden && e.innerText.includes('nme');",
    )
    .await;
    shots.push(b.screenshot("playground-error").await);

    // Nothing secret in any page the console showed.
    let html = b
        .js("return document.documentElement.outerHTML", json!([]))
        .await;
    assert_no_secrets("console page", html.as_str().unwrap());
    for shot in &shots {
        assert!(
            std::fs::metadata(shot).unwrap().len() > 10_000,
            "{}",
            shot.display()
        );
    }
    eprintln!(
        "console screenshots: {}",
        shots
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}
