//! Group commit for ingest: concurrent webhooks are queued to one writer task that commits
//! whatever has gathered in one transaction (one sync), then answers each request. A lone
//! request is committed at once; batches form only from concurrency, never from waiting.

use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use super::{EventReceipt, NewEvent, Store, StoreError};

/// Upper bound on events per transaction, to keep one commit's latency bounded.
const MAX_BATCH: usize = 512;

type Request = (NewEvent, oneshot::Sender<Result<EventReceipt, String>>);

#[derive(Clone)]
pub struct IngestWriter {
    tx: mpsc::Sender<Request>,
}

impl IngestWriter {
    /// Starts the writer task on the current runtime.
    pub fn spawn(store: Arc<dyn Store>) -> IngestWriter {
        let (tx, rx) = mpsc::channel::<Request>(4 * MAX_BATCH);
        tokio::spawn(run(store, rx));
        IngestWriter { tx }
    }

    /// Queues an event and waits until it is durable.
    pub async fn insert(&self, event: NewEvent) -> Result<EventReceipt, StoreError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.tx
            .send((event, reply_tx))
            .await
            .map_err(|_| StoreError::Unavailable("the ingest writer has stopped".into()))?;
        reply_rx
            .await
            .map_err(|_| StoreError::Unavailable("the ingest writer has stopped".into()))?
            .map_err(StoreError::Unavailable)
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Request>) {
    let mut batch: Vec<Request> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (events, replies): (Vec<NewEvent>, Vec<_>) = batch.drain(..).unzip();
        let started = std::time::Instant::now();
        let result = store.insert_events(&events).await;
        crate::metrics::ingest().commit(events.len(), started.elapsed().as_secs_f64());
        match result {
            Ok(receipts) => {
                for (reply, receipt) in replies.into_iter().zip(receipts) {
                    let _ = reply.send(Ok(receipt));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = events.len(), "ingest commit failed");
                let message = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(message.clone()));
                }
            }
        }
    }
}
