//! Spawning the relay with fake robots, and sending signed Gitee deliveries to it.

use fake_robot::{FakeRobot, Platform, RobotOptions};
use gitee_relay::config::Config;
use gitee_relay::gitee::auth::gitee_signature;
use gitee_relay::startup::Relay;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const GITEE_SECRET: &str = "test-gitee-secret-Zq8";
pub const DING_SECRET: &str = "SECtest-ding-secret-Kx3";
pub const FEISHU_SECRET: &str = "test-feishu-secret-Pw5";
pub const DING_TOKEN: &str = "ding-token-Hn2";
pub const WECOM_KEY: &str = "wecom-key-Ub7";
pub const FEISHU_HOOK: &str = "feishu-hook-Tg4";
pub const SLACK_TOKEN: &str = "slack-token-Jd9";

/// Every secret a test config holds: none may ever show in a response or a log.
pub const SECRETS: &[&str] = &[
    GITEE_SECRET,
    DING_SECRET,
    FEISHU_SECRET,
    DING_TOKEN,
    WECOM_KEY,
    FEISHU_HOOK,
    SLACK_TOKEN,
];

pub struct Robots {
    pub dingtalk: FakeRobot,
    pub wecom: FakeRobot,
    pub feishu: FakeRobot,
    pub slack: FakeRobot,
}

impl Robots {
    /// Robots with the platforms' real checks and signing, unthrottled unless asked.
    pub async fn start(throttled: bool) -> Robots {
        let opts = |token: &str| {
            let o = RobotOptions::new(token);
            if throttled { o } else { o.unthrottled() }
        };
        Robots {
            dingtalk: FakeRobot::start(
                Platform::Dingtalk,
                opts(DING_TOKEN).with_secret(DING_SECRET),
            )
            .await,
            wecom: FakeRobot::start(Platform::Wecom, opts(WECOM_KEY)).await,
            feishu: FakeRobot::start(
                Platform::Feishu,
                opts(FEISHU_HOOK).with_secret(FEISHU_SECRET),
            )
            .await,
            slack: FakeRobot::start(Platform::Slack, opts(SLACK_TOKEN)).await,
        }
    }

    pub fn all(&self) -> [&FakeRobot; 4] {
        [&self.dingtalk, &self.wecom, &self.feishu, &self.slack]
    }
}

/// The YAML of a test config: the four channels pointing at `robots`, everything routed to
/// all four, fast retries. `extra` is appended verbatim (more top-level keys).
pub fn config_yaml(robots: &Robots, store: &Path, extra: &str) -> String {
    format!(
        r#"
listen: 127.0.0.1:0
store: sqlite://{store}
sources:
  gitee:
    secret: {GITEE_SECRET}
  pw:
    password: {GITEE_SECRET}
  # The secrets of the shared real captures (their timestamps are years old).
  goscm:
    secret: bBg5lrt03VixkX85CNqYIcecC0SIGASE
    max_skew: 3650d
  rothub:
    secret: 437EBE55A75911E8
    max_skew: 3650d
channels:
  ding:
    platform: dingtalk
    url: {ding}
    secret: {DING_SECRET}
    rate: {{ per_second: 1000 }}
  wecom:
    platform: wecom
    url: {wecom}
    rate: {{ per_second: 1000 }}
  lark:
    platform: feishu
    url: {feishu}
    secret: {FEISHU_SECRET}
    rate: {{ per_second: 1000 }}
  slack:
    platform: slack
    url: {slack}
    rate: {{ per_second: 1000 }}
routes:
  - to: [ding, wecom, lark, slack]
delivery:
  retry_first: 100ms
  retry_cap: 400ms
  timeout: 2s
  rate_limit_pause: 1s
{extra}
"#,
        store = store.display(),
        ding = robots.dingtalk.url(),
        wecom = robots.wecom.url(),
        feishu = robots.feishu.url(),
        slack = robots.slack.url(),
    )
}

pub struct TestRelay {
    pub relay: Option<Relay>,
    pub base: String,
    pub client: reqwest::Client,
    pub robots: Robots,
    pub dir: tempfile::TempDir,
    pub config: Config,
}

impl TestRelay {
    pub async fn spawn() -> TestRelay {
        TestRelay::spawn_with("").await
    }

    pub async fn spawn_with(extra_yaml: &str) -> TestRelay {
        let robots = Robots::start(false).await;
        TestRelay::spawn_with_robots(robots, extra_yaml).await
    }

    pub async fn spawn_with_robots(robots: Robots, extra_yaml: &str) -> TestRelay {
        let dir = tempfile::tempdir().unwrap();
        let yaml = config_yaml(&robots, &dir.path().join("relay.db"), extra_yaml);
        let config = Config::from_yaml(&dir.path().join("config.yaml"), &yaml, &|_| None)
            .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"));
        let relay = Relay::start(config.clone()).await.unwrap();
        TestRelay {
            base: format!("http://127.0.0.1:{}", relay.port()),
            relay: Some(relay),
            client: reqwest::Client::new(),
            robots,
            dir,
            config,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("relay.db")
    }

    /// Posts a body signed the way Gitee signs, now.
    pub async fn send(&self, event: &str, body: &[u8]) -> reqwest::Response {
        let ts = now_ms().to_string();
        self.post(
            "gitee",
            &[
                ("X-Gitee-Event", event),
                ("X-Gitee-Timestamp", &ts),
                ("X-Gitee-Token", &gitee_signature(GITEE_SECRET, &ts)),
                ("Content-Type", "application/json"),
                ("User-Agent", "git-oschina-hook"),
            ],
            body.to_vec(),
        )
        .await
    }

    pub async fn post(
        &self,
        source: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/hooks/{source}", self.base))
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("the relay answers")
    }

    pub async fn stop(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.stop(Duration::from_secs(5)).await;
        }
    }
}

pub fn now_ms() -> i64 {
    gitee_relay::time_util::now_ms()
}

/// A Gitee timestamp for a new delivery: now, but never the same as one handed out before.
/// The relay accepts a (timestamp, token) pair once (replay protection), and the token of a
/// source depends only on the timestamp, so two deliveries must not share a millisecond.
pub fn unique_ts() -> String {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(0);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now_ms().max(last + 1);
        match LAST.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next.to_string(),
            Err(actual) => last = actual,
        }
    }
}

/// The crate's own sample payloads and quirky fixtures.
pub fn own_payloads() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["samples", "tests/fixtures/gitee"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            out.push((f.display().to_string(), std::fs::read(&f).unwrap()));
        }
    }
    out
}

/// The shared, real captured deliveries, when `../shared/fixtures/gitee` exists.
pub fn shared_fixtures_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/gitee");
    dir.is_dir().then_some(dir)
}

/// Polls `f` until it is true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
