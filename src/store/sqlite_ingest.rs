//! Group commit for the SQLite file store, on a thread of its own with a connection of its
//! own.
//!
//! sqlx runs every statement on its connection's worker thread and hands each one over and
//! back: a group commit of five statements (BEGIN, the id query, two INSERTs, COMMIT) was
//! five round trips between threads, each a pair of futex wake-ups that every webhook of the
//! batch waited for, after a hop through the group-commit task. Here webhooks queue straight
//! to this thread, which takes whatever has gathered (a lone webhook is committed at once),
//! runs the whole transaction in one go from statements prepared once, and answers each.
//! Measured (alternated `LOAD_ONLY=ingest` runs, BENCHMARKS.md): a commit at 8 connections
//! 0.38–0.45 ms instead of 0.71–0.86, ingest +25–75 % at 8 and at 64 connections.
//!
//! The connection is the store file's, opened like the sqlx pools' (WAL, `synchronous=FULL`,
//! foreign keys, the background checkpoint's settings). It takes the store's write turn like
//! every other writer, and keeps its page cache between batches: SQLite discards a
//! connection's cache only when another connection has written.
//!
//! Between batches the thread also runs the dispatcher's busiest writes (claiming a burst,
//! recording its attempts: `sqlite_dispatch.rs`), queued here like webhooks, so that they
//! hold the write turn for the time SQLite needs and no longer ([`IngestQueue::write`]).

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::sync::oneshot;

use super::group_commit::{MAX_BATCH, Reply, answer};
use super::sqlite::{Batch, CHECKPOINT_PRAGMAS, batch_sql, chunks};
use super::{EventReceipt, NewEvent, StoreError};

type Receipts = Result<Vec<EventReceipt>, StoreError>;

/// The transaction the thread runs for each batch ([`insert_events`]; tests pass others).
type Transaction = fn(&mut Connection, &[NewEvent]) -> Receipts;

enum Job {
    /// One webhook, committed with whatever else has gathered.
    One(NewEvent, Reply),
    /// A batch that is one transaction of its own ([`super::Store::insert_events`]).
    Batch(Vec<NewEvent>, oneshot::Sender<Receipts>),
    /// Readiness: the thread answers and its connection can take the write lock.
    Ping(oneshot::Sender<Result<(), StoreError>>),
    /// Another writer's transaction ([`IngestQueue::write`]), run between batches.
    Write(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// Where webhooks queue for the ingest thread. The thread ends once every handle is dropped.
#[derive(Clone)]
pub struct IngestQueue {
    jobs: mpsc::Sender<Job>,
}

impl IngestQueue {
    /// Opens a connection to `path` (already created, migrated and in WAL mode) and starts
    /// the thread that owns it. `write` is the store's write turn.
    pub(super) fn start(
        path: &Path,
        busy_timeout: Duration,
        write: Arc<tokio::sync::Mutex<()>>,
    ) -> Result<IngestQueue, StoreError> {
        IngestQueue::spawn(open(path, busy_timeout)?, write, insert_events)
    }

    fn spawn(
        conn: Connection,
        write: Arc<tokio::sync::Mutex<()>>,
        transaction: Transaction,
    ) -> Result<IngestQueue, StoreError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-ingest".into())
            .spawn(move || serve(conn, &rx, &write, transaction))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the ingest thread: {e}")))?;
        Ok(IngestQueue { jobs })
    }

    /// Queues one webhook's event and waits until it is durable.
    pub async fn insert(&self, event: NewEvent) -> Result<EventReceipt, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::One(event, reply))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Commits `events` in one transaction of their own.
    pub(super) async fn insert_batch(&self, events: Vec<NewEvent>) -> Receipts {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Batch(events, reply))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Runs `transaction` on this thread's connection, in the store's write turn, between
    /// two batches of webhooks: the dispatcher's claims and attempt records. On sqlx's pools
    /// each of their statements was a round trip to a connection's thread, all made while
    /// holding the write turn, so webhooks waited behind them (a group commit at 2,000
    /// webhooks/s took 0.66 ms instead of 0.25 while the relay delivered, BENCHMARKS.md);
    /// here the whole transaction runs in one go from statements prepared once.
    ///
    /// The commit is not synced by itself (`synchronous = NORMAL`, as on the pools these
    /// writes came from): losing it in a power cut sends a message again, and the next
    /// group commit's sync makes it durable with the webhooks.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        transaction: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Write(Box::new(move |conn: &mut Connection| {
            let _ = reply.send(transaction(conn));
        }));
        self.jobs.send(job).map_err(|_| stopped())?;
        // The reply is dropped unsent only when the transaction panicked (logged there).
        answer.await.map_err(|_| {
            StoreError::Unavailable(
                "the write transaction failed unexpectedly (see the log); what it had not committed was rolled back"
                    .into(),
            )
        })?
    }

    /// Whether webhooks can be stored: the thread answers, and its connection takes the
    /// write lock (in the store's write turn).
    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job::Ping(reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the ingest thread has stopped".into())
}

