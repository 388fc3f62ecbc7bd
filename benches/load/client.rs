//! The load generator: N keep-alive HTTP/1.1 connections, each sending one request at a time,
//! on two single-threaded runtimes (like `wrk -t2`). Either closed loop ([`run`], like wrk:
//! each connection sends again as soon as it has its answer; latency from the first byte
//! written to the last byte read) or at a fixed rate ([`run_paced`], open loop: request k is
//! due at start + k / rate on whichever connection is free; latency from the moment it was
//! due, so a relay that falls behind shows it). Latencies go into an HDR histogram
//! (microseconds). Requests are built by a caller-supplied function so every request can carry
//! its own timestamp and signature.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Builds the bytes of request number `n` (a process-wide sequence).
pub type MakeRequest = Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync>;

pub struct LoadResult {
    /// Requests answered 200 inside the measured window.
    pub ok: u64,
    /// Requests answered with another status (or whose connection failed) in the window.
    pub failed: u64,
    pub seconds: f64,
    pub hist: Histogram<u64>,
    /// A few of the non-200 answers, for the report.
    pub sample_errors: Vec<String>,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.seconds
    }
    pub fn p50_ms(&self) -> f64 {
        self.hist.value_at_quantile(0.50) as f64 / 1000.0
    }
    pub fn p99_ms(&self) -> f64 {
        self.hist.value_at_quantile(0.99) as f64 / 1000.0
    }
}

/// When a connection sends its next request.
enum Schedule {
    /// As soon as its previous answer is read, from `start` to `end`; only requests sent
    /// after `measure_from` (the warm-up's end) and answered before `end` count.
    Closed { measure_from: Instant, end: Instant },
    /// Request k of the run (a shared count) when `start + k / rate` comes, until `end`.
    Paced {
        start: Instant,
        rate: f64,
        end: Instant,
        tickets: AtomicU64,
    },
}

impl Schedule {
    /// Waits until the connection's next request is due; returns that moment, or `None` once
    /// the run is over.
    async fn next(&self) -> Option<Instant> {
        match self {
            Schedule::Closed { end, .. } => {
                let now = Instant::now();
                (now < *end).then_some(now)
            }
            Schedule::Paced {
                start,
                rate,
                end,
                tickets,
            } => {
                let k = tickets.fetch_add(1, Ordering::Relaxed);
                let due = *start + Duration::from_secs_f64(k as f64 / rate);
                if due >= *end {
                    return None;
                }
                // tokio's timer has millisecond steps: a request may leave up to 1 ms late,
                // and that is counted in its latency.
                tokio::time::sleep_until(due.into()).await;
                Some(due)
            }
        }
    }

    /// Where a request's latency starts: when it is written (closed loop; its bytes are
    /// built), or when it was due (paced).
    fn clock_from(&self, due: Instant) -> Instant {
        match self {
            Schedule::Closed { .. } => Instant::now(),
            Schedule::Paced { .. } => due,
        }
    }

    /// Whether a request whose clock started at `from` and was answered at `done` counts.
    fn measures(&self, from: Instant, done: Instant) -> bool {
        match self {
            Schedule::Closed { measure_from, end } => from >= *measure_from && done <= *end,
            Schedule::Paced { .. } => true,
        }
    }
}

/// Runs `connections` connections against `addr`: `warmup` unmeasured, then `duration`
/// measured, each connection sending again as soon as it has its answer. Every answer is read
/// completely (Content-Length bodies; the servers under test never send chunked answers).
pub fn run(
    addr: SocketAddr,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    seq: Arc<AtomicU64>,
    make: MakeRequest,
) -> LoadResult {
    let start = Instant::now();
    let schedule = Schedule::Closed {
        measure_from: start + warmup,
        end: start + warmup + duration,
    };
    drive(addr, connections, schedule, duration, seq, make)
}

