//! The admin API under `/api`: JSON, bearer-token protected (`admin.token`), newest first
//! with keyset pages (`?before=<id>&limit=<n>`, answered with `next_before`).
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /api/channels` | every channel: platform, masked URL, deliveries per state, last success, last error |
//! | `GET /api/events?source=&kind=&repo=` | events (`repo` may use `*`: `acme/*`) |
//! | `GET /api/events/{id}` | one event: its payload (credential fields masked) and deliveries |
//! | `GET /api/deliveries?channel=&state=&event=` | deliveries |
//! | `GET /api/deliveries/{id}` | one delivery, every attempt, and its message rendered now |
//! | `POST /api/deliveries/{id}/redeliver` | a new delivery of the same event to the same channel (202) |
//! | `POST /api/channels/{name}/test` | a sample event (`{"sample": name}`, default `push`), marked as a test, through the queue (202) |
//! | `POST /api/preview` | render a payload or sample for a channel or platform, optionally with an edited template |
//! | `GET /api/samples` | the built-in sample payloads |
//! | `GET /api/templates/{event}?channel=` or `?platform=` | the template text a channel or platform uses |
//!
//! Without `admin.token` every endpoint answers 403 saying the API is off; a missing or wrong
//! token is 401. Every response is scrubbed of the config's secrets ([`redact`]).

mod channels;
mod deliveries;
mod events;
mod preview;
pub mod redact;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::store::StoreError;
use redact::Redactor;

/// Largest `POST /api/preview` body: a payload Gitee could send plus a template.
const MAX_JSON: usize = 6 * 1024 * 1024;

/// Says why the API is off and how to turn it on.
pub const OFF: &str = "the admin API and console are off: set admin.token in the config (e.g. `admin: { token: \"${GITEE_RELAY_ADMIN_TOKEN}\" }` with 16+ random characters) to turn them on";

/// Mounts `/api`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api")
            .wrap(from_fn(require_token))
            .app_data(
                web::JsonConfig::default()
                    .limit(MAX_JSON)
                    .error_handler(|e, _| bad_input(e.to_string())),
            )
            .app_data(web::QueryConfig::default().error_handler(|e, _| bad_input(e.to_string())))
            .app_data(web::PathConfig::default().error_handler(|e, _| bad_input(e.to_string())))
            .route("/channels", web::get().to(channels::list))
            .route("/channels/{name}/test", web::post().to(channels::send_test))
            .route("/events", web::get().to(events::list))
            .route("/events/{id}", web::get().to(events::show))
            .route("/deliveries", web::get().to(deliveries::list))
            .route("/deliveries/{id}", web::get().to(deliveries::show))
            .route(
                "/deliveries/{id}/redeliver",
                web::post().to(deliveries::redeliver),
            )
            .route("/preview", web::post().to(preview::preview))
            .route("/samples", web::get().to(preview::samples))
            .route("/templates/{event}", web::get().to(preview::template))
            .default_service(web::to(|| async {
                plain_error(
                    StatusCode::NOT_FOUND,
                    "no such admin endpoint (see \"Operating it\" in README.md)",
                )
            })),
    );
}

/// A 400 for input the extractors refused, as JSON.
fn bad_input(message: String) -> actix_web::Error {
    actix_web::error::InternalError::from_response(
        message.clone(),
        plain_error(StatusCode::BAD_REQUEST, message),
    )
    .into()
}

/// An error response that never needs scrubbing (fixed text).
fn plain_error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "error": message.into() }))
}

/// Checks `Authorization: Bearer <admin.token>` in constant time.
async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req.into_response(plain_error(StatusCode::SERVICE_UNAVAILABLE, OFF)));
    };
    let Some(token) = &state.config.admin.token else {
        return Ok(req.into_response(plain_error(StatusCode::FORBIDDEN, OFF)));
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let ok = given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(token.expose().as_bytes())));
    if !ok {
        tracing::warn!(
            path = %req.path(),
            peer = ?req.peer_addr(),
            given = given.is_some(),
            "admin API: missing or wrong bearer token"
        );
        let res = HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"gitee-relay\""))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({ "error": "a valid admin token is required: Authorization: Bearer <admin.token>" }));
        return Ok(req.into_response(res));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// A JSON response scrubbed of every secret of the config.
pub(crate) fn reply(state: &AppState, status: StatusCode, mut body: Value) -> HttpResponse {
    Redactor::from_config(&state.config).scrub(&mut body);
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

pub(crate) fn error(
    state: &AppState,
    status: StatusCode,
    message: impl Into<String>,
) -> HttpResponse {
    reply(state, status, json!({ "error": message.into() }))
}

pub(crate) fn store_error(state: &AppState, e: &StoreError) -> HttpResponse {
    tracing::error!(error = %e, "admin API: store error");
    error(state, StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

/// The page of `?before=&limit=` (default 50 rows, at most 200).
pub(crate) fn page(before: Option<i64>, limit: Option<i64>) -> crate::store::admin::Page {
    crate::store::admin::Page::new(before, limit.unwrap_or(50))
}

/// An optional filter: absent and empty (a form's "any") are the same.
pub(crate) fn filter(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}
