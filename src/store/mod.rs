//! The durable queue: events, one delivery per (event, channel), and every attempt.
//!
//! A delivery moves `pending` → `sending` (claimed with a lease) → `delivered`, or back to
//! `retrying` with a due time, or to `dead`. A claim pushes the row's due time to the end of
//! its lease, so a delivery whose sender crashed becomes due again by itself when the lease
//! runs out: nothing accepted is ever lost, at the price of at-least-once delivery.

pub mod admin;
mod group_commit;
pub mod payload_codec;
mod postgres;
mod postgres_admin;
mod postgres_pacing;
mod sqlite;
mod sqlite_admin;
mod sqlite_dispatch;
mod sqlite_ingest;
#[doc(hidden)]
pub mod test_db;

#[cfg(test)]
mod postgres_tests;
#[cfg(test)]
mod suite;

pub use admin::AdminStore;
pub use group_commit::IngestWriter;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use sqlite_ingest::IngestQueue;

use async_trait::async_trait;
use serde::Serialize;

use crate::gitee::EventKind;

/// An accepted webhook, with the channels its routes matched.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub source: String,
    pub kind: EventKind,
    pub action: String,
    pub repo: String,
    pub is_test: bool,
    pub received_ms: i64,
    /// The body as stored: [`payload_codec::encode`] of the body as received (the ingress
    /// encodes it off the group commit's path). Raw bodies are stored as they are.
    pub payload: Vec<u8>,
    pub channels: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EventReceipt {
    pub event_id: i64,
    pub deliveries: usize,
}

/// A delivery claimed by one sender until `lease_until_ms`.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub event_id: i64,
    pub channel: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub created_ms: i64,
    /// The retry class of the previous failed attempt, if any (`signature`, `too_large`...).
    pub last_retry_class: Option<String>,
    pub event: StoredEvent,
}

#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: i64,
    pub source: String,
    pub kind: EventKind,
    pub is_test: bool,
    pub received_ms: i64,
    pub payload: Vec<u8>,
}

/// One try at sending a delivery, as recorded for operators.
#[derive(Debug, Clone, Default)]
pub struct AttemptRecord {
    pub started_ms: i64,
    pub duration_ms: i64,
    /// HTTP status of the reply; None when no reply came (connection error, timeout, dry run).
    pub http_status: Option<u16>,
    /// First part of the robot's reply.
    pub reply_excerpt: String,
    /// Request URL with tokens masked.
    pub request_url: String,
    /// Our reading of the reply or the transport error (the platform's own words).
    pub error: Option<String>,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    Delivered,
    Retry {
        at_ms: i64,
        class: &'static str,
        error: String,
    },
    Dead {
        error: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Sending,
    Delivered,
    Retrying,
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sending => "sending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryState::Pending,
            "sending" => DeliveryState::Sending,
            "delivered" => DeliveryState::Delivered,
            "retrying" => DeliveryState::Retrying,
            "dead" => DeliveryState::Dead,
            _ => return None,
        })
    }
}

/// An event kind read from a store column; an unknown one means the database is corrupt.
pub(crate) fn kind_from_db(text: &str) -> Result<EventKind, StoreError> {
    EventKind::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown event kind `{text}`")))
}

/// A delivery state read from a store column; an unknown one means the database is corrupt.
pub(crate) fn state_from_db(text: &str) -> Result<DeliveryState, StoreError> {
    DeliveryState::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown delivery state `{text}`")))
}

