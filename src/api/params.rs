//! Query parameters: each is defined once here, with its bounds, and that one
//! definition both checks requests (any problem is a 422 whose `detail` names
//! the parameter, never axum's plain 400) and writes the bounds into the
//! OpenAPI document ([`document`]), so the two cannot disagree.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{OpenApi, RefOr};

use crate::chart::ImageFormat;
use crate::error::AppError;
use crate::event::{MAX_OWNER_LEN, MAX_REPOSITORY_LEN, is_repo_name, shorten};

/// The longest window any endpoint accepts, in minutes: 100 years, reaching
/// back past the first GitHub event, and small enough that the window's
/// start is always a representable time.
pub const MAX_OFFSET_MINUTES: i64 = 100 * 365 * 24 * 60;

/// An integer parameter and its inclusive bounds.
pub struct IntParam {
    pub name: &'static str,
    pub min: i64,
    pub max: i64,
}

/// `offset_minutes`: the window, the same bound on every endpoint.
pub const OFFSET_MINUTES: IntParam = IntParam {
    name: "offset_minutes",
    min: 1,
    max: MAX_OFFSET_MINUTES,
};

/// `bucket_minutes`: a timeline point's width (at most the window).
pub const BUCKET_MINUTES: IntParam = IntParam {
    name: "bucket_minutes",
    min: 1,
    max: MAX_OFFSET_MINUTES,
};

/// `limit`: how many repositories pr-counts lists.
pub const LIMIT: IntParam = IntParam {
    name: "limit",
    min: 1,
    max: i64::MAX,
};

/// `repo_name`: `owner/name` as GitHub allows it ([`is_repo_name`]).
pub const REPO_NAME: &str = "repo_name";

/// The OpenAPI pattern equal to [`is_repo_name`].
fn repo_name_pattern() -> String {
    format!("^[A-Za-z0-9_.-]{{1,{MAX_OWNER_LEN}}}/[A-Za-z0-9_.-]{{1,{MAX_REPOSITORY_LEN}}}$")
}

/// `format`: a chart's image format.
pub const FORMAT: &str = "format";

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
    /// An optional integer within `param`'s bounds.
    pub fn int(&self, param: &IntParam) -> Result<Option<i64>, AppError> {
        let Some(raw) = self.0.get(param.name) else {
            return Ok(None);
        };
        let (name, min, max) = (param.name, param.min, param.max);
        let out_of_range =
            || AppError::InvalidParameter(format!("{name} must be an integer from {min} to {max}"));
        let value: i64 = raw.parse().map_err(|_| {
            // A long run of digits is a number too large, not a typo.
            if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
                out_of_range()
            } else {
                AppError::InvalidParameter(format!(
                    "{name} must be an integer from {min} to {max}, got {:?}",
                    shorten(raw)
                ))
            }
        })?;
        if !(min..=max).contains(&value) {
            return Err(AppError::InvalidParameter(format!(
                "{name} must be an integer from {min} to {max}, got {value}"
            )));
        }
        Ok(Some(value))
    }

    /// A required integer within `param`'s bounds.
    pub fn required_int(&self, param: &IntParam) -> Result<i64, AppError> {
        self.int(param)?
            .ok_or_else(|| AppError::InvalidParameter(format!("{} is required", param.name)))
    }

    /// The required `repo_name`, checked against [`repo_name_pattern`].
    pub fn repo_name(&self) -> Result<&str, AppError> {
        let value = self
            .0
            .get(REPO_NAME)
            .ok_or_else(|| AppError::InvalidParameter(format!("{REPO_NAME} is required")))?;
        if is_repo_name(value) {
            Ok(value)
        } else {
            Err(AppError::InvalidParameter(format!(
                "{REPO_NAME} must be owner/name (letters, digits, '-', '_', '.'; at most {MAX_OWNER_LEN} and {MAX_REPOSITORY_LEN}), got {:?}",
                shorten(value)
            )))
        }
    }

    /// The optional `format` of a chart: `png` (the default) or `svg`.
    pub fn image_format(&self) -> Result<ImageFormat, AppError> {
        match self.0.get(FORMAT) {
            None => Ok(ImageFormat::Png),
            Some(name) => ImageFormat::parse(name).ok_or_else(|| {
                AppError::InvalidParameter(format!(
                    "{FORMAT} must be one of {}, got {:?}",
                    ImageFormat::NAMES.join(", "),
                    shorten(name)
                ))
            }),
        }
    }
}

