//! `ghmetrics import`: real GH Archive files, dedupe against itself and the
//! poller, bad input, and importing into a database the service is using.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use ghmetrics::config::SqliteLocation;
use ghmetrics::ingest::import::{ImportOptions, import};
use ghmetrics::store::Store;
use ghmetrics::store::sqlite::{Sqlite, rollup_disagreement, stored_event_count};
use serde_json::Value;

use crate::helpers::{
    Expected, FIXTURE_FILES, MockGithub, TestApp, fixture_events, fixture_file_events,
    fixture_path, test_poller_config,
};
use crate::stores::{every_store, rollup_parts};

fn all_fixture_events() -> Vec<Value> {
    FIXTURE_FILES
        .iter()
        .flat_map(|name| fixture_file_events(name))
        .collect()
}

/// The events of one fixture, one JSON text each.
fn fixture_lines(name: &str) -> Vec<String> {
    fixture_file_events(name)
        .iter()
        .map(Value::to_string)
        .collect()
}

/// How many of `lines` are events of a tracked type.
fn tracked_events(lines: &[String]) -> u64 {
    lines
        .iter()
        .filter(|line| {
            ghmetrics::core::event::parse_event(line.as_str())
                .unwrap()
                .is_some()
        })
        .count() as u64
}

fn fixture_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in FIXTURE_FILES {
        std::fs::copy(fixture_path(name), dir.path().join(name)).unwrap();
    }
    // Not importable: ignored when the directory is expanded.
    std::fs::write(dir.path().join("notes.txt"), "not events").unwrap();
    dir
}

fn small_batches() -> ImportOptions {
    // Small batches so that the three fixtures span many transactions.
    ImportOptions {
        batch_size: 37,
        ..ImportOptions::default()
    }
}

/// `import` in small batches.
async fn import_small_batches(
    store: &Store,
    inputs: Vec<PathBuf>,
) -> ghmetrics::ingest::import::ImportSummary {
    import(store, &inputs, &small_batches()).await.unwrap()
}

#[tokio::test]
async fn imports_real_archives_once_however_often_they_are_imported() {
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let data = fixture_dir();
        let db = store.open().await;
        let expected = Expected::of(&all_fixture_events());
        let lines: u64 = FIXTURE_FILES
            .iter()
            .map(|f| fixture_file_events(f).len() as u64)
            .sum();

        let first = import_small_batches(&db, vec![data.path().to_path_buf()]).await;
        if let Store::ClickHouse(_) = &db {
            // Many small batches, many parts; the import merges the rollup.
            let (parts, shards) = rollup_parts(&store).await;
            assert!(parts <= shards, "{}: {parts} parts", store.name);
        }
        assert_eq!(first.files_complete, 3);
        assert!(first.files_failed.is_empty());
        assert_eq!(first.lines, lines);
        assert_eq!(first.stored.inserted(), expected.total());
        assert_eq!(
            first.skipped + first.stored.inserted() + first.stored.duplicates,
            lines
        );
        assert_eq!(first.bad_lines, 0);

        let again = import_small_batches(&db, vec![data.path().join(FIXTURE_FILES[2])]).await;
        assert_eq!(again.stored.inserted(), 0);
        assert_eq!(
            again.stored.duplicates,
            Expected::of(&fixture_file_events(FIXTURE_FILES[2])).total()
        );

        if let Store::Sqlite(sqlite) = &db {
            assert_eq!(rollup_disagreement(&sqlite.get().unwrap()).unwrap(), None);
        }
        assert_eq!(db.totals().await.unwrap().events, expected.total());
        expected.assert_counted_by(&db).await;
    }
}

#[tokio::test]
async fn import_adds_only_what_the_poller_has_not_stored() {
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let raw = fixture_events();
        let mock = MockGithub::start(100).await;
        mock.set_feed(&raw[..300]);
        let polled = Expected::of(&raw[..300]).total();
        let mut app =
            TestApp::spawn(store.location.clone(), Some(test_poller_config(&mock.url))).await;
        app.wait_for_report(|r| r.events_inserted == polled).await;

        // The service keeps running (and polling) while the import writes.
        let db = store.open().await;
        let file = fixture_path("events-2021-07-21-sample.json.gz");
        let summary = import_small_batches(&db, vec![file]).await;
        let expected = Expected::of(&raw);
        let total = expected.total();
        assert_eq!(summary.stored.inserted(), total - polled);
        assert_eq!(summary.stored.duplicates, polled);

        let (_, health) = app.get_json("/health").await;
        assert_eq!(health["events_stored"], total);
        let (_, counts) = app
            .get_json("/metrics/event-counts?offset_minutes=10000000")
            .await;
        for (event_type, n) in &expected.by_type {
            assert_eq!(counts[event_type], *n, "{event_type}");
        }
        app.stop().await;
        if let Store::Sqlite(sqlite) = &db {
            assert_eq!(rollup_disagreement(&sqlite.get().unwrap()).unwrap(), None);
        }
    }
}

