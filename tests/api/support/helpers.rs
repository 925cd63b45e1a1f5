//! Shared test scaffolding: a scripted mock of GitHub's `/events`, the service
//! spawned on a random port, and expected answers computed straight from the
//! fixture JSON (independently of the service's parser and SQL).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ghmetrics::App;
use ghmetrics::config::{Config, HttpConfig, PollerConfig, StoreLocation};
use ghmetrics::ingest::github::PollReport;
use ghmetrics::store::Store;
use ghmetrics::store::sqlite::Sqlite;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The tracked types, as the API names them.
pub const TRACKED: [&str; 3] = ["WatchEvent", "PullRequestEvent", "IssuesEvent"];

/// How long any single wait in a test may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// An event's `created_at`, epoch seconds.
pub fn created_at(event: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(event["created_at"].as_str().unwrap())
        .unwrap()
        .timestamp()
}

/// Epoch second `second` as the API writes times (`2015-01-01T03:00:00Z`).
pub fn rfc3339(second: i64) -> String {
    chrono::DateTime::from_timestamp(second, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `import` of `files` into `store`, keeping only `repos` when some are
/// given.
pub async fn import_files(store: &Store, files: Vec<std::path::PathBuf>, repos: &[&str]) {
    let options = ghmetrics::ingest::import::ImportOptions {
        repos: repos.iter().map(|r| (*r).to_owned()).collect(),
        ..Default::default()
    };
    ghmetrics::ingest::import::import(store, &files, &options)
        .await
        .unwrap();
}

/// The recorded GH Archive files in `tests/fixtures/`.
pub const FIXTURE_FILES: [&str; 3] = [
    "events-2015-01-01-first1000.json.gz",
    "events-2019-11-27-first100.json.gz",
    "events-2021-07-21-sample.json.gz",
];

pub fn fixture_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The events of one fixture file, in file order.
pub fn fixture_file_events(name: &str) -> Vec<Value> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(fixture_path(name)).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The 2021 fixture's 800 events, newest first (as GitHub serves them).
pub fn fixture_events() -> Vec<Value> {
    let mut events = fixture_file_events("events-2021-07-21-sample.json.gz");
    events.sort_by_key(|e| std::cmp::Reverse(e["id"].as_str().unwrap().parse::<i64>().unwrap()));
    events
}

/// What the service should answer for a set of events, computed from raw JSON.
pub struct Expected {
    pub by_type: BTreeMap<String, u64>,
    pub pr_counts: Vec<(String, u64)>,
    /// Type -> repositories by their events of the type, most first, ties
    /// by name.
    pub ranked: BTreeMap<String, Vec<(String, u64)>>,
    /// Repository -> its PR opening times (epoch seconds), sorted.
    pub openings: BTreeMap<String, Vec<i64>>,
}

impl Expected {
    pub fn of<'a>(events: impl IntoIterator<Item = &'a Value>) -> Expected {
        let mut seen = HashSet::new();
        let mut by_type: BTreeMap<String, u64> =
            TRACKED.iter().map(|t| (t.to_string(), 0)).collect();
        let mut by_repo: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut openings: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for event in events {
            let kind = event["type"].as_str().unwrap();
            if !TRACKED.contains(&kind) || !seen.insert(event["id"].as_str().unwrap().to_owned()) {
                continue;
            }
            *by_type.get_mut(kind).unwrap() += 1;
            let repo = event["repo"]["name"].as_str().unwrap().to_owned();
            *by_repo.entry((kind.to_owned(), repo.clone())).or_default() += 1;
            if kind == "PullRequestEvent" && event["payload"]["action"] == "opened" {
                openings.entry(repo).or_default().push(created_at(event));
            }
        }
        for times in openings.values_mut() {
            times.sort();
        }
        let mut ranked: BTreeMap<String, Vec<(String, u64)>> = TRACKED
            .iter()
            .map(|t| (t.to_string(), Vec::new()))
            .collect();
        for ((kind, repo), n) in by_repo {
            ranked.get_mut(&kind).unwrap().push((repo, n));
        }
        for ranking in ranked.values_mut() {
            ranking.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        Expected {
            by_type,
            pr_counts: ranked["PullRequestEvent"].clone(),
            ranked,
            openings,
        }
    }

    pub fn total(&self) -> u64 {
        self.by_type.values().sum()
    }

    /// Asserts that `store` counts, over all time, these events per type.
    pub async fn assert_counted_by(&self, store: &ghmetrics::store::Store) {
        let counts = store
            .event_counts(ghmetrics::core::time::Window::EVER, Default::default())
            .await
            .unwrap();
        for (event_type, n) in counts.by_type() {
            assert_eq!(n, self.by_type[event_type.as_str()], "{event_type:?}");
        }
    }
}

/// A scripted failure the mock serves instead of the next response.
#[derive(Clone, Debug)]
pub enum Fault {
    Status(u16),
    /// 403 with `X-RateLimit-Remaining: 0` and a reset this many seconds ahead.
    RateLimitReset {
        reset_in_secs: u64,
    },
    /// The given status with `Retry-After`.
    RetryAfter {
        status: u16,
        secs: u64,
    },
    /// 200 with this body.
    Body(&'static str),
    /// 200 with a JSON array this many bytes long, streamed without a
    /// Content-Length (so only reading it shows how large it is).
    LargeBody(usize),
    /// Answer only after this long (longer than the client's timeout).
    Delay(Duration),
    /// Serve this request normally (to aim a later fault at page 2).
    Pass,
}

/// One request the mock saw.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub at: Instant,
    /// `/events` or `/repos/{owner}/{name}/events`.
    pub path: String,
    pub page: usize,
    pub headers: HeaderMap,
    pub status: u16,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct MockState {
    base_url: String,
    feed: Vec<Value>,
    /// Per-repository feeds by `owner/name`; any other repository is a 404.
    repo_feeds: HashMap<String, Vec<Value>>,
    page_size: usize,
    poll_interval_secs: u64,
    faults: VecDeque<Fault>,
    seen: Vec<SeenRequest>,
    /// When set, `/events` is regenerated at every request from the clock.
    moving: Option<MovingFeed>,
    /// When set, answers carry `X-RateLimit-Remaining` (counting down) and
    /// `X-RateLimit-Reset` this epoch second.
    quota: Option<(u64, u64)>,
}

/// A global feed that moves with time, as GitHub's does: `per_second` new
/// events a second, the newest `length` of them served, newest first.
struct MovingFeed {
    templates: Vec<Value>,
    started: Instant,
    first_id: i64,
    per_second: f64,
    length: usize,
}

impl MovingFeed {
    fn at(&self, now: Instant) -> Vec<Value> {
        let newest = self.first_id + ((now - self.started).as_secs_f64() * self.per_second) as i64;
        self.templates
            .iter()
            .cycle()
            .take(self.length)
            .enumerate()
            .map(|(i, template)| {
                let mut event = template.clone();
                event["id"] = serde_json::json!((newest - i as i64).to_string());
                event
            })
            .collect()
    }
}

/// An in-process stand-in for GitHub's `/events`, on 127.0.0.1:0.
#[derive(Clone)]
pub struct MockGithub {
    pub url: String,
    state: Arc<Mutex<MockState>>,
}

impl MockGithub {
    pub async fn start(page_size: usize) -> MockGithub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(MockState {
            base_url: url.clone(),
            feed: Vec::new(),
            repo_feeds: HashMap::new(),
            page_size,
            poll_interval_secs: 1,
            faults: VecDeque::new(),
            seen: Vec::new(),
            moving: None,
            quota: None,
        }));
        let app = Router::new()
            .route("/events", get(serve_events))
            .route("/repos/{owner}/{name}/events", get(serve_repo_events))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        MockGithub { url, state }
    }

    /// The events the feed serves from now on, newest first.
    pub fn set_feed(&self, events: &[Value]) {
        self.state.lock().unwrap().feed = events.to_vec();
    }

    /// From now on `/events` moves with time: `per_second` new events a
    /// second (copies of `templates` with rising ids), 300 served.
    pub fn set_moving_feed(&self, templates: &[Value], per_second: f64) {
        self.state.lock().unwrap().moving = Some(MovingFeed {
            templates: templates.to_vec(),
            started: Instant::now(),
            first_id: 50_000_000_000,
            per_second,
            length: 300,
        });
    }

    /// Answers carry a rate limit: `remaining` requests (one less per
    /// answer) until `reset_in_secs` from now.
    pub fn set_quota(&self, remaining: u64, reset_in_secs: u64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        self.state.lock().unwrap().quota = Some((remaining, now + reset_in_secs));
    }

    /// What `/repos/{repo}/events` serves from now on, newest first.
    pub fn set_repo_feed(&self, repo: &str, events: &[Value]) {
        self.state
            .lock()
            .unwrap()
            .repo_feeds
            .insert(repo.to_owned(), events.to_vec());
    }

    /// The ETag of a repository feed's first page.
    pub fn repo_etag(&self, repo: &str) -> String {
        etag_of(&self.state.lock().unwrap().repo_feeds[repo])
    }

    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.lock().unwrap().faults.extend(faults);
    }

    /// Where `Link` headers point (default: the mock itself).
    pub fn set_link_base(&self, base: &str) {
        self.state.lock().unwrap().base_url = base.to_owned();
    }

    pub fn seen(&self) -> Vec<SeenRequest> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The ETag the mock gives page 1 of the current feed: weak and quoted, like GitHub's.
    pub fn etag(&self) -> String {
        etag_of(&self.state.lock().unwrap().feed)
    }
}

