//! `GET /metrics/...`: the four metrics and two charts, each asked of the [`Store`].

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::cache::{self, Answer, Key, Lookup, Stamp};
use super::params::{BUCKET_MINUTES, LIMIT, MAX_OFFSET_MINUTES, OFFSET_MINUTES, QueryParams};
use super::spool::{Spool, Spooled};
use crate::chart;
use crate::error::{AppError, ErrorBody};
use crate::store::{self, Store};
use crate::time_buckets::{SECONDS_PER_MINUTE, ceil_div, minute_of};

/// The chart's window when `offset_minutes` is not given.
const DEFAULT_CHART_WINDOW_MINUTES: i64 = 60;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(average_pr_time))
        .routes(routes!(event_counts))
        .routes(routes!(pr_counts))
        .routes(routes!(visualization))
        .routes(routes!(visualization_timeline))
}

#[derive(Serialize, ToSchema)]
struct AveragePrTime {
    repo_name: String,
    /// Mean seconds between consecutive PR openings; null with fewer than two.
    average_seconds: Option<f64>,
    /// Median of those gaps (interpolated between the two middle ones); null with fewer than two openings.
    median_seconds: Option<f64>,
    /// 90th percentile of the gaps (interpolated as the median is); null with fewer than two openings.
    p90_seconds: Option<f64>,
    /// The longest gap; null with fewer than two openings.
    max_seconds: Option<i64>,
    /// When the newest opening happened (UTC); null without one.
    last_opened_at: Option<DateTime<Utc>>,
    /// PR openings found.
    pr_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// `watched`: the repository's own feed is polled, so openings since
    /// `watched_since` are complete; `global_feed`: only what the sampled
    /// global feed happened to show.
    #[schema(value_type = String, example = "global_feed")]
    source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    watched_since: Option<DateTime<Utc>>,
}

