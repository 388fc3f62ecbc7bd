//! Loopback test doubles of the DingTalk, WeCom, Feishu/Lark and Slack incoming-webhook
//! robots, for the relay's integration tests and benchmarks.
//!
//! Each [`FakeRobot`] is a small HTTP/1.1 server on `127.0.0.1:<random port>` that checks
//! requests the way `shared/spec/im-platforms.md` says the real platform does (URL token,
//! signature, timestamp skew, keywords, message schema, size limits, rate limits) and
//! answers with the platform's own reply shapes and error codes. Signatures are computed
//! independently from the spec ([`dingtalk_sign`], [`feishu_sign`]); nothing is shared
//! with the relay crate.
//!
//! The server runs on the *current* tokio runtime (plain `tokio::spawn`, hyper 1), so any
//! number of robots can run in parallel tests, each test with its own runtime.
//!
//! ```no_run
//! use fake_robot::{FakeRobot, Fault, Platform, RobotOptions};
//! use std::time::Duration;
//!
//! #[tokio::test]
//! async fn relays_to_dingtalk() {
//!     let robot = FakeRobot::start(
//!         Platform::Dingtalk,
//!         RobotOptions::new("tok").with_secret("SECxyz").with_keywords(["gitee"]).unthrottled(),
//!     )
//!     .await;
//!     robot.push_fault(Fault::HttpStatus(502, "bad gateway".into())); // first request fails
//!     // configure the relay with robot.url() and the same secret, then trigger it …
//!     assert!(robot.wait_accepted(1, Duration::from_secs(5)).await);
//!     assert_eq!(robot.accepted()[0].body["msgtype"], "markdown");
//!     assert_eq!(robot.rejected()[0].code, "502");
//! }
//! ```
//!
//! # Replies
//!
//! | platform | success | refusal |
//! |---|---|---|
//! | DingTalk | 200 `{"errcode":0,"errmsg":"ok"}` | 200 `{"errcode":N,"errmsg":…}` |
//! | WeCom | 200 `{"errcode":0,"errmsg":"ok"}` | 200 `{"errcode":N,"errmsg":…}` |
//! | Feishu | 200 `{"code":0,"msg":"success","data":{},"StatusCode":0,"StatusMessage":"success"}` | 200 `{"code":N,"msg":…,"data":{}}` (400 for 9499 `Bad Request`) |
//! | Slack | 200 `ok` (text/html) | 4xx with a bare word; 429 `rate_limited` + `Retry-After` |
//!
//! Unknown paths on DingTalk/WeCom/Feishu get a plain HTTP 404 (recorded code `"404"`),
//! non-POST methods a 405.
#![warn(missing_docs)]

mod check;
mod dingtalk;
mod feishu;
mod sign;
mod slack;
mod wecom;

pub use sign::{dingtalk_sign, dingtalk_sign_query, feishu_sign, now_ms, now_s};

/// The platform limits the fakes enforce, as constants (bytes where the spec says bytes,
/// characters where it says characters).
pub mod limits {
    /// DingTalk: whole request body, bytes (errcode 460101 beyond).
    pub const DINGTALK_MAX_BODY_BYTES: usize = crate::dingtalk::MAX_BODY_BYTES;
    /// WeCom: `text.content`, UTF-8 bytes.
    pub const WECOM_MAX_TEXT_BYTES: usize = crate::wecom::MAX_TEXT_BYTES;
    /// WeCom: `markdown.content` / `markdown_v2.content`, UTF-8 bytes (errcode 40058 beyond).
    pub const WECOM_MAX_MARKDOWN_BYTES: usize = crate::wecom::MAX_MARKDOWN_BYTES;
    /// WeCom: decoded `image.base64`, bytes (errcode 93018 beyond).
    pub const WECOM_MAX_IMAGE_BYTES: usize = crate::wecom::MAX_IMAGE_BYTES;
    /// Feishu: whole request body, bytes (20 KB; code 19036 beyond).
    pub const FEISHU_MAX_BODY_BYTES: usize = crate::feishu::MAX_BODY_BYTES;
    pub use crate::slack::{
        MAX_ACTIONS_ELEMENTS as SLACK_MAX_ACTIONS_ELEMENTS,
        MAX_ATTACHMENTS as SLACK_MAX_ATTACHMENTS, MAX_BLOCKS as SLACK_MAX_BLOCKS,
        MAX_CONTEXT_ELEMENTS as SLACK_MAX_CONTEXT_ELEMENTS,
        MAX_FIELD_CHARS as SLACK_MAX_FIELD_CHARS, MAX_FIELDS as SLACK_MAX_FIELDS,
        MAX_HEADER_CHARS as SLACK_MAX_HEADER_CHARS, MAX_MARKDOWN_CHARS as SLACK_MAX_MARKDOWN_CHARS,
        MAX_SECTION_CHARS as SLACK_MAX_SECTION_CHARS,
        TEXT_TRUNCATE_CHARS as SLACK_TEXT_TRUNCATE_CHARS,
    };
}

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

