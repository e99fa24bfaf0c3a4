//! The row store's bulk path: one run's rows in one SQLite transaction, written by a thread of its
//! own while the file is validated (see [`RowWriter`]).
//!
//! It talks to SQLite through `rusqlite` on its own connection to the same database file (the same
//! libsqlite3 that sqlx links). Through sqlx, the same upsert spent about as much time copying,
//! boxing and freeing bound values as SQLite spent storing them (see ARCHITECTURE.md, "Row store");
//! here a prepared statement is bound straight from the batch's buffer. The schema and its
//! migrations stay sea-orm's (`crate::sqlite`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use async_trait::async_trait;
use sluice_proto::{DatasetName, RunId, StageError};
use sluice_runtime::ports::{EncodedRows, RowWriter};
use tokio::sync::{mpsc, oneshot};

/// A row replaces the stored one only when another writer stored it: within one writer the first
/// row of a key stays (the later rows of a repeated key are the file's duplicates).
const UPSERT: &str = "INSERT INTO rows (dataset, row_key, run_id, written_by, item) VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (dataset, row_key) DO UPDATE SET run_id = excluded.run_id, \
     written_by = excluded.written_by, item = excluded.item \
     WHERE rows.written_by <> excluded.written_by";

/// Batches that may wait for the writer thread: with the one it is writing and the one being
/// encoded, three batches exist at most.
const QUEUE: usize = 1;

enum Msg {
    Put(EncodedRows),
    Commit(oneshot::Sender<Result<(), StageError>>),
}

/// See the module docs. Dropped without [`RowWriter::commit`], the transaction is rolled back.
pub struct SqliteRowWriter {
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<WriterThread>,
    checkpoints: Checkpoints,
}

/// Writer threads still copying their rows from the WAL into the database file (a checkpoint) after
/// their commit: a run's rows are hundreds of MB of WAL, and copying them took as long as a quarter of
/// a run, so it overlaps the later stages instead of delaying them. [`Checkpoints::wait`] lets a
/// process that is about to exit finish them (an interrupted checkpoint loses nothing: the WAL is
/// checkpointed again the next time the database is written).
#[derive(Debug, Clone, Default)]
pub(crate) struct Checkpoints(std::sync::Arc<std::sync::Mutex<Vec<WriterThread>>>);

type WriterThread = JoinHandle<Result<(), StageError>>;

impl Checkpoints {
    fn add(&self, thread: WriterThread) {
        let mut threads = self.0.lock().unwrap_or_else(|p| p.into_inner());
        threads.retain(|t| !t.is_finished());
        threads.push(thread);
    }

    pub(crate) async fn wait(&self) {
        let threads = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

fn sqlite_err(what: &str) -> impl Fn(rusqlite::Error) -> StageError + '_ {
    move |e| {
        let text = format!("row store: {what}: {e}");
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StageError::transient(text)
            }
            _ => StageError::internal(text),
        }
    }
}

/// Unique per writer and never 0 (the value of rows written outside a writer).
fn writer_token(run_id: &RunId) -> i64 {
    static WRITERS: AtomicU64 = AtomicU64::new(0);
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let n = WRITERS.fetch_add(1, Ordering::Relaxed);
    let seed = format!("{run_id}/{since}/{}/{n}", std::process::id());
    match xxhash_rust::xxh3::xxh3_64(seed.as_bytes()) as i64 {
        0 => 1,
        t => t,
    }
}

impl SqliteRowWriter {
    /// Opens a connection to `db` and begins the transaction (it takes the write lock with its first
    /// row, waiting up to the busy timeout for another writer).
    pub(crate) fn begin(
        db: &Path,
        dataset: &DatasetName,
        run_id: &RunId,
        checkpoints: Checkpoints,
    ) -> Result<Self, StageError> {
        let conn =
            rusqlite::Connection::open(db).map_err(sqlite_err("cannot open the database"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sqlite_err("cannot configure the connection"))?;
        // No checkpoint inside COMMIT: the thread runs it after answering (see [`Checkpoints`]).
        conn.execute_batch(
            "PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=0; \
             PRAGMA journal_size_limit=67108864; BEGIN",
        )
        .map_err(sqlite_err("cannot begin a transaction"))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let ctx = Context {
            dataset: dataset.to_string(),
            run_id: run_id.to_string(),
            token: writer_token(run_id),
            db: db.to_path_buf(),
        };
        let thread = std::thread::Builder::new()
            .name("sluice-rows".into())
            .spawn(move || ctx.run(conn, rx))
            .map_err(|e| StageError::internal(format!("cannot start the row writer: {e}")))?;
        Ok(SqliteRowWriter {
            tx: Some(tx),
            thread: Some(thread),
            checkpoints,
        })
    }

    /// The writer thread's error, once it has stopped.
    async fn stopped(&mut self) -> StageError {
        self.tx = None;
        let Some(thread) = self.thread.take() else {
            return StageError::internal("row store: the writer was already stopped");
        };
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(Err(e))) => e,
            Ok(Ok(Ok(()))) => StageError::internal("row store: the writer stopped early"),
            _ => StageError::internal("row store: the writer thread failed"),
        }
    }
}

struct Context {
    dataset: String,
    run_id: String,
    token: i64,
    db: PathBuf,
}

impl Context {
    fn run(
        self,
        conn: rusqlite::Connection,
        mut rx: mpsc::Receiver<Msg>,
    ) -> Result<(), StageError> {
        let mut stmt = conn
            .prepare(UPSERT)
            .map_err(sqlite_err("cannot prepare the upsert"))?;
        while let Some(msg) = rx.blocking_recv() {
            match msg {
                Msg::Put(rows) => {
                    for (key, item) in rows.iter() {
                        stmt.execute(rusqlite::params![
                            self.dataset,
                            key,
                            self.run_id,
                            self.token,
                            item
                        ])
                        .map_err(sqlite_err("cannot store a row"))?;
                    }
                }
                Msg::Commit(reply) => {
                    drop(stmt);
                    let done = conn
                        .execute_batch("COMMIT")
                        .map_err(sqlite_err("cannot commit the rows"));
                    let committed = done.is_ok();
                    let _ = reply.send(done);
                    if committed {
                        // PASSIVE: never waits for readers or writers; what it cannot copy now, the
                        // next checkpoint does.
                        if let Err(e) =
                            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                        {
                            tracing::debug!(db = %self.db.display(), "checkpoint after the rows' commit: {e}");
                        }
                    }
                    return Ok(());
                }
            }
        }
        // Dropped without a commit: the connection closes and SQLite rolls the transaction back.
        tracing::debug!(db = %self.db.display(), "row writer dropped: its rows were rolled back");
        Ok(())
    }
}

#[async_trait]
impl RowWriter for SqliteRowWriter {
    async fn put(&mut self, rows: EncodedRows) -> Result<(), StageError> {
        let sent = match &self.tx {
            Some(tx) => tx.send(Msg::Put(rows)).await.is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(self.stopped().await)
        }
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StageError> {
        let (reply, done) = oneshot::channel();
        let sent = match &self.tx {
            Some(tx) => tx.send(Msg::Commit(reply)).await.is_ok(),
            None => false,
        };
        if !sent {
            return Err(self.stopped().await);
        }
        match done.await {
            Ok(result) => {
                if let Some(thread) = self.thread.take() {
                    self.checkpoints.add(thread);
                }
                result
            }
            Err(_) => Err(self.stopped().await),
        }
    }
}
