//! Query parameters: each is defined once here, with its bounds, and that one
//! definition both checks requests (any problem is a 422 whose `detail` names
//! the parameter, never axum's plain 400) and writes the bounds into the
//! OpenAPI document ([`document`]), so the two cannot disagree.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{OpenApi, RefOr};

use crate::core::event::{EventType, MAX_OWNER_LEN, MAX_REPOSITORY_LEN, is_repo_name, shorten};
use crate::core::time::Window;
use crate::http::chart::ImageFormat;
use crate::http::error::AppError;
use crate::store::Filter;

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

/// `limit` of top: how many repositories it ranks.
pub const TOP_LIMIT: IntParam = IntParam {
    name: "limit",
    min: 1,
    max: 10_000,
};

/// `cumulative`: the timeline's running totals.
pub const CUMULATIVE: &str = "cumulative";
/// `exclude_bots`: leave the bots' events out (see [`crate::store::Filter`]).
pub const EXCLUDE_BOTS: &str = "exclude_bots";

/// `type`: the event type a ranking counts, by GitHub's name.
pub const EVENT_TYPE: &str = "type";

/// `repo_name`: `owner/name` as GitHub allows it ([`is_repo_name`]).
pub const REPO_NAME: &str = "repo_name";

/// The OpenAPI pattern equal to [`is_repo_name`].
fn repo_name_pattern() -> String {
    format!("^[A-Za-z0-9_.-]{{1,{MAX_OWNER_LEN}}}/[A-Za-z0-9_.-]{{1,{MAX_REPOSITORY_LEN}}}$")
}

/// `format`: a chart's image format (or the timeline's points as JSON).
pub const FORMAT: &str = "format";
/// The timeline's `format` for its points as data.
pub const TIMELINE_JSON: &str = "json";

/// `from` and `to`: an absolute window `[from, to)`, RFC 3339 timestamps.
pub const FROM: &str = "from";
pub const TO: &str = "to";

/// The earliest time a window may name: 2008-01-01T00:00:00Z, before GitHub's
/// first public event.
pub const EARLIEST_TIME: i64 = 1_199_145_600;
/// How far ahead of the clock a window may reach: a day.
pub const LATEST_AHEAD_SECONDS: i64 = 86_400;

/// The time a metric is asked about, as the query names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowParam {
    /// `offset_minutes`: from that many minutes before now, with no end (an
    /// event stamped a little ahead of the clock counts as now).
    Last { minutes: i64 },
    /// `from` (and `to`): `[from, to)` in epoch seconds; `to: None` is now.
    Between { from: i64, to: Option<i64> },
}

impl WindowParam {
    /// The window of time it names as of `now`.
    pub fn at(self, now: i64) -> Window {
        match self {
            WindowParam::Last { minutes } => {
                Window::since(now - minutes.min(MAX_OFFSET_MINUTES) * 60)
            }
            WindowParam::Between { from, to } => Window {
                from,
                to: to.unwrap_or(now),
            },
        }
    }

    /// Whether the window moves with the clock (its answer is stamped with it).
    pub fn moves(self) -> bool {
        !matches!(self, WindowParam::Between { to: Some(_), .. })
    }