use check::{Ctx, Incoming, Refusal, Reply, TEXT_CT, Valid};

/// Largest request body the fake reads (anything larger gets HTTP 413 before any check).
pub const MAX_READ_BYTES: usize = 16 * 1024 * 1024;

/// Which robot a [`FakeRobot`] imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// DingTalk custom robot (`/robot/send?access_token=…`).
    Dingtalk,
    /// WeCom group robot (`/cgi-bin/webhook/send?key=…`).
    Wecom,
    /// Feishu / Lark custom bot (`/open-apis/bot/v2/hook/<id>`).
    Feishu,
    /// Slack incoming webhook (`/services/T000/B000/<secret>`).
    Slack,
}

impl Platform {
    /// All four platforms.
    pub const ALL: [Platform; 4] = [
        Platform::Dingtalk,
        Platform::Wecom,
        Platform::Feishu,
        Platform::Slack,
    ];

    /// The platform's real per-robot quotas (spec §0): DingTalk 20/60 s, WeCom 20/60 s,
    /// Feishu 5/1 s and 100/60 s, Slack 1/1 s.
    pub fn default_quotas(self) -> Vec<Quota> {
        let min = Duration::from_secs(60);
        let sec = Duration::from_secs(1);
        match self {
            Platform::Dingtalk | Platform::Wecom => vec![Quota::new(20, min)],
            Platform::Feishu => vec![Quota::new(5, sec), Quota::new(100, min)],
            Platform::Slack => vec![Quota::new(1, sec)],
        }
    }

    /// Lower-case name (`dingtalk`, `wecom`, `feishu`, `slack`).
    pub fn name(self) -> &'static str {
        match self {
            Platform::Dingtalk => "dingtalk",
            Platform::Wecom => "wecom",
            Platform::Feishu => "feishu",
            Platform::Slack => "slack",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// At most `max` accepted messages within any sliding window of length `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Messages allowed per window.
    pub max: usize,
    /// Window length.
    pub per: Duration,
}

impl Quota {
    /// `max` messages per `per`.
    pub const fn new(max: usize, per: Duration) -> Self {
        Quota { max, per }
    }
}

/// How a robot is configured (what the user set up on the platform).
#[derive(Debug, Clone)]
pub struct RobotOptions {
    /// DingTalk `access_token` / WeCom `key` / Feishu hook id / Slack path secret.
    pub token: String,
    /// DingTalk / Feishu signing secret; `None` = sign mode off. Ignored by WeCom and Slack.
    pub secret: Option<String>,
    /// DingTalk / Feishu keyword mode (a message must contain one); empty = off.
    pub keywords: Vec<String>,
    /// `None` = the platform's real quotas ([`Platform::default_quotas`]);
    /// `Some(vec![])` = unthrottled.
    pub quotas: Option<Vec<Quota>>,
    /// Allowed distance between a signed request's timestamp and the robot's clock
    /// (default 1 h, inclusive).
    pub max_skew: Duration,
    /// Pin the robot's wall clock (used only for the timestamp check), e.g. to verify
    /// the spec's fixed test vectors end to end. `None` = `SystemTime::now()`.
    pub clock: Option<SystemTime>,
    /// Keep each accepted message's body (default). Off, an accepted message is still
    /// checked in full and counted, and its time and query kept (the quotas need the times),
    /// but its parsed and raw body are dropped: a benchmark sending hundreds of thousands of
    /// messages then does not spend the shared CPU growing the robot's heap.
    pub keep_bodies: bool,
}

impl RobotOptions {
    /// Token only: no secret, no keywords, real quotas, 1 h skew, system clock.
    pub fn new(token: &str) -> Self {
        RobotOptions {
            token: token.to_owned(),
            secret: None,
            keywords: Vec::new(),
            quotas: None,
            max_skew: Duration::from_secs(3600),
            clock: None,
            keep_bodies: true,
        }
    }

