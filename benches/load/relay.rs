//! The relay under test: the release binary as a child process, with a generated config.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The relay under test: this build's release binary, or `LOAD_RELAY_BIN` (another build, to
/// compare).
pub fn binary() -> String {
    std::env::var("LOAD_RELAY_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_gitee-relay").into())
}

pub struct Relay {
    child: Child,
    /// Start → first `/readyz` 200.
    pub ready_after: Duration,
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Relay {
    /// Starts `gitee-relay serve --config <config>` listening on `addr` (the config or the
    /// environment must say so) and waits for `/readyz`. Logs go to `log` (info level, JSON,
    /// as in production).
    pub fn start(config: &Path, addr: SocketAddr, env: &[(&str, String)], log: &Path) -> Relay {
        let log = std::fs::File::create(log).expect("log file");
        // `LOAD_WRAP="heaptrack -o /tmp/relay"` (or `perf record -g --`…) runs the relay under
        // a profiler.
        let wrap = std::env::var("LOAD_WRAP").unwrap_or_default();
        let mut words = wrap.split_whitespace();
        let mut cmd = match words.next() {
            Some(program) => {
                let mut cmd = Command::new(program);
                cmd.args(words).arg(binary());
                cmd
            }
            None => Command::new(binary()),
        };
        // Its own process group, so a stop reaches the relay under a wrapper too.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.args(["--log-format", "json", "serve", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let mut child = cmd.spawn().expect("the relay binary starts");
        loop {
            if readyz(addr) {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the relay exited with {status} (see its log)");
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "relay not ready"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
        Relay {
            child,
            ready_after: started.elapsed(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn rss_mib(&self) -> f64 {
        rss_mib(self.pid())
    }

    /// SIGTERM and wait (graceful stop, like systemd).
    pub fn stop(mut self) {
        signal_group(self.child.id(), "-TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        signal_group(self.child.id(), "-KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Signals the process group the relay leads (the relay, or a wrapper and the relay).
fn signal_group(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

/// One `GET /readyz` on a fresh connection: true on 200.
pub fn readyz(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && &head[9..12] == b"200"
}

/// The value of each unlabelled series of `GET /metrics` (e.g.
/// `gitee_relay_ingest_commit_seconds_sum`); empty if the relay did not answer.
pub fn metrics(addr: SocketAddr) -> std::collections::HashMap<String, f64> {
    let mut out = std::collections::HashMap::new();
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return out;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut text = String::new();
    if s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .is_err()
        || s.read_to_string(&mut text).is_err()
    {
        return out;
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some((name, value)) = line.split_once(' ')
            && !name.contains('{')
            && let Ok(v) = value.trim().parse::<f64>()
        {
            out.insert(name.to_owned(), v);
        }
    }
    out
}

/// The relay's group-commit counters (its `gitee_relay_ingest_commit_*` metrics), cumulative.
#[derive(Clone, Copy, Default)]
pub struct Commits {
    count: f64,
    seconds: f64,
    webhooks: f64,
}

impl Commits {
    pub fn read(addr: SocketAddr) -> Commits {
        let m = metrics(addr);
        let get = |name: &str| m.get(name).copied().unwrap_or(0.0);
        Commits {
            count: get("gitee_relay_ingest_commit_seconds_count"),
            seconds: get("gitee_relay_ingest_commit_seconds_sum"),
            webhooks: get("gitee_relay_ingest_commit_events_sum"),
        }
    }

    /// Since `before`: mean webhooks per commit, and mean milliseconds per commit (from the
    /// batch taken to its answer, the wait for the store's write turn included).
    pub fn since(&self, before: &Commits) -> (f64, f64) {
        let n = (self.count - before.count).max(1.0);
        (
            (self.webhooks - before.webhooks) / n,
            (self.seconds - before.seconds) * 1000.0 / n,
        )
    }
}

/// Resident set size of a process, MiB (VmRSS).
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU time (user + system) a process has used so far, seconds; `"self"` for this one.
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) in parentheses; utime and
    // stime are the 14th and 15th fields, in clock ticks (100 per second on Linux).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Samples a process's RSS every 50 ms until stopped; `max()` is the peak.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak_kib: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kib = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak_kib.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let kib = (rss_mib(pid) * 1024.0) as u64;
                p.fetch_max(kib, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        RssSampler {
            stop,
            peak_kib,
            thread: Some(thread),
        }
    }

    pub fn peak_mib(&self) -> f64 {
        self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A channel of the generated config.
pub struct ChannelSpec {
    pub name: String,
    pub platform: &'static str,
    pub url: String,
    pub secret: Option<String>,
    /// `rate:` (None: the platform's own quotas).
    pub per_second: Option<u32>,
    pub timeout: &'static str,
}

/// Writes a config: one signature-mode source `bench`, its events routed to the first
/// `routed` channels.
pub fn write_config(
    dir: &Path,
    db: &Path,
    listen: SocketAddr,
    channels: &[ChannelSpec],
    routed: usize,
) -> PathBuf {
    let mut text = format!(
        "listen: {listen}\nstore: sqlite://{}\nsources:\n  bench:\n    secret: {}\n    max_skew: 1h\nchannels:\n",
        db.display(),
        super::SOURCE_SECRET
    );
    for c in channels {
        text.push_str(&format!(
            "  {}:\n    platform: {}\n    url: {}\n    digest: false\n    timeout: {}\n",
            c.name, c.platform, c.url, c.timeout
        ));
        if let Some(s) = &c.secret {
            text.push_str(&format!("    secret: {s}\n"));
        }
        if let Some(n) = c.per_second {
            text.push_str(&format!("    rate: {{ per_second: {n} }}\n"));
        }
    }
    let names: Vec<&str> = channels
        .iter()
        .take(routed)
        .map(|c| c.name.as_str())
        .collect();
    text.push_str(&format!("routes:\n  - to: [{}]\n", names.join(", ")));
    // `LOAD_WORKERS`: `delivery.workers` (sends in flight across channels; a bursting
    // channel uses up to half of them, at most 16). Unset: the relay's default.
    if let Ok(workers) = std::env::var("LOAD_WORKERS") {
        text.push_str(&format!("delivery:\n  workers: {workers}\n"));
    }
    let path = dir.join("bench-config.yaml");
    std::fs::write(&path, text).expect("write the config");
    path
}

/// A robot that accepts connections and never answers: a paused robot, so deliveries stay
/// queued (each channel holds at most its in-flight sends).
pub fn start_silent_robot() -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let thread = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            match stream {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
    });
    (addr, thread)
}