/// A delivery's current row, for tests and operators.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: i64,
    pub channel: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptRow {
    pub delivery_id: i64,
    pub started_ms: i64,
    pub duration_ms: i64,
    pub http_status: Option<u16>,
    pub outcome: String,
    pub reply_excerpt: String,
    pub request_url: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("the store holds data this version cannot read: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// One robot quota for [`SharedPacing`]: at most `max` sends in any `per_ms` window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedQuota {
    pub max: u32,
    pub per_ms: i64,
}

/// Pacing and digest leadership shared by every relay process on one store (PostgreSQL), so a
/// robot's quota holds for the whole cluster. A single-process store does without it: the
/// dispatcher's in-memory pacer is exact there.
///
/// Semantics mirror the in-memory pacer: a send occupies its quota windows from its start
/// until `per` after its end; a send whose end was never recorded (its process died) counts as
/// ending `max_send_ms` after its start.
#[async_trait]
pub trait SharedPacing: Send + Sync {
    /// Reserves a send to `robot` at `now_ms` if every quota and any pause allow it:
    /// `Ok(Ok(reservation))`, else `Ok(Err(retry_at_ms))` (when to ask again).
    async fn reserve_send(
        &self,
        robot: &str,
        quotas: &[SharedQuota],
        now_ms: i64,
        max_send_ms: i64,
    ) -> Result<Result<i64, i64>, StoreError>;

    /// Records when a reserved send ended (its reply arrived or it failed).
    async fn finish_send(&self, reservation: i64, end_ms: i64) -> Result<(), StoreError>;

    /// Gives back a reservation that was not used (there was nothing to send after all).
    async fn cancel_send(&self, reservation: i64) -> Result<(), StoreError>;

    /// Stops all sends to `robot` until `until_ms` (a rate-limit reply), cluster-wide.
    async fn pause_robot(&self, robot: &str, until_ms: i64) -> Result<(), StoreError>;

    /// Takes or renews the right to build `channel`'s digests until `now_ms + lease_ms`:
    /// true for exactly one owner at a time (until its lease lapses).
    async fn lead_digests(
        &self,
        channel: &str,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cluster-wide pacing, for stores several relay processes share.
    fn shared_pacing(&self) -> Option<&dyn SharedPacing> {
        None
    }

    /// A store that runs group commit itself (the SQLite file store, on a thread of its own)
    /// takes webhooks here; for the others [`IngestWriter`] calls [`Store::insert_events`]
    /// with whatever has gathered.
    fn ingest_queue(&self) -> Option<IngestQueue> {
        None
    }

    /// Writes the events and their deliveries in ONE transaction (one sync), so concurrent
    /// webhooks share a commit. Returns one receipt per event, in order, once durable.
    async fn insert_events(&self, events: &[NewEvent]) -> Result<Vec<EventReceipt>, StoreError>;

    /// Claims the channel's oldest due delivery for `lease_ms`, if any.
    async fn claim_next(
        &self,
        channel: &str,
        now_ms: i64,
        lease_ms: i64,
        owner: &str,
    ) -> Result<Option<ClaimedDelivery>, StoreError>;

    /// Records an attempt and moves the delivery on, in one transaction. Returns false when
    /// the lease had been lost to another sender (the attempt is still recorded).
    async fn complete(
        &self,
        delivery_id: i64,
        owner: &str,
        attempt: &AttemptRecord,
        completion: &Completion,
    ) -> Result<bool, StoreError>;

    /// Claims up to `limit` of the channel's due deliveries, oldest first (for digests).
    async fn claim_batch(
        &self,
        channel: &str,
        now_ms: i64,
        lease_ms: i64,
        owner: &str,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError>;

    /// How many of the channel's deliveries are due now (its backlog).
    async fn count_due(&self, channel: &str, now_ms: i64) -> Result<i64, StoreError>;

    /// Records one attempt that carried several deliveries (a digest) and moves them all on,
    /// in one transaction. Returns how many were still leased by `owner`.
    async fn complete_many(
        &self,
        delivery_ids: &[i64],
        owner: &str,
        attempt: &AttemptRecord,
        completion: &Completion,
    ) -> Result<u64, StoreError>;

    /// Records several attempts, each with its own outcome, like [`Store::complete`] does for
    /// one (a store may write them in one transaction). Returns how many deliveries were still
    /// leased by `owner`.
    async fn complete_each(
        &self,
        owner: &str,
        done: &[(i64, AttemptRecord, Completion)],
    ) -> Result<u64, StoreError> {
        let mut moved = 0;
        for (id, attempt, completion) in done {
            if self.complete(*id, owner, attempt, completion).await? {
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// Hands claimed deliveries back unsent, due at `due_ms` (a digest that could not take them).
    async fn release(
        &self,
        delivery_ids: &[i64],
        owner: &str,
        due_ms: i64,
    ) -> Result<(), StoreError>;

    /// Deletes up to `batch` events whose deliveries are all finished: delivered ones finished
    /// before `delivered_before_ms`, dead ones before `dead_before_ms` (attempts go with them).
    /// Returns the number of events deleted; call again while it returns `batch`.
    async fn prune(
        &self,
        delivered_before_ms: i64,
        dead_before_ms: i64,
        batch: i64,
    ) -> Result<u64, StoreError>;

    /// When the channel's next delivery becomes due (including leases that will expire).
    async fn next_due_ms(&self, channel: &str) -> Result<Option<i64>, StoreError>;

    /// Makes deliveries leased by `owner` (or by anyone, with None) due at once: used at start
    /// by a single-process store, and at shutdown for what was not sent.
    async fn release_leases(&self, owner: Option<&str>, now_ms: i64) -> Result<u64, StoreError>;

    async fn delivery(&self, id: i64) -> Result<Option<DeliveryRow>, StoreError>;
    async fn deliveries_of_event(&self, event_id: i64) -> Result<Vec<DeliveryRow>, StoreError>;
    async fn attempts(&self, delivery_id: i64) -> Result<Vec<AttemptRow>, StoreError>;
    /// Number of deliveries per state, for health and tests.
    async fn count_by_state(&self) -> Result<Vec<(DeliveryState, i64)>, StoreError>;
    /// A cheap write that proves the store accepts commits (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
}