fn etag_of(feed: &[Value]) -> String {
    let newest = feed.first().map_or("empty", |e| e["id"].as_str().unwrap());
    format!("W/\"{newest}-{}\"", feed.len())
}

async fn serve_repo_events(
    State(state): State<Arc<Mutex<MockState>>>,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let repo = format!("{owner}/{name}");
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let path = format!("/repos/{repo}/events");
    let response = {
        let mock = state.lock().unwrap();
        match mock.repo_feeds.get(&repo) {
            Some(feed) => page_response(&mock, feed, &path, page, &headers),
            None => (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#).into_response(),
        }
    };
    state.lock().unwrap().seen.push(SeenRequest {
        at: Instant::now(),
        path,
        page,
        headers,
        status: response.status().as_u16(),
    });
    response
}

async fn serve_events(
    State(state): State<Arc<Mutex<MockState>>>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let (fault, response) = {
        let mut mock = state.lock().unwrap();
        if let Some(moving) = &mock.moving {
            mock.feed = moving.at(Instant::now());
        }
        let fault = mock.faults.pop_front();
        let response = if fault.as_ref().is_some_and(|f| !matches!(f, Fault::Pass)) {
            None
        } else {
            Some(page_response(&mock, &mock.feed, "/events", page, &headers))
        };
        (fault, response)
    };
    let response = match (fault, response) {
        (Some(Fault::Delay(delay)), _) => {
            tokio::time::sleep(delay).await;
            let mock = state.lock().unwrap();
            page_response(&mock, &mock.feed, "/events", page, &headers)
        }
        (Some(Fault::Pass) | None, Some(response)) => response,
        (Some(fault), _) => fault_response(fault),
        (None, None) => unreachable!(),
    };
    let mut mock = state.lock().unwrap();
    if let Some((remaining, _)) = &mut mock.quota {
        *remaining = remaining.saturating_sub(1);
    }
    mock.seen.push(SeenRequest {
        at: Instant::now(),
        path: "/events".to_owned(),
        page,
        headers,
        status: response.status().as_u16(),
    });
    response
}

fn page_response(
    mock: &MockState,
    feed: &[Value],
    path: &str,
    page: usize,
    headers: &HeaderMap,
) -> Response {
    let etag = etag_of(feed);
    let interval = mock.poll_interval_secs.to_string();
    if page == 1
        && headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str())
    {
        return (StatusCode::NOT_MODIFIED, [("x-poll-interval", interval)]).into_response();
    }
    let start = (page - 1) * mock.page_size;
    let items: Vec<&Value> = feed.iter().skip(start).take(mock.page_size).collect();
    let mut response = (
        StatusCode::OK,
        [
            ("x-poll-interval", interval),
            ("content-type", "application/json".to_owned()),
        ],
        serde_json::to_string(&items).unwrap(),
    )
        .into_response();
    if let Some((remaining, reset)) = mock.quota {
        let response_headers = response.headers_mut();
        response_headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
        response_headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
    }
    let pages = feed.len().div_ceil(mock.page_size).max(1);
    let response_headers = response.headers_mut();
    if page == 1 {
        response_headers.insert("etag", HeaderValue::from_str(&etag).unwrap());
    }
    if page < pages {
        let link = format!(
            "<{base}{path}?per_page=100&page={next}>; rel=\"next\", <{base}{path}?per_page=100&page={pages}>; rel=\"last\"",
            base = mock.base_url,
            next = page + 1
        );
        response_headers.insert("link", HeaderValue::from_str(&link).unwrap());
    }
    response
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::Status(status) => StatusCode::from_u16(status).unwrap().into_response(),
        Fault::RateLimitReset { reset_in_secs } => {
            let reset = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + reset_in_secs;
            (
                StatusCode::FORBIDDEN,
                [
                    ("x-ratelimit-remaining", "0".to_owned()),
                    ("x-ratelimit-reset", reset.to_string()),
                ],
                r#"{"message":"API rate limit exceeded"}"#,
            )
                .into_response()
        }
        Fault::RetryAfter { status, secs } => (
            StatusCode::from_u16(status).unwrap(),
            [("retry-after", secs.to_string())],
            r#"{"message":"You have exceeded a secondary rate limit"}"#,
        )
            .into_response(),
        Fault::Body(body) => (StatusCode::OK, [("x-poll-interval", "1")], body).into_response(),
        Fault::LargeBody(bytes) => {
            let chunk = bytes::Bytes::from(vec![b' '; 1 << 20]);
            let chunks = bytes / chunk.len() + 1;
            let stream = futures_util::stream::iter(
                std::iter::once(bytes::Bytes::from_static(b"["))
                    .chain(std::iter::repeat_n(chunk, chunks))
                    .chain(std::iter::once(bytes::Bytes::from_static(b"]")))
                    .map(Ok::<_, std::io::Error>),
            );
            (
                StatusCode::OK,
                [("x-poll-interval", "1")],
                axum::body::Body::from_stream(stream),
            )
                .into_response()
        }
        Fault::Delay(_) | Fault::Pass => unreachable!("handled by the caller"),
    }
}

