//! Latency samples and their summary, shared by every benchmark.

use std::time::Duration;

/// The summary of one series of latency samples.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest sample.
    pub max: Duration,
    /// Arithmetic mean.
    pub mean: Duration,
}

impl Summary {
    /// Summarises `samples` (nearest-rank percentiles). `None` when empty.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_unstable();
        let n = s.len();
        let total: Duration = s.iter().sum();
        Some(Self {
            n,
            p50: percentile(&s, 0.50),
            p99: percentile(&s, 0.99),
            max: s[n - 1],
            mean: total / u32::try_from(n).unwrap_or(u32::MAX),
        })
    }
}

/// Nearest-rank percentile of sorted, non-empty samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let n = sorted.len();
    let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}

/// A duration in the unit that keeps it readable: µs below 10 ms, ms above.
pub fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10_000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.1} ms", us / 1000.0)
    }
}

/// `a / b` as a ratio such as `1.8×`.
pub fn fmt_ratio(a: Duration, b: Duration) -> String {
    if b.is_zero() {
        return "n/a".into();
    }
    format!("{:.1}×", a.as_secs_f64() / b.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let s: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let sum = Summary::of(&s).unwrap();
        assert_eq!(sum.p50, Duration::from_micros(50));
        assert_eq!(sum.p99, Duration::from_micros(99));
        assert_eq!(sum.max, Duration::from_micros(100));
        assert_eq!(sum.n, 100);
        assert!(Summary::of(&[]).is_none());
        let one = Summary::of(&[Duration::from_millis(3)]).unwrap();
        assert_eq!(one.p99, Duration::from_millis(3));
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_duration(Duration::from_micros(42)), "42.0 µs");
        assert_eq!(fmt_duration(Duration::from_millis(51)), "51.0 ms");
        assert_eq!(
            fmt_ratio(Duration::from_micros(30), Duration::from_micros(20)),
            "1.5×"
        );
    }
}
