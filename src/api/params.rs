//! Query-string parsing with the service's own error contract: any problem with a
//! parameter is a 422 whose `detail` names the parameter, never axum's plain 400.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;

use crate::chart::ImageFormat;
use crate::error::AppError;

/// The request's query parameters (the last value wins for a repeated name).
pub struct QueryParams(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| {
                AppError::InvalidParameter(format!("malformed query string: {}", e.body_text()))
            })?;
        Ok(QueryParams(map))
    }
}

impl QueryParams {
    /// A required, non-blank text parameter.
    pub fn required_text(&self, name: &str) -> Result<&str, AppError> {
        match self.0.get(name).map(|v| v.trim()) {
            Some(value) if !value.is_empty() => Ok(value),
            Some(_) => Err(AppError::InvalidParameter(format!(
                "{name} must not be empty"
            ))),
            None => Err(AppError::InvalidParameter(format!("{name} is required"))),
        }
    }

    /// An optional integer parameter that must be at least 1.
    pub fn positive_integer(&self, name: &str) -> Result<Option<i64>, AppError> {
        let Some(raw) = self.0.get(name) else {
            return Ok(None);
        };
        let value: i64 = raw
            .trim()
            .parse()
            .map_err(|_| AppError::InvalidParameter(format!("{name} must be an integer >= 1")))?;
        if value < 1 {
            return Err(AppError::InvalidParameter(format!(
                "{name} must be an integer >= 1, got {value}"
            )));
        }
        Ok(Some(value))
    }

    /// The optional `format` of a chart: `png` (the default) or `svg`.
    pub fn image_format(&self) -> Result<ImageFormat, AppError> {
        match self.0.get("format").map(|v| v.trim()) {
            None => Ok(ImageFormat::Png),
            Some(name) => ImageFormat::parse(&name.to_ascii_lowercase()).ok_or_else(|| {
                AppError::InvalidParameter(format!("format must be png or svg, got {name:?}"))
            }),
        }
    }

    /// A required integer parameter that must be at least 1.
    pub fn required_positive_integer(&self, name: &str) -> Result<i64, AppError> {
        self.positive_integer(name)?
            .ok_or_else(|| AppError::InvalidParameter(format!("{name} is required")))
    }
}
