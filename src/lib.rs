//! ghmetrics streams GitHub's public events into a store (an embedded SQLite
//! file, or ClickHouse) and answers metrics about them over HTTP. Rooms by
//! job, arrows pointing down only:
//!
//! - [`core`]: the tracked event and its parser, who is a bot, time
//!   buckets, TLS: what every room shares; it imports nothing else of the crate.
//! - [`store`]: the storage interface and its two stores, SQLite and
//!   ClickHouse; it imports nothing from [`ingest`] or [`http`].
//! - [`ingest`]: what brings events in (GitHub's feeds, imports, GH Archive
//!   downloads and following) or takes them out (retention).
//! - [`http`]: the axum handlers, the accept loop, errors as answers, charts.
//! - [`app`]: opens the store, starts the poller, the follower and
//!   retention, serves the router; [`config`] and [`cli`] feed it;
//!   [`telemetry`] is the Prometheus registry.
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod config;
pub mod core;
pub mod http;
pub mod ingest;
pub mod store;
pub mod telemetry;

pub use app::App;
pub use config::Config;
pub use http::api::{AppState, Shared, router};
