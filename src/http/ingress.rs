//! `POST /hooks/{source}`: check the headers (announced size, duplicates, authentication,
//! content type), read the body (bounded in size and in time), refuse replays, parse, route,
//! commit, answer — in that order, so nothing is read from an unauthenticated client beyond
//! its headers, and nothing is acknowledged before it is durable.
//!
//! | status | when |
//! |---|---|
//! | 200 | stored: `{"event_id", "deliveries"}` (plus `"duplicate": true` for a re-sent delivery) |
//! | 400 | a header repeated, a body that is not a JSON object of the event's shape, no event |
//! | 401 | any authentication failure (one message; the reason is only logged) |
//! | 404 | no such source |
//! | 405 | not POST (`Allow: POST`) |
//! | 408 | the body stalled ([`BODY_IDLE_TIMEOUT`]) or took too long ([`BODY_TIMEOUT`]) |
//! | 409 | signature mode: the (timestamp, token) pair was already used with another body |
//! | 413 | larger than `max_body` (announced or counted; never read past the limit) |
//! | 415 | a `Content-Type` other than JSON |
//! | 503 | the store could not commit: nothing was accepted, Gitee should retry |
//!
//! Every refusal is JSON `{"error": "..."}` and never carries a secret, a token or a body
//! value. A refusal sent before the body was read closes the connection instead of letting
//! the server drain whatever the client still sends.
//!
//! [`check_headers`] and [`parse_body`] are the pure decisions, public for the fuzz harness.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::json;

use super::AppState;
use super::replay::{self, Begin, ReplayKey};
use crate::config::{Source, SourceAuthConfig};
use crate::gitee::EventKind;
use crate::gitee::auth::{self, AuthError};
use crate::gitee::payload::{self, Delivery};
use crate::route::{RouteKey, channels_for};
use crate::store::{EventReceipt, NewEvent};
use crate::time_util::now_ms;

/// The one answer to every authentication failure: which check failed is logged, not told.
const AUTH_FAILED: &str = "authentication failed: X-Gitee-Token / X-Gitee-Timestamp missing, wrong or outside the allowed clock skew";

/// The longest silence allowed while the body arrives. (The request head has its own limit,
/// the server's `client_request_timeout`.) Gitee sends its few kilobytes at once; a client
/// that announces a body and then stalls is a slow-loris, answered 408 and disconnected.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a whole body may take (5 MiB at ~175 KB/s).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a request waits for an identical one that is being committed (Gitee's retry
/// racing the original) before answering 503 so Gitee tries again later.
const DUPLICATE_WAIT: Duration = Duration::from_secs(30);

/// Why a delivery is refused; turned into a JSON error response. The message never contains
/// a secret, a token or a value from the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }
}

/// What a delivery's headers establish once they passed every check.
#[derive(Debug, Clone)]
pub struct HeaderFacts {
    /// `X-Gitee-Event`, when it is UTF-8.
    pub event: Option<String>,
    /// `X-Gitee-Ping: true`: the hook settings' Test button.
    pub is_test: bool,
    /// The announced `Content-Length` (already checked against `max_body`).
    pub content_length: Option<u64>,
    /// Signature mode only: the accepted (timestamp, token) pair, its window's end and the
    /// raw event/ping headers that, with the body, identify the delivery's content.
    pub replay: Option<ReplayCheck>,
}

#[derive(Debug, Clone)]
pub struct ReplayCheck {
    pub key: ReplayKey,
    pub expires_ms: i64,
    event: Option<Vec<u8>>,
    ping: Option<Vec<u8>>,
}

impl ReplayCheck {
    /// Of the body as stored (`payload_codec::encode`), which differs whenever the body does.
    pub fn fingerprint(&self, stored_body: &[u8]) -> [u8; 32] {
        replay::fingerprint(stored_body, self.event.as_deref(), self.ping.as_deref())
    }
}

pub async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .json(json!({ "error": "webhooks are delivered with POST" }))
}

/// A request header that must appear at most once.
fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a [u8]>, Refusal> {
    let mut values = headers.get_all(name);
    let first = values.next();
    if values.next().is_some() {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("header {name} appears more than once"),
        ));
    }
    Ok(first.map(|v| v.as_bytes()))
}

fn text(value: Option<&[u8]>) -> Option<&str> {
    value.and_then(|v| std::str::from_utf8(v).ok())
}

