//! The write lock of a ClickHouse store: one writer at a time, across every
//! process writing to it (the serving poller, retention, any `import`), so
//! that "look the batch's ids up, insert the new ones" stores each event once.
//!
//! ClickHouse has no transactions or row locks, but `CREATE TABLE` of a name
//! that exists fails, on one server atomically: the writer that creates
//! `ghmetrics_write_lock` holds the lock, and drops the table to release it.
//! While it holds the lock it adds a heartbeat row every [`HEARTBEAT`]; a
//! lock whose newest heartbeat is older than [`STALE_AFTER`] belonged to a
//! writer that died (`kill -9` mid-insert) and is taken over: renamed away
//! first, which only one contender can do. All writers must talk to the
//! same ClickHouse server (on a cluster: the same node) for the lock to hold.

use std::time::{Duration, Instant};

use super::ClickHouse;
use super::http::{ClickHouseError, quote};

/// How often a holder shows it is alive.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// A lock without a heartbeat for this long is taken over: five missed
/// heartbeats, and what a restarted writer waits at most after a crash.
const STALE_AFTER: Duration = Duration::from_secs(10);
/// How long a writer waits for the lock before giving up.
const PATIENCE: Duration = Duration::from_secs(600);
/// ClickHouse's "table already exists" and "table doesn't exist" codes.
const TABLE_ALREADY_EXISTS: u32 = 57;
const UNKNOWN_TABLE: u32 = 60;
/// The lock table's name.
const LOCK: &str = "ghmetrics_write_lock";

/// A held lock. [`WriteLock::release`] gives it back; one dropped without it
/// (a cancelled caller) is given back in the background.
pub struct WriteLock {
    store: ClickHouse,
    _local: tokio::sync::OwnedMutexGuard<()>,
    heartbeat: tokio::task::JoinHandle<()>,
    released: bool,
}

impl WriteLock {
    /// Takes the lock, waiting for another writer up to [`PATIENCE`].
    pub async fn acquire(store: &ClickHouse) -> Result<WriteLock, ClickHouseError> {
        // Writers of this process queue here rather than polling the server.
        let local = store.local_writer.clone().lock_owned().await;
        let table = store.layout.table(LOCK);
        let started = Instant::now();
        let mut warned = false;
        loop {
            let create = format!("CREATE TABLE {table} (at DateTime) ENGINE = Memory");
            match store.query(&create).await {
                Ok(_) => break,
                Err(error) if error.server_code() == Some(TABLE_ALREADY_EXISTS) => {}
                Err(error) => return Err(error),
            }
            if take_over_if_stale(store).await? {
                continue;
            }
            if started.elapsed() > PATIENCE {
                return Err(ClickHouseError::Busy(format!(
                    "another writer has held the ClickHouse write lock ({table}) for over {} s",
                    PATIENCE.as_secs()
                )));
            }
            if !warned {
                warned = true;
                tracing::info!(
                    "another writer (an import?) is writing to ClickHouse; waiting for it"
                );
            }
            tokio::time::sleep(Duration::from_millis(20 + fastrand::u64(0..30))).await;
        }
        // No heartbeat yet: until the first one, the table's creation time
        // counts as one (see take_over_if_stale).
        let beating = store.clone();
        let heartbeat = tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                if let Err(error) = beat(&beating).await {
                    tracing::warn!(%error, "could not renew the ClickHouse write lock");
                }
            }
        });
        Ok(WriteLock {
            store: store.clone(),
            _local: local,
            heartbeat,
            released: false,
        })
    }

    pub async fn release(mut self) {
        self.released = true;
        self.heartbeat.abort();
        drop_lock(&self.store).await;
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        self.heartbeat.abort();
        if self.released {
            return;
        }
        let store = self.store.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { drop_lock(&store).await });
            }
            // Taken over once stale.
            Err(_) => tracing::warn!("no runtime to release the ClickHouse write lock"),
        }
    }
}

async fn beat(store: &ClickHouse) -> Result<(), ClickHouseError> {
    let table = store.layout.table(LOCK);
    store
        .query(&format!("INSERT INTO {table} (at) VALUES (now())"))
        .await?;
    Ok(())
}

async fn drop_lock(store: &ClickHouse) {
    let table = store.layout.table(LOCK);
    if let Err(error) = store.query(&format!("DROP TABLE IF EXISTS {table}")).await {
        tracing::warn!(%error, "could not release the ClickHouse write lock");
    }
}

/// Takes over a lock whose holder stopped beating; true if the caller may
/// try again at once.
async fn take_over_if_stale(store: &ClickHouse) -> Result<bool, ClickHouseError> {
    let table = store.layout.table(LOCK);
    // Seconds since the newest heartbeat, or since the table was made if
    // its holder died before the first one.
    let silent = store
        .query(&format!(
            "SELECT toUInt32(now()) - greatest(
                 (SELECT toUInt32(max(at)) FROM {table}),
                 (SELECT toUInt32(metadata_modification_time) FROM system.tables
                  WHERE database = {db} AND name = {name}))
             FORMAT TabSeparated",
            db = quote(&store.layout.database),
            name = quote(LOCK),
        ))
        .await;
    let silent = match silent {
        Ok(seconds) => seconds.trim().parse::<i64>().unwrap_or(0),
        // Released while we looked.
        Err(error) if error.server_code() == Some(UNKNOWN_TABLE) => return Ok(true),
        Err(error) => return Err(error),
    };
    if silent <= STALE_AFTER.as_secs() as i64 {
        return Ok(false);
    }
    let away = store
        .layout
        .table(&format!("ghmetrics_stale_lock_{}", fastrand::u64(..)));
    match store
        .query(&format!("RENAME TABLE {table} TO {away}"))
        .await
    {
        Ok(_) => {
            tracing::warn!(
                silent_s = silent,
                "took over the ClickHouse write lock of a writer that stopped"
            );
            store.query(&format!("DROP TABLE IF EXISTS {away}")).await?;
            Ok(true)
        }
        Err(error) if error.server_code() == Some(UNKNOWN_TABLE) => Ok(true),
        Err(error) => Err(error),
    }
}
