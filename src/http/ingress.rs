//! `POST /hooks/{source}`: verify, read, parse, route, commit, answer — in that order, so
//! nothing is read from an unauthenticated client beyond its headers, and nothing is
//! acknowledged before it is durable.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::json;

use super::{AppState, json_error};
use crate::config::SourceAuthConfig;
use crate::gitee::auth::{self, AuthError};
use crate::gitee::{EventKind, payload};
use crate::route::{RouteKey, channels_for};
use crate::store::NewEvent;
use crate::time_util::now_ms;

/// The one answer to every authentication failure: which check failed is logged, not told.
const AUTH_FAILED: &str = "authentication failed: X-Gitee-Token / X-Gitee-Timestamp missing, wrong or outside the allowed clock skew";

pub async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .json(json!({ "error": "webhooks are delivered with POST" }))
}

/// Why a delivery is refused; turned into a JSON error response at the end.
struct Refusal(StatusCode, String);

impl Refusal {
    fn response(self) -> HttpResponse {
        json_error(self.0, self.1)
    }
}

/// A request header that must appear at most once.
fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a [u8]>, Refusal> {
    let mut values = headers.get_all(name);
    let first = values.next();
    if values.next().is_some() {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            format!("header {name} appears more than once"),
        ));
    }
    Ok(first.map(|v| v.as_bytes()))
}

fn text(value: Option<&[u8]>) -> Option<&str> {
    value.and_then(|v| std::str::from_utf8(v).ok())
}

pub async fn receive(
    req: HttpRequest,
    path: web::Path<String>,
    mut body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let source_name = path.into_inner();
    let Some(source) = state.config.sources.get(&source_name) else {
        let shown: String = source_name.chars().take(64).collect();
        return json_error(
            StatusCode::NOT_FOUND,
            format!("no source named `{shown}` is configured"),
        );
    };
    let headers = req.headers();
    let max_body = state.config.max_body;

    // Refuse an announced oversize body before reading any of it.
    if let Some(len) = text(headers.get(header::CONTENT_LENGTH).map(|v| v.as_bytes()))
        .and_then(|v| v.parse::<u64>().ok())
        && len > max_body as u64
    {
        return too_large(max_body);
    }

    let (token, timestamp, event_header, ping) = match (
        single_header(headers, "x-gitee-token"),
        single_header(headers, "x-gitee-timestamp"),
        single_header(headers, "x-gitee-event"),
        single_header(headers, "x-gitee-ping"),
    ) {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        (Err(r), ..) | (_, Err(r), ..) | (_, _, Err(r), _) | (.., Err(r)) => return r.response(),
    };
    let auth = source_auth(&source.auth);
    let token_text = match token {
        // A token that is not UTF-8 cannot be right; treat it like a wrong one.
        Some(t) => Some(std::str::from_utf8(t).unwrap_or("\u{fffd}")),
        None => None,
    };
    if let Err(e) = auth::verify(
        &auth,
        token_text,
        text(timestamp),
        now_ms(),
        source.max_skew.as_millis() as i64,
    ) {
        log_auth_failure(&source_name, &e);
        return json_error(StatusCode::UNAUTHORIZED, AUTH_FAILED);
    }

    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let mime = ct.split(';').next().unwrap_or("").trim();
        if mime != "application/json" && !mime.ends_with("+json") {
            return json_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be application/json (Gitee's legacy form-encoded hooks are not supported)",
            );
        }
    }

    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else {
            return json_error(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            );
        };
        if bytes.len() + chunk.len() > max_body {
            return too_large(max_body);
        }
        bytes.extend_from_slice(&chunk);
    }
    let bytes = bytes.freeze();

    let is_test = text(ping).is_some_and(|p| p.trim().eq_ignore_ascii_case("true"));
    let raw = match payload::parse_json(&bytes) {
        Ok(raw) => raw,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let kind = match detect_kind(text(event_header), &raw) {
        Ok(kind) => kind,
        Err(refusal) => return refusal.response(),
    };
    let delivery = match payload::parse_value(kind, &raw) {
        Ok(d) => d,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let key = RouteKey {
        kind,
        action: &delivery.action,
        repo: &delivery.repo,
        branch: delivery.branch.as_deref(),
        is_test,
    };
    let channels: Vec<String> = channels_for(&state.config.routes, &key)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let event = NewEvent {
        source: source_name.clone(),
        kind,
        action: delivery.action.clone(),
        repo: delivery.repo.clone(),
        is_test,
        received_ms: now_ms(),
        payload: bytes.to_vec(),
        channels: channels.clone(),
    };
    match state.writer.insert(event).await {
        Ok(receipt) => {
            for channel in &channels {
                state.dispatcher.notify(channel);
            }
            tracing::info!(
                source = %source_name,
                event_id = receipt.event_id,
                kind = %kind,
                action = %delivery.action,
                repo = %delivery.repo,
                test = is_test,
                deliveries = receipt.deliveries,
                "accepted"
            );
            HttpResponse::Ok().json(json!({
                "event_id": receipt.event_id,
                "deliveries": receipt.deliveries,
            }))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot store the event: answering 503 so Gitee records a failure");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the event could not be stored; it was not accepted, please retry",
            )
        }
    }
}

fn too_large(max_body: usize) -> HttpResponse {
    json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than max_body ({max_body} bytes)"),
    )
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
    Err(Refusal(
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
