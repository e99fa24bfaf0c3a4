//! Column types and the values they hold.
//!
//! The validator parses raw text with a column's formats ([`parse_raw`]) and writes every valid value
//! in one canonical form ([`write_canonical`]); the later stages read that form back with
//! [`parse_canonical`]. In canonical CSV an empty field is null.

use std::fmt::Write as _;

use chrono::format::{Item, ParseErrorKind, Parsed, StrftimeItems};
use chrono::{DateTime, Datelike, Month, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde::{Deserialize, Serialize};

/// The types a column can be declared with (`type = "..."` in the dataset spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    String,
    Integer,
    Float,
    Boolean,
    Date,
    Datetime,
}

impl ColumnType {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::String => "string",
            ColumnType::Integer => "integer",
            ColumnType::Float => "float",
            ColumnType::Boolean => "boolean",
            ColumnType::Date => "date",
            ColumnType::Datetime => "datetime",
        }
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnType::Integer | ColumnType::Float)
    }

    pub fn is_temporal(self) -> bool {
        matches!(self, ColumnType::Date | ColumnType::Datetime)
    }

    /// The formats tried, in order, when a date or datetime column declares none.
    pub fn default_formats(self) -> &'static [&'static str] {
        match self {
            ColumnType::Date => &["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"],
            ColumnType::Datetime => &[
                "%Y-%m-%dT%H:%M:%S%.f%:z",
                "%Y-%m-%dT%H:%M:%S%.fZ",
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
                "%Y-%m-%d %H:%M",
            ],
            _ => &[],
        }
    }
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One typed value. Datetimes are naive; a value with an offset is converted to UTC.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Str(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(NaiveDate),
    Datetime(NaiveDateTime),
}

impl Value<'_> {
    /// The value as a number, for stats and charts (dates are days since 1970-01-01, datetimes
    /// seconds since 1970-01-01T00:00:00).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            Value::Date(d) => Some(days_since_epoch(d) as f64),
            Value::Datetime(dt) => Some(
                dt.and_utc().timestamp() as f64
                    + f64::from(dt.and_utc().timestamp_subsec_nanos()) / 1e9,
            ),
            _ => None,
        }
    }

    /// The start of the value as a datetime, for filter windows and partitions.
    pub fn as_datetime(&self) -> Option<NaiveDateTime> {
        match *self {
            Value::Date(d) => Some(d.and_time(NaiveTime::MIN)),
            Value::Datetime(dt) => Some(dt),
            _ => None,
        }
    }
}

pub fn days_since_epoch(d: NaiveDate) -> i32 {
    // 1970-01-01 is day 719,163 counted from 0001-01-01 as day 1 (what `num_days_from_ce` counts);
    // this runs once per date value, so no subtraction of two dates and no duration.
    d.num_days_from_ce() - 719_163
}

/// Why a raw value does not fit its column's type (the validator adds the column name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMismatch(pub String);

/// Parses booleans the way spreadsheets and databases write them.
pub fn parse_bool(s: &str) -> Option<bool> {
    const TRUE: [&str; 5] = ["true", "t", "yes", "y", "1"];
    const FALSE: [&str; 5] = ["false", "f", "no", "n", "0"];
    // Case-insensitive without lowercasing into a new string: this runs once per boolean field.
    if TRUE.iter().any(|t| t.eq_ignore_ascii_case(s)) {
        Some(true)
    } else if FALSE.iter().any(|f| f.eq_ignore_ascii_case(s)) {
        Some(false)
    } else {
        None
    }
}

/// A date or datetime in one format: the common ISO layouts through fixed-position parsers first
/// (chrono interprets the format string for every value, which showed in profiles), everything else,
/// and any value those do not take, through chrono. The fast paths accept only what chrono accepts,
/// with the same result (tested against chrono).
fn parse_date_with(raw: &str, format: &str) -> Option<NaiveDate> {
    if format == "%Y-%m-%d"
        && let Some(d) = parse_iso_date(raw)
    {
        return Some(d);
    }
    NaiveDate::parse_from_str(raw, format).ok()
}