/// The time between consecutive PR openings of a repository.
///
/// PR openings are `PullRequestEvent`s with action `opened`, in `created_at`
/// order; the gaps between consecutive ones give the mean (= (last - first) /
/// (openings - 1) seconds), median, 90th percentile and longest.
#[utoipa::path(
    get,
    path = "/metrics/average-pr-time",
    tag = "metrics",
    params(("repo_name" = String, Query, description = "The repository, `owner/name`", example = "rust-lang/rust")),
    responses(
        (status = 200, description = "The gaps' figures; each is null with fewer than two openings", body = AveragePrTime),
        (status = 422, description = "`repo_name` missing or blank", body = ErrorBody),
    )
)]
async fn average_pr_time(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<Answer, AppError> {
    let repo_name = params.repo_name()?.to_owned();
    let stamp = Stamp::of_data(&state).await?;
    let key = Key {
        route: "average-pr-time",
        params: repo_name.clone(),
    };
    cache::answer(&state, key, stamp, || async {
        let summary = state
            .store
            .pr_gaps(repo_name.clone(), 0, crate::time_buckets::END_OF_TIME)
            .await?;
        let message = summary.average_seconds.is_none().then(|| {
            format!(
                "Only {} PR opening(s) (PullRequestEvent with action \"opened\") found. At least 2 are required.",
                summary.openings
            )
        });
        let watched_since = state
            .watched
            .get(&repo_name)
            .and_then(|&since| DateTime::from_timestamp(since, 0));
        cache::json(&AveragePrTime {
            repo_name,
            average_seconds: summary.average_seconds,
            median_seconds: summary.median_seconds,
            p90_seconds: summary.p90_seconds,
            max_seconds: summary.max_seconds,
            last_opened_at: summary
                .last_opened_at
                .and_then(|at| DateTime::from_timestamp(at, 0)),
            pr_count: summary.openings,
            message,
            source: if watched_since.is_some() {
                "watched"
            } else {
                "global_feed"
            },
            watched_since,
        })
    })
    .await
}

/// Stored events per tracked type, under GitHub's type names: the answer of
/// event-counts (the store's [`store::EventCounts`] stays free of API names).
#[derive(Serialize, ToSchema)]
struct EventCounts {
    #[serde(rename = "WatchEvent")]
    watch: u64,
    #[serde(rename = "PullRequestEvent")]
    pull_request: u64,
    #[serde(rename = "IssuesEvent")]
    issues: u64,
}

impl From<store::EventCounts> for EventCounts {
    fn from(counts: store::EventCounts) -> Self {
        EventCounts {
            watch: counts.watch,
            pull_request: counts.pull_request,
            issues: counts.issues,
        }
    }
}

/// Epoch second `offset_minutes` before `now` (at most [`MAX_OFFSET_MINUTES`],
/// so this cannot overflow).
fn window_start(offset_minutes: i64, now: i64) -> i64 {
    now - offset_minutes.min(MAX_OFFSET_MINUTES) * SECONDS_PER_MINUTE
}

/// The counts of the last `offset_minutes` minutes as of epoch second `now`.
async fn counts_since(
    state: &AppState,
    offset_minutes: i64,
    now: i64,
) -> Result<store::EventCounts, AppError> {
    let since = window_start(offset_minutes, now);
    Ok(state
        .store
        .event_counts(since, crate::time_buckets::END_OF_TIME)
        .await?)
}

/// Stored events per type created in the last `offset_minutes` minutes.
#[utoipa::path(
    get,
    path = "/metrics/event-counts",
    tag = "metrics",
    params(("offset_minutes" = i64, Query, minimum = 1, description = "The window: events with `created_at` in the last N minutes", example = 60)),
    responses(
        (status = 200, description = "Counts per event type (zeros included)", body = EventCounts),
        (status = 422, description = "`offset_minutes` missing, not an integer >= 1, or too large", body = ErrorBody),
    )
)]
async fn event_counts(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<Answer, AppError> {
    let offset_minutes = params.required_int(&OFFSET_MINUTES)?;
    let now = Utc::now().timestamp();
    let key = Key {
        route: "event-counts",
        params: offset_minutes.to_string(),
    };
    let stamp = Stamp::at(&state, now).await?;
    cache::answer(&state, key, stamp, || async {
        cache::json(&EventCounts::from(
            counts_since(&state, offset_minutes, now).await?,
        ))
    })
    .await
}

/// PullRequestEvents (any action) per repository, most first.
///
/// A JSON object in rank order (ties by name). Without `limit` every
/// repository is listed.
#[utoipa::path(
    get,
    path = "/metrics/pr-counts",
    tag = "metrics",
    params(("limit" = Option<i64>, Query, minimum = 1, description = "At most this many repositories")),
    responses(
        (status = 200, description = "Repository name -> PullRequestEvent count", body = BTreeMap<String, u64>,
            example = json!({"rust-lang/rust": 42, "tokio-rs/axum": 7})),
        (status = 422, description = "`limit` not an integer >= 1", body = ErrorBody),
    )
)]
async fn pr_counts(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<Response, AppError> {
    let limit = params.int(&LIMIT)?.map(|n| n as u64);
    let stamp = Stamp::of_data(&state).await?;
    let key = Key {
        route: "pr-counts",
        params: limit.map_or_else(String::new, |n| n.to_string()),
    };
    let _turn = match state.answers.lookup(&key, stamp).await {
        Lookup::Kept(answer) => return Ok(answer.into_response()),
        Lookup::Turn(turn) => turn,
    };
    // The whole answer is written out in one read (one consistent answer, in
    // well under a second for a million repositories) before the first byte
    // goes to the client, so a slow reader pins no connection or transaction
    // (which on SQLite would also stop WAL checkpoints).
    let answer = cache::bounded(&state, write_pr_counts(&state.store, limit))
        .await?
        .finish()?;
    Ok(match answer {
        Spooled::Memory(body) => {
            let answer = Answer {
                content_type: "application/json",
                body,
            };
            state.answers.put(key, stamp, answer.clone());
            answer.into_response()
        }
        Spooled::File(file, length) => {
            let stream = tokio_util::io::ReaderStream::with_capacity(
                tokio::fs::File::from_std(file),
                64 * 1024,
            );
            (
                [(header::CONTENT_TYPE, "application/json")],
                [(header::CONTENT_LENGTH, length.to_string())],
                Body::from_stream(stream),
            )
                .into_response()
        }
    })
}

/// The pr-counts JSON object, written to a [`Spool`].
async fn write_pr_counts(store: &Store, limit: Option<u64>) -> Result<Spool, AppError> {
    use std::io::Write;
    let PrCountsJson {
        mut out,
        first,
        failure,
    } = store
        .for_each_pr_count(limit, None, PrCountsJson::default())
        .await?;
    let closing: &[u8] = if first { b"{}" } else { b"}" };
    if let Some(error) = failure.or_else(|| out.write_all(closing).err()) {
        tracing::error!(%error, "cannot write the pr-counts answer");
        return Err(AppError::Internal("cannot buffer the answer"));
    }
    Ok(out)
}

/// Writes each repository as a member of one JSON object.
struct PrCountsJson {
    out: Spool,
    first: bool,
    failure: Option<std::io::Error>,
}

impl Default for PrCountsJson {
    fn default() -> Self {
        PrCountsJson {
            out: Spool::default(),
            first: true,
            failure: None,
        }
    }
}

impl store::PrCountSink for PrCountsJson {
    fn accept(&mut self, repo_name: &str, count: u64) -> bool {
        use std::io::Write;
        let separator: &[u8] = if self.first { b"{" } else { b"," };
        self.first = false;
        let out = &mut self.out;
        let written = out
            .write_all(separator)
            .and_then(|()| {
                serde_json::to_writer(&mut *out, repo_name).map_err(std::io::Error::other)
            })
            .and_then(|()| write!(out, ":{count}"));
        match written {
            Ok(()) => true,
            Err(error) => {
                self.failure = Some(error);
                false
            }
        }
    }
}

/// A bar chart of the event counts of the last `offset_minutes` minutes.
#[utoipa::path(
    get,
    path = "/metrics/visualization",
    tag = "charts",
    params(
        ("offset_minutes" = Option<i64>, Query, minimum = 1, description = "The window in minutes (default 60)"),
        ("format" = Option<String>, Query, description = "`png` (default) or `svg`"),
    ),
    responses(
        (status = 200, description = "The chart", content(([u8] = "image/png"), ([u8] = "image/svg+xml"))),
        (status = 422, description = "A bad `offset_minutes` or `format`", body = ErrorBody),
    )
)]
async fn visualization(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<Answer, AppError> {
    let offset_minutes = chart_window(&params)?;
    let format = params.image_format()?;
    let now = Utc::now().timestamp();
    let key = Key {
        route: "visualization",
        params: format!("{offset_minutes} {}", format.content_type()),
    };
    let stamp = Stamp::at(&state, now).await?;
    cache::answer(&state, key, stamp, || async {
        let counts = counts_since(&state, offset_minutes, now).await?;
        let window = chart::describe_window(offset_minutes);
        let shared = state.clone();
        let body =
            render_off_runtime(move || shared.charts.get_or_render(&counts, &window, format))
                .await?;
        Ok(Answer {
            content_type: format.content_type(),
            body,
        })
    })
    .await
}

/// A chart's window: `offset_minutes`, by default the last hour.
fn chart_window(params: &QueryParams) -> Result<i64, AppError> {
    Ok(params
        .int(&OFFSET_MINUTES)?
        .unwrap_or(DEFAULT_CHART_WINDOW_MINUTES))
}

/// Most points on a timeline: more would be thinner than a pixel.
const MAX_TIMELINE_BUCKETS: i64 = 1_000;
/// Points on a timeline when `bucket_minutes` is not given (at most).
const DEFAULT_TIMELINE_BUCKETS: i64 = 60;

/// Events per time bucket per type over the last `offset_minutes` minutes.
#[utoipa::path(
    get,
    path = "/metrics/visualization/timeline",
    tag = "charts",
    params(
        ("offset_minutes" = Option<i64>, Query, minimum = 1, description = "The window in minutes (default 60)"),
        ("bucket_minutes" = Option<i64>, Query, minimum = 1, description = "Minutes per point (default: the window / 60, rounded up). A bucket wider than the window is the window; one that would give more than 1,000 points is widened to give 1,000"),
        ("format" = Option<String>, Query, description = "`png` (default) or `svg`"),
    ),
    responses(
        (status = 200, description = "The chart; the last bucket ends with the current minute (UTC)", content(([u8] = "image/png"), ([u8] = "image/svg+xml"))),
        (status = 422, description = "A bad `offset_minutes`, `bucket_minutes` or `format`", body = ErrorBody),
    )
)]
async fn visualization_timeline(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<Answer, AppError> {
    let offset_minutes = chart_window(&params)?;
    let requested = params
        .int(&BUCKET_MINUTES)?
        .unwrap_or_else(|| ceil_div(offset_minutes, DEFAULT_TIMELINE_BUCKETS));
    let format = params.image_format()?;
    let bucket_minutes = fit_bucket(offset_minutes, requested);
    let buckets = ceil_div(offset_minutes, bucket_minutes);
    // The last bucket ends with the current minute, so the right edge is
    // "now", and the chart changes only when the minute or the data do.
    let end_minute = minute_of(Utc::now().timestamp()) + 1;
    let key = Key {
        route: "timeline",
        params: format!(
            "{offset_minutes} {bucket_minutes} {}",
            format.content_type()
        ),
    };
    let stamp = Stamp::at(&state, end_minute).await?;
    cache::answer(&state, key, stamp, || async {
        let first_minute = end_minute - buckets * bucket_minutes;
        let counts = state
            .store
            .timeline(first_minute, bucket_minutes, buckets as usize)
            .await?;
        let timeline = chart::Timeline {
            start: first_minute * SECONDS_PER_MINUTE,
            bucket_seconds: bucket_minutes * SECONDS_PER_MINUTE,
            buckets: counts,
        };
        let window = chart::describe_window(offset_minutes);
        let body = render_off_runtime(move || {
            chart::render_timeline(&timeline, &window, format).map(Bytes::from)
        })
        .await?;
        Ok(Answer {
            content_type: format.content_type(),
            body,
        })
    })
    .await
}

/// The bucket width actually drawn: at most the window (one point), and at
/// least wide enough for at most [`MAX_TIMELINE_BUCKETS`] points, since more
/// would be thinner than a pixel. Every width the document allows is served.
fn fit_bucket(offset_minutes: i64, requested: i64) -> i64 {
    requested
        .min(offset_minutes)
        .max(ceil_div(offset_minutes, MAX_TIMELINE_BUCKETS))
}

/// Runs chart rendering (milliseconds of CPU) on the blocking pool, in the request's span.
async fn render_off_runtime(
    render: impl FnOnce() -> Result<Bytes, chart::ChartError> + Send + 'static,
) -> Result<Bytes, AppError> {
    let span = tracing::Span::current();
    Ok(tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        render()
    })
    .await??)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_fit_the_window_and_the_point_limit() {
        assert_eq!(fit_bucket(60, 1), 1);
        assert_eq!(fit_bucket(60, 61), 60, "at most the window");
        assert_eq!(fit_bucket(100_000, 1), 100, "at most 1,000 points");
        assert_eq!(fit_bucket(100_001, 1), 101);
        for (window, requested) in [(1, 52_559_999), (MAX_OFFSET_MINUTES, 1), (7, 3)] {
            let bucket = fit_bucket(window, requested);
            assert!(bucket >= 1 && bucket <= window);
            assert!(ceil_div(window, bucket) <= MAX_TIMELINE_BUCKETS);
        }
    }

    #[test]
    fn window_start_reaches_back_at_most_the_maximum() {
        let now = 1_700_000_000;
        assert_eq!(window_start(1, now), 1_700_000_000 - 60);
        assert_eq!(window_start(10_000_000, now), 1_700_000_000 - 600_000_000);
        assert_eq!(
            window_start(i64::MAX, now),
            1_700_000_000 - MAX_OFFSET_MINUTES * 60
        );
    }
}
