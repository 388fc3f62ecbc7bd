//! The dispatcher's writes to the SQLite file store — claiming a burst of deliveries and
//! recording its attempts — as transactions for the ingest thread's connection
//! ([`IngestQueue::write`](super::sqlite_ingest::IngestQueue::write)): each runs in one go
//! from statements prepared once, between two group commits of webhooks.

use rusqlite::{Connection, TransactionBehavior};

use super::sqlite::{Batch, CLAIM_BATCH_SQL, ClaimRow, Outcome, batch_sql, chunks};
use super::sqlite_ingest::{Binder, insert_rows, sqlite_error};
use super::{AttemptRecord, Completion, StoreError};

/// Leases up to `limit` due deliveries of `channel` to `owner` (as `claim_batch` on the
/// pools does); their events are read afterwards, outside the write turn.
pub(super) fn claim(
    conn: &mut Connection,
    channel: &str,
    now_ms: i64,
    lease_ms: i64,
    owner: &str,
    limit: i64,
) -> Result<Vec<ClaimRow>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_error)?;
    let rows = tx
        .prepare_cached(CLAIM_BATCH_SQL)
        .and_then(|mut statement| {
            statement
                .query_map(
                    rusqlite::params![owner, now_ms + lease_ms, now_ms, channel, now_ms, limit],
                    |row| {
                        Ok(ClaimRow {
                            id: row.get(0)?,
                            event_id: row.get(1)?,
                            attempts: row.get(2)?,
                            created_ms: row.get(3)?,
                            last_retry_class: row.get(4)?,
                        })
                    },
                )?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(sqlite_error)?;
    tx.commit().map_err(sqlite_error)?;
    Ok(rows)
}

/// Records a burst's attempts and moves each delivery on (as `complete_each` on the pools
/// does); returns how many deliveries were still leased to `owner` and moved.
pub(super) fn record(
    conn: &mut Connection,
    owner: &str,
    done: &[(i64, AttemptRecord, Completion)],
) -> Result<u64, StoreError> {
    let rows: Vec<(i64, &AttemptRecord, Outcome<'_>)> = done
        .iter()
        .map(|(id, attempt, completion)| (*id, attempt, Outcome::of(attempt, completion)))
        .collect();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_error)?;
    insert_rows(&tx, Batch::Attempts, &rows, |b, (id, attempt, o)| {
        b.bind(id)?
            .bind(&attempt.started_ms)?
            .bind(&attempt.duration_ms)?
            .bind(&attempt.http_status)?
            .bind(&o.outcome)?
            .bind(&attempt.reply_excerpt)?
            .bind(&attempt.request_url)?
            .bind(&attempt.error.as_deref().or(o.error))
            .map(drop)
    })?;
    let mut moved = 0;
    let mut at = 0;
    for n in chunks(rows.len()) {
        let mut statement = tx
            .prepare_cached(batch_sql(Batch::Completions, n))
            .map_err(sqlite_error)?;
        let mut binder = Binder::new(&mut statement);
        for (id, _, o) in &rows[at..at + n] {
            binder
                .bind(id)
                .and_then(|b| b.bind(&o.state))
                .and_then(|b| b.bind(&o.next_ms))
                .and_then(|b| b.bind(&o.now_ms))
                .and_then(|b| b.bind(&o.error))
                .and_then(|b| b.bind(&o.class))
                .map_err(sqlite_error)?;
        }
        binder.bind(&owner).map_err(sqlite_error)?;
        moved += statement.raw_execute().map_err(sqlite_error)? as u64;
        at += n;
    }
    tx.commit().map_err(sqlite_error)?;
    Ok(moved)
}
