//! The shared store for several relay replicas: PostgreSQL through a small pool (TLS by
//! rustls when the server offers it or `sslmode` asks for it).
//!
//! Same rows and the same state machine as the SQLite store. Claims lock the candidate rows
//! with `FOR UPDATE SKIP LOCKED`, so replicas claiming the same channel at the same moment
//! take different deliveries instead of queueing behind each other; a claim pushes the due
//! time to the end of the lease exactly as in SQLite, so a dead replica's deliveries become
//! due again by themselves. The schema is created under a transaction-level advisory lock,
//! so replicas starting together on an empty database take turns.

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Row};
use std::str::FromStr;
use std::time::{Duration, Instant};

use super::{
    AttemptRecord, AttemptRow, ClaimedDelivery, Completion, DeliveryRow, DeliveryState,
    EventReceipt, NewEvent, Store, StoreError, StoredEvent, kind_from_db, state_from_db,
};

/// The schema's version, refused by older relays. 1: the first schema. 2: the same tables;
/// bodies may be stored compressed (`payload_codec`), which a relay of version 1 would read
/// as broken JSON and fail every pending delivery with, so it must refuse the database instead.
const SCHEMA_VERSION: i32 = 2;

/// Key of the advisory lock that serialises schema changes (an arbitrary constant: "gitee-rl").
const MIGRATION_LOCK: i64 = 0x6769_7465_652d_726c;

const MAX_CONNECTIONS: u32 = 8;

/// How long one connection attempt, or waiting for a pooled connection, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events (
        id BIGSERIAL PRIMARY KEY,
        source TEXT NOT NULL,
        kind TEXT NOT NULL,
        action TEXT NOT NULL,
        repo TEXT NOT NULL,
        is_test BOOLEAN NOT NULL,
        received_ms BIGINT NOT NULL,
        payload BYTEA NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS deliveries (
        id BIGSERIAL PRIMARY KEY,
        event_id BIGINT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms BIGINT NOT NULL,
        lease_owner TEXT,
        created_ms BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL,
        last_error TEXT,
        last_retry_class TEXT
    )",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (channel, next_attempt_ms, id)
        WHERE state IN ('pending', 'retrying', 'sending')",
    "CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries (event_id)",
    "CREATE TABLE IF NOT EXISTS attempts (
        id BIGSERIAL PRIMARY KEY,
        delivery_id BIGINT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
        started_ms BIGINT NOT NULL,
        duration_ms BIGINT NOT NULL,
        http_status INTEGER,
        outcome TEXT NOT NULL,
        reply_excerpt TEXT NOT NULL,
        request_url TEXT NOT NULL,
        error TEXT
    )",
    "CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts (delivery_id)",
];

/// Locks up to `$5` due deliveries of channel `$3` that no other claimer holds, and leases
/// them to `$1` until `$2`; returns each with its event, in one round trip.
const CLAIM: &str = "WITH picked AS MATERIALIZED (
        SELECT id FROM deliveries
        WHERE channel = $3 AND state IN ('pending', 'retrying', 'sending') AND next_attempt_ms <= $4
        ORDER BY next_attempt_ms, id
        LIMIT $5
        FOR UPDATE SKIP LOCKED)
    UPDATE deliveries d
    SET state = 'sending', lease_owner = $1, next_attempt_ms = $2, updated_ms = $4
    FROM picked, events e
    WHERE d.id = picked.id AND e.id = d.event_id
    RETURNING d.id, d.event_id, d.attempts, d.created_ms, d.last_retry_class,
        e.source, e.kind, e.is_test, e.received_ms, e.payload";

pub struct PostgresStore {
    pub(crate) pool: PgPool,
}