fn parse_datetime_fast(raw: &str, format: &str) -> Option<NaiveDateTime> {
    let separator = match format {
        "%Y-%m-%dT%H:%M:%S" => b'T',
        "%Y-%m-%d %H:%M:%S" => b' ',
        _ => return None,
    };
    parse_iso_datetime_seconds_sep(raw, separator)
}

/// Parses a raw (already trimmed, non-null) field as `ty`, trying `formats` in order for dates and
/// datetimes. Strings are returned as they are.
pub fn parse_raw<'a>(
    ty: ColumnType,
    raw: &'a str,
    formats: &[String],
) -> Result<Value<'a>, TypeMismatch> {
    match ty {
        ColumnType::String => Ok(Value::Str(raw)),
        ColumnType::Integer => raw
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| TypeMismatch(format!("{raw:?} is not an integer"))),
        ColumnType::Float => match raw.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            Ok(_) => Err(TypeMismatch(format!("{raw:?} is not a finite number"))),
            Err(_) => Err(TypeMismatch(format!("{raw:?} is not a number"))),
        },
        ColumnType::Boolean => parse_bool(raw).map(Value::Bool).ok_or_else(|| {
            TypeMismatch(format!(
                "{raw:?} is not a boolean (true/false, yes/no, 1/0)"
            ))
        }),
        ColumnType::Date => formats
            .iter()
            .find_map(|f| parse_date_with(raw, f))
            .map(Value::Date)
            .ok_or_else(|| {
                TypeMismatch(no_such_day(raw, formats).unwrap_or_else(|| {
                    format!("{raw:?} is not a date in any of the formats {formats:?}")
                }))
            }),
        ColumnType::Datetime => formats
            .iter()
            .find_map(|f| parse_datetime_fast(raw, f).or_else(|| parse_datetime_with(raw, f)))
            .map(Value::Datetime)
            .ok_or_else(|| {
                TypeMismatch(no_such_day(raw, formats).unwrap_or_else(|| {
                    format!("{raw:?} is not a datetime in any of the formats {formats:?}")
                }))
            }),
    }
}

/// Why `raw` failed when it has the shape of one of `formats`, with every field in its own range, and
/// names a day its month does not have (`2024-02-30`): chrono reads it whole, then finds no such date.
/// `None` for every other failure (a wrong shape, a month 13, a weekday that does not match...).
fn no_such_day(raw: &str, formats: &[String]) -> Option<String> {
    formats.iter().find_map(|format| {
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, raw, StrftimeItems::new(format)).ok()?;
        let err = parsed.to_naive_date().err()?;
        if !matches!(
            err.kind(),
            ParseErrorKind::OutOfRange | ParseErrorKind::Impossible
        ) {
            return None;
        }
        let year = match (parsed.year(), parsed.year_div_100(), parsed.year_mod_100()) {
            (Some(y), _, _) => y,
            (None, Some(q), Some(r)) => q.checked_mul(100)?.checked_add(r)?,
            // chrono's reading of a two-digit year.
            (None, None, Some(r)) => r + if r < 70 { 2000 } else { 1900 },
            _ => return None,
        };
        let (month, day) = (parsed.month()?, parsed.day()?);
        let days = days_in_month(year, month)?;
        let month_name = Month::try_from(u8::try_from(month).ok()?).ok()?.name();
        (day > days).then(|| {
            format!("{raw:?} is not a day of the calendar ({month_name} {year} has {days} days)")
        })
    })
}

/// 28 to 31; `None` for a month or year chrono cannot represent.
fn days_in_month(year: i32, month: u32) -> Option<u32> {
    NaiveDate::from_ymd_opt(year, month, 1)?;
    (28..=31)
        .rev()
        .find(|&d| NaiveDate::from_ymd_opt(year, month, d).is_some())
}

