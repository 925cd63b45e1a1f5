//! SQLite storage: the connection pool, per-connection pragmas, the embedded
//! migrations, and [`Sqlite::run`], which keeps rusqlite's blocking calls off the
//! async runtime. Query functions live in the submodules, one file per concern.

mod bulk;
pub(crate) mod feeds;
pub(crate) mod metrics;
pub(crate) mod write;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};

pub use feeds::{global_feed_coverage, newest_seen_id, record_feed_poll, start_watching};
pub use metrics::{
    event_counts, for_each_pr_count, for_each_repo_count_between, newest_event_at, pr_counts,
    pr_gaps, pr_gaps_by_window, timeline,
};
pub use write::{
    delete_events_before, delete_feed_polls_before, insert_events, rollup_disagreement,
    stored_event_count,
};

use crate::config::SqliteLocation;
use crate::store::{DataVersion, MAX_ARCHIVE_SOURCES, SourceId};

refinery::embed_migrations!("migrations/sqlite");

/// How long a connection waits for another writer before `SQLITE_BUSY`. Writers
/// hold the lock for one poll's transaction (milliseconds), so this is ample.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Pooled connections: WAL lets readers run beside the one writer.
const POOL_SIZE: u32 = 8;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("database connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migrating the database schema: {0}")]
    Migration(#[from] refinery::Error),
    #[error("database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("reading the database's change counter: {0}")]
    Probe(String),
    #[error("a store tells at most {0} archive sources apart")]
    TooManyArchiveSources(usize),
}

impl SqliteError {
    /// The pool had no connection to give in time: worth retrying.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, SqliteError::Pool(_))
    }
}

/// The database handle shared by the poller and the HTTP handlers. Cheap to clone.
#[derive(Clone)]
pub struct Sqlite {
    pool: r2d2::Pool<SqliteConnectionManager>,
    /// How [`Sqlite::probe_version`] learns of commits.
    version_probe: Arc<VersionProbe>,
}

/// How [`Sqlite::probe_version`] learns that something was committed.
enum VersionProbe {
    /// WAL mode (database files): the wal-index header at the start of the
    /// `-shm` file, which SQLite rewrites at every commit by any connection of
    /// any process (its `iChange` counter goes up). One `pread` of 48 bytes:
    /// no lock, no SQLite call.
    WalIndex {
        shm: std::fs::File,
        /// A connection that has read the database and stays open, so it
        /// keeps its hold on the `-shm` file. SQLite deletes `-shm` when the
        /// last connection to the database closes (the pool closes idle ones
        /// after ten minutes); the next one would create a new file, and
        /// `shm` would go on reading the deleted one, never changing again.
        _keeper: Mutex<Connection>,
    },
    /// Otherwise (`:memory:`, or a file SQLite kept out of WAL mode):
    /// `PRAGMA data_version` on a connection that never writes. For
    /// `:memory:` this connection also keeps the database alive: an
    /// in-memory database vanishes with its last connection.
    Pragma(Mutex<Connection>),
}

impl Sqlite {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(location: &SqliteLocation) -> Result<Sqlite, SqliteError> {
        Sqlite::open_with(location, r2d2::Pool::builder())
    }

    /// [`Sqlite::open`] on the blocking thread pool.
    pub async fn open_async(location: &SqliteLocation) -> Result<Sqlite, SqliteError> {
        let location = location.clone();
        tokio::task::spawn_blocking(move || Sqlite::open(&location)).await?
    }

