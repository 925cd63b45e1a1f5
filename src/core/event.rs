//! The events ghmetrics keeps, and the tolerant parser that turns one GitHub event
//! (from `/events` or a GH Archive line: the same JSON shape) into a row.
//!
//! Tolerant on purpose: GitHub trims payloads and adds new `action` values
//! over time, so only the fields we store are read, `action` stays a plain
//! string, and a field that is absent becomes `None`.

use std::borrow::Cow;
use std::fmt;

use chrono::DateTime;
use serde::Deserialize;

/// The event types ghmetrics stores; every other type is skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    Watch,
    PullRequest,
    Issues,
}

impl EventType {
    /// Every tracked type, in the order the API and the chart list them.
    pub const ALL: [EventType; 3] = [EventType::Watch, EventType::PullRequest, EventType::Issues];

    /// GitHub's name for the type, as stored in `events.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Watch => "WatchEvent",
            EventType::PullRequest => "PullRequestEvent",
            EventType::Issues => "IssuesEvent",
        }
    }

    /// Position in [`EventType::ALL`], for per-type arrays.
    pub fn index(self) -> usize {
        self.code() as usize - 1
    }

    /// The one-byte code stored in `events.type_code` (see `migrations/sqlite/V4__compact_events.sql`).
    pub fn code(self) -> i64 {
        match self {
            EventType::Watch => 1,
            EventType::PullRequest => 2,
            EventType::Issues => 3,
        }
    }

    /// The tracked type stored as `code`, if it is one.
    pub fn from_code(code: i64) -> Option<Self> {
        EventType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The tracked type with GitHub's name `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// One value per tracked event type, indexed by [`EventType`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PerType<T>(pub [T; 3]);

impl<T: Copy> PerType<T> {
    /// Each type with its value, in [`EventType::ALL`]'s order.
    pub fn iter(&self) -> impl Iterator<Item = (EventType, T)> + '_ {
        EventType::ALL.into_iter().zip(self.0)
    }
}

impl PerType<u64> {
    /// The values of every type together.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl<T> std::ops::Index<EventType> for PerType<T> {
    type Output = T;

    fn index(&self, event_type: EventType) -> &T {
        &self.0[event_type.index()]
    }
}

impl<T> std::ops::IndexMut<EventType> for PerType<T> {
    fn index_mut(&mut self, event_type: EventType) -> &mut T {
        &mut self.0[event_type.index()]
    }
}

impl std::ops::AddAssign for PerType<u64> {
    fn add_assign(&mut self, other: Self) {
        for (total, more) in self.0.iter_mut().zip(other.0) {
            *total += more;
        }
    }
}

impl<T: PartialEq> PartialEq<[T; 3]> for PerType<T> {
    fn eq(&self, other: &[T; 3]) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stored event: a row of the `events` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// GitHub's event id; ids grow over time and identify an event across pages and feeds.
    pub id: i64,
    pub event_type: EventType,
    /// When GitHub says the event happened, Unix epoch seconds (UTC).
    pub created_at: i64,
    /// `owner/name`.
    pub repo_name: String,
    pub actor_login: Option<String>,
    /// `payload.action` (`opened`, `closed`, `started`, ...), kept verbatim.
    pub action: Option<String>,
    /// The pull request or issue number, where the payload has one.
    pub number: Option<i64>,
}

