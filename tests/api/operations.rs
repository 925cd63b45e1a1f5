//! What operators rely on: Prometheus metrics, the request timeout and
//! concurrency limit, the per-client rate limit, CORS and compression.

use std::io::Read;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use ghmetrics::config::SqliteLocation;
use serde_json::Value;

use crate::helpers::{Expected, Fault, MockGithub, TestApp, fixture_events, test_poller_config};
use crate::stores::every_store;

/// The value of one series in a Prometheus text exposition, e.g.
/// `ghmetrics_polls_total{feed="global",outcome="ok"}`.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn prometheus_counts_polls_events_errors_and_requests() {
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let events = fixture_events();
        let mock = MockGithub::start(100).await;
        mock.set_feed(&events);
        // Two failures first, then the feed: 502, then a body that is not JSON.
        mock.push_faults([Fault::Status(502), Fault::Body("{not json")]);
        let mut app =
            TestApp::spawn(store.location.clone(), Some(test_poller_config(&mock.url))).await;
        let expected = Expected::of(&events);
        // Two errors, the poll that stores everything, then a 304.
        app.wait_for_report(|r| r.polls >= 4).await;
        for _ in 0..3 {
            assert_eq!(app.get("/health").await.status(), 200);
        }

        let text = scrape(&app).await;
        let value = |series: &str| sample(&text, series);
        assert_eq!(
            value(r#"ghmetrics_polls_total{feed="global",outcome="ok"}"#),
            Some(1.0)
        );
        assert_eq!(
            value(r#"ghmetrics_polls_total{feed="global",outcome="error"}"#),
            Some(2.0)
        );
        assert!(
            value(r#"ghmetrics_polls_total{feed="global",outcome="not_modified"}"#) >= Some(1.0)
        );
        assert_eq!(
            value(r#"ghmetrics_poll_errors_total{kind="http_status"}"#),
            Some(1.0)
        );
        assert_eq!(
            value(r#"ghmetrics_poll_errors_total{kind="malformed_body"}"#),
            Some(1.0)
        );
        for (event_type, count) in &expected.by_type {
            assert_eq!(
                value(&format!(
                    r#"ghmetrics_events_stored_total{{type="{event_type}"}}"#
                )),
                Some(*count as f64),
                "{event_type}"
            );
        }
        assert_eq!(
            value(r#"ghmetrics_http_requests_total{method="GET",route="/health",status="200"}"#),
            Some(3.0)
        );
        assert_eq!(
            value(r#"ghmetrics_http_request_duration_seconds_count{method="GET",route="/health"}"#),
            Some(3.0)
        );
        assert_eq!(
            value("ghmetrics_events_in_database"),
            Some(expected.total() as f64)
        );
        // The first poll saw every event of the feed (all types), none missed.
        let ids: std::collections::HashSet<&str> =
            events.iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(
            value("ghmetrics_global_feed_events_seen_total"),
            Some(ids.len() as f64)
        );
        assert_eq!(
            value("ghmetrics_global_feed_polls_with_gap_total"),
            Some(0.0)
        );
        // The lag is now minus the newest fixture event.
        let newest = events
            .iter()
            .map(|e| {
                chrono::DateTime::parse_from_rfc3339(e["created_at"].as_str().unwrap())
                    .unwrap()
                    .timestamp()
            })
            .max()
            .unwrap();
        let lag = value("ghmetrics_poll_lag_seconds").unwrap();
        let expected_lag = (chrono::Utc::now().timestamp() - newest) as f64;
        assert!(
            (lag - expected_lag).abs() <= 5.0,
            "lag {lag} vs {expected_lag}"
        );

        // The scrape itself is counted by the next one, and so is a 404 (under
        // one label, not one per unknown path).
        assert_eq!(app.get("/no/such/path").await.status(), 404);
        let text = scrape(&app).await;
        assert_eq!(
            sample(
                &text,
                r#"ghmetrics_http_requests_total{method="GET",route="/metrics",status="200"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"ghmetrics_http_requests_total{method="GET",route="(unmatched)",status="404"}"#
            ),
            Some(1.0)
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn rate_limited_polls_count_the_wait() {
    let mock = MockGithub::start(100).await;
    mock.set_feed(&fixture_events()[..10]);
    mock.push_faults([Fault::RetryAfter {
        status: 429,
        secs: 1,
    }]);
    let mut app = TestApp::spawn(SqliteLocation::Memory, Some(test_poller_config(&mock.url))).await;
    app.wait_for_report(|r| r.polls >= 2).await;
    let text = scrape(&app).await;
    assert_eq!(
        sample(&text, r#"ghmetrics_poll_errors_total{kind="rate_limited"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"ghmetrics_rate_limit_waits_total{reason="refused"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"ghmetrics_rate_limit_wait_seconds_total{reason="refused"}"#
        ),
        Some(1.0)
    );
    app.stop().await;
}

#[tokio::test]
async fn clients_over_the_rate_limit_get_429_with_retry_after() {
    let app = TestApp::spawn_with(SqliteLocation::Memory, None, |config| {
        config.http.rate_limit = NonZeroU32::new(3);
    })
    .await;
    // A burst of 3 is allowed; one request is earned back every 333 ms.
    for _ in 0..3 {
        assert_eq!(app.get("/health").await.status(), 200);
    }
    let refused = app.get("/health").await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(
        refused.headers()["x-ratelimit-after"].to_str().unwrap(),
        retry_after.to_string(),
        "both headers give the same wait"
    );
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("too many requests"),
        "{body}"
    );

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let text = scrape(&app).await;
    assert_eq!(
        sample(
            &text,
            r#"ghmetrics_http_requests_total{method="GET",route="/health",status="429"}"#
        ),
        Some(1.0)
    );
    app.stop().await;
}

#[tokio::test]
async fn slow_requests_time_out_and_excess_requests_queue() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let app = TestApp::spawn_with(SqliteLocation::Memory, None, |config| {
        config.http.request_timeout = TIMEOUT;
        config.http.max_concurrent_requests = 1;
    })
    .await;
    // Every pooled connection taken: a request that needs the database waits.
    let held: Vec<_> = (0..app.db().pool_size())
        .map(|_| app.db().get().unwrap())
        .collect();

    let started = Instant::now();
    let stuck = tokio::spawn({
        let http = app.http.clone();
        let url = format!("http://{}/health", app.address);
        async move { http.get(url).send().await.unwrap() }
    });
    tokio::time::sleep(TIMEOUT / 3).await;
    // Needs no database, but the one permit is taken: it waits its turn.
    let queued = app.get("/no/such/path").await;
    let queued_at = started.elapsed();
    assert_eq!(queued.status(), 404);
    assert!(
        queued_at >= TIMEOUT - Duration::from_millis(20),
        "answered after {queued_at:?}, before the first request gave up its permit"
    );

    let stuck = stuck.await.unwrap();
    assert_eq!(stuck.status(), 503);
    assert_eq!(stuck.headers()["content-type"], "application/json");
    let body: Value = stuck.json().await.unwrap();
    assert_eq!(body["detail"], "the request took too long; try again");

    drop(held);
    assert_eq!(app.get("/health").await.status(), 200, "serving again");
    app.stop().await;
}

#[tokio::test]
async fn cors_answers_only_the_configured_origins() {
    let origin = "https://dash.example.com";
    let app = TestApp::spawn_with(SqliteLocation::Memory, None, |config| {
        config.http.cors_origins = vec![origin.to_owned()];
    })
    .await;
    let url = format!("http://{}/metrics/pr-counts", app.address);
    let allowed = app
        .http
        .get(&url)
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["access-control-allow-origin"], origin);
    let other = app
        .http
        .get(&url)
        .header("origin", "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("GET"), "{methods}");
    app.stop().await;

    let default = TestApp::spawn(SqliteLocation::Memory, None).await;
    let plain = default
        .http
        .get(format!("http://{}/health", default.address))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert!(
        plain.headers().get("access-control-allow-origin").is_none(),
        "off by default"
    );
    default.stop().await;
}

#[tokio::test]
async fn large_answers_are_gzipped_for_clients_that_ask() {
    let mock = MockGithub::start(100).await;
    mock.set_feed(&fixture_events());
    let mut app = TestApp::spawn(SqliteLocation::Memory, Some(test_poller_config(&mock.url))).await;
    app.wait_for_report(|r| r.polls >= 1 && r.events_inserted > 0)
        .await;
    let url = format!("http://{}/metrics/pr-counts", app.address);
    let plain = app.get("/metrics/pr-counts").await;
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    assert!(
        plain.len() > 1024,
        "the fixture gives a big enough answer: {}",
        plain.len()
    );

    let gzipped = app
        .http
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    let compressed = gzipped.bytes().await.unwrap();
    assert!(
        compressed.len() < plain.len(),
        "{} vs {}",
        compressed.len(),
        plain.len()
    );
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain);

    // Small answers are not worth it.
    let health = app
        .http
        .get(format!("http://{}/health", app.address))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(health.headers().get("content-encoding").is_none());
    app.stop().await;
}

#[tokio::test]
async fn retention_deletes_old_events_and_keeps_the_metrics_consistent() {
    for store in every_store() {
        eprintln!("store: {}", store.name);
        use ghmetrics::core::event::{Event, EventType};
        use ghmetrics::store::FeedPoll;
        use ghmetrics::store::sqlite::rollup_disagreement;
        const RETENTION: Duration = Duration::from_secs(3600);

        let now = chrono::Utc::now().timestamp();
        // 9,000 events over the last three hours: about 6,000 are past retention,
        // more than one batch.
        let repos = ["old/only", "mixed/a", "mixed/b"];
        let events: Vec<Event> = (0..9_000_i64)
            .map(|i| {
                let event_type = EventType::ALL[(i % 3) as usize];
                let created_at = now - 3 * 3600 + i * 3600 * 3 / 9_000;
                // "old/only" appears only in the oldest third.
                let repo = if created_at < now - 2 * 3600 {
                    repos[(i % 3) as usize]
                } else {
                    repos[1 + (i % 2) as usize]
                };
                Event {
                    id: i + 1,
                    event_type,
                    created_at,
                    repo_name: repo.to_owned(),
                    // Every fifth a GitHub App's: the bots' rollups go too.
                    actor_login: (i % 5 == 0).then(|| "app[bot]".to_owned()),
                    action: Some(if i % 4 == 0 { "closed" } else { "opened" }.to_owned()),
                    number: Some(i),
                }
            })
            .collect();
        {
            let db = store.open().await;
            db.insert_events(events.clone(), ghmetrics::store::Origin::GlobalFeed)
                .await
                .unwrap();
            for polled_at in [now - 2 * 3600, now] {
                let poll = FeedPoll {
                    polled_at,
                    feed: "global".to_owned(),
                    outcome: "ok",
                    pages: 1,
                    received: 1,
                    inserted: 1,
                    ..FeedPoll::default()
                };
                db.record_feed_poll(poll).await.unwrap();
            }
        }
        let cutoff_at_start = ghmetrics::ingest::retention::cutoff(now, RETENTION);
        let survivors: Vec<&Event> = events
            .iter()
            .filter(|e| e.created_at >= cutoff_at_start)
            .collect();
        let deleted = (events.len() - survivors.len()) as f64;
        assert!(deleted > ghmetrics::ingest::retention::BATCH as f64);

        let app = TestApp::spawn_with(store.location.clone(), None, |config| {
            config.retention = Some(RETENTION)
        })
        .await;
        let waited = Instant::now();
        // The first check runs at start; the start may fall a second after `now`.
        // The feed polls go after the events, in the same purge.
        let polls = || async {
            app.store
                .global_feed_coverage(now, 10 * 3600)
                .await
                .unwrap()
                .polls
        };
        while sample(&scrape(&app).await, "ghmetrics_retention_deleted_total").unwrap() < deleted
            || polls().await > 1
        {
            assert!(
                waited.elapsed() < Duration::from_secs(10),
                "retention did not run"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let ghmetrics::store::Store::Sqlite(db) = &app.store {
            assert_eq!(rollup_disagreement(&db.get().unwrap()).unwrap(), None);
        }
        assert_eq!(polls().await, 1, "the new feed_polls row stays");
        // The cutoff moved with the clock between `now` and the purge (by whole
        // minutes): the survivors are the newest events, as many as are stored
        // (events are 1.2 s apart, so no two share a second), and at least
        // those young enough for the cutoff of now.
        let cutoff_now =
            ghmetrics::ingest::retention::cutoff(chrono::Utc::now().timestamp(), RETENTION);
        let kept = app.store.totals().await.unwrap().events as usize;
        assert!(
            kept <= survivors.len(),
            "{kept} kept, {} were young enough",
            survivors.len()
        );
        let survivors: Vec<&Event> = events[events.len() - kept..].iter().collect();
        let young_now = events.iter().filter(|e| e.created_at >= cutoff_now).count();
        assert!(
            survivors.len() >= young_now,
            "{} kept of {young_now} young enough for the cutoff of now",
            survivors.len()
        );

        for exclude_bots in [false, true] {
            let (_, counts) = app
                .get_json(&format!(
                    "/metrics/event-counts?offset_minutes=100000&exclude_bots={exclude_bots}"
                ))
                .await;
            for event_type in EventType::ALL {
                let expected = survivors
                    .iter()
                    .filter(|e| e.event_type == event_type)
                    .filter(|e| !exclude_bots || e.actor_login.is_none())
                    .count();
                assert_eq!(
                    counts[event_type.as_str()],
                    expected as u64,
                    "{event_type:?} {exclude_bots}"
                );
            }
        }
        let (_, prs) = app.get_json("/metrics/pr-counts").await;
        assert!(prs.get("old/only").is_none(), "{prs}");
        for repo in &repos[1..] {
            let prs_of_repo = survivors
                .iter()
                .filter(|e| e.event_type == EventType::PullRequest && e.repo_name == *repo)
                .count();
            assert_eq!(prs[repo], prs_of_repo as u64, "{repo}");
            let openings: Vec<i64> = survivors
                .iter()
                .filter(|e| {
                    e.event_type == EventType::PullRequest
                        && e.repo_name == *repo
                        && e.action.as_deref() == Some("opened")
                })
                .map(|e| e.created_at)
                .collect();
            let (_, gap) = app
                .get_json(&format!("/metrics/average-pr-time?repo_name={repo}"))
                .await;
            assert_eq!(gap["pr_count"], openings.len() as u64);
            let gaps: Vec<i64> = openings.windows(2).map(|w| w[1] - w[0]).collect();
            let mean = gaps.iter().sum::<i64>() as f64 / gaps.len() as f64;
            assert!(
                (gap["average_seconds"].as_f64().unwrap() - mean).abs() < 1e-6,
                "{repo}: {gap} vs {mean}"
            );
        }
        let (_, old_only) = app
            .get_json("/metrics/average-pr-time?repo_name=old/only")
            .await;
        assert_eq!(old_only["pr_count"], 0);
        app.stop().await;
    }
}

/// Invented HTTP methods are counted under `other`: a client cannot grow
/// `/metrics` (and the process's memory) one label value at a time.
#[tokio::test]
async fn metric_labels_come_from_a_closed_set() {
    let app = TestApp::spawn(SqliteLocation::Memory, None).await;
    let invented = 200;
    for i in 0..invented {
        let method = reqwest::Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
        let answer = app
            .http
            .request(method, format!("http://{}/health", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 405);
        let path = format!("http://{}/no/such/path/{i}", app.address);
        assert_eq!(app.http.get(path).send().await.unwrap().status(), 404);
    }
    let text = scrape(&app).await;
    assert!(
        !text.contains("INVENTED"),
        "an invented method became a label"
    );
    assert!(
        !text.contains("/no/such/path"),
        "an unknown path became a label"
    );
    assert_eq!(
        sample(
            &text,
            r#"ghmetrics_http_requests_total{method="other",route="/health",status="405"}"#
        ),
        Some(f64::from(invented))
    );
    assert_eq!(
        sample(
            &text,
            r#"ghmetrics_http_requests_total{method="GET",route="(unmatched)",status="404"}"#
        ),
        Some(f64::from(invented))
    );
    app.stop().await;
}

/// Idle connections and connections that send half a request head are
/// closed after their timeouts, and past `--max-connections` a new client
/// waits for a slot instead of being refused.
#[tokio::test]
async fn idle_and_half_sent_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(SqliteLocation::Memory, None, |config| {
        config.http.connections = ghmetrics::config::ConnectionLimits {
            max_connections: 2,
            header_read_timeout: Duration::from_millis(800),
            keep_alive_timeout: Duration::from_millis(800),
            write_timeout: Duration::from_secs(30),
        };
    })
    .await;
    let started = std::time::Instant::now();
    let mut idle = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let mut half = tokio::net::TcpStream::connect(app.address).await.unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Both slots are taken: this client waits until one is freed.
    let waiting = tokio::spawn({
        let url = format!("http://{}/health", app.address);
        async move { reqwest::get(url).await.unwrap().status() }
    });
    for stream in [&mut idle, &mut half] {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
            .await
            .expect("the server closed the connection");
        // Closed without an answer (or reset): either way, gone.
        assert!(read.is_err() || buf.is_empty() || buf.starts_with(b"HTTP/1.1 408"));
    }
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert_eq!(waiting.await.unwrap(), 200);
    app.stop().await;
}