fn open(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_error)?;
    conn.busy_timeout(busy_timeout).map_err(sqlite_error)?;
    // Every statement the thread runs stays prepared: the id query and seven sizes of
    // each of the ingest's two multi-row INSERTs; the sync level's query; the dispatcher's
    // claim, and seven sizes of each of its two statements recording attempts.
    conn.set_prepared_statement_cache_capacity(32);
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(sqlite_error)?;
    for (name, value) in CHECKPOINT_PRAGMAS {
        conn.pragma_update(None, name, value)
            .map_err(sqlite_error)?;
    }
    Ok(conn)
}

/// The thread: waits for a job, gathers every webhook already queued behind it (up to
/// [`MAX_BATCH`]), commits them together and answers each.
fn serve(
    mut conn: Connection,
    jobs: &mpsc::Receiver<Job>,
    write: &tokio::sync::Mutex<()>,
    transaction: Transaction,
) {
    let mut events = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    let mut next = jobs.recv().ok();
    while let Some(job) = next.take() {
        match job {
            Job::Batch(batch, reply) => {
                let _ = reply.send(commit(&mut conn, write, transaction, &batch));
            }
            Job::Ping(reply) => {
                let _turn = write.blocking_lock();
                let result = conn.execute_batch("BEGIN IMMEDIATE; COMMIT");
                end_transaction(&conn);
                let _ = reply.send(result.map_err(sqlite_error));
            }
            Job::Write(transaction) => run_unsynced(&mut conn, write, transaction),
            Job::One(event, reply) => {
                events.push(event);
                replies.push(reply);
                // Whatever else has gathered; a batch job waits for the next round.
                while events.len() < MAX_BATCH {
                    match jobs.try_recv() {
                        Ok(Job::One(event, reply)) => {
                            events.push(event);
                            replies.push(reply);
                        }
                        Ok(batch) => {
                            next = Some(batch);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let started = Instant::now();
                let result = commit(&mut conn, write, transaction, &events);
                answer(result, events.len(), started, replies.drain(..));
                events.clear();
            }
        }
        if next.is_none() {
            next = jobs.recv().ok();
        }
    }
}

/// One transaction, in the store's write turn. A panic inside it (a bug) fails this batch
/// only: the transaction rolls back as it unwinds, the batch's webhooks are answered with an
/// error (503: Gitee retries them), and the thread goes on with the next batch instead of
/// leaving every later webhook without an answer.
fn commit(
    conn: &mut Connection,
    write: &tokio::sync::Mutex<()>,
    transaction: Transaction,
    events: &[NewEvent],
) -> Receipts {
    const PANICKED: &str =
        "the ingest transaction failed unexpectedly (see the log); nothing of it was stored";
    let _turn = write.blocking_lock();
    // Never without a sync of its own (another writer's transaction relaxes it for itself).
    full_sync(conn)?;
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| transaction(conn, events)))
            .unwrap_or_else(|_| Err(StoreError::Unavailable(PANICKED.into())));
    end_transaction(conn);
    result
}

/// Runs another writer's transaction in the write turn with `synchronous = NORMAL`. A panic
/// in it (a bug) drops its reply, which its caller reports as a failure; the thread goes on.
fn run_unsynced(
    conn: &mut Connection,
    write: &tokio::sync::Mutex<()>,
    transaction: Box<dyn FnOnce(&mut Connection) + Send>,
) {
    let _turn = write.blocking_lock();
    if let Err(e) = conn.execute_batch("PRAGMA synchronous = NORMAL") {
        tracing::warn!(error = %e, "cannot relax the sync of a write transaction");
    }
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| transaction(conn)));
    if run.is_err() {
        tracing::error!("a write transaction panicked; what it had not committed was rolled back");
    }
    end_transaction(conn);
    // If this fails, the next batch of webhooks tries again before committing (`commit`).
    let _ = full_sync(conn);
}

