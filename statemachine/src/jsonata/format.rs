//! `$formatNumber` (XPath F&O 3.1 §4.7 picture strings), `$formatInteger` and `$parseInteger`
//! (§4.6), following the JSONata reference implementation (jsonata-js `functions.js` and
//! `datetime.js`) for behaviour and error codes.

use super::eval::{EvalError, fail};

type Res<T> = Result<T, EvalError>;

fn err<T>(code: &'static str, message: &str) -> Res<T> {
    fail(code, message.to_string())
}

fn find(s: &[char], c: char) -> Option<usize> {
    s.iter().position(|x| *x == c)
}

fn rfind(s: &[char], c: char) -> Option<usize> {
    s.iter().rposition(|x| *x == c)
}

fn count(s: &[char], c: char) -> usize {
    s.iter().filter(|x| **x == c).count()
}

/// The separators and signs of `$formatNumber` (its options object overrides them).
pub struct NumberFormat {
    pub decimal: char,
    pub grouping: char,
    pub exponent: char,
    pub minus: String,
    pub percent: char,
    pub per_mille: char,
    pub zero: char,
    pub digit: char,
    pub pattern: char,
}

impl Default for NumberFormat {
    fn default() -> Self {
        NumberFormat {
            decimal: '.',
            grouping: ',',
            exponent: 'e',
            minus: "-".into(),
            percent: '%',
            per_mille: '\u{2030}',
            zero: '0',
            digit: '#',
            pattern: ';',
        }
    }
}

impl NumberFormat {
    /// Applies one entry of the options object.
    pub fn set(&mut self, key: &str, value: &str) {
        let c = value.chars().next();
        match (key, c) {
            ("decimal-separator", Some(c)) => self.decimal = c,
            ("grouping-separator", Some(c)) => self.grouping = c,
            ("exponent-separator", Some(c)) => self.exponent = c,
            ("minus-sign", _) => self.minus = value.to_string(),
            ("percent", Some(c)) => self.percent = c,
            ("per-mille", Some(c)) => self.per_mille = c,
            ("zero-digit", Some(c)) => self.zero = c,
            ("digit", Some(c)) => self.digit = c,
            ("pattern-separator", Some(c)) => self.pattern = c,
            _ => {}
        }
    }

    fn is_decimal_digit(&self, c: char) -> bool {
        let z = self.zero as u32;
        (z..z + 10).contains(&(c as u32))
    }

    fn is_active(&self, c: char) -> bool {
        self.is_decimal_digit(c)
            || c == self.decimal
            || c == self.exponent
            || c == self.grouping
            || c == self.digit
            || c == self.pattern
    }
}

struct Parts {
    prefix: Vec<char>,
    suffix: Vec<char>,
    active: Vec<char>,
    mantissa: Vec<char>,
    exponent: Option<Vec<char>>,
    integer: Vec<char>,
    fraction: Vec<char>,
    picture: Vec<char>,
}

fn split_parts(f: &NumberFormat, sub: &[char]) -> Parts {
    let is_anchor = |c: char| f.is_active(c) && c != f.exponent;
    let prefix_len = sub.iter().position(|c| is_anchor(*c)).unwrap_or(0);
    let prefix: Vec<char> = sub[..prefix_len].to_vec();
    let suffix: Vec<char> = match sub.iter().rposition(|c| is_anchor(*c)) {
        Some(i) => sub[i + 1..].to_vec(),
        None => Vec::new(),
    };
    let active: Vec<char> = sub[prefix.len()..sub.len() - suffix.len()].to_vec();
    let exp_pos = sub[prefix.len()..]
        .iter()
        .position(|c| *c == f.exponent)
        .map(|p| p + prefix.len());
    let (mantissa, exponent) = match exp_pos {
        Some(p) if p <= sub.len() - suffix.len() => {
            // (the reference indexes the active part with a position in the whole sub-picture)
            let m: Vec<char> = active[..p.min(active.len())].to_vec();
            let e: Vec<char> = if p + 1 <= active.len() {
                active[p + 1..].to_vec()
            } else {
                Vec::new()
            };
            (m, Some(e))
        }
        _ => (active.clone(), None),
    };
    let (integer, fraction) = match find(&mantissa, f.decimal) {
        None => (mantissa.clone(), suffix.clone()),
        Some(d) => (mantissa[..d].to_vec(), mantissa[d + 1..].to_vec()),
    };
    Parts {
        prefix,
        suffix,
        active,
        mantissa,
        exponent,
        integer,
        fraction,
        picture: sub.to_vec(),
    }
}

