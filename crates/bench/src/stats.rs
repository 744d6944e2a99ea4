//! Small statistics over benchmark samples: percentiles of sorted latencies and the median/min/max of repetitions.

use serde::Serialize;

/// Median, minimum and maximum of one metric over the repetitions of a benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// The spread of `values`, or `None` when there are none. NaN values are ignored.
pub fn spread(values: &[f64]) -> Option<Spread> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    let (first, last) = (*sorted.first()?, *sorted.last()?);
    let middle = sorted.len() / 2;
    // With an even count the median is the mean of the two middle values.
    let median = if sorted.len() % 2 == 0 {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    };
    Some(Spread { median, min: first, max: last })
}

/// A duration in milliseconds.
pub fn millis(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// The median of `values` (see [`spread`]); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    spread(values).map_or(0.0, |s| s.median)
}

/// The nearest-rank percentile of an ascending slice: the smallest value with at least `fraction` of the samples at
/// or below it. `fraction` is clamped to `0.0..=1.0`; `None` for an empty slice.
pub fn percentile(sorted: &[u64], fraction: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let fraction = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
    // Precision: sample counts stay far below 2^52, so the f64 rank is exact.
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    let index = rank.saturating_sub(1).min(sorted.len() - 1);
    Some(sorted[index])
}

/// Latency percentiles of one load run, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl LatencySummary {
    /// Summarise latencies given in nanoseconds, in ascending order; `None` when there are none.
    pub fn from_sorted_nanos(sorted: &[u64]) -> Option<Self> {
        let micros = |fraction| percentile(sorted, fraction).map(|ns| ns as f64 / 1_000.0);
        Some(LatencySummary {
            p50_us: micros(0.50)?,
            p90_us: micros(0.90)?,
            p99_us: micros(0.99)?,
            max_us: micros(1.0)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_odd_count_takes_the_middle_value() {
        let got = spread(&[5.0, 1.0, 3.0]);
        assert_eq!(got, Some(Spread { median: 3.0, min: 1.0, max: 5.0 }));
    }

    #[test]
    fn spread_of_even_count_averages_the_two_middle_values() {
        let got = spread(&[4.0, 1.0, 2.0, 10.0]);
        assert_eq!(got, Some(Spread { median: 3.0, min: 1.0, max: 10.0 }));
    }

    #[test]
    fn spread_ignores_nan_and_is_none_when_nothing_is_left() {
        assert_eq!(spread(&[]), None);
        assert_eq!(spread(&[f64::NAN]), None);
        assert_eq!(spread(&[f64::NAN, 7.0]), Some(Spread { median: 7.0, min: 7.0, max: 7.0 }));
    }

    #[test]
    fn percentile_uses_nearest_rank() {
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 0.50), Some(50));
        assert_eq!(percentile(&sorted, 0.99), Some(99));
        assert_eq!(percentile(&sorted, 0.991), Some(100));
        assert_eq!(percentile(&sorted, 1.0), Some(100));
        assert_eq!(percentile(&sorted, 0.0), Some(1));
    }

    #[test]
    fn percentile_handles_small_and_out_of_range_inputs() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[42], 0.99), Some(42));
        assert_eq!(percentile(&[1, 2, 3], 7.0), Some(3));
        assert_eq!(percentile(&[1, 2, 3], -1.0), Some(1));
        assert_eq!(percentile(&[1, 2, 3], f64::NAN), Some(1));
    }

    #[test]
    fn latency_summary_converts_nanoseconds_to_microseconds() {
        let sorted: Vec<u64> = (1..=1000).map(|i| i * 1_000).collect();
        let summary = LatencySummary::from_sorted_nanos(&sorted);
        assert_eq!(
            summary,
            Some(LatencySummary { p50_us: 500.0, p90_us: 900.0, p99_us: 990.0, max_us: 1000.0 })
        );
        assert_eq!(LatencySummary::from_sorted_nanos(&[]), None);
    }
}
