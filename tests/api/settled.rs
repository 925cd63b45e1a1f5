//! Final means final: on a stand-in archive of today's shape (files by crawl
//! hour, events seconds to hours late) and of the old one (files by created
//! hour), every answer whose window ends by its `X-Complete-Until` is the
//! answer all the files give; `/coverage` counts by id, per hour and type,
//! every archive source united; late arrivals are counted. Every store.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::helpers::{TRACKED, TestApp, created_at, fixture_file_events, import_files, rfc3339};
use crate::stores::every_store;

/// 2026-11-01T10:00:00Z: the stand-in's first hour, in GH Archive's crawl-hour era.
const TODAY: i64 = 1_793_527_200;
/// Hours of created events in the stand-in.
const CREATED_HOURS: i64 = 6;
/// The created hour (from [`TODAY`]) with two tracked events: a hole.
const THIN_HOUR: i64 = 4;

fn id(event: &Value) -> i64 {
    event["id"].as_str().unwrap().parse().unwrap()
}

fn tracked(event: &Value) -> bool {
    TRACKED.contains(&event["type"].as_str().unwrap())
}

/// Real recorded events (2015's and 2021's) moved to [`TODAY`]'s hours,
/// with the hour each was crawled in: 0 to 5 hours and up to half an hour
/// after it was created, as GitHub's feed delays them.
fn todays_events() -> Vec<(Value, i64)> {
    let mut events: Vec<Value> = fixture_file_events("events-2015-01-01-first1000.json.gz");
    events.extend(fixture_file_events("events-2021-07-21-sample.json.gz"));
    let n = events.len() as i64;
    let mut thin_kept = 0;
    events
        .into_iter()
        .enumerate()
        .map(|(i, mut event)| {
            let id = id(&event);
            let mut hour = i as i64 * CREATED_HOURS / n;
            if hour == THIN_HOUR {
                if tracked(&event) && thin_kept < 2 {
                    thin_kept += 1;
                } else {
                    hour += 1;
                }
            }
            let created = TODAY + hour * 3600 + (i as i64 * 7919) % 3600;
            event["created_at"] = Value::String(rfc3339(created));
            let lag = [0, 0, 0, 1, 1, 2, 3, 5][(id % 8) as usize] * 3600 + id % 1800;
            (event, (created + lag) / 3600)
        })
        .collect()
}

fn write_hour_file(dir: &Path, hour: i64, events: &[&Value]) -> PathBuf {
    let path = dir.join(ghmetrics::ingest::gharchive::file_name(hour));
    let mut out =
        flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), Default::default());
    for event in events {
        writeln!(out, "{event}").unwrap();
    }
    out.finish().unwrap();
    path
}

/// The events of `events` filed by `hour_of` into hour files in `dir`, oldest first.
fn archive_files(
    dir: &Path,
    events: &[(Value, i64)],
    keep: impl Fn(&Value, i64) -> bool,
) -> Vec<PathBuf> {
    let mut by_hour: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for (event, hour) in events {
        if keep(event, *hour) {
            by_hour.entry(*hour).or_default().push(event);
        }
    }
    by_hour
        .iter()
        .map(|(hour, events)| write_hour_file(dir, *hour, events))
        .collect()
}

/// The questions asked after each file: windows over the stand-in's hours.
fn questions(first: i64, hours: i64, repos: &[String]) -> Vec<(String, i64)> {
    let window = |from: i64, to: i64| format!("from={}&to={}", rfc3339(from), rfc3339(to));
    let mut windows = Vec::new();
    for h in 0..hours {
        windows.push((first + h * 3600, first + (h + 1) * 3600));
    }
    windows.push((first, first + 2 * 3600));
    windows.push((first + 1800, first + 3 * 3600 + 59));
    windows.push((first, first + hours * 3600));
    let mut asked = Vec::new();
    for (from, to) in windows {
        let w = window(from, to);
        asked.push((format!("/metrics/event-counts?{w}"), to));
        asked.push((format!("/metrics/pr-counts?limit=5&{w}"), to));
        for repo in repos {
            asked.push((format!("/metrics/average-pr-time?repo_name={repo}&{w}"), to));
        }
    }
    asked
}

