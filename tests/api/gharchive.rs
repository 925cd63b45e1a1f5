//! `import --gharchive`: hours downloaded from a mock GH Archive on
//! 127.0.0.1:0 (present, missing, failing then answering, cut off midway,
//! slow), imported once, resumed without downloading again, on every store.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ghmetrics::ingest::gharchive::{HourRange, file_name};
use ghmetrics::ingest::import::{
    ArchiveImport, ImportOptions, ImportSummary, archive_hour, import_archive,
};
use ghmetrics::store::{ArchiveFile, Load, Settling, Store};
use serde_json::Value;

use crate::helpers::{Expected, created_at, fixture_file_events, rfc3339};
use crate::stores::every_store;

/// How the mock answers one request for a file.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// This status, no body.
    Status(u16),
    /// Half the body, then the connection closes (Content-Length says more).
    Cut,
    /// The whole body in small pieces, each after a pause.
    Slow,
    /// Half the body, then nothing ever again.
    Stall,
    /// Valid gzip that never ends: a newline every 50 ms, no Content-Length.
    Drip,
}

#[derive(Default)]
struct Archive {
    files: HashMap<String, Bytes>,
    faults: HashMap<String, VecDeque<Fault>>,
    requests: Vec<String>,
}

/// A GH Archive on 127.0.0.1:0.
pub struct MockArchive {
    pub url: String,
    state: Arc<Mutex<Archive>>,
}

impl MockArchive {
    pub async fn start() -> MockArchive {
        let state = Arc::new(Mutex::new(Archive::default()));
        let app = axum::Router::new()
            .route("/mirror/{file}", axum::routing::get(serve_file))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        MockArchive {
            url: format!("http://{address}/mirror/"),
            state,
        }
    }

    pub fn put(&self, name: &str, events: &[Value]) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for event in events {
            writeln!(gz, "{event}").unwrap();
        }
        let bytes = Bytes::from(gz.finish().unwrap());
        self.state
            .lock()
            .unwrap()
            .files
            .insert(name.to_owned(), bytes);
    }

    pub fn faults(&self, name: &str, faults: impl IntoIterator<Item = Fault>) {
        let mut state = self.state.lock().unwrap();
        state
            .faults
            .entry(name.to_owned())
            .or_default()
            .extend(faults);
    }

    /// The files asked for since the last call.
    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap().requests)
    }
}

async fn serve_file(
    State(state): State<Arc<Mutex<Archive>>>,
    Path(file): Path<String>,
) -> Response {
    let (body, fault) = {
        let mut state = state.lock().unwrap();
        state.requests.push(file.clone());
        let fault = state.faults.get_mut(&file).and_then(VecDeque::pop_front);
        (state.files.get(&file).cloned(), fault)
    };
    let Some(body) = body else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let length = body.len();
    let half = body.slice(..length / 2);
    let stream: futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>> =
        match fault {
            None => return ([(header::CONTENT_LENGTH, length)], body).into_response(),
            Some(Fault::Status(status)) => {
                return StatusCode::from_u16(status).unwrap().into_response();
            }
            Some(Fault::Cut) => Box::pin(futures_util::stream::iter([
                Ok(half),
                Err(std::io::Error::other("cut off")),
            ])),
            Some(Fault::Slow) => Box::pin(futures_util::stream::unfold(0, move |at| {
                let body = body.clone();
                async move {
                    if at >= body.len() {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    let end = (at + 4096).min(body.len());
                    Some((Ok(body.slice(at..end)), end))
                }
            })),
            Some(Fault::Drip) => Box::pin(futures_util::stream::unfold(
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()),
                |mut gz| async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    gz.write_all(b"\n").unwrap();
                    gz.flush().unwrap();
                    let piece = Bytes::from(std::mem::take(gz.get_mut()));
                    Some((Ok(piece), gz))
                },
            )),
            Some(Fault::Stall) => Box::pin(futures_util::stream::unfold(
                Some(half),
                |half| async move {
                    match half {
                        Some(half) => Some((Ok(half), None)),
                        None => {
                            std::future::pending::<()>().await;
                            None
                        }
                    }
                },
            )),
        };
    (
        [(header::CONTENT_LENGTH, length)],
        Body::from_stream(stream),
    )
        .into_response()
}

