//! `GET /api/channels` (the console's status page) and `POST /api/channels/{name}/test`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

use super::{error, reply, store_error};
use crate::http::AppState;
use crate::platform::mask_url;
use crate::samples;
use crate::store::admin::{ChannelActivity, DeliveryFilter, Page};
use crate::store::{DeliveryState, NewEvent};
use crate::time_util::now_ms;

/// The `source` of the events that test sends create.
pub const TEST_SOURCE: &str = "console";

/// The sample a test send uses unless the request names another.
pub const DEFAULT_TEST_SAMPLE: &str = "push";

pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    let counts = match state.admin.queue_counts().await {
        Ok(c) => c,
        Err(e) => return store_error(&state, &e),
    };
    let activity = match state.admin.channel_activity().await {
        Ok(a) => a,
        Err(e) => return store_error(&state, &e),
    };
    let activity: BTreeMap<&str, &ChannelActivity> =
        activity.iter().map(|a| (a.channel.as_str(), a)).collect();
    let mut channels = Vec::new();
    for (name, channel) in &state.config.channels {
        let mut by_state: BTreeMap<&str, i64> = [
            DeliveryState::Pending,
            DeliveryState::Sending,
            DeliveryState::Retrying,
            DeliveryState::Delivered,
            DeliveryState::Dead,
        ]
        .into_iter()
        .map(|s| (s.as_str(), 0))
        .collect();
        for c in counts.iter().filter(|c| &c.channel == name) {
            by_state.insert(c.state.as_str(), c.count);
        }
        let a = activity.get(name.as_str());
        channels.push(json!({
            "name": name,
            "platform": channel.platform.as_str(),
            "url": mask_url(channel.url.expose()),
            "signed": channel.secret.is_some(),
            "keyword": channel.keyword,
            "dry_run": channel.dry_run,
            "queued": by_state["pending"] + by_state["sending"],
            "counts": by_state,
            "last_delivered_ms": a.and_then(|a| a.last_delivered_ms),
            "last_error": a.and_then(|a| a.last_error.as_ref()),
        }));
    }
    reply(
        &state,
        StatusCode::OK,
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "dispatcher": if state.dispatcher.alive() { "ok" } else { "stopped" },
            "channels": channels,
        }),
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// A built-in sample's name (see `GET /api/samples`).
    pub sample: Option<String>,
}

/// Queues a built-in sample for one channel as a test event (`is_test`, source `console`):
/// it is rendered, paced, signed, sent and recorded like any other delivery.
pub async fn send_test(
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: Option<web::Json<TestRequest>>,
) -> HttpResponse {
    let name = name.into_inner();
    if state.config.channel(&name).is_none() {
        return error(
            &state,
            StatusCode::NOT_FOUND,
            format!("no channel named `{name}`"),
        );
    }
    let sample_name = body
        .and_then(|b| b.into_inner().sample)
        .unwrap_or_else(|| DEFAULT_TEST_SAMPLE.to_owned());
    let Some(sample) = samples::find(&sample_name) else {
        let known: Vec<&str> = samples::all().iter().map(|s| s.name).collect();
        return error(
            &state,
            StatusCode::BAD_REQUEST,
            format!(
                "no sample named `{sample_name}` (samples: {})",
                known.join(", ")
            ),
        );
    };
    let (action, repo) = match crate::gitee::payload::parse_json(sample.body.as_bytes())
        .and_then(|raw| crate::gitee::payload::parse_value(sample.kind, &raw))
    {
        Ok(d) => (d.action, d.repo),
        Err(e) => {
            return error(
                &state,
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("sample {sample_name} does not parse: {e}"),
            );
        }
    };
    let event = NewEvent {
        source: TEST_SOURCE.to_owned(),
        kind: sample.kind,
        action,
        repo,
        is_test: true,
        received_ms: now_ms(),
        payload: crate::store::payload_codec::encode(sample.body.as_bytes()),
        channels: vec![name.clone()],
    };
    let receipt = match state.writer.insert(event).await {
        Ok(r) => r,
        Err(e) => return store_error(&state, &e),
    };
    state.dispatcher.notify(&name);
    let filter = DeliveryFilter {
        event_id: Some(receipt.event_id),
        ..Default::default()
    };
    let delivery_id: Value = match state
        .admin
        .list_deliveries(&filter, Page::new(None, 1))
        .await
    {
        Ok(page) => page.items.first().map_or(Value::Null, |d| json!(d.id)),
        Err(e) => return store_error(&state, &e),
    };
    tracing::info!(channel = %name, sample = sample.name, event_id = receipt.event_id, "admin: test message queued");
    reply(
        &state,
        StatusCode::ACCEPTED,
        json!({
            "event_id": receipt.event_id,
            "delivery_id": delivery_id,
            "channel": name,
            "sample": sample.name,
        }),
    )
}
