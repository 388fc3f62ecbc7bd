//! Micro-benchmarks of the per-webhook and per-delivery CPU work:
//!
//! * `verify/*`: Gitee authentication of one delivery (signature mode: HMAC-SHA256 + base64 +
//!   constant-time compare; password mode: constant-time compare);
//! * `parse/<sample>`: one body, from bytes to the typed [`Delivery`] (every built-in sample,
//!   so every event kind and variant), and `parse/push_as_json_value_only`, the push body into
//!   a `serde_json::Value` alone (the first of the two steps), and `parse/push_skipped_only`,
//!   serde_json reading the push body while keeping nothing (the floor of any parse);
//! * `render/<platform>/<n>_commit`: a push with 1 and with 100 commits, from the stored
//!   bytes to the platform's JSON body (parse + context + template + size fitting), exactly
//!   what the dispatcher does per delivery;
//! * `sign/<platform>`: the platform's `prepare` (keyword, timestamp, signature) of a rendered
//!   body.
//!
//! Before the timings, a table of **heap allocations per operation** (a counting wrapper
//! around the allocator; 200 runs each, after one warm-up run) for the per-webhook and
//! per-delivery work, each beside its baseline: the two-step parse (JSON tree, then typed)
//! rendering with `raw` in the context (what a template that reads `raw` costs), and with
//! the inline partials not spliced (an override copy of the built-in template).
//!
//! `cargo bench --bench micro` (about a minute: short warm-up and measurement times). Filter
//! with a substring: `cargo bench --bench micro -- render/feishu`.
//!
//! [`Delivery`]: gitee_relay::gitee::payload::Delivery

// The relay binary's allocator, so the figures are the binary's, behind a counter (one
// relaxed atomic add per allocation: a few ns).
#[global_allocator]
static GLOBAL: Counting = Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

struct Counting;

impl Counting {
    fn count(size: usize) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(size as u64, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed on unchanged to mimalloc.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size());
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size());
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::count(new_size);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gitee_relay::gitee::EventKind;
use gitee_relay::gitee::auth::{self, SourceAuth};
use gitee_relay::message::{self, Target};
use gitee_relay::platform::{PlatformKind, SendTarget, platform};
use gitee_relay::render::TemplateSet;
use gitee_relay::samples;
use serde_json::Value;

/// A push body with `n` commits, built from the `push` sample (commits cycled, ids made
/// unique), compact as Gitee sends it.
fn push_with_commits(n: usize) -> Vec<u8> {
    let sample = samples::find("push").expect("the push sample exists");
    let mut body: Value = serde_json::from_str(sample.body).expect("the sample is JSON");
    let commits = body["commits"].as_array().expect("commits").clone();
    let many: Vec<Value> = (0..n)
        .map(|i| {
            let mut c = commits[i % commits.len()].clone();
            c["id"] = Value::String(format!("{i:040x}"));
            c
        })
        .collect();
    body["head_commit"] = many.last().cloned().unwrap_or(Value::Null);
    body["commits"] = Value::Array(many);
    body["total_commits_count"] = Value::from(n);
    body["commits_more_than_ten"] = Value::Bool(n > 10);
    serde_json::to_vec(&body).expect("serialises")
}

/// Gitee sends compact JSON; the samples are pretty-printed for reading.
fn compact(text: &str) -> Vec<u8> {
    let v: Value = serde_json::from_str(text).expect("the sample is JSON");
    serde_json::to_vec(&v).expect("serialises")
}

/// Allocations and bytes allocated per run of `op` (mean of 200 runs after a warm-up run).
fn allocations_of(mut op: impl FnMut()) -> (f64, f64) {
    op();
    let (n0, b0) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        ALLOCATED_BYTES.load(Ordering::Relaxed),
    );
    const RUNS: u64 = 200;
    for _ in 0..RUNS {
        op();
    }
    let n = ALLOCATIONS.load(Ordering::Relaxed) - n0;
    let b = ALLOCATED_BYTES.load(Ordering::Relaxed) - b0;
    (n as f64 / RUNS as f64, b as f64 / RUNS as f64)
}

