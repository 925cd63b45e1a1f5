//! Watched repositories and the coverage of the global feed (issue 5).

use std::sync::Arc;
use std::time::Duration;

use ghmetrics::config::SqliteLocation;
use ghmetrics::ingest::github::{PollStatus, Poller};
use ghmetrics::store::Store;
use ghmetrics::store::sqlite::{Sqlite, global_feed_coverage, rollup_disagreement};
use serde_json::{Value, json};

use crate::helpers::{Expected, MockGithub, TestApp, fixture_events, test_poller_config};
use crate::stores::every_store;

const TRACKED: [&str; 3] = ["WatchEvent", "PullRequestEvent", "IssuesEvent"];

/// Copies of `templates` with the given ids (newest first, like GitHub's feeds).
fn with_ids(templates: &[Value], ids: impl IntoIterator<Item = i64>) -> Vec<Value> {
    templates
        .iter()
        .cycle()
        .zip(ids)
        .map(|(template, id)| {
            let mut event = template.clone();
            event["id"] = json!(id.to_string());
            event
        })
        .collect()
}

#[tokio::test]
async fn watched_repositories_are_polled_completely_and_stored_once() {
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let events = fixture_events();
        let global = &events[..300];
        // A repository the global feed shows a little of: its own feed has those
        // events too, and PR openings the global feed never showed.
        let watched_repo = global
            .iter()
            .find(|e| e["type"] == "PullRequestEvent")
            .and_then(|e| e["repo"]["name"].as_str())
            .unwrap()
            .to_owned();
        let seen_globally: Vec<Value> = global
            .iter()
            .filter(|e| e["repo"]["name"] == watched_repo.as_str())
            .cloned()
            .collect();
        let opening = events
            .iter()
            .find(|e| e["type"] == "PullRequestEvent" && e["payload"]["action"] == "opened")
            .unwrap();
        let mut only_in_repo_feed = with_ids(
            std::slice::from_ref(opening),
            (0..150).map(|i| 99_000_000_000 - i),
        );
        for (i, event) in only_in_repo_feed.iter_mut().enumerate() {
            event["repo"]["name"] = json!(watched_repo);
            event["created_at"] = json!(format!(
                "2025-01-01T{:02}:{:02}:00Z",
                10 - i / 60,
                59 - i % 60
            ));
        }
        let repo_feed: Vec<Value> = only_in_repo_feed
            .iter()
            .chain(&seen_globally)
            .cloned()
            .collect();

        let mock = MockGithub::start(100).await;
        mock.set_feed(global);
        mock.set_repo_feed(&watched_repo, &repo_feed);
        let mut config = test_poller_config(&mock.url);
        config.watched = vec![
            watched_repo.parse().unwrap(),
            "gone/repository".parse().unwrap(),
        ];
        let mut app = TestApp::spawn(store.location.clone(), Some(config)).await;

        let expected = Expected::of(global.iter().chain(&repo_feed));
        app.wait_for_report(|r| r.events_inserted == expected.total())
            .await;
        // Both feeds polled again: conditional requests, each with its own ETag.
        let repo_path = format!("/repos/{watched_repo}/events");
        for _ in 0..200 {
            let seen = mock.seen();
            let repo_polls = seen
                .iter()
                .filter(|r| r.path == repo_path && r.page == 1)
                .count();
            let global_304 = seen.iter().any(|r| r.path == "/events" && r.status == 304);
            if repo_polls >= 2 && global_304 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seen = mock.seen();
        let repo_requests: Vec<_> = seen.iter().filter(|r| r.path == repo_path).collect();
        assert_eq!(
            repo_requests
                .iter()
                .map(|r| r.page)
                .take(3)
                .collect::<Vec<_>>(),
            [1, 2, 1],
            "both pages, then a conditional poll"
        );
        assert_eq!(
            repo_requests[2].header("if-none-match"),
            Some(mock.repo_etag(&watched_repo).as_str())
        );
        assert_eq!(repo_requests[2].status, 304);
        let global_304 = seen
            .iter()
            .find(|r| r.path == "/events" && r.status == 304)
            .unwrap();
        assert_eq!(
            global_304.header("if-none-match"),
            Some(mock.etag().as_str())
        );
        let gone: Vec<_> = seen
            .iter()
            .filter(|r| r.path == "/repos/gone/repository/events")
            .collect();
        assert_eq!(gone.len(), 1, "a 404 repository is not asked again soon");
        assert_eq!(gone[0].status, 404);

        let (_, average) = app
            .get_json(&format!(
                "/metrics/average-pr-time?repo_name={watched_repo}"
            ))
            .await;
        let openings = &expected.openings[&watched_repo];
        assert_eq!(average["pr_count"], openings.len());
        assert_eq!(average["source"], "watched");
        assert!(average["watched_since"].is_string(), "{average}");
        let other = global
            .iter()
            .find(|e| {
                e["repo"]["name"] != watched_repo.as_str()
                    && TRACKED.contains(&e["type"].as_str().unwrap())
            })
            .unwrap();
        let (_, sampled) = app
            .get_json(&format!(
                "/metrics/average-pr-time?repo_name={}",
                other["repo"]["name"].as_str().unwrap()
            ))
            .await;
        assert_eq!(sampled["source"], "global_feed");
        assert!(sampled.get("watched_since").is_none(), "{sampled}");
        let (_, health) = app.get_json("/health").await;
        assert_eq!(health["watched_repositories"], 2);
        assert_eq!(health["events_stored"], expected.total());
        app.stop().await;

        let reopened = store.open().await;
        let Store::Sqlite(db) = &reopened else {
            continue;
        };
        let conn = db.get().unwrap();
        assert_eq!(rollup_disagreement(&conn).unwrap(), None);
        let unavailable: Vec<(String, String)> = conn
            .prepare("SELECT feed, error FROM feed_polls WHERE outcome = 'unavailable'")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(unavailable.len(), 1);
        assert_eq!(unavailable[0].0, "gone/repository");
        assert!(unavailable[0].1.contains("404"), "{unavailable:?}");
    }
}

