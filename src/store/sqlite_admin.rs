//! [`AdminStore`] for the SQLite store. Filters are `(?n IS NULL OR column = ?n)`, so one
//! statement serves every combination; pages walk the primary key backwards.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::admin::{
    AdminStore, ChannelActivity, DeliveryFilter, DeliverySummary, EventFilter, EventRecord,
    EventSummary, LastError, Page, Paged, QueueCount, RedeliverError, check_finished, repo_filter,
};
use super::{DeliveryState, SqliteStore, StoreError, kind_from_db, state_from_db};
use crate::gitee::EventKind;

/// `payload_head`: the first [`super::payload_codec::HEAD_LEN`] (8) bytes, enough to tell the
/// length of a compressed body without reading it.
const EVENT_COLUMNS: &str = "id, source, kind, action, repo, is_test, received_ms, LENGTH(payload) AS stored_bytes, substr(payload, 1, 8) AS payload_head";

const DELIVERY_SELECT: &str = "SELECT d.id, d.event_id, d.channel, d.state, d.attempts,
        d.next_attempt_ms, d.created_ms, d.updated_ms, d.last_error,
        e.source, e.kind, e.action, e.repo, e.is_test, e.received_ms
    FROM deliveries d JOIN events e ON e.id = d.event_id";

fn event_summary(row: &SqliteRow) -> Result<EventSummary, StoreError> {
    Ok(EventSummary {
        id: row.try_get("id")?,
        source: row.try_get("source")?,
        kind: kind_from_db(row.try_get::<&str, _>("kind")?)?,
        action: row.try_get("action")?,
        repo: row.try_get("repo")?,
        is_test: row.try_get("is_test")?,
        received_ms: row.try_get("received_ms")?,
        payload_bytes: super::payload_codec::body_len(
            row.try_get("payload_head")?,
            row.try_get("stored_bytes")?,
        ),
    })
}

fn delivery_summary(row: &SqliteRow) -> Result<DeliverySummary, StoreError> {
    Ok(DeliverySummary {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        channel: row.try_get("channel")?,
        state: state_from_db(row.try_get::<&str, _>("state")?)?,
        attempts: row.try_get::<i64, _>("attempts")? as u32,
        next_attempt_ms: row.try_get("next_attempt_ms")?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
        last_error: row.try_get("last_error")?,
        source: row.try_get("source")?,
        kind: kind_from_db(row.try_get::<&str, _>("kind")?)?,
        action: row.try_get("action")?,
        repo: row.try_get("repo")?,
        is_test: row.try_get("is_test")?,
        received_ms: row.try_get("received_ms")?,
    })
}

#[async_trait]
impl AdminStore for SqliteStore {
    async fn list_events(
        &self,
        filter: &EventFilter,
        page: Page,
    ) -> Result<Paged<EventSummary>, StoreError> {
        let (repo_exact, repo_like) = repo_filter(filter.repo.as_deref());
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE id < ?1 AND (?2 IS NULL OR source = ?2) AND (?3 IS NULL OR kind = ?3)
               AND (?4 IS NULL OR repo = ?4) AND (?5 IS NULL OR repo LIKE ?5 ESCAPE '\\')
             ORDER BY id DESC LIMIT ?6"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(page.before_or_max())
            .bind(filter.source.as_deref())
            .bind(filter.kind.map(EventKind::as_str))
            .bind(repo_exact)
            .bind(repo_like)
            .bind(page.fetch())
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(event_summary)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Paged::from_rows(items, page, |e| e.id))
    }

    async fn event(&self, id: i64) -> Result<Option<EventRecord>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS}, payload FROM events WHERE id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(EventRecord {
                summary: event_summary(&r)?,
                payload: super::payload_codec::decode(r.try_get("payload")?)?,
            })
        })
        .transpose()
    }

    async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
        page: Page,
    ) -> Result<Paged<DeliverySummary>, StoreError> {
        let sql = format!(
            "{DELIVERY_SELECT}
             WHERE d.id < ?1 AND (?2 IS NULL OR d.channel = ?2) AND (?3 IS NULL OR d.state = ?3)
               AND (?4 IS NULL OR d.event_id = ?4)
             ORDER BY d.id DESC LIMIT ?5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(page.before_or_max())
            .bind(filter.channel.as_deref())
            .bind(filter.state.map(DeliveryState::as_str))
            .bind(filter.event_id)
            .bind(page.fetch())
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(delivery_summary)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Paged::from_rows(items, page, |d| d.id))
    }

    async fn delivery_summary(&self, id: i64) -> Result<Option<DeliverySummary>, StoreError> {
        let sql = format!("{DELIVERY_SELECT} WHERE d.id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(delivery_summary).transpose()
    }

    async fn redeliver(&self, id: i64, now_ms: i64) -> Result<DeliverySummary, RedeliverError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::from)?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT state FROM deliveries WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        // End the transaction now on a refusal: a dropped one is rolled back only later, and
        // until then its lock makes the dispatcher's claims skip (PostgreSQL) or wait
        // (SQLite) for the row.
        let refusal = match current {
            None => Some(RedeliverError::NotFound(id)),
            Some(current) => check_finished(id, state_from_db(&current)?).err(),
        };
        if let Some(refusal) = refusal {
            tx.rollback().await.map_err(StoreError::from)?;
            return Err(refusal);
        }
        let new_id: i64 = sqlx::query_scalar(
            "INSERT INTO deliveries (event_id, channel, state, next_attempt_ms, created_ms, updated_ms)
             SELECT event_id, channel, 'pending', ?, ?, ? FROM deliveries WHERE id = ?
             RETURNING id",
        )
        .bind(now_ms)
        .bind(now_ms)
        .bind(now_ms)
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
        self.delivery_summary(new_id)
            .await?
            .ok_or(RedeliverError::NotFound(new_id))
    }

    async fn queue_counts(&self) -> Result<Vec<QueueCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel, state, COUNT(*) AS n, MIN(created_ms) AS oldest FROM deliveries
             GROUP BY channel, state ORDER BY channel, state",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(QueueCount {
                    channel: r.try_get("channel")?,
                    state: state_from_db(r.try_get::<&str, _>("state")?)?,
                    count: r.try_get("n")?,
                    oldest_created_ms: r.try_get("oldest")?,
                })
            })
            .collect()
    }

    async fn channel_activity(&self) -> Result<Vec<ChannelActivity>, StoreError> {
        let rows = sqlx::query(
            "WITH per_channel AS (
                SELECT d.channel AS channel,
                       MAX(CASE WHEN a.outcome = 'delivered' THEN a.started_ms END) AS last_ok,
                       MAX(CASE WHEN a.error IS NOT NULL THEN a.id END) AS last_error_attempt
                FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
                GROUP BY d.channel)
             SELECT p.channel, p.last_ok, a.delivery_id, a.started_ms, a.error
             FROM per_channel p LEFT JOIN attempts a ON a.id = p.last_error_attempt
             ORDER BY p.channel",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let delivery_id: Option<i64> = r.try_get("delivery_id")?;
                let last_error = match delivery_id {
                    Some(delivery_id) => Some(LastError {
                        delivery_id,
                        at_ms: r.try_get("started_ms")?,
                        error: r.try_get::<Option<String>, _>("error")?.unwrap_or_default(),
                    }),
                    None => None,
                };
                Ok(ChannelActivity {
                    channel: r.try_get("channel")?,
                    last_delivered_ms: r.try_get("last_ok")?,
                    last_error,
                })
            })
            .collect()
    }
}
