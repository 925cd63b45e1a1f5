//! The poller against the mock GitHub: pagination, dedupe, ETags, faults.

use std::sync::Arc;
use std::time::Duration;

use ghmetrics::config::SqliteLocation;
use ghmetrics::ingest::github::{FetchError, PollError, PollStatus, Poller};
use ghmetrics::store::Store;
use ghmetrics::store::sqlite::{Sqlite, stored_event_count};

use crate::helpers::{Expected, Fault, MockGithub, TestApp, fixture_events, test_poller_config};
use crate::stores::every_store;

fn stored(db: &Sqlite) -> u64 {
    stored_event_count(&db.get().unwrap()).unwrap()
}

#[tokio::test]
async fn service_follows_pages_dedupes_overlaps_and_honours_the_etag() {
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let events = fixture_events();
        let mock = MockGithub::start(100).await;
        // First the older 300 events (3 pages), then a feed that moved on by 150.
        let first_feed = &events[300..600];
        let second_feed = &events[150..450];
        mock.set_feed(first_feed);
        let mut app =
            TestApp::spawn(store.location.clone(), Some(test_poller_config(&mock.url))).await;

        let expected_first = Expected::of(first_feed);
        app.wait_for_report(|r| r.events_inserted == expected_first.total())
            .await;
        let first_poll: Vec<usize> = mock.seen().iter().map(|r| r.page).collect();
        assert_eq!(first_poll, [1, 2, 3], "all pages of the first poll");

        mock.set_feed(second_feed);
        let expected_all = Expected::of(events[150..600].iter());
        let report = app
            .wait_for_report(|r| r.events_inserted >= expected_all.total())
            .await;
        assert_eq!(
            report.events_inserted,
            expected_all.total(),
            "overlap stored once"
        );

        // The feed stands still: the next polls are conditional and answered 304.
        let polls_so_far = report.polls;
        app.wait_for_report(|r| r.polls >= polls_so_far + 2).await;
        let seen = mock.seen();
        let last = seen.last().unwrap();
        assert_eq!(last.status, 304);
        assert_eq!(last.header("if-none-match"), Some(mock.etag().as_str()));
        let after_304: Vec<_> = seen.iter().skip_while(|r| r.status != 304).collect();
        assert!(
            after_304.iter().all(|r| r.page == 1),
            "no later pages after a 304"
        );

        let (status, counts) = app
            .get_json("/metrics/event-counts?offset_minutes=10000000")
            .await;
        assert_eq!(status, 200);
        for (kind, n) in &expected_all.by_type {
            assert_eq!(counts[kind], *n, "{kind}");
        }
        let (_, health) = app.get_json("/health").await;
        assert_eq!(health["events_stored"], expected_all.total());
        assert_eq!(health["last_poll_error"], serde_json::Value::Null);
        app.stop().await;
    }
}

/// One poll whose first request meets `fault`.
async fn fail_with(mock: &MockGithub, poller: &mut Poller, fault: Fault) -> PollError {
    mock.push_faults([fault]);
    poller.poll_once().await.unwrap_err()
}

