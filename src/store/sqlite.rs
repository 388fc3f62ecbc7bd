//! The embedded default store: one SQLite file in WAL mode with `synchronous=FULL`, so a
//! commit survives a power cut before the webhook is answered.

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::sqlite_dispatch;
use super::sqlite_ingest::IngestQueue;
use super::{
    AttemptRecord, AttemptRow, ClaimedDelivery, Completion, DeliveryRow, DeliveryState,
    EventReceipt, NewEvent, Store, StoreError, StoredEvent, kind_from_db, state_from_db,
};

/// The schema's version, refused by older relays. 1: the first schema. 2: the same tables;
/// bodies may be stored compressed (`payload_codec`), which a relay of version 1 would read
/// as broken JSON and fail every pending delivery with, so it must refuse the file instead.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        kind TEXT NOT NULL,
        action TEXT NOT NULL,
        repo TEXT NOT NULL,
        is_test INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        payload BLOB NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS deliveries (
        id INTEGER PRIMARY KEY,
        event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL,
        lease_owner TEXT,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        last_error TEXT,
        last_retry_class TEXT
    )",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (channel, next_attempt_ms)
        WHERE state IN ('pending', 'retrying', 'sending')",
    "CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries (event_id)",
    "CREATE TABLE IF NOT EXISTS attempts (
        id INTEGER PRIMARY KEY,
        delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
        started_ms INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        http_status INTEGER,
        outcome TEXT NOT NULL,
        reply_excerpt TEXT NOT NULL,
        request_url TEXT NOT NULL,
        error TEXT
    )",
    "CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts (delivery_id)",
];

pub struct SqliteStore {
    /// `synchronous=FULL`: reads, the admin API, and ingest for `:memory:` (a file store
    /// ingests on its own thread, [`super::sqlite_ingest`], also FULL: a webhook is answered
    /// only once its commit is on disk).
    pub(crate) pool: SqlitePool,
    /// The same file with `synchronous=NORMAL`, for the dispatcher's bookkeeping (claims,
    /// attempts, releases, pruning). A NORMAL commit survives the process being killed (it is
    /// in the WAL, in the OS's cache), and the next FULL commit syncs it to disk; only a power
    /// cut or an OS crash can forget the last few, and then deliveries already sent are sent
    /// again (at-least-once), never lost. Saves one fsync per claim and per attempt.
    light: SqlitePool,
    /// Writers take turns here, in order, rather than in SQLite's busy handler (which sleeps
    /// 1, 2, 5, 10… ms between tries while another connection holds the write lock).
    write: Arc<tokio::sync::Mutex<()>>,
    /// Copies the WAL into the database file in the background ([`checkpoints`]).
    checkpointer: Option<tokio::task::AbortHandle>,
    /// Group commit on a thread and a connection of its own ([`super::sqlite_ingest`]);
    /// `None` for `:memory:`, whose database exists only inside the pool's one connection.
    ingest: Option<IngestQueue>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Some(task) = &self.checkpointer {
            task.abort();
        }
    }
}

/// Set on every connection to the file, the ingest thread's too: SQLite's automatic
/// checkpoint off ([`checkpoints`] does it in the background), and the WAL file cut back to
/// 64 MiB after a burst.
pub(super) const CHECKPOINT_PRAGMAS: [(&str, &str); 2] = [
    ("wal_autocheckpoint", "0"),
    ("journal_size_limit", "67108864"),
];

/// How soon the checkpointer looks again while writers keep adding to the WAL. Small
/// checkpoints disturb commits least: each one ends with a sync of the database file, which
/// shares the disk with the commits' WAL syncs, and a small one has little to write. Measured
/// (`LOAD_ONLY=ingest cargo bench --bench load`, two runs each): ack p99 at 8 connections
/// 2.8 ms every 10 ms, 3.0 at 20, 4.0 at 50, 4.3–4.6 at 100, 4.5–5.0 at 250; at 64
/// connections 8.7, 9–10, 10.8, 12, 15–16 ms; throughput the same within the noise. Every
/// 4 ms was worse (two runs alternated with 10 ms: 4,655 / 4,821 req/s at 8 connections
/// against 5,834 / 5,136): each round's catch-up pass holds the writers back.
const CHECKPOINT_BUSY: Duration = Duration::from_millis(10);
/// The longest wait while nothing is written, so an idle relay wakes once a second, not a
/// hundred times.
const CHECKPOINT_IDLE: Duration = Duration::from_secs(1);

