//! Absolute windows (`from`/`to`) on every windowed endpoint: exact answers
//! over the imported fixtures for windows that cut minutes and hours, every
//! parameter rule's 422, on every store.

use chrono::{DateTime, SecondsFormat};
use serde_json::{Value, json};

use crate::helpers::{
    Expected, FIXTURE_FILES, TRACKED, TestApp, created_at, fixture_file_events, fixture_path,
    import_files, rfc3339,
};
use crate::stores::every_store;

/// The endpoints that take a window, with what else each needs.
const WINDOWED: [&str; 6] = [
    "/metrics/event-counts?",
    "/metrics/pr-counts?",
    "/metrics/top?type=IssuesEvent&",
    "/metrics/average-pr-time?repo_name=a/b&",
    "/metrics/visualization?",
    "/metrics/visualization/timeline?",
];

/// Every fixture event, imported into a fresh store of each kind.
fn all_events() -> Vec<Value> {
    FIXTURE_FILES
        .iter()
        .flat_map(|name| fixture_file_events(name))
        .collect()
}

/// Windows `[from, to)` over the fixtures' times: between events' seconds
/// (inclusive and exclusive ends both matter), and fixed ones that cut
/// minutes and hours in half, as `(from, to)`.
fn windows(events: &[Value]) -> Vec<(i64, i64)> {
    let mut times: Vec<i64> = events.iter().map(created_at).collect();
    times.sort();
    times.dedup();
    let n = times.len();
    let mut windows = Vec::new();
    for (i, j) in [
        (0, n - 1),
        (n / 7, n / 3),
        (n / 5, 4 * n / 5),
        (n / 2, n / 2 + 3),
        (10, n - 10),
    ] {
        for (head, tail) in [(0, 0), (1, 0), (0, 1), (-30, 45)] {
            windows.push((times[i] + head, times[j] + tail));
        }
    }
    // 2021-07-21 06:00..10:00 holds four hours of the fixture: cut minutes,
    // hours and both ends.
    let hour_6 = 1_626_847_200;
    for (from, to) in [
        (hour_6 + 30 * 60 + 30, hour_6 + 2 * 3600 + 15 * 60 + 45),
        (hour_6 + 3599, hour_6 + 3601),
        (hour_6 + 3600, hour_6 + 2 * 3600),
        (hour_6 - 1, hour_6 + 4 * 3600 + 1),
        (hour_6 + 59, hour_6 + 3 * 3600 + 61),
    ] {
        windows.push((from, to));
    }
    // 2015-01-01T01: half an hour, and a day around it.
    let day_2015 = 1_420_070_400;
    windows.push((day_2015 + 3600 + 1800, day_2015 + 2 * 3600));
    windows.push((day_2015, day_2015 + 86_400));
    windows
}

/// A service on a fresh `store` holding every fixture file, imported.
async fn with_fixtures(store: &crate::stores::TestStore) -> TestApp {
    let app = TestApp::spawn(store.location.clone(), None).await;
    let files = FIXTURE_FILES
        .iter()
        .map(|name| fixture_path(name))
        .collect();
    import_files(&app.store, files, &[]).await;
    app
}

/// The expected answers over `[from, to)`, computed from the raw events.
fn expected_in(events: &[Value], from: i64, to: i64) -> Expected {
    let inside: Vec<&Value> = events
        .iter()
        .filter(|event| (from..to).contains(&created_at(event)))
        .collect();
    Expected::of(inside)
}

