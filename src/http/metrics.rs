//! `GET /metrics`, and the middleware around `POST /hooks/{source}` that gives every webhook a
//! request id (a tracing span around the handler, and the `X-Request-Id` response header) and
//! counts it in `gitee_relay_events_received_total`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use tracing::Instrument;

use super::AppState;
use crate::gitee::EventKind;
use crate::time_util::now_ms;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// `/metrics`: Prometheus text (0.0.4), or OpenMetrics when the scraper asks for it. The
/// queue gauges are read from the store now; if the store does not answer they keep their
/// last values and the scrape still succeeds.
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match state.admin.queue_counts().await {
        Ok(counts) => state.metrics.set_queue(&state.config, &counts, now_ms()),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the queue counts"),
    }
    let openmetrics = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let content_type = if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(state.metrics.encode(openmetrics))
}

/// A request id: the caller's `X-Request-Id` when it is a short token (a proxy's), else 16
/// random hex digits.
fn request_id(req: &ServiceRequest) -> String {
    let given = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
    match given {
        Some(id) => id.to_owned(),
        None => format!("{:016x}", fastrand::u64(..)),
    }
}

/// The `result` label of a webhook's answer.
pub fn result_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "accepted",
        400 => "bad_request",
        401 => "unauthorized",
        404 => "unknown_source",
        405 => "method_not_allowed",
        408 => "timeout",
        409 => "replay",
        413 => "too_large",
        415 => "unsupported_type",
        431 => "headers_too_large",
        503 => "unavailable",
        _ => "other",
    }
}

/// Wraps the webhook endpoint: span with the request id, the `X-Request-Id` header, and the
/// `events_received` counter. Labels are bounded: an unconfigured source and an event header
/// that is not a known kind count as `unknown`.
pub async fn observe_webhook(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request_id(&req);
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let source = req.match_info().get("source").unwrap_or_default();
    let source = match &state {
        Some(s) if s.config.sources.contains_key(source) => source.to_owned(),
        _ => "unknown".to_owned(),
    };
    let kind = req
        .headers()
        .get("x-gitee-event")
        .and_then(|v| v.to_str().ok())
        .and_then(EventKind::parse)
        .map_or("unknown", EventKind::as_str);
    let span = tracing::info_span!("webhook", request_id = %id);
    let result = next.call(req).instrument(span).await;
    let status = match &result {
        Ok(res) => res.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    if let Some(state) = &state {
        state
            .metrics
            .event_received(&source, kind, result_label(status));
    }
    let mut res = result?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}
