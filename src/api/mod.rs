//! The HTTP API: one file per group of endpoints, each with its own `router()`.

mod health;
pub mod layers;
mod metrics;
mod params;
mod prometheus;

use axum::Router;

use crate::app::AppState;
use crate::error::AppError;

/// The version prefix every endpoint is also served under.
pub const VERSION_PREFIX: &str = "/v1";

/// Every endpoint, at its seed path and under `/v1/`, plus a JSON 404 for
/// unknown paths. Both paths run the same handler, so they cannot drift; a
/// future `/v2` changes what it must and nests the rest.
pub fn router() -> Router<AppState> {
    let endpoints = Router::new()
        .merge(metrics::router())
        .merge(health::router())
        .merge(prometheus::router());
    Router::new()
        .nest(VERSION_PREFIX, endpoints.clone())
        .merge(endpoints)
        .fallback(|| async { AppError::NotFound })
}
