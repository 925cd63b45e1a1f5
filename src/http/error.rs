//! [`AppError`]: every way an HTTP request can fail, mapped to a status and a
//! JSON body `{"detail": "..."}`. Internal causes are logged, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::http::chart::ChartError;
use crate::store::StoreError;

/// The body of every error answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong; for a 422, which parameter and why.
    #[schema(example = "offset_minutes must be an integer >= 1, got 0")]
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A query parameter is missing or invalid: the message names it and says why.
    #[error("{0}")]
    InvalidParameter(String),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store did not answer within `--store-timeout`.
    #[error("the store did not answer within {} s; retry shortly", .0.as_secs_f64())]
    StoreNotAnswering(std::time::Duration),
    #[error(transparent)]
    Chart(#[from] ChartError),
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Internal(&'static str),
    #[error("too many requests from this client; retry in {retry_after_seconds} s")]
    TooManyRequests { retry_after_seconds: u64 },
    /// An error answered by a layer rather than a handler (e.g. the timeout).
    #[error("{detail}")]
    Layer { status: StatusCode, detail: String },
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            AppError::InvalidParameter(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Layer { status, .. } => *status,
            // The store is down or too busy (ClickHouse unreachable): a
            // condition to retry, not a fault of this request or this service.
            AppError::Store(error) if error.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            AppError::StoreNotAnswering(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Store(_) | AppError::Chart(_) | AppError::Task(_) | AppError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail =
            if status == StatusCode::SERVICE_UNAVAILABLE && matches!(self, AppError::Store(_)) {
                tracing::warn!(error = %self, "the store is unavailable");
                "the store is unavailable; retry shortly".to_owned()
            } else if let AppError::StoreNotAnswering(_) = self {
                tracing::warn!(error = %self, "the store is not answering");
                self.to_string()
            } else if status.is_server_error() && !matches!(self, AppError::Layer { .. }) {
                tracing::error!(error = %self, "request failed");
                "internal server error; see the service log".to_owned()
            } else {
                self.to_string()
            };
        (status, Json(ErrorBody { detail })).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ClickHouseError;

    /// A store that cannot be reached answers 503 (retry), other store
    /// failures 500, and neither shows its cause to the client.
    #[test]
    fn an_unreachable_store_is_a_503() {
        let down = AppError::Store(StoreError::ClickHouse(ClickHouseError::Unreachable {
            endpoint: "127.0.0.1:8123".to_owned(),
            message: "connection refused".to_owned(),
        }));
        let broken = AppError::Store(StoreError::ClickHouse(ClickHouseError::Answer(
            "garbage".to_owned(),
        )));
        assert_eq!(
            down.into_response().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            broken.into_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
