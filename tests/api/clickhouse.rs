//! What only the ClickHouse store has to show: writers in several processes
//! storing each event once, a crashed writer's lock taken over, events spread
//! over the cluster's shards, and tables an analyst can query. Runs when
//! `clickhouse-server` is installed (see `stores`).

use std::time::{Duration, Instant};

use ghmetrics::event::parse_event;
use ghmetrics::store::Store;
use serde_json::Value;

use crate::helpers::{Expected, FIXTURE_FILES, fixture_events, fixture_file_events};
use crate::stores::{clickhouse, clickhouse_stores, sql_on};

/// The fixture events as the parser stores them.
fn parsed(raw: &[Value]) -> Vec<ghmetrics::event::Event> {
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
    for file in FIXTURE_FILES {
        raw.extend(fixture_file_events(file));
    }
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
                        .insert_events(chunk.to_vec())
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
        let counts = handles[1].event_counts(0).await.unwrap();
        for (event_type, n) in counts.by_type() {
            assert_eq!(n, expected.by_type[event_type.as_str()], "{event_type:?}");
        }
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
    let db = store.database();
    store
        .sql(&format!(
            "CREATE TABLE {db}.ghmetrics_write_lock (at DateTime) ENGINE = Memory"
        ))
        .await;
    store
        .sql(&format!(
            "INSERT INTO {db}.ghmetrics_write_lock VALUES (now())"
        ))
        .await;
    let events = parsed(&fixture_events()[..100]);
    let started = Instant::now();
    let stats = tokio::time::timeout(Duration::from_secs(30), handle.insert_events(events))
        .await
        .expect("the stale lock was not taken over")
        .unwrap();
    let waited = started.elapsed();
    assert!(stats.inserted() > 0);
    assert!(
        waited >= Duration::from_secs(9),
        "waited only {waited:?} for a lock that still looked alive"
    );
    let left = store
        .sql(&format!(
            "SELECT count() FROM system.tables WHERE database = '{db}' AND name LIKE 'ghmetrics_%lock%'"
        ))
        .await;
    assert_eq!(left, "0\n", "the lock is released and the stale one gone");
}

/// Through the Distributed table, events land on both shards (by the id's
/// hash) and every answer counts both.
#[tokio::test]
async fn the_cluster_spreads_events_over_both_shards() {
    let Some(servers) = clickhouse() else {
        return;
    };
    let store = servers.cluster();
    let handle = store.open().await;
    let raw = fixture_events();
    handle.insert_events(parsed(&raw)).await.unwrap();
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
/// gap query of the README giving the service's answer.
#[tokio::test]
async fn analysts_read_the_tables_with_plain_sql() {
    for store in clickhouse_stores() {
        let handle = store.open().await;
        let raw = fixture_events();
        handle.insert_events(parsed(&raw)).await.unwrap();
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