    /// [`Sqlite::open`] with the pool settings of `builder` (tests shorten its
    /// idle timeout).
    fn open_with(
        location: &SqliteLocation,
        builder: r2d2::Builder<SqliteConnectionManager>,
    ) -> Result<Sqlite, SqliteError> {
        let db = match location {
            SqliteLocation::File(path) => {
                create_parent_dir(path)?;
                // Opened first, so that a file that cannot be opened fails
                // at once with its reason (the pool would retry for 30 s).
                let keeper = open_file(path)?;
                let manager = SqliteConnectionManager::file(path).with_init(|conn| {
                    apply_pragmas(conn)?;
                    // WAL is a property of the file; asking again is a cheap no-op.
                    let mode: String =
                        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| {
                            row.get(0)
                        })?;
                    if !mode.eq_ignore_ascii_case("wal") {
                        tracing::warn!(%mode, "SQLite refused WAL journal mode");
                    }
                    Ok(())
                });
                let pool = builder.max_size(POOL_SIZE).build(manager)?;
                // A pooled connection, held while the probe is set up, makes
                // sure the file is in WAL mode; the keeper's first read maps
                // (and if need be creates) the -shm file before it is opened.
                let held = pool.get()?;
                keeper.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
                let shm = std::fs::File::open(format!("{}-shm", path.display()));
                let probe = match shm {
                    Ok(shm) => VersionProbe::WalIndex {
                        shm,
                        _keeper: Mutex::new(keeper),
                    },
                    Err(_) => VersionProbe::Pragma(Mutex::new(keeper)),
                };
                drop(held);
                Sqlite {
                    pool,
                    version_probe: Arc::new(probe),
                }
            }
            SqliteLocation::Memory => {
                // Plain ":memory:" would give each pooled connection its own empty
                // database, and shared-cache mode fails under concurrency with
                // "database table is locked"; the memdb VFS shares one database
                // with ordinary locking. The name is unique per handle so that two
                // in-memory handles in one process (tests) stay apart.
                static NEXT_MEMORY_DB: AtomicU64 = AtomicU64::new(0);
                let name = format!(
                    "file:/ghmetrics-{}-{}?vfs=memdb",
                    std::process::id(),
                    NEXT_MEMORY_DB.fetch_add(1, Ordering::Relaxed)
                );
                let flags = OpenFlags::default() | OpenFlags::SQLITE_OPEN_URI;
                let mut keeper = Connection::open_with_flags(&name, flags)?;
                apply_pragmas(&mut keeper)?;
                let manager = SqliteConnectionManager::file(&name)
                    .with_flags(flags)
                    .with_init(apply_pragmas);
                let pool = r2d2::Pool::builder()
                    .max_size(POOL_SIZE)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .build(manager)?;
                Sqlite {
                    pool,
                    version_probe: Arc::new(VersionProbe::Pragma(Mutex::new(keeper))),
                }
            }
        };
        db.migrate()?;
        Ok(db)
    }

    fn migrate(&self) -> Result<(), SqliteError> {
        let mut conn = self.pool.get()?;
        let runner = migrations::runner();
        let report = retry_while_busy(|| Ok(runner.run(&mut *conn)?))?;
        let applied = report.applied_migrations();
        for migration in applied {
            tracing::debug!(migration = %migration, "applied database migration");
        }
        // A new file gets every migration: nothing a person needs to know.
        // An existing one being upgraded is worth a line.
        if !applied.is_empty() && applied.len() < runner.get_migrations().len() {
            tracing::info!(
                migrations = applied.len(),
                "upgraded the database schema of an existing file"
            );
        }
        if !applied.is_empty() {
            compact_if_mostly_free(&conn)?;
        }
        Ok(())
    }

    /// Runs `work` with a pooled connection on the blocking thread pool.
    ///
    /// If the caller's future is dropped, `work` still runs to completion, so a
    /// transaction in flight at shutdown commits (or rolls back) as a whole.
    pub async fn run<T, F>(&self, work: F) -> Result<T, SqliteError>
    where
        F: FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
        T: Send + 'static,
    {
        self.on_blocking_pool(move |pool| Ok(work(&mut *pool.get()?)?))
            .await
    }

    /// Runs a write like [`Sqlite::run`], but waits its turn while another
    /// process holds the write lock (an import's batch, another service on
    /// the same file) instead of failing after the busy timeout: a poll's
    /// events are never dropped for being second. Logs when the wait is long.
    pub async fn write<T, F>(&self, mut work: F) -> Result<T, SqliteError>
    where
        F: FnMut(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
        T: Send + 'static,
    {
        self.on_blocking_pool(move |pool| retry_while_busy(|| Ok(work(&mut *pool.get()?)?)))
            .await
    }

    /// See [`crate::store::Store::archive_sources`].
    pub(crate) async fn archive_sources(
        &self,
        register: Vec<String>,
    ) -> Result<Vec<(SourceId, String)>, SqliteError> {
        let wanted = register.clone();
        let sources = if register.is_empty() {
            self.run(move |c| write::archive_sources(c, &[])).await?
        } else {
            self.write(move |c| write::archive_sources(c, &register))
                .await?
        };
        if !wanted
            .iter()
            .all(|name| sources.iter().any(|(_, n)| n == name))
        {
            return Err(SqliteError::TooManyArchiveSources(MAX_ARCHIVE_SOURCES));
        }
        Ok(sources)
    }

    /// Runs `job` on the blocking thread pool, in the caller's span.
    async fn on_blocking_pool<T, F>(&self, job: F) -> Result<T, SqliteError>
    where
        F: FnOnce(&r2d2::Pool<SqliteConnectionManager>) -> Result<T, SqliteError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            job(&pool)
        })
        .await?
    }

    /// A value that changes whenever any connection, in this process or
    /// another (an import, a second service on the same file), commits a
    /// change. Answers computed from reads begun after it was taken are exact
    /// until it changes. Microseconds, no thread hop.
    pub fn probe_version(&self) -> Result<DataVersion, SqliteError> {
        let mut version = DataVersion::default();
        match &*self.version_probe {
            VersionProbe::WalIndex { shm, .. } => {
                use std::os::unix::fs::FileExt;
                shm.read_exact_at(version.bytes_mut(), 0)
                    .map_err(|error| SqliteError::Probe(error.to_string()))?;
            }
            VersionProbe::Pragma(conn) => {
                let conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let counter: i64 = conn
                    .prepare_cached("PRAGMA data_version")?
                    .query_row([], |row| row.get(0))?;
                version = DataVersion::from_counters(&[counter as u64]);
            }
        }
        Ok(version)
    }

    /// How many connections the pool holds at most.
    pub fn pool_size(&self) -> u32 {
        self.pool.max_size()
    }

    /// A pooled connection for blocking code (the importer, tests).
    pub fn get(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, SqliteError> {
        Ok(self.pool.get()?)
    }
}

