//! `GET /health`: is the service up, how much is stored, and is polling working.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::db::{FeedCoverage, global_feed_coverage, stored_event_count};
use crate::error::AppError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

#[derive(Serialize, ToSchema)]
struct Health {
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
    events_stored: u64,
    /// False when started with `--no-poll`.
    polling: bool,
    last_poll_at: Option<DateTime<Utc>>,
    last_poll_error: Option<String>,
    polls: u64,
    /// Tracked events skipped as malformed since start.
    events_malformed: u64,
    /// How much of the global feed the polls of the last hour saw.
    global_feed_coverage: FeedCoverage,
    /// Repositories polled through their own feed.
    watched_repositories: usize,
}

/// The coverage window of `/health`.
const COVERAGE_WINDOW_SECONDS: i64 = 3600;

/// Whether the service is up, how much is stored, and whether polling works.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses((status = 200, description = "The service is up", body = Health))
)]
async fn health(State(state): State<AppState>) -> Result<Json<Health>, AppError> {
    let now = Utc::now().timestamp();
    let (events_stored, global_feed_coverage) = state
        .db
        .run(move |conn| {
            Ok((
                stored_event_count(conn)?,
                global_feed_coverage(conn, now, COVERAGE_WINDOW_SECONDS)?,
            ))
        })
        .await?;
    let report = state.poll_status.snapshot();
    Ok(Json(Health {
        status: "ok",
        events_stored,
        polling: state.polling,
        last_poll_at: report.last_poll_at,
        last_poll_error: report.last_poll_error,
        polls: report.polls,
        events_malformed: report.events_malformed,
        global_feed_coverage,
        watched_repositories: state.watched.len(),
    }))
}
