//! Cluster-wide pacing on PostgreSQL: a per-robot row serialises reservations (`FOR UPDATE`),
//! and a log of recent sends lets every replica apply the same sliding windows. Times come
//! from the database's clock, so replicas on hosts with slightly different clocks still agree.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row};

use super::postgres::PostgresStore;
use super::{SharedPacing, SharedQuota, StoreError};

/// Tables added to the PostgreSQL schema for [`SharedPacing`].
pub(crate) const PACING_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS robots (
        robot TEXT PRIMARY KEY,
        paused_until_ms BIGINT NOT NULL DEFAULT 0
    )",
    "CREATE TABLE IF NOT EXISTS robot_sends (
        id BIGSERIAL PRIMARY KEY,
        robot TEXT NOT NULL,
        start_ms BIGINT NOT NULL,
        end_ms BIGINT
    )",
    "CREATE INDEX IF NOT EXISTS robot_sends_robot ON robot_sends (robot, start_ms)",
    "CREATE TABLE IF NOT EXISTS digest_leaders (
        channel TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        until_ms BIGINT NOT NULL
    )",
];

const DB_NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// How soon to ask again while a send of the cluster is in flight with no end recorded yet.
const IN_FLIGHT_POLL_MS: i64 = 50;

/// The earliest time another send may start, given the robot's recent sends newest first
/// as (start, end) and the quotas; `None` end means in flight. Pure, so it is unit-tested.
pub(crate) fn next_slot(
    sends: &[(i64, Option<i64>)],
    quotas: &[SharedQuota],
    now_ms: i64,
    max_send_ms: i64,
) -> i64 {
    let mut slot = now_ms;
    for q in quotas {
        let max = q.max as usize;
        if max == 0 || sends.len() < max {
            continue;
        }
        let (start, end) = sends[max - 1];
        let end = match end {
            Some(end) => end,
            // Its process may have died: it counts as ending at the longest a send can take.
            None if start + max_send_ms <= now_ms => start + max_send_ms,
            None => return (now_ms + IN_FLIGHT_POLL_MS).max(slot),
        };
        slot = slot.max(end + q.per_ms);
    }
    slot
}

#[async_trait]
impl SharedPacing for PostgresStore {
    async fn reserve_send(
        &self,
        robot: &str,
        quotas: &[SharedQuota],
        _now_ms: i64,
        max_send_ms: i64,
    ) -> Result<Result<i64, i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO robots (robot) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(robot)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT paused_until_ms, {DB_NOW_MS} AS now_ms FROM robots WHERE robot = $1 FOR UPDATE"
        )))
        .bind(robot)
        .fetch_one(&mut *tx)
        .await?;
        let paused_until: i64 = row.try_get("paused_until_ms")?;
        let now: i64 = row.try_get("now_ms")?;
        if paused_until > now {
            tx.commit().await?;
            return Ok(Err(paused_until));
        }
        let longest = quotas.iter().map(|q| q.per_ms).max().unwrap_or(0);
        sqlx::query(
            "DELETE FROM robot_sends
             WHERE robot = $1 AND COALESCE(end_ms, start_ms + $2) < $3",
        )
        .bind(robot)
        .bind(max_send_ms)
        .bind(now - longest)
        .execute(&mut *tx)
        .await?;
        let depth = quotas.iter().map(|q| i64::from(q.max)).max().unwrap_or(0);
        let rows = sqlx::query(
            "SELECT start_ms, end_ms FROM robot_sends WHERE robot = $1
             ORDER BY start_ms DESC, id DESC LIMIT $2",
        )
        .bind(robot)
        .bind(depth)
        .fetch_all(&mut *tx)
        .await?;
        let sends: Vec<(i64, Option<i64>)> = rows
            .iter()
            .map(|r| Ok((r.try_get("start_ms")?, r.try_get("end_ms")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let slot = next_slot(&sends, quotas, now, max_send_ms);
        if slot > now {
            tx.commit().await?;
            return Ok(Err(slot));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO robot_sends (robot, start_ms) VALUES ($1, $2) RETURNING id",
        )
        .bind(robot)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(id))
    }

    async fn finish_send(&self, reservation: i64, _end_ms: i64) -> Result<(), StoreError> {
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE robot_sends SET end_ms = {DB_NOW_MS} WHERE id = $1"
        )))
        .bind(reservation)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn cancel_send(&self, reservation: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM robot_sends WHERE id = $1")
            .bind(reservation)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn pause_robot(&self, robot: &str, until_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO robots (robot, paused_until_ms) VALUES ($1, $2)
             ON CONFLICT (robot) DO UPDATE
             SET paused_until_ms = GREATEST(robots.paused_until_ms, EXCLUDED.paused_until_ms)",
        )
        .bind(robot)
        .bind(until_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn lead_digests(
        &self,
        channel: &str,
        owner: &str,
        _now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let won: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "INSERT INTO digest_leaders (channel, owner, until_ms) VALUES ($1, $2, {DB_NOW_MS} + $3)
             ON CONFLICT (channel) DO UPDATE SET owner = EXCLUDED.owner, until_ms = EXCLUDED.until_ms
             WHERE digest_leaders.owner = EXCLUDED.owner OR digest_leaders.until_ms < {DB_NOW_MS}
             RETURNING owner"
        )))
        .bind(channel)
        .bind(owner)
        .bind(lease_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(won.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(max: u32, per_ms: i64) -> SharedQuota {
        SharedQuota { max, per_ms }
    }

    #[test]
    fn the_slot_follows_the_oldest_send_still_in_the_window() {
        let quotas = [q(2, 1000)];
        // Newest first: ended at 500 and at 300.
        assert_eq!(
            next_slot(&[(450, Some(500)), (200, Some(300))], &quotas, 600, 5000),
            1300
        );
        assert_eq!(next_slot(&[(450, Some(500))], &quotas, 600, 5000), 600);
        assert_eq!(next_slot(&[], &quotas, 600, 5000), 600);
    }

    #[test]
    fn an_unfinished_send_blocks_briefly_or_counts_as_timed_out() {
        let quotas = [q(1, 1000)];
        assert_eq!(next_slot(&[(550, None)], &quotas, 600, 5000), 650);
        // Started long ago and never finished: its process died; it ended at start + max.
        assert_eq!(next_slot(&[(0, None)], &quotas, 6000, 5000), 6000);
        assert_eq!(next_slot(&[(0, None)], &quotas, 5500, 5000), 6000);
    }

    #[test]
    fn every_quota_applies() {
        let quotas = [q(5, 1000), q(6, 60_000)];
        let sends: Vec<(i64, Option<i64>)> =
            (0..6).rev().map(|i| (i * 10, Some(i * 10 + 1))).collect();
        assert_eq!(next_slot(&sends, &quotas, 100, 5000), 1 + 60_000);
    }
}