/// The 2021-07-21 fixture's events, split into its hours' files (06 to 09).
fn hours_of_2021() -> Vec<(String, Vec<Value>)> {
    let mut by_hour: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for event in fixture_file_events("events-2021-07-21-sample.json.gz") {
        by_hour
            .entry(file_name(created_at(&event) / 3600))
            .or_default()
            .push(event);
    }
    by_hour.into_iter().collect()
}

fn quick(url: &str, range: &str) -> ArchiveImport {
    let mut archive = ArchiveImport::new(
        vec![url.parse().unwrap()],
        range.parse::<HourRange>().unwrap(),
    );
    archive.backoff = Duration::from_millis(10);
    archive.timeout = Duration::from_secs(5);
    archive.jobs = 3;
    archive
}

async fn run(store: &Store, archive: ArchiveImport) -> ImportSummary {
    let options = ImportOptions {
        batch_size: 37,
        ..ImportOptions::default()
    };
    import_archive(store, &archive, &options).await.unwrap()
}

#[tokio::test]
async fn hours_are_downloaded_once_whatever_the_archive_does() {
    let hours = hours_of_2021();
    assert_eq!(
        hours.len(),
        4,
        "{:?}",
        hours.iter().map(|h| &h.0).collect::<Vec<_>>()
    );
    let all: Vec<Value> = hours
        .iter()
        .flat_map(|(_, events)| events.clone())
        .collect();
    let expected = Expected::of(&all);
    let range = "2021-07-21T05..2021-07-21T10";
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let archive = MockArchive::start().await;
        for (name, events) in &hours {
            archive.put(name, events);
        }
        // 05 and 10 are missing; 06 answers 503 twice; 07 breaks off midway
        // once; 08 comes slowly; 09 is fine.
        archive.faults(
            "2021-07-21-6.json.gz",
            [Fault::Status(503), Fault::Status(503)],
        );
        archive.faults("2021-07-21-7.json.gz", [Fault::Cut]);
        archive.faults("2021-07-21-8.json.gz", [Fault::Slow]);
        let db = store.open().await;

        let first = run(&db, quick(&archive.url, range)).await;
        assert_eq!(first.hours_imported, 4, "{first:?}");
        assert_eq!(
            first.hours_missing,
            ["2021-07-21-5.json.gz", "2021-07-21-10.json.gz"]
        );
        assert!(first.files_failed.is_empty(), "{:?}", first.files_failed);
        assert_eq!(first.stored.inserted(), expected.total());
        expected.assert_counted_by(&db).await;
        let asked = archive.take_requests();
        let times = |name: &str| asked.iter().filter(|a| *a == name).count();
        assert_eq!(times("2021-07-21-6.json.gz"), 3, "{asked:?}");
        assert_eq!(times("2021-07-21-7.json.gz"), 2, "{asked:?}");
        assert_eq!(
            times("2021-07-21-5.json.gz"),
            1,
            "a 404 is not retried: {asked:?}"
        );
        // Every hour is now settled (files by created_at before 2025-05-25),
        // and its file recorded with what it held, however the hours'
        // pieces interleaved.
        let first_hour = "2021-07-21T06".parse::<HourRange>().unwrap().first;
        assert_eq!(
            db.settled_hours(HourRange {
                first: first_hour,
                last: first_hour + 3
            })
            .await
            .unwrap(),
            4
        );
        let recorded = store
            .sql(&format!(
                "SELECT hour, events, max_lag FROM {} WHERE missing = 0 ORDER BY hour",
                store.table("archive_files")
            ))
            .await;
        let each_hour: String = hours
            .iter()
            .map(|(name, events)| {
                let n = Expected::of(events).total();
                format!("{}\t{n}\t0\n", archive_hour(name).unwrap())
            })
            .collect();
        assert_eq!(recorded, each_hour);

        // Again: nothing it has is downloaded; only the missing hours are asked.
        let again = run(&db, quick(&archive.url, range)).await;
        assert_eq!((again.hours_imported, again.hours_already), (0, 4));
        assert_eq!(again.stored.inserted(), 0);
        let mut asked = archive.take_requests();
        asked.sort();
        assert_eq!(asked, ["2021-07-21-10.json.gz", "2021-07-21-5.json.gz"]);

        // --force downloads them again and stores nothing twice.
        let mut forced = quick(&archive.url, "2021-07-21T06..2021-07-21T09");
        forced.force = true;
        let forced = run(&db, forced).await;
        assert_eq!(forced.hours_imported, 4);
        assert_eq!(forced.stored.inserted(), 0);
        assert_eq!(forced.stored.duplicates, expected.total());
        assert_eq!(db.totals().await.unwrap().events, expected.total());
    }
}

