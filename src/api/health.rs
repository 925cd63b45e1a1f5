//! `GET /health`: is the service up, how much is stored, and is polling working.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::cache::{self, Answer, Key, Stamp};
use crate::error::AppError;
use crate::github::outcome::FailureKind;
use crate::store::FeedCoverage;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

#[derive(Serialize, ToSchema)]
struct Health {
    /// `ok`, or `degraded` (still HTTP 200) while polling does not work: the
    /// last polls all failed, or the newest stored event is older than an hour.
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
    events_stored: u64,
    /// `created_at` of the newest stored event.
    newest_event_at: Option<DateTime<Utc>>,
    /// False when started with `--no-poll`.
    polling: bool,
    last_poll_at: Option<DateTime<Utc>>,
    /// The kind of the last poll's failure (e.g. `rate_limited`, `timeout`);
    /// null after a success. The details are in the service log.
    #[schema(value_type = Option<String>, example = "timeout")]
    last_poll_error: Option<FailureKind>,
    /// Global polls in a row that failed.
    consecutive_poll_failures: u64,
    polls: u64,
    /// Tracked events skipped as malformed since start.
    events_malformed: u64,
    /// How much of the global feed the polls of the last hour saw.
    global_feed_coverage: FeedCoverage,
    /// Repositories polled through their own feed.
    watched_repositories: usize,
}

/// Failed polls in a row (at GitHub's pace, a few minutes) that make the
/// service `degraded`.
const DEGRADED_AFTER_FAILURES: u64 = 3;

/// How old the newest stored event may be while polling before the service
/// is `degraded`: GitHub's public feed moves every second, so an hour without
/// a new event means the polls are not getting through.
const STALE_AFTER_SECONDS: i64 = 3600;

/// The coverage window of `/health`.
const COVERAGE_WINDOW_SECONDS: i64 = 3600;

/// Whether the service is up, how much is stored, and whether polling works.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses((status = 200, description = "The service is up", body = Health))
)]
async fn health(State(state): State<AppState>) -> Result<Answer, AppError> {
    let now = Utc::now().timestamp();
    let stamp = Stamp {
        polls: state.poll_status.generation(),
        ..Stamp::at(&state, now).await?
    };
    let key = Key {
        route: "health",
        params: String::new(),
    };
    cache::answer(&state, key, stamp, || async {
        // Two questions of the store, asked at once.
        let (totals, global_feed_coverage) = tokio::try_join!(
            state.store.totals(),
            state
                .store
                .global_feed_coverage(now, COVERAGE_WINDOW_SECONDS),
        )?;
        let (events_stored, newest_event_at) = (totals.events, totals.newest_event_at);
        let report = state.poll_status.snapshot();
        let failing = report.consecutive_failures >= DEGRADED_AFTER_FAILURES;
        // Staleness counts only once polls have had a chance to bring events.
        let stale = report.polls > 0
            && newest_event_at.is_none_or(|newest| now - newest > STALE_AFTER_SECONDS);
        cache::json(&Health {
            status: if state.polling && (failing || stale) {
                "degraded"
            } else {
                "ok"
            },
            events_stored,
            newest_event_at: newest_event_at.and_then(|at| DateTime::from_timestamp(at, 0)),
            polling: state.polling,
            last_poll_at: report.last_poll_at,
            last_poll_error: report.last_poll_error,
            consecutive_poll_failures: report.consecutive_failures,
            polls: report.polls,
            events_malformed: report.events_malformed,
            global_feed_coverage,
            watched_repositories: state.watched.len(),
        })
    })
    .await
}
