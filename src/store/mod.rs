//! Persistence: incidents, checklist, roles, timeline, jobs and inbound ids, in SQLite or
//! PostgreSQL through one set of SQL statements (sqlx's `Any` driver). Times are stored as Unix
//! milliseconds. Every function takes a connection, so callers group writes in one transaction.

mod incidents;
mod jobs;
pub mod legacy_timeline;
mod pages;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Executor};

pub use incidents::*;
pub use jobs::*;
pub use pages::*;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Errors from the store. Constraint violations that callers act on have their own variants.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The database: a pool and the engine it talks to. With SQLite, writes go through one
/// connection and pure reads (web pages) through a pool of read-only connections of their
/// own, so a slow read never delays a write (a Slack acknowledgement); with PostgreSQL both
/// are the same pool.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    read: AnyPool,
    backend: Backend,
    /// When the queue's housekeeping last ran before a claim (see [`claim_jobs`]).
    housekeeping: std::sync::Arc<jobs::Housekeeping>,
}

/// Read-only connections to a SQLite file.
const SQLITE_READERS: u32 = 4;

impl Store {
    /// Connects to `sqlite://…` (the file is created if missing, WAL mode) or `postgres://…`.
    pub async fn connect(url: &str) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let write_url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&write_url)?;
        let pool = match backend {
            // SQLite has one writer at a time; one connection serialises transactions instead
            // of failing them with SQLITE_BUSY, and WAL keeps each commit cheap.
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await?
            }
        };
        let read = match (backend, sqlite_file(url)) {
            // WAL lets readers work beside the writer; the file exists (the writer made it).
            (Backend::Sqlite, Some(_)) => {
                let base = url.split('?').next().unwrap_or(url);
                let options = AnyConnectOptions::from_str(&format!("{base}?mode=ro"))?;
                AnyPoolOptions::new()
                    .max_connections(SQLITE_READERS)
                    .min_connections(0)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_lazy_with(options)
            }
            // In-memory SQLite and PostgreSQL: one pool for both.
            _ => pool.clone(),
        };
        Ok(Store {
            pool,
            read,
            backend,
            housekeeping: Default::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Applies pending migrations, then converts what SQL alone cannot (timeline rows stored
    /// before timelines were structured: [`convert_legacy_timeline`]).
    pub async fn migrate(&self) -> StoreResult<()> {
        self.migrator().run(&self.pool).await?;
        let mut conn = self.pool.acquire().await?;
        let converted = convert_legacy_timeline(&mut conn).await?;
        if converted > 0 {
            tracing::info!(
                rows = converted,
                "timeline rows converted to the structured form"
            );
        }
        Ok(())
    }

    /// True when the database answers and every migration is applied.
    pub async fn is_ready(&self) -> StoreResult<bool> {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = $1")
                .bind(true)
                .fetch_all(&self.read)
                .await?;
        Ok(self.migrator().iter().all(|m| applied.contains(&m.version)))
    }

    pub async fn begin(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(self.pool.begin().await?)
    }

    pub async fn acquire(&self) -> StoreResult<sqlx::pool::PoolConnection<sqlx::Any>> {
        Ok(self.pool.acquire().await?)
    }

    /// A connection for pure reads (web pages, diagnostics): with SQLite a read-only one of
    /// the readers' pool, which never waits for the writer. Never write through it.
    pub async fn acquire_read(&self) -> StoreResult<sqlx::pool::PoolConnection<sqlx::Any>> {
        Ok(self.read.acquire().await?)
    }

    /// Records an inbound id (Slack `event_id`, `trigger_id`…). False if it was seen before:
    /// the caller must then do nothing. Use inside the transaction of the command's effect.
    pub async fn remember_inbound(
        conn: &mut AnyConnection,
        key: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO inbound_ids (key, received_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(ms(now))
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.pool.close().await;
    }
}

/// The file behind a `sqlite:` URL (`None` for PostgreSQL and in-memory databases).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}

/// An exclusive lock on `<database>.lock`, held by the one `warroom serve` that may use a
/// SQLite file (SQLite is the single-process engine; PostgreSQL is for replicas). The lock
/// is the operating system's, so it goes away with the process, even after a kill -9.
#[derive(Debug)]
pub struct SqliteLock {
    _file: std::fs::File,
}

impl SqliteLock {
    /// Takes the lock for the SQLite database at `url`; `Ok(None)` when the URL is not a
    /// SQLite file. Fails with a message naming the file when another process holds it.
    pub fn acquire(url: &str) -> Result<Option<SqliteLock>, String> {
        let Some(db) = sqlite_file(url) else {
            return Ok(None);
        };
        let mut lock_path = db.clone().into_os_string();
        lock_path.push(".lock");
        let lock_path = std::path::PathBuf::from(lock_path);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("cannot open the lock file {}: {e}", lock_path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(SqliteLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Err(format!(
                "another warroom process is serving the SQLite database {} (it holds {}). \
                 SQLite allows one process per database file: stop the other one, or use \
                 PostgreSQL (DATABASE_URL=postgres://…) to run several replicas",
                db.display(),
                lock_path.display()
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(format!(
                "cannot lock {} for the SQLite database {}: {e}",
                lock_path.display(),
                db.display()
            )),
        }
    }
}

/// Unix milliseconds.
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// From Unix milliseconds.
pub fn from_ms(v: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v).ok_or_else(|| StoreError::Corrupt(format!("time {v}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_behind_a_sqlite_url() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/warroom/db.sqlite?mode=rwc"),
            Some("/var/lib/warroom/db.sqlite".into())
        );
        assert_eq!(sqlite_file("sqlite:warroom.db"), Some("warroom.db".into()));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
    }
}
