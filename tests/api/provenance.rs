//! Where the data came from: each event's origin, the complete archive
//! hours, and what average-pr-time's `source` says about them, on every store.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    Expected, MockGithub, TestApp, created_at, fixture_events, fixture_path,
    import_files as import, rfc3339, test_poller_config,
};
use crate::stores::every_store;

#[tokio::test]
async fn every_event_remembers_how_it_arrived() {
    let events = fixture_events();
    let global = &events[..300];
    // A repository with PR events only after the global feed's part: its
    // own feed brings them.
    let watched_repo = events[300..]
        .iter()
        .filter(|e| e["type"] == "PullRequestEvent")
        .filter_map(|e| e["repo"]["name"].as_str())
        .find(|repo| !global.iter().any(|e| e["repo"]["name"] == *repo))
        .unwrap()
        .to_owned();
    let repo_feed: Vec<Value> = events[300..]
        .iter()
        .filter(|e| e["repo"]["name"] == watched_repo.as_str())
        .cloned()
        .collect();
    let from_global = Expected::of(global).total();
    let from_watched = Expected::of(&repo_feed).total();
    let all = Expected::of(&events).total();
    let tracked: Vec<i64> = events
        .iter()
        .filter(|e| {
            ["WatchEvent", "PullRequestEvent", "IssuesEvent"].contains(&e["type"].as_str().unwrap())
        })
        .map(created_at)
        .collect();
    let (oldest, newest) = (
        *tracked.iter().min().unwrap(),
        *tracked.iter().max().unwrap(),
    );
    assert!(from_watched >= 1);
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let mock = MockGithub::start(100).await;
        mock.set_feed(global);
        mock.set_repo_feed(&watched_repo, &repo_feed);
        let mut config = test_poller_config(&mock.url);
        config.watched = vec![watched_repo.parse().unwrap()];
        let app = TestApp::spawn(store.location.clone(), Some(config)).await;
        app.health_until(|h| h["events_stored"] == from_global + from_watched)
            .await;

        // The import stores the rest; what the feeds brought keeps its origin.
        import(
            &app.store,
            vec![fixture_path("events-2021-07-21-sample.json.gz")],
            &[],
        )
        .await;
        let health = app.health_until(|h| h["events_stored"] == all).await;
        assert_eq!(
            health["events_by_origin"],
            json!({
                "global_feed": from_global,
                "watched": from_watched,
                "import": all - from_global - from_watched,
                "unknown": 0,
            }),
            "{health}"
        );
        assert_eq!(health["oldest_event_at"], rfc3339(oldest));
        assert_eq!(health["newest_event_at"], rfc3339(newest));
        app.stop().await;
    }
}

/// A PullRequestEvent opening `number` of `repo` at `at` (epoch seconds).
fn opening(id: i64, repo: &str, at: i64) -> Value {
    json!({
        "id": id.to_string(),
        "type": "PullRequestEvent",
        "actor": {"login": "someone"},
        "repo": {"name": repo},
        "payload": {"action": "opened", "number": id},
        "created_at": rfc3339(at),
    })
}

fn write_gz(dir: &Path, name: &str, events: &[Value]) -> PathBuf {
    let path = dir.join(name);
    let mut out =
        flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), Default::default());
    for event in events {
        writeln!(out, "{event}").unwrap();
    }
    out.finish().unwrap();
    path
}

