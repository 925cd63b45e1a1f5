//! Prometheus metrics of this process: the poller (polls, 304s, rate-limit
//! waits, errors by kind, events stored), retention, and the HTTP API (requests
//! by route and status, latency). Served as text at `GET /metrics`.
//!
//! Each [`Telemetry`] has its own registry rather than a process-global one, so
//! that two services in one process (the integration tests) count separately.

use std::time::Duration;

use axum::http::StatusCode;
use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

use crate::core::event::PerType;

/// Upper bounds (seconds) of the HTTP latency histogram: from well below a
/// millisecond (a cached answer) to the request timeout (requests queued
/// behind the concurrency limit, or cut by it).
const LATENCY_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Why the poller waited before a request to GitHub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimitWait {
    /// Spacing requests so the remaining budget lasts until the reset.
    Pacing,
    /// The budget was spent: waiting for the reset.
    Exhausted,
    /// GitHub answered 403/429 and said how long to wait.
    Refused,
}

impl RateLimitWait {
    fn label(self) -> &'static str {
        match self {
            RateLimitWait::Pacing => "pacing",
            RateLimitWait::Exhausted => "exhausted",
            RateLimitWait::Refused => "refused",
        }
    }
}

/// Every metric the service exports, in one registry.
#[derive(Clone, Debug)]
pub struct Telemetry {
    registry: Registry,
    /// Polls by feed (`global`, `watched`) and outcome (`ok`, `not_modified`, `error`).
    polls: IntCounterVec,
    /// Failed polls by kind (`rate_limited`, `http_status`, `transport`, `malformed_body`, `unavailable`, `store`).
    poll_errors: IntCounterVec,
    rate_limit_waits: IntCounterVec,
    rate_limit_wait_seconds: IntCounterVec,
    /// New events stored by the poller, by type.
    events_stored: IntCounterVec,
    events_duplicate: IntCounter,
    events_malformed: IntCounter,
    /// Events deleted by `--retention`.
    retention_deleted: IntCounter,
    /// How much of the global feed the polls saw (see `feed_polls`).
    global_feed_seen: IntCounter,
    global_feed_missed: IntCounter,
    global_feed_gaps: IntCounter,
    /// Set at each scrape: events in the database.
    events_in_database: Gauge,
    /// Set at each scrape: now minus the newest stored event's `created_at`.
    poll_lag: Gauge,
    /// Set at each scrape: `--follow-gharchive`'s progress (NaN when not
    /// following), and the live feed's share of the last complete hour.
    archive_newest_hour: Gauge,
    archive_hours_behind: Gauge,
    archive_hours_given_up: Gauge,
    live_feed_share: Gauge,
    /// Set at each scrape: what the archives' files say (see `/health`'s `archives`).
    archive_late_arrivals: Gauge,
    archive_files_beyond_lag: Gauge,
    archive_max_lag: Gauge,
    http_requests: IntCounterVec,
    http_latency: HistogramVec,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    pub fn new() -> Self {
        let r = Registrar(Registry::new());
        Telemetry {
            polls: r.counters(
                "ghmetrics_polls_total",
                "Polls of a GitHub event feed, by feed and outcome (not_modified: a 304 for our ETag).",
                &["feed", "outcome"],
            ),
            poll_errors: r.counters(
                "ghmetrics_poll_errors_total",
                "Failed polls by kind of failure.",
                &["kind"],
            ),
            rate_limit_waits: r.counters(
                "ghmetrics_rate_limit_waits_total",
                "Waits imposed by GitHub's rate limit, by reason (pacing, exhausted, refused).",
                &["reason"],
            ),
            rate_limit_wait_seconds: r.counters(
                "ghmetrics_rate_limit_wait_seconds_total",
                "Whole seconds spent waiting for GitHub's rate limit, by reason.",
                &["reason"],
            ),
            events_stored: r.counters(
                "ghmetrics_events_stored_total",
                "New events stored by the poller, by type.",
                &["type"],
            ),
            events_duplicate: r.counter(
                "ghmetrics_events_duplicate_total",
                "Polled events that were already stored.",
            ),
            events_malformed: r.counter(
                "ghmetrics_events_malformed_total",
                "Polled events of a tracked type skipped because they could not be parsed.",
            ),
            retention_deleted: r.counter(
                "ghmetrics_retention_deleted_total",
                "Events deleted because they were older than --retention.",
            ),
            global_feed_seen: r.counter(
                "ghmetrics_global_feed_events_seen_total",
                "Events of the global feed seen for the first time (newer than the previous poll's newest).",
            ),
            global_feed_missed: r.counter(
                "ghmetrics_global_feed_events_missed_estimate_total",
                "Upper bound on global-feed events that went by between two polls unseen (from event id ranges).",
            ),
            global_feed_gaps: r.counter(
                "ghmetrics_global_feed_polls_with_gap_total",
                "Polls of the global feed that did not reach back to the previous poll's newest event.",
            ),
            events_in_database: r.gauge(
                "ghmetrics_events_in_database",
                "Events stored in the database (set at each scrape, from the day rollup).",
            ),
            poll_lag: r.gauge(
                "ghmetrics_poll_lag_seconds",
                "Now minus the created_at of the newest stored event (NaN when none is stored).",
            ),
            archive_newest_hour: r.gauge(
                "ghmetrics_gharchive_newest_hour_timestamp_seconds",
                "Start of the newest GH Archive hour imported whole by --follow-gharchive (NaN when not following).",
            ),
            archive_hours_behind: r.gauge(
                "ghmetrics_gharchive_hours_behind",
                "Hours that have ended and --follow-gharchive has not imported yet (NaN when not following).",
            ),
            archive_hours_given_up: r.gauge(
                "ghmetrics_gharchive_hours_given_up",
                "Hours GH Archive still did not have a day after they ended (NaN when not following).",
            ),
            live_feed_share: r.gauge(
                "ghmetrics_live_feed_share_last_complete_hour",
                "Of the newest complete GH Archive hour's tracked events, the share the live feeds had stored before (NaN without one in the last two days).",
            ),
            archive_late_arrivals: r.gauge(
                "ghmetrics_archive_late_arrivals",
                "Events stored for an hour after it was settled: answers said to be final that moved.",
            ),
            archive_files_beyond_lag: r.gauge(
                "ghmetrics_archive_files_beyond_lag",
                "Archive files filed by crawl hour whose events are later than --archive-lag allows.",
            ),
            archive_max_lag: r.gauge(
                "ghmetrics_archive_max_lag_hours",
                "The largest lag seen in any archive file read: hours from an event's hour to its file's.",
            ),
            http_requests: r.counters(
                "ghmetrics_http_requests_total",
                "HTTP requests answered, by route, method and status.",
                &["route", "method", "status"],
            ),
            http_latency: r.add(
                HistogramVec::new(
                    HistogramOpts::new(
                        "ghmetrics_http_request_duration_seconds",
                        "Time from receiving a request to its response headers, by route and method.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                    &["route", "method"],
                )
                .expect("valid histogram"),
            ),
            registry: r.0,
        }
    }

    pub fn poll(&self, global_feed: bool, outcome: &str) {
        let feed = if global_feed { "global" } else { "watched" };
        self.polls.with_label_values(&[feed, outcome]).inc();
    }

    pub fn poll_error(&self, kind: &str) {
        self.poll_errors.with_label_values(&[kind]).inc();
    }

    pub fn rate_limit_wait(&self, reason: RateLimitWait, wait: Duration) {
        self.rate_limit_waits
            .with_label_values(&[reason.label()])
            .inc();
        self.rate_limit_wait_seconds
            .with_label_values(&[reason.label()])
            .inc_by(wait.as_secs());
    }

    pub fn events_stored(&self, inserted_by_type: PerType<u64>, duplicates: u64, malformed: u64) {
        for (event_type, inserted) in inserted_by_type.iter() {
            if inserted > 0 {
                self.events_stored
                    .with_label_values(&[event_type.as_str()])
                    .inc_by(inserted);
            }
        }
        self.events_duplicate.inc_by(duplicates);
        self.events_malformed.inc_by(malformed);
    }

    /// What one poll of the global feed saw: new events, whether it left a
    /// gap after the previous poll, and the estimate of what went by unseen.
    pub fn global_feed_continuity(&self, new_events: u64, gap: bool, missed_estimate: u64) {
        self.global_feed_seen.inc_by(new_events);
        self.global_feed_missed.inc_by(missed_estimate);
        if gap {
            self.global_feed_gaps.inc();
        }
    }

    pub fn retention_deleted(&self, events: u64) {
        self.retention_deleted.inc_by(events);
    }

    pub fn http_request(&self, route: &str, method: &str, status: StatusCode, elapsed: Duration) {
        self.http_requests
            .with_label_values(&[route, method, status.as_str()])
            .inc();
        self.http_latency
            .with_label_values(&[route, method])
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition of every metric, with the gauges read
    /// from the database at scrape time.
    pub fn render(&self, database: &DatabaseGauges, now: i64) -> String {
        self.poll_lag.set(
            database
                .newest_event_at
                .map_or(f64::NAN, |newest| (now - newest) as f64),
        );
        self.events_in_database.set(database.stored_events as f64);
        let following = database.following.as_ref();
        self.archive_newest_hour.set(
            following
                .and_then(|(newest, _, _)| *newest)
                .map_or(f64::NAN, |hour| (hour * 3600) as f64),
        );
        self.archive_hours_behind
            .set(following.map_or(f64::NAN, |(_, behind, _)| *behind as f64));
        self.archive_hours_given_up
            .set(following.map_or(f64::NAN, |(_, _, given_up)| *given_up as f64));
        self.live_feed_share
            .set(database.live_share_last_hour.unwrap_or(f64::NAN));
        self.archive_late_arrivals
            .set(database.archive.late_arrivals as f64);
        self.archive_files_beyond_lag
            .set(database.archive.files_beyond_lag as f64);
        self.archive_max_lag
            .set(database.archive.max_lag_hours as f64);
        let mut text = Vec::new();
        // Encoding what the registry gathered into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut text);
        String::from_utf8(text).unwrap_or_default()
    }
}

/// Adds `metric` to `registry` and hands it back for updating.
/// Makes metrics, each registered under its own name.
struct Registrar(Registry);

impl Registrar {
    fn add<M: Collector + Clone + 'static>(&self, metric: M) -> M {
        self.0
            .register(Box::new(metric.clone()))
            .expect("each metric is registered once, under its own name");
        metric
    }

    fn counters(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
    }

    fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.add(IntCounter::new(name, help).expect("valid metric name"))
    }

