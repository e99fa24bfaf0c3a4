//! Cadences of `[[schedule]]` (and, later, `[[source]]`): `every = "7m"` or a UTC `cron = "*/7 * * * *"`
//! (five fields: minute, hour, day of month, month, day of week 0-7 with 0 and 7 Sunday, or names).
//! The same cadence runs embedded (`sluice up`) and on AWS (an EventBridge Scheduler expression).

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};

/// How often something runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cadence {
    /// A fixed interval, in whole minutes (EventBridge Scheduler's smallest rate is one minute).
    Every {
        minutes: u32,
    },
    Cron(Cron),
}

impl Cadence {
    /// `every`: `30m`, `7m`, `1h`, `2d` (a whole number of minutes, at least one).
    pub fn every(text: &str) -> Result<Cadence, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (n, unit) = t.split_at(split);
        let n: u32 = n
            .parse()
            .map_err(|_| format!("{text:?} is not an interval: write a number and a unit, e.g. \"7m\", \"1h\", \"1d\""))?;
        let minutes = match unit {
            "m" | "min" => Some(n),
            "h" => n.checked_mul(60),
            "d" => n.checked_mul(24 * 60),
            "s" => {
                return Err(format!(
                    "{text:?}: intervals are whole minutes (EventBridge Scheduler's smallest rate is one minute)"
                ));
            }
            _ => {
                return Err(format!(
                    "{text:?} is not an interval: the unit is m, h or d (e.g. \"7m\", \"1h\", \"1d\")"
                ));
            }
        };
        match minutes {
            Some(m) if m >= 1 => Ok(Cadence::Every { minutes: m }),
            _ => Err(format!(
                "{text:?}: the interval must be at least one minute"
            )),
        }
    }

    /// The EventBridge Scheduler expression: `rate(7 minutes)` or `cron(...)` (six fields, UTC).
    pub fn aws_expression(&self) -> String {
        match self {
            Cadence::Every { minutes } if minutes % (24 * 60) == 0 => {
                let d = minutes / (24 * 60);
                format!("rate({d} {})", if d == 1 { "day" } else { "days" })
            }
            Cadence::Every { minutes } if minutes % 60 == 0 => {
                let h = minutes / 60;
                format!("rate({h} {})", if h == 1 { "hour" } else { "hours" })
            }
            Cadence::Every { minutes } => {
                format!(
                    "rate({minutes} {})",
                    if *minutes == 1 { "minute" } else { "minutes" }
                )
            }
            Cadence::Cron(c) => c.aws.clone(),
        }
    }

    /// The tick a moment belongs to: the start of its interval (every: counted from the Unix epoch) or
    /// the cron minute. Two dispatchers given the same tick do the same work once (it names the work).
    pub fn tick_of(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let minute = t
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(t);
        match self {
            Cadence::Every { minutes } => {
                let step = i64::from(*minutes) * 60;
                let secs = minute.timestamp();
                DateTime::from_timestamp(secs - secs.rem_euclid(step), 0).unwrap_or(minute)
            }
            // The last minute the expression matched, at or before `t`.
            Cadence::Cron(c) => {
                let mut m = minute;
                for _ in 0..(5 * 366 * 24 * 60) {
                    if c.matches(m) {
                        return m;
                    }
                    m -= Duration::minutes(1);
                }
                minute
            }
        }
    }

    /// The first tick strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Cadence::Every { minutes } => self.tick_of(t) + Duration::minutes(i64::from(*minutes)),
            Cadence::Cron(c) => {
                let mut m = t
                    .with_second(0)
                    .and_then(|t| t.with_nanosecond(0))
                    .unwrap_or(t)
                    + Duration::minutes(1);
                // At most a few years of minutes; a valid expression matches far sooner.
                for _ in 0..(5 * 366 * 24 * 60) {
                    if c.matches(m) {
                        return m;
                    }
                    m += Duration::minutes(1);
                }
                m
            }
        }
    }
}

/// A five-field cron expression in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    pub text: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// Whether day of month / day of week were restricted (cron's "either matches" rule).
    dom_any: bool,
    dow_any: bool,
    aws: String,
}

