//! Fuzzing on the stable toolchain (no libFuzzer): a seeded, time-bounded mutation driver per
//! target, run as ordinary tests. See FUZZING.md.
//!
//! * `webhook`   — headers and body through `ingress::check_headers` and `ingress::parse_body`
//!   (the endpoint's own decisions), then the template context of every accepted body.
//! * `signature` — `auth::verify` and `gitee_signature` against an independent HMAC-SHA256.
//! * `render`    — hostile payload text through `message::render` for every platform's
//!   built-in templates: every body the parser accepts must render, within the platform's
//!   limits, without the body's password.
//! * `config`    — `Config::from_yaml` on mutated configs (aliases, nesting, `${VAR}`s...).
//!
//! Environment: `GITEE_RELAY_FUZZ_SECS` (per target, default 3), `GITEE_RELAY_FUZZ_SEED`
//! (default: random, printed), `GITEE_RELAY_FUZZ_REPLAY=<file>` (run one saved input and
//! stop). A failing input is saved under `target/fuzz/crashes/`; the input being run is
//! always in `target/fuzz/<target>.current` (what a stack overflow or a hang was running).
//! Every file under `fuzz/regressions/<target>/` is replayed first, every run.

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine as _;
use gitee_relay::config::Config;
use gitee_relay::gitee::EventKind;
use gitee_relay::gitee::auth::{self, SourceAuth, gitee_signature};
use gitee_relay::gitee::payload::{self, hook_title};
use gitee_relay::http::ingress::{check_headers, parse_body};
use gitee_relay::message::{self, Audience, Target as RenderTarget};
use gitee_relay::platform::PlatformKind;
use gitee_relay::render::{TemplateSet, limits};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------
// Inputs: a few byte fields, saved as length-prefixed frames
// ---------------------------------------------------------------------------------------

type Input = Vec<Vec<u8>>;

const MAGIC: &[u8] = b"GRFZ1\n";

fn encode(input: &Input) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for field in input {
        out.extend_from_slice(&(field.len() as u32).to_le_bytes());
        out.extend_from_slice(field);
    }
    out
}

fn decode(bytes: &[u8]) -> Option<Input> {
    let mut rest = bytes.strip_prefix(MAGIC)?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        out.push(rest.get(4..4 + len)?.to_vec());
        rest = &rest[4 + len..];
    }
    Some(out)
}

fn field(input: &Input, i: usize) -> &[u8] {
    input.get(i).map_or(&[], Vec::as_slice)
}

fn byte(input: &Input, i: usize) -> u8 {
    field(input, i).first().copied().unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Mutation
// ---------------------------------------------------------------------------------------

/// Text that has broken chat robots, templates and parsers before.
fn hostile_strings() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        " ",
        "\0",
        "\r\n",
        "\n\n\n\n",
        "\"",
        "\\",
        "\\\"",
        "'",
        "{{",
        "}}",
        "{{{x}}}",
        "{{> partial}}",
        "{{#each this}}{{@key}}{{/each}}",
        "{{lookup this \"password\"}}",
        "<!channel>",
        "<!here|here>",
        "<!everyone>",
        "@all",
        "<at user_id=\"all\">所有人</at>",
        "<@U0123>",
        "[click](javascript:alert(1))",
        "](https://evil.example)",
        "<script>alert(1)</script>",
        "&amp;&lt;&gt;",
        "&<>",
        "*_~`>",
        "```\ncode\n```",
        "# title",
        "\u{202e}gnp.exe",
        "\u{feff}",
        "\u{fffd}",
        "\u{200b}",
        "e\u{301}",
        "%s%n%x",
        "${GITEE_SECRET}",
        "0",
        "-1",
        "1e308",
        "NaN",
        "true",
        "null",
        "0000000000000000000000000000000000000000",
        "00000000",
        "refs/heads/",
        "refs/tags/",
        "refs/heads/feature/../../main",
        "..",
        "/",
        "\t",
        "张爱丽",
        "密钥🔑",
        "Push Hook",
        "push_hooks",
        "Merge Request Hook",
        "note_hooks",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("a".repeat(70_000));
    v.push("长".repeat(30_000));
    v.push("🔑".repeat(5_000));
    v.push("\u{301}".repeat(3_000));
    v.push("x\n".repeat(2_000));
    v.push("<".repeat(10_000));
    v.push("\\".repeat(4_000));
    v.push("@all ".repeat(500));
    v
}

