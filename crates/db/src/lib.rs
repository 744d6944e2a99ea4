//! Metadata persistence on SQLite or PostgreSQL: migrations and queries. The only crate with SQL.
//!
//! Both databases are reached through sqlx's `Any` driver with one migration set (`migrations/`) written in the
//! SQL both accept, and one set of queries using `$N` placeholders (which SQLite also understands). Values are
//! TEXT (IDs, RFC 3339 times, JSON bodies) or BIGINT, the types `Any` maps identically on both.
//!
//! Every multi-row change runs in one transaction, so a crash never leaves half a record behind.

mod batch;
mod deployments;
mod gc;
mod identities;
mod models;
mod queries;
mod rbac;
mod registry;
mod sites;
mod workloads;
mod writer;
pub use deployments::{
    is_terminal as deployment_is_terminal, DeploymentDelete, DeploymentOutcome, DeploymentRecord,
    DeploymentStart,
};
pub use gc::{BlobLink, GcBlob, GcLink, GcManifest, GcReference, ManifestStore, RepositoryDigest};
pub use identities::{CredentialPut, FederatedCredentialRecord, IdentityPut};
pub use rbac::{role_key, AssignmentWrite, AuditEvent, AuditQuery, CustomRoleRecord, RoleDeletion};
pub use registry::{DeletedRepository, ListOrder, RepositorySummary, TagRecord};
pub use registry::{ManifestRecord, ReferenceKind, UploadRecord};
pub use sites::{PullOutcome, SiteState, SITE_LOG_LINES};
pub use workloads::{WorkloadPut, WorkloadRecord};
#[doc(hidden)]
pub mod testing;

pub use models::*;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

/// Errors from the metadata store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// A uniqueness rule was broken (e.g. a registry name already taken).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("unsupported database url `{0}`: use sqlite://... or postgres://...")]
    UnsupportedUrl(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle to the metadata store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: the connection a push's writes go through (`writer.rs`).
    sqlite_writer: Option<writer::SqliteWriter>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Db {
    /// Connect and bring the schema up to date. `sqlite://path` creates the file if missing.
    pub async fn connect(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(DbError::UnsupportedUrl(url.to_string()));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // SQLite has one writer; a few readers are enough and keep memory low.
                Backend::Sqlite => 4,
                Backend::Postgres => 16,
            })
            .min_connections(1)
            // A ping before every acquire is one more round trip to SQLite's worker thread and proves nothing for
            // an in-process database; a PostgreSQL connection that died is still caught before it is handed out.
            .test_before_acquire(backend == Backend::Postgres)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(writer::SQLITE_SETUP).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        let sqlite_writer = match backend {
            Backend::Sqlite => Some(writer::SqliteWriter::connect(&options).await?),
            Backend::Postgres => None,
        };
        Ok(Db { pool, backend, sqlite_writer })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Wait for in-flight queries and close every connection.
    pub async fn close(&self) {
        if let Some(writer) = &self.sqlite_writer {
            writer.close().await;
        }
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction that writes. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a deferred
    /// transaction that reads and then writes fails with `SQLITE_BUSY_SNAPSHOT` when another connection commits in
    /// between, and the busy timeout cannot wait that out; an immediate one waits for the lock instead.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }
}

pub(crate) fn map_unique(err: sqlx::Error, what: impl FnOnce() -> String) -> DbError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => DbError::Conflict(what()),
        _ => DbError::Sqlx(err),
    }
}
