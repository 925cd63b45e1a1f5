//! What only the ClickHouse store has to show: writers in several processes
//! storing each event once, a crashed writer's lock taken over, events spread
//! over the cluster's shards, and tables an analyst can query. Runs when
//! `clickhouse-server` is installed (see `stores`).

use std::time::{Duration, Instant};

use ghmetrics::core::event::{EventType, parse_event};
use ghmetrics::store::clickhouse::lock;
use ghmetrics::store::{InsertStats, Store};
use serde_json::Value;

use crate::helpers::{Expected, FIXTURE_FILES, fixture_events, fixture_file_events};
use crate::stores::{
    ClickHouseServers, TestStore, clickhouse, clickhouse_stores, rollup_parts, sql_on,
};

/// The events of every fixture file (not the mock feed's), as recorded.
fn file_fixture_events() -> Vec<Value> {
    FIXTURE_FILES
        .iter()
        .flat_map(|file| fixture_file_events(file))
        .collect()
}

/// The fixture events as the parser stores them.
fn parsed(raw: &[Value]) -> Vec<ghmetrics::core::event::Event> {
    raw.iter()
        .filter_map(|e| parse_event(&serde_json::to_vec(e).unwrap()).unwrap())
        .collect()
}

/// Four writers on two handles (as the poller and an import in two
/// processes would be) store overlapping batches at once: every event is
/// stored once, not a row more, and the counts are exact at once.
#[tokio::test]
async fn concurrent_writers_store_each_event_once() {
    let mut raw = fixture_events();
    raw.extend(file_fixture_events());
    let events = parsed(&raw);
    let expected = Expected::of(&raw);
    for store in clickhouse_stores() {
        eprintln!("store: {}", store.name);
        let handles = [store.open().await, store.open().await];
        let mut writers = tokio::task::JoinSet::new();
        for writer in 0..4 {
            let handle: Store = handles[writer % 2].clone();
            // Overlapping windows of the same events, in different batch sizes.
            let slice: Vec<_> = events[writer * events.len() / 8..].to_vec();
            let batch = 50 + writer * 70;
            writers.spawn(async move {
                let mut inserted = 0;
                for chunk in slice.chunks(batch) {
                    inserted += handle
                        .insert_events(chunk.to_vec(), ghmetrics::store::Origin::GlobalFeed)
                        .await
                        .unwrap()
                        .inserted();
                }
                inserted
            });
        }
        let mut inserted = 0;
        while let Some(done) = writers.join_next().await {
            inserted += done.unwrap();
        }
        assert_eq!(inserted, expected.total(), "inserted counted once in all");
        let totals = handles[0].totals().await.unwrap();
        assert_eq!(totals.events, expected.total());
        expected.assert_counted_by(&handles[1]).await;
        let rows = store
            .sql(&format!(
                "SELECT count(), uniqExact(id) FROM {}.events",
                store.database()
            ))
            .await;
        let expected_rows = format!("{0}\t{0}\n", expected.total());
        assert_eq!(rows, expected_rows, "no duplicate row, even unmerged");
    }
}

/// An id that comes back carrying another time, type or repository is the
/// same event: every store keeps the first copy and counts it once.
#[tokio::test]
async fn an_id_is_stored_once_whatever_its_copy_carries() {
    let raw = file_fixture_events();
    let events = parsed(&raw);
    let expected = Expected::of(&raw);
    let altered: Vec<ghmetrics::core::event::Event> = events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let mut copy = event.clone();
            match i % 4 {
                0 => copy.created_at -= 40 * 86_400,
                1 => copy.created_at += 3_600,
                2 => {
                    copy.event_type = match copy.event_type {
                        EventType::Watch => EventType::Issues,
                        _ => EventType::Watch,
                    }
                }
                _ => copy.repo_name = "someone/else".to_owned(),
            }
            copy
        })
        .collect();
    for store in crate::stores::every_store() {
        eprintln!("store: {}", store.name);
        let handle = store.open_with(events.clone()).await;
        let first = handle
            .event_counts(ghmetrics::core::time::Window::EVER, Default::default())
            .await
            .unwrap();
        // Alone in its batch, a copy's time range holds no other event.
        let mut stats = InsertStats::default();
        for copy in &altered {
            stats += handle
                .insert_events(vec![copy.clone()], ghmetrics::store::Origin::GlobalFeed)
                .await
                .unwrap();
        }
        assert_eq!(
            (stats.inserted(), stats.duplicates),
            (0, events.len() as u64)
        );
        assert_eq!(handle.totals().await.unwrap().events, expected.total());
        assert_eq!(
            handle
                .event_counts(ghmetrics::core::time::Window::EVER, Default::default())
                .await
                .unwrap(),
            first
        );
        for (event_type, n) in first.by_type() {
            assert_eq!(n, expected.by_type[event_type.as_str()], "{event_type:?}");
        }
        let ranking_after = ranking(&handle, 1_000).await;
        assert!(ranking_after.iter().all(|(repo, _)| repo != "someone/else"));
        if store.name != "sqlite" {
            let rows = store
                .sql(&format!(
                    "SELECT count(), uniqExact(id) FROM {}.events",
                    store.database()
                ))
                .await;
            assert_eq!(rows, format!("{0}\t{0}\n", expected.total()));
        }
    }
}

/// A dead writer's lock (its holder `dead`, as every lock names its holder),
/// made by hand with one heartbeat: the next writer waits while it still
/// looks alive.
async fn dead_lock(store: &TestStore) {
    let db = store.database();
    store
        .sql(&format!(
            "CREATE TABLE {db}.ghmetrics_write_lock (at DateTime, holder String DEFAULT 'dead') \
             ENGINE = Memory"
        ))
        .await;
    store
        .sql(&format!(
            "INSERT INTO {db}.ghmetrics_write_lock (at) VALUES (now())"
        ))
        .await;
}