#[tokio::test]
async fn overlaps_and_gaps_of_the_global_feed_are_recorded() {
    let templates = fixture_events();
    let mock = MockGithub::start(100).await;
    let dir = tempfile::tempdir().unwrap();
    let db = Sqlite::open(&SqliteLocation::File(dir.path().join("events.db"))).unwrap();
    let mut poller = Poller::new(
        &test_poller_config(&mock.url),
        Store::Sqlite(db.clone()),
        Arc::new(PollStatus::default()),
    )
    .unwrap();

    // Newest first: 1099 down to 1000, then a feed that moved on by 50 (it
    // still shows 1050..=1099), then one that skipped ahead to 1300.
    for ids in [1000..=1099, 1050..=1149, 1300..=1399] {
        mock.set_feed(&with_ids(&templates, ids.rev()));
        poller.poll_once().await.unwrap();
    }
    assert!(poller.poll_once().await.unwrap().not_modified());

    let conn = db.get().unwrap();
    type Row = (
        String,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    let rows: Vec<Row> = conn
        .prepare(
            "SELECT outcome, oldest_id, newest_id, previous_newest_id, new_events, overlap, missed_estimate
             FROM feed_polls WHERE feed = 'global' ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let ok = |o, n, p, new, overlap, missed| {
        (
            "ok".to_owned(),
            Some(o),
            Some(n),
            p,
            Some(new),
            overlap,
            missed,
        )
    };
    assert_eq!(
        rows,
        [
            ok(1000, 1099, None, 100, None, None),
            ok(1050, 1149, Some(1099), 50, Some(1), None),
            // 1150..=1299 went by unseen: 150 ids.
            ok(1300, 1399, Some(1149), 100, Some(0), Some(150)),
            (
                "not_modified".to_owned(),
                None,
                None,
                Some(1399),
                None,
                None,
                None
            ),
        ]
    );
    let coverage = global_feed_coverage(&conn, chrono::Utc::now().timestamp(), 3600).unwrap();
    assert_eq!(
        (
            coverage.polls,
            coverage.polls_with_gap,
            coverage.events_seen,
            coverage.events_missed_estimate
        ),
        (4, 1, 250, 150)
    );
    assert_eq!(coverage.coverage, Some(250.0 / 400.0));

    // A restarted poller remembers where the feed was: the same feed again
    // overlaps, and a feed further on is a gap counted from 1399.
    let mut restarted = Poller::new(
        &test_poller_config(&mock.url),
        Store::Sqlite(db.clone()),
        Arc::new(PollStatus::default()),
    )
    .unwrap();
    mock.set_feed(&with_ids(&templates, (1500..=1599).rev()));
    restarted.poll_once().await.unwrap();
    let (previous, missed): (i64, i64) = conn
        .query_row(
            "SELECT previous_newest_id, missed_estimate FROM feed_polls ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((previous, missed), (1399, 1500 - 1399 - 1));
}