/// Writes every parameter's bounds into the OpenAPI document, wherever the
/// parameter appears. Returns the names of query parameters it has no
/// definition for (a test keeps that empty).
pub fn document(spec: &mut OpenApi) -> Vec<String> {
    let mut unknown = Vec::new();
    for item in spec.paths.paths.values_mut() {
        for operation in [&mut item.get, &mut item.head].into_iter().flatten() {
            for parameter in operation.parameters.iter_mut().flatten() {
                let RefOr::T(parameter) = parameter else {
                    unknown.push("(a parameter given by reference)".to_owned());
                    continue;
                };
                let Some(RefOr::T(Schema::Object(schema))) = &mut parameter.schema else {
                    unknown.push(parameter.name.clone());
                    continue;
                };
                let int = [&OFFSET_MINUTES, &BUCKET_MINUTES, &LIMIT]
                    .into_iter()
                    .find(|param| param.name == parameter.name);
                if let Some(param) = int {
                    schema.minimum = Some(utoipa::Number::Int(param.min as isize));
                    schema.maximum = Some(utoipa::Number::Int(param.max as isize));
                } else if parameter.name == REPO_NAME {
                    schema.min_length = Some(3);
                    schema.max_length = Some(MAX_OWNER_LEN + 1 + MAX_REPOSITORY_LEN);
                    schema.pattern = Some(repo_name_pattern());
                } else if parameter.name == FORMAT {
                    schema.enum_values = Some(
                        ImageFormat::NAMES
                            .iter()
                            .map(|name| serde_json::Value::from(*name))
                            .collect(),
                    );
                } else {
                    unknown.push(parameter.name.clone());
                }
            }
        }
    }
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn integers_are_held_to_their_bounds() {
        let get = |value: &str| params(&[("offset_minutes", value)]).int(&OFFSET_MINUTES);
        assert_eq!(get("1").unwrap(), Some(1));
        assert_eq!(
            get(&MAX_OFFSET_MINUTES.to_string()).unwrap(),
            Some(MAX_OFFSET_MINUTES)
        );
        for bad in [
            "0",
            "-1",
            "",
            " 5",
            "1.5",
            "NaN",
            "99999999999999999999999",
            &(MAX_OFFSET_MINUTES + 1).to_string(),
        ] {
            let error = get(bad).unwrap_err().to_string();
            assert!(
                error.starts_with("offset_minutes must be"),
                "{bad:?}: {error}"
            );
        }
        assert_eq!(params(&[]).int(&OFFSET_MINUTES).unwrap(), None);
        assert!(params(&[]).required_int(&OFFSET_MINUTES).is_err());
    }

    #[test]
    fn repo_names_match_the_documented_pattern() {
        for good in ["a/b", "rust-lang/rust", "o_1/x-y.z", "./.."] {
            assert_eq!(params(&[("repo_name", good)]).repo_name().unwrap(), good);
        }
        let long = "a".repeat(40);
        for bad in [
            "",
            "a",
            "a/",
            "/b",
            "a/b/c",
            " a/b",
            "a b/c",
            "a/b\0",
            &format!("{long}/b"),
        ] {
            assert!(
                params(&[("repo_name", bad)]).repo_name().is_err(),
                "{bad:?}"
            );
        }
        // A huge value is not echoed whole.
        let huge = "x".repeat(1 << 20);
        let error = params(&[("repo_name", &huge)]).repo_name().unwrap_err();
        assert!(error.to_string().len() < 300);
    }

    #[test]
    fn formats_are_the_documented_enum() {
        for name in ImageFormat::NAMES {
            assert!(params(&[("format", name)]).image_format().is_ok());
        }
        for bad in ["", "PNG", "jpeg", " png"] {
            assert!(
                params(&[("format", bad)]).image_format().is_err(),
                "{bad:?}"
            );
        }
        assert!(matches!(params(&[]).image_format(), Ok(ImageFormat::Png)));
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Any text: an integer parameter is accepted exactly when it is
            /// a decimal integer within its documented bounds.
            #[test]
            fn integers_are_accepted_exactly_within_bounds(raw in ".{0,24}|-?[0-9]{1,22}") {
                let result = params(&[("offset_minutes", &raw)]).int(&OFFSET_MINUTES);
                let expected = raw
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (OFFSET_MINUTES.min..=OFFSET_MINUTES.max).contains(n));
                match result {
                    Ok(value) => prop_assert_eq!(value, expected),
                    Err(_) => prop_assert_eq!(expected, None),
                }
            }

            /// Every string the documented pattern allows is accepted.
            #[test]
            fn every_documented_repo_name_is_accepted(
                name in proptest::string::string_regex(
                    repo_name_pattern().trim_start_matches('^').trim_end_matches('$')
                ).unwrap()
            ) {
                let query = params(&[("repo_name", &name)]);
                prop_assert_eq!(query.repo_name().unwrap(), name.as_str());
            }

            /// Any text is answered, never a panic, and what is accepted
            /// matches the pattern's shape.
            #[test]
            fn any_repo_name_is_answered(raw in "\\PC{0,40}") {
                if let Ok(name) = params(&[("repo_name", &raw)]).repo_name() {
                    let (owner, repo) = name.split_once('/').unwrap();
                    prop_assert!(!owner.is_empty() && !repo.is_empty() && !repo.contains('/'));
                }
            }
        }
    }
}
