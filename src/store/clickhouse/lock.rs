//! The write lock of a ClickHouse store: one writer at a time, across every
//! process writing to it (the serving poller, retention, any `import`), so
//! that "look the batch's ids up, insert the new ones" stores each event once.
//!
//! ClickHouse has no transactions or row locks, but `CREATE TABLE` of a name
//! that exists fails, and so does `RENAME TABLE` onto one; on one server both
//! are atomic. The protocol:
//! - the writer that creates `ghmetrics_write_lock` holds the lock; the table
//!   names its holder (a random token, as the `holder` column's default) and
//!   gets a heartbeat row every [`HEARTBEAT`];
//! - every lock ends by being renamed to `ghmetrics_write_lock_ended_TOKEN`,
//!   its holder's own name: released by its holder, or taken over by another
//!   writer once its newest heartbeat is older than [`STALE_AFTER`] (its
//!   holder died, `kill -9` mid-insert). Only one rename onto that name can
//!   succeed, so of two writers that saw the same dead lock only one takes it
//!   over, and a rename meant for a lock that already ended cannot remove its
//!   successor: the name is taken. An ended lock that anyone might still have
//!   seen alive or stale is kept [`ENDED_KEPT`], then dropped by the next
//!   takeover or the writers' upkeep (`super::upkeep`).
//!
//! All writers must talk to the same ClickHouse server (on a cluster: the
//! same node) for the lock to hold.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ClickHouse;
use super::ClickHouseError;
use super::text::quote;

/// How often a holder shows it is alive.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// A lock without a heartbeat for this long is taken over: five missed
/// heartbeats, and what a restarted writer waits at most after a crash.
const STALE_AFTER: Duration = Duration::from_secs(10);
/// A holder that showed itself alive this recently cannot have been seen
/// stale by anyone, so its ended lock can be dropped at once.
const SURELY_ALIVE: Duration = Duration::from_secs(5);
/// How long an ended lock that someone may have seen stale is kept (its
/// name blocks a late rename of a lock that ended already).
const ENDED_KEPT: Duration = Duration::from_secs(600);
/// How long a writer waits for the lock before giving up.
const PATIENCE: Duration = Duration::from_secs(600);
/// ClickHouse's "table already exists" and "table doesn't exist" codes.
const TABLE_ALREADY_EXISTS: u32 = 57;
const UNKNOWN_TABLE: u32 = 60;
/// The lock table's name, and the prefix of ended ones.
const LOCK: &str = "ghmetrics_write_lock";
const ENDED: &str = "ghmetrics_write_lock_ended_";

/// A held lock. [`WriteLock::release`] gives it back; one dropped without it
/// (a cancelled caller) is given back in the background.
pub struct WriteLock {
    store: ClickHouse,
    holder: String,
    /// When the holder last showed itself alive (a heartbeat, or the lock's
    /// creation, sent): the lock cannot have looked stale since.
    alive: Arc<Mutex<Instant>>,
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
        let holder = format!("{:016x}", fastrand::u64(..));
        let started = Instant::now();
        let mut warned = false;
        let alive = loop {
            let sent = Instant::now();
            let create = format!(
                "CREATE TABLE {table} (at DateTime, holder String DEFAULT '{holder}') \
                 ENGINE = Memory"
            );
            match store.query(&create).await {
                Ok(_) => break sent,
                Err(error) if error.server_code() == Some(TABLE_ALREADY_EXISTS) => {}
                Err(error) => return Err(error),
            }
            match observe(store).await? {
                // Released while we looked.
                None => continue,
                Some(seen) if seen.silent > STALE_AFTER => {
                    take_over(store, &seen).await?;
                    continue;
                }
                Some(_) => {}
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
        };
        // No heartbeat yet: until the first one, the table's creation time
        // counts as one (see observe).
        let alive = Arc::new(Mutex::new(alive));
        let heartbeat = tokio::spawn(beat(store.clone(), alive.clone()));
        Ok(WriteLock {
            store: store.clone(),
            holder,
            alive,
            _local: local,
            heartbeat,
            released: false,
        })
    }

    pub async fn release(mut self) {
        self.released = true;
        self.heartbeat.abort();
        let alive = *self.alive.lock().unwrap_or_else(|e| e.into_inner());
        end(&self.store, self.holder.clone(), alive).await;
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        self.heartbeat.abort();
        if self.released {
            return;
        }
        let store = self.store.clone();
        let holder = self.holder.clone();
        let alive = *self.alive.lock().unwrap_or_else(|e| e.into_inner());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { end(&store, holder, alive).await });
            }
            // Taken over once stale.
            Err(_) => tracing::warn!("no runtime to release the ClickHouse write lock"),
        }
    }
}

/// Adds a heartbeat row every [`HEARTBEAT`], noting when each was sent.
async fn beat(store: ClickHouse, alive: Arc<Mutex<Instant>>) {
    let table = store.layout.table(LOCK);
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        let sent = Instant::now();
        match store
            .query(&format!("INSERT INTO {table} (at) VALUES (now())"))
            .await
        {
            Ok(_) => *alive.lock().unwrap_or_else(|e| e.into_inner()) = sent,
            Err(error) => tracing::warn!(%error, "could not renew the ClickHouse write lock"),
        }
    }
}

