//! ClickHouse's `TabSeparated` text format and SQL literals, both ways:
//! what the store writes into statements and rows, and reads back from
//! answers. Every other file of the store goes through these.

use super::ClickHouseError;
use crate::core::event::EventType;

/// `value` as a ClickHouse string literal.
pub fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for c in value.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '\'' => quoted.push_str("\\'"),
            '\0' => quoted.push_str("\\0"),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

/// Appends `value` as one `TabSeparated` field.
pub fn push_tsv(out: &mut Vec<u8>, value: Option<&str>) {
    let Some(value) = value else {
        out.extend_from_slice(b"\\N");
        return;
    };
    for &b in value.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0 => out.extend_from_slice(b"\\0"),
            b => out.push(b),
        }
    }
}

/// One `TabSeparated` field read back: escapes undone, `\N` is `None`.
pub fn read_tsv(field: &str) -> Option<String> {
    if field == "\\N" {
        return None;
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Some(out)
}

/// Epoch seconds as a `DateTime` field: `YYYY-MM-DD hh:mm:ss` in UTC (the
/// columns' time zone). A bare number is read as a timestamp only when it
/// has enough digits, so 500 would be refused; outside `DateTime`'s range
/// (1970 to 2106) the nearest end.
pub fn datetime(seconds: i64) -> impl std::fmt::Display {
    let seconds = seconds.clamp(0, i64::from(u32::MAX));
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S")
}

/// `text` (the whole answer or one of its fields, from `line`) as a number.
pub fn number<T: std::str::FromStr>(text: &str, line: &str) -> Result<T, ClickHouseError> {
    text.trim().parse().map_err(|_| bad(line))
}

/// The `N` tab-separated fields of an answer line.
pub fn fields<const N: usize>(line: &str) -> Result<[&str; N], ClickHouseError> {
    let mut parts = line.split('\t');
    let mut out = [""; N];
    for slot in &mut out {
        *slot = parts.next().ok_or_else(|| bad(line))?;
    }
    match parts.next() {
        Some(_) => Err(bad(line)),
        None => Ok(out),
    }
}

/// The [`EventType::index`] of a stored type code.
pub fn event_type(code: &str) -> Result<EventType, ClickHouseError> {
    EventType::ALL
        .into_iter()
        .find(|t| t.code().to_string() == code)
        .ok_or_else(|| bad(code))
}

/// An answer ClickHouse should not have given, shortened for the message.
pub fn bad(text: &str) -> ClickHouseError {
    ClickHouseError::Answer(text.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_fields_read_back_as_written() {
        for value in [
            "plain",
            "tab\there",
            "new\nline",
            "back\\slash",
            "nul\0",
            "'q'",
            "",
        ] {
            let mut out = Vec::new();
            push_tsv(&mut out, Some(value));
            let text = String::from_utf8(out).unwrap();
            assert!(!text.contains(['\t', '\n']), "{text:?}");
            assert_eq!(read_tsv(&text).as_deref(), Some(value));
        }
        let mut null = Vec::new();
        push_tsv(&mut null, None);
        assert_eq!(read_tsv(std::str::from_utf8(&null).unwrap()), None);
    }

    #[test]
    fn quoting_escapes_what_ends_a_literal() {
        assert_eq!(quote("a/b"), "'a/b'");
        assert_eq!(quote("x' OR 1 --"), "'x\\' OR 1 --'");
        assert_eq!(quote("back\\"), "'back\\\\'");
    }

    #[test]
    fn datetimes_are_written_as_utc_text_within_range() {
        assert_eq!(datetime(500).to_string(), "1970-01-01 00:08:20");
        assert_eq!(datetime(1_700_000_000).to_string(), "2023-11-14 22:13:20");
        assert_eq!(datetime(-5).to_string(), "1970-01-01 00:00:00");
        assert_eq!(datetime(i64::MAX).to_string(), "2106-02-07 06:28:15");
    }

    #[test]
    fn answer_lines_have_exactly_their_fields() {
        assert_eq!(fields::<2>("a\tb").unwrap(), ["a", "b"]);
        assert!(fields::<2>("a").is_err());
        assert!(fields::<2>("a\tb\tc").is_err());
        assert_eq!(event_type("2").unwrap(), EventType::PullRequest);
        assert!(event_type("9").is_err());
    }
}
