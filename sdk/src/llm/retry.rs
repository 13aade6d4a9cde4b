//! When and how long to wait before trying a failed request again.
//!
//! The loop that uses this lives in [`super::http`]; this file is the pure
//! policy so it can be tested without a clock or a server.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use super::ProviderError;

/// Exponential backoff with jitter, capped, that defers to the server's
/// `Retry-After` when it sent one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first retry (doubled for each further retry).
    pub initial: Duration,
    /// The longest computed wait.
    pub max: Duration,
    /// The longest `Retry-After` honoured; a server asking for more gets
    /// this much (the run has its own deadline).
    pub max_retry_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (0 for the first retry) after
    /// `error`: the server's `Retry-After` (capped) when present, otherwise
    /// `initial * 2^retry` capped at `max`, with "equal jitter" (a random
    /// point in the upper half) so that many Pods hitting one rate limit do
    /// not retry in lockstep.
    pub fn delay(&self, retry: u32, error: &ProviderError) -> Duration {
        if let Some(after) = error.retry_after {
            return after.min(self.max_retry_after);
        }
        let full = self
            .initial
            .saturating_mul(2u32.saturating_pow(retry.min(31)))
            .min(self.max);
        let half = full / 2;
        half + half.mul_f64(random_unit())
    }
}

/// A random number in `[0, 1)`. `RandomState` is seeded per instance from
/// the OS, which is plenty for jitter and needs no extra dependency.
fn random_unit() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ErrorKind;

    #[test]
    fn grows_exponentially_within_jitter_and_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(60),
        };
        let e = ProviderError::new(ErrorKind::Server, "x");
        for (retry, full) in [
            (0, 100),
            (1, 200),
            (2, 400),
            (3, 800),
            (4, 1000),
            (40, 1000),
        ] {
            for _ in 0..20 {
                let d = b.delay(retry, &e).as_millis();
                assert!(d >= full / 2 && d <= full, "retry {retry}: {d}ms");
            }
        }
    }

    #[test]
    fn retry_after_wins_and_is_capped() {
        let b = Backoff::default();
        let mut e = ProviderError::new(ErrorKind::RateLimit, "x");
        e.retry_after = Some(Duration::from_secs(3));
        assert_eq!(b.delay(0, &e), Duration::from_secs(3));
        e.retry_after = Some(Duration::from_secs(3600));
        assert_eq!(b.delay(5, &e), Duration::from_secs(60));
    }

    #[test]
    fn jitter_is_in_unit_range() {
        for _ in 0..100 {
            let r = random_unit();
            assert!((0.0..1.0).contains(&r));
        }
    }
}