/// Every check that needs only the headers, in the order the endpoint makes them: announced
/// size (413), repeated headers (400), authentication (401), content type (415).
pub fn check_headers(
    source: &Source,
    headers: &HeaderMap,
    max_body: usize,
    now_ms: i64,
) -> Result<HeaderFacts, Refusal> {
    // Refuse an announced oversize body before reading any of it. (actix-http itself refuses
    // a malformed Content-Length with a bare 400 before the request gets here.)
    let content_length = text(headers.get(header::CONTENT_LENGTH).map(|v| v.as_bytes()))
        .and_then(|v| v.trim().parse::<u64>().ok());
    if content_length.is_some_and(|len| len > max_body as u64) {
        return Err(too_large(max_body));
    }

    let token = single_header(headers, "x-gitee-token")?;
    let timestamp = single_header(headers, "x-gitee-timestamp")?;
    let event = single_header(headers, "x-gitee-event")?;
    let ping = single_header(headers, "x-gitee-ping")?;
    let content_type = single_header(headers, "content-type")?;

    let auth = source_auth(&source.auth);
    // A token that is not UTF-8 cannot be right; treat it like a wrong one.
    let token_text = token.map(|t| std::str::from_utf8(t).unwrap_or("\u{fffd}"));
    let max_skew_ms = i64::try_from(source.max_skew.as_millis()).unwrap_or(i64::MAX);
    if let Err(e) = auth::verify(&auth, token_text, text(timestamp), now_ms, max_skew_ms) {
        log_auth_failure(&source.name, &e);
        return Err(Refusal::new(StatusCode::UNAUTHORIZED, AUTH_FAILED));
    }

    if let Some(ct) = content_type {
        let ct = String::from_utf8_lossy(ct).to_ascii_lowercase();
        let mime = ct.split(';').next().unwrap_or("").trim();
        if mime != "application/json" && !mime.ends_with("+json") {
            return Err(Refusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be application/json (Gitee's legacy form-encoded hooks are not supported)",
            ));
        }
    }

    let replay = match (&source.auth, token, text(timestamp)) {
        (SourceAuthConfig::Signature(_), Some(token), Some(ts)) => {
            // `verify` accepted it: ASCII digits that fit an i64.
            let ts_ms: i64 = ts.parse().unwrap_or(now_ms);
            Some(ReplayCheck {
                key: ReplayKey::new(&source.name, ts, token),
                expires_ms: ts_ms.saturating_add(max_skew_ms),
                event: event.map(<[u8]>::to_vec),
                ping: ping.map(<[u8]>::to_vec),
            })
        }
        _ => None,
    };

    Ok(HeaderFacts {
        event: text(event).map(str::to_owned),
        is_test: text(ping).is_some_and(|p| p.trim().eq_ignore_ascii_case("true")),
        content_length,
        replay,
    })
}

/// Parses a body the headers allowed: a JSON object (UTF-8, nested at most 128 deep) of a
/// supported event, named by `X-Gitee-Event` or else by the body's `hook_name`, whose fields
/// have the right structure. Every failure is a 400 that names the JSON path, not the value.
pub fn parse_body(facts: &HeaderFacts, body: &[u8]) -> Result<(EventKind, Delivery), Refusal> {
    // The common case, a well-formed body of the event its header names, in one pass; the
    // rest (and every error message) through the two steps below.
    if let Some(kind) = facts.event.as_deref().and_then(EventKind::parse)
        && let Some(delivery) = payload::parse_fast(kind, body)
    {
        return Ok((kind, delivery));
    }
    let raw = payload::parse_json(body)
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let kind = detect_kind(facts.event.as_deref(), &raw)?;
    let delivery = payload::parse_value(kind, &raw)
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok((kind, delivery))
}