impl PostgresStore {
    /// Connects (a pool of up to 8 connections) and creates or checks the schema. A server
    /// that refuses connections is retried for up to 10 s (it may be starting with us).
    /// Errors name the server's host, port and database, never the URL (which may carry a
    /// password).
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        Self::connect_within(url, Duration::from_secs(10)).await
    }

    pub(crate) async fn connect_within(
        url: &str,
        patience: Duration,
    ) -> Result<PostgresStore, StoreError> {
        let secrets: Vec<String> = url::Url::parse(url)
            .ok()
            .and_then(|u| u.password().map(|p| vec![percent_decode(p), p.to_owned()]))
            .unwrap_or_default();
        let hide = |e: sqlx::Error| redact(e.to_string(), &secrets);
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Unavailable(format!("the PostgreSQL URL is invalid: {}", hide(e)))
        })?;
        let options = options.application_name("gitee-relay");
        let database = options.get_database().unwrap_or("(default)");
        let place = match options.get_socket() {
            Some(socket) => format!("socket {} database {database}", socket.display()),
            None => format!(
                "{}:{} database {database}",
                options.get_host(),
                options.get_port()
            ),
        };
        let unreachable = |why: String| {
            StoreError::Unavailable(format!("cannot connect to PostgreSQL at {place}: {why}"))
        };
        // The first connection by hand: the pool would retry a refused connection until its
        // timeout and then report only that it timed out; this reports the server's reason.
        let deadline = Instant::now() + patience;
        let mut backoff = Duration::from_millis(100);
        loop {
            match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await
            {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    break;
                }
                Ok(Err(e)) if server_starting(&e) && Instant::now() + backoff < deadline => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Ok(Err(e)) => return Err(unreachable(hide(e))),
                Err(_) => {
                    return Err(unreachable(format!(
                        "no answer within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    )));
                }
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| unreachable(hide(e)))?;
        let store = PostgresStore { pool };
        store.migrate().await.map_err(|e| match e {
            StoreError::Unavailable(m) => StoreError::Unavailable(redact(m, &secrets)),
            other => other,
        })?;
        Ok(store)
    }

    /// Creates the schema, or checks that it is one this relay can use. Several replicas may
    /// run this at the same moment: the advisory lock makes them take turns, and whoever comes
    /// second finds the version row written.
    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // `IF NOT EXISTS` reports "already exists, skipping" as a NOTICE on every start.
        sqlx::query("SET LOCAL client_min_messages = warning")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        let has_version_table: bool =
            sqlx::query_scalar("SELECT to_regclass('schema_version') IS NOT NULL")
                .fetch_one(&mut *tx)
                .await?;
        let version: Option<i32> = if has_version_table {
            sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
                .fetch_one(&mut *tx)
                .await?
        } else {
            None
        };
        match version {
            Some(v) if v > SCHEMA_VERSION => {
                // Now, not when the pool gets round to it: the other replicas wait on the lock.
                tx.rollback().await?;
                return Err(StoreError::Corrupt(format!(
                    "schema version {v} is newer than this relay's {SCHEMA_VERSION}; upgrade the relay"
                )));
            }
            // Up to date: no DDL, so no table lock that would stall the running replicas.
            Some(v) if v == SCHEMA_VERSION => {}
            _ => {
                for statement in SCHEMA.iter().chain(super::postgres_pacing::PACING_SCHEMA) {
                    sqlx::query(*statement).execute(&mut *tx).await?;
                }
                if version.is_none() {
                    sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
                        .bind(SCHEMA_VERSION)
                        .execute(&mut *tx)
                        .await?;
                } else {
                    sqlx::query("UPDATE schema_version SET version = $1")
                        .bind(SCHEMA_VERSION)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim(
        &self,
        channel: &str,
        now_ms: i64,
        lease_ms: i64,
        owner: &str,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(CLAIM)
            .bind(owner)
            .bind(now_ms + lease_ms)
            .bind(channel)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut out = rows
            .iter()
            .map(|row| claimed_delivery(row, channel))
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING gives no order guarantee: oldest first, as digests list them.
        out.sort_by_key(|d| (d.event.received_ms, d.id));
        Ok(out)
    }
}

/// Errors of a server that is not up yet: nothing listens, or "the database system is
/// starting up" (SQLSTATE 57P03).
fn server_starting(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        sqlx::Error::Database(e) => e.code().as_deref() == Some("57P03"),
        _ => false,
    }
}

/// Replaces the URL's password (as written and decoded), should a message ever quote it.
/// sqlx's messages do not, as far as we know; this is the second line of defence. Very short
/// passwords are left alone: hiding every "a" in a message would only garble it.
fn redact(mut message: String, secrets: &[String]) -> String {
    for secret in secrets {
        if secret.len() >= 4 && message.contains(secret.as_str()) {
            message = message.replace(secret.as_str(), "***");
        }
    }
    message
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn delivery_row(row: &PgRow) -> Result<DeliveryRow, StoreError> {
    Ok(DeliveryRow {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        channel: row.try_get("channel")?,
        state: state_from_db(row.try_get::<&str, _>("state")?)?,
        attempts: row.try_get::<i32, _>("attempts")? as u32,
        next_attempt_ms: row.try_get("next_attempt_ms")?,
        last_error: row.try_get("last_error")?,
    })
}

fn claimed_delivery(row: &PgRow, channel: &str) -> Result<ClaimedDelivery, StoreError> {
    let event_id: i64 = row.try_get("event_id")?;
    Ok(ClaimedDelivery {
        id: row.try_get("id")?,
        event_id,
        channel: channel.to_owned(),
        attempts: row.try_get::<i32, _>("attempts")? as u32,
        created_ms: row.try_get("created_ms")?,
        last_retry_class: row.try_get("last_retry_class")?,
        event: StoredEvent {
            id: event_id,
            source: row.try_get("source")?,
            kind: kind_from_db(row.try_get::<&str, _>("kind")?)?,
            is_test: row.try_get("is_test")?,
            received_ms: row.try_get("received_ms")?,
            payload: super::payload_codec::decode(row.try_get("payload")?)?,
        },
    })
}

/// Records one attempt for each delivery and moves those still leased by `owner` on, inside
/// the caller's transaction. Returns how many moved.
async fn complete_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    delivery_ids: &[i64],
    owner: &str,
    attempt: &AttemptRecord,
    completion: &Completion,
) -> Result<u64, StoreError> {
    let (outcome, state, next_ms, error, class) = match completion {
        Completion::Delivered => ("delivered", "delivered", attempt.started_ms, None, None),
        Completion::Retry {
            at_ms,
            class,
            error,
        } => (
            "retry",
            "retrying",
            *at_ms,
            Some(error.as_str()),
            Some(*class),
        ),
        Completion::Dead { error } => (
            "dead",
            "dead",
            attempt.started_ms,
            Some(error.as_str()),
            None,
        ),
    };
    let now_ms = attempt.started_ms + attempt.duration_ms;
    sqlx::query(
        "INSERT INTO attempts (delivery_id, started_ms, duration_ms, http_status, outcome, reply_excerpt, request_url, error)
         SELECT id, $2, $3, $4, $5, $6, $7, $8 FROM UNNEST($1::BIGINT[]) WITH ORDINALITY AS t(id, n)
         ORDER BY n",
    )
    .bind(delivery_ids)
    .bind(attempt.started_ms)
    .bind(attempt.duration_ms)
    .bind(attempt.http_status.map(i32::from))
    .bind(outcome)
    .bind(&attempt.reply_excerpt)
    .bind(&attempt.request_url)
    .bind(attempt.error.as_deref().or(error))
    .execute(&mut **tx)
    .await?;
    let updated = sqlx::query(
        "UPDATE deliveries SET state = $1, attempts = attempts + 1, next_attempt_ms = $2,
             lease_owner = NULL, updated_ms = $3, last_error = $4, last_retry_class = $5
         WHERE id = ANY($6) AND state = 'sending' AND lease_owner = $7",
    )
    .bind(state)
    .bind(next_ms)
    .bind(now_ms)
    .bind(error)
    .bind(class)
    .bind(delivery_ids)
    .bind(owner)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(updated)
}

#[async_trait]
impl Store for PostgresStore {
    fn shared_pacing(&self) -> Option<&dyn super::SharedPacing> {
        Some(self)
    }

    async fn insert_events(&self, events: &[NewEvent]) -> Result<Vec<EventReceipt>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // Three round trips for the whole batch, whatever its size: reserve the ids, then
        // insert all events and all deliveries from arrays.
        let mut tx = self.pool.begin().await?;
        let mut ids: Vec<i64> = sqlx::query_scalar(
            "SELECT nextval(pg_get_serial_sequence('events', 'id')) FROM generate_series(1, $1)",
        )
        .bind(events.len() as i64)
        .fetch_all(&mut *tx)
        .await?;
        ids.sort_unstable();
        let column = |f: fn(&NewEvent) -> &str| events.iter().map(f).collect::<Vec<&str>>();
        sqlx::query(
            "INSERT INTO events (id, source, kind, action, repo, is_test, received_ms, payload)
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                 $6::BOOLEAN[], $7::BIGINT[], $8::BYTEA[])",
        )
        .bind(&ids)
        .bind(column(|e| &e.source))
        .bind(column(|e| e.kind.as_str()))
        .bind(column(|e| &e.action))
        .bind(column(|e| &e.repo))
        .bind(events.iter().map(|e| e.is_test).collect::<Vec<bool>>())
        .bind(events.iter().map(|e| e.received_ms).collect::<Vec<i64>>())
        .bind(
            events
                .iter()
                .map(|e| e.payload.as_slice())
                .collect::<Vec<&[u8]>>(),
        )
        .execute(&mut *tx)
        .await?;
        let mut event_ids = Vec::new();
        let mut channels = Vec::new();
        let mut times = Vec::new();
        for (event, id) in events.iter().zip(&ids) {
            for channel in &event.channels {
                event_ids.push(*id);
                channels.push(channel.as_str());
                times.push(event.received_ms);
            }
        }
        if !channels.is_empty() {
            sqlx::query(
                "INSERT INTO deliveries (event_id, channel, state, next_attempt_ms, created_ms, updated_ms)
                 SELECT e, c, 'pending', t, t, t
                 FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[]) WITH ORDINALITY AS u(e, c, t, n)
                 ORDER BY n",
            )
            .bind(&event_ids)
            .bind(&channels)
            .bind(&times)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(events
            .iter()
            .zip(ids)
            .map(|(event, event_id)| EventReceipt {
                event_id,
                deliveries: event.channels.len(),
            })
            .collect())
    }

    async fn claim_next(
        &self,
        channel: &str,
        now_ms: i64,
        lease_ms: i64,
        owner: &str,
    ) -> Result<Option<ClaimedDelivery>, StoreError> {
        Ok(self.claim(channel, now_ms, lease_ms, owner, 1).await?.pop())
    }

    async fn complete(
        &self,
        delivery_id: i64,
        owner: &str,
        attempt: &AttemptRecord,
        completion: &Completion,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let moved = complete_in(&mut tx, &[delivery_id], owner, attempt, completion).await?;
        tx.commit().await?;
        Ok(moved == 1)
    }

    async fn claim_batch(
        &self,
        channel: &str,
        now_ms: i64,
        lease_ms: i64,
        owner: &str,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        self.claim(channel, now_ms, lease_ms, owner, limit).await
    }

    async fn count_due(&self, channel: &str, now_ms: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries
             WHERE channel = $1 AND state IN ('pending', 'retrying', 'sending') AND next_attempt_ms <= $2",
        )
        .bind(channel)
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn complete_many(
        &self,
        delivery_ids: &[i64],
        owner: &str,
        attempt: &AttemptRecord,
        completion: &Completion,
    ) -> Result<u64, StoreError> {
        if delivery_ids.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        let moved = complete_in(&mut tx, delivery_ids, owner, attempt, completion).await?;
        tx.commit().await?;
        Ok(moved)
    }

    async fn release(
        &self,
        delivery_ids: &[i64],
        owner: &str,
        due_ms: i64,
    ) -> Result<(), StoreError> {
        if delivery_ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE deliveries
             SET state = CASE WHEN attempts = 0 THEN 'pending' ELSE 'retrying' END,
                 lease_owner = NULL, next_attempt_ms = $1, updated_ms = $1
             WHERE id = ANY($2) AND state = 'sending' AND lease_owner = $3",
        )
        .bind(due_ms)
        .bind(delivery_ids)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn prune(
        &self,
        delivered_before_ms: i64,
        dead_before_ms: i64,
        batch: i64,
    ) -> Result<u64, StoreError> {
        // An event goes when none of its deliveries is still live and each finished one is
        // older than its state's retention. Events another replica is pruning are skipped.
        let result = sqlx::query(
            "DELETE FROM events WHERE id IN (
                SELECT e.id FROM events e
                WHERE NOT EXISTS (
                    SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND NOT (
                        (d.state = 'delivered' AND d.updated_ms < $1)
                        OR (d.state = 'dead' AND d.updated_ms < $2)))
                AND e.received_ms < $3
                ORDER BY e.id LIMIT $4
                FOR UPDATE SKIP LOCKED)",
        )
        .bind(delivered_before_ms)
        .bind(dead_before_ms)
        .bind(delivered_before_ms.max(dead_before_ms))
        .bind(batch)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    async fn next_due_ms(&self, channel: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_ms) FROM deliveries
             WHERE channel = $1 AND state IN ('pending', 'retrying', 'sending')",
        )
        .bind(channel)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn release_leases(&self, owner: Option<&str>, now_ms: i64) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "UPDATE deliveries
             SET state = CASE WHEN attempts = 0 THEN 'pending' ELSE 'retrying' END,
                 lease_owner = NULL, next_attempt_ms = $1, updated_ms = $1
             WHERE state = 'sending' AND ($2::TEXT IS NULL OR lease_owner = $2::TEXT)",
        )
        .bind(now_ms)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    async fn delivery(&self, id: i64) -> Result<Option<DeliveryRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, event_id, channel, state, attempts, next_attempt_ms, last_error
             FROM deliveries WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(delivery_row).transpose()
    }

    async fn deliveries_of_event(&self, event_id: i64) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, event_id, channel, state, attempts, next_attempt_ms, last_error
             FROM deliveries WHERE event_id = $1 ORDER BY id",
        )
        .bind(event_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_row).collect()
    }

    async fn attempts(&self, delivery_id: i64) -> Result<Vec<AttemptRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT delivery_id, started_ms, duration_ms, http_status, outcome, reply_excerpt, request_url, error
             FROM attempts WHERE delivery_id = $1 ORDER BY id",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AttemptRow {
                    delivery_id: row.try_get("delivery_id")?,
                    started_ms: row.try_get("started_ms")?,
                    duration_ms: row.try_get("duration_ms")?,
                    http_status: row
                        .try_get::<Option<i32>, _>("http_status")?
                        .map(|s| s as u16),
                    outcome: row.try_get("outcome")?,
                    reply_excerpt: row.try_get("reply_excerpt")?,
                    request_url: row.try_get("request_url")?,
                    error: row.try_get("error")?,
                })
            })
            .collect()
    }

    async fn count_by_state(&self) -> Result<Vec<(DeliveryState, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state ORDER BY state",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    state_from_db(r.try_get::<&str, _>("state")?)?,
                    r.try_get("n")?,
                ))
            })
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A read-write transaction that takes a transaction id: fails on a read-only standby
        // or a server that cannot write its WAL, as a plain `SELECT 1` would not.
        let mut tx = self.pool.begin_with("BEGIN READ WRITE").await?;
        sqlx::query("SELECT txid_current()")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
