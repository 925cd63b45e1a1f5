//! Wiring: [`AppState`], the [`router`], and [`App`], which opens the database,
//! starts the poller and serves until told to stop. Tests build an [`App`] on a
//! listener bound to port 0 and stop it with a [`CancellationToken`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::api;
use crate::api::layers::ClientLimiter;
use crate::chart::ChartCache;
use crate::config::{Config, HttpConfig};
use crate::db::{Db, start_watching};
use crate::github::{PollStatus, Poller};
use crate::retention;
use crate::server;
use crate::telemetry::Telemetry;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// The poller's latest report, for `/health`.
    pub poll_status: Arc<PollStatus>,
    /// Whether this process polls GitHub at all.
    pub polling: bool,
    /// Rendered charts, reused while the counts stay the same.
    pub charts: Arc<ChartCache>,
    /// Watched repositories (polled through their own feed) and since when
    /// (epoch seconds); empty without polling.
    pub watched: Arc<HashMap<String, i64>>,
    /// Prometheus metrics, fed by the poller, retention and every request.
    pub telemetry: Arc<Telemetry>,
    /// Limits and CORS rules of the HTTP API.
    pub http: Arc<HttpConfig>,
    /// The per-client rate limiter, when `--rate-limit` is set.
    pub client_limiter: Option<ClientLimiter>,
}

/// The HTTP application: every endpoint inside the service's layers (see
/// [`api::layers`]), with a request span naming the matched route.
pub fn router(state: AppState) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or("(unmatched)", MatchedPath::as_str);
            tracing::info_span!("request", method = %request.method(), route)
        })
        .on_response(DefaultOnResponse::new().level(Level::INFO));
    let routes = api::layers::apply(
        api::router(),
        &state.http,
        state.client_limiter.clone(),
        state.telemetry.clone(),
    );
    routes.layer(trace).with_state(state)
}

/// A ready-to-run service: database open and migrated, listener bound.
pub struct App {
    listener: TcpListener,
    state: AppState,
    poller: Option<Poller>,
    retention: Option<Duration>,
}

impl App {
    /// Opens the database (running migrations) and prepares the poller.
    pub async fn build(config: &Config, listener: TcpListener) -> anyhow::Result<App> {
        let location = config.db.clone();
        let db = tokio::task::spawn_blocking(move || Db::open(&location))
            .await?
            .with_context(|| format!("opening database {}", config.db))?;
        let telemetry = Arc::new(Telemetry::new());
        let poll_status = Arc::new(PollStatus::new(telemetry.clone()));
        let watched_names: Vec<String> = config
            .poller
            .iter()
            .flat_map(|poller| poller.watched.iter().map(ToString::to_string))
            .collect();
        let watched = db
            .write(move |conn| start_watching(conn, &watched_names, chrono::Utc::now().timestamp()))
            .await
            .context("recording watched repositories")?;
        let poller = match &config.poller {
            Some(poller_config) => Some(
                Poller::new(poller_config, db.clone(), poll_status.clone())
                    .context("building the GitHub client")?,
            ),
            None => None,
        };
        let state = AppState {
            db,
            poll_status,
            polling: poller.is_some(),
            charts: Arc::default(),
            watched: Arc::new(watched),
            telemetry,
            http: Arc::new(config.http.clone()),
            client_limiter: config.http.rate_limit.map(api::layers::client_limiter),
        };
        Ok(App {
            listener,
            state,
            poller,
            retention: config.retention,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves and polls until `shutdown` is cancelled; then stops accepting
    /// requests, lets in-flight ones finish, and waits for the poller to stop.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let poller = self
            .poller
            .map(|poller| tokio::spawn(poller.run(shutdown.child_token())));
        let retention = self.retention.map(|retention| {
            tokio::spawn(retention::run(
                self.state.db.clone(),
                retention,
                retention::CHECK_INTERVAL,
                self.state.telemetry.clone(),
                shutdown.child_token(),
            ))
        });
        tracing::info!(address = %self.listener.local_addr()?, "serving HTTP");
        let limiter_cleanup = self
            .state
            .client_limiter
            .clone()
            .map(|limiter| tokio::spawn(forget_idle_clients(limiter, shutdown.child_token())));
        let limits = self.state.http.connections;
        let served = server::serve(self.listener, router(self.state), limits, shutdown.clone())
            .await
            .context("HTTP server failed");
        // The server may also end on its own (an accept error): stop the poller too.
        shutdown.cancel();
        if let Some(poller) = poller {
            poller.await.context("poller task panicked")?;
        }
        if let Some(retention) = retention {
            retention.await.context("retention task panicked")?;
        }
        if let Some(cleanup) = limiter_cleanup {
            cleanup
                .await
                .context("rate-limiter cleanup task panicked")?;
        }
        served
    }
}

/// How often the rate limiter forgets clients whose budget has refilled.
const LIMITER_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// Drops rate-limiter entries of clients that have been quiet long enough to
/// be back at a full burst, so that memory does not grow with every IP ever seen.
async fn forget_idle_clients(limiter: ClientLimiter, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(LIMITER_CLEANUP_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {
                limiter.limiter().retain_recent();
                limiter.limiter().shrink_to_fit();
            }
        }
    }
}
