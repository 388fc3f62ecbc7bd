//! `GET /api/events` and `GET /api/events/{id}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::redact::mask_payload;
use super::{error, filter, page, reply, store_error};
use crate::gitee::EventKind;
use crate::http::AppState;
use crate::store::admin::EventFilter;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    pub source: Option<String>,
    pub kind: Option<String>,
    pub repo: Option<String>,
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

pub async fn list(state: web::Data<AppState>, q: web::Query<EventQuery>) -> HttpResponse {
    let kind = match filter(&q.kind) {
        None => None,
        Some(k) => match EventKind::parse(&k) {
            Some(kind) => Some(kind),
            None => {
                return error(
                    &state,
                    StatusCode::BAD_REQUEST,
                    format!(
                        "`{k}` is not an event kind: use push, tag_push, issue, merge_request or note"
                    ),
                );
            }
        },
    };
    let f = EventFilter {
        source: filter(&q.source),
        kind,
        repo: filter(&q.repo),
    };
    match state.admin.list_events(&f, page(q.before, q.limit)).await {
        Ok(p) => reply(&state, StatusCode::OK, json!(p)),
        Err(e) => store_error(&state, &e),
    }
}

/// The payload as JSON with credential fields masked; a body that is not JSON (it was
/// accepted, so this does not happen) is shown as text.
pub fn masked_payload(payload: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(payload) {
        Ok(mut v) => {
            mask_payload(&mut v);
            v
        }
        Err(_) => Value::String(String::from_utf8_lossy(payload).into_owned()),
    }
}

pub async fn show(state: web::Data<AppState>, id: web::Path<i64>) -> HttpResponse {
    let id = id.into_inner();
    let record = match state.admin.event(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return error(&state, StatusCode::NOT_FOUND, format!("no event {id}")),
        Err(e) => return store_error(&state, &e),
    };
    let deliveries = match state.store.deliveries_of_event(id).await {
        Ok(d) => d,
        Err(e) => return store_error(&state, &e),
    };
    let mut body = json!(record.summary);
    body["payload"] = masked_payload(&record.payload);
    body["deliveries"] = json!(deliveries);
    reply(&state, StatusCode::OK, body)
}