fn validate(f: &NumberFormat, p: &Parts) -> Res<()> {
    let sub = &p.picture;
    let mut error: Option<&'static str> = None;
    let dec = find(sub, f.decimal);
    if dec != rfind(sub, f.decimal) {
        error = Some("D3081");
    }
    if count(sub, f.percent) > 1 {
        error = Some("D3082");
    }
    if count(sub, f.per_mille) > 1 {
        error = Some("D3083");
    }
    if find(sub, f.percent).is_some() && find(sub, f.per_mille).is_some() {
        error = Some("D3084");
    }
    if !p
        .mantissa
        .iter()
        .any(|c| f.is_decimal_digit(*c) || *c == f.digit)
    {
        error = Some("D3085");
    }
    if p.active.iter().any(|c| !f.is_active(*c)) {
        error = Some("D3086");
    }
    match dec {
        Some(d) => {
            if (d > 0 && sub[d - 1] == f.grouping) || sub.get(d + 1) == Some(&f.grouping) {
                error = Some("D3087");
            }
        }
        None => {
            if p.integer.last() == Some(&f.grouping) {
                error = Some("D3088");
            }
        }
    }
    if sub
        .windows(2)
        .any(|w| w[0] == f.grouping && w[1] == f.grouping)
    {
        error = Some("D3089");
    }
    if let Some(o) = find(&p.integer, f.digit) {
        if p.integer[..o].iter().any(|c| f.is_decimal_digit(*c)) {
            error = Some("D3090");
        }
    }
    if let Some(o) = rfind(&p.fraction, f.digit) {
        if p.fraction[o..].iter().any(|c| f.is_decimal_digit(*c)) {
            error = Some("D3091");
        }
    }
    if let Some(e) = &p.exponent {
        if !e.is_empty() && (find(sub, f.percent).is_some() || find(sub, f.per_mille).is_some()) {
            error = Some("D3092");
        }
        if e.is_empty() || e.iter().any(|c| !f.is_decimal_digit(*c)) {
            error = Some("D3093");
        }
    }
    match error {
        Some(code) => fail(
            code,
            format!("Invalid picture string for $formatNumber ({code})"),
        ),
        None => Ok(()),
    }
}

