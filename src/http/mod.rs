//! The HTTP side: the webhook endpoint and health probes.

mod error;
pub mod health;
pub mod ingress;

pub use error::json_error;

use actix_web::web;
use std::sync::Arc;

use crate::config::Config;
use crate::dispatch::DispatcherHandle;
use crate::store::{IngestWriter, Store};

/// Shared by every request handler.
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub writer: IngestWriter,
    pub dispatcher: DispatcherHandle,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/hooks/{source}")
            .route(web::post().to(ingress::receive))
            .default_service(web::to(ingress::method_not_allowed)),
    )
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz));
}