    /// The window as part of a cache key (stable across seconds when it moves).
    pub fn key(self) -> String {
        match self {
            WindowParam::Last { minutes } => minutes.to_string(),
            WindowParam::Between { from, to } => format!("{from}..{}", to.map_or(-1, |to| to)),
        }
    }
}

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

    /// `exclude_bots`.
    pub fn exclude_bots(&self) -> Result<bool, AppError> {
        self.flag(EXCLUDE_BOTS)
    }

    /// The events asked about: one repository's when `repo_name` is given,
    /// without the bots' with `exclude_bots=true`.
    pub fn filter(&self) -> Result<Filter, AppError> {
        let repo_name = match self.0.contains_key(REPO_NAME) {
            true => Some(self.repo_name()?.to_owned()),
            false => None,
        };
        Ok(Filter {
            repo_name,
            exclude_bots: self.exclude_bots()?,
        })
    }

    /// The window asked for: `from`/`to` (as of epoch second `now`),
    /// `offset_minutes`, or neither (`None`). Every rule that joins the
    /// parameters or the clock is checked here, each with its own 422.
    pub fn window(&self, now: i64) -> Result<Option<WindowParam>, AppError> {
        let offset = self.int(&OFFSET_MINUTES)?;
        let from = self.timestamp(FROM, now)?;
        let to = self.timestamp(TO, now)?;
        match (from, to, offset) {
            (None, None, None) => Ok(None),
            (None, None, Some(minutes)) => Ok(Some(WindowParam::Last { minutes })),
            (None, Some(_), _) => Err(AppError::InvalidParameter(format!(
                "{TO} needs {FROM}: the window is [{FROM}, {TO})"
            ))),
            (Some(_), _, Some(_)) => Err(AppError::InvalidParameter(format!(
                "offset_minutes and {FROM}/{TO} cannot be given together: \
                 offset_minutes asks for the last N minutes, {FROM} and {TO} for a window of your own"
            ))),
            (Some(from), to, None) => {
                let end = to.unwrap_or(Precise::second(now));
                if from.nanos >= end.nanos {
                    let end_name = if to.is_some() { TO } else { "now (no to)" };
                    return Err(AppError::InvalidParameter(format!(
                        "{FROM} must be before {end_name}, got {FROM} {} and {end_name} {}",
                        from.text(),
                        end.text()
                    )));
                }
                Ok(Some(WindowParam::Between {
                    from: from.ceil_second(),
                    to: to.map(Precise::ceil_second),
                }))
            }
        }
    }

    /// An optional RFC 3339 timestamp (or a date, that day's 00:00 UTC)
    /// from 2008 to a day ahead of `now`.
    fn timestamp(&self, name: &str, now: i64) -> Result<Option<Precise>, AppError> {
        let Some(raw) = self.0.get(name) else {
            return Ok(None);
        };
        let at = if raw.len() == 10
            && let Ok(day) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        {
            Ok(day
                .and_time(chrono::NaiveTime::MIN)
                .and_utc()
                .fixed_offset())
        } else {
            DateTime::parse_from_rfc3339(&to_nanoseconds(raw))
        };
        let at = at.map_err(|_| {
            // In a query string `+` means a space, so `+02:00` arrives as ` 02:00`.
            let hint = if raw.len() > 6 && raw.as_bytes()[raw.len() - 6] == b' ' {
                " (a '+' in a URL is a space: write the offset's '+' as %2B)"
            } else {
                ""
            };
            AppError::InvalidParameter(format!(
                "{name} must be an RFC 3339 timestamp such as 2015-01-01T03:00:00Z (or a date, 2015-01-01, for its 00:00 UTC), got {:?}{hint}",
                shorten(raw)
            ))
        })?;
        let at = Precise::of(at.with_timezone(&Utc));
        let latest = now + LATEST_AHEAD_SECONDS;
        if at.nanos < i128::from(EARLIEST_TIME) * NANOS || at.nanos > i128::from(latest) * NANOS {
            return Err(AppError::InvalidParameter(format!(
                "{name} must be from 2008-01-01T00:00:00Z to a day ahead of now ({}), got {}",
                Precise::second(latest).text(),
                at.text()
            )));
        }
        Ok(Some(at))
    }

    /// The optional `format` of a chart: `png` (the default) or `svg`.
    /// `type`, a tracked event type by GitHub's name; `default` without one.
    pub fn event_type(&self, default: EventType) -> Result<EventType, AppError> {
        match self.0.get(EVENT_TYPE) {
            None => Ok(default),
            Some(name) => EventType::from_name(name).ok_or_else(|| {
                let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                AppError::InvalidParameter(format!(
                    "{EVENT_TYPE} must be one of {}, got {:?}",
                    names.join(", "),
                    shorten(name)
                ))
            }),
        }
    }

    /// A `true`/`false` parameter; false without it.
    pub fn flag(&self, name: &str) -> Result<bool, AppError> {
        match self.0.get(name).map(String::as_str) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(AppError::InvalidParameter(format!(
                "{name} must be true or false, got {:?}",
                shorten(other)
            ))),
        }
    }

    /// The timeline's `format`: an image format, or `None` for `json`.
    pub fn timeline_format(&self) -> Result<Option<ImageFormat>, AppError> {
        if self.0.get(FORMAT).is_some_and(|f| f == TIMELINE_JSON) {
            return Ok(None);
        }
        self.image_format().map(Some).map_err(|_| {
            AppError::InvalidParameter(format!(
                "{FORMAT} must be one of {}, {TIMELINE_JSON}, got {:?}",
                ImageFormat::NAMES.join(", "),
                shorten(self.0.get(FORMAT).map_or("", String::as_str))
            ))
        })
    }

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

const NANOS: i128 = 1_000_000_000;

