//! The metric queries against a large database.
//!
//! `GHMETRICS_BENCH_DB=/path/to.db cargo bench --bench queries` measures an
//! existing database (build the 10-million-event one with
//! `examples/generate_events.rs`, see BENCHMARKS.md); without it, a 200,000-event
//! database is generated in a temporary directory first.

use std::hint::black_box;
use std::io::Read;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use ghmetrics::config::SqliteLocation;
use ghmetrics::core::event::EventType;
use ghmetrics::core::time::END_OF_TIME;
use ghmetrics::core::time::{Buckets, Window};
use ghmetrics::ingest::synthetic::{Generator, SyntheticSettings};
use ghmetrics::store::sqlite::{
    Sqlite, event_counts, for_each_repo_count_between, insert_events, pr_counts, pr_gaps,
    pr_gaps_by_window, timeline,
};
use ghmetrics::store::{Filter, Ranking};

fn fixture_lines() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/events-2021-07-21-sample.json.gz"
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines().map(str::to_owned).collect()
}

fn database() -> (Sqlite, Option<tempfile::TempDir>) {
    if let Ok(path) = std::env::var("GHMETRICS_BENCH_DB") {
        return (
            Sqlite::open(&SqliteLocation::File(PathBuf::from(path))).unwrap(),
            None,
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let db = Sqlite::open(&SqliteLocation::File(dir.path().join("bench.db"))).unwrap();
    let span_seconds = 30 * 86_400;
    let settings = SyntheticSettings {
        events: 200_000,
        start: chrono::Utc::now().timestamp() - span_seconds,
        span_seconds,
        repositories: 20_000,
        actors: 20_000,
        first_id: 1,
        seed: 7,
    };
    let mut generator = Generator::new(fixture_lines(), settings).unwrap();
    let events: Vec<_> = std::iter::from_fn(|| generator.next_event()).collect();
    insert_events(
        &mut db.get().unwrap(),
        &events,
        ghmetrics::store::Origin::GlobalFeed,
        None,
    )
    .unwrap();
    (db, Some(dir))
}

fn metric_queries(c: &mut Criterion) {
    let (db, _dir) = database();
    let conn = db.get().unwrap();
    // The repository with the most PR openings, and the one nearest 1,000.
    let repository = |order: &str| -> String {
        conn.query_row(
            &format!(
                "SELECT repo_name FROM events WHERE type_code = 2 AND action = 'opened'
                 GROUP BY repo_name ORDER BY {order} LIMIT 1"
            ),
            [],
            |row| row.get(0),
        )
        .unwrap()
    };
    let busiest = repository("count(*) DESC");
    let thousand = repository("abs(count(*) - 1000)");
    for repo in [&busiest, &thousand] {
        let openings = pr_gaps(&conn, repo, 0, END_OF_TIME, false)
            .unwrap()
            .openings;
        eprintln!("repository {repo}: {openings} PR openings");
    }

    // Windows end just after the newest stored event, so that even the
    // one-minute window counts real rows whatever the database's age.
    let now: i64 = conn
        .query_row(
            "SELECT created_at + 1 FROM events ORDER BY id DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    let mut group = c.benchmark_group("event_counts");
    for (label, minutes) in [
        ("1min", 1),
        ("1h", 60),
        ("1d", 1440),
        ("7d", 7 * 1440),
        ("all", 10_000_000),
    ] {
        group.bench_function(label, |b| {
            b.iter(|| {
                event_counts(
                    &conn,
                    black_box(now - minutes * 60),
                    END_OF_TIME,
                    &Filter::ALL,
                )
                .unwrap()
            })
        });
    }
    // One day anywhere in the last 30: ragged at both ends, so every rollup
    // level is read at both (a new day each iteration, cycling over 64).
    let days: Vec<i64> = (0..64)
        .map(|i| now - 29 * 86_400 + i * 37_861 % (28 * 86_400))
        .collect();
    let mut next = days.iter().cycle();
    group.bench_function("1d_anywhere", |b| {
        b.iter(|| {
            let from = *next.next().unwrap();
            event_counts(&conn, black_box(from), from + 86_400, &Filter::ALL).unwrap()
        })
    });
    // The same without the bots' events: less their count, from their index.
    let humans = Filter {
        repo_name: None,
        exclude_bots: true,
    };
    let mut next = days.iter().cycle();
    group.bench_function("1d_anywhere_without_bots", |b| {
        b.iter(|| {
            let from = *next.next().unwrap();
            event_counts(&conn, black_box(from), from + 86_400, &humans).unwrap()
        })
    });
    group.finish();
    // The busiest repository's timeline over the last 30 days, 30 buckets.
    let one_repo = Filter {
        repo_name: Some(busiest.clone()),
        exclude_bots: false,
    };
    let month = Buckets {
        first_minute: now / 60 - 30 * 1440,
        minutes: 1440,
        count: 30,
    };
    c.bench_function("timeline/busiest_repository_30d", |b| {
        b.iter(|| timeline(&conn, black_box(month), &one_repo).unwrap())
    });
    c.bench_function("pr_gaps/busiest", |b| {
        b.iter(|| pr_gaps(&conn, black_box(&busiest), 0, END_OF_TIME, false).unwrap())
    });
    c.bench_function("pr_gaps/about_1000_openings", |b| {
        b.iter(|| pr_gaps(&conn, black_box(&thousand), 0, END_OF_TIME, false).unwrap())
    });
    c.bench_function("pr_gaps/unknown", |b| {
        b.iter(|| pr_gaps(&conn, black_box("no/such-repo"), 0, END_OF_TIME, false).unwrap())
    });
    // The LAG() form the handler does not use, for the comparison.
    c.bench_function("pr_gaps_by_window/busiest", |b| {
        b.iter(|| pr_gaps_by_window(&conn, black_box(&busiest)).unwrap())
    });
    c.bench_function("pr_gaps_by_window/about_1000_openings", |b| {
        b.iter(|| pr_gaps_by_window(&conn, black_box(&thousand)).unwrap())
    });
    c.bench_function("pr_counts/limit_100", |b| {
        b.iter(|| pr_counts(&conn, black_box(Some(100))).unwrap())
    });
    let mut next = days.iter().cycle();
    c.bench_function("pr_counts/limit_100_one_day_anywhere", |b| {
        b.iter(|| {
            let from = *next.next().unwrap();
            let mut ranked = 0;
            let ranking = Ranking {
                event_type: EventType::PullRequest,
                window: Window {
                    from: black_box(from),
                    to: from + 86_400,
                },
                limit: Some(100),
                exclude_bots: false,
            };
            for_each_repo_count_between(&conn, ranking, |_, _| {
                ranked += 1;
                true
            })
            .unwrap();
            ranked
        })
    });
}

/// Rendering the bar chart from scratch (what a cache miss of
/// `/metrics/visualization` costs).
fn chart(c: &mut Criterion) {
    let counts = ghmetrics::store::EventCounts {
        watch: 4_547_195,
        pull_request: 2_980_642,
        issues: 2_472_163,
    };
    use ghmetrics::http::chart::{ImageFormat, Timeline, render_event_counts, render_timeline};
    c.bench_function("chart/render_png", |b| {
        b.iter(|| {
            render_event_counts(black_box(&counts), "the last hour", ImageFormat::Png).unwrap()
        })
    });
    c.bench_function("chart/render_svg", |b| {
        b.iter(|| {
            render_event_counts(black_box(&counts), "the last hour", ImageFormat::Svg).unwrap()
        })
    });
    // A day in 60 buckets of 24 minutes.
    let timeline = Timeline {
        start: 1_700_000_000,
        bucket_seconds: 24 * 60,
        buckets: (0..60u64)
            .map(|i| ghmetrics::core::event::PerType([100 + i, 80 + i % 7, 60 + i % 13]))
            .collect(),
    };
    c.bench_function("chart/timeline_png", |b| {
        b.iter(|| render_timeline(black_box(&timeline), "the last day", ImageFormat::Png).unwrap())
    });
}

criterion_group!(benches, metric_queries, chart);
criterion_main!(benches);
