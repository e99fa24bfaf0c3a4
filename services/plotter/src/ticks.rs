//! Axis ticks and their labels: "nice" numeric steps (1, 2, 2.5, 5 x 10^k) and calendar-aligned
//! time steps (minutes, hours, days, Mondays, first of the month, January 1st).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime};

pub const SECONDS_PER_DAY: f64 = 86_400.0;

/// Tick positions for a numeric axis over `[lo, hi]`: at most `max_ticks` + 1 values that are
/// multiples of a round step. Returns the ticks and the step (which decides how labels are written).
pub fn nice_ticks(lo: f64, hi: f64, max_ticks: usize) -> (Vec<f64>, f64) {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        // A range wider than f64 can subtract, or no range at all: label its ends.
        let ends: Vec<f64> = [lo, hi].into_iter().filter(|v| v.is_finite()).collect();
        return (
            ends,
            if span.is_finite() && span > 0.0 {
                span
            } else {
                1.0
            },
        );
    }
    let max_ticks = max_ticks.max(1) as f64;
    let raw = span / max_ticks;
    let magnitude = 10f64.powi(raw.log10().floor() as i32);
    let step = [1.0, 2.0, 2.5, 5.0, 10.0, 20.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| span / step <= max_ticks + 1e-9)
        .unwrap_or(20.0 * magnitude);
    let first = (lo / step).ceil();
    let mut ticks = Vec::new();
    // Multiplying (rather than adding steps up) keeps 0.1 * 3 from drifting off the grid.
    for i in 0..=(max_ticks as usize + 1) {
        let t = (first + i as f64) * step;
        if t > hi + step * 1e-9 {
            break;
        }
        ticks.push(t);
    }
    (ticks, step)
}

/// Writes a tick value with as many decimals as the step needs, and thousands separators:
/// `1,250,000`, `0.25`, `-3.5`; very large or very small magnitudes use scientific notation.
pub fn format_number(v: f64, step: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let step = step.abs();
    if v.abs() >= 1e15 || (step > 0.0 && step < 1e-6) {
        return format!("{v:.3e}");
    }
    // Decimals needed so that consecutive ticks read differently (2.5 needs one, 0.25 two).
    let decimals = (0..=9)
        .find(|&d| {
            let scaled = step * 10f64.powi(d);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(9) as usize;
    let text = format!("{v:.decimals$}");
    let text = if text
        .trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        // -0.00 reads as a bug; it is zero.
        text.trim_start_matches('-').to_string()
    } else {
        text
    };
    group_thousands(&text)
}

pub use sluice_spec::format::group_thousands;

/// How time tick labels are written, from the coarsest to the finest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimeLabel {
    /// `2024-03-05`
    Day,
    /// `2024-03-05 14:30`
    Minute,
    /// `2024-03-05 14:30:15`
    Second,
    /// `14:30:15.250`
    Millis,
}

impl TimeLabel {
    /// The width of a label in characters, to decide how many fit side by side.
    pub fn chars(self) -> usize {
        match self {
            TimeLabel::Day => 10,
            TimeLabel::Minute => 16,
            TimeLabel::Second => 19,
            TimeLabel::Millis => 12,
        }
    }

    /// Writes `seconds` since 1970-01-01T00:00:00 (UTC, naive) as a label.
    pub fn format(self, seconds: f64) -> String {
        let Some(dt) = datetime_of(seconds) else {
            return format_number(seconds, 1.0);
        };
        let pattern = match self {
            TimeLabel::Day => "%Y-%m-%d",
            TimeLabel::Minute => "%Y-%m-%d %H:%M",
            TimeLabel::Second => "%Y-%m-%d %H:%M:%S",
            TimeLabel::Millis => "%H:%M:%S%.3f",
        };
        dt.format(pattern).to_string()
    }
}

fn datetime_of(seconds: f64) -> Option<NaiveDateTime> {
    if !seconds.is_finite() {
        return None;
    }
    let whole = seconds.floor();
    // Round to the millisecond first so 0.9999999 reads as the next second, not 999 ms.
    let millis = ((seconds - whole) * 1000.0).round() as i64;
    let dt = DateTime::from_timestamp(whole as i64, 0)?.naive_utc();
    dt.checked_add_signed(chrono::Duration::milliseconds(millis))
}

fn seconds_of(dt: NaiveDateTime) -> f64 {
    dt.and_utc().timestamp() as f64
}

/// A tick step on a time axis.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TimeStep {
    /// A fixed number of seconds, aligned to the epoch (midnight UTC for whole days).
    Seconds(f64),
    /// Whole weeks, aligned to Mondays.
    Weeks(i64),
    /// The first of every n-th month (months counted from January of year 0).
    Months(i32),
    /// January 1st of every n-th year.
    Years(i32),
}