/// The repositories with the most PR openings.
fn busiest_repos(events: &[&Value], n: usize) -> Vec<String> {
    let mut openings: BTreeMap<String, usize> = BTreeMap::new();
    for event in events {
        if event["type"] == "PullRequestEvent" && event["payload"]["action"] == "opened" {
            *openings
                .entry(event["repo"]["name"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    let mut ranked: Vec<(usize, String)> = openings.into_iter().map(|(r, n)| (n, r)).collect();
    ranked.sort_by(|a, b| b.cmp(a));
    ranked.into_iter().take(n).map(|(_, r)| r).collect()
}

/// Imports `files` one at a time into a service on every store, asking
/// `asked` after each; every answer whose window ends by its
/// `X-Complete-Until` must be the answer after the last file. Returns how
/// many answers before the last file were final.
async fn final_answers_never_move(files: &[PathBuf], asked: &[(String, i64)]) -> usize {
    let mut finals_before_the_end = 0;
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let app = TestApp::spawn(store.location.clone(), None).await;
        let mut steps: Vec<Vec<(String, Option<i64>)>> = Vec::new();
        for file in files {
            import_files(&app.store, vec![file.clone()], &[]).await;
            let mut answers = Vec::new();
            for (path, _) in asked {
                let response = app.get(path).await;
                assert_eq!(response.status(), 200, "{path}");
                let until = response
                    .headers()
                    .get("x-complete-until")
                    .map(|v| created_at(&serde_json::json!({"created_at": v.to_str().unwrap()})));
                answers.push((response.text().await.unwrap(), until));
            }
            steps.push(answers);
        }
        let last = steps.last().unwrap().clone();
        for (step, answers) in steps.iter().enumerate() {
            for ((path, end), (body, until)) in asked.iter().zip(answers) {
                if until.is_some_and(|until| until >= *end) {
                    assert_eq!(
                        body,
                        &last[asked.iter().position(|(p, _)| p == path).unwrap()].0,
                        "{path}: final after file {step} of {}, then moved",
                        files.len()
                    );
                    if step + 1 < steps.len() {
                        finals_before_the_end += 1;
                    }
                }
            }
        }
        app.stop().await;
    }
    finals_before_the_end
}

#[tokio::test]
async fn answers_called_final_never_move_on_todays_archive() {
    let events = todays_events();
    let dir = tempfile::tempdir().unwrap();
    let files = archive_files(dir.path(), &events, |_, _| true);
    assert!(
        files.len() > CREATED_HOURS as usize + 3,
        "files by crawl hour, hours late"
    );
    let repos = busiest_repos(&events.iter().map(|(e, _)| e).collect::<Vec<_>>(), 2);
    let asked = questions(TODAY, CREATED_HOURS, &repos);
    let finals = final_answers_never_move(&files, &asked).await;
    assert!(finals > 0, "some answers were final before the last file");
}

#[tokio::test]
async fn answers_called_final_never_move_on_the_old_archive() {
    // 2021-07-21's hours 06 to 09, filed by created hour as before 2025-05-25.
    let events: Vec<(Value, i64)> = fixture_file_events("events-2021-07-21-sample.json.gz")
        .into_iter()
        .map(|event| {
            let hour = created_at(&event) / 3600;
            (event, hour)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let files = archive_files(dir.path(), &events, |_, _| true);
    assert_eq!(files.len(), 4);
    let first = events.iter().map(|(_, h)| *h).min().unwrap() * 3600;
    let repos = busiest_repos(&events.iter().map(|(e, _)| e).collect::<Vec<_>>(), 2);
    let asked = questions(first, 4, &repos);
    let finals = final_answers_never_move(&files, &asked).await;
    assert!(finals > 0, "each hour is final once its own file is read");
}

/// What `/coverage` must say per hour and type, counted here by id.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    archive: u64,
    live: u64,
    live_only: u64,
    by_source: [u64; 2],
}

#[tokio::test]
async fn coverage_counts_by_id_every_archive_united() {
    let events = todays_events();
    let tracked_events: Vec<&(Value, i64)> = events.iter().filter(|(e, _)| tracked(e)).collect();
    // Source A misses every fifth event, source B every seventh and the
    // whole file of the stand-in's third crawl hour; the live feed had
    // every third event before the archives came.
    let in_a = |e: &Value, _| id(e) % 5 != 0;
    let b_hole = TODAY / 3600 + 2;
    let in_b = |e: &Value, hour| id(e) % 7 != 0 && hour != b_hole;
    let live = |e: &Value| id(e) % 3 == 0;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let files_a = archive_files(dir_a.path(), &events, in_a);
    let files_b = archive_files(dir_b.path(), &events, in_b);

    let mut expected: BTreeMap<(i64, &str), Expected> = BTreeMap::new();
    for (event, hour) in &tracked_events {
        let (a, b) = (in_a(event, *hour), in_b(event, *hour));
        let e = expected
            .entry((created_at(event) / 3600, event["type"].as_str().unwrap()))
            .or_default();
        if a || b {
            e.archive += 1;
            e.live += u64::from(live(event));
            e.by_source[0] += u64::from(a);
            e.by_source[1] += u64::from(b);
        } else if live(event) {
            e.live_only += 1;
        }
    }
    assert!(expected.values().any(|e| e.live_only > 0));
    assert!(expected.values().any(|e| e.by_source[0] != e.by_source[1]));

    let live_events: Vec<ghmetrics::core::event::Event> = tracked_events
        .iter()
        .filter(|(e, _)| live(e))
        .filter_map(|(e, _)| {
            ghmetrics::core::event::parse_event(&serde_json::to_vec(e).unwrap()).unwrap()
        })
        .collect();
    for store in every_store() {
        eprintln!("store: {}", store.name);
        store.open_with(live_events.clone()).await;
        let app = TestApp::spawn(store.location.clone(), None).await;
        import_files(&app.store, files_a.clone(), &[]).await;
        import_files(&app.store, files_b.clone(), &[]).await;
        let window = format!(
            "from={}&to={}",
            rfc3339(TODAY - 3600),
            rfc3339(TODAY + 24 * 3600)
        );
        let (status, coverage) = app.get_json(&format!("/coverage?{window}")).await;
        assert_eq!(status, 200, "{coverage}");
        let names: Vec<String> = [&dir_a, &dir_b]
            .iter()
            .map(|d| d.path().canonicalize().unwrap().display().to_string())
            .collect();
        let mut seen: BTreeMap<(i64, &str), Expected> = BTreeMap::new();
        let mut suspect = Vec::new();
        for hour in coverage["hours"].as_array().unwrap() {
            let at = created_at(&serde_json::json!({"created_at": hour["hour"]})) / 3600;
            if hour["suspect"] == true {
                suspect.push(at);
            }
            for kind in TRACKED {
                let t = &hour["by_type"][kind];
                let figures = Expected {
                    archive: t["archive_events"].as_u64().unwrap(),
                    live: t["live_events"].as_u64().unwrap(),
                    live_only: t["live_only"].as_u64().unwrap(),
                    by_source: [0, 0],
                };
                if figures != Expected::default() {
                    seen.insert((at, kind), figures);
                }
            }
            // Each source's share of the hour's union, exactly.
            let union = hour["archive_events"].as_u64().unwrap();
            for (i, name) in names.iter().enumerate() {
                let events: u64 = TRACKED
                    .iter()
                    .filter_map(|kind| expected.get(&(at, *kind)))
                    .map(|e| e.by_source[i])
                    .sum();
                let source = &hour["sources"][name];
                assert_eq!(
                    source["events"].as_u64().unwrap_or(0),
                    events,
                    "{name} {hour}"
                );
                if events > 0 {
                    assert_eq!(
                        source["share"].as_f64().unwrap(),
                        events as f64 / union as f64
                    );
                }
            }
            let share = hour["share"].as_f64();
            assert!(share.is_none_or(|s| s <= 1.0), "{hour}");
        }
        let mut wanted: BTreeMap<(i64, &str), Expected> = BTreeMap::new();
        for (key, e) in expected.iter().filter(|(_, e)| **e != Expected::default()) {
            wanted.insert(
                *key,
                Expected {
                    by_source: [0, 0],
                    ..*e
                },
            );
        }
        assert_eq!(seen, wanted);
        assert_eq!(
            suspect,
            [TODAY / 3600 + THIN_HOUR],
            "the thin hour, and only it"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_late_arrival_is_stored_counted_and_shown() {
    // 2021-07-21's hour 06, settled by its own file; then an event of that
    // hour arrives in a file that is not an archive hour.
    let events = fixture_file_events("events-2021-07-21-sample.json.gz");
    let hour = events.iter().map(created_at).min().unwrap() / 3600;
    let in_hour: Vec<&Value> = events
        .iter()
        .filter(|e| created_at(e) / 3600 == hour && tracked(e))
        .collect();
    let (late, on_time) = in_hour.split_last().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hour_file = write_hour_file(dir.path(), hour, on_time);
    let loose = dir.path().join("later.json");
    std::fs::write(&loose, format!("{late}\n")).unwrap();
    let window = format!(
        "from={}&to={}",
        rfc3339(hour * 3600),
        rfc3339(hour * 3600 + 3600)
    );
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let app = TestApp::spawn(store.location.clone(), None).await;
        import_files(&app.store, vec![hour_file.clone()], &[]).await;
        let before = app.get(&format!("/metrics/event-counts?{window}")).await;
        assert_eq!(
            before.headers()["x-complete-until"],
            rfc3339(hour * 3600 + 3600).as_str()
        );
        let before: Value = before.json().await.unwrap();
        import_files(&app.store, vec![loose.clone()], &[]).await;
        let (_, after) = app
            .get_json(&format!("/metrics/event-counts?{window}"))
            .await;
        let kind = late["type"].as_str().unwrap();
        assert_eq!(
            after[kind],
            before[kind].as_u64().unwrap() + 1,
            "stored: it is real"
        );
        let (_, coverage) = app.get_json(&format!("/coverage?{window}")).await;
        let hours = coverage["hours"].as_array().unwrap();
        assert_eq!(hours.len(), 1, "{coverage}");
        assert_eq!(hours[0]["late_arrivals"], 1, "{coverage}");
        assert_eq!(hours[0]["by_type"][kind]["late_arrivals"], 1);
        assert_eq!(hours[0]["archive_events"], on_time.len() as u64);
        let metrics = app.get("/metrics").await.text().await.unwrap();
        assert!(
            metrics
                .lines()
                .any(|l| l == "ghmetrics_archive_late_arrivals 1"),
            "{metrics}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn the_import_measures_the_lag_and_names_the_suspect_hours() {
    let events = todays_events();
    let dir = tempfile::tempdir().unwrap();
    let files = archive_files(dir.path(), &events, |_, _| true);
    // Per file: the largest lag of its tracked events, counted here.
    let mut file_lag: BTreeMap<i64, i64> = BTreeMap::new();
    for (event, hour) in events.iter().filter(|(e, _)| tracked(e)) {
        let lag = hour - created_at(event) / 3600;
        let worst = file_lag.entry(*hour).or_default();
        *worst = (*worst).max(lag);
    }
    let largest = *file_lag.values().max().unwrap();
    assert!(largest >= 3, "events hours late");
    for (allowed, store) in [(6, every_store().remove(0)), (2, every_store().remove(0))] {
        let db = store.open().await;
        let options = ghmetrics::ingest::import::ImportOptions {
            archive_lag_hours: allowed,
            ..Default::default()
        };
        let inputs = files.clone();
        let summary = ghmetrics::ingest::import::import(&db, &inputs, &options)
            .await
            .unwrap();
        assert_eq!(summary.max_lag_hours, largest);
        let beyond: Vec<String> = file_lag
            .iter()
            .filter(|&(_, lag)| *lag > allowed)
            .map(|(hour, lag)| {
                let path = dir
                    .path()
                    .join(ghmetrics::ingest::gharchive::file_name(*hour));
                format!("{}: {lag} h", path.display())
            })
            .collect();
        assert_eq!(summary.files_beyond_lag, beyond, "allowed {allowed} h");
        if allowed == 6 {
            // (With 2, the hours after the stand-in's last created hour
            // settle empty: suspect too, rightly.)
            assert_eq!(summary.suspect_hours, [TODAY / 3600 + THIN_HOUR]);
        }
        let (_, health) = {
            let app = TestApp::spawn_with(store.location.clone(), None, |config| {
                config.archive_lag_hours = allowed;
            })
            .await;
            let health = app.get_json("/health").await;
            app.stop().await;
            health
        };
        assert_eq!(health["archives"]["max_lag_hours"], largest);
        assert_eq!(health["archives"]["files_beyond_lag"], beyond.len());
    }
}
