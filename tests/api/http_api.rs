//! The HTTP contract: answers against independently computed values, 422s,
//! the chart, persistence across restarts, and analysts reading alongside.

use std::time::Duration;

use chrono::Utc;
use ghmetrics::config::SqliteLocation;
use ghmetrics::core::event::{Event, EventType};
use serde_json::{Value, json};

use crate::helpers::{Expected, MockGithub, TestApp, fixture_events, test_poller_config};
use crate::stores::{TestStore, every_store};

fn event(id: i64, event_type: EventType, repo: &str, action: &str, created_at: i64) -> Event {
    Event {
        id,
        event_type,
        created_at,
        repo_name: repo.to_owned(),
        actor_login: Some("tester".to_owned()),
        action: Some(action.to_owned()),
        number: Some(id),
    }
}

/// A service with no poller over `store`, holding `events`.
async fn app_with(store: &TestStore, events: &[Event]) -> TestApp {
    eprintln!("store: {}", store.name);
    store
        .open()
        .await
        .insert_events(events.to_vec(), ghmetrics::store::Origin::GlobalFeed)
        .await
        .unwrap();
    TestApp::spawn(store.location.clone(), None).await
}

#[tokio::test]
async fn event_counts_follow_the_window() {
    let now = Utc::now().timestamp();
    let ages_and_types = [
        (30, EventType::Watch),
        (4 * 60, EventType::Watch),
        (9 * 60, EventType::PullRequest),
        (59 * 60, EventType::Issues),
        (3 * 3600, EventType::Issues),
        (40 * 86400, EventType::PullRequest),
    ];
    let events: Vec<Event> = ages_and_types
        .iter()
        .enumerate()
        .map(|(i, (age, t))| event(i as i64 + 1, *t, "o/r", "opened", now - age))
        .collect();
    for store in every_store() {
        let app = app_with(&store, &events).await;
        for minutes in [1, 5, 10, 60, 240, 10_000_000] {
            let (status, body) = app
                .get_json(&format!("/metrics/event-counts?offset_minutes={minutes}"))
                .await;
            assert_eq!(status, 200);
            // Ages are at least 30 s away from every window edge, so the second that
            // passes between computing `now` here and in the handler cannot matter.
            let within = |t: EventType| {
                ages_and_types
                    .iter()
                    .filter(|(age, kind)| *kind == t && *age <= minutes * 60)
                    .count()
            };
            let expected = json!({
                "WatchEvent": within(EventType::Watch),
                "PullRequestEvent": within(EventType::PullRequest),
                "IssuesEvent": within(EventType::Issues),
            });
            assert_eq!(body, expected, "offset_minutes={minutes}");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn metrics_match_the_real_fixture() {
    let raw = fixture_events();
    let mock = MockGithub::start(100).await;
    // All 800 events as one feed: 8 pages, more than GitHub serves today.
    mock.set_feed(&raw);
    let expected = Expected::of(&raw);
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let mut app =
            TestApp::spawn(store.location.clone(), Some(test_poller_config(&mock.url))).await;
        app.wait_for_report(|r| r.events_inserted == expected.total())
            .await;

        let (_, counts) = app
            .get_json("/metrics/event-counts?offset_minutes=10000000")
            .await;
        let expected_counts: serde_json::Map<String, Value> = expected
            .by_type
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        assert_eq!(counts, Value::Object(expected_counts));

        // Order matters, so compare the text: most PRs first, ties by name.
        let ranked = |pairs: &[(String, u64)]| {
            let fields: Vec<String> = pairs
                .iter()
                .map(|(repo, n)| format!("{}:{n}", serde_json::to_string(repo).unwrap()))
                .collect();
            format!("{{{}}}", fields.join(","))
        };
        let body = app.get("/metrics/pr-counts").await.text().await.unwrap();
        assert_eq!(body, ranked(&expected.pr_counts));
        let top = app
            .get("/metrics/pr-counts?limit=3")
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(top, ranked(&expected.pr_counts[..3]));

        let mut checked_averages = 0;
        for (repo, times) in &expected.openings {
            let query = format!(
                "/metrics/average-pr-time?repo_name={}",
                repo.replace('/', "%2F")
            );
            let (status, body) = app.get_json(&query).await;
            assert_eq!(status, 200);
            assert_eq!(body["pr_count"], times.len());
            let last = chrono::DateTime::from_timestamp(*times.last().unwrap(), 0).unwrap();
            assert_eq!(
                body["last_opened_at"],
                last.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "{repo}"
            );
            if times.len() >= 2 {
                let mean = (times[times.len() - 1] - times[0]) as f64 / (times.len() - 1) as f64;
                let got = body["average_seconds"].as_f64().unwrap();
                assert!((got - mean).abs() < 1e-9, "{repo}: {got} vs {mean}");
                // The other figures, from the sorted gaps: the median and 90th
                // percentile interpolate between the two nearest ranks.
                let mut gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
                gaps.sort();
                let rank = |p: f64| {
                    let at = p * (gaps.len() - 1) as f64;
                    let (lo, hi) = (gaps[at.floor() as usize], gaps[at.ceil() as usize]);
                    lo as f64 + (hi - lo) as f64 * at.fract()
                };
                assert_eq!(body["median_seconds"].as_f64(), Some(rank(0.5)), "{repo}");
                assert_eq!(body["p90_seconds"].as_f64(), Some(rank(0.9)), "{repo}");
                assert_eq!(body["max_seconds"], *gaps.last().unwrap(), "{repo}");
                checked_averages += 1;
            } else {
                assert_eq!(body["average_seconds"], Value::Null);
                for figure in ["median_seconds", "p90_seconds", "max_seconds"] {
                    assert_eq!(body[figure], Value::Null, "{repo} {figure}");
                }
                assert_eq!(
                    body["message"],
                    "Only 1 PR opening(s) (PullRequestEvent with action \"opened\") found. At least 2 are required."
                );
            }
        }
        assert!(
            checked_averages >= 1,
            "the fixture has a repository with several openings"
        );
        let (_, unknown) = app
            .get_json("/metrics/average-pr-time?repo_name=no/such-repo")
            .await;
        assert_eq!(
            unknown["message"],
            "Only 0 PR opening(s) (PullRequestEvent with action \"opened\") found. At least 2 are required."
        );
        assert_eq!(unknown["average_seconds"], Value::Null);
        assert_eq!(unknown["last_opened_at"], Value::Null);

        // Every endpoint answers the same under /v1/, errors included.
        let top_repo = &expected.pr_counts[0].0;
        for path in [
            "/metrics/event-counts?offset_minutes=10000000".to_owned(),
            "/metrics/event-counts?offset_minutes=0".to_owned(),
            "/metrics/pr-counts".to_owned(),
            format!("/metrics/average-pr-time?repo_name={top_repo}"),
            "/metrics/visualization?offset_minutes=10000000".to_owned(),
            "/health".to_owned(),
            "/no/such/path".to_owned(),
        ] {
            let seed = app.get(&path).await;
            let versioned = app.get(&format!("/v1{path}")).await;
            assert_eq!(seed.status(), versioned.status(), "{path}");
            if path != "/health" {
                // /health carries the time of the last poll, which may move.
                assert_eq!(
                    seed.bytes().await.unwrap(),
                    versioned.bytes().await.unwrap(),
                    "{path}"
                );
            }
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn in_memory_database_is_shared_by_concurrent_requests() {
    let raw = fixture_events();
    let mock = MockGithub::start(100).await;
    mock.set_feed(&raw[..300]);
    let expected = Expected::of(&raw[..300]);
    let mut app = TestApp::spawn(SqliteLocation::Memory, Some(test_poller_config(&mock.url))).await;
    app.wait_for_report(|r| r.events_inserted == expected.total())
        .await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (http, url) = (app.http.clone(), format!("http://{}/health", app.address));
        requests.spawn(async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        });
    }
    while let Some(health) = requests.join_next().await {
        assert_eq!(
            health.unwrap()["events_stored"],
            expected.total(),
            "every pooled connection sees one database"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn chart_is_a_png_of_the_window() {
    let now = Utc::now().timestamp();
    let events: Vec<Event> = (1..=12)
        .map(|i| {
            event(
                i,
                if i <= 8 {
                    EventType::Watch
                } else {
                    EventType::Issues
                },
                "o/r",
                "started",
                now - 60,
            )
        })
        .collect();
    for store in every_store() {
        let app = app_with(&store, &events).await;
        for query in ["", "?offset_minutes=5", "?offset_minutes=10000000"] {
            let response = app.get(&format!("/metrics/visualization{query}")).await;
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["content-type"], "image/png");
            let bytes = response.bytes().await.unwrap();
            let mut reader = png::Decoder::new(std::io::Cursor::new(&bytes[..]))
                .read_info()
                .unwrap();
            let mut pixels = vec![0; reader.output_buffer_size()];
            let info = reader.next_frame(&mut pixels).unwrap();
            assert!(info.width >= 400 && info.height >= 300);
            let first = &pixels[..3];
            let distinct = pixels[..info.buffer_size()]
                .chunks_exact(3)
                .filter(|p| p != &first)
                .count();
            assert!(distinct > 1000, "{query}: the image is blank");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn restart_keeps_the_data_and_analysts_can_read_alongside() {
    let raw = fixture_events();
    let mock = MockGithub::start(100).await;
    mock.set_feed(&raw[..300]);
    let expected = Expected::of(&raw[..300]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/events.db");
    let location = SqliteLocation::File(path.clone());

    let mut app = TestApp::spawn(location.clone(), Some(test_poller_config(&mock.url))).await;
    app.wait_for_report(|r| r.events_inserted == expected.total())
        .await;
    // An analyst's own connection while the service runs: WAL, and an answer.
    let analyst = rusqlite::Connection::open(&path).unwrap();
    let mode: String = analyst
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let count: u64 = analyst
        .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
        .unwrap();
    assert_eq!(count, expected.total());
    let gaps: u64 = analyst
        .query_row(
            "SELECT count(*) FROM pr_gaps WHERE gap_seconds IS NOT NULL",
            [],
            |row| row.get(0),
        )
        .unwrap();
    let expected_gaps: usize = expected.openings.values().map(|t| t.len() - 1).sum();
    assert_eq!(gaps, expected_gaps as u64);
    app.stop().await;

    let restarted = TestApp::spawn(location, None).await;
    let (_, health) = restarted.get_json("/health").await;
    assert_eq!(health["events_stored"], expected.total());
    assert_eq!(health["polling"], false);
    let (_, counts) = restarted
        .get_json("/metrics/event-counts?offset_minutes=10000000")
        .await;
    assert_eq!(counts["WatchEvent"], expected.by_type["WatchEvent"]);
    drop(analyst);
    restarted.stop().await;
}

#[tokio::test]
async fn timeline_puts_events_in_their_buckets_as_png_or_svg() {
    let now = Utc::now().timestamp();
    let mut events: Vec<Event> = (1..=3)
        .map(|i| event(i, EventType::Watch, "o/r", "started", now - 5 * 60))
        .collect();
    events
        .extend((4..=5).map(|i| event(i, EventType::PullRequest, "o/r", "opened", now - 65 * 60)));
    for store in every_store() {
        let app = app_with(&store, &events).await;

        let png = app.get("/metrics/visualization/timeline").await;
        assert_eq!(png.status(), 200);
        assert_eq!(png.headers()["content-type"], "image/png");
        assert!(png.bytes().await.unwrap().starts_with(b"\x89PNG"));

        let svg = app
            .get("/metrics/visualization/timeline?offset_minutes=120&bucket_minutes=60&format=svg")
            .await;
        assert_eq!(svg.headers()["content-type"], "image/svg+xml");
        let svg = svg.text().await.unwrap();
        // Two buckets, the last ending now: PR openings in the first, stars in the second.
        let line_of = |colour: &str| -> Vec<f64> {
            let line = svg
                .lines()
                .find(|l| l.contains(&format!("stroke=\"{colour}\" stroke-width=\"2\"")))
                .unwrap_or_else(|| panic!("no {colour} line"));
            let points = line
                .split("points=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            points
                .split_whitespace()
                .map(|p| p.split_once(',').unwrap().1.parse().unwrap())
                .collect()
        };
        let (watch, prs, issues) = (line_of("#F2A900"), line_of("#1F77B4"), line_of("#2CA02C"));
        assert_eq!((watch.len(), prs.len(), issues.len()), (2, 2, 2));
        // SVG y grows downwards: higher counts have smaller y.
        assert_eq!(issues[0], issues[1], "no issues: flat at zero");
        assert!(
            watch[1] < prs[1] && prs[0] < watch[0],
            "watch {watch:?} prs {prs:?}"
        );
        assert_eq!(watch[0], issues[0]);
        assert_eq!(prs[1], issues[1]);

        let bars = app.get("/metrics/visualization?format=svg").await;
        assert_eq!(bars.headers()["content-type"], "image/svg+xml");
        assert!(
            bars.text()
                .await
                .unwrap()
                .contains("GitHub events in the last hour")
        );
        app.stop().await;
    }
}

/// Every window parameter has one documented maximum; at it every endpoint
/// answers (the timeline's work is bounded by its points, not the window's
/// hours), and past it every endpoint says 422.
#[tokio::test]
async fn every_window_has_the_same_documented_maximum() {
    use ghmetrics::http::api::MAX_OFFSET_MINUTES;
    let raw = &fixture_events()[..300];
    let events: Vec<Event> = raw
        .iter()
        .filter_map(|e| {
            ghmetrics::core::event::parse_event(&serde_json::to_vec(e).unwrap()).unwrap()
        })
        .collect();
    for store in every_store() {
        let app = app_with(&store, &events).await;
        let (_, spec) = app.get_json("/openapi.json").await;
        let mut documented = 0;
        for (path, item) in spec["paths"].as_object().unwrap() {
            for parameter in item["get"]["parameters"].as_array().into_iter().flatten() {
                if parameter["name"] == "offset_minutes" {
                    assert_eq!(
                        parameter["schema"]["maximum"],
                        json!(MAX_OFFSET_MINUTES),
                        "{path}"
                    );
                    documented += 1;
                }
            }
        }
        assert_eq!(
            documented, 14,
            "the six windowed endpoints and coverage, plain and /v1"
        );
        let stored = app
            .get_json("/metrics/event-counts?offset_minutes=60000000")
            .await;
        assert_eq!(stored.0, 422);
        for path in [
            "/metrics/event-counts?",
            "/metrics/visualization?",
            "/metrics/visualization/timeline?",
            "/metrics/pr-counts?",
            "/metrics/top?",
            "/metrics/average-pr-time?repo_name=a/b&",
            "/coverage?",
        ] {
            let at_max = app
                .get(&format!("{path}offset_minutes={MAX_OFFSET_MINUTES}"))
                .await;
            assert_eq!(at_max.status(), 200, "{path}");
            let past = app
                .get_json(&format!("{path}offset_minutes={}", MAX_OFFSET_MINUTES + 1))
                .await;
            assert_eq!(past.0, 422, "{path}");
        }
        // The century-wide window counts every stored event.
        let (_, counts) = app
            .get_json(&format!(
                "/metrics/event-counts?offset_minutes={MAX_OFFSET_MINUTES}"
            ))
            .await;
        let expected = Expected::of(raw);
        for (kind, n) in &expected.by_type {
            assert_eq!(counts[kind], *n, "{kind}");
        }
        // Widths the document allows are served, fitted to the window.
        for query in [
            "offset_minutes=60&bucket_minutes=61",
            "offset_minutes=100000&bucket_minutes=1",
        ] {
            let answer = app
                .get(&format!(
                    "/metrics/visualization/timeline?{query}&format=svg"
                ))
                .await;
            assert_eq!(answer.status(), 200, "{query}");
        }
        // The worst case of the timeline: a century in 1,000 points.
        let bucket = MAX_OFFSET_MINUTES / 1000;
        let timeline = app
        .get(&format!(
            "/metrics/visualization/timeline?offset_minutes={MAX_OFFSET_MINUTES}&bucket_minutes={bucket}&format=svg"
        ))
        .await;
        assert_eq!(timeline.status(), 200);
        app.stop().await;
    }
}

#[tokio::test]
async fn pr_counts_stream_many_repositories_in_rank_order() {
    // Enough repositories that the answer spans many 64 KiB chunks.
    let repos = 12_000;
    let mut events = Vec::new();
    let mut id = 0;
    for r in 0..repos {
        for _ in 0..(r % 5 + 1) {
            id += 1;
            events.push(event(
                id,
                EventType::PullRequest,
                &format!("owner-{r}/repo\"{r}"),
                "closed",
                1_600_000_000,
            ));
        }
    }
    let mut expected: Vec<(String, u64)> = (0..repos)
        .map(|r| (format!("owner-{r}/repo\"{r}"), (r % 5 + 1) as u64))
        .collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for store in every_store() {
        let app = app_with(&store, &events).await;

        let response = app.get("/metrics/pr-counts").await;
        assert_eq!(response.headers()["content-type"], "application/json");
        let body = response.text().await.unwrap();
        assert!(body.len() > 4 * 64 * 1024, "{} bytes", body.len());
        // Keys in document order: deserialize as a sequence of pairs.
        let ordered: Vec<(String, u64)> = ordered_pairs(&body);
        assert_eq!(ordered, expected);

        let top: Vec<(String, u64)> = ordered_pairs(
            &app.get("/metrics/pr-counts?limit=7")
                .await
                .text()
                .await
                .unwrap(),
        );
        assert_eq!(top, expected[..7]);
        app.stop().await;
    }
}

/// Clients that start reading a large pr-counts answer and stop must not pin
/// the connection pool: with more such clients than pooled connections, every
/// other endpoint still answers at once, and a full read is still exact.
#[tokio::test]
async fn slow_readers_of_pr_counts_do_not_hold_the_pool() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // About 8 MB: more than the kernel buffers between server and client.
    let repos = 80_000;
    let long = "r".repeat(90);
    let events: Vec<Event> = (0..repos)
        .map(|r| {
            let repo = format!("owner{r:06}/{long}");
            event(
                r + 1,
                EventType::PullRequest,
                &repo,
                "opened",
                1_600_000_000,
            )
        })
        .collect();
    {
        let app = app_with(&TestStore::sqlite(), &events).await;
        let pool = app.db().pool_size() as usize;
        let mut stalled = Vec::new();
        for _ in 0..pool + 2 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            let mut stream = socket.connect(app.address).await.unwrap();
            stream
                .write_all(b"GET /metrics/pr-counts HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut first = [0u8; 100];
            stream.read_exact(&mut first).await.unwrap();
            assert!(first.starts_with(b"HTTP/1.1 200"));
            stalled.push(stream); // and never read again
        }
        for path in ["/health", "/metrics/event-counts?offset_minutes=60"] {
            let answer = tokio::time::timeout(Duration::from_secs(5), app.get(path))
                .await
                .unwrap_or_else(|_| panic!("{path} waited for a pooled connection"));
            assert_eq!(answer.status(), 200, "{path}");
        }
        let full = app.get("/metrics/pr-counts").await;
        let length: usize = full.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body = full.text().await.unwrap();
        assert_eq!(body.len(), length);
        assert!(
            length > 8 << 20,
            "{length} bytes: larger than socket buffers"
        );
        assert_eq!(ordered_pairs(&body).len(), repos as usize);
        drop(stalled);
        app.stop().await;
    }
}

/// A JSON object's entries in document order (serde_json's Map would sort them).
fn ordered_pairs(json: &str) -> Vec<(String, u64)> {
    struct Pairs(Vec<(String, u64)>);
    impl<'de> serde::Deserialize<'de> for Pairs {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl<'de> serde::de::Visitor<'de> for Visitor {
                type Value = Pairs;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Pairs, A::Error> {
                    let mut pairs = Vec::new();
                    while let Some(entry) = map.next_entry()? {
                        pairs.push(entry);
                    }
                    Ok(Pairs(pairs))
                }
            }
            d.deserialize_map(Visitor)
        }
    }
    serde_json::from_str::<Pairs>(json).unwrap().0
}

/// Answers are cached, but never stale: after a write by another connection
/// (as an import in another process makes), every endpoint's next answer
/// shows it, with no wait.
#[tokio::test]
async fn every_cached_answer_follows_a_write_from_another_connection() {
    let now = Utc::now().timestamp();
    let events = [
        event(1, EventType::PullRequest, "a/b", "opened", now - 600),
        event(2, EventType::PullRequest, "a/b", "opened", now - 300),
        event(3, EventType::Watch, "a/b", "started", now - 200),
    ];
    for store in every_store() {
        let app = app_with(&store, &events).await;
        let paths = [
            "/metrics/event-counts?offset_minutes=60",
            "/metrics/average-pr-time?repo_name=a/b",
            "/metrics/pr-counts?limit=100",
            "/metrics/pr-counts",
            "/health",
            "/metrics/visualization?format=svg",
            "/metrics/visualization/timeline?format=svg",
        ];
        let mut before = Vec::new();
        for path in paths {
            let first = app.get(path).await.bytes().await.unwrap();
            let again = app.get(path).await.bytes().await.unwrap();
            assert_eq!(first, again, "{path}: the same data, the same answer");
            before.push(first);
        }
        // Another handle on the same store: the service learns of the write
        // only through the store.
        let other = store.open().await;
        other
            .insert_events(
                vec![event(4, EventType::PullRequest, "a/b", "opened", now - 100)],
                ghmetrics::store::Origin::GlobalFeed,
            )
            .await
            .unwrap();
        for (path, old) in paths.iter().zip(&before) {
            let after = app.get(path).await.bytes().await.unwrap();
            assert_ne!(&after, old, "{path} still answers as before the write");
        }
        let (_, counts) = app
            .get_json("/metrics/event-counts?offset_minutes=60")
            .await;
        assert_eq!(counts["PullRequestEvent"], 3);
        let (_, gap) = app.get_json("/metrics/average-pr-time?repo_name=a/b").await;
        assert_eq!(gap["pr_count"], 3);
        assert_eq!(gap["average_seconds"], 250.0);
        let (_, health) = app.get_json("/health").await;
        assert_eq!(health["events_stored"], 4);
        app.stop().await;
    }
}

/// An answer about "the last N minutes" moves with the clock: an event that
/// leaves the window leaves the next answer, with no write in between.
#[tokio::test]
async fn a_passing_second_changes_the_next_answer() {
    let now = Utc::now().timestamp();
    // Inside the one-minute window for about one more second.
    let leaving = now - 59;
    let store = TestStore::sqlite();
    let app = app_with(
        &store,
        &[event(1, EventType::Watch, "a/b", "started", leaving)],
    )
    .await;
    let (_, counts) = app.get_json("/metrics/event-counts?offset_minutes=1").await;
    if Utc::now().timestamp() <= leaving + 60 {
        assert_eq!(counts["WatchEvent"], 1, "still inside the window");
    }
    while Utc::now().timestamp() <= leaving + 60 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, counts) = app.get_json("/metrics/event-counts?offset_minutes=1").await;
    assert_eq!(counts["WatchEvent"], 0, "the event has left the window");
    app.stop().await;
}