    fn gauge(&self, name: &str, help: &str) -> Gauge {
        self.add(Gauge::new(name, help).expect("valid metric name"))
    }
}

/// What a scrape reads from the database.
#[derive(Clone, Debug, Default)]
pub struct DatabaseGauges {
    /// `created_at` of the newest stored event, epoch seconds.
    pub newest_event_at: Option<i64>,
    pub stored_events: u64,
    /// `--follow-gharchive`'s progress, when following: the newest hour
    /// imported (hours since the epoch), hours behind, hours given up on.
    pub following: Option<(Option<i64>, i64, usize)>,
    /// The live feeds' share of the newest complete archive hour's events.
    pub live_share_last_hour: Option<f64>,
    pub archive: crate::store::ArchiveSummary,
}

/// The content type of [`Telemetry::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of one sample line, e.g. `name{a="b"} 3`.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn counts_render_as_prometheus_text() {
        let telemetry = Telemetry::new();
        telemetry.poll(true, "ok");
        telemetry.poll(true, "not_modified");
        telemetry.poll(true, "not_modified");
        telemetry.poll(false, "ok");
        telemetry.events_stored(PerType([3, 0, 2]), 7, 1);
        telemetry.rate_limit_wait(RateLimitWait::Refused, Duration::from_secs(60));
        telemetry.http_request("/health", "GET", StatusCode::OK, Duration::from_micros(300));
        telemetry.http_request("/health", "GET", StatusCode::OK, Duration::from_millis(20));
        telemetry.global_feed_continuity(100, false, 0);
        telemetry.global_feed_continuity(80, true, 250);
        let database = DatabaseGauges {
            newest_event_at: Some(1_000),
            stored_events: 12_345,
            following: Some((Some(490_000), 2, 1)),
            live_share_last_hour: Some(0.25),
            archive: crate::store::ArchiveSummary {
                files_read: 9,
                files_beyond_lag: 2,
                max_lag_hours: 7,
                late_arrivals: 31,
            },
        };
        let text = telemetry.render(&database, 1_042);
        let value = |series: &str| sample(&text, series);
        assert_eq!(
            value("ghmetrics_gharchive_newest_hour_timestamp_seconds"),
            Some(490_000.0 * 3600.0)
        );
        assert_eq!(value("ghmetrics_gharchive_hours_behind"), Some(2.0));
        assert_eq!(value("ghmetrics_archive_late_arrivals"), Some(31.0));
        assert_eq!(value("ghmetrics_archive_files_beyond_lag"), Some(2.0));
        assert_eq!(value("ghmetrics_archive_max_lag_hours"), Some(7.0));
        assert_eq!(value("ghmetrics_gharchive_hours_given_up"), Some(1.0));
        assert_eq!(
            value("ghmetrics_live_feed_share_last_complete_hour"),
            Some(0.25)
        );
        assert_eq!(
            value(r#"ghmetrics_polls_total{feed="global",outcome="not_modified"}"#),
            Some(2.0)
        );
        assert_eq!(
            value(r#"ghmetrics_polls_total{feed="watched",outcome="ok"}"#),
            Some(1.0)
        );
        assert_eq!(
            value(r#"ghmetrics_events_stored_total{type="WatchEvent"}"#),
            Some(3.0)
        );
        assert_eq!(
            value(r#"ghmetrics_events_stored_total{type="IssuesEvent"}"#),
            Some(2.0)
        );
        assert_eq!(
            value(r#"ghmetrics_events_stored_total{type="PullRequestEvent"}"#),
            None,
            "no series until something is stored"
        );
        assert_eq!(value("ghmetrics_events_duplicate_total"), Some(7.0));
        assert_eq!(
            value(r#"ghmetrics_rate_limit_wait_seconds_total{reason="refused"}"#),
            Some(60.0)
        );
        assert_eq!(value("ghmetrics_poll_lag_seconds"), Some(42.0));
        assert_eq!(value("ghmetrics_events_in_database"), Some(12_345.0));
        assert_eq!(
            value("ghmetrics_global_feed_events_seen_total"),
            Some(180.0)
        );
        assert_eq!(
            value("ghmetrics_global_feed_events_missed_estimate_total"),
            Some(250.0)
        );
        assert_eq!(
            value("ghmetrics_global_feed_polls_with_gap_total"),
            Some(1.0)
        );
        assert_eq!(
            value(r#"ghmetrics_http_requests_total{method="GET",route="/health",status="200"}"#),
            Some(2.0)
        );
        // 300 µs falls in the 0.0005 bucket and above; 20 ms only from 0.025.
        let bucket = |le: &str| {
            value(&format!(
                r#"ghmetrics_http_request_duration_seconds_bucket{{method="GET",route="/health",le="{le}"}}"#
            ))
        };
        assert_eq!(bucket("0.00025"), Some(0.0));
        assert_eq!(bucket("0.0005"), Some(1.0));
        assert_eq!(bucket("0.01"), Some(1.0));
        assert_eq!(bucket("0.025"), Some(2.0));
        assert!(
            telemetry
                .render(&DatabaseGauges::default(), 0)
                .contains("ghmetrics_poll_lag_seconds NaN")
        );
    }
}