/// The wait before the next checkpoint round: back to [`CHECKPOINT_BUSY`] as soon as the WAL
/// has new frames, doubling (up to [`CHECKPOINT_IDLE`]) while it has none.
fn next_checkpoint_wait(previous: Duration, wal_has_new_frames: bool) -> Duration {
    if wal_has_new_frames {
        CHECKPOINT_BUSY
    } else {
        (previous * 2).min(CHECKPOINT_IDLE)
    }
}

/// Checkpoints the WAL in the background, so no commit pays for one: SQLite's
/// automatic checkpoint (turned off on the pools) runs inside the commit that crosses
/// 1,000 WAL pages, which made every few ingest batches wait for megabytes of copying and a
/// sync of the database file.
///
/// Each round copies what the WAL holds without stopping anyone (PASSIVE), then copies what
/// writers appended meanwhile while holding the writers' turn: only a WAL completely copied
/// before a write transaction begins is started over by that writer, and under continuous
/// ingest that would otherwise never happen: the WAL would grow without end.
async fn checkpoints(pool: SqlitePool, write: Arc<tokio::sync::Mutex<()>>) {
    let mut wait = CHECKPOINT_BUSY;
    // The WAL's frame count at the previous round: a different count means writers came.
    let mut last_log = 0;
    loop {
        tokio::time::sleep(wait).await;
        let round = async || -> Result<i64, sqlx::Error> {
            let mut c = pool.acquire().await?;
            let (_, log, _copied): (i64, i64, i64) =
                sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                    .fetch_one(&mut *c)
                    .await?;
            // `log` and `copied` count the frames the checkpoint saw when it started; writers
            // may have appended since. Only a pass with the writers held back leaves the WAL
            // completely copied, so that the next writer starts it over. (An unchanged count
            // means no writer came since the last round's pass, which left the WAL copied.)
            if log > 0 && log != last_log {
                let _turn = write.lock().await;
                sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&mut *c)
                    .await?;
            }
            Ok(log)
        };
        match round().await {
            Ok(log) => {
                wait = next_checkpoint_wait(wait, log != last_log);
                last_log = log;
            }
            Err(e) => {
                wait = CHECKPOINT_IDLE;
                tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
            }
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed, with mode 0600 and its folder) and migrates the database.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = if path.as_os_str() == ":memory:" {
            SqliteConnectOptions::from_str("sqlite::memory:")?
        } else {
            create_private_file(path)?;
            SqliteConnectOptions::new().filename(path)
        };
        // No `journal_mode` here: switching a file to WAL needs it to itself and SQLite does
        // not wait for that (busy_timeout does not apply), so pools that set it on every
        // connection could fail with "database is locked" while another process opens the
        // same file. WAL is a property of the file: set once, below, it holds for every
        // connection opened later.
        let options = options
            .create_if_missing(true)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let in_memory = path.as_os_str() == ":memory:";
        let options = CHECKPOINT_PRAGMAS
            .iter()
            .fold(options, |options, (name, value)| {
                options.pragma(*name, *value)
            })
            .pragma("cache_size", POOL_CACHE_SIZE);
        if !in_memory {
            // One connection first: it switches a new file to WAL and creates the schema
            // before the pools open theirs.
            let mut first = sqlx::ConnectOptions::connect(&options).await?;
            switch_to_wal(&mut first).await?;
            migrate(&mut first).await?;
            sqlx::Connection::close(first).await?;
        }
        let pool = SqlitePoolOptions::new()
            // An in-memory database exists per connection: keep exactly one.
            .max_connections(if in_memory { 1 } else { 4 })
            // sqlx pings a connection on every acquire by default: a round trip to its SQLite
            // thread that can only fail if the file went away, which the query would report.
            .test_before_acquire(false)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_release(discard_if_in_transaction)
            .connect_with(options.clone())
            .await?;
        let light = if in_memory {
            pool.clone()
        } else {
            SqlitePoolOptions::new()
                // Writers take their turn before a connection; only the checkpointer holds one
                // while it waits for its turn, so a writer always finds one free.
                .max_connections(3)
                .test_before_acquire(false)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .after_release(discard_if_in_transaction)
                .connect_with(options.synchronous(SqliteSynchronous::Normal))
                .await?
        };
        let write = Arc::new(tokio::sync::Mutex::new(()));
        let checkpointer = (!in_memory)
            .then(|| tokio::spawn(checkpoints(light.clone(), write.clone())).abort_handle());
        let ingest = if in_memory {
            None
        } else {
            Some(IngestQueue::start(path, BUSY_TIMEOUT, write.clone())?)
        };
        let store = SqliteStore {
            pool,
            light,
            write,
            checkpointer,
            ingest,
        };
        if in_memory {
            migrate(&mut *store.pool.acquire().await?).await?;
        }
        Ok(store)
    }
}