    /// Turn on sign mode with this secret (DingTalk / Feishu).
    pub fn with_secret(mut self, secret: &str) -> Self {
        self.secret = Some(secret.to_owned());
        self
    }

    /// Turn on keyword mode (DingTalk / Feishu).
    pub fn with_keywords<I, S>(mut self, keywords: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.keywords = keywords.into_iter().map(Into::into).collect();
        self
    }

    /// Replace the platform's quotas (`vec![]` = unthrottled).
    pub fn with_quotas(mut self, quotas: Vec<Quota>) -> Self {
        self.quotas = Some(quotas);
        self
    }

    /// No rate limit at all (for benchmarks and most functional tests).
    pub fn unthrottled(self) -> Self {
        self.with_quotas(Vec::new())
    }

    /// Check and count accepted messages without keeping their bodies (see `keep_bodies`).
    pub fn without_bodies(mut self) -> Self {
        self.keep_bodies = false;
        self
    }

    /// Set the timestamp tolerance.
    pub fn with_max_skew(mut self, max_skew: Duration) -> Self {
        self.max_skew = max_skew;
        self
    }

    /// Pin the robot's wall clock to `now` (see [`RobotOptions::clock`]).
    pub fn with_fixed_clock(mut self, now: SystemTime) -> Self {
        self.clock = Some(now);
        self
    }
}

/// A scripted misbehaviour. Faults are queued with [`FakeRobot::push_fault`] and consumed
/// one per incoming request (any path), first in first out, before the normal checks.
/// A faulted request is recorded in [`FakeRobot::rejected`] (except [`Fault::Hang`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Reply with this HTTP status and plain-text body (recorded code: the status).
    HttpStatus(u16, String),
    /// The platform's error shape with this code and message: DingTalk/WeCom
    /// 200 `{"errcode","errmsg"}`, Feishu 200 `{"code","msg","data"}`, Slack HTTP status =
    /// the code if it is 400–599 (else 400) with the message as the bare body word.
    PlatformError(i64, String),
    /// The platform's own rate-limit reply: DingTalk errcode 130101, WeCom 45009, Feishu
    /// 11232 (plus `x-ogw-ratelimit-reset` if `Some`), Slack HTTP 429 `rate_limited`
    /// with `Retry-After` if `Some` (no header if `None`). Does not touch the quota window.
    RateLimited {
        /// Seconds to advertise (Slack `Retry-After`, Feishu `x-ogw-ratelimit-reset`).
        retry_after: Option<u64>,
    },
    /// Read the request, then drop the TCP connection without a reply (RST, SO_LINGER 0).
    Reset,
    /// Read the request, wait this long, then handle it normally. The request is processed
    /// (and, if valid, accepted) even if the client has given up meanwhile — like a real
    /// platform that delivered a message whose response the client never saw.
    Hang(Duration),
}

/// A message the robot accepted (it would have appeared in the group).
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Parsed JSON body.
    pub body: Value,
    /// Raw body text.
    pub raw: String,
    /// When it was accepted.
    pub at: Instant,
    /// Raw query string (still percent-encoded, without `?`).
    pub query: String,
    /// Observations that did not cause a refusal, e.g. Slack
    /// `"text truncated: 40001 chars > 40000"` or WeCom news title truncation.
    pub notes: Vec<String>,
}

/// A request the robot refused (or that a [`Fault`] consumed).
#[derive(Debug, Clone)]
pub struct Rejected {
    /// DingTalk/WeCom `errcode`, Feishu `code` (as decimal text), Slack error word,
    /// or the HTTP status for bare HTTP errors; `"reset"` for [`Fault::Reset`].
    pub code: String,
    /// Human-readable explanation (the platform message plus detail).
    pub reason: String,
    /// When it was refused.
    pub at: Instant,
    /// Raw body (lossy UTF-8).
    pub raw_body: String,
    /// Raw query string.
    pub query: String,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    accepted: usize,
    rejected: usize,
}

#[derive(Default)]
struct State {
    accepted: Vec<Accepted>,
    rejected: Vec<Rejected>,
    faults: VecDeque<Fault>,
}

struct Shared {
    platform: Platform,
    options: RobotOptions,
    quotas: Vec<Quota>,
    state: Mutex<State>,
    requests: AtomicUsize,
    counts: watch::Sender<Counts>,
}

