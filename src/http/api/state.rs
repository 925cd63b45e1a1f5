//! [`AppState`]: what the handlers reach, and nothing else (the layers get
//! their own settings from [`crate::config::HttpConfig`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use super::cache::AnswerCache;
use crate::http::chart::ChartCache;
use crate::http::error::AppError;
use crate::ingest::github::PollStatus;
use crate::store::Store;
use crate::telemetry::Telemetry;

/// What every handler can reach: one [`Arc`], so that the clones axum makes
/// of it for each request (its route services carry the state) cost one
/// atomic increment, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }

    /// `work` (which asks the store), given up after `--store-timeout`: a
    /// store that does not answer is unavailable, and the client hears so at
    /// once instead of after the request timeout. Work that is done at its
    /// first poll (SQLite's data version, a read of shared memory) takes no
    /// timer.
    pub async fn within_store_timeout<T>(
        &self,
        work: impl Future<Output = Result<T, AppError>>,
    ) -> Result<T, AppError> {
        let mut work = std::pin::pin!(work);
        if let Poll::Ready(done) =
            std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await
        {
            return done;
        }
        tokio::time::timeout(self.store_timeout, work)
            .await
            .unwrap_or(Err(AppError::StoreNotAnswering(self.store_timeout)))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The contents of [`AppState`].
pub struct Shared {
    pub store: Store,
    /// The poller's latest report, for `/health`.
    pub poll_status: Arc<PollStatus>,
    /// Whether this process polls GitHub at all.
    pub polling: bool,
    /// Rendered charts, reused while the counts stay the same.
    pub charts: ChartCache,
    /// Watched repositories (polled through their own feed) and since when
    /// (epoch seconds); empty without polling.
    pub watched: HashMap<String, i64>,
    /// Prometheus metrics, fed by the poller, retention and every request.
    pub telemetry: Arc<Telemetry>,
    /// Answers kept while the data, the poller's report and the clock they
    /// were computed from are unchanged.
    pub answers: AnswerCache,
    /// How long a request waits for the store before answering 503.
    pub store_timeout: Duration,
    /// `--archive-lag`: files later than it allows are reported.
    pub archive_lag_hours: i64,
    /// `--follow-gharchive`'s progress; `None` when not following.
    pub follow: Option<Arc<std::sync::Mutex<crate::ingest::follow::FollowStatus>>>,
}