/// The names of the lock tables in the store's database.
async fn lock_tables(store: &TestStore) -> String {
    store
        .sql(&format!(
            "SELECT name FROM system.tables WHERE database = '{}' AND name LIKE 'ghmetrics_%lock%' \
             ORDER BY name",
            store.database()
        ))
        .await
}

/// A writer killed while holding the lock leaves the lock table behind;
/// the next writer waits while the lock still looks alive, then takes it
/// over once its heartbeat has been silent for 10 s.
#[tokio::test]
async fn a_dead_writers_lock_is_taken_over() {
    let Some(servers) = clickhouse() else {
        return;
    };
    let store = servers.single();
    let handle = store.open().await;
    dead_lock(&store).await;
    let events = parsed(&fixture_events()[..100]);
    let started = Instant::now();
    let stats = tokio::time::timeout(
        Duration::from_secs(30),
        handle.insert_events(events, ghmetrics::store::Origin::GlobalFeed),
    )
    .await
    .expect("the stale lock was not taken over")
    .unwrap();
    let waited = started.elapsed();
    assert!(stats.inserted() > 0);
    assert!(
        waited >= Duration::from_secs(9),
        "waited only {waited:?} for a lock that still looked alive"
    );
    assert_eq!(
        lock_tables(&store).await,
        "ghmetrics_write_lock_ended_dead\n",
        "the writer's own lock is released and gone; the dead one is kept under its ended name"
    );
}

/// Two writers that saw the same dead lock: the first takes it over and
/// holds a lock of its own; the second, renaming late what it saw, must not
/// remove that live lock (before the ended names, its rename did).
#[tokio::test]
async fn a_dead_lock_is_taken_over_once() {
    let Some(servers) = clickhouse() else {
        return;
    };
    let store = servers.single();
    let Store::ClickHouse(handle) = store.open().await else {
        unreachable!("a ClickHouse store");
    };
    dead_lock(&store).await;
    let late = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let seen = lock::observe(&handle)
                .await
                .unwrap()
                .expect("the dead lock");
            if seen.silent > Duration::from_secs(10) {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the dead lock never looked stale");
    assert_eq!(late.holder, "dead");
    let first = lock::WriteLock::acquire(&handle).await.unwrap();
    let holding = lock::observe(&handle)
        .await
        .unwrap()
        .expect("the first writer's lock");
    assert_ne!(holding.holder, "dead");
    assert!(
        !lock::take_over(&handle, &late).await.unwrap(),
        "the late writer took over a lock"
    );
    assert_eq!(
        lock::observe(&handle)
            .await
            .unwrap()
            .map(|seen| seen.holder),
        Some(holding.holder),
        "the first writer's lock is still in place"
    );
    first.release().await;
    assert_eq!(lock::observe(&handle).await.unwrap(), None);
    assert_eq!(
        lock_tables(&store).await,
        "ghmetrics_write_lock_ended_dead\n"
    );
}

/// Through the Distributed table, events land on both shards (by the id's
/// hash) and every answer counts both; with each shard named, and with the
/// tables created `ON CLUSTER` through ZooKeeper.
#[tokio::test]
async fn the_cluster_spreads_events_over_both_shards() {
    let Some(servers) = clickhouse() else {
        return;
    };
    for store in [Some(servers.cluster()), servers.cluster_on_cluster()]
        .into_iter()
        .flatten()
    {
        spread_over_both_shards(servers, &store).await;
    }
}

async fn spread_over_both_shards(servers: &ClickHouseServers, store: &TestStore) {
    let raw = fixture_events();
    let handle = store.open_with(parsed(&raw)).await;
    let expected = Expected::of(&raw);
    let db = store.database();
    let mut per_shard = Vec::new();
    for port in servers.shard_ports() {
        let local = sql_on(port, &format!("SELECT count() FROM {db}.events_local")).await;
        per_shard.push(local.trim().parse::<u64>().unwrap());
    }
    assert!(
        per_shard.iter().all(|&n| n > expected.total() / 4),
        "{per_shard:?}"
    );
    assert_eq!(per_shard.iter().sum::<u64>(), expected.total());
    assert_eq!(handle.totals().await.unwrap().events, expected.total());
    // Either shard answers for the whole cluster.
    for port in servers.shard_ports() {
        let all = sql_on(port, &format!("SELECT count() FROM {db}.events")).await;
        assert_eq!(all.trim(), expected.total().to_string());
    }
}

/// The tables read as an analyst expects: type names, UTC times, and the PR
/// gap query of docs/clickhouse.md giving the service's answer.
#[tokio::test]
async fn analysts_read_the_tables_with_plain_sql() {
    for store in clickhouse_stores() {
        let raw = fixture_events();
        store.open_with(parsed(&raw)).await;
        let expected = Expected::of(&raw);
        let db = store.database();
        let by_type = store
            .sql(&format!(
                "SELECT type, count() FROM {db}.events GROUP BY type ORDER BY type FORMAT TabSeparated"
            ))
            .await;
        let mut want: Vec<String> = expected
            .by_type
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(t, n)| format!("{t}\t{n}"))
            .collect();
        want.sort();
        let mut got: Vec<String> = by_type.lines().map(str::to_owned).collect();
        got.sort();
        assert_eq!(got, want);
        let (repo, times) = expected
            .openings
            .iter()
            .max_by_key(|(_, t)| t.len())
            .unwrap();
        let gaps = store
            .sql(&format!(
                "SELECT arrayDifference(arraySort(groupArray(toUInt32(created_at))))
                 FROM {db}.pr_openings WHERE repo_name = '{repo}' FORMAT TabSeparated"
            ))
            .await;
        let mut want_gaps = vec![0];
        want_gaps.extend(times.windows(2).map(|w| w[1] - w[0]));
        let want_gaps: Vec<String> = want_gaps.iter().map(ToString::to_string).collect();
        assert_eq!(gaps.trim(), format!("[{}]", want_gaps.join(",")));
    }
}

