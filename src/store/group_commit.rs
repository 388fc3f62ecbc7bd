//! Group commit for ingest: concurrent webhooks are queued to one writer task that commits
//! whatever has gathered in one transaction (one sync), then answers each request. A lone
//! request is committed at once; batches form only from concurrency, never from waiting.
//! A store that does this itself ([`Store::ingest_queue`]: SQLite on a file, on its own
//! thread) is handed the webhooks directly instead.

use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use super::{EventReceipt, IngestQueue, NewEvent, Store, StoreError};

/// Upper bound on events per transaction, to keep one commit's latency bounded.
pub(super) const MAX_BATCH: usize = 512;

/// Where a webhook waits for its receipt.
pub(super) type Reply = oneshot::Sender<Result<EventReceipt, StoreError>>;

type Request = (NewEvent, Reply);

#[derive(Clone)]
pub struct IngestWriter(Queue);

#[derive(Clone)]
enum Queue {
    /// The writer task of [`run`].
    Task(mpsc::Sender<Request>),
    /// The store's own group commit.
    Store(IngestQueue),
}

impl IngestWriter {
    /// The store's own group commit if it has one, else a writer task on the current runtime.
    pub fn spawn(store: Arc<dyn Store>) -> IngestWriter {
        if let Some(queue) = store.ingest_queue() {
            return IngestWriter(Queue::Store(queue));
        }
        let (tx, rx) = mpsc::channel::<Request>(4 * MAX_BATCH);
        tokio::spawn(run(store, rx));
        IngestWriter(Queue::Task(tx))
    }

    /// Queues an event and waits until it is durable.
    pub async fn insert(&self, event: NewEvent) -> Result<EventReceipt, StoreError> {
        let tx = match &self.0 {
            Queue::Task(tx) => tx,
            Queue::Store(queue) => return queue.insert(event).await,
        };
        let (reply_tx, reply_rx) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the ingest writer has stopped".into());
        tx.send((event, reply_tx)).await.map_err(|_| stopped())?;
        reply_rx.await.map_err(|_| stopped())?
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Request>) {
    let mut batch: Vec<Request> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (events, replies): (Vec<NewEvent>, Vec<_>) = batch.drain(..).unzip();
        let started = std::time::Instant::now();
        let result = store.insert_events(&events).await;
        answer(result, events.len(), started, replies);
    }
}

/// Records a group commit of `events` webhooks that began at `started`, and answers each
/// webhook with its receipt or, when the commit failed, the error.
pub(super) fn answer(
    result: Result<Vec<EventReceipt>, StoreError>,
    events: usize,
    started: std::time::Instant,
    replies: impl IntoIterator<Item = Reply>,
) {
    crate::metrics::ingest().commit(events, started.elapsed().as_secs_f64());
    match result {
        Ok(receipts) => {
            for (reply, receipt) in replies.into_iter().zip(receipts) {
                let _ = reply.send(Ok(receipt));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, events, "ingest commit failed");
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