/// Why one event could not be stored; the rest of its page or file is unaffected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MalformedEvent {
    #[error("not a JSON event object: {0}")]
    Json(String),
    #[error("{0}, not one JSON event object (a GH Archive file holds one event per line)")]
    NotAnObject(&'static str),
    #[error("repo.name {0:?} is not a GitHub owner/name")]
    RepoName(String),
    #[error("missing or invalid `{0}`")]
    Field(&'static str),
    #[error("unparseable created_at {0:?}")]
    CreatedAt(String),
    #[error("created_at {0:?} is in the future")]
    FromTheFuture(String),
}

/// How far ahead of this machine's clock an event may be dated and still be
/// kept: clocks disagree by seconds, not by minutes. A later date (year 9999)
/// would count as "recent" for ever.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;

/// Longest GitHub owner (user or organisation) name.
pub const MAX_OWNER_LEN: usize = 39;
/// Longest GitHub repository name.
pub const MAX_REPOSITORY_LEN: usize = 100;

/// Whether `name` is a GitHub `owner/name`: an owner of at most
/// [`MAX_OWNER_LEN`] and a repository of at most [`MAX_REPOSITORY_LEN`]
/// characters, both in GitHub's alphabet (letters, digits, `-`, `_`, `.`).
/// Anything else in an event's `repo.name` is malformed input, so no stored
/// name is longer than GitHub allows.
pub fn is_repo_name(name: &str) -> bool {
    let part = |text: &str, max: usize| {
        (1..=max).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    name.split_once('/')
        .is_some_and(|(owner, repo)| part(owner, MAX_OWNER_LEN) && part(repo, MAX_REPOSITORY_LEN))
}

/// At most 64 characters of `text`, for error messages about hostile input:
/// a 1 MB value must not come back as a 1 MB message.
pub fn shorten(text: &str) -> String {
    const SHOWN: usize = 64;
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(default, deserialize_with = "event_id")]
    id: Option<i64>,
    #[serde(rename = "type", default, borrow)]
    event_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    created_at: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    repo: Option<RawRepo<'a>>,
    #[serde(default)]
    actor: Option<RawActor>,
    #[serde(default)]
    payload: Option<RawPayload>,
}

/// GitHub sends ids as strings of digits; a bare number is accepted too.
/// Any other string is `None` (reported as an invalid `id`); another JSON
/// type fails the event with a message that says what an id is.
fn event_id<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    struct IdVisitor;
    impl serde::de::Visitor<'_> for IdVisitor {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an event id (a string of digits)")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(text.parse().ok())
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
            Ok(i64::try_from(n).ok())
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
            Ok(Some(n))
        }
    }
    deserializer.deserialize_any(IdVisitor)
}

#[derive(Deserialize)]
struct RawRepo<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawActor {
    #[serde(default, deserialize_with = "lenient")]
    login: Option<String>,
}

#[derive(Deserialize)]
struct RawPayload {
    #[serde(default, deserialize_with = "lenient")]
    action: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    number: Option<i64>,
    #[serde(default)]
    pull_request: Option<RawNumbered>,
    #[serde(default)]
    issue: Option<RawNumbered>,
}

#[derive(Deserialize)]
struct RawNumbered {
    #[serde(default, deserialize_with = "lenient")]
    number: Option<i64>,
}

/// An optional field we store but do not need: a value of an unexpected JSON
/// type becomes `None` instead of costing the whole event. Only for small leaf
/// values (the untagged enum buffers what it reads).
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lenient<T> {
        Expected(T),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Lenient::<T>::deserialize(deserializer)? {
        Lenient::Expected(value) => Some(value),
        Lenient::Other(_) => None,
    })
}

