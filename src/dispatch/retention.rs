//! Retention: finished events (and their deliveries and attempts) are pruned after
//! `retention.delivered` / `retention.dead`, in small batches with pauses between them so the
//! hot path never waits behind a long delete.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use crate::config::Retention;
use crate::store::Store;
use crate::time_util::now_ms;

const BATCH: i64 = 500;
const EVERY: Duration = Duration::from_secs(300);
const BETWEEN_BATCHES: Duration = Duration::from_millis(200);

pub async fn run(store: Arc<dyn Store>, retention: Retention, mut shutdown: watch::Receiver<bool>) {
    loop {
        let now = now_ms();
        let delivered_before = now - retention.delivered.as_millis() as i64;
        let dead_before = now - retention.dead.as_millis() as i64;
        let mut total = 0;
        loop {
            match store.prune(delivered_before, dead_before, BATCH).await {
                Ok(n) => {
                    total += n;
                    if (n as i64) < BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pruning old events failed; will try again later");
                    break;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(BETWEEN_BATCHES) => {}
                _ = shutdown.changed() => return,
            }
        }
        if total > 0 {
            tracing::info!(events = total, "pruned finished events past retention");
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}