/// How long a write keeps waiting for another writer before it fails. An
/// import's batch holds the lock for about a second; this is for a stuck one.
const WRITE_PATIENCE: Duration = Duration::from_secs(600);

/// Whether `error` means another connection holds the lock.
fn is_busy(error: &SqliteError) -> bool {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
    match error {
        SqliteError::Sqlite(error) => matches!(
            error.sqlite_error_code(),
            Some(DatabaseBusy | DatabaseLocked)
        ),
        // refinery keeps only the message of the SQLite error it met.
        SqliteError::Migration(error) => {
            let text = error.to_string();
            text.contains("database is locked") || text.contains("database is busy")
        }
        _ => false,
    }
}

/// Runs `attempt` until it succeeds, fails for another reason than a busy
/// database, or [`WRITE_PATIENCE`] runs out (each attempt itself waits up to
/// the busy timeout).
fn retry_while_busy<T>(
    mut attempt: impl FnMut() -> Result<T, SqliteError>,
) -> Result<T, SqliteError> {
    let started = std::time::Instant::now();
    let mut warned = false;
    loop {
        match attempt() {
            Err(error) if is_busy(&error) && started.elapsed() < WRITE_PATIENCE => {
                if !warned {
                    warned = true;
                    tracing::warn!(
                        waited_s = started.elapsed().as_secs(),
                        "the database is locked by another writer (an import?); waiting for it"
                    );
                }
            }
            result => {
                if warned && result.is_ok() {
                    tracing::info!(
                        waited_s = started.elapsed().as_secs(),
                        "got the database lock"
                    );
                }
                return result;
            }
        }
    }
}