#[derive(Clone)]
struct Analysis {
    int_groups: Vec<usize>,
    regular: usize,
    min_int: usize,
    scaling: i32,
    prefix: String,
    frac_groups: Vec<usize>,
    min_frac: usize,
    max_frac: usize,
    min_exp: usize,
    suffix: String,
    picture: Vec<char>,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn regular(indexes: &[usize]) -> usize {
    if indexes.is_empty() {
        return 0;
    }
    let factor = indexes.iter().copied().reduce(gcd).unwrap_or(0);
    for i in 1..=indexes.len() {
        if !indexes.contains(&(i * factor)) {
            return 0;
        }
    }
    factor
}

fn analyse(f: &NumberFormat, p: &Parts) -> Analysis {
    let is_digit = |c: &char| f.is_decimal_digit(*c) || *c == f.digit;
    // the grouping positions, searched in the integer part (as the reference does)
    let groups = |part: &[char], to_left: bool| -> Vec<usize> {
        let mut out = Vec::new();
        let mut pos = find(part, f.grouping);
        while let Some(g) = pos {
            let n = if to_left {
                part[..g].iter().filter(|c| is_digit(c)).count()
            } else {
                part[g..].iter().filter(|c| is_digit(c)).count()
            };
            out.push(n);
            pos = p
                .integer
                .iter()
                .skip(g + 1)
                .position(|c| *c == f.grouping)
                .map(|q| q + g + 1);
        }
        out
    };
    let int_groups = groups(&p.integer, false);
    let regular = regular(&int_groups);
    let frac_groups = groups(&p.fraction, true);
    let mut min_int = p.integer.iter().filter(|c| f.is_decimal_digit(**c)).count();
    let scaling = min_int as i32;
    let mut min_frac = p
        .fraction
        .iter()
        .filter(|c| f.is_decimal_digit(**c))
        .count();
    let mut max_frac = p.fraction.iter().filter(|c| is_digit(c)).count();
    let exp_present = p.exponent.is_some();
    if min_int == 0 && max_frac == 0 {
        if exp_present {
            min_frac = 1;
            max_frac = 1;
        } else {
            min_int = 1;
        }
    }
    if exp_present && min_int == 0 && find(&p.integer, f.digit).is_some() {
        min_int = 1;
    }
    if min_int == 0 && min_frac == 0 {
        min_frac = 1;
    }
    let min_exp = p
        .exponent
        .as_ref()
        .map(|e| e.iter().filter(|c| f.is_decimal_digit(**c)).count())
        .unwrap_or(0);
    Analysis {
        int_groups,
        regular,
        min_int,
        scaling,
        prefix: p.prefix.iter().collect(),
        frac_groups,
        min_frac,
        max_frac,
        min_exp,
        suffix: p.suffix.iter().collect(),
        picture: p.picture.clone(),
    }
}

/// `$formatNumber(value, picture)` with the format `f`.
pub fn format_number(value: f64, picture: &str, f: &NumberFormat) -> Res<String> {
    let pic: Vec<char> = picture.chars().collect();
    let subs: Vec<&[char]> = pic.split(|c| *c == f.pattern).collect();
    if subs.len() > 2 {
        return err(
            "D3080",
            "The picture string must not contain more than one pattern separator",
        );
    }
    let parts: Vec<Parts> = subs.iter().map(|s| split_parts(f, s)).collect();
    for p in &parts {
        validate(f, p)?;
    }
    let mut vars: Vec<Analysis> = parts.iter().map(|p| analyse(f, p)).collect();
    if vars.len() == 1 {
        let mut neg = vars[0].clone();
        neg.prefix = format!("{}{}", f.minus, neg.prefix);
        vars.push(neg);
    }
    let pic = if value >= 0.0 { &vars[0] } else { &vars[1] };
    let adjusted = if pic.picture.contains(&f.percent) {
        value * 100.0
    } else if pic.picture.contains(&f.per_mille) {
        value * 1000.0
    } else {
        value
    };
    let (mantissa, exponent) = if pic.min_exp == 0 {
        (adjusted, None)
    } else {
        let max_m = 10f64.powi(pic.scaling);
        let min_m = 10f64.powi(pic.scaling - 1);
        let mut m = adjusted;
        let mut e: i32 = 0;
        if m != 0.0 && m.is_finite() {
            while m.abs() < min_m {
                m *= 10.0;
                e -= 1;
            }
            while m.abs() > max_m {
                m /= 10.0;
                e += 1;
            }
        }
        (m, Some(e))
    };
    let rounded = super::builtins::round(mantissa, pic.max_frac as i32);
    let zero = f.zero;
    let make_string = |v: f64, dp: usize| -> String {
        let s = format!("{:.*}", dp, v.abs());
        if zero != '0' {
            s.chars()
                .map(|c| {
                    if c.is_ascii_digit() {
                        char::from_u32(zero as u32 + (c as u32 - '0' as u32)).unwrap_or(c)
                    } else {
                        c
                    }
                })
                .collect()
        } else {
            s
        }
    };
    let s = make_string(rounded, pic.max_frac);
    let mut sv: Vec<char> = s.chars().collect();
    match find(&sv, '.') {
        None => sv.push(f.decimal),
        Some(i) => sv[i] = f.decimal,
    }
    while sv.first() == Some(&zero) {
        sv.remove(0);
    }
    while sv.last() == Some(&zero) {
        sv.pop();
    }
    let dp = find(&sv, f.decimal).unwrap_or(0);
    let pad_left = pic.min_int as i64 - dp as i64;
    let pad_right = pic.min_frac as i64 - (sv.len() as i64 - dp as i64 - 1);
    if pad_left > 0 {
        let mut v = vec![zero; pad_left as usize];
        v.extend(sv);
        sv = v;
    }
    if pad_right > 0 {
        sv.extend(std::iter::repeat_n(zero, pad_right as usize));
    }
    let mut dp = find(&sv, f.decimal).unwrap_or(0);
    if pic.regular > 0 {
        let groups = (dp as i64 - 1).max(0) as usize / pic.regular;
        for g in 1..=groups {
            sv.insert(dp - g * pic.regular, f.grouping);
        }
    } else {
        for pos in &pic.int_groups {
            if *pos <= dp {
                sv.insert(dp - pos, f.grouping);
            }
            dp += 1;
        }
    }
    let dp = find(&sv, f.decimal).unwrap_or(0);
    for pos in &pic.frac_groups {
        let at = (pos + dp + 1).min(sv.len());
        sv.insert(at, f.grouping);
    }
    let dp = find(&sv, f.decimal);
    if !pic.picture.contains(&f.decimal) || dp == Some(sv.len() - 1) {
        sv.pop();
    }
    let mut out: String = sv.into_iter().collect();
    if let Some(e) = exponent {
        let mut se = make_string(e as f64, 0);
        let n = se.chars().count();
        if pic.min_exp > n {
            se = format!("{}{se}", zero.to_string().repeat(pic.min_exp - n));
        }
        out.push(f.exponent);
        if e < 0 {
            out.push_str(&f.minus);
        }
        out.push_str(&se);
    }
    Ok(format!("{}{out}{}", pic.prefix, pic.suffix))
}

// ---- $formatInteger / $parseInteger

const FEW: [&str; 20] = [
    "Zero",
    "One",
    "Two",
    "Three",
    "Four",
    "Five",
    "Six",
    "Seven",
    "Eight",
    "Nine",
    "Ten",
    "Eleven",
    "Twelve",
    "Thirteen",
    "Fourteen",
    "Fifteen",
    "Sixteen",
    "Seventeen",
    "Eighteen",
    "Nineteen",
];
const ORDINALS: [&str; 20] = [
    "Zeroth",
    "First",
    "Second",
    "Third",
    "Fourth",
    "Fifth",
    "Sixth",
    "Seventh",
    "Eighth",
    "Ninth",
    "Tenth",
    "Eleventh",
    "Twelfth",
    "Thirteenth",
    "Fourteenth",
    "Fifteenth",
    "Sixteenth",
    "Seventeenth",
    "Eighteenth",
    "Nineteenth",
];
const DECADES: [&str; 9] = [
    "Twenty", "Thirty", "Forty", "Fifty", "Sixty", "Seventy", "Eighty", "Ninety", "Hundred",
];
const MAGNITUDES: [&str; 4] = ["Thousand", "Million", "Billion", "Trillion"];

fn words(num: f64, prev: bool, ord: bool) -> String {
    let mut w;
    if num <= 19.0 {
        w = format!(
            "{}{}",
            if prev { " and " } else { "" },
            if ord {
                ORDINALS[num as usize]
            } else {
                FEW[num as usize]
            }
        );
    } else if num < 100.0 {
        let tens = (num / 10.0).floor() as usize;
        let rem = num % 10.0;
        w = format!("{}{}", if prev { " and " } else { "" }, DECADES[tens - 2]);
        if rem > 0.0 {
            w.push('-');
            w.push_str(&words(rem, false, ord));
        } else if ord {
            w.pop();
            w.push_str("ieth");
        }
    } else if num < 1000.0 {
        let hundreds = (num / 100.0).floor() as usize;
        let rem = num % 100.0;
        w = format!("{}{} Hundred", if prev { ", " } else { "" }, FEW[hundreds]);
        if rem > 0.0 {
            w.push_str(&words(rem, true, ord));
        } else if ord {
            w.push_str("th");
        }
    } else {
        let mut mag = (num.log10() / 3.0).floor() as usize;
        if mag > MAGNITUDES.len() {
            mag = MAGNITUDES.len();
        }
        let factor = 10f64.powi(mag as i32 * 3);
        let mant = (num / factor).floor();
        let rem = num - mant * factor;
        w = format!(
            "{}{} {}",
            if prev { ", " } else { "" },
            words(mant, false, false),
            MAGNITUDES[mag - 1]
        );
        if rem > 0.0 {
            w.push_str(&words(rem, true, ord));
        } else if ord {
            w.push_str("th");
        }
    }
    w
}

fn word_value(word: &str) -> Option<f64> {
    if let Some(i) = FEW.iter().position(|w| w.eq_ignore_ascii_case(word)) {
        return Some(i as f64);
    }
    if let Some(i) = ORDINALS.iter().position(|w| w.eq_ignore_ascii_case(word)) {
        return Some(i as f64);
    }
    for (i, d) in DECADES.iter().enumerate() {
        let l = d.to_lowercase();
        let ieth = format!("{}ieth", &l[..l.len() - 1]);
        if word == l || word == ieth {
            return Some(((i + 2) * 10) as f64);
        }
    }
    if word == "hundredth" {
        return Some(100.0);
    }
    for (i, m) in MAGNITUDES.iter().enumerate() {
        let l = m.to_lowercase();
        if word == l || word == format!("{l}th") {
            return Some(10f64.powi((i as i32 + 1) * 3));
        }
    }
    None
}

fn words_to_number(text: &str) -> f64 {
    // split on ", ", " and ", whitespace, '\' or '-'
    let t = text.replace(", ", " ").replace(" and ", " ");
    let mut segs: Vec<f64> = vec![0.0];
    for part in t.split(|c: char| c.is_whitespace() || c == '-' || c == '\\') {
        let Some(v) = word_value(part) else {
            // undefined in the reference: the arithmetic gives NaN
            return f64::NAN;
        };
        if v < 100.0 {
            let mut top = segs.pop().unwrap_or(0.0);
            if top >= 1000.0 {
                segs.push(top);
                top = 0.0;
            }
            segs.push(top + v);
        } else {
            let top = segs.pop().unwrap_or(0.0);
            segs.push(top * v);
        }
    }
    segs.iter().sum()
}

const ROMAN: [(u64, &str); 13] = [
    (1000, "m"),
    (900, "cm"),
    (500, "d"),
    (400, "cd"),
    (100, "c"),
    (90, "xc"),
    (50, "l"),
    (40, "xl"),
    (10, "x"),
    (9, "ix"),
    (5, "v"),
    (4, "iv"),
    (1, "i"),
];

/// The largest number `$formatInteger` writes in roman numerals (plus one).
const MAX_ROMAN: f64 = 1e7;

fn to_roman(mut v: u64) -> String {
    let mut out = String::new();
    'outer: while v > 0 {
        for (n, s) in ROMAN {
            if v >= n {
                out.push_str(s);
                v -= n;
                continue 'outer;
            }
        }
    }
    out
}