/// The page cache of each pooled connection (negative: KiB): 256 KiB instead of SQLite's
/// 2,000. A pooled connection's cache is emptied whenever another connection has written since
/// its last read, which under ingest is nearly every time, so a larger one kept little but
/// memory: with the seven pooled connections at the default, the relay's RSS peaked at
/// 59–70 MiB while it took and delivered 5,500–7,000 webhooks/s (`LOAD_ONLY=sustained`), at
/// 50–59 MiB with this, and kept up with the same rates. The ingest thread's connection,
/// which does nearly all the writing and keeps its cache, has the default.
const POOL_CACHE_SIZE: &str = "-256";

/// How long opening waits for other connections to the same file (SQLite's busy handler, and
/// [`switch_to_wal`]'s retries, which the busy handler does not cover).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Puts the file in WAL mode. On a new file this needs an exclusive lock, which SQLite reports
/// as busy at once instead of waiting for it; another process opening the same new file at the
/// same moment holds it only briefly, so retry until [`BUSY_TIMEOUT`].
async fn switch_to_wal(conn: &mut sqlx::SqliteConnection) -> Result<(), StoreError> {
    let deadline = tokio::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        match sqlx::query_scalar::<_, String>("PRAGMA journal_mode = WAL")
            .fetch_one(&mut *conn)
            .await
        {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                return Err(StoreError::Unavailable(format!(
                    "the database file cannot use a write-ahead log (journal mode stays {mode:?})"
                )));
            }
            Err(e) if is_busy(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// SQLITE_BUSY, with or without an extended code (BUSY_RECOVERY, BUSY_SNAPSHOT...).
fn is_busy(error: &sqlx::Error) -> bool {
    let code = match error {
        sqlx::Error::Database(db) => db.code(),
        _ => None,
    };
    code.and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| c & 0xff == 5)
}

/// Creates or checks the schema.
async fn migrate(conn: &mut sqlx::SqliteConnection) -> Result<(), StoreError> {
    let mut tx = sqlx::Connection::begin_with(conn, "BEGIN IMMEDIATE").await?;
    for statement in SCHEMA {
        sqlx::query(*statement).execute(&mut *tx).await?;
    }
    let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
        .fetch_one(&mut *tx)
        .await?;
    match version {
        None => {
            sqlx::query("INSERT INTO schema_version (version) VALUES (?)")
                .bind(SCHEMA_VERSION)
                .execute(&mut *tx)
                .await?;
        }
        Some(v) if v > SCHEMA_VERSION => {
            return Err(StoreError::Corrupt(format!(
                "schema version {v} is newer than this relay's {SCHEMA_VERSION}; upgrade the relay"
            )));
        }
        // Nothing to change in the tables from 1 to 2: the version is what tells older relays.
        Some(v) if v < SCHEMA_VERSION => {
            sqlx::query("UPDATE schema_version SET version = ?")
                .bind(SCHEMA_VERSION)
                .execute(&mut *tx)
                .await?;
        }
        Some(_) => {}
    }
    tx.commit().await?;
    Ok(())
}

/// SQLite creates its file world-readable by default; the queue holds payloads that can
/// carry Gitee passwords, so create it owner-only first.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Folders the relay creates are owner-only too, whatever the umask.
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
    }
    let mut open = std::fs::OpenOptions::new();
    open.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    open.open(path)
        .map(drop)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))
}

