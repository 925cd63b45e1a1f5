//! The HTTP API: one file per group of endpoints, each with its own `router()`.

mod health;
mod metrics;
mod params;

use axum::Router;

use crate::app::AppState;
use crate::error::AppError;

/// Every endpoint, plus a JSON 404 for unknown paths.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(metrics::router())
        .merge(health::router())
        .fallback(|| async { AppError::NotFound })
}