/// `raw` with a fraction of more than nine digits (RFC 3339 allows any
/// number) rounded up to the nanosecond: a window holds whole seconds, the
/// same for a time and its next nanosecond unless the time is a whole
/// second, which rounding up keeps. Anything else is returned as it is.
fn to_nanoseconds(raw: &str) -> std::borrow::Cow<'_, str> {
    let Some(dot) = raw.find('.') else {
        return raw.into();
    };
    let digits = raw[dot + 1..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    if digits <= 9 {
        return raw.into();
    }
    let (fraction, rest) = raw[dot + 1..].split_at(digits);
    let (nanos, beyond) = fraction.split_at(9);
    let mut nanos: u64 = nanos.parse().unwrap_or(0);
    if beyond.bytes().any(|b| b != b'0') {
        nanos += 1;
    }
    // A fraction that rounds up to a whole second: the next second, exactly.
    let (whole, nanos) = if nanos == 1_000_000_000 {
        let Ok(at) = DateTime::parse_from_rfc3339(&format!("{}{rest}", &raw[..dot])) else {
            return raw.into();
        };
        let next = at + chrono::TimeDelta::seconds(1);
        return next
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            .into();
    } else {
        (&raw[..dot], nanos)
    };
    format!("{whole}.{nanos:09}{rest}").into()
}

/// A timestamp to the nanosecond, compared exactly; stored events are whole
/// seconds, so `[from, to)` holds the same events as `[ceil(from), ceil(to))`.
#[derive(Clone, Copy)]
struct Precise {
    nanos: i128,
}

impl Precise {
    fn of(at: DateTime<Utc>) -> Precise {
        Precise {
            nanos: i128::from(at.timestamp()) * NANOS + i128::from(at.timestamp_subsec_nanos()),
        }
    }

    fn second(second: i64) -> Precise {
        Precise {
            nanos: i128::from(second) * NANOS,
        }
    }

    /// The first whole second at or after this time (in range: 2008 to 2100).
    fn ceil_second(self) -> i64 {
        (self.nanos.div_euclid(NANOS) + i128::from(self.nanos.rem_euclid(NANOS) != 0)) as i64
    }

    fn text(self) -> String {
        let second = self.nanos.div_euclid(NANOS) as i64;
        let nanos = self.nanos.rem_euclid(NANOS) as u32;
        DateTime::from_timestamp(second, nanos).map_or_else(
            || second.to_string(),
            |at| at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        )
    }
}

