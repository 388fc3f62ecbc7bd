//! `GET /api/deliveries`, `GET /api/deliveries/{id}` and `POST /api/deliveries/{id}/redeliver`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::preview::render_for_channel;
use super::{error, filter, page, reply, store_error};
use crate::http::AppState;
use crate::platform::mask_url;
use crate::store::DeliveryState;
use crate::store::admin::{DeliveryFilter, DeliverySummary, RedeliverError};
use crate::time_util::now_ms;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    pub channel: Option<String>,
    pub state: Option<String>,
    /// Only the deliveries of this event.
    pub event: Option<i64>,
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

/// A delivery as the API shows it: the summary plus the channel's platform.
fn delivery_json(state: &AppState, d: &DeliverySummary) -> Value {
    let mut v = json!(d);
    v["platform"] = json!(
        state
            .config
            .channel(&d.channel)
            .map(|c| c.platform.as_str())
    );
    v
}

pub async fn list(state: web::Data<AppState>, q: web::Query<DeliveryQuery>) -> HttpResponse {
    let delivery_state = match filter(&q.state) {
        None => None,
        Some(s) => match DeliveryState::parse(&s) {
            Some(st) => Some(st),
            None => {
                return error(
                    &state,
                    StatusCode::BAD_REQUEST,
                    format!(
                        "`{s}` is not a delivery state: use pending, sending, delivered, retrying or dead"
                    ),
                );
            }
        },
    };
    let f = DeliveryFilter {
        channel: filter(&q.channel),
        state: delivery_state,
        event_id: q.event,
    };
    match state
        .admin
        .list_deliveries(&f, page(q.before, q.limit))
        .await
    {
        Ok(p) => {
            let items: Vec<Value> = p.items.iter().map(|d| delivery_json(&state, d)).collect();
            reply(
                &state,
                StatusCode::OK,
                json!({ "items": items, "next_before": p.next_before }),
            )
        }
        Err(e) => store_error(&state, &e),
    }
}

/// One delivery with every attempt (oldest first) and the message as it renders now.
pub async fn show(state: web::Data<AppState>, id: web::Path<i64>) -> HttpResponse {
    let id = id.into_inner();
    let d = match state.admin.delivery_summary(id).await {
        Ok(Some(d)) => d,
        Ok(None) => return error(&state, StatusCode::NOT_FOUND, format!("no delivery {id}")),
        Err(e) => return store_error(&state, &e),
    };
    let attempts = match state.store.attempts(id).await {
        Ok(a) => a,
        Err(e) => return store_error(&state, &e),
    };
    let attempts: Vec<Value> = attempts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            json!({
                "n": i + 1,
                "started_ms": a.started_ms,
                "duration_ms": a.duration_ms,
                "request": { "method": "POST", "url": a.request_url },
                "reply": { "status": a.http_status, "excerpt": a.reply_excerpt },
                "outcome": a.outcome,
                "error": a.error,
            })
        })
        .collect();
    let channel = state.config.channel(&d.channel);
    let message = match state.admin.event(d.event_id).await {
        Err(e) => return store_error(&state, &e),
        Ok(None) => json!({ "error": "the event is gone" }),
        Ok(Some(event)) => match channel {
            None => json!({ "error": format!("channel `{}` is no longer configured", d.channel) }),
            Some(_) => match render_for_channel(
                &state,
                &d.channel,
                d.kind,
                &event.payload,
                &event.summary.source,
                d.is_test,
                d.received_ms,
            ) {
                Ok(body) => json!({ "body": body }),
                Err(e) => json!({ "error": e }),
            },
        },
    };
    let mut delivery = delivery_json(&state, &d);
    delivery["url"] = json!(channel.map(|c| mask_url(c.url.expose())));
    reply(
        &state,
        StatusCode::OK,
        json!({
            "delivery": delivery,
            "attempts": attempts,
            // Rendered now, with the channel's current templates: what a redelivery sends.
            // (Before the keyword and the signature are added at send time.)
            "message": message,
            "can_redeliver": matches!(d.state, DeliveryState::Delivered | DeliveryState::Dead)
                && channel.is_some(),
        }),
    )
}

/// A new delivery of the same event to the same channel, sent (and rendered) by the
/// dispatcher like any other: with the channel's templates of today.
pub async fn redeliver(state: web::Data<AppState>, id: web::Path<i64>) -> HttpResponse {
    let id = id.into_inner();
    let original = match state.admin.delivery_summary(id).await {
        Ok(Some(d)) => d,
        Ok(None) => return error(&state, StatusCode::NOT_FOUND, format!("no delivery {id}")),
        Err(e) => return store_error(&state, &e),
    };
    if state.config.channel(&original.channel).is_none() {
        return error(
            &state,
            StatusCode::CONFLICT,
            format!(
                "channel `{}` is no longer in the config: nothing to send it to",
                original.channel
            ),
        );
    }
    match state.admin.redeliver(id, now_ms()).await {
        Ok(new) => {
            state.dispatcher.notify(&new.channel);
            tracing::info!(
                delivery = id,
                redelivery = new.id,
                channel = %new.channel,
                "admin: redelivery queued"
            );
            reply(
                &state,
                StatusCode::ACCEPTED,
                json!({ "redelivery_of": id, "delivery": delivery_json(&state, &new) }),
            )
        }
        Err(RedeliverError::NotFound(_)) => {
            error(&state, StatusCode::NOT_FOUND, format!("no delivery {id}"))
        }
        Err(e @ RedeliverError::StillQueued { .. }) => {
            error(&state, StatusCode::CONFLICT, e.to_string())
        }
        Err(RedeliverError::Store(e)) => store_error(&state, &e),
    }
}
