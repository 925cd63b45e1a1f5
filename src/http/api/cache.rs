//! Answers kept while they are exact: each is stored with the [`Stamp`] it was
//! computed at (the database's data version, and where the answer depends on
//! them the poller's report and the clock's second) and served only to a
//! request that finds the same stamp. A commit by any connection, in this
//! process or another, changes the data version; a new second changes the
//! clock; so no answer outlives what it was computed from. A hit costs one
//! read of the data version (what that costs each store says at
//! [`crate::store::Store::data_version`]) and a map lookup.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::spool::Spooled;
use crate::http::error::AppError;
use crate::store::DataVersion;

/// Most answers kept: distinct parameters are cheap for a client to invent,
/// so past this the cache is emptied rather than grown.
const MAX_ANSWERS: usize = 4096;
/// Most bytes of answers (and their keys) kept, emptied past it as for
/// [`MAX_ANSWERS`]: some answers (`/coverage` over years, every repository's
/// PR counts) are megabytes each.
const MAX_CACHED_BYTES: usize = 32 << 20;
/// Larger answers are not kept at all: each would take a good part of
/// [`MAX_CACHED_BYTES`], and they are rarely asked twice at one data version.
const MAX_CACHED_ANSWER_BYTES: usize = 1 << 20;

/// What an answer was computed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// [`crate::store::Store::data_version`] when the answer was computed.
    pub data: DataVersion,
    /// The poller's report generation, for answers that show it (`/health`).
    pub polls: u64,
    /// The clock, for answers about "the last N minutes" (epoch seconds,
    /// or minutes for a chart whose buckets move by the minute).
    pub clock: i64,
}

impl Stamp {
    /// For an answer that depends on the stored data only.
    pub async fn of_data(state: &AppState) -> Result<Stamp, AppError> {
        Ok(Stamp {
            data: state
                .within_store_timeout(async { Ok(state.store.data_version().await?) })
                .await?,
            ..Stamp::default()
        })
    }

    /// For an answer that depends on the stored data and the clock (`clock`
    /// in the unit the answer moves by: a second, or a minute).
    pub async fn at(state: &AppState, clock: i64) -> Result<Stamp, AppError> {
        Ok(Stamp {
            clock,
            ..Stamp::of_data(state).await?
        })
    }
}

/// An answer of any endpoint: its content type, its body (in memory, or
/// spooled to a temporary file when large), and how complete it is.
pub struct Answer {
    pub content_type: &'static str,
    pub body: Spooled,
    /// `X-Complete-Until`: where the run of settled GH Archive hours that
    /// starts at the window's first hour ends (epoch seconds).
    pub complete_until: Option<i64>,
}

impl Answer {
    /// An answer held in memory, with no `X-Complete-Until`.
    pub fn new(content_type: &'static str, body: Bytes) -> Answer {
        Answer {
            content_type,
            body: Spooled::Memory(body),
            complete_until: None,
        }
    }

    /// What the cache keeps of it: answers in memory only.
    fn kept(&self) -> Option<Kept> {
        match &self.body {
            Spooled::Memory(body) => Some(Kept {
                content_type: self.content_type,
                body: body.clone(),
                complete_until: self.complete_until,
            }),
            Spooled::File(..) => None,
        }
    }
}

/// An answer as the cache keeps it.
#[derive(Clone)]
struct Kept {
    content_type: &'static str,
    body: Bytes,
    complete_until: Option<i64>,
}

impl From<Kept> for Answer {
    fn from(kept: Kept) -> Answer {
        Answer {
            complete_until: kept.complete_until,
            ..Answer::new(kept.content_type, kept.body)
        }
    }
}

/// The header saying how far an answer rests on settled archive hours.
pub const COMPLETE_UNTIL: &str = "x-complete-until";

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            Spooled::Memory(body) => {
                ([(header::CONTENT_TYPE, self.content_type)], body).into_response()
            }
            Spooled::File(file, length) => {
                let stream = tokio_util::io::ReaderStream::with_capacity(
                    tokio::fs::File::from_std(file),
                    64 * 1024,
                );
                (
                    [(header::CONTENT_TYPE, self.content_type)],
                    [(header::CONTENT_LENGTH, length.to_string())],
                    Body::from_stream(stream),
                )
                    .into_response()
            }
        };
        let at = self.complete_until.and_then(|at| {
            let at = chrono::DateTime::from_timestamp(at, 0)?;
            header::HeaderValue::from_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .ok()
        });
        if let Some(value) = at {
            response.headers_mut().insert(COMPLETE_UNTIL, value);
        }
        response
    }
}

