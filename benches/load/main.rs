//! End-to-end load benchmark on loopback, one command:
//!
//! ```text
//! cargo bench --bench load                   # ≈ 3 minutes, prints the tables of BENCHMARKS.md
//! LOAD_SECS=5 cargo bench --bench load       # shorter points
//! LOAD_ONLY=ingest,e2e cargo bench --bench load   # some parts: ceilings, ingest, e2e, sustained, queued, ready
//! ```
//!
//! In one run, side by side (see BENCHMARKS.md for the method):
//!
//! 1. two ceilings built here with the relay's HTTP stack: a bare actix-web endpoint that
//!    reads the body and answers 200, and one that also appends each body to a file with group
//!    commit (one fdatasync per batch) before answering — at 8 and 64 connections;
//! 2. gitee-relay's durable ingest (the release binary; a signature-mode source, every request
//!    with its own timestamp and valid token; one delivery per event, queued for a robot that
//!    does not answer) at 8 and 64 connections;
//! 3. end to end: 64 connections of webhooks while the relay delivers each to an unthrottled
//!    fake Feishu robot (signed): deliveries/s counted at the robot, and the lag from the end of
//!    the load to the last delivery — beside the ceiling the issue sets that figure against, a
//!    synchronous parse-render-POST relay built here from the relay's own parse, templates and
//!    signing (no store, no queue), at the same 64 connections to the same robot;
//! 4. sustained end to end: webhooks offered at fixed rates, stepping up (open loop, 64
//!    connections), to the highest rate the relay accepts and delivers without a backlog
//!    growing (see `sustained.rs`);
//! 5. memory — RSS idle, peak under load, and with 1,000,000 deliveries queued (written into
//!    the store first, 20 channels whose robot does not answer) — and the time from start to a
//!    200 on `/readyz` with the shipped config.
//!
//! Every figure is printed with its ratio to its ceiling or target. Nothing is asserted.

mod ceiling;
mod client;
mod relay;
mod sustained;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client::{LoadResult, MakeRequest};
use fake_robot::{FakeRobot, Platform, RobotOptions};
use gitee_relay::gitee::EventKind;
use gitee_relay::gitee::auth::gitee_signature;
use gitee_relay::store::{NewEvent, SqliteStore, Store};
use relay::{ChannelSpec, Relay, RssSampler};

const SOURCE_SECRET: &str = "bench-gitee-secret";
const ROBOT_TOKEN: &str = "bench-hook";
const ROBOT_SECRET: &str = "bench-robot-secret";

const TARGET_E2E: f64 = 15_000.0;
const TARGET_RSS_IDLE: f64 = 20.0;
const TARGET_RSS_BUSY: f64 = 64.0;
const TARGET_READY_MS: f64 = 100.0;

const BARE: &str = "ceiling: bare actix-web (read body, 200)";
const APPEND: &str = "ceiling: + group-commit file append";
const INGEST: &str = "gitee-relay durable ingest";
const FORWARD: &str = "ceiling: synchronous parse-render-POST (no store)";
/// The issue's end-to-end target is 0.9× the synchronous ceiling (15,000/s on its machine).
const TARGET_E2E_OF_FORWARD: f64 = 0.9;

struct Settings {
    secs: u64,
    warmup: Duration,
    queued: usize,
    queue_channels: usize,
    /// `LOAD_ONLY=ingest,e2e`: run only these parts.
    only: Option<String>,
    /// The sustained run's rates: `LOAD_RATE_FROM`, `LOAD_RATE_STEP` webhooks/s,
    /// `LOAD_RATE_SECS` per rate, at most `LOAD_RATE_STEPS` rates on the way up.
    rates: sustained::Plan,
}

impl Settings {
    fn from_env() -> Settings {
        let env = |k: &str, d: u64| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(d)
        };
        Settings {
            secs: env("LOAD_SECS", 10),
            warmup: Duration::from_secs(env("LOAD_WARMUP", 1)),
            queued: env("LOAD_QUEUED", 1_000_000) as usize,
            queue_channels: env("LOAD_QUEUE_CHANNELS", 20).max(1) as usize,
            only: std::env::var("LOAD_ONLY").ok(),
            rates: sustained::Plan {
                from: env("LOAD_RATE_FROM", 3_000).max(1) as f64,
                step: env("LOAD_RATE_STEP", 1_000).max(1) as f64,
                secs: env("LOAD_RATE_SECS", 5).max(1),
                max_steps: env("LOAD_RATE_STEPS", 12).max(1) as usize,
            },
        }
    }

    fn runs(&self, part: &str) -> bool {
        self.only
            .as_deref()
            .is_none_or(|only| only.split(',').any(|p| p.trim() == part))
    }
}