#[tokio::test]
async fn poll_once_reports_each_fault_and_waits_as_asked() {
    let events = fixture_events();
    let mock = MockGithub::start(100).await;
    mock.set_feed(&events[..250]);
    let db = Sqlite::open(&SqliteLocation::Memory).unwrap();
    let mut poller = Poller::new(
        &test_poller_config(&mock.url),
        Store::Sqlite(db.clone()),
        Arc::new(PollStatus::default()),
    )
    .unwrap();

    let error = fail_with(&mock, &mut poller, Fault::Status(500)).await;
    assert_eq!(error.requested_wait(), None, "{error}");
    let error = fail_with(&mock, &mut poller, Fault::Status(503)).await;
    assert!(error.to_string().contains("503"), "{error}");
    // A poller of its own: after this answer its next request rightly waits
    // two minutes for the reset.
    let mut exhausted = Poller::new(
        &test_poller_config(&mock.url),
        Store::Sqlite(db.clone()),
        Arc::new(PollStatus::default()),
    )
    .unwrap();
    let error = fail_with(
        &mock,
        &mut exhausted,
        Fault::RateLimitReset { reset_in_secs: 120 },
    )
    .await;
    let wait = error.requested_wait().unwrap();
    assert!((119..=120).contains(&wait.as_secs()), "{wait:?}");
    let error = fail_with(
        &mock,
        &mut poller,
        Fault::RetryAfter {
            status: 429,
            secs: 7,
        },
    )
    .await;
    assert_eq!(error.requested_wait(), Some(Duration::from_secs(7)));
    let error = fail_with(
        &mock,
        &mut poller,
        Fault::RetryAfter {
            status: 403,
            secs: 3,
        },
    )
    .await;
    assert_eq!(error.requested_wait(), Some(Duration::from_secs(3)));
    let error = fail_with(&mock, &mut poller, Fault::Status(403)).await;
    assert_eq!(error.requested_wait(), None, "a plain 403 backs off");
    for body in [
        "not json",
        r#"{"message":"Server Error"}"#,
        r#"[{"id":"1","type":"#,
    ] {
        let error = fail_with(&mock, &mut poller, Fault::Body(body)).await;
        assert!(
            matches!(
                error,
                PollError::Fetch {
                    source: FetchError::MalformedBody(_),
                    ..
                }
            ),
            "{body}: {error}"
        );
    }
    let error = fail_with(&mock, &mut poller, Fault::Delay(Duration::from_secs(4))).await;
    assert!(
        matches!(
            error,
            PollError::Fetch {
                source: FetchError::Transport(_),
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(stored(&db), 0, "nothing stored from failed first pages");

    // Page 1 arrives, page 2 fails: page 1 is kept, and the next poll fetches
    // everything again (no 304) without storing anything twice.
    mock.push_faults([Fault::Pass, Fault::Status(502)]);
    let error = poller.poll_once().await.unwrap_err();
    let PollError::Fetch {
        page: 2,
        stored: kept,
        ..
    } = error
    else {
        panic!("expected a page-2 failure: {error}");
    };
    assert_eq!(kept.inserted(), Expected::of(&events[..100]).total());
    assert_eq!(stored(&db), kept.inserted());

    let outcome = poller.poll_once().await.unwrap();
    let expected = Expected::of(&events[..250]);
    assert_eq!(outcome.pages, 3);
    assert_eq!(outcome.received, 250);
    assert_eq!(
        outcome.stored.inserted() + Expected::of(&events[..100]).total(),
        expected.total()
    );
    assert_eq!(stored(&db), expected.total());
    assert_eq!(
        outcome.next_poll_in,
        Duration::from_secs(1),
        "X-Poll-Interval"
    );

    let again = poller.poll_once().await.unwrap();
    assert!(again.not_modified());
    assert_eq!(stored(&db), expected.total());
    let conn = db.get().unwrap();
    assert_eq!(
        ghmetrics::store::sqlite::rollup_disagreement(&conn).unwrap(),
        None
    );
    let truth: u64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(truth, expected.total());
}

#[tokio::test]
async fn service_waits_out_faults_then_catches_up() {
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let events = fixture_events();
        let mock = MockGithub::start(100).await;
        mock.set_feed(&events[..300]);
        mock.push_faults([
            Fault::Status(500),
            Fault::RetryAfter {
                status: 429,
                secs: 1,
            },
            Fault::Body("<html>upstream error</html>"),
            Fault::RateLimitReset { reset_in_secs: 2 },
        ]);
        let mut app =
            TestApp::spawn(store.location.clone(), Some(test_poller_config(&mock.url))).await;
        let expected = Expected::of(&events[..300]);
        let report = app
            .wait_for_report(|r| {
                r.events_inserted == expected.total() && r.last_poll_error.is_none()
            })
            .await;
        assert!(report.polls >= 5, "four failures, then success: {report:?}");

        let seen = mock.seen();
        let gap_after = |status: u16| {
            let i = seen.iter().position(|r| r.status == status).unwrap();
            seen[i + 1].at - seen[i].at
        };
        assert!(
            gap_after(429) >= Duration::from_millis(950),
            "Retry-After: 1 honoured"
        );
        assert!(
            gap_after(403) >= Duration::from_millis(950),
            "rate-limit reset honoured"
        );

        let (_, counts) = app
            .get_json("/metrics/event-counts?offset_minutes=10000000")
            .await;
        for (kind, n) in &expected.by_type {
            assert_eq!(counts[kind], *n, "{kind} stored exactly once");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn requests_carry_githubs_headers_and_the_token_stays_home() {
    let events = fixture_events();
    let mock = MockGithub::start(100).await;
    mock.set_feed(&events[..150]);
    // Page 2's link points at another origin (same server, other host name).
    let other_origin = mock.url.replace("127.0.0.1", "localhost");
    mock.set_link_base(&other_origin);
    mock.push_faults([Fault::Status(500)]);
    let mut config = test_poller_config(&mock.url);
    config.token = ghmetrics::config::GithubToken::new("t0ken-secret-value");
    let db = Sqlite::open(&SqliteLocation::Memory).unwrap();
    let mut poller = Poller::new(
        &config,
        Store::Sqlite(db.clone()),
        Arc::new(PollStatus::default()),
    )
    .unwrap();

    let error = poller.poll_once().await.unwrap_err();
    assert!(!format!("{error} {error:?}").contains("t0ken"), "{error:?}");
    poller.poll_once().await.unwrap();
    // The Link to another origin is not followed: only page 1 is stored.
    assert_eq!(stored(&db), Expected::of(&events[..100]).total());

    let seen = mock.seen();
    let first = &seen[0];
    assert_eq!(
        first.header("authorization"),
        Some("Bearer t0ken-secret-value")
    );
    assert!(
        first
            .header("user-agent")
            .unwrap()
            .starts_with("ghmetrics/")
    );
    assert_eq!(first.header("accept"), Some("application/vnd.github+json"));
    assert_eq!(first.header("x-github-api-version"), Some("2022-11-28"));
    assert!(
        seen.iter().all(|r| r.page != 2),
        "a Link to another origin is never fetched, so no token can go there"
    );
    // On the API's own origin the link is followed.
    mock.set_link_base(&mock.url);
    mock.set_feed(&events[100..250]);
    poller.poll_once().await.unwrap();
    assert!(mock.seen().iter().any(|r| r.page == 2));
    assert_eq!(stored(&db), Expected::of(&events[..250]).total());
}

#[tokio::test]
async fn a_malformed_event_is_skipped_and_counted_not_the_page() {
    let mut feed = fixture_events()[..120].to_vec();
    let tracked_position = feed.iter().position(|e| e["type"] == "WatchEvent").unwrap();
    let mut broken = feed[tracked_position].clone();
    broken.as_object_mut().unwrap().remove("id");
    let mut bad_time = feed[tracked_position].clone();
    bad_time["id"] = serde_json::json!("1");
    bad_time["created_at"] = serde_json::json!("not a time");
    let mut no_repo = feed[tracked_position].clone();
    no_repo["id"] = serde_json::json!("2");
    no_repo.as_object_mut().unwrap().remove("repo");
    // Longer than GitHub allows a repository name: never stored.
    let mut long_name = feed[tracked_position].clone();
    long_name["id"] = serde_json::json!("3");
    long_name["repo"]["name"] = serde_json::json!(format!("o/{}", "r".repeat(200_000)));
    feed.splice(5..5, [broken, bad_time, no_repo, long_name]);
    let mock = MockGithub::start(100).await;
    mock.set_feed(&feed);
    let mut app = TestApp::spawn(SqliteLocation::Memory, Some(test_poller_config(&mock.url))).await;
    let expected = Expected::of(&fixture_events()[..120]).total();
    let report = app.wait_for_report(|r| r.polls >= 1).await;
    assert_eq!(
        (report.events_inserted, report.events_malformed),
        (expected, 4)
    );
    let (_, health) = app.get_json("/health").await;
    assert_eq!(health["events_malformed"], 4);
    assert_eq!(health["events_stored"], expected);
    app.stop().await;
}

/// Another writer (an import's long batch) holds the write lock for longer
/// than SQLite's busy timeout: start-up and the first poll wait their turn,
/// and the poll's events and its `feed_polls` row are all stored.
#[tokio::test]
async fn polls_wait_for_another_writer_instead_of_dropping_events() {
    let events = fixture_events();
    let mock = MockGithub::start(100).await;
    mock.set_feed(&events[..100]);
    mock.set_repo_feed("a/b", &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    drop(Sqlite::open(&SqliteLocation::File(path.clone())).unwrap());
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked_tx.send(()).unwrap();
        // Longer than the 5 s busy timeout.
        std::thread::sleep(Duration::from_secs(7));
        conn.execute_batch("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();
    let mut config = test_poller_config(&mock.url);
    config.watched = vec!["a/b".parse().unwrap()];
    let mut app = TestApp::spawn(
        SqliteLocation::File(dir.path().join("events.db")),
        Some(config),
    )
    .await;
    let expected = Expected::of(&events[..100]);
    let report = app.wait_for_report(|r| r.polls >= 1).await;
    holder.join().unwrap();
    assert_eq!(report.last_poll_error, None);
    assert_eq!(stored(app.db()), expected.total());
    let global_polls: i64 = app
        .db()
        .get()
        .unwrap()
        .query_row(
            "SELECT count(*) FROM feed_polls WHERE feed = 'global' AND outcome = 'ok'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(global_polls, 1);
    app.stop().await;
}

/// `/health` is `degraded` (still 200) while every poll fails, and `ok` again
/// once a poll brings recent events; the failure is reported by kind only.
#[tokio::test]
async fn health_is_degraded_while_polls_fail_and_recovers() {
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let mut recent = fixture_events()[..100].to_vec();
        let now = chrono::Utc::now();
        for event in &mut recent {
            event["created_at"] = serde_json::json!(now.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
        let mock = MockGithub::start(100).await;
        mock.set_feed(&recent);
        mock.push_faults([Fault::Status(502), Fault::Status(502), Fault::Status(502)]);
        let mut app =
            TestApp::spawn(store.location.clone(), Some(test_poller_config(&mock.url))).await;
        app.wait_for_report(|r| r.consecutive_failures == 3).await;
        let (status, health) = app.get_json("/health").await;
        assert_eq!(status, 200);
        assert_eq!(health["status"], "degraded", "{health}");
        assert_eq!(health["last_poll_error"], "http_status");
        assert!(!health.to_string().contains(&mock.url), "{health}");
        app.wait_for_report(|r| r.consecutive_failures == 0 && r.polls >= 4)
            .await;
        let (_, health) = app.get_json("/health").await;
        assert_eq!(health["status"], "ok", "{health}");
        assert_eq!(health["last_poll_error"], serde_json::Value::Null);
        app.stop().await;
    }
}

/// Events dated after now (beyond a few minutes of clock skew) are skipped
/// as malformed: an event of the year 9999 would count as recent for ever.
#[tokio::test]
async fn events_from_the_future_are_not_stored() {
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let mut feed = fixture_events()[..100].to_vec();
        let tracked = feed.iter().position(|e| e["type"] == "WatchEvent").unwrap();
        feed[tracked]["created_at"] = serde_json::json!("9999-12-31T23:59:59Z");
        let mock = MockGithub::start(100).await;
        mock.set_feed(&feed);
        let config = test_poller_config(&mock.url);
        let db = store.open().await;
        let mut poller = Poller::new(&config, db.clone(), Arc::new(PollStatus::default())).unwrap();
        let outcome = poller.poll_once().await.unwrap();
        assert_eq!(outcome.malformed, 1);
        let mut kept = feed.clone();
        kept.remove(tracked);
        assert_eq!(
            db.totals().await.unwrap().events,
            Expected::of(&kept).total()
        );
    }
}

/// A page larger than any real one (here 20 MB, past the 16 MiB cap) is
/// abandoned as a failed poll rather than read into memory, and the next
/// poll stores the feed.
#[tokio::test]
async fn an_oversized_page_is_a_failed_poll_not_a_memory_blowup() {
    let events = fixture_events();
    let mock = MockGithub::start(100).await;
    mock.set_feed(&events[..100]);
    mock.push_faults([Fault::LargeBody(20 << 20)]);
    let config = test_poller_config(&mock.url);
    let db = Sqlite::open(&SqliteLocation::Memory).unwrap();
    let mut poller = Poller::new(
        &config,
        Store::Sqlite(db.clone()),
        Arc::new(PollStatus::default()),
    )
    .unwrap();
    let error = poller.poll_once().await.unwrap_err();
    assert!(
        matches!(
            &error,
            PollError::Fetch {
                source: FetchError::TooLarge { .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.kind().as_str(), "body_too_large");
    poller.poll_once().await.unwrap();
    assert_eq!(stored(&db), Expected::of(&events[..100]).total());
}

/// Under a tight rate budget the pages of one poll are still fetched back to
/// back (the budget spaces polls, not pages): against a feed that moves with
/// time (100 events a second), each poll's three pages line up and cover
/// nearly 300 distinct events. Spaced 0.6 s apart, as the budget would space
/// single requests, they would overlap by about 60 events each (about 180
/// distinct); the bound leaves room for pages slowed to 250 ms by a busy machine.
#[tokio::test]
async fn a_poll_covers_its_pages_of_a_moving_feed() {
    let templates: Vec<serde_json::Value> = fixture_events()[..50].to_vec();
    let mock = MockGithub::start(100).await;
    mock.set_moving_feed(&templates, 100.0);
    // 20 requests left for 12 s: 0.6 s per request.
    mock.set_quota(20, 12);
    let config = test_poller_config(&mock.url);
    let db = Sqlite::open(&SqliteLocation::Memory).unwrap();
    let mut poller =
        Poller::new(&config, Store::Sqlite(db), Arc::new(PollStatus::default())).unwrap();
    for poll in 1..=2 {
        let outcome = poller.poll_once().await.unwrap();
        assert_eq!(outcome.pages, 3, "poll {poll}");
        let mut ids = outcome.ids.clone();
        ids.sort_unstable();
        ids.dedup();
        assert!(
            ids.len() >= 250,
            "poll {poll}: {} distinct events of {} received",
            ids.len(),
            outcome.received
        );
    }
}