/// A running fake robot. Dropping it (or [`FakeRobot::shutdown`]) stops the server and
/// closes its connections.
pub struct FakeRobot {
    platform: Platform,
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl fmt::Debug for FakeRobot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeRobot")
            .field("platform", &self.platform)
            .field("addr", &self.addr)
            .field("requests", &self.requests())
            .finish()
    }
}

impl FakeRobot {
    /// Bind `127.0.0.1:0` and serve on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime, or if the loopback port cannot be bound.
    pub async fn start(platform: Platform, options: RobotOptions) -> FakeRobot {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let quotas = options
            .quotas
            .clone()
            .unwrap_or_else(|| platform.default_quotas());
        let shared = Arc::new(Shared {
            platform,
            options,
            quotas,
            state: Mutex::new(State::default()),
            requests: AtomicUsize::new(0),
            counts: watch::Sender::new(Counts::default()),
        });
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(accept_loop(listener, shared.clone(), stop_rx));
        FakeRobot {
            platform,
            addr,
            shared,
            stop,
        }
    }

    /// Which platform this robot imitates.
    pub fn platform(&self) -> Platform {
        self.platform
    }

    /// The bound loopback address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no path).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The robot URL a user would configure:
    /// DingTalk `…/robot/send?access_token=TOKEN`, WeCom `…/cgi-bin/webhook/send?key=TOKEN`,
    /// Feishu `…/open-apis/bot/v2/hook/TOKEN`, Slack `…/services/T000/B000/TOKEN`.
    pub fn url(&self) -> String {
        let token = &self.shared.options.token;
        let base = self.base_url();
        match self.platform {
            Platform::Dingtalk => format!("{base}/robot/send?access_token={token}"),
            Platform::Wecom => format!("{base}/cgi-bin/webhook/send?key={token}"),
            Platform::Feishu => format!("{base}/open-apis/bot/v2/hook/{token}"),
            Platform::Slack => format!("{base}/services/T000/B000/{token}"),
        }
    }

    /// The options the robot runs with.
    pub fn options(&self) -> &RobotOptions {
        &self.shared.options
    }

    /// The quotas in force (resolved from [`RobotOptions::quotas`]).
    pub fn quotas(&self) -> &[Quota] {
        &self.shared.quotas
    }

    /// Queue a fault for an upcoming request (FIFO, one per request).
    pub fn push_fault(&self, fault: Fault) {
        self.shared.lock().faults.push_back(fault);
    }

    /// Faults still queued.
    pub fn pending_faults(&self) -> usize {
        self.shared.lock().faults.len()
    }

    /// Accepted messages, in order.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.shared.lock().accepted.clone()
    }

    /// Run `f` on the accepted messages without cloning them (for large benchmark runs).
    pub fn with_accepted<R>(&self, f: impl FnOnce(&[Accepted]) -> R) -> R {
        f(&self.shared.lock().accepted)
    }

    /// The most recently accepted message.
    pub fn last_accepted(&self) -> Option<Accepted> {
        self.shared.lock().accepted.last().cloned()
    }

    /// Number of accepted messages (cheaper than `accepted().len()`).
    pub fn accepted_count(&self) -> usize {
        self.shared.counts.borrow().accepted
    }

    /// Refused requests (including those consumed by faults), in order.
    pub fn rejected(&self) -> Vec<Rejected> {
        self.shared.lock().rejected.clone()
    }

    /// Number of refused requests.
    pub fn rejected_count(&self) -> usize {
        self.shared.counts.borrow().rejected
    }

    /// All requests seen (counted on arrival, before the body is read).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Wait (without polling) until at least `n` messages were accepted; `false` on timeout.
    pub async fn wait_accepted(&self, n: usize, timeout: Duration) -> bool {
        self.wait_counts(timeout, |c| c.accepted >= n).await
    }

    /// Wait (without polling) until at least `n` requests were refused; `false` on timeout.
    pub async fn wait_rejected(&self, n: usize, timeout: Duration) -> bool {
        self.wait_counts(timeout, |c| c.rejected >= n).await
    }

    async fn wait_counts(&self, timeout: Duration, pred: impl FnMut(&Counts) -> bool) -> bool {
        let mut rx = self.shared.counts.subscribe();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(pred)).await,
            Ok(Ok(_))
        )
    }

    /// Largest number of accepted messages whose acceptance times fall within one
    /// half-open window `[t, t + per)` — the same window the quota check uses, so with
    /// quota `max/per` this never exceeds `max`.
    pub fn max_in_any_window(&self, per: Duration) -> usize {
        let st = self.shared.lock();
        let mut best = 0;
        let mut start = 0;
        for (end, a) in st.accepted.iter().enumerate() {
            while start <= end && a.at.duration_since(st.accepted[start].at) >= per {
                start += 1;
            }
            best = best.max(end + 1 - start);
        }
        best
    }

    /// Forget accepted and rejected messages, queued faults and the request count (also
    /// resets the quota window).
    pub fn clear(&self) {
        let mut st = self.shared.lock();
        *st = State::default();
        self.shared.requests.store(0, Ordering::SeqCst);
        self.shared.counts.send_replace(Counts::default());
    }

    /// Stop accepting connections and close open ones. Also done on drop.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }
}