/// Every question the service asks of a store, asked of SQLite and of one
/// ClickHouse server holding the same events, gets the same answer. With
/// GHMETRICS_CLICKHOUSE_TRANSCRIPT set, the ClickHouse statements and
/// answers are written out for `tests/contract/chdb.sh` to replay on a
/// current ClickHouse engine.
#[tokio::test]
async fn both_stores_answer_every_question_alike() {
    use ghmetrics::store::FeedPoll;
    let Some(servers) = clickhouse() else {
        return;
    };
    let raw = file_fixture_events();
    let mut events = parsed(&raw);
    // And 20,000 generated ones over two days, for repositories with many
    // openings and buckets with many events.
    let templates: Vec<String> = fixture_events().iter().map(Value::to_string).collect();
    let settings = ghmetrics::ingest::synthetic::SyntheticSettings {
        events: 20_000,
        start: 1_700_000_000,
        span_seconds: 2 * 86_400,
        repositories: 300,
        actors: 1000,
        first_id: 90_000_000_000,
        seed: 11,
    };
    let mut generator =
        ghmetrics::ingest::synthetic::Generator::new(templates, settings.clone()).unwrap();
    events.extend(std::iter::from_fn(|| generator.next_event()));
    let sqlite = crate::stores::TestStore::sqlite();
    let clickhouse = servers.single();
    let stores = [sqlite.open().await, clickhouse.open().await];

    let newest = events.iter().map(|e| e.created_at).max().unwrap();
    let oldest = events.iter().map(|e| e.created_at).min().unwrap();
    let mut repos: Vec<String> = events.iter().map(|e| e.repo_name.clone()).collect();
    repos.sort();
    repos.dedup();
    let mut answers: [Vec<String>; 2] = Default::default();
    for (store, answers) in stores.iter().zip(&mut answers) {
        let mut say = |what: String| answers.push(what);
        let first = store
            .insert_events(
                events[..5000].to_vec(),
                ghmetrics::store::Origin::GlobalFeed,
            )
            .await
            .unwrap();
        let rest = store
            .insert_events(events.clone(), ghmetrics::store::Origin::GlobalFeed)
            .await
            .unwrap();
        say(format!("{first:?} {rest:?}"));
        for since in [
            0,
            oldest,
            oldest + 1,
            newest - 3600,
            newest - 59,
            newest,
            newest + 1,
        ] {
            say(format!(
                "counts since {since}: {:?}",
                store
                    .event_counts(
                        ghmetrics::core::time::Window::since(since),
                        Default::default()
                    )
                    .await
                    .unwrap()
            ));
        }
        let first_minute = newest / 60 - 600;
        for (start, width, buckets) in [
            (first_minute, 1, 600),
            (first_minute, 7, 90),
            (first_minute - 100_000, 1440, 80),
        ] {
            say(format!(
                "timeline {start} {width} {buckets}: {:?}",
                store
                    .timeline(
                        ghmetrics::core::time::Buckets {
                            first_minute: start,
                            minutes: width,
                            count: buckets,
                        },
                        Default::default(),
                    )
                    .await
                    .unwrap()
            ));
        }
        for repo in repos
            .iter()
            .step_by(7)
            .chain(["no/such-repo".to_owned()].iter())
        {
            say(format!(
                "{repo}: {:?}",
                store
                    .pr_gaps(repo.clone(), ghmetrics::core::time::Window::EVER, false)
                    .await
                    .unwrap()
            ));
        }
        for limit in [Some(3), Some(1000), None] {
            let rows = pr_ranking(store, limit, None).await;
            say(format!("pr counts {limit:?}: {rows:?}"));
        }
        // Over windows, once a writer has summarised the hours.
        if let Store::ClickHouse(ch) = store {
            ch.summarize_finished_hours().await;
        }
        let start = settings.start;
        for window in [
            (start + 1800, start + 30 * 3600 + 7),
            (start, start + 86_400),
        ] {
            let rows = pr_ranking(store, Some(5), Some(window)).await;
            say(format!("pr counts over {window:?}: {rows:?}"));
        }
        say(format!("{:?}", store.totals().await.unwrap()));
        for (i, feed) in ["global", "global", "a/b"].into_iter().enumerate() {
            let poll = FeedPoll {
                polled_at: newest - 100 + i as i64,
                feed: feed.to_owned(),
                outcome: "ok",
                pages: 3,
                received: 300,
                inserted: 20 + i as u64,
                oldest_id: Some(1000 * i as i64),
                newest_id: Some(2000 * i as i64),
                previous_newest_id: (i > 0).then_some(1500),
                new_events: Some(40),
                overlap: Some(i != 1),
                missed_estimate: (i == 1).then_some(7),
                error: (i == 2).then(|| "tab\there 'quoted'".to_owned()),
            };
            store.record_feed_poll(poll).await.unwrap();
        }
        say(format!(
            "{:?}",
            store.newest_seen_id("global".to_owned()).await.unwrap()
        ));
        say(format!(
            "{:?}",
            store.newest_seen_id("x/y".to_owned()).await.unwrap()
        ));
        say(format!(
            "{:?}",
            store.global_feed_coverage(newest, 3600).await.unwrap()
        ));
        let watched = store
            .start_watching(vec!["a/b".to_owned(), "c/d".to_owned()], 500)
            .await
            .unwrap();
        let again = store
            .start_watching(vec!["a/b".to_owned(), "e/f".to_owned()], 900)
            .await
            .unwrap();
        let sorted = |map: std::collections::HashMap<String, i64>| {
            let mut pairs: Vec<_> = map.into_iter().collect();
            pairs.sort();
            pairs
        };
        say(format!("{:?} {:?}", sorted(watched), sorted(again)));
        // Retention's cutoffs are whole minutes (see retention::cutoff).
        let cutoff = (oldest + newest) / 2 / 60 * 60;
        let mut deleted = 0;
        loop {
            let batch = store.delete_events_before(cutoff, 10_000).await.unwrap();
            deleted += batch;
            if batch < 10_000 {
                break;
            }
        }
        say(format!("deleted {deleted}"));
        store.delete_feed_polls_before(newest - 99).await.unwrap();
        say(format!(
            "{:?}",
            store.global_feed_coverage(newest, 3600).await.unwrap()
        ));
        say(format!("{:?}", store.totals().await.unwrap()));
        say(format!(
            "counts: {:?}",
            store
                .event_counts(ghmetrics::core::time::Window::EVER, Default::default())
                .await
                .unwrap()
        ));
        for repo in repos.iter().step_by(5) {
            say(format!(
                "{repo}: {:?}",
                store
                    .pr_gaps(repo.clone(), ghmetrics::core::time::Window::EVER, false)
                    .await
                    .unwrap()
            ));
        }
        let rows = pr_ranking(store, None, None).await;
        say(format!("pr counts: {rows:?}"));
    }
    let [on_sqlite, on_clickhouse] = answers;
    assert_eq!(on_sqlite.len(), on_clickhouse.len());
    for (a, b) in on_sqlite.iter().zip(&on_clickhouse) {
        assert_eq!(a, b);
    }
}