/// Ends the caller's own lock: renamed to its ended name, which fails if
/// someone took it over (that name is then taken) or it is gone. Dropped
/// at once when nobody can have seen it stale, kept otherwise.
async fn end(store: &ClickHouse, holder: String, alive: Instant) {
    let surely_alive = alive.elapsed() < SURELY_ALIVE;
    if !surely_alive {
        // Our heartbeats failed for a while: perhaps it was taken over, and
        // the lock under our name is now someone else's.
        match observe(store).await {
            Ok(Some(seen)) if seen.holder == holder => {}
            Ok(_) => {
                tracing::warn!("the ClickHouse write lock had been taken over before its release");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "could not release the ClickHouse write lock");
                return;
            }
        }
    }
    let lock = store.layout.table(LOCK);
    let ended = store.layout.table(&format!("{ENDED}{holder}"));
    match store
        .query(&format!("RENAME TABLE {lock} TO {ended}"))
        .await
    {
        Ok(_) if surely_alive => {
            if let Err(error) = store.query(&format!("DROP TABLE IF EXISTS {ended}")).await {
                tracing::warn!(%error, "could not drop the released ClickHouse write lock");
            }
        }
        Ok(_) => {}
        Err(error)
            if matches!(
                error.server_code(),
                Some(TABLE_ALREADY_EXISTS | UNKNOWN_TABLE)
            ) =>
        {
            tracing::warn!("the ClickHouse write lock had been taken over before its release");
        }
        Err(error) => tracing::warn!(%error, "could not release the ClickHouse write lock"),
    }
}

/// The lock as another writer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Its holder's token (`legacy` for a lock without one).
    pub holder: String,
    /// Time since its newest heartbeat, or since it was made before the
    /// first one.
    pub silent: Duration,
}

/// Who holds the lock and how long it has been silent; `None` if there is
/// no lock.
pub async fn observe(store: &ClickHouse) -> Result<Option<Seen>, ClickHouseError> {
    let table = store.layout.table(LOCK);
    let db = quote(&store.layout.database);
    let name = quote(LOCK);
    let answer = store
        .query(&format!(
            "SELECT
                 (SELECT any(default_expression) FROM system.columns
                  WHERE database = {db} AND table = {name} AND name = 'holder'),
                 toUInt32(now()) - greatest(
                     (SELECT toUInt32(max(at)) FROM {table}),
                     (SELECT toUInt32(metadata_modification_time) FROM system.tables
                      WHERE database = {db} AND name = {name}))
             FORMAT TabSeparated"
        ))
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) if error.server_code() == Some(UNKNOWN_TABLE) => return Ok(None),
        Err(error) => return Err(error),
    };
    let (holder, silent) = answer
        .trim_end()
        .split_once('\t')
        .ok_or_else(|| ClickHouseError::Answer(format!("lock state {answer:?}")))?;
    // The default arrives quoted (and escaped): keep the token's digits.
    let holder: String = holder.chars().filter(char::is_ascii_hexdigit).collect();
    Ok(Some(Seen {
        holder: if holder.is_empty() {
            "legacy".to_owned()
        } else {
            holder
        },
        silent: Duration::from_secs(silent.parse::<u64>().unwrap_or(0)),
    }))
}

/// Takes over the lock `seen` (stale) by renaming it to its ended name; true
/// if this writer did, false if it had ended already (another writer took
/// it over or its holder released it) — then whatever holds the lock now,
/// if anything, is left alone.
pub async fn take_over(store: &ClickHouse, seen: &Seen) -> Result<bool, ClickHouseError> {
    let lock = store.layout.table(LOCK);
    let ended = store.layout.table(&format!("{ENDED}{}", seen.holder));
    match store
        .query(&format!("RENAME TABLE {lock} TO {ended}"))
        .await
    {
        Ok(_) => {
            tracing::warn!(
                silent_s = seen.silent.as_secs(),
                "took over the ClickHouse write lock of a writer that stopped"
            );
            store.drop_ended_locks().await;
            Ok(true)
        }
        Err(error)
            if matches!(
                error.server_code(),
                Some(TABLE_ALREADY_EXISTS | UNKNOWN_TABLE)
            ) =>
        {
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// Drops the ended locks kept longer than [`ENDED_KEPT`] (renaming stamps
/// a table's metadata time): after each takeover, and in the writers' upkeep.
pub(super) async fn drop_ended_locks(store: &ClickHouse) -> Result<(), ClickHouseError> {
    let names = store
        .query(&format!(
            "SELECT name FROM system.tables WHERE database = {db} AND startsWith(name, {prefix})
             AND metadata_modification_time < now() - {kept} FORMAT TabSeparated",
            db = quote(&store.layout.database),
            prefix = quote(ENDED),
            kept = ENDED_KEPT.as_secs(),
        ))
        .await?;
    // Only names this protocol makes: a token or `legacy` after the prefix.
    let ended = names.lines().filter(|name| {
        name.strip_prefix(ENDED).is_some_and(|token| {
            token == "legacy" || (!token.is_empty() && token.chars().all(|c| c.is_ascii_hexdigit()))
        })
    });
    for name in ended {
        let table = store.layout.table(name);
        store
            .query(&format!("DROP TABLE IF EXISTS {table}"))
            .await?;
    }
    Ok(())
}