/// Writes every parameter's bounds into the OpenAPI document, wherever the
/// parameter appears. Returns the names of query parameters it has no
/// definition for (a test keeps that empty).
pub fn document(spec: &mut OpenApi) -> Vec<String> {
    let mut unknown = Vec::new();
    for (path, item) in spec.paths.paths.iter_mut() {
        // `limit` is bounded differently on top (a ranking in one answer).
        let limit = if path.ends_with("/top") {
            &TOP_LIMIT
        } else {
            &LIMIT
        };
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
                let int = [&OFFSET_MINUTES, &BUCKET_MINUTES, limit]
                    .into_iter()
                    .find(|param| param.name == parameter.name);
                if let Some(param) = int {
                    schema.minimum = Some(utoipa::Number::Int(param.min as isize));
                    schema.maximum = Some(utoipa::Number::Int(param.max as isize));
                } else if parameter.name == REPO_NAME {
                    schema.min_length = Some(3);
                    schema.max_length = Some(MAX_OWNER_LEN + 1 + MAX_REPOSITORY_LEN);
                    schema.pattern = Some(repo_name_pattern());
                } else if parameter.name == FROM || parameter.name == TO {
                    schema.format = Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::DateTime,
                    ));
                } else if parameter.name == EVENT_TYPE {
                    schema.enum_values = Some(
                        EventType::ALL
                            .iter()
                            .map(|t| serde_json::Value::from(t.as_str()))
                            .collect(),
                    );
                } else if parameter.name == FORMAT {
                    let mut names = ImageFormat::NAMES.to_vec();
                    if path.ends_with("/timeline") {
                        names.push(TIMELINE_JSON);
                    }
                    schema.enum_values =
                        Some(names.into_iter().map(serde_json::Value::from).collect());
                } else if parameter.name == CUMULATIVE || parameter.name == EXCLUDE_BOTS {
                    // A boolean: its schema says so already.
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

    /// 2015-01-01T03:00:00Z, and a `now` long after it.
    const T: i64 = 1_420_081_200;
    const NOW: i64 = 1_700_000_000;

    fn window(pairs: &[(&str, &str)]) -> Result<Option<WindowParam>, String> {
        params(pairs).window(NOW).map_err(|e| e.to_string())
    }

    #[test]
    fn windows_follow_every_rule() {
        assert_eq!(window(&[]), Ok(None));
        assert_eq!(
            window(&[("offset_minutes", "5")]),
            Ok(Some(WindowParam::Last { minutes: 5 }))
        );
        let between = |from, to| Ok(Some(WindowParam::Between { from, to }));
        assert_eq!(
            window(&[("from", "2015-01-01T03:00:00Z")]),
            between(T, None)
        );
        assert_eq!(
            window(&[
                ("from", "2015-01-01T03:00:00Z"),
                ("to", "2015-01-01T04:00:00Z")
            ]),
            between(T, Some(T + 3600))
        );
        // An offset is converted to UTC; a `+` decoded as a space gets a hint.
        assert_eq!(
            window(&[("from", "2015-01-01T05:00:00+02:00")]),
            between(T, None)
        );
        // Past nanoseconds: exact (a whole second stays one; anything after
        // it is the next second's), and a date is its day's start.
        assert_eq!(
            window(&[("from", "2015-01-01T03:00:00.0000000001Z")]),
            between(T + 1, None)
        );
        assert_eq!(
            window(&[("from", "2015-01-01T03:00:00.0000000000000Z")]),
            between(T, None)
        );
        assert_eq!(
            window(&[("from", "2015-01-01T02:59:59.9999999999999+00:00")]),
            between(T, None)
        );
        assert_eq!(
            window(&[("from", "2015-01-01"), ("to", "2015-01-02")]),
            between(T - 3 * 3600, Some(T + 21 * 3600))
        );
        let spaced = window(&[("from", "2015-01-01T05:00:00 02:00")]).unwrap_err();
        assert!(spaced.contains("%2B"), "{spaced}");
        // Fractions: [from, to) holds the whole seconds from ceil(from) to before ceil(to).
        assert_eq!(
            window(&[
                ("from", "2015-01-01T03:00:00.2Z"),
                ("to", "2015-01-01T03:00:05.5Z")
            ]),
            between(T + 1, Some(T + 6))
        );
        let rejected = |pairs: &[(&str, &str)], says: &[&str]| {
            let error = window(pairs).unwrap_err();
            for word in says {
                assert!(error.contains(word), "{pairs:?}: {error}");
            }
        };
        rejected(&[("to", "2015-01-01T04:00:00Z")], &["to needs from"]);
        rejected(
            &[("to", "2015-01-01T04:00:00Z"), ("offset_minutes", "5")],
            &["to needs from"],
        );
        rejected(
            &[("from", "2015-01-01T03:00:00Z"), ("offset_minutes", "5")],
            &["offset_minutes", "from"],
        );
        rejected(
            &[
                ("from", "2015-01-01T04:00:00Z"),
                ("to", "2015-01-01T04:00:00Z"),
            ],
            &["from must be before to"],
        );
        rejected(
            &[
                ("from", "2015-01-01T04:00:00Z"),
                ("to", "2015-01-01T03:00:00Z"),
            ],
            &["from must be before to"],
        );
        rejected(
            &[("from", "2007-12-31T23:59:59Z")],
            &["from must be from 2008"],
        );
        rejected(
            &[
                ("from", "2015-01-01T03:00:00Z"),
                ("to", "2007-12-31T23:59:59.999Z"),
            ],
            &["to must be from 2008"],
        );
        let ahead = |seconds: i64| {
            DateTime::from_timestamp(NOW + seconds, 0)
                .unwrap()
                .to_rfc3339()
        };
        // A day ahead is the latest allowed, but after now `from` has no `to`.
        assert_eq!(
            window(&[("from", &ahead(-60)), ("to", &ahead(86_400))]),
            between(NOW - 60, Some(NOW + 86_400))
        );
        rejected(&[("from", &ahead(60))], &["from must be before now"]);
        rejected(
            &[("from", &ahead(-60)), ("to", &ahead(86_401))],
            &["to must be from 2008-01-01T00:00:00Z to a day ahead"],
        );
        for bad in [
            "",
            "2015-13-01",
            "2015-01-01T03:00:00",
            "yesterday",
            "2015-13-01T00:00:00Z",
        ] {
            rejected(&[("from", bad)], &["from must be an RFC 3339 timestamp"]);
        }
        rejected(&[("from", &"9".repeat(1 << 16))], &["RFC 3339"]);
        assert!(window(&[("from", &"9".repeat(1 << 16))]).unwrap_err().len() < 300);
    }

    #[test]
    fn windows_have_bounds_and_keys() {
        let last = WindowParam::Last { minutes: 1 };
        assert_eq!(last.at(NOW), Window::since(NOW - 60));
        let longest = WindowParam::Last { minutes: i64::MAX };
        assert_eq!(longest.at(NOW).from, NOW - MAX_OFFSET_MINUTES * 60);
        let open = WindowParam::Between { from: T, to: None };
        assert_eq!(open.at(NOW), Window { from: T, to: NOW });
        assert!(last.moves() && open.moves());
        let closed = WindowParam::Between {
            from: T,
            to: Some(T + 1),
        };
        assert!(!closed.moves());
        assert_ne!(open.key(), closed.key());
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
