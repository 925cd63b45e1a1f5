//! Exponential backoff with jitter, for a feed's consecutive failures.

use std::time::Duration;

/// Exponential backoff with jitter for consecutive failures.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            failures: 0,
        }
    }

    /// The wait after one more failure: `base * 2^failures`, capped at `max`, then
    /// jittered down by up to half so that many clients do not retry in step.
    pub fn next_wait(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(self.failures))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        ceiling.mul_f64(1.0 - fastrand::f64() / 2.0)
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let base = Duration::from_secs(2);
        let max = Duration::from_secs(60);
        let mut backoff = Backoff::new(base, max);
        let ceilings = [2, 4, 8, 16, 32, 60, 60, 60];
        for ceiling in ceilings {
            let wait = backoff.next_wait();
            let ceiling = Duration::from_secs(ceiling);
            assert!(
                wait <= ceiling && wait >= ceiling / 2,
                "{wait:?} vs {ceiling:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_wait() <= base);
    }
}
