//! What operators ask the store: the events and deliveries, newest first with filters and
//! keyset pagination, one delivery with its attempts, a redelivery, and per-channel queue
//! counts and last errors (the console's status and the queue-depth gauges).
//!
//! A separate trait from [`Store`](super::Store): the dispatcher never needs these, and each
//! backend implements them in its own file (`sqlite_admin.rs`, `postgres_admin.rs`).

use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;

use super::{DeliveryState, PostgresStore, SqliteStore, Store, StoreError};
use crate::config::{Config, StoreLocation};
use crate::gitee::EventKind;

/// The most rows one page may hold.
pub const MAX_PAGE: i64 = 200;

/// Newest first: rows with an id below `before` (all when None), at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub before: Option<i64>,
    pub limit: i64,
}

impl Page {
    /// A page of at most `limit` rows (clamped to 1..=[`MAX_PAGE`]).
    pub fn new(before: Option<i64>, limit: i64) -> Page {
        Page {
            before,
            limit: limit.clamp(1, MAX_PAGE),
        }
    }

    /// The SQL bound: one more row than asked, to tell whether another page follows.
    pub(crate) fn fetch(&self) -> i64 {
        self.limit + 1
    }

    pub(crate) fn before_or_max(&self) -> i64 {
        self.before.unwrap_or(i64::MAX)
    }
}

/// One page of rows and the cursor of the next one.
#[derive(Debug, Clone, Serialize)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// Pass as `before` to get the next (older) page; None on the last page.
    pub next_before: Option<i64>,
}

impl<T> Paged<T> {
    /// Cuts the extra row fetched by [`Page::fetch`] and sets the cursor from `id`.
    pub(crate) fn from_rows(mut rows: Vec<T>, page: Page, id: impl Fn(&T) -> i64) -> Paged<T> {
        let more = rows.len() as i64 > page.limit;
        rows.truncate(page.limit as usize);
        let next_before = if more { rows.last().map(id) } else { None };
        Paged {
            items: rows,
            next_before,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub source: Option<String>,
    pub kind: Option<EventKind>,
    /// A repository's full name (`acme/app`); `*` matches any run of characters (`acme/*`).
    pub repo: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub channel: Option<String>,
    pub state: Option<DeliveryState>,
    pub event_id: Option<i64>,
}

/// An event without its payload.
#[derive(Debug, Clone, Serialize)]
pub struct EventSummary {
    pub id: i64,
    pub source: String,
    pub kind: EventKind,
    pub action: String,
    pub repo: String,
    pub is_test: bool,
    pub received_ms: i64,
    pub payload_bytes: i64,
}

/// An event with the body exactly as received (mask it before showing it).
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub summary: EventSummary,
    pub payload: Vec<u8>,
}

/// A delivery with what an operator needs to recognise its event.
#[derive(Debug, Clone, Serialize)]
pub struct DeliverySummary {
    pub id: i64,
    pub event_id: i64,
    pub channel: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub last_error: Option<String>,
    pub source: String,
    pub kind: EventKind,
    pub action: String,
    pub repo: String,
    pub is_test: bool,
    pub received_ms: i64,
}

/// How many of a channel's deliveries are in one state, and since when the oldest of them
/// exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueCount {
    pub channel: String,
    pub state: DeliveryState,
    pub count: i64,
    /// `created_ms` of the oldest of these deliveries (when its webhook was accepted).
    pub oldest_created_ms: i64,
}

/// A channel's most recent failed attempt and most recent success.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChannelActivity {
    pub channel: String,
    pub last_delivered_ms: Option<i64>,
    pub last_error: Option<LastError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastError {
    pub delivery_id: i64,
    pub at_ms: i64,
    pub error: String,
}

/// Why a redelivery was not created.
#[derive(Debug, thiserror::Error)]
pub enum RedeliverError {
    #[error("no delivery {0}")]
    NotFound(i64),
    /// Only finished deliveries are redelivered: a queued one is still going to be sent.
    #[error(
        "delivery {id} is {state} and will be sent on its own; redeliver it once it is delivered or dead"
    )]
    StillQueued { id: i64, state: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[async_trait]
pub trait AdminStore: Send + Sync + 'static {
    async fn list_events(
        &self,
        filter: &EventFilter,
        page: Page,
    ) -> Result<Paged<EventSummary>, StoreError>;

    async fn event(&self, id: i64) -> Result<Option<EventRecord>, StoreError>;

    async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
        page: Page,
    ) -> Result<Paged<DeliverySummary>, StoreError>;

    async fn delivery_summary(&self, id: i64) -> Result<Option<DeliverySummary>, StoreError>;

    /// A new `pending` delivery of the same event to the same channel, due at `now_ms`, for
    /// a delivery that is `delivered` or `dead`. The dispatcher renders it at send time, so
    /// it goes out with today's templates.
    async fn redeliver(&self, id: i64, now_ms: i64) -> Result<DeliverySummary, RedeliverError>;

    /// Deliveries per channel and state (states without rows are absent).
    async fn queue_counts(&self) -> Result<Vec<QueueCount>, StoreError>;

    /// Per channel that has attempts: its last success and its last failed attempt.
    async fn channel_activity(&self) -> Result<Vec<ChannelActivity>, StoreError>;
}

/// Opens the configured store once, as both the dispatcher's [`Store`] and the
/// [`AdminStore`] of the API (one pool).
pub async fn open(config: &Config) -> Result<(Arc<dyn Store>, Arc<dyn AdminStore>), StoreError> {
    match &config.store {
        StoreLocation::Sqlite(path) => {
            let store = Arc::new(SqliteStore::open(path).await?);
            Ok((store.clone(), store))
        }
        StoreLocation::Postgres(url) => {
            let store = Arc::new(PostgresStore::connect(url.expose()).await?);
            Ok((store.clone(), store))
        }
    }
}

/// The repository filter as (exact, LIKE pattern): one of them is set when filtering.
pub(crate) fn repo_filter(repo: Option<&str>) -> (Option<&str>, Option<String>) {
    match repo {
        Some(r) if r.contains('*') => (None, Some(like_pattern(r))),
        other => (other, None),
    }
}

/// `acme/*` as a LIKE pattern with `\` as the escape character (`%` and `_` are literal).
pub(crate) fn like_pattern(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 4);
    for c in glob.chars() {
        match c {
            '\\' | '%' | '_' => {
                out.push('\\');
                out.push(c);
            }
            '*' => out.push('%'),
            c => out.push(c),
        }
    }
    out
}

/// Whether the redelivery of a delivery in `state` is allowed.
pub(crate) fn check_finished(id: i64, state: DeliveryState) -> Result<(), RedeliverError> {
    match state {
        DeliveryState::Delivered | DeliveryState::Dead => Ok(()),
        other => Err(RedeliverError::StillQueued {
            id,
            state: other.as_str(),
        }),
    }
}

#[cfg(test)]
#[path = "admin_tests.rs"]
mod tests;
