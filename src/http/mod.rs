//! The HTTP side: the webhook endpoint, health probes, metrics, the admin API and the console.

pub mod api;
pub mod console;
mod error;
pub mod health;
pub mod ingress;
pub mod metrics;
pub mod replay;

pub use error::json_error;

use actix_web::middleware::from_fn;
use actix_web::web;
use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;
use crate::dispatch::DispatcherHandle;
use crate::render::TemplateStore;
use crate::store::{AdminStore, IngestWriter, Store};

/// Shared by every request handler.
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub writer: IngestWriter,
    pub dispatcher: DispatcherHandle,
    /// The same store, for the admin API's queries.
    pub admin: Arc<dyn AdminStore>,
    /// Each channel's live templates (the dispatcher's), for previews.
    pub templates: HashMap<String, Arc<TemplateStore>>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/hooks/{source}")
            .wrap(from_fn(metrics::observe_webhook))
            .route(web::post().to(ingress::receive))
            .default_service(web::to(ingress::method_not_allowed)),
    )
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz))
    .route("/metrics", web::get().to(metrics::metrics))
    .configure(api::configure)
    .configure(console::configure);
}
