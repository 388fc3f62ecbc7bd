//! Micro-benchmarks of the per-webhook and per-delivery CPU work:
//!
//! * `verify/*`: Gitee authentication of one delivery (signature mode: HMAC-SHA256 + base64 +
//!   constant-time compare; password mode: constant-time compare);
//! * `parse/<sample>`: one body, from bytes to the typed [`Delivery`] (every built-in sample,
//!   so every event kind and variant), and `parse/push_as_json_value_only`, the push body into
//!   a `serde_json::Value` alone (the first of the two steps);
//! * `render/<platform>/<n>_commit`: a push with 1 and with 100 commits, from the stored
//!   bytes to the platform's JSON body (parse + context + template + size fitting), exactly
//!   what the dispatcher does per delivery;
//! * `sign/<platform>`: the platform's `prepare` (keyword, timestamp, signature) of a rendered
//!   body.
//!
//! `cargo bench --bench micro` (about a minute: short warm-up and measurement times). Filter
//! with a substring: `cargo bench --bench micro -- render/feishu`.
//!
//! [`Delivery`]: gitee_relay::gitee::payload::Delivery

// The relay binary's allocator, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
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
    targets = verify, parse, render, sign
}
criterion_main!(benches);