#[tokio::test]
async fn an_hour_that_keeps_failing_is_reported_and_the_rest_imported() {
    let hours = hours_of_2021();
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let archive = MockArchive::start().await;
        for (name, events) in &hours {
            archive.put(name, events);
        }
        archive.faults("2021-07-21-7.json.gz", [Fault::Status(503); 5]);
        archive.faults("2021-07-21-8.json.gz", [Fault::Status(403)]);
        let db = store.open().await;
        let summary = run(&db, quick(&archive.url, "2021-07-21T06..2021-07-21T09")).await;
        assert_eq!(summary.hours_imported, 2);
        assert_eq!(summary.files_failed.len(), 2, "{:?}", summary.files_failed);
        assert!(
            summary.files_failed[0].contains("503") && summary.files_failed[0].contains("5 tries")
        );
        assert!(
            summary.files_failed[1].contains("403"),
            "{:?}",
            summary.files_failed
        );
        let first_hour = "2021-07-21T06".parse::<HourRange>().unwrap().first;
        assert_eq!(
            db.settled_hours(HourRange {
                first: first_hour,
                last: first_hour + 3
            })
            .await
            .unwrap(),
            2
        );
        // The next run fetches only what failed.
        archive.take_requests();
        let retry = run(&db, quick(&archive.url, "2021-07-21T06..2021-07-21T09")).await;
        assert_eq!((retry.hours_imported, retry.hours_already), (2, 2));
        let mut asked = archive.take_requests();
        asked.sort();
        assert_eq!(asked, ["2021-07-21-7.json.gz", "2021-07-21-8.json.gz"]);
    }
}

