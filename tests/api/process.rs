//! The real binary as a child process: the README's first-run experience, secrets kept out of
//! every log line, and SIGKILL / SIGTERM with work in flight.

use crate::helpers::*;
use fake_robot::Fault;
use gitee_relay::gitee::auth::gitee_signature;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `gitee-relay serve` whose log lines (JSON) are collected.
pub struct Proc {
    child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
    pub addr: String,
}

impl Proc {
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitee-relay"));
        cmd.args(["--log-format", "json", "serve", "--config"])
            .arg(config)
            .env_remove("GITEE_SECRET")
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the relay binary starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let found = lines.lock().unwrap().iter().find_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                (v["fields"]["message"] == "gitee-relay is ready")
                    .then(|| v["fields"]["addr"].as_str().unwrap().to_owned())
            });
            if let Some(a) = found {
                break a;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("relay exited with {status}: {:#?}", lines.lock().unwrap());
            }
            assert!(
                Instant::now() < deadline,
                "relay not ready: {:#?}",
                lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Proc { child, lines, addr }
    }

    pub fn url(&self, source: &str) -> String {
        format!("http://{}/hooks/{source}", self.addr)
    }

    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    pub fn count(&self, message: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(message))
            .count()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and waits for the exit; returns how long it took and the exit status.
    pub fn terminate(&mut self) -> (Duration, std::process::ExitStatus) {
        let started = Instant::now();
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        (started.elapsed(), status)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn send_signed(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    event: &str,
    body: &[u8],
) -> reqwest::Response {
    try_send_signed(client, url, secret, event, body)
        .await
        .unwrap()
}

/// A delivery signed the way Gitee signs it, with its own timestamp; the transport error is
/// returned (tests that kill the relay expect some).
pub async fn try_send_signed(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    event: &str,
    body: &[u8],
) -> reqwest::Result<reqwest::Response> {
    let ts = unique_ts();
    client
        .post(url)
        .header("X-Gitee-Event", event)
        .header("X-Gitee-Timestamp", &ts)
        .header("X-Gitee-Token", gitee_signature(secret, &ts))
        .header("Content-Type", "application/json")
        .body(body.to_vec())
        .send()
        .await
}

#[tokio::test]
async fn the_shipped_config_logs_four_dry_run_messages_for_one_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.yaml");
    std::fs::copy(&shipped, dir.path().join("config.yaml")).unwrap();
    let mut relay = Proc::start(
        &dir.path().join("config.yaml"),
        &[("GITEE_RELAY_LISTEN", "127.0.0.1:0")],
    );
    let body =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/push.json")).unwrap();
    // The README's curl example: the demo secret, a millisecond timestamp.
    let resp = send_signed(
        &reqwest::Client::new(),
        &relay.url("gitee"),
        "gitee-relay-demo-secret",
        "Push Hook",
        &body,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["deliveries"], 4);
    let ok = eventually(Duration::from_secs(10), || async {
        relay.count("dry run: rendered and signed") >= 4
    })
    .await;
    assert!(ok, "{}", relay.log());
    let log = relay.log();
    for platform in ["dingtalk", "wecom", "feishu", "slack"] {
        assert!(
            log.lines()
                .any(|l| l.contains("dry run")
                    && l.contains(&format!("\"platform\":\"{platform}\""))),
            "no dry-run message for {platform}"
        );
    }
    // The SQLite file sits next to the config, owner-only.
    assert!(dir.path().join("data/relay.db").exists());
    let (took, status) = relay.terminate();
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test]
async fn secrets_never_reach_the_logs_or_error_bodies() {
    let robots = Robots::start(false).await;
    // Failures of every kind, so error paths log too.
    // One signature rejection: retried once with a fresh timestamp, then accepted.
    robots
        .dingtalk
        .push_fault(Fault::PlatformError(310000, "sign not match".into()));
    robots
        .wecom
        .push_fault(Fault::HttpStatus(500, "oops".into()));
    robots.feishu.push_fault(Fault::Reset);
    robots
        .slack
        .push_fault(Fault::PlatformError(403, "invalid_token".into()));
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(&robots, &dir.path().join("relay.db"), "");
    std::fs::write(dir.path().join("config.yaml"), yaml).unwrap();
    let relay = Proc::start(&dir.path().join("config.yaml"), &[]);
    let client = reqwest::Client::new();
    let push =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/push.json")).unwrap();
    let mut bodies = Vec::new();
    let r = send_signed(
        &client,
        &relay.url("gitee"),
        GITEE_SECRET,
        "Push Hook",
        &push,
    )
    .await;
    assert_eq!(r.status(), 200);
    bodies.push(r.text().await.unwrap());
    let r = send_signed(
        &client,
        &relay.url("gitee"),
        "wrong-secret",
        "Push Hook",
        &push,
    )
    .await;
    assert_eq!(r.status(), 401);
    bodies.push(r.text().await.unwrap());
    // Password mode: Gitee puts the password in the body too.
    let with_password = String::from_utf8(push.clone()).unwrap().replacen(
        "\"password\": \"\"",
        &format!("\"password\": \"{GITEE_SECRET}\""),
        1,
    );
    for token in [GITEE_SECRET, "not-it"] {
        let r = client
            .post(relay.url("pw"))
            .header("X-Gitee-Event", "Push Hook")
            .header("X-Gitee-Token", token)
            .header("Content-Type", "application/json")
            .body(with_password.clone())
            .send()
            .await
            .unwrap();
        bodies.push(r.text().await.unwrap());
    }
    let r = client
        .post(relay.url("gitee"))
        .header("X-Gitee-Event", "Push Hook")
        .body("{")
        .send()
        .await
        .unwrap();
    bodies.push(r.text().await.unwrap());
    // Slack's invalid_token is permanent: one of its two deliveries is dead.
    for (robot, n) in [
        (&robots.dingtalk, 2),
        (&robots.wecom, 2),
        (&robots.feishu, 2),
        (&robots.slack, 1),
    ] {
        assert!(
            robot.wait_accepted(n, Duration::from_secs(15)).await,
            "{:?}: {:?}",
            robot.platform(),
            robot.rejected()
        );
    }
    assert!(
        eventually(Duration::from_secs(5), || async {
            relay.count("delivery failed permanently") >= 1
        })
        .await
    );
    let log = relay.log();
    assert!(
        log.contains("delivery failed"),
        "the failures were logged:\n{log}"
    );
    for secret in SECRETS {
        assert!(!log.contains(secret), "secret {secret} in the log:\n{log}");
        for b in &bodies {
            assert!(!b.contains(secret), "secret {secret} in a response: {b}");
        }
    }
}

