//! Assembles a running relay from a config: store, ingest writer, dispatcher and HTTP server.
//! Tests start it on port 0 and read the bound port back, exactly as `serve` does.

use actix_web::{App, HttpServer, web};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

use crate::check;
use crate::config::{Config, StoreLocation};
use crate::dispatch::{Dispatcher, channel_templates};
use crate::http::{AppState, json_error, routes};
use crate::store::{IngestWriter, PostgresStore, SqliteStore, Store};
use crate::time_util::now_ms;

pub struct Relay {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    server: actix_web::dev::ServerHandle,
    server_task: JoinHandle<std::io::Result<()>>,
    dispatcher: Dispatcher,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("templates are broken:\n{0}")]
    Templates(String),
    #[error("cannot open the store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    match &config.store {
        StoreLocation::Sqlite(path) => Ok(Arc::new(SqliteStore::open(path).await?)),
        StoreLocation::Postgres(url) => Ok(Arc::new(PostgresStore::connect(url.expose()).await?)),
    }
}

impl Relay {
    pub async fn start(config: Config) -> Result<Relay, StartError> {
        let templates =
            channel_templates(&config).map_err(|e| StartError::Templates(e.to_string()))?;
        let problems = check::check_loaded(&config, &templates);
        if !problems.is_empty() {
            return Err(StartError::Templates(problems.join("\n")));
        }
        let (store, admin) = crate::store::admin::open(&config).await?;
        // One SQLite file has one relay process: whatever it had leased was interrupted.
        if matches!(config.store, StoreLocation::Sqlite(_)) {
            let released = store.release_leases(None, now_ms()).await?;
            if released > 0 {
                tracing::info!(
                    released,
                    "resuming deliveries that were in flight at the last stop"
                );
            }
        }
        let writer = IngestWriter::spawn(store.clone());
        let dispatcher = Dispatcher::start(&config, store.clone(), &templates);
        let listener =
            std::net::TcpListener::bind(&config.listen).map_err(|source| StartError::Listen {
                addr: config.listen.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen.clone(),
            source,
        })?;
        let state = web::Data::new(AppState {
            config: Arc::new(config),
            store: store.clone(),
            writer,
            dispatcher: dispatcher.handle(),
            admin,
            templates: templates.clone(),
            metrics: Arc::new(crate::metrics::Metrics::new()),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .configure(routes)
                .default_service(web::to(|| async {
                    json_error(
                        actix_web::http::StatusCode::NOT_FOUND,
                        "no such endpoint; webhooks go to POST /hooks/<source>",
                    )
                }))
        })
        // One HTTP worker per CPU the process may use (a container's quota included), as
        // actix does by default: parsing and authenticating is most of ingest's CPU, so a
        // fixed two left every core past the second idle on bigger machines.
        .workers(std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get))
        .disable_signals()
        .shutdown_timeout(10)
        // Hostile clients: a new connection's request head must arrive within 10 s (else 408
        // and close: the slow-loris that trickles headers; shorter is not safer in practice,
        // a loaded client can take seconds between connect and write); the body has its own
        // idle and total limits in `ingress`. A connection refused before its body was read
        // lingers 1 s, discarding what still arrives so the client can read the answer, then
        // closes. Idle keep-alive connections close after 5 s. Request heads are capped by
        // actix-http (~128 KiB, 96 headers: 431).
        .client_request_timeout(Duration::from_secs(10))
        .client_disconnect_timeout(Duration::from_secs(1))
        .keep_alive(Duration::from_secs(5))
        .listen(listener)
        .map_err(|source| StartError::Listen {
            addr: addr.to_string(),
            source,
        })?
        .run();
        let handle = server.handle();
        let server_task = tokio::spawn(server);
        tracing::info!(%addr, "gitee-relay is ready");
        Ok(Relay {
            addr,
            store,
            server: handle,
            server_task,
            dispatcher,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops taking webhooks, lets in-flight sends finish within `deadline`, releases the rest.
    pub async fn stop(self, deadline: Duration) {
        self.server.stop(true).await;
        let _ = self.server_task.await;
        self.dispatcher.shutdown(deadline).await;
    }
}