impl TimeStep {
    fn approx_seconds(self) -> f64 {
        match self {
            TimeStep::Seconds(s) => s,
            TimeStep::Weeks(n) => n as f64 * 7.0 * SECONDS_PER_DAY,
            TimeStep::Months(n) => f64::from(n) * 30.44 * SECONDS_PER_DAY,
            TimeStep::Years(n) => f64::from(n) * 365.25 * SECONDS_PER_DAY,
        }
    }

    fn label(self) -> TimeLabel {
        match self {
            TimeStep::Seconds(s) if s < 60.0 => TimeLabel::Second,
            TimeStep::Seconds(s) if s < SECONDS_PER_DAY => TimeLabel::Minute,
            _ => TimeLabel::Day,
        }
    }

    /// Every tick in `[lo, hi]`, or `None` when there would be more than `limit`.
    fn ticks(self, lo: f64, hi: f64, limit: usize) -> Option<Vec<f64>> {
        let mut out = Vec::new();
        let mut push = |t: f64| {
            if t >= lo && t <= hi {
                out.push(t);
            }
            out.len() <= limit
        };
        match self {
            TimeStep::Seconds(step) => {
                let first = (lo / step).ceil();
                for i in 0_i32.. {
                    let t = (first + f64::from(i)) * step;
                    if t > hi || !push(t) {
                        break;
                    }
                }
            }
            TimeStep::Weeks(n) => {
                // 1970-01-05 was a Monday.
                let step = n as f64 * 7.0 * SECONDS_PER_DAY;
                let monday = 4.0 * SECONDS_PER_DAY;
                let first = ((lo - monday) / step).ceil();
                for i in 0_i32.. {
                    let t = monday + (first + f64::from(i)) * step;
                    if t > hi || !push(t) {
                        break;
                    }
                }
            }
            TimeStep::Months(n) => {
                let start = datetime_of(lo)?;
                let mut m = (start.year() * 12 + start.month0() as i32).div_euclid(n) * n;
                loop {
                    let date =
                        NaiveDate::from_ymd_opt(m.div_euclid(12), m.rem_euclid(12) as u32 + 1, 1)?;
                    let t = seconds_of(date.and_hms_opt(0, 0, 0)?);
                    if t > hi || !push(t) {
                        break;
                    }
                    m += n;
                }
            }
            TimeStep::Years(n) => {
                let start = datetime_of(lo)?;
                let mut y = start.year().div_euclid(n) * n;
                loop {
                    let date = NaiveDate::from_ymd_opt(y, 1, 1)?;
                    let t = seconds_of(date.and_hms_opt(0, 0, 0)?);
                    if t > hi || !push(t) {
                        break;
                    }
                    y = y.checked_add(n)?;
                }
            }
        }
        (out.len() <= limit).then_some(out)
    }
}

/// The steps a time axis may use, finest first.
fn time_steps() -> Vec<TimeStep> {
    let mut steps: Vec<TimeStep> = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, // seconds
        60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, // minutes
        3600.0, 7200.0, 10800.0, 21600.0, 43200.0, // hours
        86400.0, 172800.0, // days
    ]
    .into_iter()
    .map(TimeStep::Seconds)
    .collect();
    steps.extend([TimeStep::Weeks(1), TimeStep::Weeks(2)]);
    steps.extend([1, 2, 3, 6].map(TimeStep::Months));
    let mut n = 1;
    while n <= 100_000 {
        steps.extend([n, 2 * n, 5 * n].map(TimeStep::Years));
        n *= 10;
    }
    steps
}