fn apply_pragmas(conn: &mut Connection) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // In WAL mode NORMAL never corrupts the file and loses nothing on a process
    // crash; only an OS crash or power cut can drop the last transactions.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// A migration that rebuilds a table (V4) leaves the old pages free inside the
/// file, which SQLite never returns to the disk by itself: without this, an
/// upgraded file would keep the old table's size on top of the new. VACUUM
/// rewrites it (seconds per million events, and temporarily needs as much free
/// disk as the database); it runs only right after migrations, before serving.
fn compact_if_mostly_free(conn: &Connection) -> Result<(), rusqlite::Error> {
    let free_pages: i64 = conn.query_row("PRAGMA freelist_count", [], |row| row.get(0))?;
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |row| row.get(0))?;
    if free_pages * 4 < pages {
        return Ok(());
    }
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    tracing::info!(
        free_mb = free_pages * page_size / 1_000_000,
        "compacting the database after a schema upgrade (one-off)"
    );
    let started = std::time::Instant::now();
    conn.execute_batch("VACUUM")?;
    tracing::info!(seconds = started.elapsed().as_secs_f64(), "compacted");
    Ok(())
}

/// A connection to the database file at `path`, or why there cannot be one
/// in the operating system's words (SQLite only says "unable to open").
fn open_file(path: &Path) -> Result<Connection, SqliteError> {
    let cannot_open = |reason: String| SqliteError::Open {
        path: path.display().to_string(),
        reason,
    };
    let mut conn = Connection::open(path).map_err(|error| {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path);
        cannot_open(match file {
            Err(io) => io.to_string(),
            Ok(_) => error.to_string(),
        })
    })?;
    apply_pragmas(&mut conn).map_err(|error| cannot_open(error.to_string()))?;
    Ok(conn)
}