impl Drop for FakeRobot {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run the platform checks, then the quota, and record the outcome.
    fn process(&self, parts: &Parts, body: &Bytes) -> Reply {
        let now = sign::since_epoch(self.options.clock.unwrap_or_else(SystemTime::now));
        let ctx = Ctx {
            options: &self.options,
            now,
        };
        let query = parts.uri.query().unwrap_or("");
        let incoming = Incoming {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query,
            content_type: parts
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            body,
        };
        let checked = match self.platform {
            Platform::Dingtalk => dingtalk::check(&ctx, &incoming),
            Platform::Wecom => wecom::check(&ctx, &incoming),
            Platform::Feishu => feishu::check(&ctx, &incoming),
            Platform::Slack => slack::check(&ctx, &incoming),
        };
        match checked {
            Ok(valid) => self.commit(valid, query),
            Err(refusal) => self.refuse(refusal, body, query),
        }
    }

    /// Apply the quotas and record an accepted message, atomically.
    fn commit(&self, valid: Valid, query: &str) -> Reply {
        let mut st = self.lock();
        let now = Instant::now();
        if let Some((quota, wait)) = self.over_quota(&st.accepted, now) {
            let refusal = match self.platform {
                Platform::Dingtalk => dingtalk::rate_limited(quota.max, quota.per.as_secs()),
                Platform::Wecom => wecom::rate_limited(),
                Platform::Feishu => feishu::rate_limited(None),
                Platform::Slack => slack::rate_limited(Some(ceil_secs(wait))),
            };
            st.rejected.push(Rejected {
                code: refusal.code,
                reason: format!("{} (quota {}/{:?})", refusal.reason, quota.max, quota.per),
                at: now,
                raw_body: valid.raw,
                query: query.to_owned(),
            });
            let rejected = st.rejected.len();
            self.counts.send_modify(|c| c.rejected = rejected);
            return refusal.reply;
        }
        let accepted = if self.options.keep_bodies {
            Accepted {
                body: valid.value,
                raw: valid.raw,
                at: now,
                query: query.to_owned(),
                notes: valid.notes,
            }
        } else {
            Accepted {
                body: Value::Null,
                raw: String::new(),
                at: now,
                query: query.to_owned(),
                notes: Vec::new(),
            }
        };
        st.accepted.push(accepted);
        let accepted = st.accepted.len();
        self.counts.send_modify(|c| c.accepted = accepted);
        drop(st);
        match self.platform {
            Platform::Dingtalk => dingtalk::success(),
            Platform::Wecom => wecom::success(),
            Platform::Feishu => feishu::success(),
            Platform::Slack => slack::success(),
        }
    }

    /// The violated quota with the longest wait until a slot frees, if any.
    fn over_quota(&self, accepted: &[Accepted], now: Instant) -> Option<(Quota, Duration)> {
        let mut worst: Option<(Quota, Duration)> = None;
        for q in &self.quotas {
            // In the window: accepted less than `per` ago.
            let start = match now.checked_sub(q.per) {
                Some(cut) => accepted.partition_point(|a| a.at <= cut),
                None => 0,
            };
            let count = accepted.len() - start;
            if count < q.max {
                continue;
            }
            let wait = if q.max == 0 {
                q.per
            } else {
                // The slot frees when the (count - max + 1)-th oldest in-window entry ages out.
                let oldest = accepted[start + count - q.max].at;
                (oldest + q.per).saturating_duration_since(now)
            };
            if worst.is_none_or(|(_, w)| wait > w) {
                worst = Some((*q, wait));
            }
        }
        worst
    }