#[tokio::test]
async fn sigkill_with_deliveries_in_flight_then_restart_delivers_them() {
    let robots = Robots::start(false).await;
    // The first send to each robot hangs: it is in flight when the process dies.
    for robot in robots.all() {
        robot.push_fault(Fault::Hang(Duration::from_secs(30)));
    }
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(&robots, &dir.path().join("relay.db"), "")
        .replace("timeout: 2s", "timeout: 60s");
    std::fs::write(dir.path().join("config.yaml"), &yaml).unwrap();
    let mut relay = Proc::start(&dir.path().join("config.yaml"), &[]);
    let client = reqwest::Client::new();
    let push =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/push.json")).unwrap();
    for _ in 0..3 {
        assert_eq!(
            send_signed(
                &client,
                &relay.url("gitee"),
                GITEE_SECRET,
                "Push Hook",
                &push
            )
            .await
            .status(),
            200
        );
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            robots.all().iter().all(|r| r.requests() >= 1)
        })
        .await
    );
    relay.kill();
    let relay = Proc::start(&dir.path().join("config.yaml"), &[]);
    // 3 events × 4 robots; the hung first sends may still be accepted later, so count ≥.
    for robot in robots.all() {
        assert!(
            robot.wait_accepted(3, Duration::from_secs(20)).await,
            "{:?}: {}",
            robot.platform(),
            relay.log()
        );
    }
}
