//! The real binary: signals, exit codes, bad flags, `kill -9`, and secrets in output.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{Expected, Fault, MockGithub, PATIENCE, fixture_events};

/// A running `ghmetrics` process and everything it has printed so far.
struct Service {
    child: Child,
    address: SocketAddr,
    output: Arc<Mutex<String>>,
}

impl Service {
    /// Starts the binary on 127.0.0.1:0 and waits for its "serving HTTP" line.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Service {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ghmetrics"));
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("GITHUB_TOKEN")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let (address_tx, address_rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            let address_tx = address_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if line.contains("serving HTTP")
                        && let Some(address) = line.split("address=").nth(1)
                    {
                        let _ = address_tx
                            .send(address.split_whitespace().next().unwrap().parse().unwrap());
                    }
                    let mut all = output.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        let address = match address_rx.recv_timeout(PATIENCE) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                panic!("service did not start: {}", output.lock().unwrap());
            }
        };
        Service {
            child,
            address,
            output,
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for exit, failing past `limit`.
    fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "still running after {limit:?}: {}",
                    self.output.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    async fn health(&self) -> serde_json::Value {
        reqwest::get(format!("http://{}/health", self.address))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls `/health` until `done` holds (an external process has no other signal).
    async fn wait_for_health(
        &self,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let health = self.health().await;
            if done(&health) {
                return health;
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting; last /health: {health}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn db_arg(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn sigterm_and_sigint_stop_it_cleanly() {
    ghmetrics::ingest::github::client::install_crypto_provider();
    for signal in ["TERM", "INT"] {
        let mut service = Service::start(&["--no-poll", "--db", ":memory:"], &[]);
        assert_eq!(service.health().await["status"], "ok");
        let started = Instant::now();
        service.signal(signal);
        let status = service.wait(Duration::from_secs(5));
        assert!(status.success(), "SIG{signal}: {status:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

/// SIGTERM while `--follow-gharchive` reads an hour that never ends: the
/// service still stops at once, exit status 0.
#[tokio::test]
async fn sigterm_stops_a_follower_stuck_on_an_endless_hour() {
    use crate::gharchive::{Fault, MockArchive};
    let archive = MockArchive::start().await;
    let hour = chrono::Utc::now().timestamp() / 3600 - 2;
    let name = ghmetrics::ingest::gharchive::file_name(hour);
    archive.put(&name, &fixture_events()[..10]);
    archive.faults(&name, [Fault::Drip; 5]);
    let from = chrono::DateTime::from_timestamp(hour * 3600, 0)
        .unwrap()
        .format("%Y-%m-%dT%H")
        .to_string();
    let mut service = Service::start(
        &[
            "--no-poll",
            "--db",
            ":memory:",
            "--follow-gharchive",
            "--follow-gharchive-from",
            &from,
            "--gharchive-url",
            &archive.url,
        ],
        &[],
    );
    let deadline = Instant::now() + PATIENCE;
    while !archive.take_requests().contains(&name) {
        assert!(
            Instant::now() < deadline,
            "the follower never asked for {name}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    service.signal("TERM");
    let status = service.wait(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn bad_settings_fail_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let unusable_db = blocker.join("events.db");
    let cases: [&[&str]; 5] = [
        &["--listen", "nonsense"],
        &["--retention", "18446744073709551615s"],
        &["--retention", "300000000000y"],
        &["--github-api-url", "::not a url::"],
        &[
            "--no-poll",
            "--listen",
            "127.0.0.1:0",
            "--db",
            unusable_db.to_str().unwrap(),
        ],
    ];
    for args in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_ghmetrics"))
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_ghmetrics"))
        .args(cases[4])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("a-file"), "names the path: {stderr}");
}

/// A token that cannot be sent as a header stops the service at start, in
/// one line that does not repeat it; a trailing newline is just trimmed.
#[test]
fn an_invalid_token_is_a_startup_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_ghmetrics"))
        .args(["--db", ":memory:", "--listen", "127.0.0.1:0"])
        .env("GITHUB_TOKEN", "ghp_has a space")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: GITHUB_TOKEN"), "{stderr}");
    assert!(!stderr.contains("has a space"), "{stderr}");
}

#[test]
fn help_explains_every_flag() {
    for args in [&["--help"][..], &["serve", "--help"]] {
        let output = Command::new(env!("CARGO_BIN_EXE_ghmetrics"))
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success());
        let help = String::from_utf8_lossy(&output.stdout);
        for flag in [
            "--listen",
            "--db",
            "--github-api-url",
            "--no-poll",
            "GHMETRICS_DB",
            "GITHUB_API_URL",
        ] {
            assert!(help.contains(flag), "{args:?} lacks {flag}");
        }
    }
}

/// Starts the service with `args`, lets its first poll run for `delay_ms`
/// after its first request reaches `mock`, and kills it with SIGKILL.
async fn kill_9_mid_poll(args: &[&str], mock: &MockGithub, delay_ms: u64) {
    let requests_before = mock.seen().len();
    let mut service = Service::start(args, &[]);
    let deadline = Instant::now() + PATIENCE;
    while mock.seen().len() == requests_before {
        assert!(Instant::now() < deadline, "never polled");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    service.signal("KILL");
    service.wait(Duration::from_secs(5));
}

#[tokio::test]
async fn kill_9_mid_poll_leaves_a_sound_database() {
    ghmetrics::ingest::github::client::install_crypto_provider();
    let raw = fixture_events();
    let expected = Expected::of(&raw).total();
    let mock = MockGithub::start(100).await;
    mock.set_feed(&raw);
    let dir = tempfile::tempdir().unwrap();
    // Kill at a different moment of the first poll each time: the poll's one
    // transaction must be all there or not there at all.
    for (round, delay_ms) in [0u64, 5, 15, 40, 120].into_iter().enumerate() {
        let path = dir.path().join(format!("round-{round}.db"));
        kill_9_mid_poll(
            &["--db", &db_arg(&path), "--github-api-url", &mock.url],
            &mock,
            delay_ms,
        )
        .await;

        let conn = rusqlite::Connection::open(&path).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let stored: u64 = conn
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
            .unwrap();
        assert!(
            stored == 0 || stored == expected,
            "round {round}: {stored} of {expected}: a torn poll"
        );
        drop(conn);

        // The next start picks up where it left off and completes the data.
        let restarted = Service::start(
            &["--db", &db_arg(&path), "--github-api-url", &mock.url],
            &[],
        );
        restarted
            .wait_for_health(|h| h["events_stored"] == expected)
            .await;
    }
}

#[tokio::test]
async fn the_token_never_appears_in_any_output() {
    ghmetrics::ingest::github::client::install_crypto_provider();
    const TOKEN: &str = "ghp_Zx9SecretTokenValue0123456789";
    let raw = fixture_events();
    let mock = MockGithub::start(100).await;
    mock.set_feed(&raw[..200]);
    mock.push_faults([Fault::Status(500), Fault::Status(401), Fault::Body("{oops")]);
    let mut service = Service::start(
        &["--db", ":memory:", "--github-api-url", &mock.url],
        &[("GITHUB_TOKEN", TOKEN), ("RUST_LOG", "trace")],
    );
    service
        .wait_for_health(|h| h["events_stored"] == Expected::of(&raw[..200]).total())
        .await;
    service.signal("TERM");
    assert!(service.wait(Duration::from_secs(5)).success());
    let seen = mock.seen();
    assert!(
        seen.iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}"))),
        "the token was used"
    );
    let output = service.output.lock().unwrap().clone();
    assert!(
        output.contains("poll failed"),
        "faults were logged:\n{output}"
    );
    assert!(
        !output.contains("Zx9SecretToken"),
        "token leaked:\n{output}"
    );
}

/// `user:password@` in `--github-api-url` appears in no log line, and
/// `/health` tells any client only the kind of failure, not the URL or the
/// network details; after three failed polls it says `degraded`.
#[tokio::test]
async fn api_url_credentials_stay_out_of_logs_and_health() {
    ghmetrics::ingest::github::client::install_crypto_provider();
    // A port with nothing listening: every poll fails in transport.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://apiuser:Pa55wordSecret@127.0.0.1:{port}/");
    let mut service = Service::start(
        &["--db", ":memory:", "--github-api-url", &url],
        &[("RUST_LOG", "ghmetrics=debug")],
    );
    let health = service
        .wait_for_health(|h| h["consecutive_poll_failures"].as_u64() >= Some(3))
        .await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["last_poll_error"], "transport", "{health}");
    let problem = health["last_poll_problem"].as_str().unwrap();
    assert!(
        problem.starts_with("cannot reach the GitHub API: connection refused;")
            && problem.contains("ghmetrics import FILE")
            && problem.contains("--no-poll"),
        "{problem}"
    );
    let text = health.to_string();
    assert!(
        !text.contains("127.0.0.1") && !text.contains("apiuser"),
        "{text}"
    );
    service.signal("TERM");
    assert!(service.wait(Duration::from_secs(5)).success());
    let output = service.output.lock().unwrap().clone();
    assert!(output.contains("poll failed"), "{output}");
    assert!(output.contains("poller started"), "{output}");
    assert!(
        !output.contains("Pa55wordSecret"),
        "password leaked:\n{output}"
    );
    assert!(!output.contains("apiuser"), "user name leaked:\n{output}");
}

/// `kill -9` at any moment of a poll into ClickHouse (one server, and the
/// two-shard cluster) leaves all of the poll's events or none, and the next
/// start completes them, taking over the lock the killed writer held.
#[tokio::test]
async fn kill_9_mid_poll_leaves_a_sound_clickhouse_store() {
    ghmetrics::ingest::github::client::install_crypto_provider();
    let Some(servers) = crate::stores::clickhouse() else {
        return;
    };
    let raw = fixture_events();
    let expected = Expected::of(&raw).total();
    let mock = MockGithub::start(100).await;
    mock.set_feed(&raw);
    for (round, delay_ms) in [0u64, 20, 80].into_iter().enumerate() {
        let store = if round % 2 == 0 {
            servers.single()
        } else {
            servers.cluster()
        };
        let mut args = store.cli_args();
        args.extend(["--github-api-url".to_owned(), mock.url.clone()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kill_9_mid_poll(&args, &mock, delay_ms).await;

        let stored = store.open().await.totals().await.unwrap().events;
        assert!(
            stored == 0 || stored == expected,
            "round {round} ({}): {stored} of {expected}: a torn poll",
            store.name
        );
        let restarted = Service::start(&args, &[]);
        restarted
            .wait_for_health(|h| h["events_stored"] == expected)
            .await;
    }
}

/// The ClickHouse password is taken only from GHMETRICS_CLICKHOUSE_PASSWORD
/// and shows in no output, even when the server refuses it; one in the URL
/// is refused without being repeated.
#[test]
fn the_clickhouse_password_never_appears_in_any_output() {
    const PASSWORD: &str = "Ch5ecretPassw0rd";
    let Some(servers) = crate::stores::clickhouse() else {
        return;
    };
    let store = servers.single();
    let mut args = store.cli_args();
    args.extend([
        "--no-poll".to_owned(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
    ]);
    // The test server's user has no password, so this one is refused.
    let refused = Command::new(env!("CARGO_BIN_EXE_ghmetrics"))
        .args(["serve"])
        .args(&args)
        .env("GHMETRICS_CLICKHOUSE_PASSWORD", PASSWORD)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(refused.status.code(), Some(1), "{output}");
    assert!(output.contains("ClickHouse"), "{output}");
    assert!(!output.contains(PASSWORD), "password leaked:\n{output}");

    let in_url = args[1].replace(
        "clickhouse://",
        &format!("clickhouse://default:{PASSWORD}@"),
    );
    let refused = Command::new(env!("CARGO_BIN_EXE_ghmetrics"))
        .args(["serve", "--no-poll", "--store", &in_url])
        .output()
        .unwrap();
    let output = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert_eq!(refused.status.code(), Some(1), "{output}");
    assert!(output.contains("GHMETRICS_CLICKHOUSE_PASSWORD"), "{output}");
    assert!(!output.contains(PASSWORD), "password leaked:\n{output}");
}

/// With no network (a name that cannot be looked up), `/health` and the log
/// say so in words, and point to what works offline.
#[tokio::test]
async fn no_network_is_said_in_words() {
    let mut service = Service::start(
        &[
            "--db",
            ":memory:",
            "--github-api-url",
            "http://api.github.invalid/",
        ],
        &[],
    );
    let health = service
        .wait_for_health(|h| h["consecutive_poll_failures"].as_u64() >= Some(1))
        .await;
    let problem = health["last_poll_problem"].as_str().unwrap();
    assert!(
        problem.starts_with("cannot reach the GitHub API: name lookup failed;")
            && problem.contains("ghmetrics import FILE"),
        "{problem}"
    );
    assert!(!health.to_string().contains("github.invalid"), "{health}");
    service.signal("TERM");
    assert!(service.wait(Duration::from_secs(5)).success());
    let output = service.output.lock().unwrap().clone();
    assert!(
        output.contains("poll failed: cannot reach the GitHub API: name lookup failed"),
        "{output}"
    );
}

/// A database file that cannot be opened fails at once, in one line that
/// names the path and the reason, each said once.
#[test]
fn an_unopenable_database_fails_at_once_in_one_line() {
    for args in [
        &[
            "--db",
            "/proc/ghmetrics-test.db",
            "--no-poll",
            "--listen",
            "127.0.0.1:0",
        ][..],
        &["import", "--db", "/proc/ghmetrics-test.db", "/dev/null"][..],
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ghmetrics"))
            .args(args)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let [line] = &lines[..] else {
            panic!("{stderr}")
        };
        assert!(
            line.starts_with("error: ")
                && line.contains("cannot open the database /proc/ghmetrics-test.db: "),
            "{line}"
        );
        assert_eq!(
            line.matches("No such file or directory").count(),
            1,
            "{line}"
        );
    }
}

/// The resident memory of process `pid`, in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// Months of archive hours make each `/coverage` since 2008 megabytes long;
/// 200 of them, each a new window, leave the service's memory within a
/// bound once the allocator has warmed up (the answer cache keeps no answer
/// over a megabyte, 32 MiB in all; it used to keep each).
#[tokio::test]
async fn huge_coverage_answers_do_not_grow_memory() {
    const HOURS: i64 = 3_000;
    const WARM_UP: i64 = 20;
    const GROWTH_BOUND: u64 = 64 << 20;
    ghmetrics::ingest::github::client::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let location = ghmetrics::config::SqliteLocation::File(path.clone());
    drop(ghmetrics::store::Sqlite::open(&location).unwrap());
    {
        // Each hour: a settled hour whose archive holds 100 events of each
        // type, 30 of them seen live first.
        let conn = rusqlite::Connection::open(&path).unwrap();
        let first = 1_577_836_800 / 3600; // 2020-01-01
        conn.execute_batch(&format!(
            "WITH RECURSIVE h(hour) AS (SELECT {first} UNION ALL SELECT hour + 1 FROM h WHERE hour < {last})
             INSERT INTO hour_sources (hour, type_code, origin, archives, events)
                 SELECT hour, t.code, o.origin, 1, o.n FROM h,
                     (SELECT 1 AS code UNION ALL SELECT 2 UNION ALL SELECT 3) AS t,
                     (SELECT 1 AS origin, 30 AS n UNION ALL SELECT 3, 70) AS o;
             INSERT INTO settled_hours (hour, settled_at) SELECT hour, 0 FROM hour_sources GROUP BY hour;",
            last = first + HOURS - 1
        ))
        .unwrap();
    }
    let db = path.to_str().unwrap().to_owned();
    let service = Service::start(&["--no-poll", "--db", &db], &[]);
    let client = reqwest::Client::new();
    // Two at a time (the service's two workers), each window new.
    let ask = |second: i64| {
        let from = chrono::DateTime::from_timestamp(1_199_145_600 + second, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let request = client.get(format!("http://{}/coverage?from={from}", service.address));
        async move {
            let answer = request.send().await.unwrap();
            assert_eq!(answer.status(), 200);
            answer.bytes().await.unwrap().len()
        }
    };
    let size = ask(0).await;
    assert!(size > 1 << 20, "{size} bytes");
    let ask_pairs = |seconds: std::ops::Range<i64>| async move {
        for second in seconds.step_by(2) {
            let (a, b) = tokio::join!(ask(second), ask(second + 1));
            assert_eq!((a, b), (size, size));
        }
    };
    ask_pairs(1..WARM_UP).await;
    let before = resident_bytes(service.child.id());
    ask_pairs(WARM_UP..201).await;
    let after = resident_bytes(service.child.id());
    assert!(
        after < before + GROWTH_BOUND,
        "{} MiB after {WARM_UP} answers of {} KiB, {} MiB after 200",
        before >> 20,
        size >> 10,
        after >> 20
    );
}