/// Puts the connection back to `synchronous = FULL`, which every batch of webhooks commits
/// with: each is answered only once synced. (SQLite refuses the change inside a
/// transaction; `end_transaction` has closed any.)
fn full_sync(conn: &Connection) -> Result<(), StoreError> {
    const FULL: i64 = 2;
    let level = || -> Result<i64, StoreError> {
        conn.prepare_cached("PRAGMA synchronous")
            .and_then(|mut s| s.query_row([], |row| row.get(0)))
            .map_err(sqlite_error)
    };
    if level()? == FULL {
        return Ok(());
    }
    conn.execute_batch("PRAGMA synchronous = FULL")
        .map_err(sqlite_error)?;
    match level()? {
        FULL => Ok(()),
        other => Err(StoreError::Unavailable(format!(
            "the ingest connection syncs at level {other}, not FULL ({FULL}); nothing was stored"
        ))),
    }
}

/// Rolls back whatever a failed transaction left open (a BEGIN whose COMMIT failed), so the
/// next batch can begin its own. (rusqlite's `Transaction` does this when dropped; this
/// covers any other way in.)
fn end_transaction(conn: &Connection) {
    if !conn.is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        tracing::error!(error = %e, "cannot roll back a failed ingest transaction");
    }
}

/// The ingest transaction: the events with ids chosen here (this transaction holds the
/// write lock) as SQLite would choose them, one past the largest, so rows go in with
/// multi-row INSERTs; then one delivery per (event, channel). Any error leaves nothing
/// behind: the transaction rolls back when dropped uncommitted.
fn insert_events(conn: &mut Connection, events: &[NewEvent]) -> Receipts {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_error)?;
    let last: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM events")
        .and_then(|mut s| s.query_row([], |row| row.get(0)))
        .map_err(sqlite_error)?;
    let rows: Vec<(i64, &NewEvent)> = (last + 1..).zip(events).collect();
    insert_rows(&tx, Batch::Events, &rows, |b, (id, event)| {
        b.bind(id)?
            .bind(&event.source)?
            .bind(&event.kind.as_str())?
            .bind(&event.action)?
            .bind(&event.repo)?
            .bind(&event.is_test)?
            .bind(&event.received_ms)?
            .bind(&event.payload)
            .map(drop)
    })?;
    let deliveries: Vec<(i64, &str, i64)> = rows
        .iter()
        .flat_map(|(id, event)| {
            event
                .channels
                .iter()
                .map(move |c| (*id, c.as_str(), event.received_ms))
        })
        .collect();
    insert_rows(
        &tx,
        Batch::Deliveries,
        &deliveries,
        |b, (id, channel, at)| {
            b.bind(id)?
                .bind(channel)?
                .bind(at)?
                .bind(at)?
                .bind(at)
                .map(drop)
        },
    )?;
    tx.commit().map_err(sqlite_error)?;
    Ok(rows
        .iter()
        .map(|(id, event)| EventReceipt {
            event_id: *id,
            deliveries: event.channels.len(),
        })
        .collect())
}

