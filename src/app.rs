//! Wiring: [`App`] opens the database, starts the poller and retention, and
//! serves [`api::router`] until told to stop. Tests build an [`App`] on a
//! listener bound to port 0 and stop it with a [`CancellationToken`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, HttpConfig};
use crate::http::api::{self, AnswerCache, AppState, Shared};
use crate::http::chart::ChartCache;
use crate::http::server;
use crate::ingest::github::{PollStatus, Poller};
use crate::ingest::retention;
use crate::store::Store;
use crate::telemetry::Telemetry;

/// A ready-to-run service: database open and migrated, listener bound.
pub struct App {
    listener: TcpListener,
    state: AppState,
    http: HttpConfig,
    poller: Option<Poller>,
    retention: Option<Duration>,
    follow: Option<crate::config::FollowConfig>,
}

impl App {
    /// Opens the database (running migrations) and prepares the poller.
    pub async fn build(config: &Config, listener: TcpListener) -> anyhow::Result<App> {
        let store = Store::open(&config.store)
            .await
            .with_context(|| format!("opening the store {}", config.store))?;
        let remarked = store
            .use_bot_logins(config.bot_logins.clone())
            .await
            .context("applying the bot logins")?;
        if remarked > 0 {
            tracing::info!(remarked, "bot marks brought up to date");
        }
        let telemetry = Arc::new(Telemetry::new());
        let poll_status = Arc::new(PollStatus::new(telemetry.clone()));
        let watched_names: Vec<String> = config
            .poller
            .iter()
            .flat_map(|poller| poller.watched.iter().map(ToString::to_string))
            .collect();
        let watched = store
            .start_watching(watched_names, chrono::Utc::now().timestamp())
            .await
            .context("recording watched repositories")?;
        let poller = match &config.poller {
            Some(poller_config) => Some(
                Poller::new(poller_config, store.clone(), poll_status.clone())
                    .context("building the GitHub client")?,
            ),
            None => None,
        };
        let state = AppState::new(Shared {
            store,
            poll_status,
            polling: poller.is_some(),
            charts: ChartCache::default(),
            watched,
            telemetry,
            answers: AnswerCache::default(),
            store_timeout: config.http.store_timeout,
            archive_lag_hours: config.archive_lag_hours,
            follow: config.follow.as_ref().map(|_| Arc::default()),
        });
        Ok(App {
            listener,
            state,
            http: config.http.clone(),
            poller,
            retention: config.retention,
            follow: config.follow.clone(),
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
        // The writer keeps the store tidy (replicas only read).
        let upkeep = poller
            .is_some()
            .then(|| tokio::spawn(self.state.store.clone().upkeep(shutdown.child_token())));
        let retention = self.retention.map(|retention| {
            tokio::spawn(retention::run(
                self.state.store.clone(),
                retention,
                retention::CHECK_INTERVAL,
                self.state.telemetry.clone(),
                shutdown.child_token(),
            ))
        });
        let follow = self
            .follow
            .zip(self.state.follow.clone())
            .map(|(config, status)| {
                tokio::spawn(crate::ingest::follow::run(
                    self.state.store.clone(),
                    config,
                    status,
                    shutdown.child_token(),
                ))
            });
        tracing::info!(address = %self.listener.local_addr()?, "serving HTTP");
        let router = api::router(self.state, &self.http);
        let served = server::serve(
            self.listener,
            router,
            self.http.connections,
            shutdown.clone(),
        )
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
        if let Some(follow) = follow {
            follow.await.context("GH Archive follower panicked")?;
        }
        if let Some(upkeep) = upkeep {
            upkeep.await.context("store upkeep task panicked")?;
        }
        served
    }
}