/// The top-level `type` of an event serialized the way GitHub and GH Archive
/// write it, `{"id":"<digits>","type":"<name>",...`; `None` for any other layout.
/// Being the second key of the outer object, it cannot be a nested `type`.
fn leading_type(json: &[u8]) -> Option<&[u8]> {
    let rest = json.strip_prefix(br#"{"id":""#)?;
    let digits = rest.iter().position(|b| !b.is_ascii_digit())?;
    let rest = rest[digits..].strip_prefix(br#"","type":""#)?;
    let end = rest.iter().position(|b| *b == b'"')?;
    let name = &rest[..end];
    // An escape (`Watch\u0045vent`) means only the full parse knows the name.
    (!name.contains(&b'\\')).then_some(name)
}

/// Parses one event. `Ok(None)` for an event of an untracked type.
///
/// Most events are of untracked types (pushes, comments, ...). When the line
/// starts the way GitHub writes events, such an event is recognised from its
/// first bytes and skipped without parsing the rest; it is then not validated.
pub fn parse_event<J: AsRef<[u8]> + ?Sized>(json: &J) -> Result<Option<Event>, MalformedEvent> {
    let json = json.as_ref();
    if let Some(name) = leading_type(json)
        && !EventType::ALL.iter().any(|t| t.as_str().as_bytes() == name)
    {
        return Ok(None);
    }
    // serde would read an array as a struct's fields in order; say what it is.
    match json.trim_ascii_start().first() {
        Some(b'{') => {}
        Some(b'[') => return Err(MalformedEvent::NotAnObject("a JSON array")),
        None => return Err(MalformedEvent::NotAnObject("an empty line")),
        Some(_) => return Err(MalformedEvent::NotAnObject("not a JSON object")),
    }
    let raw: RawEvent<'_> =
        serde_json::from_slice(json).map_err(|e| MalformedEvent::Json(e.to_string()))?;
    let event_type = raw.event_type.ok_or(MalformedEvent::Field("type"))?;
    let Some(event_type) = EventType::from_name(&event_type) else {
        return Ok(None);
    };
    let id = raw
        .id
        .filter(|id| *id > 0)
        .ok_or(MalformedEvent::Field("id"))?;
    let raw_created_at = raw.created_at.ok_or(MalformedEvent::Field("created_at"))?;
    let created_at = DateTime::parse_from_rfc3339(&raw_created_at)
        .ok()
        .map(|time| time.timestamp())
        // Before 1970 is no GitHub event, and keeping times non-negative keeps
        // the rollups' integer bucketing a plain division.
        .filter(|seconds| *seconds >= 0)
        .ok_or_else(|| MalformedEvent::CreatedAt(raw_created_at.to_string()))?;
    if created_at > chrono::Utc::now().timestamp() + MAX_CLOCK_SKEW_SECONDS {
        return Err(MalformedEvent::FromTheFuture(raw_created_at.into_owned()));
    }
    let repo_name = raw
        .repo
        .and_then(|repo| repo.name)
        .filter(|name| !name.is_empty())
        .ok_or(MalformedEvent::Field("repo.name"))?;
    if !is_repo_name(&repo_name) {
        return Err(MalformedEvent::RepoName(shorten(&repo_name)));
    }
    let repo_name = repo_name.into_owned();
    let actor_login = raw.actor.and_then(|a| a.login);
    let (action, number) = match raw.payload {
        Some(payload) => (payload.action.clone(), payload_number(payload, event_type)),
        None => (None, None),
    };
    Ok(Some(Event {
        id,
        event_type,
        created_at,
        repo_name,
        actor_login,
        action,
        number,
    }))
}

/// The PR or issue number: PR payloads carry it at the top (and, before the
/// 2025 trim, in `pull_request`); issue payloads in `issue`.
fn payload_number(p: RawPayload, event_type: EventType) -> Option<i64> {
    match event_type {
        EventType::PullRequest => p.number.or(p.pull_request.and_then(|pr| pr.number)),
        EventType::Issues => p.issue.and_then(|issue| issue.number).or(p.number),
        EventType::Watch => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_pull_request_event() {
        let json = r#"{"id":"17244207400","type":"PullRequestEvent",
            "actor":{"id":1,"login":"octocat"},
            "repo":{"id":2,"name":"octo/repo"},
            "payload":{"action":"opened","number":42,"pull_request":{"number":42,"state":"open"}},
            "public":true,"created_at":"2021-07-21T06:00:01Z"}"#;
        let event = parse_event(json).unwrap().unwrap();
        assert_eq!(
            event,
            Event {
                id: 17244207400,
                event_type: EventType::PullRequest,
                created_at: 1626847201,
                repo_name: "octo/repo".into(),
                actor_login: Some("octocat".into()),
                action: Some("opened".into()),
                number: Some(42),
            }
        );
    }

    #[test]
    fn parses_the_trimmed_2025_payload_and_new_actions() {
        let json = r#"{"id":"50000000001","type":"PullRequestEvent","actor":{"login":"a"},
            "repo":{"name":"o/r"},"payload":{"action":"merged","pull_request":{"number":7}},
            "created_at":"2025-11-01T00:00:00Z"}"#;
        let event = parse_event(json).unwrap().unwrap();
        assert_eq!(event.action.as_deref(), Some("merged"));
        assert_eq!(event.number, Some(7));
    }

    #[test]
    fn issue_number_comes_from_the_issue() {
        let json = r#"{"id":"5","type":"IssuesEvent","repo":{"name":"o/r"},
            "payload":{"action":"closed","issue":{"number":9,"title":"x"}},
            "created_at":"2019-11-27T03:00:00Z"}"#;
        let event = parse_event(json).unwrap().unwrap();
        assert_eq!((event.number, event.actor_login), (Some(9), None));
    }

    #[test]
    fn odd_optional_fields_do_not_cost_the_event() {
        let json = r#"{"id":"8","type":"PullRequestEvent","repo":{"name":"o/r"},
            "actor":{"login":17},"payload":{"action":["x"],"number":"12","pull_request":{"number":null}},
            "created_at":"2019-11-27T03:00:00+02:00"}"#;
        let event = parse_event(json).unwrap().unwrap();
        assert_eq!(
            (event.actor_login, event.action, event.number),
            (None, None, None)
        );
        // 2019-11-27T03:00:00Z is 1574823600; +02:00 is two hours earlier.
        assert_eq!(
            event.created_at,
            1574823600 - 2 * 3600,
            "offsets are converted to UTC"
        );
        let null_payload = r#"{"id":"9","type":"WatchEvent","repo":{"name":"o/r"},"payload":null,
            "created_at":"2019-11-27T03:00:00Z"}"#;
        assert_eq!(parse_event(null_payload).unwrap().unwrap().action, None);
    }

    #[test]
    fn untracked_types_are_skipped_not_malformed() {
        let json = r#"{"id":"1","type":"PushEvent","repo":{"name":"o/r"},"created_at":"2019-11-27T03:00:00Z"}"#;
        assert_eq!(parse_event(json), Ok(None));
        // Another key order takes the full parse and reaches the same answer.
        let reordered = r#"{"type":"PushEvent","id":"1","repo":{"name":"o/r"},"created_at":"2019-11-27T03:00:00Z"}"#;
        assert_eq!(parse_event(reordered), Ok(None));
        // A nested "type" is never mistaken for the event's own.
        let nested = r#"{"id":"3","actor":{"type":"PushEvent"},"type":"WatchEvent","repo":{"name":"o/r"},"created_at":"2019-11-27T03:00:00Z"}"#;
        assert_eq!(
            parse_event(nested).unwrap().unwrap().event_type,
            EventType::Watch
        );
    }

    #[test]
    fn leading_type_reads_only_the_github_layout() {
        assert_eq!(
            leading_type(br#"{"id":"17","type":"WatchEvent","x":1}"#),
            Some(&b"WatchEvent"[..])
        );
        assert_eq!(
            leading_type(br#"{"id":"17","actor":{},"type":"WatchEvent"}"#),
            None
        );
        assert_eq!(leading_type(br#"{"type":"WatchEvent"}"#), None);
        assert_eq!(leading_type(br#"{"id":"17","type":"Watch"#), None);
    }

    /// A `type` spelled with a JSON escape is the same type in any key order.
    #[test]
    fn escaped_types_are_classified_whatever_the_key_order() {
        let rest = r#""repo":{"name":"o/r"},"created_at":"2019-11-27T03:00:00Z""#;
        for json in [
            format!(r#"{{"id":"1","type":"Watch\u0045vent",{rest}}}"#),
            format!(r#"{{"type":"Watch\u0045vent","id":"1",{rest}}}"#),
        ] {
            let event = parse_event(&json).unwrap();
            assert_eq!(
                event.map(|e| e.event_type),
                Some(EventType::Watch),
                "{json}"
            );
        }
        let push = format!(r#"{{"id":"1","type":"Push\u0045vent",{rest}}}"#);
        assert_eq!(parse_event(&push), Ok(None));
    }

    /// Repository names are GitHub's: owner up to 39, name up to 100
    /// characters of letters, digits, `-`, `_` and `.`.
    #[test]
    fn repository_names_must_be_githubs() {
        let event = |name: &str| {
            let json = serde_json::json!({"id": "1", "type": "WatchEvent",
                "repo": {"name": name}, "created_at": "2019-11-27T03:00:00Z"});
            parse_event(&json.to_string())
        };
        let longest = format!("{}/{}", "o".repeat(39), "r-_.9".repeat(20));
        for good in ["a/b", "rust-lang/rust", "A_1/.github", longest.as_str()] {
            assert_eq!(event(good).unwrap().unwrap().repo_name, good);
        }
        let long_owner = format!("{}/r", "o".repeat(40));
        let long_repo = format!("o/{}", "r".repeat(101));
        let huge = format!("o/{}", "r".repeat(200_000));
        for bad in [
            "noslash",
            "/r",
            "o/",
            "o/r/x",
            "o r/x",
            "o/r'",
            "o/r\n",
            "o/\0",
            "ö/r",
            &long_owner,
            &long_repo,
            &huge,
        ] {
            match event(bad) {
                Err(MalformedEvent::RepoName(shown)) => assert!(shown.len() < 80, "{shown}"),
                other => panic!("{bad:.80}: {other:?}"),
            }
        }
    }

    /// Every event of the recorded fixtures: the fast path and the full parse agree.
    #[test]
    fn fast_path_agrees_with_the_full_parse_on_real_events() {
        use std::io::Read;
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/events-2021-07-21-sample.json.gz"
        );
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        let mut tracked = 0;
        for line in text.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let is_tracked = EventType::from_name(value["type"].as_str().unwrap()).is_some();
            // The same event re-serialized with sorted keys defeats the fast path.
            let reordered = serde_json::to_string(&value).unwrap();
            assert_eq!(leading_type(reordered.as_bytes()), None);
            let fast = parse_event(line).unwrap();
            assert_eq!(fast, parse_event(&reordered).unwrap());
            assert_eq!(fast.is_some(), is_tracked);
            tracked += usize::from(is_tracked);
        }
        assert_eq!(tracked, 58 + 64 + 21);
    }

    #[test]
    fn malformed_tracked_events_say_why() {
        let cases = [
            (
                r#"{"type":"WatchEvent","repo":{"name":"o/r"},"created_at":"2019-11-27T03:00:00Z"}"#,
                MalformedEvent::Field("id"),
            ),
            (
                r#"{"id":"x1","type":"WatchEvent","repo":{"name":"o/r"},"created_at":"2019-11-27T03:00:00Z"}"#,
                MalformedEvent::Field("id"),
            ),
            (
                r#"{"id":"1","type":"WatchEvent","created_at":"2019-11-27T03:00:00Z"}"#,
                MalformedEvent::Field("repo.name"),
            ),
            (
                r#"{"id":"1","type":"WatchEvent","repo":{"name":"o/r"}}"#,
                MalformedEvent::Field("created_at"),
            ),
            (
                r#"{"id":"1","type":"WatchEvent","repo":{"name":"o/r"},"created_at":"yesterday"}"#,
                MalformedEvent::CreatedAt("yesterday".into()),
            ),
            (
                r#"{"id":"1","repo":{"name":"o/r"}}"#,
                MalformedEvent::Field("type"),
            ),
            (
                r#"{"id":"1","type":"WatchEvent","repo":{"name":"o/r"},"created_at":"9999-12-31T23:59:59Z"}"#,
                MalformedEvent::FromTheFuture("9999-12-31T23:59:59Z".into()),
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(parse_event(json), Err(expected), "{json}");
        }
        // Within the clock-skew tolerance an event is kept; past it, not.
        let at = |offset: i64| {
            let time = chrono::Utc::now() + chrono::Duration::seconds(offset);
            format!(
                r#"{{"id":"1","type":"WatchEvent","repo":{{"name":"o/r"}},"created_at":"{}"}}"#,
                time.format("%Y-%m-%dT%H:%M:%SZ")
            )
        };
        assert!(
            parse_event(&at(MAX_CLOCK_SKEW_SECONDS - 60))
                .unwrap()
                .is_some()
        );
        assert!(matches!(
            parse_event(&at(MAX_CLOCK_SKEW_SECONDS + 60)),
            Err(MalformedEvent::FromTheFuture(_))
        ));
        assert_eq!(
            parse_event("[1,2]"),
            Err(MalformedEvent::NotAnObject("a JSON array"))
        );
        let array = r#"[{"id":"1","type":"WatchEvent","repo":{"name":"o/r"},"created_at":"2019-11-27T03:00:00Z"}]"#;
        let message = parse_event(array).unwrap_err().to_string();
        assert!(
            message.starts_with("a JSON array, not one JSON event object"),
            "{message}"
        );
        let bad_id = r#"{"id":{"x":1},"type":"WatchEvent","repo":{"name":"o/r"},"created_at":"2019-11-27T03:00:00Z"}"#;
        let message = parse_event(bad_id).unwrap_err().to_string();
        assert!(
            message.contains("expected an event id (a string of digits)"),
            "{message}"
        );
        assert!(!message.contains("untagged"), "{message}");
        assert!(matches!(
            parse_event(r#"{"id":"1","#),
            Err(MalformedEvent::Json(_))
        ));
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// A JSON value shaped like an event, with every field possibly
        /// missing, of the wrong type, or hostile.
        fn event_like() -> impl Strategy<Value = String> {
            let text = prop_oneof![
                Just("\"\"".to_owned()),
                "\"[a-zA-Z0-9/ _.:-]{0,20}\"",
                Just("\"9999-12-31T23:59:59Z\"".to_owned()),
                Just("\"2021-07-21T06:00:00Z\"".to_owned()),
                Just("\"WatchEvent\"".to_owned()),
                Just("\"PullRequestEvent\"".to_owned()),
                Just("\"IssuesEvent\"".to_owned()),
                any::<i64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_map(|n| format!("{n:?}")),
                Just("null".to_owned()),
                Just("[]".to_owned()),
                Just("{}".to_owned()),
            ];
            let field = |name: &'static str| {
                proptest::option::of(text.clone())
                    .prop_map(move |v| v.map(|v| format!("\"{name}\":{v}")))
            };
            (
                field("type"),
                field("id"),
                field("created_at"),
                proptest::option::of(text.clone())
                    .prop_map(|v| v.map(|v| format!("\"repo\":{{\"name\":{v}}}"))),
                proptest::option::of(text.clone()).prop_map(|v| {
                    v.map(|v| format!("\"payload\":{{\"action\":{v},\"number\":{v}}}"))
                }),
            )
                .prop_map(|(a, b, c, d, e)| {
                    let fields: Vec<String> = [a, b, c, d, e].into_iter().flatten().collect();
                    format!("{{{}}}", fields.join(","))
                })
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = parse_event(&bytes);
            }

            /// Whatever the fields hold, the parser answers; what it keeps is
            /// a valid event: positive id, non-empty repository, a time from
            /// 1970 up to the clock-skew tolerance.
            #[test]
            fn event_shaped_input_is_kept_only_when_valid(json in event_like()) {
                if let Ok(Some(event)) = parse_event(&json) {
                    prop_assert!(event.id > 0);
                    prop_assert!(is_repo_name(&event.repo_name));
                    prop_assert!(event.created_at >= 0);
                    prop_assert!(
                        event.created_at <= chrono::Utc::now().timestamp() + MAX_CLOCK_SKEW_SECONDS
                    );
                }
            }
        }
    }
}