/// Prints the allocations table (see the module documentation).
fn allocations(_: &mut Criterion) {
    let push = compact(samples::find("push").expect("push sample").body);
    let render_with = |set: &TemplateSet, body: &[u8]| {
        message::render(
            set,
            EventKind::Push,
            body,
            "gitee",
            false,
            1_764_000_000_000,
            &Target::nobody(),
        )
        .unwrap();
    };
    // An override partial that mentions `raw` puts it back into every context.
    let raw_dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(raw_dir.path().join("feishu")).expect("dir");
    std::fs::write(
        raw_dir.path().join("feishu/_uses_raw.hbs"),
        "{{raw.hook_name}}",
    )
    .expect("write");
    // The built-in push template as an override file: compiled as written, so every
    // `{{> part}}` goes through Handlebars' partials (built-ins are spliced, see render::inline).
    let partials_dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(partials_dir.path().join("feishu")).expect("dir");
    let (_, push_template) = gitee_relay::render::builtin::templates(PlatformKind::Feishu)
        .iter()
        .find(|(name, _)| *name == "push")
        .expect("feishu push template");
    std::fs::write(partials_dir.path().join("feishu/push.hbs"), push_template).expect("write");
    let feishu_partials =
        TemplateSet::load(PlatformKind::Feishu, Some(partials_dir.path())).expect("load");
    let feishu = TemplateSet::builtin(PlatformKind::Feishu);
    let feishu_raw = TemplateSet::load(PlatformKind::Feishu, Some(raw_dir.path())).expect("load");
    assert!(feishu_raw.uses_raw() && !feishu.uses_raw());
    let (one, hundred) = (push_with_commits(1), push_with_commits(100));
    type Row = (&'static str, (f64, f64), &'static str, (f64, f64));
    // Measured once, shown beside both of its baselines.
    let one_commit = allocations_of(|| render_with(&feishu, &one));
    let rows: Vec<Row> = vec![
        (
            "parse push (7.4 KB), one pass",
            allocations_of(|| {
                black_box(gitee_relay::gitee::payload::parse(EventKind::Push, &push).unwrap());
            }),
            "two steps (JSON tree, then typed)",
            allocations_of(|| {
                let raw = gitee_relay::gitee::payload::parse_json(&push).unwrap();
                black_box(gitee_relay::gitee::payload::parse_value(EventKind::Push, &raw).unwrap());
            }),
        ),
        (
            "render feishu, 1-commit push",
            one_commit,
            "with `raw` in the context",
            allocations_of(|| render_with(&feishu_raw, &one)),
        ),
        (
            "render feishu, 1-commit push",
            one_commit,
            "not spliced (partials copy the context)",
            allocations_of(|| render_with(&feishu_partials, &one)),
        ),
        (
            "render feishu, 100-commit push",
            allocations_of(|| render_with(&feishu, &hundred)),
            "with `raw` in the context",
            allocations_of(|| render_with(&feishu_raw, &hundred)),
        ),
    ];
    println!();
    println!(
        "| operation | allocations | bytes allocated | baseline | allocations | bytes allocated |"
    );
    println!("|---|---:|---:|---|---:|---:|");
    for (name, (n, b), baseline, (bn, bb)) in rows {
        println!("| {name} | {n:.0} | {b:.0} | {baseline} | {bn:.0} | {bb:.0} |");
    }
    println!();
}

fn verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("verify");
    let secret = "gitee-relay-demo-secret";
    let now = 1_764_000_000_000_i64;
    let ts = now.to_string();
    let token = auth::gitee_signature(secret, &ts);
    let signature = SourceAuth::Signature {
        secret: secret.to_owned(),
    };
    g.bench_function("signature", |b| {
        b.iter(|| {
            auth::verify(
                black_box(&signature),
                Some(black_box(token.as_str())),
                Some(black_box(ts.as_str())),
                now,
                auth::DEFAULT_MAX_SKEW_MS,
            )
        })
    });
    let password = SourceAuth::Password {
        password: secret.to_owned(),
    };
    g.bench_function("password", |b| {
        b.iter(|| {
            auth::verify(
                black_box(&password),
                Some(black_box(secret)),
                None,
                now,
                auth::DEFAULT_MAX_SKEW_MS,
            )
        })
    });
    g.finish();
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    // The floor of a parse through a JSON tree: serde_json into `Value`, nothing else.
    let push = compact(samples::find("push").expect("push sample").body);
    g.bench_function("push_as_json_value_only", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&push)).unwrap())
    });
    // The floor of any parse: serde_json reading every byte and keeping nothing.
    let text = std::str::from_utf8(&push).expect("UTF-8");
    g.bench_function("push_skipped_only", |b| {
        b.iter(|| serde_json::from_str::<serde::de::IgnoredAny>(black_box(text)).unwrap())
    });
    for sample in samples::all() {
        let body = compact(sample.body);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(sample.name, |b| {
            b.iter(|| gitee_relay::gitee::payload::parse(sample.kind, black_box(&body)).unwrap())
        });
    }
    g.finish();
}

