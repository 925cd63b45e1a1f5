//! ghmetrics streams GitHub's public events into a store (an embedded SQLite
//! file, or ClickHouse) and answers metrics about them over HTTP.
//!
//! - [`github`]: the REST client and the poller that stores new events.
//! - [`event`]: the tracked event types and the tolerant event parser.
//! - [`store`]: the storage interface and its two stores, SQLite and ClickHouse.
//! - [`api`]: the axum handlers; [`error`] maps failures to HTTP responses.
//! - [`chart`]: the bar chart and the timeline, PNG or SVG.
//! - [`import`]: GH Archive files into the same table, streaming.
//! - [`time_buckets`]: minute/hour/day arithmetic shared by rollups, queries and charts.
//! - [`app`]: opens the store, starts the poller and retention, serves the
//!   router; [`server`] is the accept loop with its connection limits;
//!   [`config`] and [`cli`] feed it.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod chart;
pub mod cli;
pub mod config;
pub mod error;
pub mod event;
pub mod follow;
pub mod gharchive;
pub mod github;
pub mod import;
pub mod retention;
pub mod server;
pub mod store;
#[cfg(feature = "synthetic")]
pub mod synthetic;
pub mod telemetry;
pub mod time_buckets;
pub mod tls;

pub use api::{AppState, Shared, router};
pub use app::App;
pub use config::Config;