fn now_ms() -> i64 {
    gitee_relay::time_util::now_ms()
}

/// The push sample (3 commits), compact as Gitee sends it.
fn push_body() -> Vec<u8> {
    let sample = gitee_relay::samples::find("push").expect("push sample");
    let v: serde_json::Value = serde_json::from_str(sample.body).expect("json");
    serde_json::to_vec(&v).expect("json")
}

/// Signed Gitee deliveries, each with its own timestamp (the relay refuses a reused
/// (timestamp, token) pair): timestamps count up by one millisecond per request from
/// `base_ms`, which stays inside the 1 h skew window for millions of requests.
fn signed_requests(body: Arc<Vec<u8>>, base_ms: i64) -> MakeRequest {
    Arc::new(move |n: u64| {
        let ts = (base_ms + n as i64).to_string();
        let token = gitee_signature(SOURCE_SECRET, &ts);
        let mut req = format!(
            "POST /hooks/bench HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: git-oschina-hook\r\n\
             Content-Type: application/json\r\nX-Gitee-Event: Push Hook\r\n\
             X-Gitee-Timestamp: {ts}\r\nX-Gitee-Token: {token}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&body);
        req
    })
}

/// A relay's request stream: signed requests and their sequence, from 50 minutes ago.
struct Requests {
    make: MakeRequest,
    seq: Arc<AtomicU64>,
}

impl Requests {
    fn new(body: &Arc<Vec<u8>>) -> Requests {
        Requests {
            make: signed_requests(body.clone(), now_ms() - 3_000_000),
            seq: Arc::new(AtomicU64::new(0)),
        }
    }

    fn sent(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }

    fn load(&self, addr: SocketAddr, conns: usize, s: &Settings) -> LoadResult {
        said_failures(client::run(
            addr,
            conns,
            s.warmup,
            Duration::from_secs(s.secs),
            self.seq.clone(),
            self.make.clone(),
        ))
    }

    /// `rate` requests a second for `secs` seconds (open loop).
    fn paced(&self, addr: SocketAddr, conns: usize, rate: f64, secs: u64) -> LoadResult {
        said_failures(client::run_paced(
            addr,
            conns,
            rate,
            Duration::from_secs(secs),
            self.seq.clone(),
            self.make.clone(),
        ))
    }
}

/// Says how many requests of a run failed, with a few of the answers; hands the run back.
fn said_failures(r: LoadResult) -> LoadResult {
    if r.failed > 0 {
        eprintln!("  {} failed requests, e.g. {:?}", r.failed, r.sample_errors);
    }
    r
}

struct Row {
    label: String,
    conns: usize,
    r: LoadResult,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    /// The synchronous parse-render-POST ceiling (64 connections), the end-to-end baseline.
    forward: Option<ForwardRun>,
    e2e: Option<E2e>,
    /// The sustained run's steps.
    sustained: Vec<sustained::Step>,
    rss_idle: Option<f64>,
    /// Peak RSS while ingesting (8 and 64 connections) and while delivering end to end.
    rss_busy: Vec<(String, f64)>,
    bench_ready: Option<Duration>,
    queued: Option<Queued>,
    ready: Vec<f64>,
    /// Relay CPU per webhook during each durable-ingest point (connections, µs).
    ingest_cpu: Vec<(usize, f64)>,
    /// Group commits during each durable-ingest point, from the relay's metrics
    /// (connections, mean webhooks per commit, mean commit ms).
    ingest_commits: Vec<(usize, f64, f64)>,
}

struct E2e {
    conns: usize,
    ingest: f64,
    during: f64,
    /// Deliveries/s from the end of the load to the last delivery (the dispatcher alone).
    drain: f64,
    lag: Duration,
    overall: f64,
    delivered: usize,
    expected: usize,
    rejected: usize,
    /// CPU time per delivery while draining, µs: the relay's, and the harness's (the fake
    /// robot, which checks every signature and schema).
    relay_cpu_us: f64,
    robot_cpu_us: f64,
}

/// The synchronous ceiling's run: its load (deliveries/s = its 200s/s, ack p50 / p99), and
/// how many messages the robot accepted of the requests sent (warm-up included; a check that
/// its 200s were deliveries).
struct ForwardRun {
    load: LoadResult,
    accepted: usize,
    sent: u64,
}

struct Queued {
    deliveries: usize,
    written_in: Duration,
    ready: Duration,
    rss: f64,
    rss_busy: f64,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({model})")
}

fn ratio(x: f64, of: f64) -> String {
    if of > 0.0 {
        format!("{:.2}×", x / of)
    } else {
        "–".into()
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() {
    // `cargo test --all-targets` runs bench targets without `--bench` (and in debug): the
    // load run takes minutes and needs the release binary, so it only runs from `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("load: skipped (run it with `cargo bench --bench load`)");
        return;
    }
    let s = Settings::from_env();
    let tmp = tempfile::Builder::new()
        .prefix("gitee-relay-load-")
        .tempdir()
        .expect("temp dir");
    let dir = tmp.path();
    let body = Arc::new(push_body());
    println!(
        "gitee-relay load benchmark: {}, {} s per point after {} s warm-up",
        machine(),
        s.secs,
        s.warmup.as_secs()
    );
    println!("relay: {}", relay::binary());
    println!("load average at start: {}", loadavg());
    println!(
        "request: signed Push Hook, {} byte body, own timestamp per request; closed loop, keep-alive",
        body.len()
    );

    let mut report = Report::default();
    if s.runs("ceilings") {
        ceilings(dir, &s, &body, &mut report);
    }
    if s.runs("ingest") {
        ingest(dir, &s, &body, &mut report);
    }
    if s.runs("e2e") || s.runs("sustained") {
        end_to_end(dir, &s, &body, &mut report);
    }
    if s.runs("queued") {
        queued(dir, &s, &body, &mut report);
    }
    if s.runs("ready") {
        report.ready = shipped_ready(dir, 5);
    }
    println!();
    println!("load average at end: {}", loadavg());
    print_report(&report);
}

fn ceilings(dir: &Path, s: &Settings, body: &Arc<Vec<u8>>, report: &mut Report) {
    let requests = Requests::new(body);
    for (kind, label) in [("bare", BARE), ("append", APPEND)] {
        let c = ceiling::start(kind, dir);
        for conns in [8, 64] {
            eprintln!("measuring {label} at {conns} connections");
            let r = requests.load(c.addr, conns, s);
            report.rows.push(Row {
                label: label.into(),
                conns,
                r,
            });
        }
        c.stop();
    }
}

fn fresh_addr() -> SocketAddr {
    format!("127.0.0.1:{}", relay::free_port())
        .parse()
        .expect("addr")
}

/// Channels whose robot accepts connections and never answers: their deliveries stay queued
/// (each holds one send in flight, 60 s timeout), so nothing but ingest uses the CPU.
fn paused_channels(n: usize, robot: SocketAddr) -> Vec<ChannelSpec> {
    (0..n)
        .map(|i| ChannelSpec {
            name: format!("q{i:02}"),
            platform: "wecom",
            url: format!("http://{robot}/cgi-bin/webhook/send?key=paused"),
            secret: None,
            per_second: None,
            timeout: "60s",
        })
        .collect()
}

/// Durable ingest alone: one channel, its robot paused.
fn ingest(dir: &Path, s: &Settings, body: &Arc<Vec<u8>>, report: &mut Report) {
    let dir = dir.join("ingest");
    std::fs::create_dir_all(&dir).expect("dir");
    let (silent, _silent_thread) = relay::start_silent_robot();
    let addr = fresh_addr();
    let config = relay::write_config(
        &dir,
        &dir.join("relay.db"),
        addr,
        &paused_channels(1, silent),
        1,
    );
    let r = Relay::start(&config, addr, &[], &dir.join("relay.log"));
    report.bench_ready = Some(r.ready_after);
    std::thread::sleep(Duration::from_secs(1));
    report.rss_idle = Some(r.rss_mib());
    let requests = Requests::new(body);
    let sampler = RssSampler::start(r.pid());
    for conns in [8, 64] {
        eprintln!("measuring {INGEST} at {conns} connections");
        let (cpu_before, sent_before) = (relay::cpu_seconds(&r.pid().to_string()), requests.sent());
        let commits_before = relay::Commits::read(addr);
        let res = requests.load(addr, conns, s);
        let cpu = relay::cpu_seconds(&r.pid().to_string()) - cpu_before;
        let sent = requests.sent().saturating_sub(sent_before).max(1);
        report.ingest_cpu.push((conns, cpu * 1e6 / sent as f64));
        let (per_commit, commit_ms) = relay::Commits::read(addr).since(&commits_before);
        report.ingest_commits.push((conns, per_commit, commit_ms));
        report.rows.push(Row {
            label: INGEST.into(),
            conns,
            r: res,
        });
    }
    report.rss_busy.push((
        "durable ingest, 8 + 64 connections".into(),
        sampler.peak_mib(),
    ));
    drop(sampler);
    r.stop();
}

/// Waits until the robot has accepted `n` messages (or nothing moved for 10 s); returns when.
fn wait_delivered(robot: &FakeRobot, n: usize, rt: &tokio::runtime::Runtime) -> Instant {
    let mut last = robot.accepted_count();
    let mut moved = Instant::now();
    loop {
        let count = robot.accepted_count();
        if count >= n {
            return Instant::now();
        }
        if count != last {
            last = count;
            moved = Instant::now();
        } else if moved.elapsed() > Duration::from_secs(10) {
            eprintln!("  delivery stalled at {count} of {n}");
            return Instant::now();
        }
        rt.block_on(robot.wait_accepted(n, Duration::from_millis(2)));
    }
}

/// Webhooks in at 64 connections while the relay delivers each to an unthrottled fake robot.
fn end_to_end(dir: &Path, s: &Settings, body: &Arc<Vec<u8>>, report: &mut Report) {
    let dir = dir.join("e2e");
    std::fs::create_dir_all(&dir).expect("dir");
    let robot_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("robot runtime");
    let robot = robot_rt.block_on(FakeRobot::start(
        Platform::Feishu,
        // Every message checked in full and counted; their bodies, never read here, are not
        // kept (growing the heap for 100,000 of them was ≈ 15 % of the robot's samples).
        RobotOptions::new(ROBOT_TOKEN)
            .with_secret(ROBOT_SECRET)
            .unthrottled()
            .without_bodies(),
    ));
    let conns = 64;
    let forward = forward_ceiling(&robot, conns, s, body);
    let addr = fresh_addr();
    let config = relay::write_config(
        &dir,
        &dir.join("relay.db"),
        addr,
        &[ChannelSpec {
            name: "robot".into(),
            platform: "feishu",
            url: robot.url(),
            secret: Some(ROBOT_SECRET.into()),
            // `LOAD_ROBOT_RATE` below 10,000/s: the channel sends one message at a time.
            per_second: Some(
                std::env::var("LOAD_ROBOT_RATE")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(100_000),
            ),
            timeout: "15s",
        }],
        1,
    );
    let r = Relay::start(&config, addr, &[], &dir.join("relay.log"));
    if std::env::var_os("LOAD_PAUSE").is_some() {
        eprintln!("relay pid {}: attach a profiler now (10 s)", r.pid());
        std::thread::sleep(Duration::from_secs(10));
    }
    let requests = Requests::new(body);
    let sampler = RssSampler::start(r.pid());
    if s.runs("e2e") {
        report.e2e = Some(closed_loop(
            &r, addr, conns, &requests, &robot, &robot_rt, s,
        ));
    }
    if s.runs("sustained") {
        eprintln!("measuring sustained end to end at {conns} connections");
        let offer = |rate: f64| requests.paced(addr, conns, rate, s.rates.secs);
        let delivered = || robot.accepted_count();
        let wait = |n: usize| wait_delivered(&robot, n, &robot_rt);
        let commits = || relay::Commits::read(addr);
        report.sustained = sustained::run(
            &s.rates,
            &sustained::Harness {
                offer: &offer,
                delivered: &delivered,
                wait_delivered: &wait,
                commits: &commits,
            },
        );
    }
    report.forward = forward;
    let parts = match (s.runs("e2e"), s.runs("sustained")) {
        (true, true) => "the closed loop, then the sustained rates",
        (true, false) => "the closed loop",
        _ => "the sustained rates",
    };
    report.rss_busy.push((
        format!("end to end ({parts}), 64 connections + delivery"),
        sampler.peak_mib(),
    ));
    drop(sampler);
    r.stop();
    robot.clear();
}

/// The closed-loop run: `conns` connections send webhooks as fast as the relay answers for the
/// measured seconds, then the backlog drains.
fn closed_loop(
    r: &Relay,
    addr: SocketAddr,
    conns: usize,
    requests: &Requests,
    robot: &FakeRobot,
    robot_rt: &tokio::runtime::Runtime,
    s: &Settings,
) -> E2e {
    eprintln!("measuring end to end at {conns} connections");
    let started = Instant::now();
    let measure_from = started + s.warmup;
    let (res, at_start) = std::thread::scope(|scope| {
        let counter = scope.spawn(|| {
            std::thread::sleep(measure_from.saturating_duration_since(Instant::now()));
            robot.accepted_count()
        });
        let res = requests.load(addr, conns, s);
        (res, counter.join().expect("counter"))
    });
    let load_end = Instant::now();
    let at_end = robot.accepted_count();
    let cpu_at_end = (
        relay::cpu_seconds(&r.pid().to_string()),
        relay::cpu_seconds("self"),
    );
    // Every request answered 200 is one event with one delivery.
    let expected = (requests.sent() - res.failed) as usize;
    let done = wait_delivered(robot, expected, robot_rt);
    let delivered = robot.accepted_count();
    let drained = delivered.saturating_sub(at_end).max(1) as f64;
    let cpu_us = |now: f64, then: f64| (now - then) * 1e6 / drained;
    let e2e = E2e {
        conns,
        ingest: res.rps(),
        during: (at_end - at_start) as f64 / s.secs as f64,
        drain: delivered.saturating_sub(at_end) as f64
            / done
                .saturating_duration_since(load_end)
                .as_secs_f64()
                .max(1e-3),
        lag: done.saturating_duration_since(load_end),
        overall: delivered as f64 / done.duration_since(started).as_secs_f64(),
        delivered,
        expected,
        rejected: robot.rejected_count(),
        relay_cpu_us: cpu_us(relay::cpu_seconds(&r.pid().to_string()), cpu_at_end.0),
        robot_cpu_us: cpu_us(relay::cpu_seconds("self"), cpu_at_end.1),
    };
    eprintln!(
        "  {:.0} webhooks/s in, {:.0} deliveries/s during the load, lag {:.0} ms, {}/{} delivered, CPU per delivery draining: relay {:.0} µs, robot {:.0} µs",
        e2e.ingest,
        e2e.during,
        e2e.lag.as_secs_f64() * 1000.0,
        e2e.delivered,
        e2e.expected,
        e2e.relay_cpu_us,
        e2e.robot_cpu_us
    );
    e2e
}

/// The synchronous parse-render-POST ceiling against `robot`, which is cleared afterwards.
fn forward_ceiling(
    robot: &FakeRobot,
    conns: usize,
    s: &Settings,
    body: &Arc<Vec<u8>>,
) -> Option<ForwardRun> {
    if std::env::var_os("LOAD_NO_FORWARD").is_some() {
        return None;
    }
    let c = ceiling::start_forward(ceiling::ForwardTo {
        gitee_secret: SOURCE_SECRET.into(),
        robot_url: robot.url(),
        robot_secret: ROBOT_SECRET.into(),
    });
    eprintln!("measuring {FORWARD} at {conns} connections");
    let requests = Requests::new(body);
    let load = requests.load(c.addr, conns, s);
    c.stop();
    let accepted = robot.accepted_count();
    if robot.rejected_count() > 0 {
        eprintln!(
            "  the robot refused {} of the ceiling's messages",
            robot.rejected_count()
        );
    }
    robot.clear();
    Some(ForwardRun {
        load,
        accepted,
        sent: requests.sent(),
    })
}

/// Fills a store with `s.queued` deliveries (events × channels, written directly in big
/// transactions), starts the relay on it with every channel's robot paused, and measures
/// ready time and RSS; then 64 connections of ingest on top of the backlog.
fn queued(dir: &Path, s: &Settings, body: &Arc<Vec<u8>>, report: &mut Report) {
    let dir = dir.join("queued");
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("relay.db");
    let (silent, _silent_thread) = relay::start_silent_robot();
    let channels = paused_channels(s.queue_channels, silent);
    let names: Vec<String> = channels.iter().map(|c| c.name.clone()).collect();
    let events = s.queued.div_ceil(s.queue_channels);
    let deliveries = events * s.queue_channels;
    eprintln!(
        "writing {deliveries} queued deliveries ({events} events × {} channels)",
        s.queue_channels
    );
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Stored as the ingress stores a body (compressed).
    let stored = gitee_relay::store::payload_codec::encode(body);
    rt.block_on(async {
        let store = SqliteStore::open(&db).await.expect("open the store");
        let mut done = 0;
        while done < events {
            let n = 5_000.min(events - done);
            let now = now_ms();
            let batch: Vec<NewEvent> = (0..n)
                .map(|_| NewEvent {
                    source: "bench".into(),
                    kind: EventKind::Push,
                    action: "push".into(),
                    repo: "acme/app".into(),
                    is_test: false,
                    received_ms: now,
                    payload: stored.clone(),
                    channels: names.clone(),
                })
                .collect();
            store.insert_events(&batch).await.expect("insert");
            done += n;
        }
    });
    drop(rt);
    let written_in = started.elapsed();
    let addr = fresh_addr();
    // New webhooks go to one of the channels (one delivery each, like the other runs).
    let config = relay::write_config(&dir, &db, addr, &channels, 1);
    let r = Relay::start(&config, addr, &[], &dir.join("relay.log"));
    std::thread::sleep(Duration::from_secs(3));
    let rss = r.rss_mib();
    eprintln!("measuring {INGEST} at 64 connections with {deliveries} deliveries queued");
    let sampler = RssSampler::start(r.pid());
    let res = Requests::new(body).load(addr, 64, s);
    let rss_busy = sampler.peak_mib();
    drop(sampler);
    report.rows.push(Row {
        label: format!("{INGEST}, {deliveries} deliveries queued"),
        conns: 64,
        r: res,
    });
    report.queued = Some(Queued {
        deliveries,
        written_in,
        ready: r.ready_after,
        rss,
        rss_busy,
    });
    r.stop();
}

/// Start → `/readyz` 200 with the shipped `config.yaml` (dry-run channels), a fresh data
/// folder each time, `runs` times; milliseconds.
fn shipped_ready(dir: &Path, runs: usize) -> Vec<f64> {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.yaml");
    (0..runs)
        .map(|i| {
            let d = dir.join(format!("shipped-{i}"));
            std::fs::create_dir_all(&d).expect("dir");
            std::fs::copy(&shipped, d.join("config.yaml")).expect("copy");
            let addr = fresh_addr();
            let r = Relay::start(
                &d.join("config.yaml"),
                addr,
                &[("GITEE_RELAY_LISTEN", addr.to_string())],
                &d.join("relay.log"),
            );
            let ms = r.ready_after.as_secs_f64() * 1000.0;
            r.stop();
            ms
        })
        .collect()
}

/// The sustained run's table: one row per offered rate, then the highest rate kept up.
fn print_sustained(steps: &[sustained::Step], ceiling: f64) {
    println!();
    println!(
        "## Sustained end to end (webhooks offered at a fixed rate, 64 connections; kept up: all accepted, ≥ {:.0} % of the rate delivered meanwhile, the last within {} ms of the step's end)",
        sustained::DELIVERED_SHARE * 100.0,
        sustained::LAG_BOUND.as_millis()
    );
    println!();
    println!(
        "| offered webhooks/s | accepted | ack p50 / p99 ms (from when due) | group commit ms (webhooks each) | deliveries/s at the robot | lag after the step | kept up |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---|");
    for step in steps {
        println!(
            "| {:.0} | {} of {:.0} ({} failed) | {:.2} / {:.2} | {:.2} ({:.1}) | {:.0} | {:.0} ms | {} |",
            step.rate,
            step.load.ok,
            step.rate * step.load.seconds,
            step.load.failed,
            step.load.p50_ms(),
            step.load.p99_ms(),
            step.commit_ms,
            step.per_commit,
            step.delivered_per_s,
            step.lag.as_secs_f64() * 1000.0,
            if step.kept_up() { "yes" } else { "no" }
        );
    }
    let rate = sustained::sustained(steps).unwrap_or(0.0);
    println!();
    println!(
        "Sustained: {rate:.0} webhooks/s in and deliveries/s out ({} of the {TARGET_E2E:.0}/s target{}).",
        ratio(rate, TARGET_E2E),
        if ceiling > 0.0 {
            format!(
                ", {} of the synchronous ceiling's {ceiling:.0}/s",
                ratio(rate, ceiling)
            )
        } else {
            String::new()
        }
    );
}

fn find<'a>(rows: &'a [Row], label: &str, conns: usize) -> Option<&'a Row> {
    rows.iter().find(|r| r.label == label && r.conns == conns)
}