fn dictionary() -> Vec<Vec<u8>> {
    let mut d: Vec<Vec<u8>> = [
        "{",
        "}",
        "[",
        "]",
        "\"",
        ":",
        ",",
        "null",
        "true",
        "false",
        "1e999",
        "-0",
        "0.5",
        "\\u0000",
        "\\ud800",
        "\\\"",
        "\"hook_name\"",
        "\"push_hooks\"",
        "\"commits\"",
        "\"repository\"",
        "\"sender\"",
        "\"password\"",
        "\"ref\"",
        "\"refs/heads/main\"",
        "{{",
        "}}",
        "\r\n",
        "\0",
        "\u{ff}",
        "99999999999999999999",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    d.push(vec![0xff, 0xfe]);
    d.push(vec![0xc0, 0x80]);
    d.push(vec![0xed, 0xa0, 0x80]);
    d
}

struct Mutator {
    rng: fastrand::Rng,
    hostile: Vec<String>,
    dict: Vec<Vec<u8>>,
}

impl Mutator {
    fn new(seed: u64) -> Mutator {
        Mutator {
            rng: fastrand::Rng::with_seed(seed),
            hostile: hostile_strings(),
            dict: dictionary(),
        }
    }

    fn bytes(&mut self, data: &mut Vec<u8>, other: &[u8]) {
        let r = &mut self.rng;
        let n = 1 + r.usize(..4);
        for _ in 0..n {
            let len = data.len();
            match r.u8(..10) {
                0 if len > 0 => {
                    let i = r.usize(..len);
                    data[i] ^= 1 << r.u8(..8);
                }
                1 if len > 0 => {
                    let i = r.usize(..len);
                    data[i] = *r
                        .choice(&[0u8, 0x7f, 0x80, 0xff, b'"', b'\\', b'{', b'[', b'0', b'\n'])
                        .unwrap();
                }
                2 => {
                    let at = r.usize(..=len);
                    let extra: Vec<u8> = (0..r.usize(1..32)).map(|_| r.u8(..)).collect();
                    data.splice(at..at, extra);
                }
                3 if len > 0 => {
                    let a = r.usize(..len);
                    let b = (a + r.usize(1..=len.min(64))).min(len);
                    data.drain(a..b);
                }
                4 if len > 0 => {
                    let a = r.usize(..len);
                    let b = (a + r.usize(1..=len.min(256))).min(len);
                    let chunk = data[a..b].to_vec();
                    let at = r.usize(..=data.len());
                    data.splice(at..at, chunk);
                }
                5 if !other.is_empty() => {
                    let a = r.usize(..other.len());
                    let b = (a + r.usize(1..=other.len().min(512))).min(other.len());
                    let at = r.usize(..=len);
                    let cut = if r.bool() { len } else { at };
                    data.truncate(cut.max(at));
                    data.splice(at..at, other[a..b].iter().copied());
                }
                6 => {
                    let tok = r.choice(&self.dict).unwrap().clone();
                    let at = r.usize(..=len);
                    data.splice(at..at, tok);
                }
                7 if len > 0 => data.truncate(r.usize(..len)),
                8 if len > 0 => {
                    // Repeat a small chunk many times (nesting, long runs).
                    let a = r.usize(..len);
                    let b = (a + r.usize(1..=len.min(8))).min(len);
                    let chunk = data[a..b].to_vec();
                    let times = r.usize(1..300);
                    let at = r.usize(..=len);
                    data.splice(at..at, chunk.repeat(times));
                }
                _ => {
                    let s = r.choice(&self.hostile).unwrap().clone();
                    let at = r.usize(..=len);
                    data.splice(at..at, s.into_bytes());
                }
            }
        }
        data.truncate(8 << 20);
    }

    fn hostile_value(&mut self) -> Value {
        let r = &mut self.rng;
        match r.u8(..14) {
            0..=5 => Value::String(r.choice(&self.hostile).unwrap().clone()),
            6 => json!(*r.choice(&[i64::MIN, -1, 0, 1, i64::MAX]).unwrap()),
            7 => json!(u64::MAX),
            8 => json!(*r.choice(&[0.5, -0.0, 1e300, -1e-300, 3.0]).unwrap()),
            9 => Value::Bool(r.bool()),
            10 => Value::Null,
            11 => json!([]),
            12 => json!({}),
            _ => {
                let s: String = (0..r.usize(1..40))
                    .map(|_| char::from_u32(r.u32(..0x11_0000)).unwrap_or('\u{fffd}'))
                    .collect();
                Value::String(s)
            }
        }
    }

    /// A structure-aware change: a random node of the JSON gets hostile content.
    fn json(&mut self, v: &mut Value) {
        let n = 1 + self.rng.usize(..3);
        for _ in 0..n {
            let count = count_nodes(v).min(4096);
            let pick = self.rng.usize(..count.max(1));
            let op = self.rng.u8(..10);
            let replacement = self.hostile_value();
            let depth = self.rng.usize(1..140);
            let key = self.rng.choice(&self.hostile).unwrap().clone();
            let times = self.rng.usize(1..200);
            let rng_bool = self.rng.bool();
            let Some(node) = nth_node(v, pick) else {
                continue;
            };
            match op {
                0..=3 => *node = replacement,
                4 => {
                    // Nest the node `depth` levels deep (the parser's limit is 128).
                    let mut inner = node.take();
                    for _ in 0..depth {
                        inner = if rng_bool {
                            json!([inner])
                        } else {
                            json!({ "a": inner })
                        };
                    }
                    *node = inner;
                }
                5 => {
                    if let Value::Object(map) = node
                        && !map.is_empty()
                    {
                        let k = map.keys().nth(pick % map.len()).unwrap().clone();
                        map.remove(&k);
                    }
                }
                6 => {
                    if let Value::Object(map) = node {
                        map.insert(key.chars().take(64).collect(), replacement);
                    }
                }
                7 => *node = Value::Array(vec![node.clone(); times.min(64)]),
                8 => {
                    // Change the JSON type but keep the text.
                    *node = match node.take() {
                        Value::String(s) => s
                            .parse::<i64>()
                            .map(Value::from)
                            .unwrap_or(Value::Array(vec![Value::String(s)])),
                        Value::Number(n) => Value::String(n.to_string()),
                        Value::Bool(b) => Value::String(b.to_string()),
                        other => Value::String(other.to_string().chars().take(200).collect()),
                    }
                }
                _ => {
                    if let Value::String(s) = node {
                        s.push_str(&key);
                    } else {
                        *node = replacement;
                    }
                }
            }
        }
    }

    /// Mutates one field: JSON-aware when it parses as JSON and `json` allows, else bytes.
    fn field(&mut self, data: &mut Vec<u8>, other: &[u8], json: bool) {
        if json
            && self.rng.u8(..10) < 7
            && let Ok(mut v) = serde_json::from_slice::<Value>(data)
        {
            self.json(&mut v);
            *data = if self.rng.bool() {
                serde_json::to_vec(&v).unwrap()
            } else {
                serde_json::to_vec_pretty(&v).unwrap()
            };
            return;
        }
        self.bytes(data, other);
    }
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(m) => m.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// The `n`th node in pre-order (the root is 0).
fn nth_node(v: &mut Value, n: usize) -> Option<&mut Value> {
    fn walk<'a>(v: &'a mut Value, n: &mut usize) -> Option<&'a mut Value> {
        if *n == 0 {
            return Some(v);
        }
        *n -= 1;
        match v {
            Value::Array(a) => a.iter_mut().find_map(|c| walk(c, n)),
            Value::Object(m) => m.values_mut().find_map(|c| walk(c, n)),
            _ => None,
        }
    }
    let mut n = n;
    walk(v, &mut n)
}