fn parse_datetime_with(raw: &str, format: &str) -> Option<NaiveDateTime> {
    if format_has_offset(format) {
        DateTime::parse_from_str(raw, format)
            .ok()
            .map(|dt| dt.naive_utc())
    } else {
        NaiveDateTime::parse_from_str(raw, format).ok()
    }
}

fn format_has_offset(format: &str) -> bool {
    ["%z", "%:z", "%::z", "%#z"]
        .iter()
        .any(|z| format.contains(z))
}

/// Checks a chrono format for a column type: it must parse as strftime, and a value formatted with
/// it must parse back (so a date format names year, month and day).
pub fn check_format(ty: ColumnType, format: &str) -> Result<(), String> {
    if StrftimeItems::new(format).any(|i| matches!(i, Item::Error)) {
        return Err(format!(
            "{format:?} is not a valid chrono format (see the chrono strftime docs)"
        ));
    }
    let sample = NaiveDate::from_ymd_opt(2024, 3, 17)
        .and_then(|d| d.and_hms_opt(13, 45, 0))
        .expect("sample date");
    let text = if format_has_offset(format) {
        sample.and_utc().format(format).to_string()
    } else {
        sample.format(format).to_string()
    };
    let back = match ty {
        ColumnType::Date => NaiveDate::parse_from_str(&text, format)
            .ok()
            .map(|d| d == sample.date()),
        _ => parse_datetime_with(&text, format).map(|dt| dt == sample),
    };
    match back {
        Some(true) => Ok(()),
        _ => Err(format!(
            "{format:?} does not describe a full {ty}: a {ty} written with it cannot be read back \
             (a date needs year, month and day; a datetime also hours and minutes)"
        )),
    }
}

/// Writes a typed value in the canonical form the later stages read (`buf` is appended to).
/// Floats keep the text they were given (it already parsed), so no precision is lost.
pub fn write_canonical(value: &Value<'_>, raw: &str, buf: &mut String) {
    match value {
        Value::Null => {}
        Value::Str(s) => buf.push_str(s),
        Value::Int(i) => {
            let _ = write!(buf, "{i}");
        }
        Value::Float(_) => buf.push_str(raw),
        Value::Bool(b) => buf.push_str(if *b { "true" } else { "false" }),
        Value::Date(d) => write_iso_date(*d, buf),
        Value::Datetime(dt) => {
            // The common whole-second case by hand (chrono's formatter interprets the format string
            // for every value, which showed in profiles); fractions and odd years go through chrono.
            if dt.nanosecond() == 0 && (0..=9999).contains(&dt.year()) {
                write_iso_date(dt.date(), buf);
                let (h, m, s) = (dt.hour(), dt.minute(), dt.second());
                let _ = write!(buf, "T{h:02}:{m:02}:{s:02}");
            } else {
                let _ = write!(buf, "{}", dt.format("%Y-%m-%dT%H:%M:%S%.f"));
            }
        }
    }
}

/// Reads a canonical field written by [`write_canonical`]. An empty field is null.
pub fn parse_canonical(ty: ColumnType, s: &str) -> Result<Value<'_>, TypeMismatch> {
    if s.is_empty() {
        return Ok(Value::Null);
    }
    match ty {
        ColumnType::Date => parse_iso_date(s)
            .map_or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d"), Ok)
            .map(Value::Date)
            .map_err(|_| TypeMismatch(format!("{s:?} is not a canonical date (YYYY-MM-DD)"))),
        ColumnType::Datetime => parse_iso_datetime_seconds(s)
            .map_or_else(
                || NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"),
                Ok,
            )
            .map(Value::Datetime)
            .map_err(|_| {
                TypeMismatch(format!(
                    "{s:?} is not a canonical datetime (YYYY-MM-DDTHH:MM:SS)"
                ))
            }),
        ColumnType::Boolean => match s {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(TypeMismatch(format!("{s:?} is not a canonical boolean"))),
        },
        other => parse_raw(other, s, &[]),
    }
}

