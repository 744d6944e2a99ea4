//! SQLite's dedicated write connection for the writes of a push (upload sessions, blob links, manifests).
//!
//! Why: every statement sqlx sends to SQLite is a hand-off to the connection's worker thread and back, and a
//! pooled connection adds one more on its way back to the pool (sqlx pings it). A push's transaction through the
//! pool took four or five such trips (`BEGIN`, a read, the writes, `COMMIT`, the ping); here it takes two,
//! because `BEGIN IMMEDIATE` travels with the first statement and `COMMIT` with the last, and the connection is
//! never returned to a pool. SQLite has one writer at a time anyway: the async mutex around this connection
//! queues the push's writers in the process instead of in `busy_timeout`'s sleep-and-retry, and the connection's
//! page cache stays valid from one of its transactions to the next.
//!
//! Other writes (the control plane, garbage collection) still go through the pool; SQLite's lock and the busy
//! timeout order them against this connection, as before.
//!
//! Transactions here manage `BEGIN`/`COMMIT` as SQL text, outside sqlx's own transaction tracking, so this
//! module owns the one rule that keeps that safe: a transaction that did not end (an error, or a request dropped
//! while it waited on SQLite) is rolled back before the connection is used again, and at once in the background,
//! so that no abandoned transaction holds SQLite's write lock.

use std::sync::Arc;

use sqlx::any::{AnyConnectOptions, AnyRow};
use sqlx::{AnyConnection, ConnectOptions, Connection, Executor};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::batch::{self, Batch, Value};
use crate::Result;

/// What every SQLite connection of ours runs first. WAL lets readers run during a write; NORMAL sync is durable in
/// WAL mode at the commit boundaries that matter to us (a crash loses at most the last transaction, never
/// corrupts); the busy timeout turns lock contention into waiting, not errors.
pub(crate) const SQLITE_SETUP: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;";

const BEGIN: &str = "BEGIN IMMEDIATE;\n";

/// The write connection; cheap to clone.
#[derive(Clone)]
pub(crate) struct SqliteWriter {
    state: Arc<Mutex<WriterState>>,
}

impl std::fmt::Debug for SqliteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteWriter").finish_non_exhaustive()
    }
}

struct WriterState {
    options: AnyConnectOptions,
    /// `None` after [`SqliteWriter::close`], or after a failure left the connection unusable (the next use opens a
    /// new one).
    connection: Option<AnyConnection>,
    closed: bool,
    /// A `BEGIN` was sent and no `COMMIT` or `ROLLBACK` has succeeded since.
    in_transaction: bool,
}

impl WriterState {
    fn connection(&mut self) -> Result<&mut AnyConnection> {
        self.connection.as_mut().ok_or_else(|| sqlx::Error::PoolClosed.into())
    }

    /// Rolls back a transaction left open; if that fails, the connection is closed (which ends it too).
    async fn recover(&mut self) -> Result<()> {
        if !self.in_transaction {
            return Ok(());
        }
        let Some(connection) = self.connection.as_mut() else {
            self.in_transaction = false; // closing the connection ended it
            return Ok(());
        };
        match connection.execute("ROLLBACK").await {
            Ok(_) => {}
            // SQLite already ended it (a failed COMMIT can roll back by itself).
            Err(sqlx::Error::Database(error)) if error.message().contains("no transaction") => {}
            Err(error) => {
                // Closing the connection ends the transaction; the next use opens a new one.
                if let Some(connection) = self.connection.take() {
                    let _ = connection.close().await;
                }
                self.in_transaction = false;
                return Err(error.into());
            }
        }
        self.in_transaction = false;
        Ok(())
    }
}

impl SqliteWriter {
    pub(crate) async fn connect(options: &AnyConnectOptions) -> Result<SqliteWriter> {
        let connection = open(options).await?;
        let state = WriterState {
            options: options.clone(),
            connection: Some(connection),
            closed: false,
            in_transaction: false,
        };
        Ok(SqliteWriter { state: Arc::new(Mutex::new(state)) })
    }

    async fn lock(&self) -> Result<OwnedMutexGuard<WriterState>> {
        let mut state = self.state.clone().lock_owned().await;
        if let Err(error) = state.recover().await {
            // The connection was closed instead, which ended the transaction: a new one is opened below.
            tracing::warn!(%error, "rolling back an abandoned SQLite write transaction");
        }
        if state.connection.is_none() && !state.closed {
            let connection = open(&state.options).await?;
            state.connection = Some(connection);
        }
        Ok(state)
    }

    /// One statement in its own (implicit) transaction.
    pub(crate) async fn execute(&self, sql: &str, values: &[Value<'_>]) -> Result<u64> {
        let mut state = self.lock().await?;
        let done = batch::bind(sqlx::query(sql), values).execute(state.connection()?).await?;
        Ok(done.rows_affected())
    }

    /// A write transaction; `BEGIN IMMEDIATE` is sent with its first statement.
    pub(crate) async fn begin(&self) -> Result<WriteTransaction> {
        Ok(WriteTransaction { state: Some(self.lock().await?), begun: false })
    }

    pub(crate) async fn close(&self) {
        let mut state = self.state.lock().await;
        state.closed = true;
        let _ = state.recover().await;
        if let Some(connection) = state.connection.take() {
            let _ = connection.close().await;
        }
    }
}

async fn open(options: &AnyConnectOptions) -> Result<AnyConnection> {
    let mut connection = options.connect().await?;
    connection.execute(SQLITE_SETUP).await?;
    Ok(connection)
}

/// A transaction on the write connection. Dropped without [`WriteTransaction::commit`] or
/// [`WriteTransaction::rollback`], it is rolled back in the background.
pub(crate) struct WriteTransaction {
    state: Option<OwnedMutexGuard<WriterState>>,
    begun: bool,
}

impl WriteTransaction {
    fn state(&mut self) -> &mut WriterState {
        self.state.as_mut().expect("a transaction holds the writer until it ends")
    }