/// kill -9 in the middle of a range: no partial hour is recorded, and a
/// rerun completes it without storing anything twice.
#[tokio::test]
async fn a_killed_import_resumes_without_storing_twice() {
    let hours = hours_of_2021();
    let all: Vec<Value> = hours
        .iter()
        .flat_map(|(_, events)| events.clone())
        .collect();
    let expected = Expected::of(&all);
    let first_hour = "2021-07-21T06".parse::<HourRange>().unwrap().first;
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let archive = MockArchive::start().await;
        for (name, events) in &hours {
            archive.put(name, events);
        }
        archive.faults("2021-07-21-8.json.gz", [Fault::Stall]);
        // Credentials in the mirror's URL are sent, never recorded.
        let url = archive.url.replace("http://", "http://reader:s3cret@");
        let import = |range: &str| {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ghmetrics"));
            command
                .arg("import")
                .args(store.cli_args())
                .args(["--gharchive", range, "--gharchive-url", &url, "--jobs", "1"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null());
            command
        };
        let db = store.open().await;
        let mut child = import("2021-07-21T06..2021-07-21T09").spawn().unwrap();
        // Hours 06 and 07 are stored, 08 stalls half-way: kill -9 then.
        let started = std::time::Instant::now();
        while db
            .settled_hours(HourRange {
                first: first_hour,
                last: first_hour + 3,
            })
            .await
            .unwrap()
            < 2
        {
            assert!(
                started.elapsed() < crate::helpers::PATIENCE,
                "hours 06 and 07 never completed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        let complete = db
            .settled_hours(HourRange {
                first: first_hour,
                last: first_hour + 3,
            })
            .await
            .unwrap();
        assert_eq!(complete, 2, "the hour cut by the kill is not recorded");

        // Off the runtime's thread, which also serves the mock archive.
        let mut again = import("2021-07-21T06..2021-07-21T09");
        let output = tokio::task::spawn_blocking(move || again.output().unwrap())
            .await
            .unwrap();
        let summary = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{summary}");
        assert!(
            summary.starts_with(
                "2 hour(s) imported, 2 already imported, 0 missing upstream, 0 failed"
            ),
            "{summary}"
        );
        assert_eq!(db.totals().await.unwrap().events, expected.total());
        assert_eq!(
            db.settled_hours(HourRange {
                first: first_hour,
                last: first_hour + 3
            })
            .await
            .unwrap(),
            4
        );
        let sources = match &db {
            Store::Sqlite(sqlite) => {
                let conn = sqlite.get().unwrap();
                let (rows, ids): (u64, u64) = conn
                    .query_row("SELECT count(*), count(DISTINCT id) FROM events", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .unwrap();
                assert_eq!((rows, ids), (expected.total(), expected.total()));
                let mut select = conn
                    .prepare("SELECT name FROM archive_sources ORDER BY id")
                    .unwrap();
                select
                    .query_map([], |row| row.get::<_, String>(0))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            Store::ClickHouse(_) => {
                let database = store.database();
                let counts = store
                    .sql(&format!(
                        "SELECT count(), uniqExact(id) FROM {database}.events"
                    ))
                    .await;
                assert_eq!(counts.trim(), format!("{0}\t{0}", expected.total()));
                store
                    .sql(&format!(
                        "SELECT name FROM {database}.archive_sources ORDER BY id"
                    ))
                    .await
            }
        };
        assert!(sources.starts_with(&archive.url), "{sources}");
        assert!(!sources.contains("s3cret"), "{sources}");
    }
}

/// `serve --follow-gharchive` beside the poller: the hours already published
/// are imported at once, an hour published while it runs soon after, hours
/// missing too long are given up on; what the poller stored is not stored
/// twice.
#[tokio::test]
async fn the_service_follows_the_archive_as_hours_are_published() {
    use crate::helpers::{MockGithub, TestApp, test_poller_config};
    let now_hour = chrono::Utc::now().timestamp() / 3600;
    // The fixture's hours 06, 07 and 08 moved to the last three hours.
    let hours = hours_of_2021();
    let shifted: Vec<(i64, Vec<Value>)> = hours[..3]
        .iter()
        .enumerate()
        .map(|(i, (_, events))| {
            let hour = now_hour - 3 + i as i64;
            let events = events
                .iter()
                .map(|event| {
                    let mut event = event.clone();
                    let moved = hour * 3600 + created_at(&event) % 3600;
                    event["created_at"] = serde_json::json!(rfc3339(moved));
                    event
                })
                .collect();
            (hour, events)
        })
        .collect();
    let all: Vec<Value> = shifted.iter().flat_map(|(_, e)| e.clone()).collect();
    let expected = Expected::of(&all);
    // The live feed saw part of the last hour.
    let live = &shifted[2].1[..60];
    let polled = Expected::of(live).total();
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let archive = MockArchive::start().await;
        for (hour, events) in &shifted[..2] {
            archive.put(&file_name(*hour), events);
        }
        let github = MockGithub::start(100).await;
        github.set_feed(live);
        let mut follow =
            ghmetrics::config::FollowConfig::new(vec![archive.url.parse().unwrap()], now_hour - 5);
        follow.publish_delay = Duration::ZERO;
        follow.retry_every = Duration::from_millis(100);
        follow.give_up_after = Duration::from_secs(2 * 3600);
        follow.backoff = Duration::from_millis(10);
        // Today's hours are filed by crawl hour; this stand-in files each
        // event in its own hour, so no lag is allowed and an hour settles
        // with its own file (the lag has tests of its own, in settled.rs).
        follow.archive_lag_hours = 0;
        let mut app = TestApp::spawn_with(
            store.location.clone(),
            Some(test_poller_config(&github.url)),
            |config| {
                config.follow = Some(follow);
                config.archive_lag_hours = 0;
            },
        )
        .await;
        app.wait_for_report(|r| r.events_inserted == polled).await;
        let hour_text = |hour: i64| rfc3339(hour * 3600);
        let newest_hour = |hour: i64| {
            let want = hour_text(hour);
            move |health: &Value| health["gharchive"]["newest_hour"] == want.as_str()
        };
        let health = app.health_until(newest_hour(now_hour - 2)).await;
        assert_eq!(
            health["gharchive"]["hours_given_up"],
            serde_json::json!([file_name(now_hour - 5), file_name(now_hour - 4)])
        );
        // The last hour is published now.
        archive.put(&file_name(now_hour - 1), &shifted[2].1);
        let health = app.health_until(newest_hour(now_hour - 1)).await;
        let ended = chrono::Utc::now().timestamp() / 3600 - 1;
        assert_eq!(health["gharchive"]["hours_behind"], ended - (now_hour - 1));
        assert_eq!(health["events_stored"], expected.total());
        assert_eq!(health["events_by_origin"]["global_feed"], polled);
        assert_eq!(
            health["events_by_origin"]["import"],
            expected.total() - polled
        );
        let window = format!(
            "/metrics/event-counts?from={}&to={}",
            hour_text(now_hour - 3),
            hour_text(now_hour)
        );
        let (_, counts) = app.get_json(&window).await;
        assert_eq!(counts, serde_json::json!(expected.by_type));

        // How much the live feed saw, per complete hour: nothing of the first
        // two, the polled part of the last, computed from the events themselves.
        let (status, coverage) = app
            .get_json(&format!(
                "/v1/coverage?from={}&to={}",
                hour_text(now_hour - 3),
                hour_text(now_hour)
            ))
            .await;
        assert_eq!(status, 200, "{coverage}");
        let hours = coverage["hours"].as_array().unwrap();
        assert_eq!(hours.len(), 3, "{coverage}");
        for (entry, (hour, events)) in hours.iter().zip(&shifted) {
            let archive = Expected::of(events);
            let seen = if *hour == now_hour - 1 {
                Expected::of(live)
            } else {
                Expected::of(&[])
            };
            assert_eq!(entry["hour"], hour_text(*hour));
            assert_eq!(entry["settled"], true, "{coverage}");
            assert_eq!(entry["archive_events"], archive.total());
            assert_eq!(entry["live_events"], seen.total());
            let share = seen.total() as f64 / archive.total() as f64;
            assert!(
                (entry["share"].as_f64().unwrap() - share).abs() < 1e-12,
                "{entry}"
            );
            for (kind, n) in &archive.by_type {
                assert_eq!(entry["by_type"][kind]["archive_events"], *n, "{kind}");
                assert_eq!(
                    entry["by_type"][kind]["live_events"], seen.by_type[kind],
                    "{kind}"
                );
            }
        }
        // How final each answer is: complete up to the end of the run of
        // archive hours that starts at the window's first hour.
        let complete_until = |path: String| {
            let app = &app;
            async move {
                let answer = app.get(&path).await;
                assert_eq!(answer.status(), 200, "{path}");
                answer
                    .headers()
                    .get("x-complete-until")
                    .map(|v| v.to_str().unwrap().to_owned())
            }
        };
        let end = Some(hour_text(now_hour));
        let from = |hour: i64, extra: i64| rfc3339(hour * 3600 + extra);
        assert_eq!(complete_until(window.clone()).await, end);
        assert_eq!(
            complete_until(format!(
                "/metrics/event-counts?from={}",
                from(now_hour - 3, 1800)
            ))
            .await,
            end
        );
        assert_eq!(
            complete_until(format!(
                "/v1/metrics/visualization/timeline?from={}",
                from(now_hour - 2, 0)
            ))
            .await,
            end
        );
        assert_eq!(
            complete_until("/metrics/pr-counts".to_owned()).await,
            end,
            "from the oldest event"
        );
        assert_eq!(
            complete_until("/metrics/average-pr-time?repo_name=a/b".to_owned()).await,
            end
        );
        for not_complete in [now_hour - 5, now_hour] {
            let path = format!(
                "/metrics/event-counts?from={}&to={}",
                from(not_complete, 0),
                from(now_hour, 60)
            );
            assert_eq!(complete_until(path).await, None, "{not_complete}");
        }
        // Prometheus says the same.
        let text = app.get("/metrics").await.text().await.unwrap();
        let series = |name: &str| -> f64 {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing"))
        };
        assert_eq!(
            series("ghmetrics_gharchive_newest_hour_timestamp_seconds"),
            ((now_hour - 1) * 3600) as f64
        );
        assert_eq!(series("ghmetrics_gharchive_hours_given_up"), 2.0);
        let last_share = polled as f64 / Expected::of(&shifted[2].1).total() as f64;
        assert!((series("ghmetrics_live_feed_share_last_complete_hour") - last_share).abs() < 1e-9);
        let (_, health) = app.get_json("/health").await;
        let day_share = polled as f64 / expected.total() as f64;
        assert!(
            (health["live_feed_share_last_day"].as_f64().unwrap() - day_share).abs() < 1e-12,
            "{health}"
        );
        app.stop().await;
    }
}

/// An import reads several hours at once, so the writer gets their batches
/// interleaved: each hour must still record its own file, and count by id
/// what the archive holds and what the live feed had stored first. Two
/// hours' batches are handed to every store's writer mixed, with some of
/// the second hour already stored by the poller.
#[tokio::test]
async fn interleaved_hours_each_record_what_they_stored() {
    let hours = hours_of_2021();
    let parsed = |events: &[Value]| -> Vec<ghmetrics::core::event::Event> {
        events
            .iter()
            .filter_map(|e| {
                ghmetrics::core::event::parse_event(&serde_json::to_vec(e).unwrap()).unwrap()
            })
            .collect()
    };
    let (first, second) = (parsed(&hours[0].1), parsed(&hours[1].1));
    let live = second.len() / 3;
    assert!(first.len() >= 2 && live >= 1);
    let record = |name: &str, events: &[ghmetrics::core::event::Event]| {
        let mut events_by_type = [0; 3];
        for event in events {
            events_by_type[event.event_type.index()] += 1;
        }
        ArchiveFile {
            source: 0,
            hour: archive_hour(name).unwrap(),
            events_by_type: ghmetrics::core::event::PerType(events_by_type),
            lags: [(0, events.len() as u64)].into(),
        }
    };
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let db = store.open_with(second[..live].to_vec()).await;
        let (half_first, half_second) = (first.len() / 2, second.len() / 2);
        let (loads_tx, loads) = std::sync::mpsc::channel();
        let batch = |file, events: &[ghmetrics::core::event::Event]| Load::Events {
            file,
            events: events.to_vec(),
            archive: Some(0),
        };
        for load in [
            batch(1, &first[..half_first]),
            batch(2, &second[..half_second]),
            batch(1, &first[half_first..]),
            Load::FileEnd {
                file: 1,
                archive_file: Some(record(&hours[0].0, &first)),
            },
            batch(2, &second[half_second..]),
            Load::FileEnd {
                file: 2,
                archive_file: Some(record(&hours[1].0, &second)),
            },
        ] {
            loads_tx.send(load).unwrap();
        }
        drop(loads_tx);
        let writer = db.clone();
        let settling = Settling {
            lag_hours: 6,
            sources: vec![0],
        };
        let stats = tokio::task::spawn_blocking(move || writer.bulk_load(loads, settling).unwrap())
            .await
            .unwrap();
        assert_eq!(stats.inserted() as usize, first.len() + second.len() - live);
        let recorded = store
            .sql(&format!(
                "SELECT hour, events FROM {} ORDER BY hour",
                store.table("archive_files")
            ))
            .await;
        let (hour_1, hour_2) = (
            archive_hour(&hours[0].0).unwrap(),
            archive_hour(&hours[1].0).unwrap(),
        );
        let expected = format!("{hour_1}\t{}\n{hour_2}\t{}\n", first.len(), second.len());
        assert_eq!(recorded, expected);
        let coverage = db
            .hour_coverage(HourRange {
                first: hour_1,
                last: hour_2,
            })
            .await
            .unwrap();
        let figures: Vec<(i64, u64, u64, bool)> = coverage
            .iter()
            .map(|h| {
                let sum =
                    |counts: ghmetrics::core::event::PerType<u64>| counts.0.iter().sum::<u64>();
                (h.hour, sum(h.archive_events), sum(h.live_events), h.settled)
            })
            .collect();
        assert_eq!(
            figures,
            [
                (hour_1, first.len() as u64, 0, true),
                (hour_2, second.len() as u64, live as u64, true)
            ]
        );
    }
}

/// A mirror that sends valid gzip a newline at a time, forever: the hour is
/// given up within its deadline (times its tries), the others are imported.
#[tokio::test]
async fn an_hour_that_never_ends_is_given_up_within_its_deadline() {
    let hours = hours_of_2021();
    let store = crate::stores::TestStore::sqlite();
    let db = store.open().await;
    let archive = MockArchive::start().await;
    for (name, events) in &hours {
        archive.put(name, events);
    }
    archive.faults("2021-07-21-7.json.gz", [Fault::Drip, Fault::Drip]);
    let mut import = quick(&archive.url, "2021-07-21T06..2021-07-21T09");
    import.attempts = 2;
    import.hour_deadline = Duration::from_secs(1);
    let started = std::time::Instant::now();
    let summary = run(&db, import).await;
    // Two tries of a second each, and the other hours beside them.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(summary.hours_imported, 3);
    assert_eq!(summary.files_failed.len(), 1, "{:?}", summary.files_failed);
    assert!(
        summary.files_failed[0].starts_with("2021-07-21-7.json.gz: ")
            && summary.files_failed[0].contains("did not end within 1s"),
        "{:?}",
        summary.files_failed
    );
}

/// The command's own words for a range it cannot get at all (run off the
/// test's runtime, which serves the mock archive).
async fn import_command(
    store: &crate::stores::TestStore,
    url: &str,
    range: &str,
) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ghmetrics"));
    command
        .arg("import")
        .args(store.cli_args())
        .args(["--gharchive", range, "--gharchive-url", url])
        .env_remove("RUST_LOG");
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_host_that_cannot_be_reached_is_said_at_once() {
    // A port nothing listens on: every connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = crate::stores::TestStore::sqlite();
    let started = std::time::Instant::now();
    let output = import_command(&store, &format!("http://127.0.0.1:{port}/"), "2015-01-01").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("cannot reach"))
        .collect();
    assert_eq!(lines.len(), 1, "{said}");
    assert!(
        lines[0].contains("127.0.0.1") && lines[0].contains("--gharchive-url"),
        "{said}"
    );
}

#[tokio::test]
async fn a_mirror_without_any_hour_of_the_range_is_an_error() {
    let archive = MockArchive::start().await;
    let wrong = archive.url.replace("/mirror/", "/wrongdir/");
    let store = crate::stores::TestStore::sqlite();
    let started = std::time::Instant::now();
    let output = import_command(&store, &wrong, "2015-01-01T00..2015-01-01T05").await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stdout);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.contains("none of the 6 hour(s)") && said.contains("is --gharchive-url right?"),
        "{said}"
    );
}