/// Writes `rows` with the multi-row INSERTs of `batch`, a few statements in all.
pub(super) fn insert_rows<T>(
    tx: &rusqlite::Transaction<'_>,
    batch: Batch,
    rows: &[T],
    bind_row: impl Fn(&mut Binder<'_, '_>, &T) -> rusqlite::Result<()>,
) -> Result<(), StoreError> {
    let mut at = 0;
    for n in chunks(rows.len()) {
        let mut statement = tx
            .prepare_cached(batch_sql(batch, n))
            .map_err(sqlite_error)?;
        let mut binder = Binder::new(&mut statement);
        for row in &rows[at..at + n] {
            bind_row(&mut binder, row).map_err(sqlite_error)?;
        }
        statement.raw_execute().map_err(sqlite_error)?;
        at += n;
    }
    Ok(())
}

/// Binds a multi-row statement's parameters one after another.
pub(super) struct Binder<'s, 'c> {
    statement: &'s mut rusqlite::CachedStatement<'c>,
    next: usize,
}

impl<'s, 'c> Binder<'s, 'c> {
    pub(super) fn new(statement: &'s mut rusqlite::CachedStatement<'c>) -> Self {
        Binder { statement, next: 1 }
    }

    pub(super) fn bind(&mut self, value: &dyn rusqlite::ToSql) -> rusqlite::Result<&mut Self> {
        self.statement.raw_bind_parameter(self.next, value)?;
        self.next += 1;
        Ok(self)
    }
}

