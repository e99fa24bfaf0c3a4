//! Picture strings of `$fromMillis`, `$now` and `$toMillis` (XPath F&O 3.1 §9.8 date formatting),
//! following the JSONata reference implementation (jsonata-js `datetime.js`).

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

use super::eval::{EvalError, fail};
use super::format::{
    Case, IntegerFormat, analyse_integer_picture, format_integer_with, integer_regex, parse_with,
};

type Res<T> = Result<T, EvalError>;

enum Part {
    Literal(String),
    Marker(Marker),
}

struct Marker {
    component: char,
    width: Option<(Option<usize>, Option<usize>)>,
    presentation1: String,
    presentation2: Option<char>,
    names: Option<Case>,
    integer: Option<IntegerFormat>,
    /// the digits kept of a year (`[Y01]` is two)
    n: Option<usize>,
}

fn default_presentation(c: char) -> Option<&'static str> {
    Some(match c {
        'Y' | 'M' | 'D' | 'd' | 'W' | 'w' | 'X' | 'x' | 'H' | 'h' | 'f' => "1",
        'F' | 'P' | 'C' | 'E' => "n",
        'm' | 's' => "01",
        'Z' | 'z' => "01:01",
        _ => return None,
    })
}

fn parse_width(w: &str) -> Option<usize> {
    if w == "*" {
        return None;
    }
    let d: String = w.chars().take_while(char::is_ascii_digit).collect();
    d.parse().ok()
}

fn analyse(picture: &str) -> Res<Vec<Part>> {
    let pic: Vec<char> = picture.chars().collect();
    let mut spec: Vec<Part> = Vec::new();
    let add_literal = |spec: &mut Vec<Part>, start: usize, end: usize| {
        if end > start {
            let lit: String = pic[start..end].iter().collect();
            spec.push(Part::Literal(lit.replace("]]", "]")));
        }
    };
    let (mut start, mut pos) = (0, 0);
    while pos < pic.len() {
        if pic[pos] == '[' {
            if pic.get(pos + 1) == Some(&'[') {
                add_literal(&mut spec, start, pos);
                spec.push(Part::Literal("[".into()));
                pos += 2;
                start = pos;
                continue;
            }
            add_literal(&mut spec, start, pos);
            start = pos;
            let Some(end) = pic[start..]
                .iter()
                .position(|c| *c == ']')
                .map(|p| p + start)
            else {
                return fail(
                    "D3135",
                    "No matching closing bracket ']' in date/time picture string",
                );
            };
            pos = end;
            let marker: String = pic[start + 1..end]
                .iter()
                .filter(|c| !c.is_whitespace())
                .collect();
            let mc: Vec<char> = marker.chars().collect();
            let component = mc.first().copied().unwrap_or('\0');
            let mut width = None;
            let pres: String = match mc.iter().rposition(|c| *c == ',') {
                Some(comma) => {
                    let wm: String = mc[comma + 1..].iter().collect();
                    let (min, max) = match wm.find('-') {
                        None => (parse_width(&wm), None),
                        Some(d) => (parse_width(&wm[..d]), parse_width(&wm[d + 1..])),
                    };
                    width = Some((min, max));
                    mc[1.min(comma)..comma].iter().collect()
                }
                None => mc.iter().skip(1).collect(),
            };
            let pc: Vec<char> = pres.chars().collect();
            let mut presentation2 = None;
            let presentation1 = if pc.len() == 1 {
                Some(pres.clone())
            } else if pc.len() > 1 {
                let last = pc[pc.len() - 1];
                if "atco".contains(last) {
                    presentation2 = Some(last);
                    Some(pc[..pc.len() - 1].iter().collect::<String>())
                } else {
                    Some(pres.clone())
                }
            } else {
                default_presentation(component).map(str::to_string)
            };
            let Some(presentation1) = presentation1 else {
                return fail(
                    "D3132",
                    format!("Unknown component specifier {component} in date/time picture string"),
                );
            };
            let p1: Vec<char> = presentation1.chars().collect();
            let mut names = None;
            let mut integer = None;
            let mut n = None;
            if p1.first() == Some(&'n') {
                names = Some(Case::Lower);
            } else if p1.first() == Some(&'N') {
                names = Some(if p1.get(1) == Some(&'n') {
                    Case::Title
                } else {
                    Case::Upper
                });
            } else if "YMDdFWwXxHhmsf".contains(component) {
                let mut pattern = presentation1.clone();
                if let Some(p2) = presentation2 {
                    pattern.push(';');
                    pattern.push(p2);
                }
                let mut f = analyse_integer_picture(&pattern)?;
                if let Some((Some(min), _)) = width {
                    if f.mandatory < min {
                        f.mandatory = min;
                    }
                }
                if component == 'Y' {
                    if let Some((_, Some(max))) = width {
                        n = Some(max);
                        f.mandatory = max;
                    } else {
                        let w = f.mandatory + f.optional;
                        if w >= 2 {
                            n = Some(w);
                        }
                    }
                }
                if let Some(Part::Marker(prev)) = spec.last_mut() {
                    if let Some(pf) = prev.integer.as_mut() {
                        pf.parse_width = Some(pf.mandatory);
                    }
                }
                integer = Some(f);
            }
            if component == 'Z' || component == 'z' {
                integer = Some(analyse_integer_picture(&presentation1)?);
            }
            spec.push(Part::Marker(Marker {
                component,
                width,
                presentation1,
                presentation2,
                names,
                integer,
                n,
            }));
            start = pos + 1;
        }
        pos += 1;
    }
    add_literal(&mut spec, start, pos);
    Ok(spec)
}

