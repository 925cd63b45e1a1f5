//! The request budget shared by every feed: GitHub allows so many requests per
//! hour (`X-RateLimit-Remaining` until `X-RateLimit-Reset`). Rather than spend
//! it in a burst and then stall until the reset, polls are spaced so that what
//! remains lasts until the reset. A poll books all its requests at once and
//! then fetches its pages back to back: the public feed moves every second, so
//! pages fetched apart no longer line up and the poll would see fewer events.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::telemetry::RateLimitWait;

#[derive(Debug, Default)]
pub struct RateBudget(Mutex<BudgetState>);

#[derive(Debug, Default)]
struct BudgetState {
    /// No request starts before this.
    next_allowed: Option<Instant>,
    /// Requests left in the current window, and when the window resets.
    quota: Option<(u64, Instant)>,
}

impl RateBudget {
    /// Takes in what a response said about the budget.
    pub fn observe(&self, remaining: u64, resets_in: Duration) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        state.quota = Some((remaining, Instant::now() + resets_in));
    }

    /// Waits until `requests` more requests (one poll's pages) fit the
    /// budget, and books them; says why and how long it waited, if it did.
    pub async fn acquire(&self, requests: u32) -> Option<(RateLimitWait, Duration)> {
        let now = Instant::now();
        let (wait, reason) = self.book(now, requests.max(1));
        if wait.is_zero() {
            return None;
        }
        tracing::debug!(
            wait_ms = wait.as_millis() as u64,
            ?reason,
            "waiting for the rate budget"
        );
        tokio::time::sleep_until(now + wait).await;
        Some((reason, wait))
    }

    /// How long after `now` the next `requests` may start, and why; books them.
    fn book(&self, now: Instant, requests: u32) -> (Duration, RateLimitWait) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut at = state.next_allowed.map_or(now, |next| next.max(now));
        let mut gap = Duration::ZERO;
        let mut reason = RateLimitWait::Pacing;
        match &mut state.quota {
            Some((_, reset_at)) if *reset_at <= at => state.quota = None,
            Some((0, reset_at)) => {
                at = *reset_at;
                reason = RateLimitWait::Exhausted;
                state.quota = None;
            }
            Some((remaining, reset_at)) => {
                let per_request = (*reset_at - at) / u32::try_from(*remaining).unwrap_or(u32::MAX);
                gap = per_request.saturating_mul(requests);
                *remaining = remaining.saturating_sub(u64::from(requests));
            }
            None => {}
        }
        state.next_allowed = Some(at + gap);
        (at - now, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn request_times(budget: &RateBudget, requests: usize) -> Vec<u64> {
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..requests {
            budget.acquire(1).await;
            times.push((Instant::now() - start).as_secs());
        }
        times
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_budget_does_not_wait() {
        assert_eq!(request_times(&RateBudget::default(), 5).await, [0; 5]);
    }

    /// 10 requests left for 100 s: one every 10 s, not 10 at once and then a stall.
    #[tokio::test(start_paused = true)]
    async fn remaining_requests_are_spread_until_the_reset() {
        let budget = RateBudget::default();
        budget.observe(10, Duration::from_secs(100));
        assert_eq!(request_times(&budget, 4).await, [0, 10, 20, 30]);
        assert_eq!(
            budget.acquire(1).await,
            Some((RateLimitWait::Pacing, Duration::from_secs(10)))
        );
    }

    /// An exhausted budget waits for the reset; after it, requests flow freely
    /// until a response says otherwise.
    #[tokio::test(start_paused = true)]
    async fn exhausted_budget_waits_for_the_reset() {
        let budget = RateBudget::default();
        budget.observe(0, Duration::from_secs(30));
        assert_eq!(
            budget.acquire(1).await,
            Some((RateLimitWait::Exhausted, Duration::from_secs(30)))
        );
        assert_eq!(request_times(&budget, 2).await, [0, 0]);
    }

    /// A poll of three pages books three requests: the next poll waits for
    /// all three requests' share of the budget, and none waits inside a poll.
    #[tokio::test(start_paused = true)]
    async fn a_poll_books_all_its_pages_at_once() {
        let budget = RateBudget::default();
        budget.observe(30, Duration::from_secs(300));
        let start = Instant::now();
        assert_eq!(
            budget.acquire(3).await,
            None,
            "the first poll starts at once"
        );
        // 3 of 30 requests over 300 s: the next poll may start 30 s later.
        assert_eq!(
            budget.acquire(3).await,
            Some((RateLimitWait::Pacing, Duration::from_secs(30)))
        );
        assert_eq!((Instant::now() - start).as_secs(), 30);
    }

    /// A fresh observation replaces the local count (the server knows best).
    #[tokio::test(start_paused = true)]
    async fn a_new_observation_replaces_the_old() {
        let budget = RateBudget::default();
        budget.observe(2, Duration::from_secs(60));
        assert_eq!(request_times(&budget, 1).await, [0]);
        budget.observe(1000, Duration::from_secs(1030));
        // The second request still honours the gap booked by the first (30 s);
        // the third is spaced by the new budget (1 s).
        assert_eq!(request_times(&budget, 2).await, [30, 31]);
    }
}
