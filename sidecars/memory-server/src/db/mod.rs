//! The database: one writer connection behind a mutex and a pool of reader
//! connections, all used from blocking threads. WAL lets readers run while
//! the writer commits; one writer means `seq = MAX(seq)+1` inside an
//! immediate transaction is never given twice.

mod queries;
pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

pub use queries::{
    SearchParams, delete, forget, get, list, provenance, search, stats, store, update,
};

use crate::config::{Config, Synchronous};

/// How long a connection waits for a lock held by another process.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// A database failure, or a request the data refuses.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The file could not be opened or migrated.
    #[error("opening {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// SQLite failed.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// No live entry with this id.
    #[error("memory {0} not found")]
    NotFound(i64),
    /// The entry was already replaced.
    #[error("memory {id} was superseded by memory {by}")]
    Superseded {
        /// The entry asked for.
        id: i64,
        /// Its replacement.
        by: i64,
    },
    /// The caller is not the entry's writer.
    #[error("memory {id} belongs to agent {owner:?}")]
    NotOwner {
        /// The entry asked for.
        id: i64,
        /// Its `source_agent`.
        owner: String,
    },
    /// A worker thread failed.
    #[error("database worker failed: {0}")]
    Worker(String),
}

/// The open database.
pub struct Store {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    reader_slots: Arc<Semaphore>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a connection leaves it usable: rusqlite rolls
    // back an unfinished transaction when it is dropped.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    /// Opens (creating if needed) and migrates the database, then opens the
    /// readers. Blocking.
    pub fn open(config: &Config) -> Result<Self, DbError> {
        let path = config.db_path.clone();
        let err = |source| DbError::Open {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                err(rusqlite::Error::InvalidPath(PathBuf::from(format!(
                    "{}: {e}",
                    dir.display()
                ))))
            })?;
        }
        let mut writer = Connection::open(&path).map_err(err)?;
        configure(&writer, config.synchronous).map_err(err)?;
        schema::migrate(&mut writer).map_err(err)?;
        let readers = (0..config.readers)
            .map(|_| open_reader(&path))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        Ok(Self {
            path: path.clone(),
            writer: Arc::new(Mutex::new(writer)),
            readers: Arc::new(Mutex::new(readers)),
            reader_slots: Arc::new(Semaphore::new(config.readers)),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a reader connection on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    {
        let permit = Arc::clone(&self.reader_slots)
            .acquire_owned()
            .await
            .map_err(|e| DbError::Worker(e.to_string()))?;
        let pool = Arc::clone(&self.readers);
        let path = self.path.clone();
        run_blocking(move || {
            let _permit = permit;
            // The permit guarantees a pooled connection unless one was lost
            // to a panic; then a fresh one replaces it.
            let conn = match lock(&pool).pop() {
                Some(c) => c,
                None => open_reader(&path)?,
            };
            let out = f(&conn);
            lock(&pool).push(conn);
            out
        })
        .await
    }

    /// Runs `f` on the writer connection on a blocking thread.
    pub async fn write<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    {
        let writer = Arc::clone(&self.writer);
        run_blocking(move || f(&mut lock(&writer))).await
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DbError> + Send + 'static,
) -> Result<T, DbError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DbError::Worker(e.to_string()))?
}

/// The pragmas of upstream's DSN (WAL, 5 s busy timeout), plus the sync
/// level.
fn configure(conn: &Connection, sync: Synchronous) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(journal_mode = %mode, "SQLite refused WAL mode");
    }
    let level = match sync {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {level}; PRAGMA foreign_keys = OFF;"
    ))
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA query_only = ON;")?;
    Ok(conn)
}