const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// The values a field allows, as a bit set over `lo..=hi`.
fn field(text: &str, what: &str, lo: u32, hi: u32, names: &[&str]) -> Result<u64, String> {
    let value = |v: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
            return Ok(lo + i as u32);
        }
        let n: u32 = v.parse().map_err(|_| {
            if v == "?" {
                format!("{what} \"?\" is EventBridge syntax: write * here (five fields, UTC)")
            } else {
                format!("{what} {v:?} is not a number")
            }
        })?;
        if n < lo || n > hi {
            return Err(format!("{what} {n} is outside {lo}-{hi}"));
        }
        Ok(n)
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{what} step {s:?} is not a positive number"))?,
            ),
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if part.contains('/') { hi } else { v })
        };
        if a > b {
            return Err(format!("{what} range {range:?} runs backwards"));
        }
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [mi, h, dom, mo, dow] = fields.as_slice() else {
            return Err(format!(
                "{text:?} is not a cron expression: five fields, minute hour day-of-month month day-of-week (UTC)"
            ));
        };
        let err = |e: String| format!("cron {text:?}: {e}");
        let minutes = field(mi, "minute", 0, 59, &[]).map_err(err)?;
        let hours = field(h, "hour", 0, 23, &[]).map_err(err)? as u32;
        let days = field(dom, "day of month", 1, 31, &[]).map_err(err)? as u32;
        let months = field(mo, "month", 1, 12, &MONTHS).map_err(err)? as u16;
        // Day of week 7 is Sunday too.
        let mut weekdays = field(dow, "day of week", 0, 7, &WEEKDAYS).map_err(err)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        let weekdays = (weekdays & 0x7f) as u8;
        let (dom_any, dow_any) = (*dom == "*", *dow == "*");
        if !dom_any && !dow_any {
            return Err(format!(
                "cron {text:?}: restrict the day of month or the day of week, not both (EventBridge Scheduler \
                 cannot express both)"
            ));
        }
        // EventBridge: six fields (minutes hours day-of-month month day-of-week year), one of the two day
        // fields `?`, days of week 1-7 from Sunday: named days say the same thing without renumbering.
        let weekday_names = || {
            (0..7)
                .filter(|d| weekdays & (1 << d) != 0)
                .map(|d| WEEKDAYS[d as usize])
                .collect::<Vec<_>>()
                .join(",")
        };
        let aws = if dow_any {
            format!("cron({mi} {h} {dom} {mo} ? *)")
        } else {
            format!("cron({mi} {h} ? {mo} {} *)", weekday_names())
        };
        let cron = Cron {
            text: text.to_string(),
            minutes,
            hours,
            days,
            months,
            weekdays,
            dom_any,
            dow_any,
            aws,
        };
        // A day that never comes (30 February) would never run: say so now.
        let possible = (1..=12u32).filter(|m| months & (1 << m) != 0).any(|m| {
            let longest = match m {
                2 => 29,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            (1..=longest).any(|d| days & (1 << d) != 0)
        });
        if !possible {
            return Err(format!(
                "cron {text:?}: that day never comes in those months"
            ));
        }
        Ok(cron)
    }

    /// Whether the minute `t` (UTC) is one of the expression's.
    pub fn matches(&self, t: DateTime<Utc>) -> bool {
        let wd = t.weekday().num_days_from_sunday();
        self.minutes & (1 << t.minute()) != 0
            && self.hours & (1 << t.hour()) != 0
            && self.months & (1 << t.month()) != 0
            && (if self.dom_any || self.dow_any {
                self.days & (1 << t.day()) != 0 && self.weekdays & (1 << wd) != 0
            } else {
                self.days & (1 << t.day()) != 0 || self.weekdays & (1 << wd) != 0
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn intervals() {
        assert_eq!(Cadence::every("7m").unwrap(), Cadence::Every { minutes: 7 });
        assert_eq!(
            Cadence::every("1h").unwrap().aws_expression(),
            "rate(1 hour)"
        );
        assert_eq!(
            Cadence::every("2d").unwrap().aws_expression(),
            "rate(2 days)"
        );
        assert_eq!(
            Cadence::every("90m").unwrap().aws_expression(),
            "rate(90 minutes)"
        );
        for bad in ["", "7", "30s", "0m", "7 minutes", "m"] {
            assert!(Cadence::every(bad).is_err(), "{bad}");
        }
        let every7 = Cadence::every("7m").unwrap();
        let t = at("2026-12-02T10:03:30Z");
        let tick = every7.tick_of(t);
        assert_eq!(tick.timestamp() % 420, 0);
        assert!(tick <= t && t < every7.next_after(t));
        assert_eq!(every7.next_after(tick), tick + Duration::minutes(7));
    }

    #[test]
    fn cron_expressions() {
        let daily = Cadence::Cron(Cron::parse("0 9 * * *").unwrap());
        assert_eq!(
            daily.tick_of(at("2026-12-02T15:30:00Z")),
            at("2026-12-02T09:00:00Z")
        );
        assert_eq!(
            daily.tick_of(at("2026-12-02T08:59:00Z")),
            at("2026-12-01T09:00:00Z")
        );
        assert!(Cron::parse("0 0 30 2 *").is_err());
        assert!(
            Cron::parse("0 0 ? * MON")
                .unwrap_err()
                .contains("EventBridge")
        );
        let c = Cadence::Cron(Cron::parse("*/7 * * * *").unwrap());
        assert_eq!(c.aws_expression(), "cron(*/7 * * * ? *)");
        assert_eq!(
            c.next_after(at("2026-12-02T10:03:30Z")),
            at("2026-12-02T10:07:00Z")
        );
        assert_eq!(
            c.next_after(at("2026-12-02T10:56:00Z")),
            at("2026-12-02T11:00:00Z")
        );
        let weekdays = Cron::parse("30 9 * * 1-5").unwrap();
        assert_eq!(
            Cadence::Cron(weekdays.clone()).aws_expression(),
            "cron(30 9 ? * MON,TUE,WED,THU,FRI *)"
        );
        // 2026-12-05 is a Saturday: the next is Monday the 7th.
        assert_eq!(
            Cadence::Cron(weekdays).next_after(at("2026-12-04T09:30:00Z")),
            at("2026-12-07T09:30:00Z")
        );
        let sundays = Cron::parse("0 0 * * 7").unwrap();
        assert!(sundays.matches(at("2026-12-06T00:00:00Z")));
        assert_eq!(
            Cadence::Cron(sundays).aws_expression(),
            "cron(0 0 ? * SUN *)"
        );
        for bad in [
            "* * * *",
            "60 * * * *",
            "* * 1 * 1",
            "*/0 * * * *",
            "5-1 * * * *",
            "x * * * *",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
    }
}