/// A gzip file cut short, as an interrupted download leaves it.
fn truncated_copy(dir: &std::path::Path) -> PathBuf {
    let whole = std::fs::read(fixture_path("events-2015-01-01-first1000.json.gz")).unwrap();
    let path = dir.join("truncated.json.gz");
    std::fs::write(&path, &whole[..whole.len() / 3]).unwrap();
    path
}

#[tokio::test]
async fn bad_lines_and_broken_files_are_reported_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let good: Vec<Value> = fixture_file_events("events-2019-11-27-first100.json.gz");
    let plain = dir.path().join("mixed.ndjson");
    let mut file = std::fs::File::create(&plain).unwrap();
    for (i, event) in good.iter().enumerate() {
        writeln!(file, "{event}").unwrap();
        match i {
            3 => writeln!(file, "this is not json").unwrap(),
            4 => writeln!(
                file,
                r#"{{"id":"12","type":"WatchEvent","created_at":"2019-11-27T03:00:00Z"}}"#
            )
            .unwrap(),
            5 => writeln!(file).unwrap(),
            6 => write!(file, "{{\"id\":\"13\",\"type\":\"IssuesEvent\"\r\n").unwrap(),
            _ => {}
        }
    }
    drop(file);
    let truncated = truncated_copy(dir.path());
    let missing = dir.path().join("missing.json.gz");

    let db = Sqlite::open(&SqliteLocation::Memory).unwrap();
    let summary = import(
        &Store::Sqlite(db.clone()),
        &[plain, truncated, missing],
        &small_batches(),
    )
    .await
    .unwrap();
    assert_eq!(summary.bad_lines, 3);
    assert_eq!(summary.files_complete, 1);
    assert_eq!(summary.files_failed.len(), 2, "{:?}", summary.files_failed);
    assert!(summary.files_failed[0].contains("truncated.json.gz"));
    assert!(summary.files_failed[1].contains("missing.json.gz"));

    // Everything readable before the truncation point was kept.
    let stored = stored_event_count(&db.get().unwrap()).unwrap();
    let from_plain = Expected::of(&good).total();
    assert!(
        stored > from_plain,
        "some of the truncated file was imported"
    );
    let whole_2015 =
        Expected::of(&fixture_file_events("events-2015-01-01-first1000.json.gz")).total();
    assert!(stored < from_plain + whole_2015, "but not all of it");
    assert_eq!(summary.stored.inserted(), stored);
    assert_eq!(rollup_disagreement(&db.get().unwrap()).unwrap(), None);
}