fn create_parent_dir(path: &Path) -> Result<(), SqliteError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| SqliteError::CreateDir {
                path: dir.display().to_string(),
                source,
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data version changes with every commit by any connection (here a
    /// second handle, as another process would be) and only then, for a file
    /// (read from the wal-index) and for `:memory:` (PRAGMA data_version).
    #[test]
    fn the_data_version_changes_with_every_commit_and_only_then() {
        let event = watch_event;
        let dir = tempfile::tempdir().unwrap();
        let file = SqliteLocation::File(dir.path().join("v.db"));
        let served = Sqlite::open(&file).unwrap();
        assert!(matches!(
            *served.version_probe,
            VersionProbe::WalIndex { .. }
        ));
        let other = Sqlite::open(&file).unwrap();
        let memory = Sqlite::open(&SqliteLocation::Memory).unwrap();
        assert!(matches!(*memory.version_probe, VersionProbe::Pragma(_)));
        for (reader, writer) in [(&served, &other), (&memory, &memory)] {
            let before = reader.probe_version().unwrap();
            // Reads change nothing.
            stored_event_count(&reader.get().unwrap()).unwrap();
            assert_eq!(reader.probe_version().unwrap(), before);
            for id in 1..=3 {
                let seen = reader.probe_version().unwrap();
                insert_events(
                    &mut writer.get().unwrap(),
                    &[event(id)],
                    crate::store::Origin::GlobalFeed,
                    None,
                )
                .unwrap();
                assert_ne!(reader.probe_version().unwrap(), seen, "commit {id}");
            }
        }
    }

    /// A replica whose pool closed every idle connection still sees another
    /// process's commits: SQLite deletes `-shm` with the last connection to
    /// the database, so the probe must keep one open. (r2d2 reaps idle
    /// connections every 30 s, whatever the idle timeout: this waits for it.)
    #[test]
    fn the_data_version_survives_a_pool_gone_idle() {
        let dir = tempfile::tempdir().unwrap();
        let file = SqliteLocation::File(dir.path().join("idle.db"));
        let builder = r2d2::Pool::builder()
            .min_idle(Some(0))
            .idle_timeout(Some(Duration::from_millis(100)));
        let served = Sqlite::open_with(&file, builder).unwrap();
        stored_event_count(&served.get().unwrap()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while served.pool.state().connections > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the pool never went idle"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        for id in 1..=2 {
            let seen = served.probe_version().unwrap();
            // Another writer that opens, commits and closes, as an import does.
            let writer = Sqlite::open(&file).unwrap();
            insert_events(
                &mut writer.get().unwrap(),
                &[watch_event(id)],
                crate::store::Origin::GlobalFeed,
                None,
            )
            .unwrap();
            drop(writer);
            assert_ne!(served.probe_version().unwrap(), seen, "commit {id}");
        }
        assert_eq!(stored_event_count(&served.get().unwrap()).unwrap(), 2);
    }

    fn watch_event(id: i64) -> crate::core::event::Event {
        crate::core::event::Event {
            id,
            event_type: crate::core::event::EventType::Watch,
            created_at: 1_700_000_000,
            repo_name: "a/b".to_owned(),
            actor_login: None,
            action: Some("started".to_owned()),
            number: None,
        }
    }

    /// A database written before the rollups existed gets them filled in by V2.
    #[test]
    fn v2_backfills_rollups_from_existing_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            migrations::runner()
                .set_target(refinery::Target::Version(1))
                .run(&mut conn)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO events (id, type, created_at, repo_name, action) VALUES
                 (1, 'WatchEvent', 1700000000, 'a/b', 'started'),
                 (2, 'PullRequestEvent', 1700000030, 'a/b', 'opened'),
                 (3, 'PullRequestEvent', 1700090000, 'c/d', 'closed'),
                 (4, 'PullRequestEvent', 1700090001, 'a/b', 'closed');",
            )
            .unwrap();
        }
        let db = Sqlite::open(&SqliteLocation::File(path)).unwrap();
        let conn = db.get().unwrap();
        assert_eq!(rollup_disagreement(&conn).unwrap(), None);
        assert_eq!(stored_event_count(&conn).unwrap(), 4);
        assert_eq!(
            metrics::pr_counts(&conn, None).unwrap(),
            [("a/b".to_owned(), 2), ("c/d".to_owned(), 1)]
        );
        let types: Vec<(i64, String)> = conn
            .prepare("SELECT type_code, type FROM events ORDER BY id")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let pr = (2, "PullRequestEvent".to_owned());
        assert_eq!(
            types,
            [(1, "WatchEvent".to_owned()), pr.clone(), pr.clone(), pr]
        );
    }

    /// V4 rebuilds `events` compactly, keeps every row and hands the space of
    /// the old table back to the disk.
    #[test]
    fn v4_keeps_every_event_and_shrinks_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.db");
        let rows = 20_000;
        {
            let mut conn = Connection::open(&path).unwrap();
            migrations::runner()
                .set_target(refinery::Target::Version(3))
                .run(&mut conn)
                .unwrap();
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO events (id, type, created_at, repo_name, actor_login, action, number)
                 SELECT i, CASE i % 3 WHEN 0 THEN 'WatchEvent' WHEN 1 THEN 'PullRequestEvent' ELSE 'IssuesEvent' END,
                        1700000000 + i, 'owner' || (i % 50) || '/repository', 'someone', 'opened', i
                 FROM n",
                [rows],
            )
            .unwrap();
        }
        let before = std::fs::metadata(&path).unwrap().len();
        let db = Sqlite::open(&SqliteLocation::File(path.clone())).unwrap();
        let conn = db.get().unwrap();
        let per_type: Vec<(String, i64)> = conn
            .prepare("SELECT type, count(*) FROM events GROUP BY type_code ORDER BY type_code")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let third = rows / 3;
        assert_eq!(
            per_type,
            [
                ("WatchEvent".to_owned(), third),
                ("PullRequestEvent".to_owned(), third + 1),
                ("IssuesEvent".to_owned(), third + 1),
            ]
        );
        let free: i64 = conn
            .query_row("PRAGMA freelist_count", [], |row| row.get(0))
            .unwrap();
        assert_eq!(free, 0);
        drop(conn);
        drop(db);
        let after = std::fs::metadata(&path).unwrap().len();
        assert!(after < before, "{after} bytes after V4, {before} before");
    }
}