/// Tick positions for a time axis over `[lo, hi]` (seconds since the epoch): the finest
/// calendar-aligned step whose labels fit side by side in `axis_px` pixels, given a label font
/// whose characters are about `char_px` wide. `whole_days` keeps steps of at least a day (for
/// date columns, which have no time of day).
pub fn time_ticks(
    lo: f64,
    hi: f64,
    axis_px: f64,
    char_px: f64,
    whole_days: bool,
) -> (Vec<f64>, TimeLabel) {
    let span = hi - lo;
    let fits = |label: TimeLabel| {
        // Room for the label plus a gap of two characters.
        ((axis_px / ((label.chars() + 2) as f64 * char_px)).floor() as usize).max(2)
    };
    if span.is_finite() && span > 0.0 {
        for step in time_steps() {
            if whole_days && step.approx_seconds() < SECONDS_PER_DAY {
                continue;
            }
            let limit = fits(step.label());
            // Skip steps that are clearly too fine before generating anything.
            if span / step.approx_seconds() > (limit + 2) as f64 {
                continue;
            }
            if let Some(ticks) = step.ticks(lo, hi, limit)
                && ticks.len() >= 2.min(limit)
            {
                return (ticks, step.label());
            }
        }
        // Under a second, or a step table exhausted: round numbers of seconds.
        if span < 2.0 {
            let (ticks, _) = nice_ticks(lo, hi, fits(TimeLabel::Millis));
            return (ticks, TimeLabel::Millis);
        }
    }
    let (ticks, _) = nice_ticks(lo, hi, fits(TimeLabel::Day));
    (ticks, TimeLabel::Day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> f64 {
        seconds_of(
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
        )
    }

    #[test]
    fn nice_numeric_ticks() {
        let (t, step) = nice_ticks(0.0, 10.0, 5);
        assert_eq!((t, step), (vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0], 2.0));
        let (t, step) = nice_ticks(0.13, 0.91, 8);
        assert!((step - 0.1).abs() < 1e-12, "{step}");
        assert_eq!(t.len(), 8);
        assert_eq!(format_number(t[0], step), "0.2");
        let (t, step) = nice_ticks(-1234.0, 98765.0, 6);
        assert_eq!(step, 20000.0);
        assert_eq!(t, vec![0.0, 20000.0, 40000.0, 60000.0, 80000.0]);
        // Degenerate ranges do not panic.
        assert_eq!(nice_ticks(5.0, 5.0, 5).0, vec![5.0, 5.0]);
        assert_eq!(nice_ticks(-f64::MAX, f64::MAX, 5).0.len(), 2);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(format_number(1250000.0, 250000.0), "1,250,000");
        assert_eq!(format_number(0.25, 0.05), "0.25");
        assert_eq!(format_number(2.5, 2.5), "2.5");
        assert_eq!(format_number(-3.0, 1.0), "-3");
        assert_eq!(format_number(-0.0000001, 0.5), "0.0");
        assert_eq!(format_number(3e20, 1e20), "3.000e20");
        assert_eq!(group_thousands("-1234567.125"), "-1,234,567.125");
        assert_eq!(group_thousands("123"), "123");
    }

    #[test]
    fn a_year_of_days_gets_monthly_ticks() {
        let (t, label) = time_ticks(day("2023-01-01"), day("2023-12-31"), 1000.0, 9.0, true);
        assert_eq!(label, TimeLabel::Day);
        let labels: Vec<String> = t.iter().map(|&s| label.format(s)).collect();
        // 1000 px fits 8 date labels: monthly would need 12, so every second month.
        assert_eq!(
            labels,
            [
                "2023-01-01",
                "2023-03-01",
                "2023-05-01",
                "2023-07-01",
                "2023-09-01",
                "2023-11-01"
            ]
        );
    }

    #[test]
    fn a_few_hours_get_minute_labels() {
        let lo = day("2024-03-05") + 9.0 * 3600.0 + 7.0 * 60.0;
        let hi = lo + 5.0 * 3600.0;
        let (t, label) = time_ticks(lo, hi, 1000.0, 9.0, false);
        assert_eq!(label, TimeLabel::Minute);
        assert_eq!(label.format(t[0]), "2024-03-05 10:00");
        assert!(t.len() >= 3 && t.len() <= 6, "{t:?}");
        assert!(t.windows(2).all(|w| w[1] - w[0] == 3600.0), "{t:?}");
    }

    #[test]
    fn dates_never_get_sub_day_ticks() {
        let (t, label) = time_ticks(day("2024-03-05"), day("2024-03-07"), 1000.0, 9.0, true);
        assert_eq!(label, TimeLabel::Day);
        assert_eq!(
            t,
            vec![day("2024-03-05"), day("2024-03-06"), day("2024-03-07")]
        );
    }

    #[test]
    fn weeks_start_on_monday_and_centuries_work() {
        let (t, _) = time_ticks(day("2024-01-01"), day("2024-03-01"), 1000.0, 9.0, true);
        for s in &t {
            let d = datetime_of(*s).unwrap();
            assert_eq!(d.weekday(), chrono::Weekday::Mon, "{d}");
        }
        let (t, label) = time_ticks(day("1900-06-01"), day("2100-01-01"), 1000.0, 9.0, true);
        assert_eq!(label.format(t[0]), "1950-01-01");
        assert!(t.len() <= 7);
    }

    #[test]
    fn sub_second_spans_use_milliseconds() {
        let lo = day("2024-03-05") + 0.1;
        let (t, label) = time_ticks(lo, lo + 0.5, 1000.0, 9.0, false);
        assert_eq!(label, TimeLabel::Millis);
        assert!(t.len() >= 3);
        assert_eq!(label.format(lo), "00:00:00.100");
    }
}