fn render(c: &mut Criterion) {
    let mut g = c.benchmark_group("render");
    let bodies = [(1, push_with_commits(1)), (100, push_with_commits(100))];
    for p in PlatformKind::ALL {
        let set = TemplateSet::builtin(p);
        for (n, body) in &bodies {
            g.bench_function(format!("{}/{n}_commit", p.as_str()), |b| {
                b.iter(|| {
                    message::render(
                        &set,
                        EventKind::Push,
                        black_box(body),
                        "gitee",
                        false,
                        1_764_000_000_000,
                        &Target::nobody(),
                    )
                    .unwrap()
                })
            });
        }
    }
    g.finish();
}

fn sign(c: &mut Criterion) {
    let mut g = c.benchmark_group("sign");
    let body = push_with_commits(1);
    for p in PlatformKind::ALL {
        let set = TemplateSet::builtin(p);
        let rendered = message::render(
            &set,
            EventKind::Push,
            &body,
            "gitee",
            false,
            1_764_000_000_000,
            &Target::nobody(),
        )
        .unwrap();
        let (url, secret) = match p {
            PlatformKind::Dingtalk => (
                "https://oapi.dingtalk.com/robot/send?access_token=bench-token",
                Some("SECbench-secret"),
            ),
            PlatformKind::Wecom => (
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=bench-key",
                None,
            ),
            PlatformKind::Feishu => (
                "https://open.feishu.cn/open-apis/bot/v2/hook/bench-hook",
                Some("bench-secret"),
            ),
            PlatformKind::Slack => ("https://hooks.slack.com/services/T000/B000/bench", None),
        };
        let target = SendTarget {
            url,
            secret,
            keyword: None,
        };
        let imp = platform(p);
        g.bench_function(p.as_str(), |b| {
            b.iter_batched(
                || rendered.clone(),
                |body| imp.prepare(&target, body, SystemTime::now()).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// What a group commit costs on its own (no HTTP, no other load): `SqliteStore::insert_events`
/// of 1, 4 and 32 push events (7.4 KB bodies, one channel) into a file database, stored as the
/// ingress stores them (compressed, `payload_codec`), beside two baselines: the same events
/// stored uncompressed, and the file-append ceiling's work for the same bodies (one `write`,
/// one `fdatasync`). Plus the codec itself.
fn commit(c: &mut Criterion) {
    use gitee_relay::store::{NewEvent, SqliteStore, Store, payload_codec};
    use std::io::Write;

    let push = compact(samples::find("push").expect("push sample").body);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temporary folder");
    let store = rt
        .block_on(SqliteStore::open(&dir.path().join("relay.db")))
        .expect("store opens");
    let raw = NewEvent {
        source: "gitee".into(),
        kind: EventKind::Push,
        action: "push".into(),
        repo: "oschina/gitee-relay".into(),
        is_test: false,
        received_ms: 1_764_000_000_000,
        payload: push.clone(),
        channels: vec!["team".into()],
    };
    let stored = NewEvent {
        payload: payload_codec::encode(&push),
        ..raw.clone()
    };
    println!(
        "stored payload of the {}-byte push: {} bytes",
        push.len(),
        stored.payload.len()
    );
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("append.log"))
        .expect("log file");
    let mut g = c.benchmark_group("commit");
    g.bench_function("codec/encode_push", |b| {
        b.iter(|| payload_codec::encode(black_box(&push)))
    });
    g.bench_function("codec/decode_push", |b| {
        b.iter_batched(
            || stored.payload.clone(),
            |bytes| payload_codec::decode(bytes).expect("decodes"),
            BatchSize::SmallInput,
        )
    });
    for n in [1usize, 4, 32] {
        for (name, event) in [("sqlite", &stored), ("sqlite_uncompressed", &raw)] {
            let events = vec![event.clone(); n];
            g.bench_function(format!("{name}/{n}_events"), |b| {
                b.iter(|| rt.block_on(store.insert_events(&events)).expect("commits"))
            });
        }
        let bytes = push.repeat(n);
        g.bench_function(format!("append_fdatasync/{n}_events"), |b| {
            b.iter(|| {
                log.write_all(&bytes).expect("writes");
                log.sync_data().expect("syncs");
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30)
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = allocations, verify, parse, render, sign, commit
}
criterion_main!(benches);