/// An endpoint and its parameters, as the key of an answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub route: &'static str,
    pub params: String,
}

pub struct AnswerCache {
    answers: Mutex<Answers>,
    /// Turns to compute a missing answer: one computation at a time per
    /// stripe of keys, so the requests that miss together (every second, for
    /// an answer that moves with the clock) wait for one computation instead
    /// of each running its own. Stripes, not a lock per key: a fixed size
    /// whatever keys clients invent.
    turns: Box<[tokio::sync::Mutex<()>]>,
    stripes: RandomState,
}

/// What [`AnswerCache::lookup`] found.
enum Lookup<'a> {
    Kept(Answer),
    /// No answer yet: compute it while holding this.
    Turn(tokio::sync::MutexGuard<'a, ()>),
}

/// How many computations of different answers may run at once.
const TURN_STRIPES: usize = 64;

impl Default for AnswerCache {
    fn default() -> Self {
        AnswerCache {
            answers: Mutex::default(),
            turns: (0..TURN_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            stripes: RandomState::new(),
        }
    }
}

impl AnswerCache {
    /// The answer for `key` at `stamp`: kept, or computed by `compute` (which
    /// must answer as of `stamp`) and kept. While one request computes it,
    /// others asking for the same key wait and take its answer.
    pub async fn get_or_compute<F, Fut>(
        &self,
        key: Key,
        stamp: Stamp,
        compute: F,
    ) -> Result<Answer, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Answer, AppError>>,
    {
        let _turn = match self.lookup(&key, stamp).await {
            Lookup::Kept(answer) => return Ok(answer),
            Lookup::Turn(turn) => turn,
        };
        let answer = compute().await?;
        if let Some(kept) = answer.kept() {
            self.put(key, stamp, kept);
        }
        Ok(answer)
    }

    /// The answer kept for `key` at `stamp`, or the turn to compute it: held
    /// while computing, others asking meanwhile wait for it, then find the
    /// answer (one stripe of [`AnswerCache::turns`] per key).
    async fn lookup(&self, key: &Key, stamp: Stamp) -> Lookup<'_> {
        if let Some(hit) = self.get(key, stamp) {
            return Lookup::Kept(hit);
        }
        let stripe = self.stripes.hash_one(key) as usize % self.turns.len();
        let turn = self.turns[stripe].lock().await;
        match self.get(key, stamp) {
            Some(hit) => Lookup::Kept(hit),
            None => Lookup::Turn(turn),
        }
    }

    fn get(&self, key: &Key, stamp: Stamp) -> Option<Answer> {
        let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        match answers.kept.get(key) {
            Some((at, kept)) if *at == stamp => Some(kept.clone().into()),
            _ => None,
        }
    }

    fn put(&self, key: Key, stamp: Stamp, answer: Kept) {
        let size = Answers::size(&key, &answer);
        if size > MAX_CACHED_ANSWER_BYTES {
            return;
        }
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, old)) = answers.kept.remove(&key) {
            answers.bytes -= Answers::size(&key, &old);
        }
        if answers.kept.len() >= MAX_ANSWERS || answers.bytes + size > MAX_CACHED_BYTES {
            answers.kept.clear();
            answers.bytes = 0;
        }
        answers.bytes += size;
        answers.kept.insert(key, (stamp, answer));
    }
}

/// The answers kept and their bytes.
#[derive(Default)]
struct Answers {
    kept: HashMap<Key, (Stamp, Kept)>,
    bytes: usize,
}

impl Answers {
    /// What an answer costs to keep, roughly: its body and key.
    fn size(key: &Key, answer: &Kept) -> usize {
        answer.body.len() + key.params.len() + std::mem::size_of::<(Key, Stamp, Kept)>()
    }
}

/// The answer for `key` at `stamp`: see [`AnswerCache::get_or_compute`].
pub async fn answer<F, Fut>(
    state: &AppState,
    key: Key,
    stamp: Stamp,
    compute: F,
) -> Result<Answer, AppError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Answer, AppError>>,
{
    state
        .answers
        .get_or_compute(key, stamp, || state.within_store_timeout(compute()))
        .await
}