pub async fn receive(
    req: HttpRequest,
    mut body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    // Read from the match, not `web::Path`: a segment that does not percent-decode to UTF-8
    // is then an unknown source (404 JSON) rather than the extractor's plain-text 404.
    let source_name = req.match_info().get("source").unwrap_or_default();
    let Some(source) = state.config.sources.get(source_name) else {
        let shown: String = source_name.chars().take(64).collect();
        return refuse_unread(
            Refusal::new(
                StatusCode::NOT_FOUND,
                format!("no source named `{shown}` is configured"),
            ),
            body,
        );
    };
    let max_body = state.config.max_body;

    let facts = match check_headers(source, req.headers(), max_body, now_ms()) {
        Ok(facts) => facts,
        Err(refusal) => return refuse_unread(refusal, body),
    };

    let bytes = match read_body(&mut body, max_body, facts.content_length).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refuse_unread(refusal, body),
    };
    drop(body);

    // Compressed here, on the HTTP worker, not in the group commit every webhook waits for.
    let payload = crate::store::payload_codec::encode(&bytes);

    // Signature mode: one delivery per (timestamp, token) pair.
    let mut reservation = None;
    if let Some(check) = &facts.replay {
        let cache = replay::cache_for(&state);
        // Of the stored bytes: a third of the body's length to hash, and as telling (the
        // encoding is lossless and the same for the same body in this process, which is
        // as long as the cache lives).
        let fingerprint = check.fingerprint(&payload);
        let waited_since = tokio::time::Instant::now();
        loop {
            match cache.begin(&check.key, fingerprint, check.expires_ms, now_ms()) {
                Begin::Fresh(r) => {
                    reservation = Some(r);
                    break;
                }
                Begin::Duplicate(receipt) => {
                    tracing::info!(
                        source = %source.name,
                        event_id = receipt.event_id,
                        "the same delivery again (Gitee re-sent it): answered with the original event, nothing stored"
                    );
                    return accepted(receipt, true);
                }
                Begin::Conflict => {
                    tracing::warn!(
                        source = %source.name,
                        "webhook refused: its X-Gitee-Timestamp/X-Gitee-Token pair was already used with another body (replay?)"
                    );
                    // 409, not 401: the token itself is genuine (a 401 would send the user
                    // off to check a secret that is right); what is refused is reusing it.
                    // The price: two different deliveries of one hook signed in the same
                    // millisecond (several refs pushed at once, say) share a pair, and the
                    // second is refused too; Gitee's hook log then shows this 409 for it.
                    return refuse(Refusal::new(
                        StatusCode::CONFLICT,
                        "this X-Gitee-Timestamp / X-Gitee-Token pair was already used by a delivery with another body; refused as a replay",
                    ));
                }
                Begin::Wait(mut rx) => {
                    let left = DUPLICATE_WAIT.saturating_sub(waited_since.elapsed());
                    // Wakes when the other request commits (Ok) or gives up (Err); either way
                    // `begin` then says what to do.
                    if tokio::time::timeout(left, rx.changed()).await.is_err() {
                        return refuse(Refusal::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "the same delivery is still being stored; it was not accepted twice, please retry",
                        ));
                    }
                }
            }
        }
    }

    let (kind, delivery) = match parse_body(&facts, &bytes) {
        Ok(parsed) => parsed,
        Err(refusal) => return refuse(refusal),
    };
    let key = RouteKey {
        kind,
        action: &delivery.action,
        repo: &delivery.repo,
        branch: delivery.branch.as_deref(),
        is_test: facts.is_test,
    };
    let channels: Vec<String> = channels_for(&state.config.routes, &key)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let event = NewEvent {
        source: source.name.clone(),
        kind,
        action: delivery.action.clone(),
        repo: delivery.repo.clone(),
        is_test: facts.is_test,
        received_ms: now_ms(),
        payload,
        channels: channels.clone(),
    };
    match state.writer.insert(event).await {
        Ok(receipt) => {
            if let Some(r) = reservation {
                r.commit(receipt);
            }
            for channel in &channels {
                state.dispatcher.notify(channel);
            }
            tracing::info!(
                source = %source.name,
                event_id = receipt.event_id,
                kind = %kind,
                action = %delivery.action,
                repo = %delivery.repo,
                test = facts.is_test,
                deliveries = receipt.deliveries,
                "accepted"
            );
            accepted(receipt, false)
        }
        Err(e) => {
            // The reservation (if any) is dropped: Gitee's retry of this delivery is welcome.
            tracing::error!(error = %e, "cannot store the event: answering 503 so Gitee records a failure");
            refuse(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the event could not be stored; it was not accepted, please retry",
            ))
        }
    }
}