fn delivery_row(row: &sqlx::sqlite::SqliteRow) -> Result<DeliveryRow, StoreError> {
    Ok(DeliveryRow {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        channel: row.try_get("channel")?,
        state: state_from_db(row.try_get::<&str, _>("state")?)?,
        attempts: row.try_get::<i64, _>("attempts")? as u32,
        next_attempt_ms: row.try_get("next_attempt_ms")?,
        last_error: row.try_get("last_error")?,
    })
}

fn stored_event(ev: &sqlx::sqlite::SqliteRow) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        id: ev.try_get("id")?,
        source: ev.try_get("source")?,
        kind: kind_from_db(ev.try_get::<&str, _>("kind")?)?,
        is_test: ev.try_get("is_test")?,
        received_ms: ev.try_get("received_ms")?,
        payload: super::payload_codec::decode(ev.try_get("payload")?)?,
    })
}

/// Records an attempt and moves the delivery on, inside the caller's transaction.
async fn complete_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    delivery_id: i64,
    owner: &str,
    attempt: &AttemptRecord,
    completion: &Completion,
) -> Result<bool, StoreError> {
    let o = Outcome::of(attempt, completion);
    sqlx::query(
        "INSERT INTO attempts (delivery_id, started_ms, duration_ms, http_status, outcome, reply_excerpt, request_url, error)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(delivery_id)
    .bind(attempt.started_ms)
    .bind(attempt.duration_ms)
    .bind(attempt.http_status.map(i64::from))
    .bind(o.outcome)
    .bind(&attempt.reply_excerpt)
    .bind(&attempt.request_url)
    .bind(attempt.error.as_deref().or(o.error))
    .execute(&mut **tx)
    .await?;
    let updated = sqlx::query(
        "UPDATE deliveries SET state = ?, attempts = attempts + 1, next_attempt_ms = ?,
             lease_owner = NULL, updated_ms = ?, last_error = ?, last_retry_class = ?
         WHERE id = ? AND state = 'sending' AND lease_owner = ?",
    )
    .bind(o.state)
    .bind(o.next_ms)
    .bind(o.now_ms)
    .bind(o.error)
    .bind(o.class)
    .bind(delivery_id)
    .bind(owner)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// What an attempt writes: its `outcome`, and the delivery's next state, due time, error and
/// retry class.
pub(super) struct Outcome<'a> {
    pub(super) outcome: &'static str,
    pub(super) state: &'static str,
    pub(super) next_ms: i64,
    pub(super) now_ms: i64,
    pub(super) error: Option<&'a str>,
    pub(super) class: Option<&'static str>,
}

impl<'a> Outcome<'a> {
    pub(super) fn of(attempt: &AttemptRecord, completion: &'a Completion) -> Outcome<'a> {
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
        Outcome {
            outcome,
            state,
            next_ms,
            now_ms: attempt.started_ms + attempt.duration_ms,
            error,
            class,
        }
    }
}

/// Leases up to `limit` due deliveries of a channel, oldest due first (parameters: owner,
/// lease end, now, channel, now, limit).
pub(super) const CLAIM_BATCH_SQL: &str =
    "UPDATE deliveries SET state = 'sending', lease_owner = ?, next_attempt_ms = ?, updated_ms = ?
     WHERE id IN (
        SELECT id FROM deliveries
        WHERE channel = ? AND state IN ('pending', 'retrying', 'sending') AND next_attempt_ms <= ?
        ORDER BY next_attempt_ms, id LIMIT ?)
     RETURNING id, event_id, attempts, created_ms, last_retry_class";

/// A delivery as [`CLAIM_BATCH_SQL`] returns it.
pub(super) struct ClaimRow {
    pub(super) id: i64,
    pub(super) event_id: i64,
    pub(super) attempts: i64,
    pub(super) created_ms: i64,
    pub(super) last_retry_class: Option<String>,
}

/// Rows per multi-row INSERT. A few fixed sizes, so the statement cache holds a few
/// statements, not one per batch size; 64 rows × 8 columns stay far below SQLite's limit of
/// 32,766 parameters. Powers of two, so a batch of n rows takes at most log2(n) + 1
/// statements: each is a round trip to sqlx's SQLite thread that the whole transaction waits
/// for (`complete_each`, `:memory:` ingest; the ingest thread runs the same sizes in one go).
/// (With 64, 16, 4, 1 a batch of 7 took four, and the commits at 8 connections, of 1–7
/// webhooks, were slower: ingest 5,213 against 6,076 req/s, 10,990 against 12,079 at
/// 64, means of four alternated `LOAD_ONLY=ingest` runs.)
const CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// Splits `n` rows into [`CHUNKS`] sizes, largest first.
pub(super) fn chunks(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let size = CHUNKS.into_iter().find(|c| *c <= n)?;
        n -= size;
        Some(size)
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Batch {
    /// New events, with their ids.
    Events,
    /// New deliveries.
    Deliveries,
    /// Attempts.
    Attempts,
    /// Deliveries moved on by their attempts (the lease owner is the last parameter).
    Completions,
}

/// The statement writing `rows` rows (one of [`CHUNKS`]) of `batch`.
pub(super) fn batch_sql(batch: Batch, rows: usize) -> &'static str {
    const BATCHES: [Batch; 4] = [
        Batch::Events,
        Batch::Deliveries,
        Batch::Attempts,
        Batch::Completions,
    ];
    static SQL: OnceLock<Vec<(Batch, usize, String)>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        let mut all = Vec::new();
        for batch in BATCHES {
            for n in CHUNKS {
                let values = |row: &str| vec![row; n].join(", ");
                let sql = match batch {
                    Batch::Events => format!(
                        "INSERT INTO events (id, source, kind, action, repo, is_test, received_ms, payload) VALUES {}",
                        values("(?, ?, ?, ?, ?, ?, ?, ?)")
                    ),
                    Batch::Deliveries => format!(
                        "INSERT INTO deliveries (event_id, channel, state, next_attempt_ms, created_ms, updated_ms) VALUES {}",
                        values("(?, ?, 'pending', ?, ?, ?)")
                    ),
                    Batch::Attempts => format!(
                        "INSERT INTO attempts (delivery_id, started_ms, duration_ms, http_status, outcome, reply_excerpt, request_url, error) VALUES {}",
                        values("(?, ?, ?, ?, ?, ?, ?, ?)")
                    ),
                    // As `complete_in`'s UPDATE, one row per attempt.
                    Batch::Completions => format!(
                        "WITH v (id, state, next_ms, now_ms, error, class) AS (VALUES {})
                         UPDATE deliveries SET state = v.state, attempts = attempts + 1,
                             next_attempt_ms = v.next_ms, lease_owner = NULL, updated_ms = v.now_ms,
                             last_error = v.error, last_retry_class = v.class
                         FROM v WHERE deliveries.id = v.id AND deliveries.state = 'sending'
                             AND deliveries.lease_owner = ?",
                        values("(?, ?, ?, ?, ?, ?)")
                    ),
                };
                all.push((batch, n, sql));
            }
        }
        all
    });
    all.iter()
        .find(|(b, n, _)| *b == batch && *n == rows)
        .map(|(_, _, sql)| sql.as_str())
        .expect("a chunk size")
}