/// Appends `YYYY-MM-DD` (years outside 0..=9999 through chrono, which signs and widens them).
fn write_iso_date(d: NaiveDate, buf: &mut String) {
    let y = d.year();
    if (0..=9999).contains(&y) {
        let (m, day) = (d.month(), d.day());
        let digits = [
            (y / 1000) as u32,
            (y / 100 % 10) as u32,
            (y / 10 % 10) as u32,
            (y % 10) as u32,
            10,
            m / 10,
            m % 10,
            10,
            day / 10,
            day % 10,
        ];
        buf.extend(digits.iter().map(|&n| {
            if n == 10 {
                '-'
            } else {
                char::from(b'0' + n as u8)
            }
        }));
    } else {
        let _ = write!(buf, "{}", d.format("%Y-%m-%d"));
    }
}

/// `n` ASCII digits of `b` as a number, or `None` if any is not a digit.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// Exactly `YYYY-MM-DD` (four-digit year), the way chrono's `%Y-%m-%d` reads it, without chrono's
/// format interpreter: dates are most of the fields the stages parse. `None` for any other shape
/// or an impossible date; callers fall back to chrono, which also words the error.
pub fn parse_iso_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(
        digits(&b[0..4])? as i32,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
    )
}

/// Exactly `YYYY-MM-DDTHH:MM:SS` (the canonical datetime without a fraction); `None` otherwise.
fn parse_iso_datetime_seconds(s: &str) -> Option<NaiveDateTime> {
    parse_iso_datetime_seconds_sep(s, b'T')
}

