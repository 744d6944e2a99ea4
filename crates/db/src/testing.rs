//! Scratch databases for tests: a fresh SQLite file or a fresh PostgreSQL database per test.
//!
//! PostgreSQL is found through `BERTH_TEST_POSTGRES_URL` (an admin URL, default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Tests that need it fail loudly when it is unreachable,
//! unless `BERTH_TEST_SKIP_POSTGRES=1` says this run covers SQLite only.

use sqlx::any::AnyPoolOptions;
use sqlx::Executor;

use crate::{Backend, Result};

/// The backends a test run covers: always SQLite, PostgreSQL unless explicitly skipped.
pub fn backends() -> Vec<Backend> {
    if std::env::var("BERTH_TEST_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        vec![Backend::Sqlite]
    } else {
        vec![Backend::Sqlite, Backend::Postgres]
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("BERTH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Create an empty database for one test and return its URL. SQLite files go under `dir`.
pub async fn scratch_database(backend: Backend, dir: &std::path::Path) -> Result<String> {
    match backend {
        Backend::Sqlite => Ok(format!("sqlite://{}", dir.join("berth.db").display())),
        Backend::Postgres => {
            sqlx::any::install_default_drivers();
            let admin = postgres_admin_url();
            let pool = AnyPoolOptions::new().max_connections(1).connect(&admin).await?;
            let name = format!("berth_test_{}", uuid::Uuid::new_v4().simple());
            pool.execute(format!("CREATE DATABASE {name}").as_str()).await?;
            pool.close().await;
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            Ok(format!("{base}/{name}"))
        }
    }
}
