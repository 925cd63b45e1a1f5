//! `--retention`: a background task that deletes events older than the
//! retention period, in small batches, keeping the rollups consistent (see
//! `Store::delete_events_before`), and prunes `feed_polls` to the same horizon.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::core::time::{SECONDS_PER_DAY, SECONDS_PER_HOUR, SECONDS_PER_MINUTE};
use crate::store::{Store, StoreError};
use crate::telemetry::Telemetry;

/// Events deleted per transaction: a write lock of well under a second
/// (BENCHMARKS.md), so the poller (and an import) wait at most that long
/// behind a purge, however much it has to delete.
pub const BATCH: usize = 5_000;

/// A pause between batches that lets other writers take the lock.
const PAUSE_BETWEEN_BATCHES: Duration = Duration::from_millis(20);

/// How often old events are looked for: retention is measured in days, so
/// minutes of slack do not matter, and a quiet check costs three index seeks.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(300);

/// The longest `--retention` accepted: far beyond any event (GitHub began in
/// 2008), and small enough that now minus it is always a representable time.
pub const MAX_RETENTION_YEARS: u64 = 1000;
pub const MAX_RETENTION: Duration =
    Duration::from_secs(MAX_RETENTION_YEARS * 365 * SECONDS_PER_DAY as u64);

/// The epoch second before which events are deleted: the start of the
/// minute `retention` before `now` (whole minutes, so that every store, and
/// ClickHouse's minute rollup, deletes exactly the same events), never after
/// `now`, and saturating rather than wrapping for any retention.
pub fn cutoff(now: i64, retention: Duration) -> i64 {
    let back = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    let at = now.saturating_sub(back).min(now);
    at.saturating_sub(at.rem_euclid(SECONDS_PER_MINUTE))
}

/// Deletes what is older than `retention` now, then every `interval`, until cancelled.
pub async fn run(
    store: Store,
    retention: Duration,
    interval: Duration,
    telemetry: Arc<Telemetry>,
    cancel: CancellationToken,
) {
    tracing::info!(retention = %describe(retention), "retention enabled");
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let cutoff = cutoff(chrono::Utc::now().timestamp(), retention);
        match purge(&store, cutoff, &telemetry, &cancel).await {
            Ok(0) => tracing::debug!(cutoff, "retention: nothing to delete"),
            Ok(deleted) => tracing::info!(deleted, cutoff, "retention: deleted old events"),
            Err(error) => {
                tracing::warn!(%error, "retention: delete failed; retrying at the next check")
            }
        }
    }
}

/// `30d`, `12h`, or humantime's form for anything else: humantime alone would
/// print 3650 days as "9years 11months 27days 21h 50m 24s" (30.44-day months).
fn describe(retention: Duration) -> String {
    const DAY: u64 = SECONDS_PER_DAY as u64;
    const HOUR: u64 = SECONDS_PER_HOUR as u64;
    match retention.as_secs() {
        secs if retention.subsec_nanos() == 0 && secs % DAY == 0 => format!("{}d", secs / DAY),
        secs if retention.subsec_nanos() == 0 && secs % HOUR == 0 => format!("{}h", secs / HOUR),
        _ => humantime::format_duration(retention).to_string(),
    }
}

/// Deletes every event created before `cutoff`, batch by batch; returns how many.
pub async fn purge(
    store: &Store,
    cutoff: i64,
    telemetry: &Telemetry,
    cancel: &CancellationToken,
) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let deleted = store.delete_events_before(cutoff, BATCH).await?;
        telemetry.retention_deleted(deleted);
        total += deleted;
        if deleted < BATCH as u64 || cancel.is_cancelled() {
            break;
        }
        tokio::time::sleep(PAUSE_BETWEEN_BATCHES).await;
    }
    store.delete_feed_polls_before(cutoff).await?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_never_after_now() {
        let now = 1_700_000_000; // 20 s into a minute
        assert_eq!(cutoff(now, Duration::from_secs(86_400)), now - 86_400 - 20);
        assert_eq!(cutoff(now, Duration::ZERO), now - 20);
        assert_eq!(cutoff(now - 20, Duration::from_secs(60)), now - 80);
        for huge in [Duration::from_secs(u64::MAX), Duration::MAX, MAX_RETENTION] {
            let at = cutoff(now, huge);
            assert!(at <= now && at < 0, "{huge:?} gave {at}");
        }
        assert_eq!(cutoff(i64::MIN + 5, Duration::from_secs(10)), i64::MIN);
    }

    #[test]
    fn retention_reads_as_written() {
        assert_eq!(describe(Duration::from_secs(3650 * 86_400)), "3650d");
        assert_eq!(describe(Duration::from_secs(12 * 3_600)), "12h");
        assert_eq!(describe(Duration::from_secs(90)), "1m 30s");
    }
}
