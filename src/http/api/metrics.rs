//! `GET /metrics/...`: the metrics and the two charts, each asked of the [`Store`].

use axum::body::Bytes;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::cache::{self, Answer, Key, Stamp};
use super::params::{BUCKET_MINUTES, CUMULATIVE, LIMIT, QueryParams, TOP_LIMIT, WindowParam};
use super::spool::Spool;
use crate::core::event::EventType;
use crate::core::time::{
    Buckets, HourRange, SECONDS_PER_HOUR, SECONDS_PER_MINUTE, Window, ceil_div, minute_of,
};
use crate::http::chart;
use crate::http::error::{AppError, ErrorBody};
use crate::store;
use crate::store::Filter;

/// The chart's window when `offset_minutes` is not given.
const DEFAULT_CHART_WINDOW_MINUTES: i64 = 60;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(average_pr_time))
        .routes(routes!(event_counts))
        .routes(routes!(pr_counts))
        .routes(routes!(top))
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
    /// Where the openings come from, so how complete they are: `watched`
    /// when the repository's own feed was polled over the whole window
    /// (without a window: since `watched_since`); `archive` when every hour
    /// from the first to the last opening is settled (every archive file
    /// that can hold its events read whole); `import` when some openings
    /// came from imported files that are not archive hours; `global_feed`
    /// otherwise (what the sampled global feed and archive hours not settled
    /// yet happened to hold).
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
    params(
        ("repo_name" = String, Query, description = "The repository, `owner/name`; matched as GitHub matches names, ignoring case (the answer's `repo_name` is the spelling stored)", example = "rust-lang/rust"),
        ("offset_minutes" = Option<i64>, Query, description = "Only the openings of the last N minutes (not with `from`/`to`)"),
        ("from" = Option<String>, Query, description = WINDOW_FROM),
        ("to" = Option<String>, Query, description = WINDOW_TO),
        ("exclude_bots" = Option<bool>, Query, description = EXCLUDE_BOTS),
    ),
    responses(
        (status = 200, description = "The gaps' figures; each is null with fewer than two openings. Without a window, over every stored opening", body = AveragePrTime),
        (status = 422, description = "`repo_name` missing or malformed, or a window that breaks a rule above", body = ErrorBody),
    )
)]
async fn average_pr_time(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<Answer, AppError> {
    let repo_name = params.repo_name()?.to_owned();
    let exclude_bots = params.exclude_bots()?;
    let now = Utc::now().timestamp();
    let window = params.window(now)?;
    let stamp = stamp_for(&state, window, now).await?;
    let key = Key {
        route: "average-pr-time",
        params: format!(
            "{repo_name} {exclude_bots} {}",
            window.map_or_else(String::new, WindowParam::key)
        ),
    };
    cache::answer(&state, key, stamp, || async {
        let span = window.map_or(Window::EVER, |window| window.at(now));
        let mut repo_name = repo_name;
        let gaps = |repo: String| state.store.pr_gaps(repo, span, exclude_bots);
        let mut summary = gaps(repo_name.clone()).await?;
        // GitHub's names ignore case: a name with no opening as written is
        // answered under the spelling stored, if there is one.
        if summary.openings == 0
            && let Some(stored) = state.store.repo_spelling(repo_name.clone()).await?
            && stored != repo_name
        {
            summary = gaps(stored.clone()).await?;
            repo_name = stored;
        }
        let message = summary.average_seconds.is_none().then(|| {
            format!(
                "Only {} PR opening(s) (PullRequestEvent with action \"opened\") found. At least 2 are required.",
                summary.openings
            )
        });
        // Watched over the whole window (without one: watched at all).
        let watched_since = state
            .watched
            .get(&repo_name)
            .filter(|&&since| window.is_none() || since <= span.from)
            .and_then(|&since| DateTime::from_timestamp(since, 0));
        let source = match (watched_since, summary.first_opened_at, summary.last_opened_at) {
            (Some(_), ..) => "watched",
            (None, Some(first), Some(last)) => {
                let hours = HourRange::of_seconds(first, last);
                let settled = state.store.settled_hours(hours).await?;
                if settled == hours.len() as u64 {
                    "archive"
                } else if state
                    .store
                    .openings_from_files(repo_name.clone(), span, exclude_bots)
                    .await?
                    > 0
                {
                    "import"
                } else {
                    "global_feed"
                }
            }
            _ => "global_feed",
        };
        let mut answer = cache::json(&AveragePrTime {
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
            source,
            watched_since,
        })?;
        answer.complete_until = complete_until(&state, window, now).await?;
        Ok(answer)
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
    /// With `repo_name` only: how complete the repository's counts are
    /// (see [`repo_source`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "archive")]
    source: Option<&'static str>,
}

impl From<store::EventCounts> for EventCounts {
    fn from(counts: store::EventCounts) -> Self {
        EventCounts {
            watch: counts.watch,
            pull_request: counts.pull_request,
            issues: counts.issues,
            source: None,
        }
    }
}

/// How complete one repository's answer over `window` is: `watched` when
/// its own feed was polled over the whole window (`--watch-repo`);
/// `archive` when every hour of the window (up to now) is settled, every
/// archive file that can hold its events read; `global_feed` otherwise,
/// what the sampled live feeds, imported files and archive hours not settled
/// yet happened to hold.
async fn repo_source(
    state: &AppState,
    repo: &str,
    window: Window,
    now: i64,
) -> Result<&'static str, AppError> {
    let watched = state
        .watched
        .iter()
        .any(|(name, &since)| name.eq_ignore_ascii_case(repo) && since <= window.from);
    if watched {
        return Ok("watched");
    }
    let end = window.to.min(now);
    if end <= window.from {
        return Ok("global_feed");
    }
    let hours = HourRange::of_seconds(window.from, end - 1);
    let settled = state.store.settled_hours(hours).await?;
    Ok(if settled == hours.len() as u64 {
        "archive"
    } else {
        "global_feed"
    })
}

/// The description of `exclude_bots`, the same on every endpoint.
pub(super) const EXCLUDE_BOTS: &str = "`true`: leave out the events of bots, actors whose login ends in `[bot]` (GitHub Apps) or that the service was told are bots (`--bot-login`); default `false`";
/// The description of `repo_name` where it narrows an answer to one repository.
const ONE_REPO: &str =
    "Only this repository's events, `owner/name`, matched as GitHub matches names (ignoring case)";

/// The cache key's part for `filter`.
fn filter_key(filter: &Filter) -> String {
    format!(
        "{} {}",
        filter.repo_name.as_deref().unwrap_or(""),
        filter.exclude_bots
    )
}

/// The description of `from`, the same on every endpoint.
pub(super) const WINDOW_FROM: &str = "The window's start, RFC 3339 (`2015-01-01T03:00:00Z`; an offset such as `+02:00`, written `%2B02:00` in a URL, is converted to UTC; a fraction of any length is exact), or a date (`2015-01-01`, its 00:00 UTC): \
events with `created_at` in [`from`, `to`). From 2008-01-01T00:00:00Z to a day ahead of now; before `to`; not with `offset_minutes`";
/// The description of `to`.
pub(super) const WINDOW_TO: &str = "The window's end (excluded), RFC 3339 or a date; only with `from`; default now. From 2008-01-01T00:00:00Z to a day ahead of now";

/// The stamp of an answer over `window`: the data, and the clock (`clock`, in
/// the unit the answer moves by) when the window moves with it.
pub(super) async fn stamp_for(
    state: &AppState,
    window: Option<WindowParam>,
    clock: i64,
) -> Result<Stamp, AppError> {
    match window {
        Some(window) if window.moves() => Stamp::at(state, clock).await,
        _ => Stamp::of_data(state).await,
    }
}

/// Where the run of complete archive hours that starts at the window's first
/// hour ends (for no window, at the oldest stored event's hour): the
/// `X-Complete-Until` of an answer. `None` when that hour is not complete.
async fn complete_until(
    state: &AppState,
    window: Option<WindowParam>,
    now: i64,
) -> Result<Option<i64>, AppError> {
    let from = match window {
        Some(window) => Some(window.at(now).from),
        None => state.store.oldest_event_at().await?,
    };
    let Some(from) = from else { return Ok(None) };
    let end = state
        .store
        .settled_until(from.div_euclid(SECONDS_PER_HOUR))
        .await?;
    Ok(end.map(|hour| hour * SECONDS_PER_HOUR))
}

/// The counts over `window` as of epoch second `now`.
async fn counts_in(
    state: &AppState,
    window: WindowParam,
    now: i64,
    filter: Filter,
) -> Result<store::EventCounts, AppError> {
    Ok(state.store.event_counts(window.at(now), filter).await?)
}

/// Stored events per type created in the window: the last `offset_minutes`
/// minutes, or [`from`, `to`).
#[utoipa::path(
    get,
    path = "/metrics/event-counts",
    tag = "metrics",
    params(
        ("offset_minutes" = Option<i64>, Query, description = "The window: events with `created_at` in the last N minutes. Required unless `from` is given", example = 60),
        ("from" = Option<String>, Query, description = WINDOW_FROM),
        ("to" = Option<String>, Query, description = WINDOW_TO),
        ("repo_name" = Option<String>, Query, description = ONE_REPO),
        ("exclude_bots" = Option<bool>, Query, description = EXCLUDE_BOTS),
    ),
    responses(
        (status = 200, description = "Counts per event type (zeros included)", body = EventCounts),
        (status = 422, description = "Neither `offset_minutes` nor `from`, an `offset_minutes` that is not an integer from 1 to the maximum, or a window that breaks a rule above", body = ErrorBody),
    )
)]
async fn event_counts(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<Answer, AppError> {
    let now = Utc::now().timestamp();
    let window = params.window(now)?.ok_or_else(|| {
        AppError::InvalidParameter(
            "offset_minutes (the last N minutes) or from (and to) is required".to_owned(),
        )
    })?;
    let filter = params.filter()?;
    let key = Key {
        route: "event-counts",
        params: format!("{} {}", window.key(), filter_key(&filter)),
    };
    let stamp = stamp_for(&state, Some(window), now).await?;
    cache::answer(&state, key, stamp, || async {
        let source = match &filter.repo_name {
            Some(repo) => Some(repo_source(&state, repo, window.at(now), now).await?),
            None => None,
        };
        let counts = counts_in(&state, window, now, filter).await?;
        let mut answer = cache::json(&EventCounts {
            source,
            ..EventCounts::from(counts)
        })?;
        answer.complete_until = complete_until(&state, Some(window), now).await?;
        Ok(answer)
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
    params(
        ("limit" = Option<i64>, Query, minimum = 1, description = "At most this many repositories"),
        ("offset_minutes" = Option<i64>, Query, description = "Only the PR events of the last N minutes (not with `from`/`to`)"),
        ("from" = Option<String>, Query, description = WINDOW_FROM),
        ("to" = Option<String>, Query, description = WINDOW_TO),
        ("exclude_bots" = Option<bool>, Query, description = EXCLUDE_BOTS),
    ),
    responses(
        (status = 200, description = "Repository name -> PullRequestEvent count in the window (without one, every stored event)", body = BTreeMap<String, u64>,
            example = json!({"rust-lang/rust": 42, "tokio-rs/axum": 7})),
        (status = 422, description = "`limit` not an integer >= 1, or a window that breaks a rule above", body = ErrorBody),
    )
)]
async fn pr_counts(State(state): State<AppState>, params: QueryParams) -> Result<Answer, AppError> {
    let limit = params.int(&LIMIT)?.map(|n| n as u64);
    let exclude_bots = params.exclude_bots()?;
    let now = Utc::now().timestamp();
    let window = params.window(now)?;
    let stamp = stamp_for(&state, window, now).await?;
    let key = Key {
        route: "pr-counts",
        params: format!(
            "{} {exclude_bots} {}",
            limit.map_or_else(String::new, |n| n.to_string()),
            window.map_or_else(String::new, WindowParam::key)
        ),
    };
    // The whole answer is written out in one read (one consistent answer, in
    // well under a second for a million repositories) before the first byte
    // goes to the client, so a slow reader pins no connection or transaction
    // (which on SQLite would also stop WAL checkpoints).
    cache::answer(&state, key, stamp, || async {
        let span = window.map(|window| window.at(now));
        Ok(Answer {
            content_type: "application/json",
            body: state
                .store
                .for_each_pr_count(limit, span, exclude_bots, RankingJson::default())
                .await?
                .finish()?
                .finish()?,
            complete_until: complete_until(&state, window, now).await?,
        })
    })
    .await
}

/// The default window of top: the last day, like GitHub's Trending page.
const DEFAULT_TOP_MINUTES: i64 = 24 * 60;
/// How many repositories top ranks by default.
const DEFAULT_TOP_LIMIT: i64 = 100;

/// Repositories by how many events of one type they had in the window, most
/// first (ties by name): with `type=WatchEvent` (the default), the trending
/// repositories by stars, of any window.
#[utoipa::path(
    get,
    path = "/metrics/top",
    tag = "metrics",
    params(
        ("type" = Option<String>, Query, description = "The events counted: `WatchEvent` (stars; the default), `PullRequestEvent` or `IssuesEvent`"),
        ("limit" = Option<i64>, Query, description = "At most this many repositories (default 100)"),
        ("offset_minutes" = Option<i64>, Query, description = "The last N minutes (default 1440, the last day; not with `from`/`to`)"),
        ("from" = Option<String>, Query, description = WINDOW_FROM),
        ("to" = Option<String>, Query, description = WINDOW_TO),
        ("exclude_bots" = Option<bool>, Query, description = EXCLUDE_BOTS),
    ),
    responses(
        (status = 200, description = "Repository name -> its events of the type in the window, most first, ties by name", body = BTreeMap<String, u64>,
            example = json!({"rust-lang/rust": 42, "tokio-rs/axum": 7})),
        (status = 422, description = "A bad `type` or `limit`, or a window that breaks a rule above", body = ErrorBody),
    )
)]
async fn top(State(state): State<AppState>, params: QueryParams) -> Result<Answer, AppError> {
    let event_type = params.event_type(EventType::Watch)?;
    let limit = params.int(&TOP_LIMIT)?.unwrap_or(DEFAULT_TOP_LIMIT) as u64;
    let exclude_bots = params.exclude_bots()?;
    let now = Utc::now().timestamp();
    let window = params.window(now)?.unwrap_or(WindowParam::Last {
        minutes: DEFAULT_TOP_MINUTES,
    });
    let stamp = stamp_for(&state, Some(window), now).await?;
    let key = Key {
        route: "top",
        params: format!(
            "{} {limit} {exclude_bots} {}",
            event_type.as_str(),
            window.key()
        ),
    };
    cache::answer(&state, key, stamp, || async {
        let ranking = state
            .store
            .for_each_repo_count(
                event_type,
                Some(limit),
                window.at(now),
                exclude_bots,
                RankingJson::default(),
            )
            .await?;
        Ok(Answer {
            content_type: "application/json",
            body: ranking.finish()?.finish()?,
            complete_until: complete_until(&state, Some(window), now).await?,
        })
    })
    .await
}

