//! `GET /health`: is the service up, how much is stored, and is polling working.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::cache::{self, Answer, Key, Stamp};
use crate::http::error::AppError;
use crate::ingest::github::outcome::FailureKind;
use crate::store::{ArchiveSummary, FeedCoverage, Origin, Totals};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

#[derive(Serialize, ToSchema)]
struct Health {
    /// `ok`, or `degraded` (still HTTP 200) while polling does not work (the
    /// last polls all failed, or the newest stored event is older than an
    /// hour) or the store is not answering.
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
    /// `ok`; `not answering` when the store gave no answer within a second
    /// (a frozen server), `unavailable` when it cannot be reached. The
    /// store's figures below are null then.
    #[schema(value_type = String, example = "ok")]
    store: &'static str,
    events_stored: Option<u64>,
    /// The share of the stored events that are bots' (`exclude_bots`
    /// leaves them out), from 0 to 1; null with no event stored.
    #[schema(example = 0.12)]
    bot_share: Option<f64>,
    /// Events stored per origin: how each arrived (`global_feed`, `watched`,
    /// `import`; `unknown` for events stored before origins were recorded).
    #[schema(example = json!({"global_feed": 9120, "watched": 310, "import": 4583, "unknown": 0}))]
    events_by_origin: Option<BTreeMap<&'static str, u64>>,
    /// `created_at` of the oldest stored event.
    oldest_event_at: Option<DateTime<Utc>>,
    /// `created_at` of the newest stored event.
    newest_event_at: Option<DateTime<Utc>>,
    /// False when started with `--no-poll`.
    polling: bool,
    last_poll_at: Option<DateTime<Utc>>,
    /// The kind of the last poll's failure (e.g. `rate_limited`, `timeout`);
    /// null after a success. The details are in the service log.
    #[schema(value_type = Option<String>, example = "transport")]
    last_poll_error: Option<FailureKind>,
    /// The last poll's failure said for a person, with what to do about it;
    /// null after a success.
    #[schema(example = "cannot reach the GitHub API: name lookup failed")]
    last_poll_problem: Option<&'static str>,
    /// Global polls in a row that failed.
    consecutive_poll_failures: u64,
    polls: u64,
    /// Tracked events skipped as malformed since start.
    events_malformed: u64,
    /// How much of the global feed the polls of the last hour saw.
    global_feed_coverage: Option<Coverage>,
    /// Of the tracked events in the last day's complete GH Archive hours, the
    /// share the live feeds had stored before (see `/coverage`); null without
    /// such hours.
    live_feed_share_last_day: Option<f64>,
    /// What the archive files read say: how late their events were, the
    /// files later than `--archive-lag` allows, and the late arrivals.
    archives: Option<Archives>,
    /// Repositories polled through their own feed.
    watched_repositories: usize,
    /// `--follow-gharchive`'s progress; null when not following.
    gharchive: Option<Following>,
}

/// The archives' figures for `/health`.
#[derive(Serialize, ToSchema)]
struct Archives {
    /// Archive files read whole.
    files_read: u64,
    /// `--archive-lag`: hours after its own an archive may file an event.
    archive_lag_hours: i64,
    /// The largest lag seen in any file: hours from an event's hour to its file's.
    max_lag_hours: i64,
    /// Files filed by crawl hour whose events were later than `--archive-lag`
    /// allows: hours settled before them may have moved.
    files_beyond_lag: u64,
    /// Events stored for an hour after it settled.
    late_arrivals: u64,
}

/// How far `--follow-gharchive` has come.
#[derive(Serialize, ToSchema)]
struct Following {
    /// The newest GH Archive hour imported whole (its start, UTC).
    newest_hour: Option<DateTime<Utc>>,
    /// Hours that have ended and are not imported yet (GH Archive publishes
    /// an hour a few minutes after it ends).
    hours_behind: i64,
    /// Hours GH Archive still did not have a day after they ended.
    #[schema(example = json!(["2026-11-29-3.json.gz"]))]
    hours_given_up: Vec<String>,
}

/// How much of the global feed the polls of a window saw
/// ([`FeedCoverage`], as `/health` shows it).
#[derive(Serialize, ToSchema)]
struct Coverage {
    window_seconds: i64,
    polls: u64,
    /// Polls whose answer did not reach back to the previous poll's newest event.
    polls_with_gap: u64,
    /// Events seen for the first time.
    events_seen: u64,
    /// Upper bound on the events that went by unseen (from the id ranges).
    events_missed_estimate: u64,
    /// `events_seen / (events_seen + events_missed_estimate)`; null before
    /// there is anything to compare.
    coverage: Option<f64>,
}