/// A JSON answer from a serializable value.
pub fn json<T: serde::Serialize>(value: &T) -> Result<Answer, AppError> {
    let body = serde_json::to_vec(value).map_err(|error| {
        tracing::error!(%error, "cannot serialize an answer");
        AppError::Internal("cannot serialize the answer")
    })?;
    Ok(Answer::new("application/json", Bytes::from(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &'static str) -> Kept {
        Kept {
            content_type: "text/plain",
            body: Bytes::from_static(text.as_bytes()),
            complete_until: None,
        }
    }

    fn body(answer: Answer) -> Bytes {
        match answer.body {
            Spooled::Memory(body) => body,
            Spooled::File(..) => panic!("a file"),
        }
    }

    #[test]
    fn an_answer_is_served_only_at_its_stamp() {
        let cache = AnswerCache::default();
        let key = Key {
            route: "r",
            params: "a".into(),
        };
        let at = Stamp {
            data: DataVersion::default(),
            polls: 0,
            clock: 100,
        };
        cache.put(key.clone(), at, answer("x"));
        assert_eq!(body(cache.get(&key, at).unwrap()), "x");
        for other in [
            Stamp {
                data: DataVersion::from_counters(&[2]),
                ..at
            },
            Stamp { polls: 1, ..at },
            Stamp { clock: 101, ..at },
        ] {
            assert!(cache.get(&key, other).is_none(), "{other:?}");
        }
        let other_key = Key {
            route: "r",
            params: "b".into(),
        };
        assert!(cache.get(&other_key, at).is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_that_miss_together_compute_once() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let cache = Arc::new(AnswerCache::default());
        let computed = Arc::new(AtomicUsize::new(0));
        let ask = |stamp: Stamp| {
            let (cache, computed) = (cache.clone(), computed.clone());
            tokio::spawn(async move {
                let key = Key {
                    route: "r",
                    params: "p".into(),
                };
                cache
                    .get_or_compute(key, stamp, || async {
                        computed.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        Ok(answer("x").into())
                    })
                    .await
                    .map(body)
                    .unwrap()
            })
        };
        let at = Stamp::default();
        let asked: Vec<_> = (0..16).map(|_| ask(at)).collect();
        for body in asked {
            assert_eq!(body.await.unwrap(), "x");
        }
        assert_eq!(computed.load(Ordering::SeqCst), 1);
        // A new stamp is a new computation, once again.
        let later = Stamp { clock: 1, ..at };
        let asked: Vec<_> = (0..16).map(|_| ask(later)).collect();
        for body in asked {
            body.await.unwrap();
        }
        assert_eq!(computed.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn invented_parameters_cannot_grow_it_without_bound() {
        let cache = AnswerCache::default();
        for i in 0..3 * MAX_ANSWERS {
            let key = Key {
                route: "r",
                params: i.to_string(),
            };
            cache.put(key, Stamp::default(), answer("x"));
        }
        assert!(cache.answers.lock().unwrap().kept.len() <= MAX_ANSWERS);
    }

    #[test]
    fn large_answers_cannot_grow_it_past_its_bytes() {
        let cache = AnswerCache::default();
        let big = |n: usize| Kept {
            content_type: "application/json",
            body: Bytes::from(vec![b'x'; n]),
            complete_until: None,
        };
        for i in 0..200 {
            let key = |i: usize| Key {
                route: "coverage",
                params: i.to_string(),
            };
            cache.put(key(i), Stamp::default(), big(900 << 10));
            cache.put(
                key(1000 + i),
                Stamp::default(),
                big(MAX_CACHED_ANSWER_BYTES + 1),
            );
            let answers = cache.answers.lock().unwrap();
            let held: usize = answers.kept.values().map(|(_, a)| a.body.len()).sum();
            assert!(held <= MAX_CACHED_BYTES, "{held} bytes after {i}");
            assert_eq!(
                held,
                answers.kept.len() * (900 << 10),
                "the over-large never kept"
            );
        }
        // A key answered again replaces its bytes rather than adding them.
        let again = Key {
            route: "coverage",
            params: "again".into(),
        };
        for _ in 0..100 {
            cache.put(again.clone(), Stamp::default(), big(10));
        }
        assert!(cache.answers.lock().unwrap().bytes < MAX_CACHED_BYTES);
    }
}
