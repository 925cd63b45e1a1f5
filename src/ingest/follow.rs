//! `serve --follow-gharchive`: imports each GH Archive hour once it is
//! published, with the same code as `import --gharchive`, beside the poller:
//! live numbers now, complete numbers an hour later.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::FollowConfig;
use crate::core::time::SECONDS_PER_HOUR;
use crate::ingest::gharchive::{HourRange, file_name};
use crate::ingest::import::{ArchiveImport, ImportOptions, import_archive};
use crate::store::Store;

/// How far the follower has come, for `/health` and Prometheus.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FollowStatus {
    /// The newest hour imported whole (hours since the epoch).
    pub newest_hour: Option<i64>,
    /// Hours that have ended and are not imported yet.
    pub hours_behind: i64,
    /// Hours still missing a day after they ended (`YYYY-MM-DD-H.json.gz`).
    pub given_up: Vec<String>,
}

/// Follows the archive until `shutdown` (an hour being read then is left
/// for the next start, which reads it again).
pub async fn run(
    store: Store,
    config: FollowConfig,
    status: Arc<Mutex<FollowStatus>>,
    shutdown: CancellationToken,
) {
    let mut hour = config.from_hour;
    loop {
        let now = chrono::Utc::now().timestamp();
        if let Some(retention) = config.retention {
            hour = hour.max((now - retention.as_secs() as i64) / SECONDS_PER_HOUR + 1);
        }
        let ended = now / SECONDS_PER_HOUR - 1;
        set(&status, |s| s.hours_behind = (ended - hour + 1).max(0));
        let due = (hour + 1) * SECONDS_PER_HOUR + config.publish_delay.as_secs() as i64;
        if now < due {
            if sleep(Duration::from_secs((due - now) as u64), &shutdown).await {
                return;
            }
            continue;
        }
        let summary = {
            let mut archive = ArchiveImport::new(config.urls.clone(), HourRange::one(hour));
            archive.jobs = 1;
            archive.attempts = config.attempts;
            archive.backoff = config.backoff;
            archive.timeout = config.timeout;
            archive.shutdown = Some(shutdown.clone());
            let options = ImportOptions {
                archive_lag_hours: config.archive_lag_hours,
                ..ImportOptions::default()
            };
            import_archive(&store, &archive, &options).await
        };
        if shutdown.is_cancelled() {
            return;
        }
        let name = file_name(hour);
        match summary {
            Ok(summary) if summary.hours_imported + summary.hours_already == config.urls.len() => {
                if summary.hours_imported > 0 {
                    tracing::info!(hour = %name, stored = summary.stored.inserted(), duplicates = summary.stored.duplicates, "archive hour imported");
                }
                set(&status, |s| s.newest_hour = Some(hour));
                hour += 1;
                continue;
            }
            Ok(summary) if !summary.hours_missing.is_empty() => {
                let age = now - (hour + 1) * SECONDS_PER_HOUR;
                if age > config.give_up_after.as_secs() as i64 {
                    tracing::warn!(hour = %name, "GH Archive still does not have this hour a day after it ended; going on without it");
                    set(&status, |s| s.given_up.push(name));
                    hour += 1;
                    continue;
                }
                tracing::debug!(hour = %name, "not published yet");
            }
            Ok(summary) => {
                tracing::warn!(hour = %name, failures = ?summary.files_failed, "archive hour failed; trying again later");
            }
            Err(error) => tracing::error!(hour = %name, %error, "archive import failed"),
        }
        if sleep(config.retry_every, &shutdown).await {
            return;
        }
    }
}

fn set(status: &Mutex<FollowStatus>, change: impl FnOnce(&mut FollowStatus)) {
    if let Ok(mut status) = status.lock() {
        change(&mut status);
    }
}

/// Sleeps `duration`; true when `shutdown` came first.
async fn sleep(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(duration) => false,
    }
}