impl From<FeedCoverage> for Coverage {
    fn from(c: FeedCoverage) -> Self {
        Coverage {
            window_seconds: c.window_seconds,
            polls: c.polls,
            polls_with_gap: c.polls_with_gap,
            events_seen: c.events_seen,
            events_missed_estimate: c.events_missed_estimate,
            coverage: c.coverage,
        }
    }
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

/// Longest `/health` waits for the store: a health check must answer even
/// when the store does not.
const STORE_WAIT: Duration = Duration::from_secs(1);

/// What the store said, for `/health`.
struct StoreFigures {
    totals: Totals,
    coverage: FeedCoverage,
    live_share: Option<f64>,
    archive: ArchiveSummary,
}

/// Whether the service is up, how much is stored, and whether polling works.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses((status = 200, description = "The service is up (`status` says whether all is well)", body = Health))
)]
async fn health(State(state): State<AppState>) -> Result<Answer, AppError> {
    let now = Utc::now().timestamp();
    let with_figures = async {
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
            let (totals, coverage, live_share, archive) = tokio::try_join!(
                async { Ok::<_, AppError>(state.store.totals().await?) },
                async {
                    Ok::<_, AppError>(
                        state
                            .store
                            .global_feed_coverage(now, COVERAGE_WINDOW_SECONDS)
                            .await?,
                    )
                },
                super::coverage::last_day_share(&state, now),
                async {
                    Ok::<_, AppError>(state.store.archive_summary(state.archive_lag_hours).await?)
                },
            )?;
            cache::json(&report(
                &state,
                now,
                Ok(StoreFigures {
                    totals,
                    coverage,
                    live_share,
                    archive,
                }),
            ))
        })
        .await
    };
    let store_problem =
        match tokio::time::timeout(state.store_timeout.min(STORE_WAIT), with_figures).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(AppError::Store(error))) if error.is_unavailable() => "unavailable",
            Ok(Err(AppError::StoreNotAnswering(_))) | Err(_) => "not answering",
            Ok(Err(error)) => return Err(error),
        };
    tracing::warn!(
        store = store_problem,
        "health check: the store is {store_problem}"
    );
    cache::json(&report(&state, now, Err(store_problem)))
}

/// The health report from the poller's status and what the store said
/// (or why it said nothing).
fn report(state: &AppState, now: i64, store: Result<StoreFigures, &'static str>) -> Health {
    let poll = state.poll_status.snapshot();
    let failing = poll.consecutive_failures >= DEGRADED_AFTER_FAILURES;
    let (store_status, totals, coverage, live_share, archives) = match store {
        Ok(figures) => (
            "ok",
            Some(figures.totals),
            Some(figures.coverage.into()),
            figures.live_share,
            Some(Archives {
                files_read: figures.archive.files_read,
                archive_lag_hours: state.archive_lag_hours,
                max_lag_hours: figures.archive.max_lag_hours,
                files_beyond_lag: figures.archive.files_beyond_lag,
                late_arrivals: figures.archive.late_arrivals,
            }),
        ),
        Err(problem) => (problem, None, None, None, None),
    };
    let newest_event_at = totals.and_then(|t| t.newest_event_at);
    // Staleness counts only once polls have had a chance to bring events.
    let stale = totals.is_some()
        && poll.polls > 0
        && newest_event_at.is_none_or(|newest| now - newest > STALE_AFTER_SECONDS);
    let polling_broken = state.polling && (failing || stale);
    Health {
        status: if polling_broken || totals.is_none() {
            "degraded"
        } else {
            "ok"
        },
        store: store_status,
        events_stored: totals.map(|t| t.events),
        bot_share: totals
            .filter(|t| t.events > 0)
            .map(|t| t.bot_events as f64 / t.events as f64),
        events_by_origin: totals.map(|t| {
            Origin::ALL
                .iter()
                .map(|origin| (origin.name(), t.by_origin[usize::from(origin.code())]))
                .collect()
        }),
        oldest_event_at: totals
            .and_then(|t| t.oldest_event_at)
            .and_then(|at| DateTime::from_timestamp(at, 0)),
        newest_event_at: newest_event_at.and_then(|at| DateTime::from_timestamp(at, 0)),
        polling: state.polling,
        last_poll_at: poll.last_poll_at,
        last_poll_error: poll.last_poll_error,
        last_poll_problem: poll.last_poll_problem,
        consecutive_poll_failures: poll.consecutive_failures,
        polls: poll.polls,
        events_malformed: poll.events_malformed,
        global_feed_coverage: coverage,
        live_feed_share_last_day: live_share,
        archives,
        watched_repositories: state.watched.len(),
        gharchive: state.follow.as_ref().and_then(|status| {
            let status = status.lock().ok()?;
            Some(Following {
                newest_hour: status
                    .newest_hour
                    .and_then(|hour| DateTime::from_timestamp(hour * 3600, 0)),
                hours_behind: status.hours_behind,
                hours_given_up: status.given_up.clone(),
            })
        }),
    }
}
