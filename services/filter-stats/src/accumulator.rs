//! One pass, constant memory, numerically stable column statistics.
//!
//! - The sum is Neumaier's improved Kahan summation: the rounding error of every addition is kept
//!   in a second term, so values of mixed magnitudes (`1e16 + 1 - 1e16`) sum correctly.
//! - The variance is Welford's update, on values shifted by the first value. Welford alone keeps a
//!   running mean whose rounding error (an ulp of the offset: 1.2e-7 at 1e9) feeds every later
//!   update, which costs digits when the spread is tiny next to the offset (1e9 + noise). Shifting
//!   by a sample value makes the numbers Welford sees as small as the spread. The first value is
//!   within `sqrt(n - 1)` standard deviations of the mean, so the shift never hurts.
//! - The mean is the compensated sum divided by the count. Welford's running mean cannot
//!   recover from cancellation (for `[1e16, 1, -1e16]` it gives 0 instead of 1/3); the compensated
//!   sum can, and is as accurate as Welford's mean everywhere else.

use sluice_proto::ColumnStats;

#[derive(Debug, Clone, Default)]
pub struct StatsAccumulator {
    count: u64,
    /// The first value: every value is shifted by it before the Welford update.
    shift: f64,
    /// Welford's running mean and sum of squared deviations of the shifted values.
    shifted_mean: f64,
    m2: f64,
    /// Neumaier sum: the running sum and the compensation for its rounding errors.
    sum: f64,
    compensation: f64,
    min: f64,
    max: f64,
}

impl StatsAccumulator {
    pub fn new() -> Self {
        StatsAccumulator::default()
    }