    /// `sql`, preceded by `BEGIN IMMEDIATE` if the transaction has not begun yet (it has once this is sent).
    fn with_begin(&mut self, sql: &str) -> String {
        if self.begun {
            return sql.to_string();
        }
        self.begun = true;
        // Marked before it is sent: if the request is dropped while SQLite runs it, recovery rolls it back.
        self.state().in_transaction = true;
        format!("{BEGIN}{sql}")
    }

    /// Runs a query in the transaction and returns its rows.
    pub(crate) async fn fetch_all(
        &mut self,
        sql: &str,
        values: &[Value<'_>],
    ) -> Result<Vec<AnyRow>> {
        let sql = self.with_begin(sql);
        let rows =
            batch::bind(sqlx::query(&sql), values).fetch_all(self.state().connection()?).await;
        Ok(rows?)
    }

    /// Takes SQLite's write lock now, if no statement has yet.
    pub(crate) async fn ensure_begun(&mut self) -> Result<()> {
        if self.begun {
            return Ok(());
        }
        let sql = self.with_begin("");
        self.state().connection()?.execute(sql.as_str()).await?;
        Ok(())
    }

    /// Runs `batch` and commits, in one round trip. On an error the transaction is rolled back.
    pub(crate) async fn commit(mut self, batch: Batch<'_>) -> Result<()> {
        let (statements, values) = batch.into_sqlite();
        let sql = self.with_begin(&format!("{statements}COMMIT;"));
        let state = self.state();
        let outcome = batch::bind(sqlx::query(&sql), &values).execute(state.connection()?).await;
        match outcome {
            Ok(_) => {
                state.in_transaction = false;
                Ok(())
            }
            Err(error) => {
                let _ = state.recover().await;
                Err(error.into())
            }
        }
    }

    pub(crate) async fn rollback(mut self) -> Result<()> {
        self.state().recover().await
    }
}

impl Drop for WriteTransaction {
    fn drop(&mut self) {
        let Some(mut state) = self.state.take() else { return };
        if !state.in_transaction {
            return;
        }
        // Dropped mid-transaction (the request went away while SQLite worked): end it now, so that it does not
        // hold the write lock until the next push comes. Without a runtime the next `lock` recovers instead.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = state.recover().await {
                    tracing::warn!(%error, "rolling back an abandoned SQLite write transaction");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::*;
    use crate::Db;

    async fn sqlite() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("berth.db").display()))
            .await
            .unwrap();
        (dir, db)
    }

    async fn uploads(db: &Db) -> Vec<String> {
        let rows = sqlx::query("SELECT id FROM uploads ORDER BY id").fetch_all(db.pool()).await;
        rows.unwrap().iter().map(|row| row.get::<String, _>("id")).collect()
    }

    fn insert_upload(id: &str) -> (&'static str, Vec<Value<'_>>) {
        let sql =
            "INSERT INTO uploads (id, registry, repository, created_at) VALUES ($1, 'r', 'a', 't')";
        (sql, vec![Value::Text(id)])
    }

    #[tokio::test]
    async fn a_batch_that_fails_midway_is_rolled_back_and_the_writer_goes_on() {
        let (_dir, db) = sqlite().await;
        let writer = db.sqlite_writer.clone().unwrap();

        let mut batch = Batch::default();
        let (sql, values) = insert_upload("first");
        batch.push(sql, values);
        batch.push("INSERT INTO no_such_table VALUES ($1)", vec![Value::Integer(1)]);
        let mut tx = writer.begin().await.unwrap();
        assert!(tx.fetch_all("SELECT id FROM uploads", &[]).await.unwrap().is_empty());
        assert!(tx.commit(batch).await.is_err());
        assert!(uploads(&db).await.is_empty(), "the batch's first statement must be rolled back");

        let mut batch = Batch::default();
        let (sql, values) = insert_upload("second");
        batch.push(sql, values);
        writer.begin().await.unwrap().commit(batch).await.unwrap();
        assert_eq!(uploads(&db).await, ["second"]);
        db.close().await;
    }

    #[tokio::test]
    async fn a_transaction_dropped_before_commit_writes_nothing_and_frees_the_lock() {
        let (_dir, db) = sqlite().await;
        let writer = db.sqlite_writer.clone().unwrap();
        let mut tx = writer.begin().await.unwrap();
        tx.ensure_begun().await.unwrap();
        let (sql, values) = insert_upload("dropped");
        tx.fetch_all(sql, &values).await.unwrap();
        drop(tx);

        // Through the pool (another connection): waits for the background rollback, not for the busy timeout.
        let started = std::time::Instant::now();
        db.delete_upload("dropped").await.unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(uploads(&db).await.is_empty());
        let (sql, values) = insert_upload("after");
        writer.execute(sql, &values).await.unwrap();
        assert_eq!(uploads(&db).await, ["after"]);
        db.close().await;
    }
}
