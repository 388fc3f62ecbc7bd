//! Every refusal is JSON `{"error": "..."}` with a precise status. Messages never carry a
//! secret, token or robot URL.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::json;

pub fn json_error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message.into() }))
}
