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
use std::task::Poll;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;
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
            data: bounded(state, async { Ok(state.store.data_version().await?) }).await?,
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

/// One cached answer: its content type and body.
#[derive(Clone)]
pub struct Answer {
    pub content_type: &'static str,
    pub body: Bytes,
    /// `X-Complete-Until`: where the run of complete GH Archive hours that
    /// starts at the window's first hour ends (epoch seconds).
    pub complete_until: Option<i64>,
}

/// The header saying how far an answer rests on complete archive hours.
pub const COMPLETE_UNTIL: &str = "x-complete-until";

/// The `X-Complete-Until` value for epoch second `at`.
pub fn complete_until_value(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = ([(header::CONTENT_TYPE, self.content_type)], self.body).into_response();
        if let Some(at) = self.complete_until
            && let Ok(value) = header::HeaderValue::from_str(&complete_until_value(at))
        {
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
pub enum Lookup<'a> {
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
        self.put(key, stamp, answer.clone());
        Ok(answer)
    }

    /// The answer kept for `key` at `stamp`, or the turn to compute it: held
    /// while computing, others asking meanwhile wait for it, then find the
    /// answer (one stripe of [`AnswerCache::turns`] per key).
    pub async fn lookup(&self, key: &Key, stamp: Stamp) -> Lookup<'_> {
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
            Some((at, answer)) if *at == stamp => Some(answer.clone()),
            _ => None,
        }
    }

    pub fn put(&self, key: Key, stamp: Stamp, answer: Answer) {
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
    kept: HashMap<Key, (Stamp, Answer)>,
    bytes: usize,
}

impl Answers {
    /// What an answer costs to keep, roughly: its body and key.
    fn size(key: &Key, answer: &Answer) -> usize {
        answer.body.len() + key.params.len() + std::mem::size_of::<(Key, Stamp, Answer)>()
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
        .get_or_compute(key, stamp, || bounded(state, compute()))
        .await
}

/// `work` (which asks the store), given up after the state's store timeout:
/// a store that does not answer is unavailable, and the client hears so at
/// once instead of after the request timeout. Work that is done at its first
/// poll (SQLite's data version, a read of shared memory) takes no timer.
pub async fn bounded<T>(
    state: &AppState,
    work: impl Future<Output = Result<T, AppError>>,
) -> Result<T, AppError> {
    let mut work = std::pin::pin!(work);
    if let Poll::Ready(done) = std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await
    {
        return done;
    }
    tokio::time::timeout(state.store_timeout, work)
        .await
        .unwrap_or(Err(AppError::StoreNotAnswering(state.store_timeout)))
}

/// A JSON answer from a serializable value.
pub fn json<T: serde::Serialize>(value: &T) -> Result<Answer, AppError> {
    let body = serde_json::to_vec(value).map_err(|error| {
        tracing::error!(%error, "cannot serialize an answer");
        AppError::Internal("cannot serialize the answer")
    })?;
    Ok(Answer {
        content_type: "application/json",
        body: Bytes::from(body),
        complete_until: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &'static str) -> Answer {
        Answer {
            content_type: "text/plain",
            body: Bytes::from_static(text.as_bytes()),
            complete_until: None,
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
        assert_eq!(cache.get(&key, at).unwrap().body, "x");
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
                        Ok(answer("x"))
                    })
                    .await
                    .unwrap()
                    .body
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
        let big = |n: usize| Answer {
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