fn print_report(report: &Report) {
    let rows = &report.rows;
    let rps = |r: Option<&Row>| r.map_or(0.0, |r| r.r.rps());
    let p99 = |r: Option<&Row>| r.map_or(0.0, |r| r.r.p99_ms());
    println!();
    println!("## Ingest (ratios against the ceilings at the same number of connections)");
    println!();
    println!(
        "| endpoint | conns | req/s | ack p50 ms | ack p99 ms | req/s vs bare | req/s vs append | p99 vs append |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let bare = find(rows, BARE, row.conns);
        let append = find(rows, APPEND, row.conns);
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} |",
            row.label,
            row.conns,
            row.r.rps(),
            row.r.p50_ms(),
            row.r.p99_ms(),
            ratio(row.r.rps(), rps(bare)),
            ratio(row.r.rps(), rps(append)),
            ratio(row.r.p99_ms(), p99(append)),
        );
    }
    if !report.ingest_cpu.is_empty() {
        let per: Vec<String> = report
            .ingest_cpu
            .iter()
            .map(|(conns, us)| format!("{us:.0} µs at {conns} connections"))
            .collect();
        println!();
        println!(
            "Relay CPU per webhook (user + system, warm-up included): {}.",
            per.join(", ")
        );
    }
    if !report.ingest_commits.is_empty() {
        let per: Vec<String> = report
            .ingest_commits
            .iter()
            .map(|(conns, events, ms)| {
                format!("{events:.1} webhooks per commit, {ms:.2} ms each at {conns} connections")
            })
            .collect();
        println!(
            "Group commits (the relay's `gitee_relay_ingest_commit_*` metrics): {}.",
            per.join("; ")
        );
    }
    let ceiling = report.forward.as_ref().map_or(0.0, |f| f.load.rps());
    if report.forward.is_some() || report.e2e.is_some() {
        println!();
        println!(
            "## End to end (webhook in → signed POST accepted by an unthrottled fake Feishu robot)"
        );
        println!();
        println!("| figure | value | vs target {TARGET_E2E:.0}/s | vs synchronous ceiling |");
        println!("|---|---:|---:|---:|");
    }
    if let Some(ForwardRun {
        load: r,
        accepted,
        sent,
    }) = &report.forward
    {
        println!(
            "| {FORWARD}: deliveries/s at 64 connections (ack p50 / p99 {:.2} / {:.2} ms; the robot accepted {} of {} requests, warm-up included) | {:.0} | {} | 1.00× |",
            r.p50_ms(),
            r.p99_ms(),
            accepted,
            sent,
            r.rps(),
            ratio(r.rps(), TARGET_E2E)
        );
    }
    if let Some(e) = &report.e2e {
        println!(
            "| webhooks/s accepted during the {}-connection load | {:.0} | | |",
            e.conns, e.ingest
        );
        println!(
            "| deliveries/s at the robot during the load | {:.0} | {} | {} |",
            e.during,
            ratio(e.during, TARGET_E2E),
            ratio(e.during, ceiling)
        );
        println!(
            "| lag from the end of the load to the last delivery | {:.0} ms | | |",
            e.lag.as_secs_f64() * 1000.0
        );
        println!(
            "| deliveries/s after the load (the backlog draining, no ingest) | {:.0} | {} | {} |",
            e.drain,
            ratio(e.drain, TARGET_E2E),
            ratio(e.drain, ceiling)
        );
        println!(
            "| deliveries/s overall (first request → last delivery) | {:.0} | {} | {} |",
            e.overall,
            ratio(e.overall, TARGET_E2E),
            ratio(e.overall, ceiling)
        );
        println!(
            "| delivered / accepted webhooks (robot refusals) | {} / {} ({}) | | |",
            e.delivered, e.expected, e.rejected
        );
        println!(
            "| CPU per delivery while draining: relay / fake robot (+ harness) | {:.0} µs / {:.0} µs | | |",
            e.relay_cpu_us, e.robot_cpu_us
        );
    }
    if !report.sustained.is_empty() {
        print_sustained(&report.sustained, ceiling);
    }
    println!();
    println!("## Memory and start");
    println!();
    println!("| figure | value | target |");
    println!("|---|---:|---:|");
    if let Some(rss) = report.rss_idle {
        println!(
            "| RSS idle (started, 1 s) | {rss:.1} MiB | ≤ {TARGET_RSS_IDLE} MiB ({}) |",
            verdict(rss <= TARGET_RSS_IDLE)
        );
    }
    for (what, rss) in &report.rss_busy {
        println!(
            "| RSS peak, {what} | {rss:.1} MiB | ≤ {TARGET_RSS_BUSY} MiB ({}) |",
            verdict(*rss <= TARGET_RSS_BUSY)
        );
    }
    if let Some(q) = &report.queued {
        println!(
            "| RSS with {} deliveries queued (3 s after ready; written in {:.1} s) | {:.1} MiB | ≤ {TARGET_RSS_BUSY} MiB ({}) |",
            q.deliveries,
            q.written_in.as_secs_f64(),
            q.rss,
            verdict(q.rss <= TARGET_RSS_BUSY)
        );
        println!(
            "| RSS peak with {} queued, under 64-connection ingest | {:.1} MiB | ≤ {TARGET_RSS_BUSY} MiB ({}) |",
            q.deliveries,
            q.rss_busy,
            verdict(q.rss_busy <= TARGET_RSS_BUSY)
        );
    }
    if !report.ready.is_empty() {
        let ready = &report.ready;
        println!(
            "| start → /readyz 200, shipped config (median of {}; max) | {:.1} ms ({:.1}) | ≤ {TARGET_READY_MS} ms ({}) |",
            ready.len(),
            median(ready),
            ready.iter().copied().fold(0.0, f64::max),
            verdict(median(ready) <= TARGET_READY_MS)
        );
    }
    if let Some(ready) = report.bench_ready {
        println!(
            "| start → /readyz 200, bench config, empty store | {:.1} ms | |",
            ready.as_secs_f64() * 1000.0
        );
    }
    if let Some(q) = &report.queued {
        println!(
            "| start → /readyz 200 with {} deliveries queued | {:.1} ms | |",
            q.deliveries,
            q.ready.as_secs_f64() * 1000.0
        );
    }
    println!();
    println!("## Targets");
    println!();
    if let (Some(a), Some(r)) = (find(rows, APPEND, 64), find(rows, INGEST, 64)) {
        println!(
            "- durable ingest at 64 connections ≥ 1.0× the append ceiling: {} ({})",
            ratio(r.r.rps(), a.r.rps()),
            verdict(r.r.rps() >= a.r.rps())
        );
    }
    if let (Some(a), Some(r)) = (find(rows, APPEND, 8), find(rows, INGEST, 8)) {
        println!(
            "- ack p99 at 8 connections ≤ the append ceiling's: {:.2} ms vs {:.2} ms ({})",
            r.r.p99_ms(),
            a.r.p99_ms(),
            verdict(r.r.p99_ms() <= a.r.p99_ms())
        );
    }
    if let Some(e) = &report.e2e {
        println!(
            "- end to end ≥ {TARGET_E2E:.0} deliveries/s: {:.0} during the load ({})",
            e.during,
            verdict(e.during >= TARGET_E2E)
        );
        if let Some(ForwardRun { load: r, .. }) = &report.forward {
            let scaled = TARGET_E2E_OF_FORWARD * r.rps();
            println!(
                "- end to end ≥ {TARGET_E2E_OF_FORWARD}× the synchronous ceiling of this run ({:.0} × {TARGET_E2E_OF_FORWARD} = {scaled:.0}/s; the issue's 15,000 is this ratio on its machine): {:.0} during the load, {:.2}× ({})",
                r.rps(),
                e.during,
                e.during / r.rps().max(1.0),
                verdict(e.during >= scaled)
            );
        }
    }
    if !report.sustained.is_empty() {
        let rate = sustained::sustained(&report.sustained).unwrap_or(0.0);
        println!(
            "- end to end ≥ {TARGET_E2E:.0} deliveries/s, sustained (the highest rate kept up): {rate:.0} ({}){}",
            verdict(rate >= TARGET_E2E),
            if ceiling > 0.0 {
                format!(", {} of the synchronous ceiling", ratio(rate, ceiling))
            } else {
                String::new()
            }
        );
    }
    let busy = report
        .rss_busy
        .iter()
        .map(|(_, r)| *r)
        .chain(report.queued.iter().flat_map(|q| [q.rss, q.rss_busy]))
        .fold(0.0, f64::max);
    if let Some(idle) = report.rss_idle {
        println!(
            "- RSS ≤ {TARGET_RSS_IDLE} MiB idle, ≤ {TARGET_RSS_BUSY} MiB under load and queued: {idle:.1} / {busy:.1} MiB ({})",
            verdict(idle <= TARGET_RSS_IDLE && busy <= TARGET_RSS_BUSY)
        );
    }
    if !report.ready.is_empty() {
        println!(
            "- ready ≤ {TARGET_READY_MS} ms: {:.1} ms ({})",
            median(&report.ready),
            verdict(median(&report.ready) <= TARGET_READY_MS)
        );
    }
}