    fn refuse(&self, refusal: Refusal, body: &[u8], query: &str) -> Reply {
        self.record_rejected(refusal.code, refusal.reason, body, query);
        refusal.reply
    }

    fn record_rejected(&self, code: String, reason: String, body: &[u8], query: &str) {
        let mut st = self.lock();
        st.rejected.push(Rejected {
            code,
            reason,
            at: Instant::now(),
            raw_body: String::from_utf8_lossy(body).into_owned(),
            query: query.to_owned(),
        });
        let rejected = st.rejected.len();
        self.counts.send_modify(|c| c.rejected = rejected);
    }

    /// The reply for a scripted fault other than `Reset` / `Hang`.
    fn fault_refusal(&self, fault: Fault) -> Refusal {
        match fault {
            Fault::HttpStatus(status, body) => Refusal {
                reason: format!("fault: HTTP {status} {body}"),
                reply: Reply::text(status, TEXT_CT, body),
                code: status.to_string(),
            },
            Fault::PlatformError(code, msg) => {
                let mut r = match self.platform {
                    Platform::Dingtalk | Platform::Wecom => dingtalk::error(code, &msg, ""),
                    Platform::Feishu => feishu::error(code, &msg, ""),
                    Platform::Slack => {
                        let status = u16::try_from(code)
                            .ok()
                            .filter(|s| (400..=599).contains(s))
                            .unwrap_or(400);
                        slack::error(status, &msg, "")
                    }
                };
                r.reason = format!("fault: {}", r.reason);
                r
            }
            Fault::RateLimited { retry_after } => {
                let mut r = match self.platform {
                    Platform::Dingtalk => dingtalk::rate_limited(20, 60),
                    Platform::Wecom => wecom::rate_limited(),
                    Platform::Feishu => feishu::rate_limited(retry_after),
                    Platform::Slack => slack::rate_limited(retry_after),
                };
                r.reason = format!("fault: {}", r.reason);
                r
            }
            Fault::Reset | Fault::Hang(_) => unreachable!("handled by the connection"),
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

/// Returned by the service to make hyper drop the connection without a response.
#[derive(Debug)]
struct ResetConnection;

impl fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("scripted connection reset")
    }
}

impl std::error::Error for ResetConnection {}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, shared.clone(), stop.clone()));
                }
                // e.g. EMFILE under a benchmark: back off briefly instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    // A second handle on the socket so a `Fault::Reset` can set SO_LINGER 0 (→ RST on close).
    let linger_handle = stream
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(|fd| Arc::new(TcpSocket::from_std_stream(std::net::TcpStream::from(fd))));
    let service = service_fn(move |req| handle(shared.clone(), linger_handle.clone(), req));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        _ = stop.changed() => {}
    }
}

async fn handle(
    shared: Arc<Shared>,
    linger_handle: Option<Arc<TcpSocket>>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, ResetConnection> {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let fault = shared.lock().faults.pop_front();
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_READ_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            let query = parts.uri.query().unwrap_or("");
            shared.record_rejected(
                "413".into(),
                format!("body larger than {MAX_READ_BYTES} bytes"),
                b"",
                query,
            );
            return Ok(response(Reply::text(413, TEXT_CT, "Payload Too Large")));
        }
        Err(_) => return Err(ResetConnection), // client went away mid-body
    };
    let reply = match fault {
        None => shared.process(&parts, &body),
        Some(Fault::Hang(delay)) => {
            // Process in a detached task so the outcome is recorded even if the client
            // times out and closes the connection meanwhile.
            let task = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                shared.process(&parts, &body)
            });
            match task.await {
                Ok(reply) => reply,
                Err(_) => return Err(ResetConnection),
            }
        }
        Some(Fault::Reset) => {
            let query = parts.uri.query().unwrap_or("");
            shared.record_rejected(
                "reset".into(),
                "fault: connection reset".into(),
                &body,
                query,
            );
            if let Some(sock) = linger_handle {
                let _ = sock.set_zero_linger();
            }
            return Err(ResetConnection);
        }
        Some(fault) => {
            let refusal = shared.fault_refusal(fault);
            shared.refuse(refusal, &body, parts.uri.query().unwrap_or(""))
        }
    };
    Ok(response(reply))
}

fn response(reply: Reply) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    resp
}
