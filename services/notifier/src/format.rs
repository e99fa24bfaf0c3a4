//! How numbers read in e-mails: `1,234 rows`, `152.34`, `0.000123`, `1.2346e+20`.

/// A count with thousands separators: `1234567` -> `1,234,567`.
pub fn count(n: u64) -> String {
    group_thousands(&n.to_string())
}

/// `1 row` / `12 rows`, with the count formatted.
pub fn rows(n: u64) -> String {
    format!("{} {}", count(n), if n == 1 { "row" } else { "rows" })
}

/// A statistic: whole numbers without decimals, others with about six significant digits (at
/// least two decimals below a million, so money reads as money), thousands separated; magnitudes
/// too large or too small for that in scientific notation. `None` (no value) is a dash.
pub fn stat(v: Option<f64>) -> String {
    let Some(v) = v else { return "-".to_string() };
    if !v.is_finite() {
        return v.to_string();
    }
    let abs = v.abs();
    if v == 0.0 {
        return "0".to_string();
    }
    if !(1e-4..1e15).contains(&abs) {
        return format!("{v:.4e}");
    }
    if v.fract() == 0.0 {
        return group_thousands(&format!("{v:.0}"));
    }
    let magnitude = abs.log10().floor() as i32;
    let decimals = (5 - magnitude).clamp(if abs < 1e6 { 2 } else { 0 }, 8) as usize;
    let text = format!("{v:.decimals$}");
    // Trailing zeros say nothing (2.50 -> 2.5), but keep two decimals at least when there are any.
    let text = match text.split_once('.') {
        Some((int, frac)) => {
            let trimmed = frac.trim_end_matches('0');
            let keep = if trimmed.is_empty() {
                ""
            } else if trimmed.len() < 2 {
                &frac[..2]
            } else {
                trimmed
            };
            if keep.is_empty() {
                int.to_string()
            } else {
                format!("{int}.{keep}")
            }
        }
        None => text,
    };
    group_thousands(&text)
}

/// A share as a percentage with one decimal: `0.1234` -> `12.3%`; tiny non-zero shares read
/// `<0.1%` rather than a misleading `0.0%`.
pub fn percent(part: u64, whole: u64) -> Option<String> {
    if whole == 0 {
        return None;
    }
    let p = part as f64 * 100.0 / whole as f64;
    Some(if part > 0 && p < 0.05 {
        "<0.1%".to_string()
    } else {
        format!("{p:.1}%")
    })
}

pub use sluice_spec::format::group_thousands;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_rows() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1234), "1,234");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(rows(1), "1 row");
        assert_eq!(rows(1234), "1,234 rows");
    }

    #[test]
    fn stats_read_sensibly() {
        assert_eq!(stat(None), "-");
        assert_eq!(stat(Some(0.0)), "0");
        assert_eq!(stat(Some(1500000.0)), "1,500,000");
        assert_eq!(stat(Some(152.341789)), "152.342");
        assert_eq!(stat(Some(2.5)), "2.50");
        assert_eq!(stat(Some(-3.25)), "-3.25");
        assert_eq!(stat(Some(1234567.891)), "1,234,568");
        assert_eq!(stat(Some(12345.678)), "12,345.68");
        assert_eq!(stat(Some(0.000123456)), "0.00012346");
        assert_eq!(stat(Some(0.1 + 0.2)), "0.30");
        assert_eq!(stat(Some(3.2e20)), "3.2000e20");
        assert_eq!(stat(Some(1.5e-7)), "1.5000e-7");
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(12, 1000).as_deref(), Some("1.2%"));
        assert_eq!(percent(1, 100_000).as_deref(), Some("<0.1%"));
        assert_eq!(percent(0, 10).as_deref(), Some("0.0%"));
        assert_eq!(percent(1, 0), None);
    }
}