#[test]
fn the_import_command_reports_and_fails_on_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("cli.db");
    let truncated = truncated_copy(dir.path());
    let good = fixture_path("events-2021-07-21-sample.json.gz");
    let output = Command::new(env!("CARGO_BIN_EXE_ghmetrics"))
        .args(["import", "--db", db_path.to_str().unwrap()])
        .arg(&good)
        .arg(&truncated)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("1 file(s) imported, 1 failed"), "{stdout}");
    assert!(
        stdout.contains("failed: ") && stdout.contains("truncated.json.gz"),
        "{stdout}"
    );
    // Said once, on stdout; the log has no error line and no migration chatter.
    let all = format!("{stdout}{stderr}");
    assert_eq!(all.matches("truncated.json.gz").count(), 1, "{all}");
    assert!(
        !stderr.contains("ERROR") && !stderr.contains("error:"),
        "{stderr}"
    );
    assert!(!stderr.contains("migration"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_ghmetrics"))
        .args(["import", "--db", db_path.to_str().unwrap()])
        .arg(&good)
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("0 events stored, 143 duplicates"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_repository_filter_keeps_only_those_repositories() {
    let events = fixture_file_events("events-2021-07-21-sample.json.gz");
    let wanted = ["gabrieldonadel/pull-requests-limits", "weseek/growi"];
    let db = Sqlite::open(&SqliteLocation::Memory).unwrap();
    let options = ImportOptions {
        repos: wanted.iter().map(|r| r.to_string()).collect(),
        ..small_batches()
    };
    let summary = import(
        &Store::Sqlite(db.clone()),
        &[fixture_path("events-2021-07-21-sample.json.gz")],
        &options,
    )
    .await
    .unwrap();
    let expected = Expected::of(
        events
            .iter()
            .filter(|e| wanted.contains(&e["repo"]["name"].as_str().unwrap())),
    );
    assert!(expected.total() >= 5);
    assert_eq!(summary.stored.inserted(), expected.total());
    let repos: Vec<String> = db
        .get()
        .unwrap()
        .prepare("SELECT DISTINCT repo_name FROM events ORDER BY 1")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(repos, wanted);
}

/// A gzip bomb (one 64 MiB line of `a` from a file of about 64 KiB), a file
/// that is not events at all, and a good archive: the bomb's line is skipped
/// as one bad line without being held, and only the archive counts as imported.
#[test]
fn overlong_lines_are_skipped_and_files_without_events_fail() {
    use flate2::Compression;
    use flate2::write::GzEncoder;
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.json.gz");
    let mut encoder = GzEncoder::new(std::fs::File::create(&bomb).unwrap(), Compression::best());
    let block = vec![b'a'; 1 << 20];
    for _ in 0..64 {
        encoder.write_all(&block).unwrap();
    }
    encoder.finish().unwrap();
    assert!(std::fs::metadata(&bomb).unwrap().len() < 1 << 20);
    let readme = dir.path().join("README.md");
    std::fs::write(&readme, "# Not events\n\nJust prose.\n").unwrap();
    let good = fixture_path("events-2019-11-27-first100.json.gz");

    let db_path = dir.path().join("cli.db");
    let output = Command::new(env!("CARGO_BIN_EXE_ghmetrics"))
        .args(["import", "--max-line-bytes", "1048576", "--db"])
        .arg(&db_path)
        .args([&bomb, &readme, &good])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("1 file(s) imported, 2 failed"), "{stdout}");
    assert!(stdout.contains("bomb.json.gz: no GitHub event"), "{stdout}");
    assert!(stdout.contains("README.md: no GitHub event"), "{stdout}");
    // One bad line for the bomb, two for the README's non-blank lines.
    assert!(stdout.contains(" 3 bad lines"), "{stdout}");
    assert!(stderr.contains("longer than 1048576 bytes"), "{stderr}");
    // The summary is on stdout only; logs are on stderr only.
    assert!(!stderr.contains("file(s) imported"), "{stderr}");
    assert!(!stdout.contains("WARN"), "{stdout}");
    let db = Sqlite::open(&SqliteLocation::File(db_path)).unwrap();
    let expected = Expected::of(&fixture_file_events("events-2019-11-27-first100.json.gz"));
    assert_eq!(
        stored_event_count(&db.get().unwrap()).unwrap(),
        expected.total()
    );
}

/// Lines just under and just over the limit, around normal lines: every
/// normal line survives, in order, and only the long one is dropped.
#[tokio::test]
async fn the_line_limit_is_exact_and_keeps_the_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let events = fixture_file_events("events-2019-11-27-first100.json.gz");
    let path = dir.path().join("mixed.ndjson");
    let mut file = std::fs::File::create(&path).unwrap();
    let limit = 4096;
    for (i, event) in events.iter().enumerate() {
        let line = event.to_string();
        if line.len() > limit {
            continue;
        }
        writeln!(file, "{line}").unwrap();
        if i == 10 {
            writeln!(file, "{}", "x".repeat(limit + 1)).unwrap();
        }
    }
    drop(file);
    let kept: Vec<Value> = events
        .iter()
        .filter(|e| e.to_string().len() <= limit)
        .cloned()
        .collect();
    let db = Sqlite::open(&SqliteLocation::Memory).unwrap();
    let options = ImportOptions {
        max_line_bytes: limit,
        ..small_batches()
    };
    let summary = import(&Store::Sqlite(db.clone()), &[path], &options)
        .await
        .unwrap();
    assert_eq!(summary.bad_lines, 1);
    assert_eq!(summary.lines, kept.len() as u64 + 1);
    assert_eq!(summary.stored.inserted(), Expected::of(&kept).total());
}

/// A file with a byte-order mark and CRLF line ends loses no event.
#[tokio::test]
async fn a_byte_order_mark_and_crlf_line_ends_lose_nothing() {
    let lines = fixture_lines("events-2021-07-21-sample.json.gz");
    let tracked = tracked_events(&lines);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("windows.json");
    let mut text = String::from("\u{feff}");
    for line in &lines {
        text.push_str(line);
        text.push_str("\r\n");
    }
    std::fs::write(&path, text).unwrap();
    let db = Sqlite::open(&SqliteLocation::Memory).unwrap();
    let summary = import(&Store::Sqlite(db), &[path], &ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(summary.files_complete, 1);
    assert_eq!(summary.bad_lines, 0);
    assert_eq!(summary.stored.inserted(), tracked);
}

/// A file holding one JSON array is refused in words a user can act on.
#[tokio::test]
async fn a_json_array_file_says_what_is_wrong() {
    let lines = fixture_lines("events-2021-07-21-sample.json.gz");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("array.json");
    std::fs::write(&path, format!("[{}]", lines[..20].join(","))).unwrap();
    let db = Sqlite::open(&SqliteLocation::Memory).unwrap();
    let summary = import(&Store::Sqlite(db), &[path], &ImportOptions::default())
        .await
        .unwrap();
    let [failure] = &summary.files_failed[..] else {
        panic!("{:?}", summary.files_failed)
    };
    assert!(failure.contains("line 1: a JSON array"), "{failure}");
    assert!(
        failure.contains("one JSON event object per line"),
        "{failure}"
    );
    assert!(!failure.contains("untagged"), "{failure}");
}

#[tokio::test]
async fn a_gz_file_that_is_not_gzip_says_so() {
    let lines = fixture_lines("events-2021-07-21-sample.json.gz");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.json.gz");
    std::fs::write(&path, lines[..20].join("\n")).unwrap();
    let db = Sqlite::open(&SqliteLocation::Memory).unwrap();
    let summary = import(&Store::Sqlite(db), &[path], &ImportOptions::default())
        .await
        .unwrap();
    let [failure] = &summary.files_failed[..] else {
        panic!("{:?}", summary.files_failed)
    };
    assert!(failure.ends_with("plain.json.gz: not a gzip file, though its name ends in .gz (a plain file of events is read as .json)"), "{failure}");
}

/// An event whose repository name GitHub would not allow is a bad line, on
/// every store; the rest of the file is stored, and pr-counts answers.
#[tokio::test]
async fn events_with_impossible_repository_names_are_bad_lines() {
    let lines = fixture_lines("events-2021-07-21-sample.json.gz");
    let tracked = tracked_events(&lines);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("names.json");
    let mut text = String::new();
    for (i, name) in ["o/r'x", &format!("o/{}", "r".repeat(200_000)), "noslash"]
        .iter()
        .enumerate()
    {
        let event = serde_json::json!({"id": (90_000 + i).to_string(), "type": "PullRequestEvent",
            "repo": {"name": name}, "payload": {"action": "opened"},
            "created_at": "2021-07-21T07:00:00Z"});
        text.push_str(&format!("{event}\n"));
    }
    text.push_str(&lines.join("\n"));
    std::fs::write(&path, text).unwrap();
    for store in every_store() {
        let handle = store.open().await;
        let summary = import(
            &handle,
            std::slice::from_ref(&path),
            &ImportOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            (summary.bad_lines, summary.stored.inserted()),
            (3, tracked),
            "{}",
            store.name
        );
        assert_eq!(
            handle.totals().await.unwrap().events,
            tracked,
            "{}",
            store.name
        );
    }
}

/// The README's SQL recipes run as written on imported events and return
/// rows, and those that filter `events` read it through an index, not a scan.
#[tokio::test]
async fn the_readmes_sql_recipes_run_and_use_the_indexes() {
    let readme = include_str!("../../README.md");
    let block = readme
        .split("### Queries to start from")
        .nth(1)
        .and_then(|section| section.split("```sql").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the README's SQL recipes");
    let statements: Vec<&str> = block
        .split(';')
        .filter(|s| {
            s.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
        })
        .collect();
    assert!(statements.len() >= 5, "{statements:?}");
    let db = Sqlite::open(&SqliteLocation::Memory).unwrap();
    let files: Vec<PathBuf> = FIXTURE_FILES.iter().map(|f| fixture_path(f)).collect();
    import(
        &Store::Sqlite(db.clone()),
        &files,
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    let conn = db.get().unwrap();
    for statement in statements {
        let mut query = conn
            .prepare(statement)
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        let mut rows = query.query([]).unwrap();
        let mut count = 0;
        while rows.next().unwrap().is_some() {
            count += 1;
        }
        assert!(count > 0, "no rows: {statement}");
        if statement.contains("FROM events WHERE") {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {statement}"))
                .unwrap()
                .query_map([], |row| row.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let events_plan: Vec<&String> =
                plan.iter().filter(|line| line.contains("events")).collect();
            assert!(
                events_plan.iter().all(|line| line.contains("USING")),
                "{statement}: {plan:?}"
            );
        }
    }
}