fn ranked(pairs: &[(String, u64)]) -> String {
    let fields: Vec<String> = pairs
        .iter()
        .map(|(repo, n)| format!("{}:{n}", serde_json::to_string(repo).unwrap()))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// The median and 90th percentile as the API defines them: interpolated
/// between the two nearest ranks of the sorted gaps.
fn rank(gaps: &[i64], p: f64) -> f64 {
    let at = p * (gaps.len() - 1) as f64;
    let (lo, hi) = (gaps[at.floor() as usize], gaps[at.ceil() as usize]);
    lo as f64 + (hi - lo) as f64 * at.fract()
}

#[tokio::test]
async fn windows_answer_exactly_whatever_their_boundaries() {
    let events = all_events();
    let windows = windows(&events);
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let app = with_fixtures(&store).await;
        let mut repos_checked = 0;
        for &(from, to) in &windows {
            let expected = expected_in(&events, from, to);
            let window = format!("from={}&to={}", rfc3339(from), rfc3339(to));
            let (status, counts) = app
                .get_json(&format!("/metrics/event-counts?{window}"))
                .await;
            assert_eq!(status, 200, "{window}: {counts}");
            assert_eq!(counts, json!(expected.by_type), "{window}");

            let body = app.get(&format!("/metrics/pr-counts?{window}")).await;
            assert_eq!(
                body.text().await.unwrap(),
                ranked(&expected.pr_counts),
                "{window}"
            );
            let top = app
                .get(&format!("/metrics/pr-counts?limit=2&{window}"))
                .await;
            let first_two = &expected.pr_counts[..expected.pr_counts.len().min(2)];
            assert_eq!(top.text().await.unwrap(), ranked(first_two), "{window}");

            // The repositories with the most openings, and one with a single one.
            let mut busiest: Vec<(&String, &Vec<i64>)> = expected.openings.iter().collect();
            busiest.sort_by_key(|(_, times)| std::cmp::Reverse(times.len()));
            let single = busiest.iter().rev().take(1).copied();
            for (repo, times) in busiest.iter().take(3).copied().chain(single) {
                let (status, body) = app
                    .get_json(&format!(
                        "/metrics/average-pr-time?repo_name={repo}&{window}"
                    ))
                    .await;
                assert_eq!(status, 200, "{repo} {window}: {body}");
                assert_eq!(body["pr_count"], times.len(), "{repo} {window}");
                assert_eq!(body["last_opened_at"], rfc3339(*times.last().unwrap()));
                if times.len() >= 2 {
                    let mean =
                        (times[times.len() - 1] - times[0]) as f64 / (times.len() - 1) as f64;
                    let mut gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
                    gaps.sort();
                    let got = body["average_seconds"].as_f64().unwrap();
                    assert!(
                        (got - mean).abs() < 1e-9,
                        "{repo} {window}: {got} vs {mean}"
                    );
                    assert_eq!(body["median_seconds"].as_f64(), Some(rank(&gaps, 0.5)));
                    assert_eq!(body["p90_seconds"].as_f64(), Some(rank(&gaps, 0.9)));
                    assert_eq!(body["max_seconds"], *gaps.last().unwrap());
                    repos_checked += 1;
                } else {
                    assert_eq!(body["average_seconds"], Value::Null, "{repo} {window}");
                }
            }
        }
        assert!(
            repos_checked >= 3,
            "windows with several openings: {repos_checked}"
        );

        // An offset is converted to UTC; `from` alone runs to now.
        let (from, to) = windows[0];
        let everything = expected_in(&events, from, i64::MAX);
        let plus_two = DateTime::from_timestamp(from, 0)
            .unwrap()
            .with_timezone(&chrono::FixedOffset::east_opt(7200).unwrap())
            .to_rfc3339_opts(SecondsFormat::Secs, false)
            .replace('+', "%2B");
        let (_, counts) = app
            .get_json(&format!("/v1/metrics/event-counts?from={plus_two}"))
            .await;
        assert_eq!(counts, json!(everything.by_type));
        assert!(to > from);

        // The charts draw any window, old or new.
        for path in [
            "/metrics/visualization",
            "/metrics/visualization/timeline",
            "/v1/metrics/visualization/timeline",
        ] {
            for window in [
                "from=2021-07-21T06:30:00Z&to=2021-07-21T09:10:00Z",
                "from=2015-01-01T00:00:00Z",
                "from=2019-11-27T03:00:05.5Z&to=2019-11-27T03:00:09Z&format=svg",
            ] {
                let answer = app.get(&format!("{path}?{window}")).await;
                assert_eq!(answer.status(), 200, "{path}?{window}");
                let image = answer.bytes().await.unwrap();
                assert!(image.len() > 1000, "{path}?{window}");
            }
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn every_window_rule_is_a_422_naming_its_parameter() {
    let now = chrono::Utc::now().timestamp();
    let ahead = rfc3339(now + 86_400 + 120);
    let soon = rfc3339(now + 3600);
    let cases: Vec<(String, &[&str])> = vec![
        ("to=2015-01-01T04:00:00Z".into(), &["to needs from"]),
        (
            "from=2015-01-01T03:00:00Z&offset_minutes=60".into(),
            &["offset_minutes", "from"],
        ),
        (
            "from=2015-01-01T04:00:00Z&to=2015-01-01T04:00:00Z".into(),
            &["from must be before to"],
        ),
        (
            "from=2015-01-01T05:00:00Z&to=2015-01-01T04:00:00Z".into(),
            &["from must be before to"],
        ),
        (
            "from=2007-12-31T23:59:59Z".into(),
            &["from must be from 2008-01-01"],
        ),
        (
            format!("from=2015-01-01T00:00:00Z&to={ahead}"),
            &["to must be from 2008-01-01T00:00:00Z to a day ahead"],
        ),
        (format!("from={soon}"), &["from must be before now"]),
        // A date is its day's start; one that is no day is refused.
        (
            "from=2015-13-01".into(),
            &["from must be an RFC 3339 timestamp", "or a date"],
        ),
        (
            "from=2015-01-01T03:00:00+02:00".into(),
            &["from must be an RFC 3339 timestamp", "%2B"],
        ),
        (
            "from=2015-01-01T03:00:00Z&to=now".into(),
            &["to must be an RFC 3339"],
        ),
    ];
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let app = TestApp::spawn(store.location.clone(), None).await;
        for endpoint in WINDOWED {
            for prefix in ["", "/v1"] {
                for (query, says) in &cases {
                    let path = format!("{prefix}{endpoint}{query}");
                    let (status, body) = app.get_json(&path).await;
                    assert_eq!(status, 422, "{path}: {body}");
                    let detail = body["detail"].as_str().unwrap();
                    for word in *says {
                        assert!(detail.contains(word), "{path}: {detail}");
                    }
                }
                // The same window without its fault is answered.
                let path = format!("{prefix}{endpoint}from=2015-01-01T03:00:00Z&to={soon}");
                assert_eq!(app.get(&path).await.status(), 200, "{path}");
            }
        }
        // event-counts still needs a window; the others have their defaults.
        let (status, body) = app.get_json("/metrics/event-counts").await;
        assert_eq!(status, 422);
        assert!(body["detail"].as_str().unwrap().contains("offset_minutes"));
        for path in [
            "/metrics/pr-counts",
            "/metrics/top",
            "/metrics/average-pr-time?repo_name=a/b",
            "/metrics/visualization",
            "/metrics/visualization/timeline",
        ] {
            assert_eq!(app.get(path).await.status(), 200, "{path}");
        }
        app.stop().await;
    }
}

/// GitHub's names ignore case: a repository asked in another spelling is
/// answered under the one stored, on every store.
#[tokio::test]
async fn a_repository_is_found_whatever_the_case_of_its_name() {
    let events = crate::helpers::fixture_events();
    let expected = Expected::of(&events);
    let (stored, openings) = expected
        .openings
        .iter()
        .max_by_key(|(repo, times)| (times.len(), std::cmp::Reverse((*repo).clone())))
        .map(|(repo, times)| (repo.clone(), times.len()))
        .unwrap();
    let asked: String = stored
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    assert_ne!(asked, stored);
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let parsed: Vec<ghmetrics::core::event::Event> = events
            .iter()
            .filter_map(|e| {
                ghmetrics::core::event::parse_event(&serde_json::to_vec(e).unwrap()).unwrap()
            })
            .collect();
        store.open_with(parsed).await;
        let app = TestApp::spawn(store.location.clone(), None).await;
        let (status, answer) = app
            .get_json(&format!("/metrics/average-pr-time?repo_name={asked}"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(answer["repo_name"], stored.as_str(), "{answer}");
        assert_eq!(answer["pr_count"], openings as u64, "{answer}");
        let (_, unknown) = app
            .get_json("/metrics/average-pr-time?repo_name=no-such/repository")
            .await;
        assert_eq!(unknown["repo_name"], "no-such/repository");
        assert_eq!(unknown["pr_count"], 0);
        app.stop().await;
    }
}

/// A fraction past nanoseconds moves no edge: an event at exactly `S` is in
/// `[S, ...)` and not in `[S + 10^-10 s, ...)`; a date is its day's 00:00 UTC.
#[tokio::test]
async fn long_fractions_and_dates_are_answered_exactly() {
    let events = crate::helpers::fixture_events();
    let at = |e: &Value| crate::helpers::created_at(e);
    let second = events.iter().map(at).min().unwrap();
    let count_from = |from: i64| Expected::of(events.iter().filter(|e| at(e) >= from)).total();
    let (with, without) = (count_from(second), count_from(second + 1));
    assert!(with > without, "events at exactly {second}");
    let store = crate::stores::TestStore::sqlite();
    let parsed: Vec<ghmetrics::core::event::Event> = events
        .iter()
        .filter_map(|e| {
            ghmetrics::core::event::parse_event(&serde_json::to_vec(e).unwrap()).unwrap()
        })
        .collect();
    store.open_with(parsed).await;
    let app = TestApp::spawn(store.location.clone(), None).await;
    let total = |answer: &Value| -> u64 {
        crate::helpers::TRACKED
            .iter()
            .map(|t| answer[t].as_u64().unwrap())
            .sum()
    };
    let stamp = DateTime::from_timestamp(second, 0)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Secs, false);
    let base = stamp.trim_end_matches("+00:00");
    for (from, expected) in [
        (format!("{base}.0000000001Z"), without),
        (format!("{base}.0000000000000Z"), with),
        (format!("{base}.000000000000000000001%2B00:00"), without),
    ] {
        let (status, answer) = app
            .get_json(&format!("/metrics/event-counts?from={from}"))
            .await;
        assert_eq!(status, 200, "{from}: {answer}");
        assert_eq!(total(&answer), expected, "{from}");
    }
    let day = DateTime::from_timestamp(second, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    let (status, by_date) = app
        .get_json(&format!("/metrics/event-counts?from={day}"))
        .await;
    assert_eq!(status, 200, "{by_date}");
    assert_eq!(total(&by_date), count_from(second - second % 86_400));
    app.stop().await;
}

/// top, for every type and several limits, over windows that cut minutes
/// and hours: the repositories by their events of the type counted from the
/// raw events, most first, ties by name; and its own bounds.
#[tokio::test]
async fn top_ranks_every_type_exactly_in_any_window() {
    let events = all_events();
    let windows = windows(&events);
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let app = with_fixtures(&store).await;
        let mut ranked_repos = 0;
        for &(from, to) in &windows {
            let expected = expected_in(&events, from, to);
            let window = format!("from={}&to={}", rfc3339(from), rfc3339(to));
            for (event_type, ranking) in &expected.ranked {
                ranked_repos += ranking.len();
                for limit in [1, 7, 10_000] {
                    let path = format!("/metrics/top?type={event_type}&limit={limit}&{window}");
                    let response = app.get(&path).await;
                    assert_eq!(response.status(), 200, "{path}");
                    let body = response.text().await.unwrap();
                    let top = &ranking[..ranking.len().min(limit)];
                    assert_eq!(body, ranked(top), "{path}");
                }
            }
            // WatchEvent and 100 are the defaults.
            let (_, default) = app.get_json(&format!("/metrics/top?{window}")).await;
            let (_, stars) = app
                .get_json(&format!("/metrics/top?type=WatchEvent&limit=100&{window}"))
                .await;
            assert_eq!(default, stars);
        }
        assert!(
            ranked_repos > 1_000,
            "the windows rank {ranked_repos} repositories"
        );
        for (query, says) in [
            ("type=PushEvent", "type must be one of WatchEvent"),
            ("limit=0", "limit must be an integer from 1 to 10000"),
            ("limit=10001", "limit must be an integer from 1 to 10000"),
        ] {
            let (status, body) = app.get_json(&format!("/metrics/top?{query}")).await;
            assert_eq!(status, 422, "{query}: {body}");
            assert!(body["detail"].as_str().unwrap().contains(says), "{body}");
        }
        app.stop().await;
    }
}

/// The timeline as data (`format=json`): each point's counts are the events
/// created in its bucket, counted from the raw events; with `cumulative=true`
/// each point is the running total from the first; and the 422s of both.
#[tokio::test]
async fn timeline_points_are_each_buckets_events() {
    let events = all_events();
    let windows = windows(&events);
    let mut seen: std::collections::HashSet<String> = Default::default();
    let events: Vec<&Value> = events
        .iter()
        .filter(|e| {
            TRACKED.contains(&e["type"].as_str().unwrap())
                && seen.insert(e["id"].as_str().unwrap().to_owned())
        })
        .collect();
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let app = with_fixtures(&store).await;
        let mut counted = 0;
        for &(from, to) in windows.iter().step_by(3) {
            for bucket_minutes in [7, 60] {
                let query = format!(
                    "from={}&to={}&bucket_minutes={bucket_minutes}&format=json",
                    rfc3339(from),
                    rfc3339(to)
                );
                let (status, plain) = app
                    .get_json(&format!("/metrics/visualization/timeline?{query}"))
                    .await;
                assert_eq!(status, 200, "{query}: {plain}");
                let (_, running) = app
                    .get_json(&format!(
                        "/metrics/visualization/timeline?{query}&cumulative=true"
                    ))
                    .await;
                let points = plain["points"].as_array().unwrap();
                assert_eq!(plain["cumulative"], false);
                assert_eq!(running["cumulative"], true);
                let width = plain["bucket_minutes"].as_i64().unwrap() * 60;
                // The last bucket ends with the window's last minute.
                let last_start =
                    DateTime::parse_from_rfc3339(points.last().unwrap()["start"].as_str().unwrap())
                        .unwrap()
                        .timestamp();
                assert_eq!(last_start + width, (to + 59).div_euclid(60) * 60, "{query}");
                let mut totals = [0u64; 3];
                for (point, total_point) in points.iter().zip(running["points"].as_array().unwrap())
                {
                    let start = DateTime::parse_from_rfc3339(point["start"].as_str().unwrap())
                        .unwrap()
                        .timestamp();
                    for (i, kind) in TRACKED.iter().enumerate() {
                        let expected = events
                            .iter()
                            .filter(|e| {
                                e["type"] == *kind
                                    && (start..start + width).contains(&created_at(e))
                            })
                            .count() as u64;
                        assert_eq!(point[*kind], expected, "{query} {start} {kind}");
                        totals[i] += expected;
                        counted += expected;
                        assert_eq!(
                            total_point[*kind], totals[i],
                            "{query} {start} {kind} running"
                        );
                    }
                }
            }
        }
        assert!(counted > 1_000, "the buckets hold {counted} events");
        for (query, says) in [
            ("format=csv", "format must be one of png, svg, json"),
            ("cumulative=yes", "cumulative must be true or false"),
        ] {
            let (status, body) = app
                .get_json(&format!("/metrics/visualization/timeline?{query}"))
                .await;
            assert_eq!(status, 422, "{query}: {body}");
            assert!(body["detail"].as_str().unwrap().contains(says), "{body}");
        }
        // A running total is drawn too.
        let png = app
            .get("/metrics/visualization/timeline?offset_minutes=60&cumulative=true")
            .await;
        assert_eq!(png.headers()["content-type"], "image/png");
        app.stop().await;
    }
}

/// Whether the fixture event's actor is a bot: a GitHub App's login (ends
/// in `[bot]`, any case) or one of `named` (any case).
fn by_bot(event: &Value, named: &[String]) -> bool {
    let login = event["actor"]["login"]
        .as_str()
        .unwrap_or("")
        .to_ascii_lowercase();
    login.ends_with("[bot]") || named.contains(&login)
}

/// `exclude_bots=true` on every metric, and `repo_name` on event-counts and
/// the timeline, over windows that cut minutes and hours: each answer equals
/// a count of the raw events without the bots' (GitHub Apps and the logins
/// named at start-up) or of one repository's (asked in another case); and
/// after a restart with another list of bot logins, the answers follow it.
#[tokio::test]
async fn answers_without_bots_and_for_one_repository_are_exact_in_any_window() {
    let events = all_events();
    let windows = windows(&events);
    // The two busiest human actors are named as bots; the next run names
    // another. Repositories: the three with the most events.
    let mut actors: std::collections::BTreeMap<String, usize> = Default::default();
    let mut repos: std::collections::BTreeMap<String, usize> = Default::default();
    for event in events
        .iter()
        .filter(|e| TRACKED.contains(&e["type"].as_str().unwrap()))
    {
        *repos
            .entry(event["repo"]["name"].as_str().unwrap().to_owned())
            .or_default() += 1;
        if !by_bot(event, &[]) {
            let login = event["actor"]["login"]
                .as_str()
                .unwrap()
                .to_ascii_lowercase();
            *actors.entry(login).or_default() += 1;
        }
    }
    let busiest = |counts: &std::collections::BTreeMap<String, usize>, n: usize| {
        let mut ranked: Vec<(&String, &usize)> = counts.iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        ranked
            .into_iter()
            .take(n)
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
    };
    let named_first = busiest(&actors, 2);
    let named_then = busiest(&actors, 3)[2..].to_vec();
    let repos = busiest(&repos, 3);
    let bots_in = |named: &[String]| events.iter().filter(|e| by_bot(e, named)).count();
    assert!(
        bots_in(&[]) > 50,
        "the fixtures hold {} bots' events",
        bots_in(&[])
    );
    for store in every_store() {
        eprintln!("store: {}", store.name);
        let logins = |named: &[String]| {
            let named: Vec<ghmetrics::core::bots::BotLogin> = named
                .iter()
                .map(|login| login.to_uppercase().parse().unwrap())
                .collect();
            ghmetrics::core::bots::BotLogins::new(named).unwrap()
        };
        let first = logins(&named_first);
        let app = TestApp::spawn_with(store.location.clone(), None, |config| {
            config.bot_logins = first;
        })
        .await;
        let files = FIXTURE_FILES
            .iter()
            .map(|name| fixture_path(name))
            .collect();
        import_files(&app.store, files, &[]).await;
        for &(from, to) in windows.iter().step_by(2) {
            let humans: Vec<Value> = events
                .iter()
                .filter(|e| (from..to).contains(&created_at(e)) && !by_bot(e, &named_first))
                .cloned()
                .collect();
            let expected = Expected::of(&humans);
            let window = format!("from={}&to={}", rfc3339(from), rfc3339(to));
            let (status, counts) = app
                .get_json(&format!("/metrics/event-counts?{window}&exclude_bots=true"))
                .await;
            assert_eq!(status, 200, "{counts}");
            assert_eq!(counts, json!(expected.by_type), "{window}");
            for (event_type, ranking) in &expected.ranked {
                let path = format!(
                    "/metrics/top?type={event_type}&limit=10000&{window}&exclude_bots=true"
                );
                assert_eq!(
                    app.get(&path).await.text().await.unwrap(),
                    ranked(ranking),
                    "{path}"
                );
            }
            let path = format!("/v1/metrics/pr-counts?{window}&exclude_bots=true");
            let prs = expected
                .ranked
                .get("PullRequestEvent")
                .cloned()
                .unwrap_or_default();
            assert_eq!(
                app.get(&path).await.text().await.unwrap(),
                ranked(&prs),
                "{path}"
            );
            for repo in &repos {
                let asked = repo.to_uppercase();
                for exclude_bots in [false, true] {
                    let mine: Vec<&Value> = events
                        .iter()
                        .filter(|e| {
                            e["repo"]["name"] == repo.as_str()
                                && (from..to).contains(&created_at(e))
                                && !(exclude_bots && by_bot(e, &named_first))
                        })
                        .collect();
                    let expected = Expected::of(mine.iter().copied());
                    let query = format!("{window}&repo_name={asked}&exclude_bots={exclude_bots}");
                    let (_, mut counts) = app
                        .get_json(&format!("/metrics/event-counts?{query}"))
                        .await;
                    // Imported files that are not archive hours: a sample.
                    let source = counts.as_object_mut().unwrap().remove("source");
                    assert_eq!(source, Some(json!("global_feed")), "{query}");
                    assert_eq!(counts, json!(expected.by_type), "{query}");
                    let (_, timeline) = app
                        .get_json(&format!(
                            "/metrics/visualization/timeline?{query}&format=json&bucket_minutes=13"
                        ))
                        .await;
                    // The buckets cover whole minutes around the window.
                    let points = timeline["points"].as_array().unwrap();
                    let start_of = |point: &Value| {
                        DateTime::parse_from_rfc3339(point["start"].as_str().unwrap())
                            .unwrap()
                            .timestamp()
                    };
                    let span = start_of(&points[0])
                        ..start_of(points.last().unwrap())
                            + timeline["bucket_minutes"].as_i64().unwrap() * 60;
                    let expected = Expected::of(events.iter().filter(|e| {
                        e["repo"]["name"] == repo.as_str()
                            && span.contains(&created_at(e))
                            && !(exclude_bots && by_bot(e, &named_first))
                    }));
                    let mut drawn = std::collections::BTreeMap::new();
                    for point in points {
                        for kind in TRACKED {
                            *drawn.entry(kind.to_string()).or_insert(0) +=
                                point[kind].as_u64().unwrap();
                        }
                    }
                    assert_eq!(drawn, expected.by_type, "{query} timeline");
                }
            }
        }
        // PR gaps without the bots' openings, for every repository with some.
        let humans: Vec<Value> = events
            .iter()
            .filter(|e| !by_bot(e, &named_first))
            .cloned()
            .collect();
        let expected = Expected::of(&humans);
        let everyone = Expected::of(&events);
        let mut differ = 0;
        for (repo, times) in &everyone.openings {
            let mine = expected.openings.get(repo).map_or(0, Vec::len);
            differ += usize::from(mine != times.len());
            let (_, gaps) = app
                .get_json(&format!(
                    "/metrics/average-pr-time?repo_name={repo}&exclude_bots=true"
                ))
                .await;
            assert_eq!(gaps["pr_count"], mine, "{repo}: {gaps}");
        }
        assert!(differ > 0, "no repository has a bot's opening");
        // /health's share, and a restart with another list re-marks.
        let (_, health) = app.get_json("/health").await;
        let total = everyone.by_type.values().sum::<u64>() as f64;
        let bots = total - expected.by_type.values().sum::<u64>() as f64;
        assert!(
            (health["bot_share"].as_f64().unwrap() - bots / total).abs() < 1e-9,
            "{health}"
        );
        // Both charts draw without bots; a bad flag or name is a 422.
        for path in [
            "/metrics/visualization?exclude_bots=true&from=2015-01-01",
            "/metrics/visualization/timeline?exclude_bots=true&from=2015-01-01&repo_name=a/b",
        ] {
            assert_eq!(app.get(path).await.status(), 200, "{path}");
        }
        let bad_flag = WINDOWED.map(|endpoint| {
            (
                endpoint,
                "exclude_bots=yes",
                "exclude_bots must be true or false",
            )
        });
        let bad_name = ["/metrics/event-counts?", "/metrics/visualization/timeline?"]
            .map(|endpoint| (endpoint, "repo_name=a/b/c", "repo_name must be owner/name"));
        for (endpoint, query, says) in bad_flag.into_iter().chain(bad_name) {
            let path = format!("{endpoint}{query}&from=2015-01-01");
            let (status, body) = app.get_json(&path).await;
            assert_eq!(status, 422, "{path}");
            assert!(body["detail"].as_str().unwrap().contains(says), "{body}");
        }
        app.stop().await;
        let then = logins(&named_then);
        let app = TestApp::spawn_with(store.location.clone(), None, |config| {
            config.bot_logins = then;
        })
        .await;
        let humans: Vec<Value> = events
            .iter()
            .filter(|e| !by_bot(e, &named_then))
            .cloned()
            .collect();
        let (_, counts) = app
            .get_json("/metrics/event-counts?from=2008-01-01&exclude_bots=true")
            .await;
        assert_eq!(
            counts,
            json!(Expected::of(&humans).by_type),
            "after the restart"
        );
        app.stop().await;
    }
}