/// The pr-counts JSON object, written to a [`Spool`].
/// Writes each repository as a member of one JSON object.
struct RankingJson {
    out: Spool,
    first: bool,
    failure: Option<std::io::Error>,
}

impl RankingJson {
    /// The object closed, or why it could not be written.
    fn finish(self) -> Result<Spool, AppError> {
        use std::io::Write;
        let RankingJson {
            mut out,
            first,
            failure,
        } = self;
        let closing: &[u8] = if first { b"{}" } else { b"}" };
        if let Some(error) = failure.or_else(|| out.write_all(closing).err()) {
            tracing::error!(%error, "cannot write a ranking");
            return Err(AppError::Internal("cannot buffer the answer"));
        }
        Ok(out)
    }
}

impl Default for RankingJson {
    fn default() -> Self {
        RankingJson {
            out: Spool::default(),
            first: true,
            failure: None,
        }
    }
}

impl store::RepoCountSink for RankingJson {
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

/// A bar chart of the event counts in the window: the last `offset_minutes`
/// minutes (by default the last hour), or [`from`, `to`).
#[utoipa::path(
    get,
    path = "/metrics/visualization",
    tag = "charts",
    params(
        ("offset_minutes" = Option<i64>, Query, description = "The window in minutes (default 60; not with `from`/`to`)"),
        ("from" = Option<String>, Query, description = WINDOW_FROM),
        ("to" = Option<String>, Query, description = WINDOW_TO),
        ("format" = Option<String>, Query, description = "`png` (default) or `svg`"),
        ("exclude_bots" = Option<bool>, Query, description = EXCLUDE_BOTS),
    ),
    responses(
        (status = 200, description = "The chart", content(([u8] = "image/png"), ([u8] = "image/svg+xml"))),
        (status = 422, description = "A bad `offset_minutes` or `format`, or a window that breaks a rule above", body = ErrorBody),
    )
)]
async fn visualization(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<Answer, AppError> {
    let now = Utc::now().timestamp();
    let window = chart_window(&params, now)?;
    let format = params.image_format()?;
    let filter = Filter {
        repo_name: None,
        exclude_bots: params.exclude_bots()?,
    };
    let key = Key {
        route: "visualization",
        params: format!(
            "{} {} {}",
            window.key(),
            format.content_type(),
            filter_key(&filter)
        ),
    };
    let stamp = stamp_for(&state, Some(window), now).await?;
    cache::answer(&state, key, stamp, || async {
        let title = title(window, now, &filter);
        let counts = counts_in(&state, window, now, filter).await?;
        let shared = state.clone();
        let body = render_off_runtime(move || shared.charts.get_or_render(&counts, &title, format))
            .await?;
        Ok(Answer {
            complete_until: complete_until(&state, Some(window), now).await?,
            ..Answer::new(format.content_type(), body)
        })
    })
    .await
}

/// A chart's window, by default the last hour.
fn chart_window(params: &QueryParams, now: i64) -> Result<WindowParam, AppError> {
    Ok(params.window(now)?.unwrap_or(WindowParam::Last {
        minutes: DEFAULT_CHART_WINDOW_MINUTES,
    }))
}

/// A chart's title for its window: "the last 3 hours", or the range.
/// A chart's title: its window, and whose events it counts.
fn title(window: WindowParam, now: i64, filter: &Filter) -> String {
    let mut title = match window {
        WindowParam::Last { minutes } => chart::describe_window(minutes),
        WindowParam::Between { .. } => {
            let Window { from, to } = window.at(now);
            chart::describe_range(from, to)
        }
    };
    if let Some(repo) = &filter.repo_name {
        title = format!("{repo}: {title}");
    }
    if filter.exclude_bots {
        title.push_str(", without bots");
    }
    title
}

/// Most points on a timeline: more would be thinner than a pixel.
const MAX_TIMELINE_BUCKETS: i64 = 1_000;
/// Points on a timeline when `bucket_minutes` is not given (at most).
const DEFAULT_TIMELINE_BUCKETS: i64 = 60;

/// Events per time bucket per type over the window: the last
/// `offset_minutes` minutes (by default the last hour), or [`from`, `to`)
/// widened to whole minutes.
#[utoipa::path(
    get,
    path = "/metrics/visualization/timeline",
    tag = "charts",
    params(
        ("offset_minutes" = Option<i64>, Query, description = "The window in minutes (default 60; not with `from`/`to`)"),
        ("from" = Option<String>, Query, description = WINDOW_FROM),
        ("to" = Option<String>, Query, description = WINDOW_TO),
        ("bucket_minutes" = Option<i64>, Query, minimum = 1, description = "Minutes per point (default: the window / 60, rounded up). A bucket wider than the window is the window; one that would give more than 1,000 points is widened to give 1,000"),
        ("format" = Option<String>, Query, description = "`png` (default), `svg`, or `json`: the points as data, for a chart of your own"),
        ("cumulative" = Option<bool>, Query, description = "`true`: each point is the running total from the window's start (stars over time); default `false`"),
        ("repo_name" = Option<String>, Query, description = ONE_REPO),
        ("exclude_bots" = Option<bool>, Query, description = EXCLUDE_BOTS),
    ),
    responses(
        (status = 200, description = "The chart, or its points; the last bucket ends with the window's last minute (UTC)", content(([u8] = "image/png"), ([u8] = "image/svg+xml"), (TimelinePoints = "application/json"))),
        (status = 422, description = "A bad `offset_minutes`, `bucket_minutes`, `format` or `cumulative`, or a window that breaks a rule above", body = ErrorBody),
    )
)]
async fn visualization_timeline(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<Answer, AppError> {
    let now = Utc::now().timestamp();
    let window = chart_window(&params, now)?;
    // The last bucket ends with the window's last minute (for "the last N
    // minutes", the current one, so the chart changes only when the minute
    // or the data do); the window's minutes are counted back from there.
    let (end_minute, window_minutes) = match window {
        WindowParam::Last { minutes } => (minute_of(now) + 1, minutes),
        WindowParam::Between { .. } => {
            let Window { from, to } = window.at(now);
            let end = ceil_div(to, SECONDS_PER_MINUTE);
            (end, end - minute_of(from))
        }
    };
    let requested = params
        .int(&BUCKET_MINUTES)?
        .unwrap_or_else(|| ceil_div(window_minutes, DEFAULT_TIMELINE_BUCKETS));
    let format = params.timeline_format()?;
    let cumulative = params.flag(CUMULATIVE)?;
    let bucket_minutes = fit_bucket(window_minutes, requested);
    let buckets = ceil_div(window_minutes, bucket_minutes);
    let content_type = format.map_or("application/json", chart::ImageFormat::content_type);
    let filter = params.filter()?;
    let key = Key {
        route: "timeline",
        params: format!(
            "{} {bucket_minutes} {content_type} {cumulative} {}",
            window.key(),
            filter_key(&filter)
        ),
    };
    let stamp = stamp_for(&state, Some(window), end_minute).await?;
    cache::answer(&state, key, stamp, || async {
        let buckets = Buckets {
            first_minute: end_minute - buckets * bucket_minutes,
            minutes: bucket_minutes,
            count: buckets as usize,
        };
        let mut title = title(window, now, &filter);
        let repo = filter.repo_name.clone();
        let mut counts = state.store.timeline(buckets, filter).await?;
        if cumulative {
            for i in 1..counts.len() {
                let before = counts[i - 1];
                counts[i] += before;
            }
        }
        let timeline = chart::Timeline {
            start: buckets.start(),
            bucket_seconds: buckets.seconds(),
            buckets: counts,
        };
        let complete_until = complete_until(&state, Some(window), now).await?;
        let Some(format) = format else {
            let source = match repo {
                Some(repo) => Some(repo_source(&state, &repo, window.at(now), now).await?),
                None => None,
            };
            return Ok(Answer {
                complete_until,
                ..cache::json(&TimelinePoints {
                    source,
                    ..TimelinePoints::of(&timeline, cumulative)
                })?
            });
        };
        if cumulative {
            title.push_str(", running totals");
        }
        let body = render_off_runtime(move || {
            chart::render_timeline(&timeline, &title, format).map(Bytes::from)
        })
        .await?;
        Ok(Answer {
            complete_until,
            ..Answer::new(format.content_type(), body)
        })
    })
    .await
}

/// The timeline as data (`format=json`).
#[derive(Serialize, ToSchema)]
struct TimelinePoints {
    /// Minutes per point.
    bucket_minutes: i64,
    /// Whether each point is the running total from the window's start.
    cumulative: bool,
    /// The points, oldest first.
    points: Vec<TimelinePoint>,
    /// With `repo_name` only: how complete the repository's points are:
    /// `watched`, `archive` or `global_feed`, as in event-counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "global_feed")]
    source: Option<&'static str>,
}

/// One bucket: when it starts, and its events per type.
#[derive(Serialize, ToSchema)]
struct TimelinePoint {
    start: DateTime<Utc>,
    #[serde(rename = "WatchEvent")]
    watch: u64,
    #[serde(rename = "PullRequestEvent")]
    pull_request: u64,
    #[serde(rename = "IssuesEvent")]
    issues: u64,
}

impl TimelinePoints {
    fn of(timeline: &chart::Timeline, cumulative: bool) -> TimelinePoints {
        let points = timeline
            .buckets
            .iter()
            .zip(0..)
            .map(|(counts, i)| TimelinePoint {
                start: DateTime::from_timestamp(timeline.start + i * timeline.bucket_seconds, 0)
                    .unwrap_or_default(),
                watch: counts[EventType::Watch],
                pull_request: counts[EventType::PullRequest],
                issues: counts[EventType::Issues],
            })
            .collect();
        TimelinePoints {
            bucket_minutes: timeline.bucket_seconds / SECONDS_PER_MINUTE,
            cumulative,
            points,
            source: None,
        }
    }
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
    use super::super::params::MAX_OFFSET_MINUTES;
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
}
