//! A page of the events feed: a JSON array of events, parsed with the same
//! tolerant parser as the importer, counting what is skipped.

use serde_json::value::RawValue;

use super::client::FetchError;
use super::outcome::PollOutcome;
use crate::core::event::{Event, parse_event};

/// Just the id of an event of any type.
#[derive(serde::Deserialize)]
struct EventId<'a> {
    #[serde(default, borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
}

/// Parses one page body (a JSON array of events) into `events`, counting what it skips.
pub(super) fn parse_page(
    body: &[u8],
    events: &mut Vec<Event>,
    outcome: &mut PollOutcome,
) -> Result<(), FetchError> {
    let items: Vec<&RawValue> = serde_json::from_slice(body)
        .map_err(|e| FetchError::MalformedBody(format!("expected a JSON array of events: {e}")))?;
    outcome.received += items.len() as u64;
    for item in &items {
        if let Ok(EventId { id: Some(id) }) = serde_json::from_str::<EventId>(item.get())
            && let Ok(id) = id.parse()
        {
            outcome.ids.push(id);
        }
    }
    for item in items {
        match parse_event(item.get()) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => outcome.untracked += 1,
            Err(reason) => {
                outcome.malformed += 1;
                tracing::warn!(%reason, "skipped a malformed event");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_that_is_not_an_array_is_rejected_whole() {
        let mut events = Vec::new();
        let mut outcome = PollOutcome::empty();
        for body in [&b"{\"message\":\"x\"}"[..], b"[{\"id\":", b"<html>", b""] {
            assert!(matches!(
                parse_page(body, &mut events, &mut outcome),
                Err(FetchError::MalformedBody(_))
            ));
        }
        let mixed = br#"[{"id":"1","type":"WatchEvent","repo":{"name":"a/b"},"created_at":"2020-01-01T00:00:00Z","payload":{"action":"started"}},
                        {"type":"WatchEvent"}, 7,
                        {"id":"2","type":"PushEvent","repo":{"name":"a/b"},"created_at":"2020-01-01T00:00:00Z"}]"#;
        parse_page(mixed, &mut events, &mut outcome).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (outcome.received, outcome.malformed, outcome.untracked),
            (4, 2, 1)
        );
    }
}