const DAYS: [&str; 8] = [
    "",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAY_MS: i64 = 86_400_000;

/// `Date.UTC(year, month)` (month from 0, may overflow into the next year).
fn utc(year: i64, month: i64, day: i64) -> i64 {
    let y = year + month.div_euclid(12);
    let m = month.rem_euclid(12) as u32 + 1;
    let first = NaiveDate::from_ymd_opt(y as i32, m, 1).unwrap_or_default();
    first
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        .timestamp_millis()
        + (day - 1) * DAY_MS
}

fn start_of_first_week(year: i64, month: i64) -> i64 {
    let jan1 = utc(year, month, 1);
    let mut dow = DateTime::from_timestamp_millis(jan1)
        .map(|d| d.weekday().num_days_from_sunday() as i64)
        .unwrap_or(0);
    if dow == 0 {
        dow = 7;
    }
    if dow > 4 {
        jan1 + (8 - dow) * DAY_MS
    } else {
        jan1 - (dow - 1) * DAY_MS
    }
}

fn delta_weeks(start: i64, end: i64) -> f64 {
    (end - start) as f64 / (DAY_MS * 7) as f64 + 1.0
}

enum Frag {
    Num(i64),
    Text(&'static str),
    None,
}

fn fragment(d: &DateTime<Utc>, c: char) -> Frag {
    let (y, mo, day) = (d.year() as i64, d.month0() as i64, d.day() as i64);
    let today = utc(y, mo, day);
    Frag::Num(match c {
        'Y' => y,
        'M' => mo + 1,
        'D' => day,
        'd' => (today - utc(y, 0, 1)) / DAY_MS + 1,
        'F' => d.weekday().number_from_monday() as i64,
        'W' => {
            let s = start_of_first_week(y, 0);
            let mut week = delta_weeks(s, today);
            if week > 52.0 {
                if today >= start_of_first_week(y + 1, 0) {
                    week = 1.0;
                }
            } else if week < 1.0 {
                week = delta_weeks(start_of_first_week(y - 1, 0), today);
            }
            week.floor() as i64
        }
        'w' => {
            let s = start_of_first_week(y, mo);
            let mut week = delta_weeks(s, today);
            if week > 4.0 {
                if today >= start_of_first_week(y, mo + 1) {
                    week = 1.0;
                }
            } else if week < 1.0 {
                week = delta_weeks(start_of_first_week(y, mo - 1), today);
            }
            week.floor() as i64
        }
        'X' => {
            let now = d.timestamp_millis();
            if now < start_of_first_week(y, 0) {
                y - 1
            } else if now >= start_of_first_week(y + 1, 0) {
                y + 1
            } else {
                y
            }
        }
        'x' => {
            let now = d.timestamp_millis();
            if now < start_of_first_week(y, mo) {
                (mo - 1).rem_euclid(12) + 1
            } else if now >= start_of_first_week(y, mo + 1) {
                (mo + 1).rem_euclid(12) + 1
            } else {
                mo + 1
            }
        }
        'H' => d.hour() as i64,
        'h' => {
            let h = d.hour() as i64 % 12;
            if h == 0 { 12 } else { h }
        }
        'P' => return Frag::Text(if d.hour() >= 12 { "pm" } else { "am" }),
        'm' => d.minute() as i64,
        's' => d.second() as i64,
        'f' => (d.timestamp_subsec_millis()) as i64,
        'C' | 'E' => return Frag::Text("ISO"),
        _ => return Frag::None,
    })
}

fn js_parse_int(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let (sign, rest) = match t.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    let d: String = rest.chars().take_while(char::is_ascii_digit).collect();
    d.parse::<i64>().ok().map(|v| sign * v)
}

/// `$fromMillis(millis, picture, timezone)` and `$now(picture, timezone)`.
pub fn format_date_time(millis: f64, picture: Option<&str>, timezone: Option<&str>) -> Res<String> {
    let (mut oh, mut om) = (0i64, 0i64);
    if let Some(tz) = timezone {
        // parseInt of an unreadable timezone is NaN in the reference; treat it as UTC
        if let Some(offset) = js_parse_int(tz).map(|o| o.clamp(-999_999, 999_999)) {
            oh = offset.div_euclid(100);
            om = offset % 100;
        }
    }
    let spec = analyse(picture.unwrap_or("[Y0001]-[M01]-[D01]T[H01]:[m01]:[s01].[f001][Z01:01t]"))?;
    let offset_ms = (60 * oh + om) * 60 * 1000;
    let Some(date) =
        DateTime::from_timestamp_millis((millis.floor() as i64).saturating_add(offset_ms))
    else {
        return fail("D3136", format!("$fromMillis: {millis} is out of range"));
    };
    let mut out = String::new();
    for part in &spec {
        let m = match part {
            Part::Literal(l) => {
                out.push_str(l);
                continue;
            }
            Part::Marker(m) => m,
        };
        let c = m.component;
        let value = fragment(&date, c);
        if "YMDdFWwXxHhms".contains(c) {
            let Frag::Num(mut v) = value else { continue };
            if c == 'Y' {
                if let Some(n) = m.n {
                    v %= 10i64.pow(n.min(18) as u32);
                }
            }
            if let Some(case) = m.names {
                let name = match c {
                    'M' | 'x' => MONTHS[(v - 1).clamp(0, 11) as usize],
                    'F' => DAYS[v.clamp(0, 7) as usize],
                    _ => {
                        return fail(
                            "D3133",
                            format!("The 'name' modifier is not supported for the {c} component"),
                        );
                    }
                };
                let mut name = match case {
                    Case::Upper => name.to_uppercase(),
                    Case::Lower => name.to_lowercase(),
                    Case::Title => name.to_string(),
                };
                if let Some((_, Some(max))) = m.width {
                    name = name.chars().take(max).collect();
                }
                out.push_str(&name);
            } else if let Some(f) = &m.integer {
                out.push_str(&format_integer_with(v as f64, f));
            }
        } else if c == 'f' {
            if let (Frag::Num(v), Some(f)) = (value, &m.integer) {
                out.push_str(&format_integer_with(v as f64, f));
            }
        } else if c == 'Z' || c == 'z' {
            let Some(f) = &m.integer else { continue };
            let offset = oh * 100 + om;
            let mut s = if f.regular.is_some() {
                format_integer_with(offset as f64, f)
            } else {
                match f.mandatory {
                    1 | 2 => {
                        let mut s = format_integer_with(oh as f64, f);
                        if om != 0 {
                            s.push_str(&format!(":{:02}", om));
                        }
                        s
                    }
                    3 | 4 => format_integer_with(offset as f64, f),
                    n => {
                        return fail(
                            "D3134",
                            format!(
                                "The timezone integer format specifier cannot have more than four digits (it has {n})"
                            ),
                        );
                    }
                }
            };
            if offset >= 0 {
                s.insert(0, '+');
            }
            if c == 'z' {
                s.insert_str(0, "GMT");
            }
            if offset == 0 && m.presentation2 == Some('t') {
                s = "Z".into();
            }
            out.push_str(&s);
        } else if c == 'P' {
            if let Frag::Text(t) = value {
                out.push_str(&if m.names == Some(Case::Upper) {
                    t.to_uppercase()
                } else {
                    t.to_string()
                });
            }
        } else if let Frag::Text(t) = value {
            out.push_str(t);
        } else if m.presentation1.is_empty() {
            // nothing: an unknown component gives "undefined" in the reference
        } else {
            out.push_str("undefined");
        }
    }
    Ok(out)
}

/// `Date.UTC(y, mo, d, h, mi, s, ms)`: the fields may overflow; years 0 to 99 are 19xx.
fn date_utc(y: f64, mo: f64, d: f64, h: f64, mi: f64, s: f64, ms: f64) -> f64 {
    if ![y, mo, d, h, mi, s, ms].iter().all(|v| v.is_finite()) {
        return f64::NAN;
    }
    let (mut y, mo) = (y.trunc() as i64, mo.trunc() as i64);
    if (0..=99).contains(&y) {
        y += 1900;
    }
    let yy = y + mo.div_euclid(12);
    let m = mo.rem_euclid(12) as u32 + 1;
    let Some(first) = NaiveDate::from_ymd_opt(yy as i32, m, 1) else {
        return f64::NAN;
    };
    let days = first.signed_duration_since(NaiveDate::default()).num_days()
        + NaiveDate::default()
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis() / DAY_MS)
            .unwrap_or(0);
    (days as f64 + d.trunc() - 1.0) * DAY_MS as f64
        + h.trunc() * 3_600_000.0
        + mi.trunc() * 60_000.0
        + s.trunc() * 1000.0
        + ms.trunc()
}

enum Parser {
    None,
    Integer(IntegerFormat),
    Fraction,
    Zone { z: bool, separator: Option<char> },
    Names(Vec<(String, f64)>),
}

/// `$toMillis(timestamp, picture)`; `now` answers the components the picture leaves out.
pub fn parse_date_time(timestamp: &str, picture: &str, now: &DateTime<Utc>) -> Res<Option<f64>> {
    let spec = analyse(picture)?;
    let mut regex = String::from("(?i)^");
    let mut parsers: Vec<(char, Parser)> = Vec::new();
    for part in spec {
        match part {
            Part::Literal(l) => {
                regex.push_str(&format!("({})", regex::escape(&l)));
                parsers.push(('\0', Parser::None));
            }
            Part::Marker(m) => {
                let c = m.component;
                let (r, p) = if c == 'Z' || c == 'z' {
                    let separator = m.integer.as_ref().and_then(|f| f.regular).map(|r| r.1);
                    let mut r = String::new();
                    if c == 'z' {
                        r.push_str("GMT");
                    }
                    r.push_str("[-+][0-9]+");
                    if let Some(s) = separator {
                        r.push_str(&regex::escape(&s.to_string()));
                        r.push_str("[0-9]+");
                    }
                    (
                        r,
                        Parser::Zone {
                            z: c == 'z',
                            separator,
                        },
                    )
                } else if c == 'f' {
                    ("[0-9]+".to_string(), Parser::Fraction)
                } else if let Some(f) = m.integer {
                    (integer_regex(&f), Parser::Integer(f))
                } else {
                    let max = m.width.and_then(|w| w.1);
                    let cut = |s: &str| match max {
                        Some(n) => s.chars().take(n).collect::<String>(),
                        None => s.to_string(),
                    };
                    let lookup: Vec<(String, f64)> = match c {
                        'M' | 'x' => MONTHS
                            .iter()
                            .enumerate()
                            .map(|(i, n)| (cut(n), i as f64 + 1.0))
                            .collect(),
                        'F' => DAYS
                            .iter()
                            .enumerate()
                            .skip(1)
                            .map(|(i, n)| (cut(n), i as f64))
                            .collect(),
                        'P' => vec![
                            ("am".into(), 0.0),
                            ("AM".into(), 0.0),
                            ("pm".into(), 1.0),
                            ("PM".into(), 1.0),
                        ],
                        _ => {
                            return fail(
                                "D3133",
                                format!(
                                    "The 'name' modifier is not supported for the {c} component"
                                ),
                            );
                        }
                    };
                    ("[a-zA-Z]+".to_string(), Parser::Names(lookup))
                };
                regex.push_str(&format!("({r})"));
                parsers.push((c, p));
            }
        }
    }
    regex.push('$');
    let Ok(re) = regex::Regex::new(&regex) else {
        return Ok(None);
    };
    let Some(caps) = re.captures(timestamp) else {
        return Ok(None);
    };
    // component -> value (NaN for a failed parse); `None` for a name that was not found
    let mut comps: Vec<(char, Option<f64>)> = Vec::new();
    for (i, (c, p)) in parsers.iter().enumerate() {
        let text = caps.get(i + 1).map(|m| m.as_str()).unwrap_or("");
        let v = match p {
            Parser::None => continue,
            Parser::Integer(f) => Some(parse_with(text, f)),
            Parser::Fraction => {
                let d: String = text.chars().take(3).collect();
                Some(format!("0.{d}").parse::<f64>().unwrap_or(f64::NAN) * 1000.0)
            }
            Parser::Zone { z, separator } => {
                let v = if *z { &text[3.min(text.len())..] } else { text };
                let (h, m) = match separator.and_then(|s| v.find(s).map(|i| (i, s.len_utf8()))) {
                    Some((i, l)) => (js_parse_int(&v[..i]), js_parse_int(&v[i + l..])),
                    None => {
                        if v.len() <= 3 {
                            (js_parse_int(v), Some(0))
                        } else {
                            (js_parse_int(&v[..3]), js_parse_int(&v[3..]))
                        }
                    }
                };
                Some(match (h, m) {
                    (Some(h), Some(m)) => (h * 60 + m) as f64,
                    _ => f64::NAN,
                })
            }
            Parser::Names(l) => l.iter().find(|(n, _)| n == text).map(|(_, v)| *v),
        };
        comps.retain(|(k, _)| k != c);
        comps.push((*c, v));
    }
    if comps.is_empty() {
        return Ok(None);
    }
    let get = |comps: &Vec<(char, Option<f64>)>, c: char| -> Option<f64> {
        comps.iter().find(|(k, _)| *k == c).and_then(|(_, v)| *v)
    };
    let truthy = |v: Option<f64>| v.is_some_and(|x| x != 0.0 && !x.is_nan());
    let mask_of = |comps: &Vec<(char, Option<f64>)>, parts: &str| -> u32 {
        parts
            .chars()
            .fold(0, |m, c| (m << 1) + u32::from(truthy(get(comps, c))))
    };
    let is_type = |t: u32, mask: u32| (!t & mask) == 0 && (t & mask) != 0;
    let mask = mask_of(&comps, "YXMxWwdD");
    let date_a = is_type(161, mask);
    let date_b = !date_a && is_type(130, mask);
    let date_c = is_type(84, mask);
    let date_d = !date_c && is_type(72, mask);
    let tmask = mask_of(&comps, "PHhmsf");
    let time_a = is_type(23, tmask);
    let time_b = !time_a && is_type(47, tmask);
    let date_comps = if date_b {
        "YD"
    } else if date_c {
        "XxwF"
    } else if date_d {
        "XWF"
    } else {
        "YMD"
    };
    let time_comps = if time_b { "Phmsf" } else { "Hmsf" };
    let mut values: std::collections::HashMap<char, f64> = std::collections::HashMap::new();
    for (c, v) in &comps {
        if let Some(v) = v {
            values.insert(*c, *v);
        }
    }
    let (mut start_specified, mut end_specified) = (false, false);
    for c in date_comps.chars().chain(time_comps.chars()) {
        if values.contains_key(&c) {
            start_specified = true;
            if end_specified {
                return fail(
                    "D3136",
                    "The date/time picture string is missing specifiers required to parse the timestamp",
                );
            }
        } else if start_specified {
            values.insert(c, if "MDd".contains(c) { 1.0 } else { 0.0 });
            end_specified = true;
        } else {
            let v = match fragment(now, c) {
                Frag::Num(n) => n as f64,
                _ => 0.0,
            };
            values.insert(c, v);
        }
    }
    let v = |c: char| values.get(&c).copied().unwrap_or(f64::NAN);
    let mut month = if v('M') > 0.0 { v('M') - 1.0 } else { 0.0 };
    let mut day = v('D');
    if date_b {
        let first_jan = date_utc(v('Y'), 0.0, 1.0, 0.0, 0.0, 0.0, 0.0);
        let derived = first_jan + (v('d') - 1.0) * DAY_MS as f64;
        match DateTime::from_timestamp_millis(derived as i64) {
            Some(d) if derived.is_finite() => {
                month = d.month0() as f64;
                day = d.day() as f64;
            }
            _ => return Ok(None),
        }
    }
    if date_c || date_d {
        return fail(
            "D3136",
            "The date/time picture string is missing specifiers required to parse the timestamp",
        );
    }
    let mut hour = v('H');
    if time_b {
        hour = if v('h') == 12.0 { 0.0 } else { v('h') };
        if v('P') == 1.0 {
            hour += 12.0;
        }
    }
    let mut millis = date_utc(v('Y'), month, day, hour, v('m'), v('s'), v('f'));
    let zone = values.get(&'Z').or(values.get(&'z')).copied();
    if let Some(z) = zone.filter(|z| *z != 0.0 && !z.is_nan()) {
        millis -= z * 60_000.0;
    }
    Ok(if millis.is_finite() {
        Some(millis)
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    fn run(expr: &str) -> Result<Option<Value>, String> {
        super::super::evaluate_document(expr, None, &Map::new()).map_err(|(code, _)| code)
    }

    // expected values from the JSONata test suite (groups function-fromMillis, function-tomillis)
    #[test]
    fn from_millis_pictures() {
        for (expr, want) in [
            (
                "$fromMillis(1521801216617, 'Year: <[Y9,999,*]>')",
                "Year: <2,018>",
            ),
            (
                "$fromMillis(1521801216617, '[[Year]]: [[[Y0001]]]')",
                "[Year]: [2018]",
            ),
            ("$fromMillis(1522616700000, '[F0] [FNn]')", "7 Sunday"),
            (
                "$fromMillis(1521801216617, '[M01]/[D01]/[Y0001] at [H01]:[m01]:[s01]')",
                "03/23/2018 at 10:33:36",
            ),
            (
                "$fromMillis(1521801216617, '[Y]-[M01]-[D01]T[H01]:[m]:[s].[f001][Z01:01t]')",
                "2018-03-23T10:33:36.617Z",
            ),
            (
                "$fromMillis(1521801216617, '[Y]-[M01]-[D01]T[H01]:[m]:[s].[f001][Z0101t]', '+0100')",
                "2018-03-23T11:33:36.617+0100",
            ),
            (
                "$fromMillis(1531310400000, '[Y]-[M01]-[D01]T[H01]:[m]:[s][Z]', '-0500')",
                "2018-07-11T07:00:00-05:00",
            ),
            (
                "$fromMillis(1531310400000, '[Y]-[M01]-[D01]T[H01]:[m]:[s][Z0]', '+0530')",
                "2018-07-11T17:30:00+5:30",
            ),
            (
                "$fromMillis(1531310400000, '[Y]-[M01]-[D01]T[H01]:[m]:[s][z]', '-0500')",
                "2018-07-11T07:00:00GMT-05:00",
            ),
            (
                "$fromMillis(1521801216617, '[D#1,2]/[M1,2]/[Y,2]')",
                "23/03/18",
            ),
            (
                "$fromMillis(1521801216617, '[Da] [MA] [Yi]')",
                "w C mmxviii",
            ),
            (
                "$fromMillis(1521801216617, '[Dwo] [M01] [Y]')",
                "twenty-third 03 2018",
            ),
            (
                "$fromMillis(1521801216617, '[D1o] [MN] [Y]')",
                "23rd MARCH 2018",
            ),
            (
                "$fromMillis(1521801216617, '[FNn,3-3] [h]:[m01] [PN]')",
                "Fri 10:33 AM",
            ),
            (
                "$fromMillis(1104537600000, '[X0001]-W[W01]-[F1]')",
                "2004-W53-6",
            ),
        ] {
            assert_eq!(run(expr), Ok(Some(json!(want))), "{expr}");
        }
        for (expr, code) in [
            (
                "$fromMillis(1230757500000, '[Y]-[M01]-[D01]T[H01]:[m]:[s].[f001][Z010101t]', '+0530')",
                "D3134",
            ),
            ("$fromMillis(1521801216617, '[Y0001')", "D3135"),
            ("$fromMillis(1521801216617, '[q]')", "D3132"),
            ("$fromMillis(1521801216617, '[YN]')", "D3133"),
        ] {
            assert_eq!(run(expr), Err(code.to_string()), "{expr}");
        }
        // the execution's clock is not fixed here: only the shape is checked
        let now = run("$now('[Y0001]-[M01]-[D01]', '-0500')")
            .unwrap()
            .unwrap();
        assert_eq!(now.as_str().map(str::len), Some(10));
    }

    #[test]
    fn to_millis_pictures() {
        for (expr, want) in [
            ("$toMillis('2018', '[Y1]')", json!(1_514_764_800_000_i64)),
            (
                "$toMillis('2018-03-27T14:03:00.123Z', '[Y0001]-[M01]-[D01]T[H01]:[m01]:[s01].[f001]Z')",
                json!(1_522_159_380_123_i64),
            ),
            (
                "$toMillis('27th 3 1976', '[D1o] [M#1] [Y0001]')",
                json!(196_732_800_000_i64),
            ),
            (
                "$toMillis('21st 12 1881', '[D1o] [M01] [Y0001]')",
                json!(-2_777_932_800_000_i64),
            ),
            ("$toMillis('MCMLXXXIV', '[YI]')", json!(441_763_200_000_i64)),
            (
                "$toMillis('ae C mmxviii', '[Da] [MA] [Yi]')",
                json!(1_522_454_400_000_i64),
            ),
            (
                "$toMillis('27th April 2008', '[D1o] [MNn] [Y0001]')",
                json!(1_209_254_400_000_i64),
            ),
            (
                "$toMillis('20240101123849', '[Y0000][M00][D00][H00][m00][s00]')",
                json!(1_704_112_729_000_i64),
            ),
            (
                "$toMillis('2018-02-01T09:42:13.123+0000')",
                json!(1_517_478_133_123_i64),
            ),
            ("$toMillis('2018')", json!(1_514_764_800_000_i64)),
        ] {
            assert_eq!(run(expr), Ok(Some(want)), "{expr}");
        }
        assert_eq!(run("$toMillis('Hello', 'Hello')"), Ok(None));
        assert_eq!(
            run("$toMillis('2018-05-22', '[Y]-[M]-[q]')"),
            Err("D3132".into())
        );
        assert_eq!(run("$toMillis('2018 22', '[Y] [D]')"), Err("D3136".into()));
        assert_eq!(run("$toMillis('2018-02-03 11:15:33')"), Err("D3110".into()));
    }
}
