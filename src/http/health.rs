//! `/healthz`: the process answers. `/readyz`: the store takes a write and every channel
//! worker is running, so a load balancer only sends webhooks where they will be kept and sent.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = state.store.ping().await;
    let dispatcher = state.dispatcher.alive();
    let body = json!({
        "store": if store.is_ok() { "ok" } else { "unavailable" },
        "dispatcher": if dispatcher { "ok" } else { "stopped" },
    });
    if store.is_ok() && dispatcher {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