/// Offers `rate` requests a second for `duration` over `connections` connections (open
/// loop): each request is sent when it is due, by a connection that is not waiting for an
/// answer. Nothing is discarded as warm-up: every request due in the window counts, and its
/// latency runs from when it was due, so requests that wait for a free connection (the server
/// is behind) show as slow.
pub fn run_paced(
    addr: SocketAddr,
    connections: usize,
    rate: f64,
    duration: Duration,
    seq: Arc<AtomicU64>,
    make: MakeRequest,
) -> LoadResult {
    let start = Instant::now();
    let schedule = Schedule::Paced {
        start,
        rate,
        end: start + duration,
        tickets: AtomicU64::new(0),
    };
    drive(addr, connections, schedule, duration, seq, make)
}

fn drive(
    addr: SocketAddr,
    connections: usize,
    schedule: Schedule,
    duration: Duration,
    seq: Arc<AtomicU64>,
    make: MakeRequest,
) -> LoadResult {
    let threads = 2.min(connections).max(1);
    let schedule = Arc::new(schedule);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let conns = connections / threads + usize::from(t < connections % threads);
            let (schedule, seq, make) = (schedule.clone(), seq.clone(), make.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let tasks: Vec<_> = (0..conns)
                        .map(|_| {
                            tokio::spawn(connection(
                                addr,
                                schedule.clone(),
                                seq.clone(),
                                make.clone(),
                            ))
                        })
                        .collect();
                    let mut out = Vec::new();
                    for t in tasks {
                        out.push(t.await.expect("connection task"));
                    }
                    out
                })
            })
        })
        .collect();
    let mut total = LoadResult {
        ok: 0,
        failed: 0,
        seconds: duration.as_secs_f64(),
        hist: new_hist(),
        sample_errors: Vec::new(),
    };
    for h in handles {
        for r in h.join().expect("load thread") {
            total.ok += r.ok;
            total.failed += r.failed;
            total.hist.add(&r.hist).expect("same bounds");
            for e in r.sample_errors {
                if total.sample_errors.len() < 3 {
                    total.sample_errors.push(e);
                }
            }
        }
    }
    total
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds")
}

async fn connect(addr: SocketAddr) -> Option<TcpStream> {
    for _ in 0..50 {
        if let Ok(s) = TcpStream::connect(addr).await {
            let _ = s.set_nodelay(true);
            return Some(s);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn connection(
    addr: SocketAddr,
    schedule: Arc<Schedule>,
    seq: Arc<AtomicU64>,
    make: MakeRequest,
) -> LoadResult {
    let mut r = LoadResult {
        ok: 0,
        failed: 0,
        seconds: 0.0,
        hist: new_hist(),
        sample_errors: Vec::new(),
    };
    let mut stream = None;
    let mut buf = Vec::with_capacity(16 * 1024);
    while let Some(due) = schedule.next().await {
        let s = match stream.as_mut() {
            Some(s) => s,
            None => match connect(addr).await {
                Some(s) => stream.insert(s),
                None => {
                    r.failed += 1;
                    break;
                }
            },
        };
        let request = make(seq.fetch_add(1, Ordering::Relaxed));
        let from = schedule.clock_from(due);
        let outcome = exchange(s, &request, &mut buf).await;
        let done = Instant::now();
        let measured = schedule.measures(from, done);
        match outcome {
            Ok((200, _)) => {
                if measured {
                    r.ok += 1;
                    let us = done.duration_since(from).as_micros() as u64;
                    r.hist.saturating_record(us.max(1));
                }
            }
            Ok((status, body)) => {
                if measured {
                    r.failed += 1;
                }
                if r.sample_errors.len() < 3 {
                    r.sample_errors.push(format!("HTTP {status}: {body}"));
                }
            }
            Err(e) => {
                if measured {
                    r.failed += 1;
                }
                if r.sample_errors.len() < 3 {
                    r.sample_errors.push(e);
                }
                stream = None;
            }
        }
    }
    r
}

/// Writes one request and reads one response; returns its status and (for errors) body.
async fn exchange(
    s: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> Result<(u16, String), String> {
    s.write_all(request).await.map_err(|e| e.to_string())?;
    buf.clear();
    let mut chunk = [0u8; 8192];
    let (head_end, status, length) = loop {
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).map_err(|e| e.to_string())?;
            let status: u16 = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or("bad status line")?;
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            break (end + 4, status, length);
        }
    };
    while buf.len() < head_end + length {
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed in the body".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = if status == 200 {
        String::new()
    } else {
        String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned()
    };
    Ok((status, body))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