/// Poller settings for tests: the mock's URL and short backoffs.
pub fn test_poller_config(api_url: &str) -> PollerConfig {
    let mut config = PollerConfig::new(api_url.parse().unwrap(), None);
    config.backoff_base = Duration::from_millis(20);
    config.backoff_max = Duration::from_millis(100);
    config.request_timeout = Duration::from_secs(2);
    config.watch_spread = Duration::ZERO;
    config
}

/// The service, running on 127.0.0.1:0.
pub struct TestApp {
    pub address: SocketAddr,
    pub http: reqwest::Client,
    pub status: watch::Receiver<PollReport>,
    /// The service's own store handle.
    pub store: Store,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    pub async fn spawn(db: impl Into<StoreLocation>, poller: Option<PollerConfig>) -> TestApp {
        Self::spawn_with(db, poller, |_| {}).await
    }

    /// [`TestApp::spawn`] with the default configuration changed by `adjust`.
    pub async fn spawn_with(
        db: impl Into<StoreLocation>,
        poller: Option<PollerConfig>,
        adjust: impl FnOnce(&mut Config),
    ) -> TestApp {
        ghmetrics::ingest::github::client::install_crypto_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut config = Config {
            listen: listener.local_addr().unwrap(),
            store: db.into(),
            poller,
            http: HttpConfig::default(),
            retention: None,
            follow: None,
            archive_lag_hours: ghmetrics::config::DEFAULT_ARCHIVE_LAG_HOURS,
            bot_logins: Default::default(),
        };
        adjust(&mut config);
        let app = App::build(&config, listener).await.unwrap();
        let address = app.local_addr().unwrap();
        let status = app.state().poll_status.subscribe();
        let store = app.state().store.clone();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run_until(shutdown.clone()));
        TestApp {
            address,
            http: reqwest::Client::new(),
            status,
            store,
            shutdown,
            task,
        }
    }

    /// The service's SQLite handle (e.g. to hold its connections); panics
    /// for another store, so only SQLite-specific tests call it.
    pub fn db(&self) -> &Sqlite {
        match &self.store {
            Store::Sqlite(db) => db,
            Store::ClickHouse(_) => panic!("a SQLite store"),
        }
    }

    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.http
            .get(format!("http://{}{path_and_query}", self.address))
            .send()
            .await
            .unwrap()
    }

    pub async fn get_json(&self, path_and_query: &str) -> (u16, Value) {
        let response = self.get(path_and_query).await;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        let json =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path_and_query}: {e}: {body}"));
        (status, json)
    }

    /// Polls `/health` until `done` holds (bounded by [`PATIENCE`]).
    pub async fn health_until(&self, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let (_, health) = self.get_json("/health").await;
            if done(&health) {
                return health;
            }
            assert!(started.elapsed() < PATIENCE, "{health}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (bounded by [`PATIENCE`]) until the poll report satisfies `done`.
    pub async fn wait_for_report(&mut self, done: impl FnMut(&PollReport) -> bool) -> PollReport {
        tokio::time::timeout(PATIENCE, self.status.wait_for(done))
            .await
            .expect("the poller did not get there in time")
            .unwrap()
            .clone()
    }

    /// Stops the service as SIGTERM would, and checks it stopped cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("shutdown took over 5 s")
            .unwrap()
            .unwrap();
    }
}
