//! The HTTP contract, driven through the router with `oneshot`: no sockets, no
//! server, so every status and every 422 is checked in microseconds. Sockets,
//! signals, timeouts and shutdown are tested over TCP elsewhere.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use ghmetrics::config::{HttpConfig, SqliteLocation};
use ghmetrics::core::event::parse_event;
use ghmetrics::ingest::github::PollStatus;
use ghmetrics::store::sqlite::{Sqlite, insert_events};
use ghmetrics::{AppState, Shared, router};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::helpers::{Expected, fixture_events};

fn state_with(events: &[Value]) -> AppState {
    let db = Sqlite::open(&SqliteLocation::Memory).unwrap();
    let parsed: Vec<_> = events
        .iter()
        .filter_map(|e| parse_event(&serde_json::to_vec(e).unwrap()).unwrap())
        .collect();
    insert_events(
        &mut db.get().unwrap(),
        &parsed,
        ghmetrics::store::Origin::GlobalFeed,
        None,
    )
    .unwrap();
    AppState::new(Shared {
        archive_lag_hours: ghmetrics::config::DEFAULT_ARCHIVE_LAG_HOURS,
        store: ghmetrics::store::Store::Sqlite(db),
        poll_status: Arc::new(PollStatus::default()),
        polling: false,
        charts: Default::default(),
        watched: HashMap::new(),
        telemetry: Arc::default(),
        answers: Default::default(),
        store_timeout: ghmetrics::config::HttpConfig::default().store_timeout,
        follow: None,
    })
}

/// One request through a fresh router; the status, headers and body.
async fn call(
    app: &axum::Router,
    method: Method,
    uri: &str,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    // What the server records for every connection (the rate limit keys on it).
    let peer: SocketAddr = "192.0.2.7:4000".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

async fn json_of(app: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let (status, _, body) = call(app, Method::GET, uri).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn bad_parameters_get_422_with_a_detail_naming_them() {
    let app = router(state_with(&[]), &HttpConfig::default());
    let cases = [
        ("/metrics/event-counts", "offset_minutes"),
        ("/metrics/event-counts?offset_minutes=", "offset_minutes"),
        ("/metrics/event-counts?offset_minutes=0", "offset_minutes"),
        ("/metrics/event-counts?offset_minutes=-5", "offset_minutes"),
        ("/metrics/event-counts?offset_minutes=1.5", "offset_minutes"),
        ("/metrics/event-counts?offset_minutes=ten", "offset_minutes"),
        (
            "/metrics/event-counts?offset_minutes=99999999999999999999",
            "offset_minutes",
        ),
        (
            "/metrics/event-counts?offset_minutes=9223372036854775807",
            "offset_minutes",
        ),
        (
            "/metrics/event-counts?offset_minutes=153722867280912930",
            "offset_minutes",
        ),
        ("/metrics/visualization?offset_minutes=0", "offset_minutes"),
        (
            "/metrics/visualization?offset_minutes=abc",
            "offset_minutes",
        ),
        (
            "/metrics/visualization?offset_minutes=9223372036854775807",
            "offset_minutes",
        ),
        (
            "/metrics/visualization?format=gif",
            "format must be one of png, svg",
        ),
        (
            "/metrics/visualization/timeline?bucket_minutes=0",
            "bucket_minutes",
        ),
        (
            "/metrics/visualization/timeline?offset_minutes=-1",
            "offset_minutes",
        ),
        ("/metrics/visualization/timeline?format=jpeg", "format"),
        ("/metrics/average-pr-time", "repo_name"),
        ("/metrics/average-pr-time?repo_name=", "repo_name"),
        ("/metrics/average-pr-time?repo_name=%20%20", "repo_name"),
        ("/metrics/average-pr-time?repo_name=a%2Fb%00", "repo_name"),
        ("/metrics/average-pr-time?repo_name=no-slash", "repo_name"),
        (
            "/metrics/event-counts?offset_minutes=52560001",
            "offset_minutes",
        ),
        (
            "/metrics/visualization/timeline?bucket_minutes=52560001",
            "bucket_minutes",
        ),
        ("/metrics/visualization?format=", "format"),
        ("/metrics/visualization?format=PNG", "format"),
        ("/metrics/event-counts?offset_minutes=%FF", "offset_minutes"),
        ("/metrics/pr-counts?limit=0", "limit"),
        ("/metrics/pr-counts?limit=x", "limit"),
        ("/metrics/pr-counts?limit=-1", "limit"),
    ];
    for (path, parameter) in cases {
        for prefix in ["", "/v1"] {
            let uri = format!("{prefix}{path}");
            let (status, body) = json_of(&app, &uri).await;
            assert_eq!(status, 422, "{uri}: {body}");
            let detail = body["detail"]
                .as_str()
                .unwrap_or_else(|| panic!("{uri}: {body}"));
            assert!(detail.contains(parameter), "{uri}: {detail}");
            assert!(detail.len() < 300, "{uri}: a short detail");
        }
    }
}

#[tokio::test]
async fn every_endpoint_answers_its_documented_statuses() {
    let events = fixture_events();
    let app = router(state_with(&events[..300]), &HttpConfig::default());
    let expected = Expected::of(&events[..300]);
    let (status, counts) = json_of(&app, "/metrics/event-counts?offset_minutes=52560000").await;
    assert_eq!(status, 200);
    for (kind, n) in &expected.by_type {
        assert_eq!(counts[kind], *n, "{kind}");
    }
    for uri in [
        "/",
        "/health",
        "/metrics",
        "/openapi.json",
        "/metrics/pr-counts",
        "/metrics/pr-counts?limit=3",
        "/metrics/average-pr-time?repo_name=rust-lang/rust",
        "/metrics/visualization",
        "/metrics/visualization?format=svg",
        "/metrics/visualization/timeline",
        "/v1/health",
    ] {
        let (status, _, _) = call(&app, Method::GET, uri).await;
        assert_eq!(status, 200, "{uri}");
        let (status, _, body) = call(&app, Method::HEAD, uri).await;
        assert_eq!(status, 200, "HEAD {uri}");
        assert!(body.is_empty(), "HEAD {uri} has no body");
    }
    let (status, body) = json_of(&app, "/no/such/path").await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({"detail": "not found"}))
    );
    let (status, _, _) = call(&app, Method::POST, "/health").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _, _) = call(&app, Method::DELETE, "/metrics/pr-counts").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_agreeing_headers() {
    let http = HttpConfig {
        rate_limit: NonZeroU32::new(2),
        ..HttpConfig::default()
    };
    let app = router(state_with(&[]), &http);
    for _ in 0..2 {
        assert_eq!(call(&app, Method::GET, "/health").await.0, 200);
    }
    let (status, headers, body) = call(&app, Method::GET, "/health").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after = headers["retry-after"].to_str().unwrap();
    assert_eq!(headers["x-ratelimit-after"].to_str().unwrap(), retry_after);
    assert!(retry_after.parse::<u64>().unwrap() >= 1);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("too many requests")
    );
}