#[tokio::test]
async fn source_says_watched_archive_or_global_feed() {
    const REPO: &str = "arch/ive";
    // 2015-01-01T01:00:00Z, hour 1 of that day's GH Archive.
    let hour_1 = 1_420_074_000;
    let in_hour_1: Vec<Value> = [600, 1200, 3000]
        .iter()
        .enumerate()
        .map(|(i, offset)| opening(100 + i as i64, REPO, hour_1 + offset))
        .collect();
    let in_hour_2 = vec![opening(200, REPO, hour_1 + 3600 + 600)];
    let dir = tempfile::tempdir().unwrap();
    let hour_file = write_gz(dir.path(), "2015-01-01-1.json.gz", &in_hour_1);
    let loose_file = write_gz(dir.path(), "extra.json.gz", &in_hour_2);
    // Named as an hour but not read whole (cut short), or cut to some repositories.
    let whole = std::fs::read(write_gz(dir.path(), "x.json.gz", &in_hour_2)).unwrap();
    let cut_dir = tempfile::tempdir().unwrap();
    let cut = cut_dir.path().join("2015-01-01-2.json.gz");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    let filtered_dir = tempfile::tempdir().unwrap();
    let filtered = write_gz(filtered_dir.path(), "2015-01-01-2.json.gz", &in_hour_2);
    let hour_2_file = write_gz(dir.path(), "2015-01-01-2.json.gz", &in_hour_2);

    async fn source(app: &TestApp, window: &str) -> (String, u64) {
        let path = format!("/metrics/average-pr-time?repo_name={REPO}{window}");
        let (_, body) = app.get_json(&path).await;
        (
            body["source"].as_str().unwrap().to_owned(),
            body["pr_count"].as_u64().unwrap(),
        )
    }
    // One repository's event counts and timeline points say it the same way
    // (without `import`).
    async fn counts_source(app: &TestApp, window: &str) -> Vec<String> {
        let mut sources = Vec::new();
        for path in [
            format!("/metrics/event-counts?repo_name={REPO}{window}"),
            format!("/metrics/visualization/timeline?format=json&repo_name={REPO}{window}"),
        ] {
            let (_, body) = app.get_json(&path).await;
            sources.push(body["source"].as_str().unwrap().to_owned());
        }
        sources
    }
    let hour_1_only = "&from=2015-01-01T01:00:00Z&to=2015-01-01T02:00:00Z";
    let both_hours = "&from=2015-01-01T01:00:00Z&to=2015-01-01T03:00:00Z";
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let mock = MockGithub::start(100).await;
        mock.set_feed(&[]);
        mock.set_repo_feed(REPO, &[]);
        let mut config = test_poller_config(&mock.url);
        config.watched = vec![REPO.parse().unwrap(), "other/repo".parse().unwrap()];
        let app = TestApp::spawn(store.location.clone(), None).await;
        import(&app.store, vec![hour_file.clone(), loose_file.clone()], &[]).await;
        assert_eq!(source(&app, hour_1_only).await, ("archive".into(), 3));
        assert_eq!(
            counts_source(&app, hour_1_only).await,
            ["archive", "archive"]
        );
        assert_eq!(
            counts_source(&app, both_hours).await,
            ["global_feed", "global_feed"]
        );
        // Hour 2's opening came from a file that is not an archive hour.
        assert_eq!(source(&app, both_hours).await, ("import".into(), 4));
        assert_eq!(source(&app, "").await, ("import".into(), 4));
        // Neither a file cut short nor one cut to some repositories completes hour 2.
        import(&app.store, vec![cut.clone()], &[]).await;
        import(&app.store, vec![filtered.clone()], &[REPO]).await;
        assert_eq!(source(&app, both_hours).await, ("import".into(), 4));
        // Hour 2 read whole: every opening lies in complete hours.
        import(&app.store, vec![hour_2_file.clone()], &[]).await;
        assert_eq!(source(&app, both_hours).await, ("archive".into(), 4));
        assert_eq!(source(&app, "").await, ("archive".into(), 4));
        assert_eq!(
            counts_source(&app, both_hours).await,
            ["archive", "archive"]
        );
        app.stop().await;

        // Watched: over a window it was watched all along (and without a
        // window); an older window is the archive's.
        let app = TestApp::spawn(store.location.clone(), Some(config)).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let since_start = format!("&from={}", rfc3339(chrono::Utc::now().timestamp() - 1));
        assert_eq!(source(&app, &since_start).await, ("watched".into(), 0));
        assert_eq!(
            counts_source(&app, &since_start).await,
            ["watched", "watched"]
        );
        assert_eq!(source(&app, "").await, ("watched".into(), 4));
        assert_eq!(source(&app, both_hours).await, ("archive".into(), 4));
        app.stop().await;
    }
}