/// SQLite's own words (the extended result code's description and message); they name
/// tables and constraints, never a bound value.
pub(super) fn sqlite_error(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> NewEvent {
        super::super::suite::event(&["a"])
    }

    /// A store file, and an ingest thread on it running `transaction` for each batch.
    async fn queue_on(
        dir: &tempfile::TempDir,
        transaction: Transaction,
    ) -> (super::super::SqliteStore, IngestQueue) {
        let path = dir.path().join("relay.db");
        let store = super::super::SqliteStore::open(&path).await.unwrap();
        let queue = IngestQueue::spawn(
            open(&path, Duration::from_secs(1)).unwrap(),
            Arc::new(tokio::sync::Mutex::new(())),
            transaction,
        )
        .unwrap();
        (store, queue)
    }

    /// Commits a batch, except one whose first event is a test delivery: that one panics
    /// halfway through its transaction, after writing an event row.
    fn panics_on_test_deliveries(conn: &mut Connection, events: &[NewEvent]) -> Receipts {
        if events[0].is_test {
            let tx = conn.transaction().unwrap();
            tx.execute(
                "INSERT INTO events (source, kind, action, repo, is_test, received_ms, payload)
                 VALUES ('gitee', 'push', 'push', 'acme/app', 1, 1000, x'7b7d')",
                [],
            )
            .unwrap();
            panic!("an injected bug");
        }
        insert_events(conn, events)
    }

    /// Leaves a transaction open and fails, as a COMMIT that failed would.
    fn leaves_a_transaction_open(conn: &mut Connection, events: &[NewEvent]) -> Receipts {
        if events[0].is_test {
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            return Err(StoreError::Unavailable("injected".into()));
        }
        insert_events(conn, events)
    }

    /// A batch that fails with its transaction still open does not block the next ones
    /// (each would otherwise fail: "cannot start a transaction within a transaction").
    #[tokio::test]
    async fn a_failed_batch_never_leaves_its_transaction_open() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, queue) = queue_on(&dir, leaves_a_transaction_open).await;
        let bad = NewEvent {
            is_test: true,
            ..event()
        };
        assert!(queue.insert(bad).await.is_err());
        queue.ping().await.unwrap();
        assert_eq!(queue.insert(event()).await.unwrap().deliveries, 1);
    }

    /// A panic in one batch's transaction fails that batch, rolls back what it wrote, and
    /// leaves the thread serving the next ones (on a connection no longer inside the
    /// transaction, or the next BEGIN would fail).
    #[tokio::test]
    async fn a_panicking_transaction_fails_its_batch_only() {
        let dir = tempfile::tempdir().unwrap();
        let (store, queue) = queue_on(&dir, panics_on_test_deliveries).await;
        let bad = NewEvent {
            is_test: true,
            ..event()
        };
        let error = queue.insert(bad).await.unwrap_err();
        assert!(
            error.to_string().contains("nothing of it was stored"),
            "{error}"
        );
        queue.ping().await.unwrap();
        let receipt = queue.insert(event()).await.unwrap();
        assert_eq!(receipt.deliveries, 1);
        let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(events, 1, "the failed batch left a row behind");
        drop(store);
    }

    /// The ingest transaction, refusing to run unless the connection syncs at FULL.
    fn insert_only_at_full_sync(conn: &mut Connection, events: &[NewEvent]) -> Receipts {
        let level: i64 = conn
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap();
        if level != 2 {
            return Err(StoreError::Unavailable(format!("synchronous = {level}")));
        }
        insert_events(conn, events)
    }

    fn sync_level(conn: &mut Connection) -> Result<i64, StoreError> {
        conn.pragma_query_value(None, "synchronous", |row| row.get(0))
            .map_err(sqlite_error)
    }

    /// Another writer's transaction runs without a sync of its own, and the webhooks committed
    /// after it are synced again.
    #[tokio::test]
    async fn a_write_runs_unsynced_and_webhooks_after_it_are_synced() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, queue) = queue_on(&dir, insert_only_at_full_sync).await;
        assert_eq!(queue.insert(event()).await.unwrap().deliveries, 1);
        assert_eq!(queue.write(sync_level).await.unwrap(), 1, "NORMAL");
        assert_eq!(queue.insert(event()).await.unwrap().deliveries, 1);
        assert_eq!(queue.write(sync_level).await.unwrap(), 1, "NORMAL");
        let receipts = queue.insert_batch(vec![event(), event()]).await.unwrap();
        assert_eq!(receipts.len(), 2);
    }

    /// A write that panics fails alone, with a message saying so, and the thread goes on.
    #[tokio::test]
    async fn a_panicking_write_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, queue) = queue_on(&dir, insert_only_at_full_sync).await;
        let error = queue
            .write(|_| -> Result<(), StoreError> { panic!("an injected bug") })
            .await
            .unwrap_err();
        assert!(error.to_string().contains("failed unexpectedly"), "{error}");
        assert_eq!(queue.insert(event()).await.unwrap().deliveries, 1);
    }

    /// A write that leaves its transaction open is rolled back, so nothing of it stays and the
    /// next batch can begin its own.
    #[tokio::test]
    async fn a_write_left_open_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let (store, queue) = queue_on(&dir, insert_only_at_full_sync).await;
        queue
            .write(|conn| {
                conn.execute_batch(
                    "BEGIN IMMEDIATE;
                     INSERT INTO events (source, kind, action, repo, is_test, received_ms, payload)
                     VALUES ('gitee', 'push', 'push', 'acme/app', 1, 1000, x'7b7d')",
                )
                .map_err(sqlite_error)
            })
            .await
            .unwrap();
        assert_eq!(queue.insert(event()).await.unwrap().deliveries, 1);
        let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(events, 1, "the open write left a row behind");
    }

    #[test]
    fn binder_numbers_parameters_from_one_across_rows() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a, b)").unwrap();
        let mut statement = conn
            .prepare_cached("INSERT INTO t VALUES (?, ?), (?, ?)")
            .unwrap();
        let mut binder = Binder::new(&mut statement);
        for row in [(1, "x"), (2, "y")] {
            binder.bind(&row.0).unwrap().bind(&row.1).unwrap();
        }
        statement.raw_execute().unwrap();
        drop(statement);
        let rows: Vec<(i64, String)> = conn
            .prepare("SELECT a, b FROM t ORDER BY a")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, [(1, "x".to_owned()), (2, "y".to_owned())]);
    }
}