/// The events of claimed deliveries, one statement for the whole claim.
async fn events_by_id(
    conn: &mut sqlx::SqliteConnection,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, StoredEvent>, StoreError> {
    let list = format!(
        "[{}]",
        ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
    );
    let rows = sqlx::query(
        "SELECT id, source, kind, is_test, received_ms, payload FROM events
         WHERE id IN (SELECT value FROM json_each(?))",
    )
    .bind(list)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| stored_event(row).map(|e| (e.id, e)))
        .collect()
}

/// Pool hook: a connection whose COMMIT failed (disk full, I/O error) can be left inside a
/// transaction as sqlx sees it, and would then refuse every later transaction; it is closed
/// instead of going back to the pool, so the store recovers by itself once the fault clears.
fn discard_if_in_transaction(
    conn: &mut sqlx::SqliteConnection,
    _meta: sqlx::pool::PoolConnectionMetadata,
) -> futures_util::future::BoxFuture<'_, Result<bool, sqlx::Error>> {
    let keep = !sqlx::Connection::is_in_transaction(conn);
    if !keep {
        tracing::warn!("closing a store connection left inside a failed transaction");
    }
    Box::pin(async move { Ok(keep) })
}

/// The ingest transaction of [`SqliteStore::insert_events`] for `:memory:`, on the pool's
/// one connection. (A file store runs the same statements on its ingest thread.)
async fn insert_events_in(
    conn: &mut sqlx::SqliteConnection,
    events: &[NewEvent],
) -> Result<Vec<EventReceipt>, StoreError> {
    let mut tx = sqlx::Connection::begin_with(conn, "BEGIN IMMEDIATE").await?;
    // The ids are chosen here (this transaction holds the write lock), as SQLite would
    // choose them (one past the largest), so the rows can go in with multi-row INSERTs:
    // a few statements per batch instead of one per row.
    let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM events")
        .fetch_one(&mut *tx)
        .await?;
    let ids: Vec<i64> = (1..=events.len() as i64).map(|i| last + i).collect();
    let mut at = 0;
    for n in chunks(events.len()) {
        let mut q = sqlx::query(batch_sql(Batch::Events, n));
        for (event, id) in events[at..at + n].iter().zip(&ids[at..]) {
            q = q
                .bind(id)
                .bind(&event.source)
                .bind(event.kind.as_str())
                .bind(&event.action)
                .bind(&event.repo)
                .bind(event.is_test)
                .bind(event.received_ms)
                .bind(&event.payload);
        }
        q.execute(&mut *tx).await?;
        at += n;
    }
    let deliveries: Vec<(i64, &str, i64)> = events
        .iter()
        .zip(&ids)
        .flat_map(|(event, id)| {
            event
                .channels
                .iter()
                .map(move |c| (*id, c.as_str(), event.received_ms))
        })
        .collect();
    let mut at = 0;
    for n in chunks(deliveries.len()) {
        let mut q = sqlx::query(batch_sql(Batch::Deliveries, n));
        for (event_id, channel, received_ms) in &deliveries[at..at + n] {
            q = q
                .bind(event_id)
                .bind(*channel)
                .bind(received_ms)
                .bind(received_ms)
                .bind(received_ms);
        }
        q.execute(&mut *tx).await?;
        at += n;
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

#[async_trait]
impl Store for SqliteStore {
    fn ingest_queue(&self) -> Option<IngestQueue> {
        self.ingest.clone()
    }

    async fn insert_events(&self, events: &[NewEvent]) -> Result<Vec<EventReceipt>, StoreError> {
        if let Some(ingest) = &self.ingest {
            return ingest.insert_batch(events.to_vec()).await;
        }
        let _turn = self.write.lock().await;
        // A connection whose commit fails is closed by the pool hook, not reused.
        let mut conn = self.pool.acquire().await?;
        insert_events_in(&mut conn, events).await
    }

    async fn claim_next(
        &self,
        channel: &str,
        now_ms: i64,
        lease_ms: i64,
        owner: &str,
    ) -> Result<Option<ClaimedDelivery>, StoreError> {
        let _turn = self.write.lock().await;
        let mut tx = self.light.begin_with("BEGIN IMMEDIATE").await?;
        let claimed = sqlx::query(
            "UPDATE deliveries SET state = 'sending', lease_owner = ?, next_attempt_ms = ?, updated_ms = ?
             WHERE id = (
                SELECT id FROM deliveries
                WHERE channel = ? AND state IN ('pending', 'retrying', 'sending') AND next_attempt_ms <= ?
                ORDER BY next_attempt_ms, id LIMIT 1)
             RETURNING id, event_id, attempts, created_ms, last_retry_class",
        )
        .bind(owner)
        .bind(now_ms + lease_ms)
        .bind(now_ms)
        .bind(channel)
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        drop(_turn);
        let Some(row) = claimed else {
            return Ok(None);
        };
        let event_id: i64 = row.try_get("event_id")?;
        // Read after the write turn, like `claim_batch`'s events.
        let ev = sqlx::query(
            "SELECT id, source, kind, is_test, received_ms, payload FROM events WHERE id = ?",
        )
        .bind(event_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(Some(ClaimedDelivery {
            id: row.try_get("id")?,
            event_id,
            channel: channel.to_owned(),
            attempts: row.try_get::<i64, _>("attempts")? as u32,
            created_ms: row.try_get("created_ms")?,
            last_retry_class: row.try_get("last_retry_class")?,
            event: stored_event(&ev)?,
        }))
    }

    async fn complete(
        &self,
        delivery_id: i64,
        owner: &str,
        attempt: &AttemptRecord,
        completion: &Completion,
    ) -> Result<bool, StoreError> {
        let _turn = self.write.lock().await;
        let mut tx = self.light.begin_with("BEGIN IMMEDIATE").await?;
        let moved = complete_in(&mut tx, delivery_id, owner, attempt, completion).await?;
        tx.commit().await?;
        Ok(moved)
    }

    async fn claim_batch(
        &self,
        channel: &str,
        now_ms: i64,
        lease_ms: i64,
        owner: &str,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let rows = match &self.ingest {
            Some(writer) => {
                let (channel, owner) = (channel.to_owned(), owner.to_owned());
                writer
                    .write(move |conn| {
                        sqlite_dispatch::claim(conn, &channel, now_ms, lease_ms, &owner, limit)
                    })
                    .await?
            }
            None => {
                let _turn = self.write.lock().await;
                let mut tx = self.light.begin_with("BEGIN IMMEDIATE").await?;
                let rows = sqlx::query(CLAIM_BATCH_SQL)
                    .bind(owner)
                    .bind(now_ms + lease_ms)
                    .bind(now_ms)
                    .bind(channel)
                    .bind(now_ms)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows.iter()
                    .map(|row| {
                        Ok(ClaimRow {
                            id: row.try_get("id")?,
                            event_id: row.try_get("event_id")?,
                            attempts: row.try_get("attempts")?,
                            created_ms: row.try_get("created_ms")?,
                            last_retry_class: row.try_get("last_retry_class")?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            }
        };
        let event_ids: Vec<i64> = rows.iter().map(|row| row.event_id).collect();
        // The events are read after the write turn, so webhooks waiting to be committed do not
        // also wait for up to 64 stored bodies to be read. Nothing can change them meanwhile:
        // events are never updated, and one is pruned only once none of its deliveries is
        // live, as these are now (claimed, `sending`, under this lease).
        let mut events = if rows.is_empty() {
            Default::default()
        } else {
            events_by_id(&mut *self.pool.acquire().await?, &event_ids).await?
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            // One delivery per (event, channel): each event is claimed at most once here.
            let event = events.remove(&row.event_id).ok_or_else(|| {
                StoreError::Corrupt(format!("delivery of a missing event {}", row.event_id))
            })?;
            out.push(ClaimedDelivery {
                id: row.id,
                event_id: row.event_id,
                channel: channel.to_owned(),
                attempts: row.attempts as u32,
                created_ms: row.created_ms,
                last_retry_class: row.last_retry_class,
                event,
            });
        }
        // RETURNING gives no order guarantee: oldest first, as digests list them.
        out.sort_by_key(|d| (d.event.received_ms, d.id));
        Ok(out)
    }

    async fn count_due(&self, channel: &str, now_ms: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries
             WHERE channel = ? AND state IN ('pending', 'retrying', 'sending') AND next_attempt_ms <= ?",
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
        let _turn = self.write.lock().await;
        let mut tx = self.light.begin_with("BEGIN IMMEDIATE").await?;
        let mut moved = 0;
        for id in delivery_ids {
            if complete_in(&mut tx, *id, owner, attempt, completion).await? {
                moved += 1;
            }
        }
        tx.commit().await?;
        Ok(moved)
    }

    async fn complete_each(
        &self,
        owner: &str,
        done: &[(i64, AttemptRecord, Completion)],
    ) -> Result<u64, StoreError> {
        if done.is_empty() {
            return Ok(0);
        }
        if let Some(writer) = &self.ingest {
            let (owner, done) = (owner.to_owned(), done.to_vec());
            return writer
                .write(move |conn| sqlite_dispatch::record(conn, &owner, &done))
                .await;
        }
        let rows: Vec<(i64, &AttemptRecord, Outcome<'_>)> = done
            .iter()
            .map(|(id, attempt, completion)| (*id, attempt, Outcome::of(attempt, completion)))
            .collect();
        let _turn = self.write.lock().await;
        let mut tx = self.light.begin_with("BEGIN IMMEDIATE").await?;
        let mut moved = 0;
        let mut at = 0;
        for n in chunks(rows.len()) {
            let part = &rows[at..at + n];
            let mut q = sqlx::query(batch_sql(Batch::Attempts, n));
            for (id, attempt, o) in part {
                q = q
                    .bind(id)
                    .bind(attempt.started_ms)
                    .bind(attempt.duration_ms)
                    .bind(attempt.http_status.map(i64::from))
                    .bind(o.outcome)
                    .bind(&attempt.reply_excerpt)
                    .bind(&attempt.request_url)
                    .bind(attempt.error.as_deref().or(o.error));
            }
            q.execute(&mut *tx).await?;
            let mut q = sqlx::query(batch_sql(Batch::Completions, n));
            for (id, _, o) in part {
                q = q
                    .bind(id)
                    .bind(o.state)
                    .bind(o.next_ms)
                    .bind(o.now_ms)
                    .bind(o.error)
                    .bind(o.class);
            }
            moved += q.bind(owner).execute(&mut *tx).await?.rows_affected();
            at += n;
        }
        tx.commit().await?;
        Ok(moved)
    }

    async fn release(
        &self,
        delivery_ids: &[i64],
        owner: &str,
        due_ms: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write.lock().await;
        let mut tx = self.light.begin_with("BEGIN IMMEDIATE").await?;
        for id in delivery_ids {
            sqlx::query(
                "UPDATE deliveries
                 SET state = CASE WHEN attempts = 0 THEN 'pending' ELSE 'retrying' END,
                     lease_owner = NULL, next_attempt_ms = ?, updated_ms = ?
                 WHERE id = ? AND state = 'sending' AND lease_owner = ?",
            )
            .bind(due_ms)
            .bind(due_ms)
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn prune(
        &self,
        delivered_before_ms: i64,
        dead_before_ms: i64,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let _turn = self.write.lock().await;
        let mut tx = self.light.begin_with("BEGIN IMMEDIATE").await?;
        // An event goes when none of its deliveries is still live and each finished one is
        // older than its state's retention.
        let result = sqlx::query(
            "DELETE FROM events WHERE id IN (
                SELECT e.id FROM events e
                WHERE NOT EXISTS (
                    SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND NOT (
                        (d.state = 'delivered' AND d.updated_ms < ?)
                        OR (d.state = 'dead' AND d.updated_ms < ?)))
                AND e.received_ms < ?
                ORDER BY e.id LIMIT ?)",
        )
        .bind(delivered_before_ms)
        .bind(dead_before_ms)
        .bind(delivered_before_ms.max(dead_before_ms))
        .bind(batch)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(result.rows_affected())
    }

    async fn next_due_ms(&self, channel: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_ms) FROM deliveries
             WHERE channel = ? AND state IN ('pending', 'retrying', 'sending')",
        )
        .bind(channel)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn release_leases(&self, owner: Option<&str>, now_ms: i64) -> Result<u64, StoreError> {
        let _turn = self.write.lock().await;
        let result = sqlx::query(
            "UPDATE deliveries
             SET state = CASE WHEN attempts = 0 THEN 'pending' ELSE 'retrying' END,
                 lease_owner = NULL, next_attempt_ms = ?, updated_ms = ?
             WHERE state = 'sending' AND (? IS NULL OR lease_owner = ?)",
        )
        .bind(now_ms)
        .bind(now_ms)
        .bind(owner)
        .bind(owner)
        .execute(&self.light)
        .await?;
        Ok(result.rows_affected())
    }

    async fn delivery(&self, id: i64) -> Result<Option<DeliveryRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, event_id, channel, state, attempts, next_attempt_ms, last_error
             FROM deliveries WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(delivery_row).transpose()
    }

    async fn deliveries_of_event(&self, event_id: i64) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, event_id, channel, state, attempts, next_attempt_ms, last_error
             FROM deliveries WHERE event_id = ? ORDER BY id",
        )
        .bind(event_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_row).collect()
    }

    async fn attempts(&self, delivery_id: i64) -> Result<Vec<AttemptRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT delivery_id, started_ms, duration_ms, http_status, outcome, reply_excerpt, request_url, error
             FROM attempts WHERE delivery_id = ? ORDER BY id",
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
                        .try_get::<Option<i64>, _>("http_status")?
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
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state")
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
        // Webhooks are stored by the ingest thread: ready only while it answers.
        if let Some(ingest) = &self.ingest {
            ingest.ping().await?;
        }
        let _turn = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("SELECT 1").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
