//! The ClickHouse store: the same questions as [`super::sqlite`], answered
//! from the tables of `migrations/clickhouse/` over the HTTP interface, on
//! one server or (with `--clickhouse-cluster`) through `Distributed` tables
//! over a cluster's shards.
//!
//! Exactly once: a writer takes the store's write lock ([`lock`]), looks the
//! batch's ids up in `event_ids` (sorted by id) and inserts only the new
//! ones, so plain `count()` is exact right after any insert, without `FINAL`
//! or `uniqExact` at query time. The lock serialises the poller, retention
//! and any number of `import` processes on the same store.
//!
//! One file per concern: [`layout`] (where the tables are), [`http`] (the
//! transport), [`text`] (the text format), [`metrics`], [`write`], [`feeds`],
//! [`top`] and [`hour_tops`] (the pr-counts proofs), [`lock`], [`upkeep`],
//! [`migrate`].

mod feeds;
mod hour_tops;
mod http;
mod layout;
pub mod lock;
mod metrics;
mod migrate;
mod text;
mod top;
mod upkeep;

pub use upkeep::UPKEEP_INTERVAL;
mod write;

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

pub use http::ClickHouseError;
use http::Endpoint;
use layout::Layout;

use crate::config::ClickHouseSettings;
use crate::core::bots::BotLogins;
use crate::core::event::Event;
use crate::store::{
    BulkWriter, FileRecord, InsertStats, Load, Origin, Settling, SourceId, StoreError,
    drive_bulk_load,
};

/// The ClickHouse store. Cheap to clone.
#[derive(Clone)]
pub struct ClickHouse {
    layout: Arc<Layout>,
    /// One writer at a time within this process (poller, retention).
    local_writer: Arc<tokio::sync::Mutex<()>>,
    /// The logins counted as bots besides the GitHub Apps': asked at query
    /// time, so nothing stored depends on them.
    bots: Arc<std::sync::RwLock<Arc<BotLogins>>>,
}

/// How long start-up waits for an unreachable ClickHouse server.
const STARTUP_PATIENCE: Duration = Duration::from_secs(60);

impl ClickHouse {
    /// Connects, checks the server answers, and applies the migrations.
    pub async fn open(settings: &ClickHouseSettings) -> Result<ClickHouse, ClickHouseError> {
        let layout = Layout {
            main: Endpoint::new(settings, settings.endpoint.clone()),
            shards: settings
                .shard_endpoints
                .iter()
                .map(|url| Endpoint::new(settings, url.clone()))
                .collect(),
            database: settings.database.clone(),
            cluster: settings.cluster.clone(),
        };
        // A server started at the same time (a compose file, a reboot) may
        // take a while to listen: wait for it, saying so, up to a minute.
        let started = Instant::now();
        let version = loop {
            match layout.main.run("SELECT version()", &[], None).await {
                Err(error) if error.is_unavailable() && started.elapsed() < STARTUP_PATIENCE => {
                    tracing::warn!(%error, "waiting for ClickHouse");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                answer => break answer?,
            }
        };
        tracing::info!(server = %layout.main.describe(), version = %version.trim(), "connected to ClickHouse");
        migrate::run(&layout).await?;
        Ok(ClickHouse {
            layout: Arc::new(layout),
            local_writer: Arc::default(),
            bots: Arc::default(),
        })
    }

    /// See [`crate::store::Store::use_bot_logins`].
    pub fn use_bot_logins(&self, bots: BotLogins) {
        *self.bots.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(bots);
    }

    async fn query(&self, sql: &str) -> Result<String, ClickHouseError> {
        self.layout.main.run(sql, &[], None).await
    }

    /// [`ClickHouse::query`] for statements that may be longer than the
    /// server's default 256 KiB (thousands of repository names).
    async fn query_long(&self, sql: &str) -> Result<String, ClickHouseError> {
        let max_query_size = (sql.len() + 1024).max(1 << 18).to_string();
        let settings = [("max_query_size", max_query_size.as_str())];
        self.layout.main.run(sql, &settings, None).await
    }
}

impl ClickHouse {
    /// One insert per batch, awaited on the process's runtime from the
    /// blocking thread this runs on; at the end the rollups are merged (a
    /// ranking is proven from the top rows only when they are) and ended
    /// locks dropped.
    pub(crate) fn bulk_load(
        &self,
        loads: Receiver<Load>,
        settling: Settling,
    ) -> Result<InsertStats, StoreError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ClickHouseError::Busy("a bulk load runs on a thread of the async runtime".into())
        })?;
        let mut writer = BulkLoader {
            store: self.clone(),
            runtime,
        };
        let total = drive_bulk_load(&mut writer, loads, &settling)?;
        let BulkLoader { store, runtime } = writer;
        if total.inserted() > 0 {
            runtime.block_on(store.merge_rollups());
            runtime.block_on(store.summarize_finished_hours());
        }
        runtime.block_on(store.drop_ended_locks());
        Ok(total)
    }
}

/// The bulk loader: the store's calls are awaited from the loader's
/// blocking thread, on the process's runtime.
struct BulkLoader {
    store: ClickHouse,
    runtime: tokio::runtime::Handle,
}

impl BulkWriter for BulkLoader {
    fn insert(
        &mut self,
        events: &[Event],
        archive: Option<SourceId>,
    ) -> Result<InsertStats, StoreError> {
        Ok(self
            .runtime
            .block_on(self.store.insert_events(events, Origin::Import, archive))?)
    }

    fn record_file(&mut self, record: &FileRecord, now: i64) -> Result<(), StoreError> {
        Ok(self.runtime.block_on(self.store.record_file(record, now))?)
    }

    fn files(&mut self, first: i64, last: i64) -> Result<Vec<FileRecord>, StoreError> {
        Ok(self
            .runtime
            .block_on(self.store.archive_files(first, last))?)
    }

    fn settle(&mut self, hours: &[i64], now: i64) -> Result<(), StoreError> {
        Ok(self.runtime.block_on(self.store.settle(hours, now))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Start-up waits for a server that starts listening a few seconds late
    /// (here a stand-in answering `200 OK` to every statement).
    #[tokio::test]
    async fn open_waits_for_a_server_that_is_not_listening_yet() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap();
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = vec![0u8; 1 << 16];
                    let _ = socket.read(&mut request).await;
                    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\n18.16.1\n";
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        let Ok(crate::config::StoreLocation::ClickHouse(settings)) =
            crate::config::StoreLocation::parse(&format!("clickhouse://127.0.0.1:{port}/db"), None)
        else {
            panic!("not a ClickHouse URL");
        };
        let started = Instant::now();
        ClickHouse::open(&settings).await.unwrap();
        assert!(started.elapsed() >= Duration::from_secs(3));
    }
}