fn from_roman(s: &str) -> f64 {
    let mut dec = 0.0;
    let mut max = 1.0;
    for c in s.chars().rev() {
        let v = match c {
            'M' => 1000.0,
            'D' => 500.0,
            'C' => 100.0,
            'L' => 50.0,
            'X' => 10.0,
            'V' => 5.0,
            'I' => 1.0,
            _ => return f64::NAN,
        };
        if v < max {
            dec -= v;
        } else {
            max = v;
            dec += v;
        }
    }
    dec
}

fn to_letters(mut v: u64, a: char) -> String {
    let mut letters = Vec::new();
    while v > 0 {
        letters.push(char::from_u32((v - 1) as u32 % 26 + a as u32).unwrap_or('?'));
        v = (v - 1) / 26;
    }
    letters.iter().rev().collect()
}

fn from_letters(s: &str, a: char) -> f64 {
    let cs: Vec<char> = s.chars().collect();
    let mut dec = 0.0;
    for (i, c) in cs.iter().rev().enumerate() {
        dec += (*c as i64 - a as i64 + 1) as f64 * 26f64.powi(i as i32);
    }
    dec
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Primary {
    Decimal,
    Letters,
    Roman,
    Words,
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Case {
    Upper,
    Lower,
    Title,
}

/// An analysed integer picture (F&O §4.6.1).
pub struct IntegerFormat {
    pub(super) primary: Primary,
    pub(super) case: Case,
    pub(super) ordinal: bool,
    pub(super) zero: u32,
    pub(super) mandatory: usize,
    pub(super) optional: usize,
    /// regular grouping: (interval, character)
    pub(super) regular: Option<(usize, char)>,
    /// irregular grouping: (position from the right, character)
    pub(super) separators: Vec<(usize, char)>,
    /// the exact number of digits to read (a date component followed by another)
    pub(super) parse_width: Option<usize>,
}

const DECIMAL_GROUPS: [u32; 37] = [
    0x30, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
    0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80,
    0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
    0xFF10,
];

pub fn analyse_integer_picture(picture: &str) -> Res<IntegerFormat> {
    let mut f = IntegerFormat {
        primary: Primary::Decimal,
        case: Case::Lower,
        ordinal: false,
        zero: 0x30,
        mandatory: 0,
        optional: 0,
        regular: None,
        separators: Vec::new(),
        parse_width: None,
    };
    let primary = match picture.rfind(';') {
        None => picture,
        Some(i) => {
            if picture[i + 1..].starts_with('o') {
                f.ordinal = true;
            }
            &picture[..i]
        }
    };
    match primary {
        "A" => (f.case, f.primary) = (Case::Upper, Primary::Letters),
        "a" => f.primary = Primary::Letters,
        "I" => (f.case, f.primary) = (Case::Upper, Primary::Roman),
        "i" => f.primary = Primary::Roman,
        "W" => (f.case, f.primary) = (Case::Upper, Primary::Words),
        "Ww" => (f.case, f.primary) = (Case::Title, Primary::Words),
        "w" => f.primary = Primary::Words,
        _ => {
            let mut zero: Option<u32> = None;
            let mut mandatory = 0;
            let mut optional = 0;
            let mut position = 0;
            let mut seps: Vec<(usize, char)> = Vec::new();
            for c in primary.chars().rev() {
                let cp = c as u32;
                if let Some(g) = DECIMAL_GROUPS
                    .iter()
                    .find(|g| (**g..=**g + 9).contains(&cp))
                {
                    mandatory += 1;
                    position += 1;
                    match zero {
                        None => zero = Some(*g),
                        Some(z) if z != *g => {
                            return err(
                                "D3131",
                                "In a decimal digit pattern, all digits must be from the same decimal group",
                            );
                        }
                        _ => {}
                    }
                } else if c == '#' {
                    position += 1;
                    optional += 1;
                } else {
                    seps.push((position, c));
                }
            }
            if mandatory == 0 {
                return fail(
                    "D3130",
                    format!(
                        "Formatting or parsing an integer as a sequence starting with {primary} is not supported by this implementation"
                    ),
                );
            }
            f.zero = zero.unwrap_or(0x30);
            f.mandatory = mandatory;
            f.optional = optional;
            let same = seps.iter().all(|s| Some(s.1) == seps.first().map(|s| s.1));
            let interval = if same {
                regular(&seps.iter().map(|s| s.0).collect::<Vec<_>>())
            } else {
                0
            };
            if interval > 0 {
                f.regular = Some((interval, seps[0].1));
            } else {
                f.separators = seps;
            }
        }
    }
    Ok(f)
}

pub fn format_integer_with(value: f64, f: &IntegerFormat) -> String {
    let negative = value < 0.0;
    let v = value.abs();
    let mut out = match f.primary {
        Primary::Letters => to_letters(v as u64, if f.case == Case::Upper { 'A' } else { 'a' }),
        Primary::Roman => {
            let r = to_roman(v as u64);
            if f.case == Case::Upper {
                r.to_uppercase()
            } else {
                r
            }
        }
        Primary::Words => {
            let w = words(v, false, f.ordinal);
            match f.case {
                Case::Upper => w.to_uppercase(),
                Case::Lower => w.to_lowercase(),
                Case::Title => w,
            }
        }
        Primary::Decimal => {
            let mut s: Vec<char> = super::builtins::js_number(v).chars().collect();
            if f.mandatory > s.len() {
                let mut p = vec!['0'; f.mandatory - s.len()];
                p.extend(s);
                s = p;
            }
            if f.zero != 0x30 {
                s = s
                    .into_iter()
                    .map(|c| char::from_u32(c as u32 + f.zero - 0x30).unwrap_or(c))
                    .collect();
            }
            if let Some((interval, c)) = f.regular {
                let n = (s.len() - 1) / interval;
                for i in (1..=n).rev() {
                    let pos = s.len() - i * interval;
                    s.insert(pos, c);
                }
            } else {
                for (position, c) in f.separators.iter().rev() {
                    let pos = s.len().saturating_sub(*position);
                    s.insert(pos, *c);
                }
            }
            if f.ordinal {
                let last = s.last().copied();
                let tens = if s.len() > 1 {
                    s.get(s.len() - 2).copied()
                } else {
                    None
                };
                let suffix = match last {
                    _ if tens == Some('1') => "th",
                    Some('1') => "st",
                    Some('2') => "nd",
                    Some('3') => "rd",
                    _ => "th",
                };
                s.extend(suffix.chars());
            }
            s.into_iter().collect()
        }
    };
    if negative {
        out.insert(0, '-');
    }
    out
}

/// `$formatInteger(value, picture)`.
pub fn format_integer(value: f64, picture: &str) -> Res<String> {
    let f = analyse_integer_picture(picture)?;
    if f.primary == Primary::Roman && value.abs() >= MAX_ROMAN {
        // (the reference overflows its stack long before)
        return fail(
            "D3130",
            format!("{value} is too large to be written in roman numerals"),
        );
    }
    Ok(format_integer_with(value.floor(), &f))
}

/// `$parseInteger(value, picture)`; `None` when the text does not give a number.
pub fn parse_integer(value: &str, picture: &str) -> Res<Option<f64>> {
    let f = analyse_integer_picture(picture)?;
    let n = parse_with(value, &f);
    Ok(if n.is_finite() { Some(n) } else { None })
}

/// The regular expression that matches an integer formatted with `f` (in a date).
pub(super) fn integer_regex(f: &IntegerFormat) -> String {
    let upper = f.case == Case::Upper;
    match f.primary {
        Primary::Letters => if upper { "[A-Z]+" } else { "[a-z]+" }.to_string(),
        Primary::Roman => if upper { "[MDCLXVI]+" } else { "[mdclxvi]+" }.to_string(),
        Primary::Words => {
            let mut words: Vec<String> = Vec::new();
            words.extend(FEW.iter().map(|w| w.to_lowercase()));
            words.extend(ORDINALS.iter().map(|w| w.to_lowercase()));
            for d in DECADES {
                let l = d.to_lowercase();
                words.push(format!("{}ieth", &l[..l.len() - 1]));
                words.push(l);
            }
            words.push("hundredth".into());
            for m in MAGNITUDES {
                let l = m.to_lowercase();
                words.push(format!("{l}th"));
                words.push(l);
            }
            words.push("and".into());
            words.push("[\\-, ]".into());
            format!("(?:{})+", words.join("|"))
        }
        Primary::Decimal => {
            let mut r = match f.parse_width {
                Some(w) => format!("[0-9]{{{w}}}"),
                None => "[0-9]+".to_string(),
            };
            if f.ordinal {
                r.push_str("(?:th|st|nd|rd)");
            }
            r
        }
    }
}

/// The integer a text formatted with `f` holds (NaN when none).
pub(super) fn parse_with(value: &str, f: &IntegerFormat) -> f64 {
    match f.primary {
        Primary::Letters => from_letters(value, if f.case == Case::Upper { 'A' } else { 'a' }),
        Primary::Roman => from_roman(&if f.case == Case::Upper {
            value.to_string()
        } else {
            value.to_uppercase()
        }),
        Primary::Words => words_to_number(&value.to_lowercase()),
        Primary::Decimal => {
            let mut digits = value.to_string();
            if f.ordinal {
                let n = digits.chars().count().saturating_sub(2);
                digits = digits.chars().take(n).collect();
            }
            if f.regular.is_some() {
                digits = digits.replace(',', "");
            } else {
                for (_, c) in &f.separators {
                    digits = digits.replace(*c, "");
                }
            }
            if f.zero != 0x30 {
                digits = digits
                    .chars()
                    .map(|c| char::from_u32((c as u32).wrapping_sub(f.zero) + 0x30).unwrap_or(c))
                    .collect();
            }
            // parseInt: the leading digits, after optional whitespace and sign
            let t = digits.trim_start();
            let (sign, rest) = match t.strip_prefix('-') {
                Some(r) => (-1.0, r),
                None => (1.0, t.strip_prefix('+').unwrap_or(t)),
            };
            let lead: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if lead.is_empty() {
                f64::NAN
            } else {
                sign * lead.parse::<f64>().unwrap_or(f64::NAN)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    fn run(expr: &str) -> Result<Option<Value>, String> {
        super::super::evaluate_document(expr, None, &Map::new()).map_err(|(code, _)| code)
    }

    fn check(cases: &[(&str, Value)]) {
        for (expr, want) in cases {
            assert_eq!(run(expr), Ok(Some(want.clone())), "{expr}");
        }
    }

    fn check_errors(cases: &[(&str, &str)]) {
        for (expr, code) in cases {
            assert_eq!(run(expr), Err(code.to_string()), "{expr}");
        }
    }

    // expected values from the JSONata test suite (group function-formatNumber)
    #[test]
    fn format_number() {
        check(&[
            ("$formatNumber(12345.6, '#,###.00')", json!("12,345.60")),
            (
                "$formatNumber(12345678.9, '9,999.99')",
                json!("12,345,678.90"),
            ),
            (
                "$formatNumber(123412345678.9, '9,9,99.99')",
                json!("123412345,6,78.90"),
            ),
            (
                "$formatNumber(1234.56789, '9,999.999,999')",
                json!("1,234.567,890"),
            ),
            ("$formatNumber(123.9, '9999')", json!("0124")),
            ("$formatNumber(0.14, '01%')", json!("14%")),
            ("$formatNumber(0.4857,'###.###‰')", json!("485.7‰")),
            (
                "$formatNumber(0.14, '###pm', {'per-mille': 'pm'})",
                json!("140pm"),
            ),
            ("$formatNumber(1234.5678, '00.000e0')", json!("12.346e2")),
            ("$formatNumber(0.234, '0.0e0')", json!("2.3e-1")),
            ("$formatNumber(0.234, '#.00e0')", json!("0.23e0")),
            ("$formatNumber(0.123, '.00e0')", json!(".12e0")),
            ("$formatNumber(0.234, '0.0e00')", json!("2.3e-01")),
            ("$formatNumber(-6, '000')", json!("-006")),
            ("$formatNumber(-6, '000;000-')", json!("006-")),
            (
                "$formatNumber(1234.5678, '#,##\u{0660}.\u{0660}\u{0660}', {'zero-digit': '\u{0660}'})",
                json!("\u{0661},\u{0662}\u{0663}\u{0664}.\u{0665}\u{0667}"),
            ),
            (
                "$formatNumber(1234.5678, '#.##0,00', {'decimal-separator': ',', 'grouping-separator': '.'})",
                json!("1.234,57"),
            ),
            ("$formatNumber(34.555, '#0.00;(#0.00)')", json!("34.56")),
            ("$formatNumber(-34.555, '#0.00;(#0.00)')", json!("(34.56)")),
            (
                "$formatNumber(1e20, '#,######')",
                json!("100,000000,000000,000000"),
            ),
            ("$formatNumber(0, '0.0e0')", json!("0.0e0")),
        ]);
        assert_eq!(run("$formatNumber(undefined, '#')"), Ok(None));
        check_errors(&[
            ("$formatNumber(20,'#;#;#')", "D3080"),
            ("$formatNumber(20,'#.0.0')", "D3081"),
            ("$formatNumber(20,'#0%%')", "D3082"),
            ("$formatNumber(20,'#0‰‰')", "D3083"),
            ("$formatNumber(20,'#0%‰')", "D3084"),
            ("$formatNumber(20,'.e0')", "D3085"),
            ("$formatNumber(20,'0+.e0')", "D3086"),
            ("$formatNumber(20,'0,.e0')", "D3087"),
            ("$formatNumber(20,'0,')", "D3088"),
            ("$formatNumber(20,'0,,0')", "D3089"),
            ("$formatNumber(20,'0#.e0')", "D3090"),
            ("$formatNumber(20,'#0.#0e0')", "D3091"),
            ("$formatNumber(20,'#0.0e0%')", "D3092"),
            ("$formatNumber(20,'#0.0e0,0')", "D3093"),
            ("$formatNumber('x','#')", "T0410"),
        ]);
    }

    // expected values from the JSONata test suite (groups function-formatInteger, -parseInteger)
    #[test]
    fn format_integer() {
        check(&[
            ("$formatInteger(123, '000')", json!("123")),
            ("$formatInteger(12, '000')", json!("012")),
            ("$formatInteger(-12, '000')", json!("-012")),
            ("$formatInteger(1234567, '#,##0')", json!("1,234,567")),
            ("$formatInteger(1234567, '#,###,##0')", json!("1,234,567")),
            (
                "$formatInteger(1234567890, '#:##:#0')",
                json!("12:34:56:78:90"),
            ),
            (
                "$formatInteger(1234567890, '#:#|##0')",
                json!("123456:7|890"),
            ),
            ("$formatInteger(123, '١')", json!("١٢٣")),
            ("$formatInteger(7, 'a')", json!("g")),
            ("$formatInteger(27, 'A')", json!("AA")),
            ("$formatInteger(1999, 'I')", json!("MCMXCIX")),
            ("$formatInteger(2024, 'i')", json!("mmxxiv")),
            (
                "$formatInteger(123, 'w')",
                json!("one hundred and twenty-three"),
            ),
            (
                "$formatInteger(4000001, 'W')",
                json!("FOUR MILLION AND ONE"),
            ),
            (
                "$formatInteger(1234, 'Ww')",
                json!("One Thousand, Two Hundred and Thirty-Four"),
            ),
            ("$formatInteger(20, 'w;o')", json!("twentieth")),
            ("$formatInteger(101, 'w;o')", json!("one hundred and first")),
            ("$formatInteger(11, '0;o')", json!("11th")),
            ("$formatInteger(22, '0;o')", json!("22nd")),
            ("$formatInteger(1003, '#,##0;o')", json!("1,003rd")),
        ]);
        check_errors(&[
            ("$formatInteger(1e15, 'I')", "D3130"),
            ("$formatInteger(123, 'x')", "D3130"),
            ("$formatInteger(123, '0١')", "D3131"),
        ]);
    }

    #[test]
    fn parse_integer() {
        check(&[
            ("$parseInteger('123', '000')", json!(123)),
            ("$parseInteger('1,234,567', '#,##0')", json!(1_234_567)),
            (
                "$parseInteger('123456:7|890', '#:#|##0')",
                json!(1_234_567_890),
            ),
            ("$parseInteger('١٢٣', '١')", json!(123)),
            ("$parseInteger('aa', 'a')", json!(27)),
            ("$parseInteger('MCMXCIX', 'I')", json!(1999)),
            ("$parseInteger('mmxxiv', 'i')", json!(2024)),
            (
                "$parseInteger('one hundred and twenty-three', 'w')",
                json!(123),
            ),
            (
                "$parseInteger('FOUR MILLION AND ONE', 'W')",
                json!(4_000_001),
            ),
            (
                "$parseInteger('One Thousand, Two Hundred and Thirty-Four', 'Ww')",
                json!(1234),
            ),
            ("$parseInteger('twentieth', 'w;o')", json!(20)),
            ("$parseInteger('22nd', '0;o')", json!(22)),
        ]);
        check_errors(&[("$parseInteger('123', 'x')", "D3130")]);
        for n in [
            0, 1, 9, 19, 20, 99, 100, 101, 999, 1000, 1001, 123_456, 9_999_999,
        ] {
            let expr = format!("$parseInteger($formatInteger({n}, 'w'), 'w')");
            assert_eq!(run(&expr), Ok(Some(json!(n))), "{expr}");
        }
    }
}
