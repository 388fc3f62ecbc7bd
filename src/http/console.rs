//! The web console at `/`: one HTML page, one script and one stylesheet from `console/`,
//! embedded in the binary (no build step, no Node.js). The page talks to `/api` with the
//! admin token the operator types in (kept in the tab's sessionStorage only).
//!
//! Without `admin.token` the page says the console is off (403). The assets carry a strict
//! Content-Security-Policy: scripts and styles from this origin only, no inline code, no
//! framing (the redeliver button cannot be clickjacked).

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::AppState;
use super::api::OFF;

const INDEX: &str = include_str!("../../console/index.html");
const APP_JS: &str = include_str!("../../console/app.js");
const STYLE_CSS: &str = include_str!("../../console/style.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

pub async fn index(state: web::Data<AppState>) -> HttpResponse {
    if state.config.admin.token.is_none() {
        return HttpResponse::Forbidden()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
            .body(format!(
                "<!doctype html><meta charset=utf-8><title>gitee-relay: console off</title>\
                 <h1>gitee-relay</h1><p>{}</p><p>Webhooks are still received at <code>POST /hooks/&lt;source&gt;</code>; \
                 <a href=\"/healthz\">/healthz</a>, <a href=\"/readyz\">/readyz</a> and <a href=\"/metrics\">/metrics</a> answer.</p>",
                html_escape(OFF)
            ));
    }
    asset("text/html; charset=utf-8", INDEX)
}

pub async fn app_js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub async fn style_css() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/console/app.js", web::get().to(app_js))
        .route("/console/style.css", web::get().to(style_css));
}
