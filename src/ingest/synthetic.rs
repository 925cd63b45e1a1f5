//! Synthetic-but-realistic events, grown from real recorded ones, so that anyone
//! can rebuild the benchmark inputs (a GH Archive-sized hour, a database of ten
//! million events) without downloading anything. Used by
//! `examples/generate_events.rs` and the benchmarks; never by the service.
//!
//! Each synthetic event is a real event (a "template") with a fresh id, a time
//! spread evenly over the requested span, and a repository and actor drawn from
//! a long tail: half the draws are log-uniform over the repositories (a few
//! very busy ones), half uniform (a long tail of quiet ones).

use crate::core::event::{Event, parse_event};

/// Settings for a run of synthetic events.
#[derive(Clone, Debug)]
pub struct SyntheticSettings {
    /// How many events to make.
    pub events: u64,
    /// First event time, epoch seconds.
    pub start: i64,
    /// Seconds from the first event to the last.
    pub span_seconds: i64,
    /// Distinct repositories to draw from.
    pub repositories: u64,
    /// Distinct actors to draw from.
    pub actors: u64,
    /// First event id (ids then increase by one, like GitHub's).
    pub first_id: i64,
    pub seed: u64,
}

/// One real event to vary.
struct Template {
    line: String,
    id: String,
    repo: String,
    created_at: String,
    /// Parsed, when of a tracked type.
    event: Option<Event>,
}

/// Makes synthetic events; see the module docs.
pub struct Generator {
    templates: Vec<Template>,
    tracked: Vec<usize>,
    settings: SyntheticSettings,
    rng: fastrand::Rng,
    made: u64,
}

impl Generator {
    /// A generator varying `lines` (GH Archive lines); `None` if none is a usable event.
    pub fn new(
        lines: impl IntoIterator<Item = String>,
        settings: SyntheticSettings,
    ) -> Option<Generator> {
        let templates: Vec<Template> = lines.into_iter().filter_map(template).collect();
        let tracked = (0..templates.len())
            .filter(|i| templates[*i].event.is_some())
            .collect::<Vec<_>>();
        if templates.is_empty() || tracked.is_empty() {
            return None;
        }
        Some(Generator {
            templates,
            tracked,
            rng: fastrand::Rng::with_seed(settings.seed),
            settings,
            made: 0,
        })
    }

    /// Events still to make.
    pub fn remaining(&self) -> u64 {
        self.settings.events - self.made
    }

    /// The next (id, epoch second) and advances.
    fn next_slot(&mut self) -> (i64, i64) {
        let i = self.made;
        self.made += 1;
        let offset = if self.settings.events > 1 {
            (i128::from(self.settings.span_seconds) * i128::from(i)
                / i128::from(self.settings.events - 1)) as i64
        } else {
            0
        };
        (
            self.settings.first_id + i as i64,
            self.settings.start + offset,
        )
    }

    fn repository(&mut self) -> String {
        let n = self.settings.repositories.max(1);
        let rank = if self.rng.bool() {
            // Log-uniform: rank 1 is as likely as ranks 2-3, or 4-7, ...
            ((n as f64).powf(self.rng.f64()) as u64).clamp(1, n)
        } else {
            self.rng.u64(1..=n)
        };
        format!("org{}/repo{rank}", rank % 9973)
    }

    fn actor(&mut self) -> String {
        format!("user{}", self.rng.u64(1..=self.settings.actors.max(1)))
    }

    /// The next event as a GH Archive line (any type, in the templates' mix).
    pub fn next_line(&mut self) -> Option<String> {
        if self.remaining() == 0 {
            return None;
        }
        let (id, at) = self.next_slot();
        let repo = self.repository();
        let template = &self.templates[self.rng.usize(..self.templates.len())];
        let created_at = chrono::DateTime::from_timestamp(at, 0)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let mut line = template
            .line
            .replacen(
                &format!("\"id\":\"{}\"", template.id),
                &format!("\"id\":\"{id}\""),
                1,
            )
            .replace(&format!("/{}\"", template.repo), &format!("/{repo}\""))
            .replace(&format!("\"{}\"", template.repo), &format!("\"{repo}\""));
        let key = format!("\"created_at\":\"{}\"", template.created_at);
        if let Some(position) = line.rfind(&key) {
            line.replace_range(
                position..position + key.len(),
                &format!("\"created_at\":\"{created_at}\""),
            );
        }
        Some(line)
    }

    /// The next event of a tracked type, ready to insert (for building databases).
    pub fn next_event(&mut self) -> Option<Event> {
        if self.remaining() == 0 {
            return None;
        }
        let (id, created_at) = self.next_slot();
        let repo_name = self.repository();
        let actor_login = Some(self.actor());
        let pick = self.tracked[self.rng.usize(..self.tracked.len())];
        let template = self.templates[pick].event.as_ref()?;
        Some(Event {
            id,
            created_at,
            repo_name,
            actor_login,
            number: template.number.map(|_| self.rng.i64(1..100_000)),
            ..template.clone()
        })
    }
}

fn template(line: String) -> Option<Template> {
    let value: serde_json::Value = serde_json::from_str(&line).ok()?;
    let id = value["id"].as_str()?.to_owned();
    let repo = value["repo"]["name"].as_str()?.to_owned();
    let created_at = value["created_at"].as_str()?.to_owned();
    let event = parse_event(&line).ok()?;
    Some(Template {
        line,
        id,
        repo,
        created_at,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(events: u64) -> SyntheticSettings {
        SyntheticSettings {
            events,
            start: 1_700_000_000,
            span_seconds: 3600,
            repositories: 1000,
            actors: 100,
            first_id: 50_000_000_000,
            seed: 1,
        }
    }

    fn fixture_lines() -> Vec<String> {
        use std::io::Read;
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/events-2021-07-21-sample.json.gz"
        );
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn lines_are_valid_events_with_fresh_ids_times_and_repos() {
        let mut generator = Generator::new(fixture_lines(), settings(500)).unwrap();
        let mut tracked = 0;
        let mut previous_time = i64::MIN;
        for i in 0..500 {
            let line = generator.next_line().unwrap();
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(value["id"], (50_000_000_000i64 + i).to_string());
            let repo = value["repo"]["name"].as_str().unwrap();
            assert!(repo.starts_with("org") && repo.contains("/repo"), "{repo}");
            if let Some(event) = parse_event(&line).unwrap() {
                tracked += 1;
                assert_eq!(event.repo_name, repo);
                assert!(event.created_at >= previous_time);
                assert!((1_700_000_000..=1_700_003_600).contains(&event.created_at));
                previous_time = event.created_at;
            }
        }
        assert!(generator.next_line().is_none());
        // The fixture's own share of tracked events is 143 / 800.
        assert!((40..140).contains(&tracked), "{tracked}");
    }

    #[test]
    fn events_span_the_window_with_unique_ids() {
        let mut generator = Generator::new(fixture_lines(), settings(1000)).unwrap();
        let events: Vec<Event> = std::iter::from_fn(|| generator.next_event()).collect();
        assert_eq!(events.len(), 1000);
        assert_eq!(events.first().unwrap().created_at, 1_700_000_000);
        assert_eq!(events.last().unwrap().created_at, 1_700_003_600);
        let ids: std::collections::HashSet<i64> = events.iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), 1000);
    }
}