/// Two archives with different holes, downloaded together: an hour one of
/// them lacks settles once the other has it and the first has answered
/// 404 past the lag; each event is counted once, each source's share exact.
#[tokio::test]
async fn two_archives_are_united_and_each_ones_share_is_exact() {
    let hours = hours_of_2021();
    let (gh, other) = (MockArchive::start().await, MockArchive::start().await);
    let (mut in_a, mut in_b) = (Vec::new(), Vec::new());
    for (i, (name, events)) in hours.iter().enumerate() {
        // The first archive misses every fourth event; the second has all
        // of them but lacks the second hour's file.
        let thinned: Vec<Value> = events
            .iter()
            .enumerate()
            .filter(|(j, _)| j % 4 != 3)
            .map(|(_, e)| e.clone())
            .collect();
        gh.put(name, &thinned);
        in_a.extend(thinned);
        if i != 1 {
            other.put(name, events);
            in_b.extend(events.iter().cloned());
        }
    }
    let (expected_a, expected_b) = (Expected::of(&in_a).total(), Expected::of(&in_b).total());
    let mut united = in_a.clone();
    united.extend(in_b.iter().filter(|e| !in_a.contains(e)).cloned());
    let union = Expected::of(&united).total();
    assert!(
        union > expected_a.max(expected_b),
        "each archive has what the other lacks"
    );
    let first_hour = "2021-07-21T06".parse::<HourRange>().unwrap().first;
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let db = store.open().await;
        let mut both = quick(&gh.url, "2021-07-21T06..2021-07-21T09");
        both.urls.push(other.url.parse().unwrap());
        let summary = run(&db, both).await;
        assert_eq!(summary.hours_imported, 7, "{summary:?}");
        assert_eq!(summary.hours_missing.len(), 1, "{summary:?}");
        assert_eq!(summary.stored.inserted(), union);
        assert_eq!(
            db.settled_hours(HourRange {
                first: first_hour,
                last: first_hour + 3
            })
            .await
            .unwrap(),
            4
        );
        let coverage = db
            .hour_coverage(HourRange {
                first: first_hour,
                last: first_hour + 3,
            })
            .await
            .unwrap();
        let sum = |f: &dyn Fn(&ghmetrics::store::HourCoverage) -> u64| -> u64 {
            coverage.iter().map(f).sum()
        };
        assert_eq!(sum(&|h| h.archive_events.0.iter().sum()), union);
        let of_source =
            |i: usize| sum(&|h| h.by_source.get(i).map_or(0, |(_, n)| n.0.iter().sum()));
        assert_eq!((of_source(0), of_source(1)), (expected_a, expected_b));
    }
}