    /// Adds one (finite) value.
    pub fn push(&mut self, x: f64) {
        if self.count == 0 {
            self.shift = x;
            self.min = x;
            self.max = x;
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.count += 1;

        let y = x - self.shift;
        let delta = y - self.shifted_mean;
        self.shifted_mean += delta / self.count as f64;
        self.m2 += delta * (y - self.shifted_mean);

        let t = self.sum + x;
        self.compensation += if self.sum.abs() >= x.abs() {
            (self.sum - t) + x
        } else {
            (x - t) + self.sum
        };
        self.sum = t;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The statistics so far: mean, min and max are `None` without values, the sample standard
    /// deviation is `None` with fewer than two. Results can be infinite when the values are near
    /// the limits of `f64` (the caller decides what that means).
    pub fn finish(&self) -> ColumnStats {
        let sum = self.sum + self.compensation;
        let n = self.count as f64;
        let (mean, min, max) = if self.count == 0 {
            (None, None, None)
        } else {
            // Rounding must not put the mean outside the values it summarises.
            (
                Some((sum / n).clamp(self.min, self.max)),
                Some(self.min),
                Some(self.max),
            )
        };
        let stddev = (self.count >= 2).then(|| (self.m2.max(0.0) / (n - 1.0)).sqrt());
        ColumnStats {
            count: self.count,
            mean,
            min,
            max,
            sum,
            stddev,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shewchuk's exact summation, as Python's `math.fsum`: the partials hold the exact sum, and
    /// the result is that sum correctly rounded.
    fn fsum(values: impl IntoIterator<Item = f64>) -> f64 {
        let mut partials: Vec<f64> = Vec::new();
        for mut x in values {
            let mut kept = 0;
            for j in 0..partials.len() {
                let mut y = partials[j];
                if x.abs() < y.abs() {
                    std::mem::swap(&mut x, &mut y);
                }
                let hi = x + y;
                let lo = y - (hi - x);
                if lo != 0.0 {
                    partials[kept] = lo;
                    kept += 1;
                }
                x = hi;
            }
            partials.truncate(kept);
            partials.push(x);
        }
        // Add the partials from the top; stop at the first inexact addition and fix a rounding
        // of half an ulp the way CPython's fsum does.
        let Some(mut hi) = partials.pop() else {
            return 0.0;
        };
        let mut lo = 0.0;
        while let Some(y) = partials.pop() {
            let x = hi;
            hi = x + y;
            lo = y - (hi - x);
            if lo != 0.0 {
                break;
            }
        }
        if let Some(&next) = partials.last()
            && ((lo < 0.0 && next < 0.0) || (lo > 0.0 && next > 0.0))
        {
            let y = lo * 2.0;
            let x = hi + y;
            if y == x - hi {
                hi = x;
            }
        }
        hi
    }

    /// The reference, in two passes (so none of the one-pass updates under test): the mean from
    /// an exact sum, then the corrected two-pass sum of squares `S(d^2) - S(d)^2 / n` with
    /// `d = x - mean`, both sums exact. The correction removes the error the rounded mean
    /// leaves (it matters when the spread is a few hundred ulps of the mean).
    fn reference(values: &[f64]) -> (f64, f64, Option<f64>) {
        let n = values.len() as f64;
        let sum = fsum(values.iter().copied());
        let mean = sum / n;
        let d = fsum(values.iter().map(|x| x - mean));
        let var = (fsum(values.iter().map(|x| (x - mean) * (x - mean))) - d * d / n) / (n - 1.0);
        (sum, mean, (values.len() >= 2).then(|| var.sqrt()))
    }

    fn stats_of(values: &[f64]) -> ColumnStats {
        let mut acc = StatsAccumulator::new();
        for &x in values {
            acc.push(x);
        }
        acc.finish()
    }

    fn assert_close(what: &str, got: f64, want: f64, rel: f64) {
        let tolerance = rel * want.abs().max(f64::MIN_POSITIVE);
        assert!(
            (got - want).abs() <= tolerance,
            "{what}: got {got:e}, want {want:e} (relative error {:e})",
            ((got - want) / want).abs()
        );
    }

    fn check_against_reference(values: &[f64]) {
        let s = stats_of(values);
        let (sum, mean, stddev) = reference(values);
        assert_eq!(s.count, values.len() as u64);
        assert_close("sum", s.sum, sum, 1e-12);
        assert_close("mean", s.mean.unwrap(), mean, 1e-12);
        assert_close("stddev", s.stddev.unwrap(), stddev.unwrap(), 1e-9);
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!((s.min, s.max), (Some(min), Some(max)));
    }

    /// A deterministic pseudo-random stream in [0, 1), so failures reproduce.
    fn noise(seed: u64) -> impl Iterator<Item = f64> {
        let mut state = seed;
        std::iter::repeat_with(move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        })
    }

    #[test]
    fn empty_and_single_values() {
        let s = StatsAccumulator::new().finish();
        assert_eq!(
            s,
            ColumnStats {
                count: 0,
                mean: None,
                min: None,
                max: None,
                sum: 0.0,
                stddev: None
            }
        );
        let s = stats_of(&[-2.5]);
        assert_eq!(
            s,
            ColumnStats {
                count: 1,
                mean: Some(-2.5),
                min: Some(-2.5),
                max: Some(-2.5),
                sum: -2.5,
                stddev: None
            }
        );
    }

    #[test]
    fn small_exact_case() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sum of squared deviations 32, sample variance 32/7.
        let s = stats_of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(s.count, 8);
        assert_eq!(s.sum, 40.0);
        assert_eq!(s.mean, Some(5.0));
        assert_close("stddev", s.stddev.unwrap(), (32.0f64 / 7.0).sqrt(), 1e-15);
        assert_eq!((s.min, s.max), (Some(2.0), Some(9.0)));
    }

    #[test]
    fn constant_values_have_zero_spread() {
        let s = stats_of(&[1e9 + 0.1; 1000]);
        assert_eq!(s.stddev, Some(0.0));
        assert_eq!(s.mean, Some(1e9 + 0.1));
    }

    #[test]
    fn large_offset_with_small_noise() {
        // The textbook failure of the naive formula (sum of squares - n * mean^2) and a hard case
        // for plain Welford: a spread of 1e-3 on an offset of 1e9.
        for (offset, scale) in [(1e9, 1.0), (1e9, 1e-3), (-3e12, 0.5), (1e15, 8.0)] {
            let values: Vec<f64> = noise(7).take(100_000).map(|u| offset + scale * u).collect();
            check_against_reference(&values);
        }
    }

    #[test]
    fn large_offset_with_the_outlier_first() {
        let mut values: Vec<f64> = vec![0.0];
        values.extend(noise(3).take(50_000).map(|u| 1e9 + u));
        check_against_reference(&values);
    }

    #[test]
    fn mixed_magnitudes() {
        // Naive summation loses the small values next to the large ones.
        let values = [1e16, 1.0, -1e16, 3.0, 1e-3, 2e20, -2e20, 7.5];
        let s = stats_of(&values);
        assert_eq!(s.sum, fsum(values));
        assert_close("mean", s.mean.unwrap(), fsum(values) / 8.0, 1e-15);
        check_against_reference(&values);

        let values: Vec<f64> = noise(11)
            .take(20_000)
            .enumerate()
            .map(|(i, u)| (u - 0.5) * 10f64.powi((i % 25) as i32 - 8))
            .collect();
        check_against_reference(&values);
    }

    #[test]
    fn cancellation_keeps_the_mean() {
        let s = stats_of(&[1e16, 1.0, -1e16]);
        assert_eq!(s.sum, 1.0);
        assert_close("mean", s.mean.unwrap(), 1.0 / 3.0, 1e-15);
    }

    #[test]
    fn integers_beyond_f64_precision_stay_close() {
        // i64 values above 2^53 round when converted; the statistics stay within 1e-12.
        let values: Vec<f64> = (0..1000)
            .map(|i| (i64::MAX - i * 1_000_003) as f64)
            .collect();
        check_against_reference(&values);
    }
}