/// docs/clickhouse.md's queries for analysts run as written, on one
/// server and through the cluster's Distributed tables, over real events.
#[tokio::test]
async fn the_documented_clickhouse_queries_run() {
    let readme = include_str!("../../docs/clickhouse.md");
    let section = readme
        .split("## Queries to start from (ClickHouse)")
        .nth(1)
        .expect("docs/clickhouse.md's queries");
    let block = section
        .split("```sql")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    let statements: Vec<String> = block
        .split(';')
        .map(|statement| {
            statement
                .lines()
                .filter(|line| !line.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|statement| !statement.trim().is_empty())
        .collect();
    assert!(statements.len() >= 5, "{statements:?}");
    for store in clickhouse_stores() {
        store.open_with(parsed(&fixture_events())).await;
        for statement in &statements {
            // Run in the store's database, as an analyst would after USE.
            let sql = statement
                .replace(
                    " FROM events",
                    &format!(" FROM {}.events", store.database()),
                )
                .replace(
                    " FROM pr_openings",
                    &format!(" FROM {}.pr_openings", store.database()),
                );
            // `sql` fails the test on any error from the server.
            store.sql(&sql).await;
        }
    }
}

/// The data version (what the answer cache keys on) changes with every
/// write, an insert or a retention delete, on one server and on the
/// cluster, and stays put through background merges, which change no answer.
#[tokio::test]
async fn writes_change_the_data_version_and_merges_do_not() {
    let events = parsed(&fixture_events());
    for store in clickhouse_stores() {
        eprintln!("store: {}", store.name);
        let handle = store.open().await;
        let mut seen = vec![handle.data_version().await.unwrap()];
        for chunk in events.chunks(events.len() / 3 + 1) {
            handle
                .insert_events(chunk.to_vec(), ghmetrics::store::Origin::GlobalFeed)
                .await
                .unwrap();
            let version = handle.data_version().await.unwrap();
            assert!(!seen.contains(&version), "an insert left the version");
            seen.push(version);
        }
        // Inserting what is stored writes nothing and changes nothing.
        handle
            .insert_events(events[..10].to_vec(), ghmetrics::store::Origin::GlobalFeed)
            .await
            .unwrap();
        assert_eq!(handle.data_version().await.unwrap(), *seen.last().unwrap());
        let db = store.database();
        let local = if store.name.contains("cluster") {
            "_local"
        } else {
            ""
        };
        for table in [
            "events",
            "event_counts_by_minute",
            "pr_counts",
            "pr_openings",
        ] {
            store
                .sql(&format!("OPTIMIZE TABLE {db}.{table}{local} FINAL"))
                .await;
        }
        assert_eq!(
            handle.data_version().await.unwrap(),
            *seen.last().unwrap(),
            "a merge changed the version"
        );
        let newest = events.iter().map(|e| e.created_at).max().unwrap();
        let deleted = handle.delete_events_before(newest, 100_000).await.unwrap();
        assert!(deleted > 0);
        assert!(
            !seen.contains(&handle.data_version().await.unwrap()),
            "a delete left the version"
        );
    }
}

/// The supported layout: one service polls, a replica with `--no-poll`
/// serves the same ClickHouse store, and the replica's answers follow the
/// writer's polls at once (its cache keys on the store's data version).
#[tokio::test]
async fn a_replica_answers_what_the_writer_stored() {
    use crate::helpers::{MockGithub, TestApp, test_poller_config};
    ghmetrics::ingest::github::client::install_crypto_provider();
    let raw = fixture_events();
    for store in clickhouse_stores() {
        eprintln!("store: {}", store.name);
        let replica = TestApp::spawn(store.location.clone(), None).await;
        let (_, before) = replica
            .get_json("/metrics/event-counts?offset_minutes=10000000")
            .await;
        assert_eq!(before["WatchEvent"], 0);
        let mock = MockGithub::start(100).await;
        mock.set_feed(&raw[..400]);
        let expected = Expected::of(&raw[..400]);
        let mut writer =
            TestApp::spawn(store.location.clone(), Some(test_poller_config(&mock.url))).await;
        writer
            .wait_for_report(|r| r.events_inserted == expected.total())
            .await;
        let (_, counts) = replica
            .get_json("/metrics/event-counts?offset_minutes=10000000")
            .await;
        for (event_type, n) in &expected.by_type {
            assert_eq!(counts[event_type], *n, "{event_type}");
        }
        let from_writer = writer.get("/metrics/pr-counts").await.text().await.unwrap();
        let from_replica = replica
            .get("/metrics/pr-counts")
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(from_replica, from_writer);
        writer.stop().await;
        replica.stop().await;
    }
}

/// A short pr-counts ranking is proven from the rollup's top rows when the
/// counts have a long tail, and equals SQLite's ranking.
#[tokio::test]
async fn short_rankings_are_proven_from_the_top_rows() {
    if clickhouse().is_none() {
        return;
    }
    // Long tail: repository r has about 3000 / r events.
    let mut id = 0;
    let mut events = Vec::new();
    for r in 1..=2000_i64 {
        for _ in 0..(3000 / r).max(1) {
            id += 1;
            events.push(pull_request(id, &format!("tail/r{r}")));
        }
    }
    let sqlite = crate::stores::TestStore::sqlite();
    let truth = sqlite.open().await;
    truth
        .insert_events(events.clone(), ghmetrics::store::Origin::GlobalFeed)
        .await
        .unwrap();
    for store in clickhouse_stores() {
        let handle = store.open().await;
        // Several inserts, so several parts.
        for chunk in events.chunks(1500) {
            handle
                .insert_events(chunk.to_vec(), ghmetrics::store::Origin::GlobalFeed)
                .await
                .unwrap();
        }
        let Store::ClickHouse(ch) = &handle else {
            unreachable!()
        };
        for k in [1, 10, 100] {
            let want = ranking(&truth, k).await;
            assert_eq!(ranking(&handle, k).await, want, "{} k={k}", store.name);
            let proven = ch.top_pr_counts(k).await.unwrap();
            assert_eq!(proven, Some(want), "{} k={k}: not proven", store.name);
        }
    }
}

/// When a repository outside the top rows could still outrank them (here
/// one with ten rows of 49, in ten unmerged parts, against a hundred with one
/// row of 50), the proof fails and the ranking is summed: it still comes first.
#[tokio::test]
async fn a_ranking_that_cannot_be_proven_is_summed() {
    let Some(servers) = clickhouse() else {
        return;
    };
    let store = servers.single();
    let handle = store.open().await;
    store
        .sql(&format!(
            "SYSTEM STOP MERGES {}.pr_counts",
            store.database()
        ))
        .await;
    let mut id = 0;
    let mut next = |repo: &str| {
        id += 1;
        pull_request(id, repo)
    };
    let many: Vec<_> = (0..100)
        .flat_map(|r| (0..50).map(move |_| format!("many/r{r:03}")))
        .map(|repo| next(&repo))
        .collect();
    handle
        .insert_events(many, ghmetrics::store::Origin::GlobalFeed)
        .await
        .unwrap();
    for _ in 0..10 {
        let batch: Vec<_> = (0..49).map(|_| next("split/x")).collect();
        handle
            .insert_events(batch, ghmetrics::store::Origin::GlobalFeed)
            .await
            .unwrap();
    }
    let Store::ClickHouse(ch) = &handle else {
        unreachable!()
    };
    assert_eq!(ch.top_pr_counts(1).await.unwrap(), None);
    assert_eq!(
        ranking(&handle, 2).await,
        [("split/x".to_owned(), 490), ("many/r000".to_owned(), 50)]
    );
}

/// Ties at the threshold would make the top rows the whole table (here a
/// thousand repositories with one PR each, and R = 1): past a few times the
/// rows wanted, the proof gives up and the ranking is summed, still exact.
#[tokio::test]
async fn ties_at_the_threshold_fall_back_to_the_sum() {
    let events: Vec<_> = (1..=1000)
        .map(|i| pull_request(i, &format!("ties/r{i:04}")))
        .collect();
    let truth = crate::stores::TestStore::sqlite().open().await;
    truth
        .insert_events(events.clone(), ghmetrics::store::Origin::GlobalFeed)
        .await
        .unwrap();
    for store in clickhouse_stores() {
        let handle = store.open_with(events.clone()).await;
        let Store::ClickHouse(ch) = &handle else {
            unreachable!()
        };
        assert_eq!(ch.top_pr_counts(1).await.unwrap(), None, "{}", store.name);
        for k in [1, 3] {
            assert_eq!(
                ranking(&handle, k).await,
                ranking(&truth, k).await,
                "{}",
                store.name
            );
        }
    }
}

/// A store's pr-counts ranking (at most `limit`, over `window` or everything).
async fn pr_ranking(
    store: &Store,
    limit: Option<u64>,
    window: Option<(i64, i64)>,
) -> Vec<(String, u64)> {
    struct Collect(Vec<(String, u64)>);
    impl ghmetrics::store::RepoCountSink for Collect {
        fn accept(&mut self, repo: &str, count: u64) -> bool {
            self.0.push((repo.to_owned(), count));
            true
        }
    }
    let Collect(rows) = store
        .for_each_pr_count(
            limit,
            window.map(|(from, to)| ghmetrics::core::time::Window { from, to }),
            false,
            Collect(Vec::new()),
        )
        .await
        .unwrap();
    rows
}

/// The first `k` of a store's pr-counts ranking.
async fn ranking(store: &Store, k: u64) -> Vec<(String, u64)> {
    pr_ranking(store, Some(k), None).await
}

fn pull_request(id: i64, repo: &str) -> ghmetrics::core::event::Event {
    ghmetrics::core::event::Event {
        id,
        event_type: ghmetrics::core::event::EventType::PullRequest,
        created_at: 1_700_000_000 + id,
        repo_name: repo.to_owned(),
        actor_login: None,
        action: Some("closed".to_owned()),
        number: Some(id),
    }
}

/// A bulk load outside ghmetrics (here: four equal batches) leaves
/// `pr_counts` in parts of similar size, which weaken the ranking's proof;
/// the writer (a serving poller) merges them at start, without changing
/// any answer.
#[tokio::test]
async fn the_writer_merges_fragmented_rollups() {
    use crate::helpers::{MockGithub, TestApp, test_poller_config};
    ghmetrics::ingest::github::client::install_crypto_provider();
    let mut raw = fixture_events();
    raw.extend(file_fixture_events());
    let events = parsed(&raw);
    for store in clickhouse_stores() {
        eprintln!("store: {}", store.name);
        let Store::ClickHouse(handle) = store.open().await else {
            unreachable!("a ClickHouse store");
        };
        for chunk in events.chunks(events.len().div_ceil(4)) {
            handle
                .insert_events(chunk, ghmetrics::store::Origin::GlobalFeed, None)
                .await
                .unwrap();
        }
        let (parts, shards) = rollup_parts(&store).await;
        assert!(parts >= 3 * shards, "{parts} parts on {shards} shards");
        assert!(handle.rollups_fragmented().await.unwrap());
        let replica = TestApp::spawn(store.location.clone(), None).await;
        let ranking = replica
            .get("/metrics/pr-counts")
            .await
            .text()
            .await
            .unwrap();
        let mock = MockGithub::start(100).await;
        let writer =
            TestApp::spawn(store.location.clone(), Some(test_poller_config(&mock.url))).await;
        let merged = tokio::time::timeout(Duration::from_secs(20), async {
            while rollup_parts(&store).await.0 > shards {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(merged.is_ok(), "the writer left the rollup in parts");
        assert!(!handle.rollups_fragmented().await.unwrap());
        assert_eq!(
            writer.get("/metrics/pr-counts").await.text().await.unwrap(),
            ranking
        );
        writer.stop().await;
        replica.stop().await;
    }
}

/// A TCP relay to a ClickHouse server that can be frozen: it then passes no
/// byte either way, as a server stopped by SIGSTOP answers nothing.
struct FreezableRelay {
    port: u16,
    frozen: tokio::sync::watch::Sender<bool>,
}

impl FreezableRelay {
    async fn start(upstream: u16) -> FreezableRelay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (frozen, _) = tokio::sync::watch::channel(false);
        let thawed = frozen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue;
                };
                let (client_in, client_out) = client.into_split();
                let (server_in, server_out) = server.into_split();
                tokio::spawn(Self::pump(client_in, server_out, thawed.subscribe()));
                tokio::spawn(Self::pump(server_in, client_out, thawed.subscribe()));
            }
        });
        FreezableRelay { port, frozen }
    }

    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        mut frozen: tokio::sync::watch::Receiver<bool>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buffer = vec![0; 64 << 10];
        loop {
            if frozen.wait_for(|frozen| !frozen).await.is_err() {
                return;
            }
            match from.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if frozen.wait_for(|frozen| !frozen).await.is_err()
                        || to.write_all(&buffer[..n]).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

/// A frozen store makes a metric request answer 503 after `--store-timeout`
/// (not after the request timeout), and `/health` answer 200 `degraded`
/// within about a second, saying the store is not answering; thawed, all
/// answers come back.
#[tokio::test]
async fn a_frozen_store_is_unavailable_and_health_still_answers() {
    use crate::helpers::TestApp;
    let Some(servers) = clickhouse() else {
        return;
    };
    let store = servers.single();
    let ghmetrics::config::StoreLocation::ClickHouse(mut settings) = store.location.clone() else {
        unreachable!("a ClickHouse store");
    };
    let relay = FreezableRelay::start(settings.endpoint.port().unwrap()).await;
    settings.endpoint.set_port(Some(relay.port)).unwrap();
    let store_timeout = Duration::from_secs(1);
    let app = TestApp::spawn_with(
        ghmetrics::config::StoreLocation::ClickHouse(settings),
        None,
        |config| {
            config.http.store_timeout = store_timeout;
            config.http.request_timeout = Duration::from_secs(60);
        },
    )
    .await;
    let metric = "/metrics/event-counts?offset_minutes=10";
    assert_eq!(app.get(metric).await.status(), 200);
    let (_, health) = app.get_json("/health").await;
    assert_eq!(
        (&health["status"], &health["store"]),
        (&"ok".into(), &"ok".into())
    );

    relay.freeze(true);
    let asked = Instant::now();
    let (status, body) = app.get_json(metric).await;
    let metric_waited = asked.elapsed();
    assert_eq!(status, 503, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("did not answer"),
        "{body}"
    );
    assert!(
        metric_waited < Duration::from_secs(20),
        "answered after {metric_waited:?}"
    );
    let asked = Instant::now();
    let (status, health) = app.get_json("/health").await;
    let waited = asked.elapsed();
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["store"], "not answering", "{health}");
    assert_eq!(health["events_stored"], Value::Null, "{health}");
    assert!(
        waited < Duration::from_secs(20),
        "answered after {waited:?}"
    );
    eprintln!("frozen: 503 after {metric_waited:?}; /health after {waited:?}");

    relay.freeze(false);
    assert_eq!(app.get(metric).await.status(), 200);
    let (_, health) = app.get_json("/health").await;
    assert_eq!(health["store"], "ok", "{health}");
    app.stop().await;
}

/// The longest ranking the store proves from its top rows, over as many
/// repositories as it reads for it, each with the longest name GitHub
/// allows: the read stays within the answer bound, and every store gives
/// the same answer.
#[tokio::test]
async fn the_longest_names_fit_the_longest_ranking() {
    use crate::helpers::TestApp;
    use ghmetrics::core::event::{MAX_OWNER_LEN, MAX_REPOSITORY_LEN};
    let limit = 10_000;
    let repositories = 4 * limit + 1_000;
    let events: Vec<ghmetrics::core::event::Event> = (0..repositories)
        .map(|i| {
            let owner = format!("{i:0>width$}", width = MAX_OWNER_LEN);
            let name = format!("{i:x>width$}", width = MAX_REPOSITORY_LEN);
            let mut event = pull_request(i as i64 + 1, &format!("{owner}/{name}"));
            event.created_at = 1_700_000_000 + (i % 86_400) as i64;
            event
        })
        .collect();
    let mut answers = Vec::new();
    for store in crate::stores::every_store() {
        store.open_with(events.clone()).await;
        let app = TestApp::spawn(store.location.clone(), None).await;
        let response = app.get(&format!("/metrics/pr-counts?limit={limit}")).await;
        assert_eq!(response.status(), 200, "{}", store.name);
        answers.push((store.name, response.text().await.unwrap()));
        app.stop().await;
    }
    for (name, answer) in &answers[1..] {
        assert!(
            answer == &answers[0].1,
            "{name} differs from {}",
            answers[0].0
        );
    }
}

/// A store written before `event_ids` existed gets it filled by migration V2
/// (here: the table, its view and the migration's record dropped by hand
/// from a store holding events, then the store opened again), after which a
/// copy of an old event with another time is found and not stored again.
#[tokio::test]
async fn migration_v2_fills_event_ids_from_stored_events() {
    let Some(servers) = clickhouse() else {
        return;
    };
    let store = servers.single();
    let db = store.database();
    let raw = file_fixture_events();
    let events = parsed(&raw);
    store
        .open()
        .await
        .insert_events(events.clone(), ghmetrics::store::Origin::GlobalFeed)
        .await
        .unwrap();
    store.sql(&format!("DROP TABLE {db}.event_ids_mv")).await;
    store.sql(&format!("DROP TABLE {db}.event_ids")).await;
    store
        .sql(&format!(
            "ALTER TABLE {db}.ghmetrics_migrations DELETE WHERE version = 2"
        ))
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while store
        .sql(&format!(
            "SELECT count() FROM {db}.ghmetrics_migrations WHERE version = 2"
        ))
        .await
        .trim()
        != "0"
    {
        assert!(
            Instant::now() < deadline,
            "the delete mutation never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reopened = store.open().await;
    let ids = store
        .sql(&format!("SELECT uniqExact(id) FROM {db}.event_ids"))
        .await;
    assert_eq!(ids.trim(), events.len().to_string());
    let moved: Vec<_> = events
        .iter()
        .map(|event| {
            let mut copy = event.clone();
            copy.created_at -= 86_400;
            copy
        })
        .collect();
    let stats = reopened
        .insert_events(moved, ghmetrics::store::Origin::GlobalFeed)
        .await
        .unwrap();
    assert_eq!(
        (stats.inserted(), stats.duplicates),
        (0, events.len() as u64)
    );
}

/// Event counts over any window `[from, to)` are exact to the second on
/// every store, whatever minute, hour or day its ends cut in half: checked
/// against counts taken from the raw fixture events.
#[tokio::test]
async fn event_counts_are_exact_for_any_window() {
    use ghmetrics::core::time::END_OF_TIME;
    let raw = file_fixture_events();
    let events = parsed(&raw);
    let times: Vec<i64> = events.iter().map(|e| e.created_at).collect();
    let (oldest, newest) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());
    let mut windows = vec![
        (0, END_OF_TIME),
        (oldest, newest + 1),
        (oldest + 1, newest),
        (oldest - 40 * 86_400 + 3, newest + 3 * 86_400 - 5),
    ];
    let mut rng = fastrand::Rng::with_seed(20);
    for _ in 0..40 {
        let at = times[rng.usize(..times.len())];
        let day = at - at.rem_euclid(86_400);
        windows.extend([
            (at, at + 1),
            (at - 59, at),
            (at - 1_800 - 7, at + 3 * 3_600 + 13),
            (day, day + 86_400),
            (day + 3_600 + 30, day + 2 * 86_400 - 30),
            (at - rng.i64(0..200_000), at + rng.i64(1..200_000)),
        ]);
    }
    let expected = |(from, to): (i64, i64)| {
        let mut counts = [0u64; 3];
        for event in events
            .iter()
            .filter(|e| from <= e.created_at && e.created_at < to)
        {
            counts[event.event_type.index()] += 1;
        }
        counts
    };
    for store in crate::stores::every_store() {
        let handle = store.open_with(events.clone()).await;
        for &window in &windows {
            let counts = handle
                .event_counts(
                    ghmetrics::core::time::Window {
                        from: window.0,
                        to: window.1,
                    },
                    Default::default(),
                )
                .await
                .unwrap();
            let got = counts.by_type().map(|(_, n)| n);
            assert_eq!(got, expected(window), "{} {window:?}", store.name);
        }
    }
}

/// PR gaps over a window take only the openings inside it, on every store:
/// checked for every repository with openings, over windows that start or
/// end on an opening's second or just after it, against the raw events.
#[tokio::test]
async fn pr_gaps_take_the_openings_inside_the_window() {
    use ghmetrics::core::event::EventType;
    let raw = file_fixture_events();
    let events = parsed(&raw);
    let mut openings: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for event in &events {
        if event.event_type == EventType::PullRequest && event.action.as_deref() == Some("opened") {
            openings
                .entry(event.repo_name.clone())
                .or_default()
                .push(event.created_at);
        }
    }
    for times in openings.values_mut() {
        times.sort_unstable();
    }
    for store in crate::stores::every_store() {
        let handle = store.open_with(events.clone()).await;
        for (repo, times) in &openings {
            let (first, last) = (times[0], times[times.len() - 1]);
            for (from, to) in [
                (first, last + 1),
                (first + 1, last + 1),
                (first, last),
                (last, last + 1),
            ] {
                let inside: Vec<i64> = times
                    .iter()
                    .copied()
                    .filter(|t| from <= *t && *t < to)
                    .collect();
                let summary = handle
                    .pr_gaps(
                        repo.clone(),
                        ghmetrics::core::time::Window { from, to },
                        false,
                    )
                    .await
                    .unwrap();
                let what = format!("{} {repo} {from}..{to}", store.name);
                assert_eq!(summary.openings, inside.len() as u64, "{what}");
                assert_eq!(summary.last_opened_at, inside.last().copied(), "{what}");
                let mean = (inside.len() >= 2).then(|| {
                    (inside[inside.len() - 1] - inside[0]) as f64 / (inside.len() - 1) as f64
                });
                assert_eq!(summary.average_seconds, mean, "{what}");
            }
        }
    }
}

/// pr-counts over a window counts each repository's PR events inside it,
/// most first, ties by name, on every store: against the raw events.
#[tokio::test]
async fn pr_counts_over_a_window_count_the_events_inside_it() {
    use ghmetrics::core::event::EventType;
    let raw = file_fixture_events();
    let events = parsed(&raw);
    let prs: Vec<&ghmetrics::core::event::Event> = events
        .iter()
        .filter(|e| e.event_type == EventType::PullRequest)
        .collect();
    let mut rng = fastrand::Rng::with_seed(21);
    let mut windows = vec![(0, ghmetrics::core::time::END_OF_TIME)];
    for _ in 0..20 {
        let at = prs[rng.usize(..prs.len())].created_at;
        windows.extend([
            (at, at + 1),
            (at - 3_599, at + 7),
            (at - rng.i64(0..50_000), at + rng.i64(1..50_000)),
        ]);
    }
    let expected = |(from, to): (i64, i64), limit: Option<u64>| {
        let mut counts: std::collections::HashMap<&str, u64> = Default::default();
        for e in prs
            .iter()
            .filter(|e| from <= e.created_at && e.created_at < to)
        {
            *counts.entry(e.repo_name.as_str()).or_default() += 1;
        }
        let mut ranked: Vec<(String, u64)> = counts
            .into_iter()
            .map(|(repo, n)| (repo.to_owned(), n))
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(limit.map_or(usize::MAX, |n| n as usize));
        ranked
    };
    for store in crate::stores::every_store() {
        let handle = store.open_with(events.clone()).await;
        for &window in &windows {
            for limit in [None, Some(3)] {
                let got = pr_ranking(&handle, limit, Some(window)).await;
                assert_eq!(
                    got,
                    expected(window, limit),
                    "{} {window:?} {limit:?}",
                    store.name
                );
            }
        }
    }
}

/// A short ranking over a window is proven from the hours' summaries once a
/// writer has made them (whole hours, and partial hours at either end), and
/// equals counting every event; an hour that gets an event after its summary
/// is counted again until the next summary.
#[tokio::test]
async fn windowed_rankings_are_proven_from_the_hours_summaries() {
    if clickhouse().is_none() {
        return;
    }
    const HOUR: i64 = 3600;
    let start = 1_700_000_000 / HOUR * HOUR;
    // Six hours; in each, repository r has about 600 / r events, spread
    // over the hour.
    let mut events = Vec::new();
    for hour in 0..6 {
        for r in 1..=400_i64 {
            let n = (600 / r).max(1);
            for i in 0..n {
                let mut event = pull_request(events.len() as i64 + 1, &format!("tail/r{r}"));
                event.created_at = start + hour * HOUR + (i * 7 + r) % HOUR;
                events.push(event);
            }
        }
    }
    let windows = [
        (start, start + 6 * HOUR),
        (start + HOUR, start + 3 * HOUR),
        (start + 1234, start + 5 * HOUR + 77),
        (start + HOUR - 1, start + 2 * HOUR + 1),
    ];
    for store in clickhouse_stores() {
        let truth = crate::stores::TestStore::sqlite();
        let truth = truth.open_with(events.clone()).await;
        let handle = store.open_with(events.clone()).await;
        let Store::ClickHouse(ch) = &handle else {
            unreachable!()
        };
        assert_eq!(
            ch.top_pr_counts_between(start, start + 6 * HOUR, 10)
                .await
                .unwrap(),
            None
        );
        ch.summarize_finished_hours().await;
        for (from, to) in windows {
            for k in [1, 10, 100] {
                let want = pr_ranking(&truth, Some(k), Some((from, to))).await;
                let proven = ch.top_pr_counts_between(from, to, k).await.unwrap();
                // A hundred reaches into ties near the bounds of short windows:
                // not always proven, but never different.
                if k <= 10 || proven.is_some() {
                    assert_eq!(
                        proven.as_ref(),
                        Some(&want),
                        "{} {from}..{to} k={k}",
                        store.name
                    );
                }
                assert_eq!(pr_ranking(&handle, Some(k), Some((from, to))).await, want);
            }
        }
        // A late event in hour 2: its summary is out of date, the ranking is counted.
        let mut late = pull_request(10_000_000, "tail/r1");
        late.created_at = start + 2 * HOUR + 5;
        for target in [&handle, &truth] {
            target
                .insert_events(vec![late.clone()], ghmetrics::store::Origin::GlobalFeed)
                .await
                .unwrap();
        }
        let window = (start + HOUR, start + 3 * HOUR);
        let want = pr_ranking(&truth, Some(10), Some(window)).await;
        assert_eq!(
            ch.top_pr_counts_between(window.0, window.1, 10)
                .await
                .unwrap(),
            None
        );
        assert_eq!(pr_ranking(&handle, Some(10), Some(window)).await, want);
        ch.summarize_finished_hours().await;
        assert_eq!(
            ch.top_pr_counts_between(window.0, window.1, 10)
                .await
                .unwrap(),
            Some(want),
            "{}",
            store.name
        );
    }
}