/// Exactly `YYYY-MM-DD{separator}HH:MM:SS`; `None` otherwise (a leap second included: chrono's
/// reading of one is left to chrono).
fn parse_iso_datetime_seconds_sep(s: &str, separator: u8) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() != 19 || b[10] != separator || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let t = NaiveTime::from_hms_opt(
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    )?;
    Some(parse_iso_date(&s[..10])?.and_time(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_since_epoch_counts_days_from_1970_across_the_whole_calendar() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let mut d = NaiveDate::MIN;
        // Every 997th day from chrono's first to its last, and the days around 1970.
        while d < NaiveDate::MAX {
            assert_eq!(
                i64::from(days_since_epoch(d)),
                (d - epoch).num_days(),
                "{d}"
            );
            d = d
                .checked_add_days(chrono::Days::new(997))
                .unwrap_or(NaiveDate::MAX);
        }
        for (y, m, day, n) in [
            (1970, 1, 1, 0),
            (1969, 12, 31, -1),
            (1970, 1, 2, 1),
            (2000, 3, 1, 11_017),
        ] {
            assert_eq!(
                days_since_epoch(NaiveDate::from_ymd_opt(y, m, day).unwrap()),
                n
            );
        }
        assert_eq!(
            i64::from(days_since_epoch(NaiveDate::MAX)),
            (NaiveDate::MAX - epoch).num_days()
        );
    }

    fn fmts(ty: ColumnType) -> Vec<String> {
        ty.default_formats().iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dates_parse_in_every_default_format_and_round_trip() {
        for raw in ["2024-03-05", "2024/03/05", "20240305"] {
            let v = parse_raw(ColumnType::Date, raw, &fmts(ColumnType::Date)).unwrap();
            let mut out = String::new();
            write_canonical(&v, raw, &mut out);
            assert_eq!(out, "2024-03-05");
            assert_eq!(parse_canonical(ColumnType::Date, &out).unwrap(), v);
        }
        assert!(parse_raw(ColumnType::Date, "2024-02-30", &fmts(ColumnType::Date)).is_err());
    }

    #[test]
    fn a_day_the_month_does_not_have_is_named_as_such() {
        let date = |raw: &str, formats: &[&str]| {
            let formats: Vec<String> = formats.iter().map(|f| f.to_string()).collect();
            parse_raw(ColumnType::Date, raw, &formats).unwrap_err().0
        };
        let defaults = ColumnType::Date.default_formats();
        assert_eq!(
            date("2024-02-30", defaults),
            "\"2024-02-30\" is not a day of the calendar (February 2024 has 29 days)"
        );
        assert_eq!(
            date("20230229", defaults),
            "\"20230229\" is not a day of the calendar (February 2023 has 28 days)"
        );
        assert_eq!(
            date("31.04.2024", &["%d.%m.%Y"]),
            "\"31.04.2024\" is not a day of the calendar (April 2024 has 30 days)"
        );
        assert_eq!(
            date("30 Feb 24", &["%d %b %y"]),
            "\"30 Feb 24\" is not a day of the calendar (February 2024 has 29 days)"
        );
        let datetime = parse_raw(
            ColumnType::Datetime,
            "2023-06-31 10:00",
            &fmts(ColumnType::Datetime),
        )
        .unwrap_err()
        .0;
        assert_eq!(
            datetime,
            "\"2023-06-31 10:00\" is not a day of the calendar (June 2023 has 30 days)"
        );
        // Other failures keep the general reason: a field out of its own range, a wrong shape, a
        // weekday that does not match the date.
        for (raw, formats) in [
            ("2024-13-01", defaults),
            ("2024-01-32", defaults),
            ("2024-02-30 ", defaults),
            ("2024-02-3O", defaults),
            ("Mon 2024-02-29", &["%a %Y-%m-%d"][..]),
        ] {
            assert_eq!(
                date(raw, formats),
                format!("{raw:?} is not a date in any of the formats {formats:?}")
            );
        }
    }

    #[test]
    fn datetimes_with_offsets_become_utc() {
        let f = fmts(ColumnType::Datetime);
        let a = parse_raw(ColumnType::Datetime, "2024-03-05T10:00:00+02:00", &f).unwrap();
        let b = parse_raw(ColumnType::Datetime, "2024-03-05 08:00:00", &f).unwrap();
        let c = parse_raw(ColumnType::Datetime, "2024-03-05T08:00:00Z", &f).unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        let mut out = String::new();
        write_canonical(
            &parse_raw(ColumnType::Datetime, "2024-03-05 08:00:00.25", &f).unwrap(),
            "",
            &mut out,
        );
        assert_eq!(out, "2024-03-05T08:00:00.250");
        assert!(parse_canonical(ColumnType::Datetime, &out).is_ok());
    }

    #[test]
    fn numbers_and_booleans() {
        assert_eq!(
            parse_raw(ColumnType::Integer, "-12", &[]).unwrap(),
            Value::Int(-12)
        );
        assert!(parse_raw(ColumnType::Integer, "1.5", &[]).is_err());
        assert!(parse_raw(ColumnType::Float, "NaN", &[]).is_err());
        assert!(parse_raw(ColumnType::Float, "inf", &[]).is_err());
        assert_eq!(
            parse_raw(ColumnType::Float, "1e3", &[]).unwrap(),
            Value::Float(1000.0)
        );
        assert_eq!(
            parse_raw(ColumnType::Boolean, "Yes", &[]).unwrap(),
            Value::Bool(true)
        );
        assert!(parse_raw(ColumnType::Boolean, "maybe", &[]).is_err());
    }

    #[test]
    fn formats_are_checked() {
        assert!(check_format(ColumnType::Date, "%Y-%m-%d").is_ok());
        assert!(check_format(ColumnType::Date, "%Y-%m").is_err());
        assert!(check_format(ColumnType::Date, "%Q").is_err());
        assert!(check_format(ColumnType::Datetime, "%Y-%m-%d %H:%M:%S").is_ok());
        assert!(check_format(ColumnType::Datetime, "%Y-%m-%dT%H:%M:%S%:z").is_ok());
        for ty in [ColumnType::Date, ColumnType::Datetime] {
            for f in ty.default_formats() {
                assert!(check_format(ty, f).is_ok(), "{f}");
            }
        }
    }

    #[test]
    fn raw_fast_paths_agree_with_chrono_on_every_shape() {
        // Values around every boundary the fixed-position parsers check, in every nearby shape.
        let mut rng = 0x9e3779b97f4a7c15u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let pieces: [&[&str]; 6] = [
            &["2024", "1999", "0000", "9999", "+202", "20x4", "024"],
            &["01", "02", "12", "13", "00", "1", "2a"],
            &["01", "28", "29", "30", "31", "32", "00", "9"],
            &["00", "23", "24", "7", "-1"],
            &["00", "59", "60", "5"],
            &["00", "59", "60", "61", "5"],
        ];
        for _ in 0..20_000 {
            let p: Vec<&str> = pieces
                .iter()
                .map(|opts| opts[next(opts.len() as u64) as usize])
                .collect();
            let date = format!("{}-{}-{}", p[0], p[1], p[2]);
            assert_eq!(
                parse_date_with(&date, "%Y-%m-%d"),
                NaiveDate::parse_from_str(&date, "%Y-%m-%d").ok(),
                "{date}"
            );
            for (sep, format) in [('T', "%Y-%m-%dT%H:%M:%S"), (' ', "%Y-%m-%d %H:%M:%S")] {
                let dt = format!("{date}{sep}{}:{}:{}", p[3], p[4], p[5]);
                let fast =
                    parse_datetime_fast(&dt, format).or_else(|| parse_datetime_with(&dt, format));
                assert_eq!(
                    fast,
                    NaiveDateTime::parse_from_str(&dt, format).ok(),
                    "{dt}"
                );
            }
        }
        for (s, b) in [
            ("TRUE", Some(true)),
            ("Yes", Some(true)),
            ("n", Some(false)),
            ("0", Some(false)),
            ("", None),
            ("yess", None),
        ] {
            assert_eq!(parse_bool(s), b, "{s}");
        }
    }

    #[test]
    fn canonical_fast_paths_agree_with_chrono() {
        for s in [
            "2024-03-05",
            "2024-02-29",
            "0001-01-01",
            "9999-12-31",
            "1970-01-01",
        ] {
            let d = parse_canonical(ColumnType::Date, s).unwrap();
            assert_eq!(
                d,
                Value::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()),
                "{s}"
            );
            let mut out = String::new();
            write_canonical(&d, s, &mut out);
            assert_eq!(out, s);
        }
        for s in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-05",
            "2024/03/05",
            "2024-03-0x",
        ] {
            assert_eq!(parse_iso_date(s), None, "{s}");
        }
        // Shapes the fast path does not take still parse through chrono.
        assert!(parse_canonical(ColumnType::Date, "2024-3-5").is_ok());
        assert!(parse_canonical(ColumnType::Date, "2023-02-29").is_err());
        for s in [
            "2024-03-05T08:09:10",
            "2024-03-05T23:59:59",
            "2024-03-05T08:09:10.250",
        ] {
            let v = parse_canonical(ColumnType::Datetime, s).unwrap();
            assert_eq!(
                v,
                Value::Datetime(NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").unwrap())
            );
            let mut out = String::new();
            write_canonical(&v, s, &mut out);
            assert_eq!(out, s);
        }
        assert!(parse_canonical(ColumnType::Datetime, "2024-03-05T24:00:00").is_err());
        let far = NaiveDate::from_ymd_opt(12345, 1, 2).unwrap();
        let mut out = String::new();
        write_canonical(&Value::Date(far), "", &mut out);
        assert_eq!(out, far.format("%Y-%m-%d").to_string());
    }
}