fn accepted(receipt: EventReceipt, duplicate: bool) -> HttpResponse {
    let mut body = json!({
        "event_id": receipt.event_id,
        "deliveries": receipt.deliveries,
    });
    if duplicate {
        body["duplicate"] = json!(true);
    }
    HttpResponse::Ok().json(body)
}

/// Reads the whole body: at most `max_body` bytes (413 past it, without reading further),
/// with no silence longer than [`BODY_IDLE_TIMEOUT`] and within [`BODY_TIMEOUT`] (408).
async fn read_body(
    body: &mut web::Payload,
    max_body: usize,
    announced: Option<u64>,
) -> Result<Bytes, Refusal> {
    let deadline = tokio::time::Instant::now() + BODY_TIMEOUT;
    // An announced length (already checked against max_body; only authenticated senders get
    // here) is reserved at once, so the buffer is not regrown and copied as it fills. A
    // chunked body grows as it arrives.
    let reserve = announced.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut bytes = BytesMut::with_capacity(reserve.min(max_body));
    loop {
        let wake = (tokio::time::Instant::now() + BODY_IDLE_TIMEOUT).min(deadline);
        let next = tokio::time::timeout_at(wake, body.next())
            .await
            .map_err(|_| {
                Refusal::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body did not arrive in time",
                )
            })?;
        match next {
            None => return Ok(bytes.freeze()),
            Some(Err(_)) => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                ));
            }
            Some(Ok(chunk)) => {
                if bytes.len().saturating_add(chunk.len()) > max_body {
                    return Err(too_large(max_body));
                }
                bytes.extend_from_slice(&chunk);
            }
        }
    }
}

fn too_large(max_body: usize) -> Refusal {
    Refusal::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than max_body ({max_body} bytes)"),
    )
}

fn error_json(refusal: &Refusal) -> Bytes {
    Bytes::from(json!({ "error": refusal.message }).to_string())
}

/// A refusal after the body was read.
fn refuse(refusal: Refusal) -> HttpResponse {
    HttpResponse::build(refusal.status)
        .content_type("application/json")
        .body(error_json(&refusal))
}

/// A refusal before (all of) the body was read. The response body holds on to the request
/// payload until it has been written, so actix-http sees an unfinished request and closes
/// the connection after answering (after its short `client_disconnect_timeout` linger)
/// instead of reading and discarding, for as long as the client likes, a chunked body that
/// was refused. (For a `Content-Length` body it closes either way.)
fn refuse_unread(refusal: Refusal, payload: web::Payload) -> HttpResponse {
    HttpResponse::build(refusal.status)
        .content_type("application/json")
        .body(HoldPayload {
            json: Some(error_json(&refusal)),
            _payload: payload,
        })
}

struct HoldPayload {
    json: Option<Bytes>,
    _payload: web::Payload,
}

impl MessageBody for HoldPayload {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.json.as_ref().map_or(0, |b| b.len() as u64))
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(self.get_mut().json.take().map(Ok))
    }
}

/// The event kind from `X-Gitee-Event` (`Push Hook` or `push_hooks`), else the body's
/// `hook_name`.
fn detect_kind(header: Option<&str>, raw: &serde_json::Value) -> Result<EventKind, Refusal> {
    if let Some(kind) = header.and_then(EventKind::parse) {
        return Ok(kind);
    }
    if let Some(kind) = payload::detect_kind_in_value(None, raw) {
        return Ok(kind);
    }
    let named = header.map(|h| h.chars().take(64).collect::<String>());
    Err(Refusal::new(
        StatusCode::BAD_REQUEST,
        match named {
            Some(h) => format!(
                "unknown event `{h}`: gitee-relay handles Push, Tag Push, Issue, Merge Request and Note hooks"
            ),
            None => "no X-Gitee-Event header and no known hook_name in the body".to_owned(),
        },
    ))
}

fn source_auth(config: &SourceAuthConfig) -> auth::SourceAuth {
    match config {
        SourceAuthConfig::Signature(secret) => auth::SourceAuth::Signature {
            secret: secret.expose().to_owned(),
        },
        SourceAuthConfig::Password(password) => auth::SourceAuth::Password {
            password: password.expose().to_owned(),
        },
        SourceAuthConfig::Unauthenticated => auth::SourceAuth::Unauthenticated,
    }
}

fn log_auth_failure(source: &str, error: &AuthError) {
    tracing::warn!(source = %source, reason = %error, "webhook refused: authentication failed");
}