// ---------------------------------------------------------------------------------------
// Seeds
// ---------------------------------------------------------------------------------------

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.json` under the folder, recursively.
fn json_files(dir: &Path, out: &mut Vec<Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json")
            && let Ok(bytes) = std::fs::read(&p)
        {
            out.push(bytes);
        }
    }
}

/// Our samples and fixtures, and the shared real captures when that folder exists.
fn payload_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for dir in [
        root().join("samples"),
        root().join("tests/fixtures/gitee"),
        root().join("../shared/fixtures/gitee"),
    ] {
        json_files(&dir, &mut out);
    }
    assert!(out.len() >= 20, "seed payloads not found");
    out
}

// ---------------------------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------------------------

struct Target {
    name: &'static str,
    seeds: Vec<Input>,
    /// Which fields get JSON-aware mutation.
    json_fields: &'static [usize],
    /// Runs one input; panics (or fails an assertion) on a bug. Returns a short outcome
    /// label: inputs with a new label join the corpus.
    run: fn(&Input) -> String,
    /// Failures already reported and not fixed yet (each with an ignored `regression_` test
    /// below): counted, not reported again, so a long run can find the next bug. Remove the
    /// entry with the fix.
    known: &'static [&'static str],
}

fn secs() -> u64 {
    std::env::var("GITEE_RELAY_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

fn fuzz_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("fuzz");
    std::fs::create_dir_all(dir.join("crashes")).unwrap();
    dir
}

static PANIC_MESSAGE: Mutex<Option<String>> = Mutex::new(None);

/// Panics inside a fuzz run are recorded, not printed (the driver reports them).
fn quiet_panics() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_fuzz = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("fuzz-"));
            if in_fuzz {
                let msg = format!("{info}");
                *PANIC_MESSAGE.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg);
            } else {
                default(info);
            }
        }));
    });
}

fn run_one(target: &Target, input: &Input) -> Result<String, String> {
    std::panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input))).map_err(|_| {
        PANIC_MESSAGE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| "panic".into())
    })
}

/// Shrinks a failing input by dropping chunks while it still fails.
fn minimize(target: &Target, input: &Input) -> Input {
    let mut best = input.clone();
    let mut tries = 0;
    for f in 0..best.len() {
        let mut chunk = best[f].len() / 2;
        while chunk > 0 && tries < 400 {
            let mut at = 0;
            while at < best[f].len() && tries < 400 {
                let mut candidate = best.clone();
                let end = (at + chunk).min(candidate[f].len());
                candidate[f].drain(at..end);
                tries += 1;
                if run_one(target, &candidate).is_err() {
                    best = candidate;
                } else {
                    at += chunk;
                }
            }
            chunk /= 2;
        }
    }
    best
}

struct Report {
    execs: u64,
    crashes: Vec<String>,
    corpus: usize,
    known: u64,
}

fn fuzz(target: Target) {
    quiet_panics();
    let dir = fuzz_dir();
    let name = target.name;
    // One saved input only.
    if let Some(file) = std::env::var_os("GITEE_RELAY_FUZZ_REPLAY") {
        let bytes = std::fs::read(&file).unwrap();
        let input = decode(&bytes).unwrap_or_else(|| vec![bytes]);
        let handle = std::thread::Builder::new()
            .name(format!("fuzz-{name}"))
            .spawn(move || run_one(&target, &input))
            .unwrap();
        match handle.join().unwrap() {
            Ok(outcome) => eprintln!("{name}: replayed {}: {outcome}", file.display()),
            Err(e) => panic!("{name}: {} fails: {e}", Path::new(&file).display()),
        }
        return;
    }
    let seed = std::env::var("GITEE_RELAY_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let budget = Duration::from_secs(secs());
    eprintln!(
        "{name}: fuzzing for {}s with GITEE_RELAY_FUZZ_SEED={seed}",
        budget.as_secs()
    );
    let progress = Arc::new(AtomicU64::new(0));
    let current = dir.join(format!("{name}.current"));
    let worker = {
        let progress = progress.clone();
        let dir = dir.clone();
        std::thread::Builder::new()
            .name(format!("fuzz-{name}"))
            .spawn(move || drive(target, seed, budget, &progress, &dir, &current))
            .unwrap()
    };
    // Watchdog: an input that runs for more than 30 s is a hang.
    let mut last = (0, Instant::now());
    while !worker.is_finished() {
        std::thread::sleep(Duration::from_millis(200));
        let now = progress.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(30) {
            panic!(
                "{name}: an input has run for 30 s (hang); it is in {}",
                dir.join(format!("{name}.current")).display()
            );
        }
    }
    let report = worker.join().unwrap();
    let line = format!(
        "{name}: {} executions in {}s (seed {seed}), corpus {}, {} crash(es), {} known failure(s)",
        report.execs,
        budget.as_secs(),
        report.corpus,
        report.crashes.len(),
        report.known
    );
    eprintln!("{line}");
    let _ = std::fs::write(dir.join(format!("{name}.summary")), format!("{line}\n"));
    assert!(
        report.crashes.is_empty(),
        "{name}: {} crash(es):\n{}",
        report.crashes.len(),
        report.crashes.join("\n\n")
    );
}

fn drive(
    target: Target,
    seed: u64,
    budget: Duration,
    progress: &AtomicU64,
    dir: &Path,
    current: &Path,
) -> Report {
    let started = Instant::now();
    let current = std::fs::File::create(current).unwrap();
    let save_current = |input: &Input| {
        let bytes = encode(input);
        let _ = current.set_len(0);
        let _ = current.write_all_at(&bytes, 0);
    };
    let mut crashes = Vec::new();
    let crash = |input: &Input, message: String, crashes: &mut Vec<String>| {
        let small = minimize(&target, input);
        let bytes = encode(&small);
        let hash = Sha256::digest(&bytes);
        let file = dir
            .join("crashes")
            .join(format!("{}-{}.bin", target.name, hex(&hash[..6])));
        std::fs::write(&file, &bytes).unwrap();
        crashes.push(format!("{message}\n  input: {}", file.display()));
    };
    // Regressions first: every crash found so far, kept in the repository.
    let regressions = root().join("fuzz/regressions").join(target.name);
    if let Ok(entries) = std::fs::read_dir(&regressions) {
        for e in entries.flatten() {
            if e.path().extension().is_none_or(|x| x != "bin") {
                continue;
            }
            let bytes = std::fs::read(e.path()).unwrap();
            let input = decode(&bytes).unwrap_or_else(|| vec![bytes]);
            save_current(&input);
            if let Err(m) = run_one(&target, &input) {
                crashes.push(format!("regression {}: {m}", e.path().display()));
            }
        }
    }
    let mut corpus: Vec<Input> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut execs = 0u64;
    for s in &target.seeds {
        save_current(s);
        execs += 1;
        match run_one(&target, s) {
            Ok(outcome) => {
                seen.insert(outcome);
            }
            Err(m) if target.known.iter().any(|k| m.contains(k)) => {}
            Err(m) => crash(s, m, &mut crashes),
        }
        corpus.push(s.clone());
    }
    let mut m = Mutator::new(seed);
    let mut known = 0;
    let mut distinct_crashes: HashSet<String> = HashSet::new();
    while started.elapsed() < budget {
        for _ in 0..16 {
            let base = m.rng.choice(&corpus).unwrap().clone();
            let other = m.rng.choice(&corpus).unwrap();
            let f = m.rng.usize(..base.len().max(1));
            let other_field = field(other, f).to_vec();
            let mut input = base;
            if input.is_empty() {
                input.push(Vec::new());
            }
            let json = target.json_fields.contains(&f);
            m.field(&mut input[f], &other_field, json);
            // Sometimes a second field too.
            if m.rng.u8(..4) == 0 {
                let g = m.rng.usize(..input.len());
                let json = target.json_fields.contains(&g);
                let other_field = field(other, g).to_vec();
                m.field(&mut input[g], &other_field, json);
            }
            save_current(&input);
            execs += 1;
            progress.store(execs, Ordering::Relaxed);
            match run_one(&target, &input) {
                Ok(outcome) => {
                    if corpus.len() < 4096 && seen.insert(outcome) {
                        corpus.push(input);
                    }
                }
                Err(message) if target.known.iter().any(|k| message.contains(k)) => {
                    known += 1;
                }
                Err(message) => {
                    // One report per distinct failure (location and message, digits folded).
                    let key = label(&message.lines().take(2).collect::<Vec<_>>().join(" "));
                    if distinct_crashes.insert(key) && crashes.len() < 20 {
                        crash(&input, message, &mut crashes);
                    }
                }
            }
        }
    }
    Report {
        execs,
        crashes,
        corpus: corpus.len(),
        known,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The outcome label with digits folded, so numbers do not make every input "new".
fn label(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(120));
    for c in s.chars().take(120) {
        if c.is_ascii_digit() {
            if !out.ends_with('#') {
                out.push('#');
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Target: webhook
// ---------------------------------------------------------------------------------------

const SECRET: &str = "fuzz-secret-Qm7-never-shown";
const PASSWORD_MARKER: &str = "fuzz-password-Vb3-never-rendered";

fn relay_config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let yaml = format!(
            r#"
listen: 127.0.0.1:0
store: sqlite://fuzz.db
max_body: 1MiB
sources:
  sig:
    secret: {SECRET}
  pw:
    password: {SECRET}
  open:
    allow_unauthenticated: true
  tight:
    secret: {SECRET}
    max_skew: 0s
channels:
  dry:
    platform: slack
    url: https://hooks.slack.com/services/T/B/x
    dry_run: true
routes:
  - to: [dry]
people:
  alice: {{ dingtalk: "13800000000", feishu: ou_alice, wecom: alice, slack: U0ALICE }}
  bob: {{ dingtalk: "13900000000", slack: U0BOB }}
"#
        );
        Config::from_yaml(Path::new("/fuzz/config.yaml"), &yaml, &|_| None).unwrap()
    })
}

/// Fields: 0 source/mode flags, 1 X-Gitee-Event, 2 X-Gitee-Timestamp, 3 X-Gitee-Token,
/// 4 X-Gitee-Ping, 5 Content-Type, 6 Content-Length, 7 body.
fn webhook(input: &Input) -> String {
    let config = relay_config();
    let flags = byte(input, 0);
    let source = match flags & 3 {
        0 | 1 => "sig",
        2 => "pw",
        _ => {
            if flags & 64 != 0 {
                "tight"
            } else {
                "open"
            }
        }
    };
    let source = &config.sources[source];
    let now = gitee_relay::time_util::now_ms();
    let body = field(input, 7);
    // Timestamp: as given, or now (shifted by the field's first bytes) so that signing
    // reaches the body.
    let ts_text = if flags & 4 != 0 {
        let shift = i64::from(byte(input, 2) as i8) * 1000;
        (now + shift).to_string().into_bytes()
    } else {
        field(input, 2).to_vec()
    };
    // Token: as given, or the right signature/password.
    let token = match (flags & 8 != 0, source.name.as_str()) {
        (true, "pw") => SECRET.as_bytes().to_vec(),
        (true, _) => gitee_signature(SECRET, &String::from_utf8_lossy(&ts_text)).into_bytes(),
        (false, _) => field(input, 3).to_vec(),
    };
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &[u8], twice: bool| {
        // What actix-http's parser would refuse (CR, LF, NUL...) never reaches the app.
        if let Ok(v) = HeaderValue::from_bytes(value) {
            let name = HeaderName::from_static(name);
            headers.append(name.clone(), v.clone());
            if twice {
                headers.append(name, v);
            }
        }
    };
    let present = |bit: u8| flags & bit == 0;
    if present(16) {
        put("x-gitee-event", field(input, 1), false);
    }
    put(
        "x-gitee-timestamp",
        &ts_text,
        flags & 128 != 0 && flags & 32 != 0,
    );
    put("x-gitee-token", &token, false);
    put("x-gitee-ping", field(input, 4), false);
    if present(32) {
        put("content-type", field(input, 5), false);
    }
    let length = field(input, 6);
    if !length.is_empty() {
        put("content-length", length, false);
    }
    let max_body = config.max_body;
    let facts = match check_headers(source, &headers, max_body, now) {
        Ok(f) => f,
        Err(r) => {
            assert!(
                [400, 401, 413, 415].contains(&r.status.as_u16()),
                "status {}",
                r.status
            );
            let shown_secret = !String::from_utf8_lossy(&encode(input)).contains(SECRET);
            assert!(
                !(shown_secret && r.message.contains(SECRET)),
                "secret in {r:?}"
            );
            return label(&format!("h{} {}", r.status.as_u16(), r.message));
        }
    };
    if body.len() > max_body {
        return "413 body".into();
    }
    match parse_body(&facts, body) {
        Ok((kind, delivery)) => {
            // The context the templates get: built and serialized without trouble.
            let raw = payload::parse_json(body).expect("parsed once already");
            let ctx = delivery.context(&source.name, facts.is_test, now, raw);
            let text = serde_json::to_string(&ctx).expect("the context serializes");
            assert!(!text.contains(SECRET) || String::from_utf8_lossy(body).contains(SECRET));
            label(&format!(
                "ok {kind} {} {}",
                delivery.action,
                delivery.branch.is_some()
            ))
        }
        Err(r) => {
            assert_eq!(r.status.as_u16(), 400, "{r:?}");
            assert!(!r.message.contains(PASSWORD_MARKER), "{r:?}");
            label(&format!("b400 {}", r.message))
        }
    }
}

fn webhook_seeds() -> Vec<Input> {
    let mut out = Vec::new();
    for (i, body) in payload_seeds().into_iter().enumerate() {
        let kind = payload::detect_kind(None, &body).unwrap_or(EventKind::Push);
        let flags = [4 | 8, 4 | 8 | 2, 3, 4 | 8 | 16, 4][i % 5];
        out.push(vec![
            vec![flags],
            hook_title(kind).as_bytes().to_vec(),
            vec![0],
            b"Xvh4YPVe6l31XpDRL9J2yeaEXabsckIoUUschpXiVck=".to_vec(),
            b"false".to_vec(),
            b"application/json".to_vec(),
            Vec::new(),
            body,
        ]);
    }
    out
}

#[test]
fn fuzz_webhook() {
    fuzz(Target {
        name: "webhook",
        seeds: webhook_seeds(),
        json_fields: &[7],
        run: webhook,
        known: &[],
    });
}

// ---------------------------------------------------------------------------------------
// Target: signature
// ---------------------------------------------------------------------------------------

/// HMAC-SHA256 written out (RFC 2104), independent of the `hmac` crate.
fn reference_signature(secret: &[u8], timestamp: &[u8]) -> String {
    let mut key = secret.to_vec();
    if key.len() > 64 {
        key = Sha256::digest(&key).to_vec();
    }
    key.resize(64, 0);
    let ipad: Vec<u8> = key.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = key.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(timestamp)
        .chain_update(b"\n")
        .chain_update(secret)
        .finalize();
    let outer = Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize();
    base64::engine::general_purpose::STANDARD.encode(outer)
}

/// Fields: 0 secret, 1 timestamp, 2 token, 3 skew and mode bytes.
fn signature(input: &Input) -> String {
    let secret = String::from_utf8_lossy(field(input, 0)).into_owned();
    let ts = String::from_utf8_lossy(field(input, 1)).into_owned();
    let token = String::from_utf8_lossy(field(input, 2)).into_owned();
    let mode = field(input, 3);
    let skew = i64::from(mode.first().copied().unwrap_or(0)) * 997;
    let right = reference_signature(secret.as_bytes(), ts.as_bytes());
    assert_eq!(
        gitee_signature(&secret, &ts),
        right,
        "differs from RFC 2104"
    );
    let digits = !ts.is_empty() && ts.len() <= 16 && ts.bytes().all(|b| b.is_ascii_digit());
    let ts_value: Option<i64> = digits.then(|| ts.parse().unwrap());
    // `now` near the timestamp, or anywhere.
    let now = match (ts_value, mode.get(1)) {
        (Some(t), Some(off)) => t.saturating_add(i64::from(*off as i8) * 131),
        (Some(t), None) => t,
        (None, _) => gitee_relay::time_util::now_ms(),
    };
    let sig = SourceAuth::Signature {
        secret: secret.clone(),
    };
    // The right token verifies exactly when the timestamp is well-formed and fresh.
    let fresh =
        ts_value.is_some_and(|t| (i128::from(now) - i128::from(t)).abs() <= i128::from(skew));
    let got = auth::verify(&sig, Some(&right), Some(&ts), now, skew);
    assert_eq!(
        got.is_ok(),
        fresh,
        "right token, ts {ts:?}, now {now}, skew {skew}: {got:?}"
    );
    // Any other token never verifies.
    let got = auth::verify(&sig, Some(&token), Some(&ts), now, skew);
    assert_eq!(
        got.is_ok(),
        fresh && token == right,
        "token {token:?}: {got:?}"
    );
    if !right.is_empty() {
        let mut flipped = right.clone().into_bytes();
        let i = usize::from(mode.get(2).copied().unwrap_or(0)) % flipped.len();
        flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(auth::verify(&sig, Some(&flipped), Some(&ts), now, skew).is_err());
    }
    // Password mode: equal and non-empty.
    let pw = SourceAuth::Password {
        password: secret.clone(),
    };
    let got = auth::verify(&pw, Some(&token), None, now, skew);
    assert_eq!(got.is_ok(), !token.is_empty() && token == secret, "{got:?}");
    // Errors never carry a value.
    if let Err(e) = auth::verify(&sig, Some(&token), Some(&ts), now, skew) {
        let text = e.to_string();
        for s in [&secret, &token, &right] {
            assert!(s.len() < 4 || !text.contains(s.as_str()), "{text}");
        }
    }
    label(&format!("{fresh} {digits}"))
}

#[test]
fn fuzz_signature() {
    let vectors = [
        ("bBg5lrt03VixkX85CNqYIcecC0SIGASE", "1633679083918"),
        ("437EBE55A75911E8", "1646657144174"),
        ("密钥🔑", "1700000000000"),
        ("", "0"),
        ("k", ""),
    ];
    let seeds = vectors
        .iter()
        .map(|(s, t)| {
            vec![
                s.as_bytes().to_vec(),
                t.as_bytes().to_vec(),
                gitee_signature(s, t).into_bytes(),
                vec![3, 0, 5],
            ]
        })
        .collect();
    fuzz(Target {
        name: "signature",
        seeds,
        json_fields: &[],
        run: signature,
        known: &[],
    });
}

// ---------------------------------------------------------------------------------------
// Target: render
// ---------------------------------------------------------------------------------------

/// True when the marker is anywhere but the top-level `password` / `sign` (which are
/// redacted before templates see the body).
fn marker_outside_secrets(v: &Value, top: bool) -> bool {
    match v {
        Value::String(s) => s.contains(PASSWORD_MARKER),
        Value::Array(a) => a.iter().any(|c| marker_outside_secrets(c, false)),
        Value::Object(m) => m.iter().any(|(k, c)| {
            k.contains(PASSWORD_MARKER)
                || (!(top && (k == "password" || k == "sign")) && marker_outside_secrets(c, false))
        }),
        _ => false,
    }
}

/// Fields: 0 platform and flags, 1 body.
fn render(input: &Input) -> String {
    let flags = byte(input, 0);
    let body = field(input, 1);
    let platform = PlatformKind::ALL[usize::from(flags) % 4];
    let Some(kind) = payload::detect_kind(None, body) else {
        return "no kind".into();
    };
    // Only what ingress would accept reaches the templates.
    let Ok(raw) = payload::parse_json(body) else {
        return "not json".into();
    };
    if payload::parse_value(kind, &raw).is_err() {
        return "refused".into();
    }
    let is_test = flags & 4 != 0;
    let templates = TemplateSet::builtin(platform);
    static AUDIENCE: OnceLock<Audience> = OnceLock::new();
    let audience = AUDIENCE.get_or_init(|| Audience::from_config(relay_config()));
    // With people to mention (the config's), or nobody.
    let target = if flags & 8 != 0 {
        RenderTarget::nobody()
    } else {
        RenderTarget {
            audience,
            channel: "dry",
        }
    };
    let rendered = message::render(
        &templates,
        kind,
        body,
        "gitee",
        is_test,
        1_764_000_000_000,
        &target,
    )
    .unwrap_or_else(|e| panic!("an accepted {kind} body does not render for {platform:?}: {e}"));
    if let Err(v) = limits::check(platform, &rendered) {
        panic!("{platform:?} body outside its limits: {v:?}");
    }
    if !marker_outside_secrets(&raw, true) {
        let text = rendered.to_string();
        assert!(
            !text.contains(PASSWORD_MARKER),
            "the body's password was rendered for {platform:?}"
        );
    }
    label(&format!(
        "{platform:?} {kind} {}",
        rendered.to_string().len() / 4096
    ))
}

#[test]
fn fuzz_render() {
    let mut seeds = Vec::new();
    for (i, body) in payload_seeds().into_iter().enumerate() {
        // The password mode body carries the password: it must never be rendered.
        let body = match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(mut m)) => {
                m.insert("password".into(), json!(PASSWORD_MARKER));
                m.insert("sign".into(), json!(PASSWORD_MARKER));
                serde_json::to_vec(&m).unwrap()
            }
            _ => body,
        };
        // One platform per seed, in turn (the flags byte is mutated like the rest).
        seeds.push(vec![vec![(i % 8) as u8], body]);
    }
    fuzz(Target {
        name: "render",
        seeds,
        json_fields: &[1],
        run: render,
        // regression_render_absurd_body_timestamp
        known: &[],
    });
}

// ---------------------------------------------------------------------------------------
// Target: config
// ---------------------------------------------------------------------------------------

/// Fields: 0 the YAML.
fn config(input: &Input) -> String {
    let text = String::from_utf8_lossy(field(input, 0));
    let env = |name: &str| match name {
        "GITEE_SECRET" => Some(SECRET.to_owned()),
        "EMPTY" => Some(String::new()),
        "NESTED" => Some("${GITEE_SECRET}".to_owned()),
        _ => None,
    };
    let started = Instant::now();
    let outcome = match Config::from_yaml(Path::new("/fuzz/config.yaml"), &text, &env) {
        Ok(c) => format!(
            "ok {} {} {}",
            c.sources.len(),
            c.channels.len(),
            c.routes.len()
        ),
        Err(e) => {
            let text = e.to_string();
            assert!(!text.is_empty());
            format!("err {}", text.lines().next().unwrap_or(""))
        }
    };
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "config parsing took {:?}",
        started.elapsed()
    );
    label(&outcome)
}

#[test]
fn fuzz_config() {
    let mut texts: Vec<String> = vec![
        std::fs::read_to_string(root().join("config.yaml")).unwrap(),
        std::fs::read_to_string(
            root().join("tests/fixtures/config/full.yaml"),
        )
        .unwrap_or_default(),
        r#"
listen: 127.0.0.1:0
store: sqlite://relay.db
max_body: 64KiB
sources:
  gitee: { secret: "${GITEE_SECRET}", max_skew: 5m }
  pw: { password: "${GITEE_SECRET:-x}" }
  open: { allow_unauthenticated: true }
channels:
  ding: { platform: dingtalk, url: "https://oapi.dingtalk.com/robot/send?access_token=${GITEE_SECRET}", secret: SECx, keyword: hi }
  wecom: { platform: wecom, url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", rate: { per_second: 3 } }
  lark: { platform: feishu, url: "https://open.feishu.cn/open-apis/bot/v2/hook/h", digest_after: 30s }
  slack: { platform: slack, url: "https://hooks.slack.com/services/T/B/x", dry_run: true }
routes:
  - repos: ["acme/*"]
    events: [push, merge_request]
    branches: [main, "release/*"]
    to: [ding, slack]
  - events: [issue, note]
    actions: [open]
    to: [lark, wecom]
people:
  zhangsan: { dingtalk: "13800000000", feishu: ou_x, wecom: z, slack: U1 }
delivery: { retry_first: 1s, retry_cap: 1m, max_attempts: 5, timeout: 10s }
"#
        .to_owned(),
        // Alias expansion ("billion laughs").
        r#"
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
sources: *g
"#
        .to_owned(),
        format!("sources: {}{}", "[".repeat(5000), "]".repeat(5000)),
        format!("sources:\n{}", "  - \n".repeat(2000)),
        "listen: ${}\nstore: ${A:-${B:-${C}}}\nmax_body: 99999999999999999999GiB\n".to_owned(),
        "\u{feff}listen: \"\\x00\"\nsources: {gitee: {secret: ${NESTED}}}\n".to_owned(),
        "sources:\n  gitee:\n    secret: x\n  gitee:\n    secret: y\n".to_owned(),
        "- a\n- b\n".to_owned(),
        "!!binary aGVsbG8=".to_owned(),
        "key: !custom tag\n".to_owned(),
    ];
    texts.retain(|t| !t.is_empty());
    fuzz(Target {
        name: "config",
        seeds: texts.into_iter().map(|t| vec![t.into_bytes()]).collect(),
        json_fields: &[],
        run: config,
        known: &[],
    });
}

#[test]
fn inputs_survive_their_file_format() {
    let input: Input = vec![vec![], vec![0, 1, 2], b"x".repeat(300)];
    assert_eq!(decode(&encode(&input)), Some(input));
    let mut w = Vec::new();
    w.write_all(MAGIC).unwrap();
    assert_eq!(decode(&w), Some(vec![]));
    assert_eq!(decode(b"not framed"), None);
}

/// Found by `fuzz_render` (target/fuzz/crashes/render-92c3631dc6d8.bin): a body whose
/// `timestamp` is a number far outside any real date (here `i64::MIN`) is accepted by
/// ingress, and then no template renders it ("helper `time`: timestamp ... out of range"),
/// so the event is stored but can never be delivered. The context takes the body's
/// `timestamp` whenever it is an integer (src/gitee/payload/map.rs); an absurd one now falls
/// back to the receipt time.
#[test]
fn regression_render_absurd_body_timestamp() {
    let audience = Audience::from_config(relay_config());
    let mut failures = Vec::new();
    for kind in EventKind::ALL {
        let sample = gitee_relay::samples::for_kind(kind).next().unwrap();
        for ts in [
            json!(i64::MIN),
            json!(i64::MAX),
            json!(-1),
            json!("99999999999999999"),
        ] {
            let mut body: Value = serde_json::from_str(sample.body).unwrap();
            body["timestamp"] = ts.clone();
            let body = serde_json::to_vec(&body).unwrap();
            let raw = payload::parse_json(&body).unwrap();
            assert!(
                payload::parse_value(kind, &raw).is_ok(),
                "ingress accepts it"
            );
            for platform in PlatformKind::ALL {
                let target = RenderTarget {
                    audience: &audience,
                    channel: "dry",
                };
                let got = message::render(
                    &TemplateSet::builtin(platform),
                    kind,
                    &body,
                    "gitee",
                    false,
                    1_764_000_000_000,
                    &target,
                );
                if let Err(e) = got {
                    failures.push(format!("{kind} {platform:?} timestamp {ts}: {e}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
