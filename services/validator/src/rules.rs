//! The checks of one row (type, null, required, min, max, pattern, allowed), the reasons they give,
//! and the canonical form of a valid row.
//!
//! Every reason is kept twice: as a sentence with the value, for the invalid-rows file, and as a
//! [`ReasonKey`] (column + kind, no value), so counting the most common reasons stays a small map
//! however many rows fail.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use csv::ByteRecord;
use sluice_proto::ReasonCount;
use sluice_spec::config::{Column, Dataset};
use sluice_spec::values::{ColumnType, TypeMismatch, Value, parse_raw, write_canonical};

/// What kind of problem a reason is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Required,
    NotType,
    NotFinite,
    OutOfRange,
    BelowMin,
    AboveMax,
    Pattern,
    NotAllowed,
    DuplicateKey,
    FieldCount,
    TooLarge,
}

/// A reason without its value: what `top_reasons` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ReasonKey {
    /// Index into the dataset's columns; `None` for row-level reasons (field count, duplicate key).
    pub column: Option<usize>,
    pub kind: Kind,
}

impl ReasonKey {
    /// The grouped form, e.g. `volume: below the minimum 0`.
    fn template(self, ds: &Dataset) -> String {
        let what = match self.kind {
            Kind::DuplicateKey => return format!("{}: duplicate key", key_names(ds)),
            Kind::FieldCount => return "wrong number of fields".to_string(),
            Kind::TooLarge => return "too large for the row store".to_string(),
            Kind::Required => "required but empty".to_string(),
            Kind::NotType => match self.column.map(|c| ds.columns[c].ty) {
                Some(ColumnType::Integer) => "not an integer".to_string(),
                Some(ColumnType::Float) => "not a number".to_string(),
                Some(ColumnType::Boolean) => "not a boolean".to_string(),
                Some(ColumnType::Date) => "not a date".to_string(),
                Some(ColumnType::Datetime) => "not a datetime".to_string(),
                Some(ColumnType::String) | None => "not valid".to_string(),
            },
            Kind::NotFinite => "not a finite number".to_string(),
            Kind::OutOfRange => "integer out of range".to_string(),
            Kind::BelowMin => match self.column.and_then(|c| ds.columns[c].min) {
                Some(min) => format!("below the minimum {min}"),
                None => "below the minimum".to_string(),
            },
            Kind::AboveMax => match self.column.and_then(|c| ds.columns[c].max) {
                Some(max) => format!("above the maximum {max}"),
                None => "above the maximum".to_string(),
            },
            Kind::Pattern => match self.column.and_then(|c| ds.columns[c].pattern.as_ref()) {
                Some(p) => format!("does not match the pattern {p}"),
                None => "does not match the pattern".to_string(),
            },
            Kind::NotAllowed => "not one of the allowed values".to_string(),
        };
        match self.column {
            Some(c) => format!("{}: {what}", ds.columns[c].name),
            None => what,
        }
    }
}

/// The key columns' names as reasons name them: `date`, or `symbol, date`.
pub(crate) fn key_names(ds: &Dataset) -> String {
    ds.key
        .iter()
        .map(|&k| ds.columns[k].name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many rows each kind of reason made invalid.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    counts: HashMap<ReasonKey, u64>,
}

impl Tally {
    pub(crate) fn add(&mut self, key: ReasonKey) {
        *self.counts.entry(key).or_default() += 1;
    }

    /// The `n` most frequent reasons, most frequent first, ties by reason text.
    pub(crate) fn top(&self, ds: &Dataset, n: usize) -> Vec<ReasonCount> {
        let mut all: Vec<ReasonCount> = self
            .counts
            .iter()
            .map(|(k, &rows)| ReasonCount {
                reason: k.template(ds),
                rows,
            })
            .collect();
        all.sort_by(|a, b| b.rows.cmp(&a.rows).then_with(|| a.reason.cmp(&b.reason)));
        all.truncate(n);
        all
    }
}

/// What the checks of each column need besides the column itself, computed once per run.
struct ColumnPlan {
    /// `[a, b, c]` for the `allowed` message.
    allowed_text: String,
}

/// The largest row the row store takes: DynamoDB's item limit (400 KB, attribute names included).
pub(crate) const MAX_STORED_ROW_BYTES: usize = 400 * 1024;
/// The row store's own attributes (`dataset`, `row_key`, `run_id`, `item` and their map overhead).
const STORED_ROW_OVERHEAD: usize = 128;

/// A checked value without the borrow of the row it came from: a string's text is its canonical
/// field, every other value is here whole.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Typed {
    Null,
    Str,
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(chrono::NaiveDate),
    Datetime(chrono::NaiveDateTime),
}

impl Typed {
    fn of(value: Value<'_>) -> Typed {
        match value {
            Value::Null => Typed::Null,
            Value::Str(_) => Typed::Str,
            Value::Int(i) => Typed::Int(i),
            Value::Float(f) => Typed::Float(f),
            Value::Bool(b) => Typed::Bool(b),
            Value::Date(d) => Typed::Date(d),
            Value::Datetime(dt) => Typed::Datetime(dt),
        }
    }

    /// The value again; `canon` is the row's canonical field for this column (a string's text).
    pub(crate) fn value(self, canon: &[u8]) -> Value<'_> {
        match self {
            Typed::Null => Value::Null,
            // The canonical form has one null, the empty field: an empty string is read back as null.
            Typed::Str if canon.is_empty() => Value::Null,
            // The canonical field of a string is the `&str` it was checked as.
            Typed::Str => Value::Str(std::str::from_utf8(canon).unwrap_or_default()),
            Typed::Int(i) => Value::Int(i),
            Typed::Float(f) => Value::Float(f),
            Typed::Bool(b) => Value::Bool(b),
            Typed::Date(d) => Value::Date(d),
            Typed::Datetime(dt) => Value::Datetime(dt),
        }
    }
}

/// Checks rows one at a time, reusing its buffers so a valid row allocates nothing.
pub(crate) struct Checker<'d> {
    ds: &'d Dataset,
    plans: Vec<ColumnPlan>,
    /// The row's canonical values in spec order; complete only when the row is valid.
    pub canon: ByteRecord,
    /// The row's typed values in spec order, beside [`Self::canon`] (a string's text is its canonical
    /// field); complete only when the row is valid.
    pub typed: Vec<Typed>,
    /// The row's reasons, joined with "; ".
    pub reasons: String,
    /// The row's reasons, grouped.
    pub kinds: Vec<ReasonKey>,
    scratch: String,
}

impl<'d> Checker<'d> {
    pub(crate) fn new(ds: &'d Dataset) -> Self {
        let plans = ds
            .columns
            .iter()
            .map(|c| ColumnPlan {
                allowed_text: c
                    .allowed
                    .as_ref()
                    .map(|a| format!("[{}]", a.join(", ")))
                    .unwrap_or_default(),
            })
            .collect();
        Checker {
            ds,
            plans,
            canon: ByteRecord::new(),
            typed: Vec::new(),
            reasons: String::new(),
            kinds: Vec::new(),
            scratch: String::new(),
        }
    }

    /// Forgets the previous row.
    pub(crate) fn start_row(&mut self) {
        self.canon.clear();
        self.typed.clear();
        self.reasons.clear();
        self.kinds.clear();
    }

    pub(crate) fn is_valid(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Records a reason: `{column}: {text}`, or `{text}` for a row-level reason.
    pub(crate) fn reason(&mut self, column: Option<usize>, kind: Kind, text: fmt::Arguments<'_>) {
        if !self.reasons.is_empty() {
            self.reasons.push_str("; ");
        }
        if let Some(c) = column {
            self.reasons.push_str(&self.ds.columns[c].name);
            self.reasons.push_str(": ");
        }
        let _ = self.reasons.write_fmt(text);
        self.kinds.push(ReasonKey { column, kind });
    }

    /// Checks a row whose field for declared column `i` is `field(i)`. Afterwards [`Self::is_valid`]
    /// tells the outcome; a valid row's canonical values are in [`Self::canon`].
    pub(crate) fn check_row<'r>(&mut self, field: impl Fn(usize) -> &'r str) {
        self.start_row();
        let ds = self.ds;
        for (i, col) in ds.columns.iter().enumerate() {
            self.check_field(i, col, field(i));
        }
        if ds.store_rows && self.is_valid() {
            let size = self.stored_size();
            if size > MAX_STORED_ROW_BYTES {
                self.reason(
                    None,
                    Kind::TooLarge,
                    format_args!(
                        "row is {size} bytes as stored, over the row store's {MAX_STORED_ROW_BYTES}-byte \
                         limit (DynamoDB items are at most 400 KB); set store_rows = false to keep such rows"
                    ),
                );
            }
        }
    }

    /// An upper bound of a valid row's size as a row-store item: every value (numbers count as their
    /// text, which is at least DynamoDB's size for them), every column name, the key twice (as the sort
    /// key and inside the item), and the fixed attributes.
    fn stored_size(&self) -> usize {
        let values: usize = self.canon.iter().map(<[u8]>::len).sum();
        let names: usize = self.ds.columns.iter().map(|c| c.name.len() + 3).sum();
        let key: usize = self
            .ds
            .key
            .iter()
            .filter_map(|&k| self.canon.get(k))
            .map(|f| f.len() + 1)
            .sum();
        values + names + key + STORED_ROW_OVERHEAD + self.ds.name.as_str().len()
    }

    fn check_field(&mut self, i: usize, col: &Column, raw: &str) {
        let trimmed = raw.trim();
        if self.ds.null_values.iter().any(|n| n == raw || n == trimmed) {
            if col.required {
                if trimmed.is_empty() {
                    self.reason(Some(i), Kind::Required, format_args!("required but empty"));
                } else {
                    self.reason(
                        Some(i),
                        Kind::Required,
                        format_args!("required but empty ({raw:?} is a null value)"),
                    );
                }
            }
            // Null passes every other rule and is written as an empty field.
            self.canon.push_field(b"");
            self.typed.push(Typed::Null);
            return;
        }
        // Strings are kept as they are; every other type is trimmed before parsing.
        let text = if col.ty == ColumnType::String {
            raw
        } else {
            trimmed
        };
        if let Some(allowed) = &col.allowed
            && !allowed.iter().any(|a| a == trimmed)
        {
            let list = &self.plans[i].allowed_text;
            let mut msg = String::new();
            let _ = write!(msg, "{} is not one of {list}", Quoted(trimmed));
            self.reason(Some(i), Kind::NotAllowed, format_args!("{msg}"));
        }
        let parsed = parse_raw(col.ty, text, &col.formats);
        let value = match parsed {
            Ok(v) => v,
            Err(TypeMismatch(message)) => {
                self.type_mismatch(i, col.ty, text, &message);
                return;
            }
        };
        if col.ty.is_numeric()
            && let Some(x) = value.as_f64()
        {
            if let Some(min) = col.min
                && x < min
            {
                self.reason(
                    Some(i),
                    Kind::BelowMin,
                    format_args!("{text} is below the minimum {min}"),
                );
            }
            if let Some(max) = col.max
                && x > max
            {
                self.reason(
                    Some(i),
                    Kind::AboveMax,
                    format_args!("{text} is above the maximum {max}"),
                );
            }
        }
        if let (Some(re), Value::Str(s)) = (&col.pattern, value)
            && !re.is_match(s)
        {
            self.reason(
                Some(i),
                Kind::Pattern,
                format_args!("{} does not match the pattern {re}", Quoted(s)),
            );
        }
        // Once the row is invalid its canonical form is never used: skip the work.
        if self.is_valid() {
            self.scratch.clear();
            write_canonical(&value, text, &mut self.scratch);
            self.canon.push_field(self.scratch.as_bytes());
            self.typed.push(Typed::of(value));
        }
    }

    /// Tells integer overflow and NaN/infinity apart from plain garbage: the fixes differ.
    fn type_mismatch(&mut self, i: usize, ty: ColumnType, text: &str, message: &str) {
        if ty == ColumnType::Integer && looks_like_integer(text) {
            self.reason(
                Some(i),
                Kind::OutOfRange,
                format_args!("{text:?} is out of range for an integer ({} to {}); declare the column as float", i64::MIN, i64::MAX),
            );
        } else if ty == ColumnType::Float && text.parse::<f64>().is_ok() {
            self.reason(Some(i), Kind::NotFinite, format_args!("{message}"));
        } else {
            self.reason(Some(i), Kind::NotType, format_args!("{message}"));
        }
    }
}

/// A value as a reason quotes it: in quotes and escaped, cut after [`Quoted::MAX_CHARS`] characters so
/// a huge field is not repeated whole in its reason (the row keeps it in full).
struct Quoted<'a>(&'a str);

impl Quoted<'_> {
    const MAX_CHARS: usize = 60;
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(Self::MAX_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => {
                write!(
                    f,
                    "{:?}… ({} characters)",
                    &self.0[..cut],
                    self.0.chars().count()
                )
            }
        }
    }
}

/// Optional sign and at least one ASCII digit, nothing else.
fn looks_like_integer(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_spec::config::Config;
    use sluice_spec::values::parse_iso_date;
    use std::path::Path;

    fn dataset(columns: &str, extra: &str) -> Dataset {
        let text = format!(
            "[[dataset]]\nname = \"t\"\nformat = {{ null_values = [\"\", \"NA\"] }}\n{extra}\n{columns}"
        );
        Config::parse(Path::new("t.toml"), &text)
            .unwrap()
            .datasets
            .remove(0)
    }

    /// Checks one row given as fields in spec order; returns (valid, canonical fields, reasons).
    fn check(ds: &Dataset, fields: &[&str]) -> (bool, Vec<String>, String) {
        let mut c = Checker::new(ds);
        c.check_row(|i| fields[i]);
        let canon = c
            .canon
            .iter()
            .map(|f| String::from_utf8(f.to_vec()).unwrap())
            .collect();
        (c.is_valid(), canon, c.reasons.clone())
    }

    #[test]
    fn iso_fast_path_agrees_with_chrono() {
        let fmt = vec!["%Y-%m-%d".to_string()];
        for s in [
            "2024-03-05",
            "2024-02-29",
            "2023-02-29",
            "2024-13-01",
            "0000-01-01",
            "2024-1-05",
            "2024-03-5x",
            "+024-03-05",
            "2024/03/05",
            "9999-12-31",
            "2024-00-10",
            "2024-04-31",
        ] {
            let chrono = parse_raw(ColumnType::Date, s, &fmt).ok();
            let fast = parse_iso_date(s).map(Value::Date);
            if let Some(f) = fast {
                assert_eq!(Some(f), chrono, "{s}");
            }
        }
    }

    #[test]
    fn every_type_in_several_formats_is_canonicalised() {
        let ds = dataset(
            r#"
[[dataset.columns]]
name = "d"
type = "date"
formats = ["%Y-%m-%d", "%d/%m/%Y", "%Y%m%d"]
[[dataset.columns]]
name = "ts"
type = "datetime"
[[dataset.columns]]
name = "b"
type = "boolean"
[[dataset.columns]]
name = "i"
type = "integer"
[[dataset.columns]]
name = "f"
type = "float"
[[dataset.columns]]
name = "s"
type = "string"
"#,
            "",
        );
        let cases: &[(&[&str], &[&str])] = &[
            (
                &[
                    "2024-03-05",
                    "2024-03-05T10:00:00+02:00",
                    "yes",
                    " +42 ",
                    " 1.50 ",
                    "  a b ",
                ],
                &[
                    "2024-03-05",
                    "2024-03-05T08:00:00",
                    "true",
                    "42",
                    "1.50",
                    "  a b ",
                ],
            ),
            (
                &["05/03/2024", "2024-03-05 08:00:00.5", "F", "-7", "1e3", "x"],
                &[
                    "2024-03-05",
                    "2024-03-05T08:00:00.500",
                    "false",
                    "-7",
                    "1e3",
                    "x",
                ],
            ),
            (
                &[" 20240305 ", "2024-03-05T08:00", "0", "0", "-0.0", ""],
                &[
                    "2024-03-05",
                    "2024-03-05T08:00:00",
                    "false",
                    "0",
                    "-0.0",
                    "",
                ],
            ),
            (
                &["NA", " NA ", "", "NA", "", "NA"],
                &["", "", "", "", "", ""],
            ),
        ];
        for (fields, expected) in cases {
            let (ok, canon, reasons) = check(&ds, fields);
            assert!(ok, "{fields:?}: {reasons}");
            assert_eq!(&canon, expected);
        }
    }

    #[test]
    fn type_errors_name_the_column_value_and_formats() {
        let ds = dataset(
            r#"
[[dataset.columns]]
name = "date"
type = "date"
formats = ["%Y-%m-%d"]
[[dataset.columns]]
name = "qty"
type = "integer"
[[dataset.columns]]
name = "price"
type = "float"
[[dataset.columns]]
name = "paid"
type = "boolean"
[[dataset.columns]]
name = "at"
type = "datetime"
formats = ["%Y-%m-%d %H:%M"]
"#,
            "",
        );
        let (ok, _, r) = check(&ds, &["2024-13-01", "1.5", "abc", "maybe", "2024-01-01"]);
        assert!(!ok);
        assert_eq!(
            r,
            "date: \"2024-13-01\" is not a date in any of the formats [\"%Y-%m-%d\"]; \
             qty: \"1.5\" is not an integer; price: \"abc\" is not a number; \
             paid: \"maybe\" is not a boolean (true/false, yes/no, 1/0); \
             at: \"2024-01-01\" is not a datetime in any of the formats [\"%Y-%m-%d %H:%M\"]"
        );
        let (_, _, r) = check(
            &ds,
            &[
                "2024-01-01",
                "99999999999999999999",
                "NaN",
                "1",
                "2024-01-01 10:00",
            ],
        );
        assert!(
            r.starts_with("qty: \"99999999999999999999\" is out of range for an integer"),
            "{r}"
        );
        assert!(r.contains("price: \"NaN\" is not a finite number"), "{r}");
        let (_, _, r) = check(
            &ds,
            &[
                "2024-01-01",
                "-99999999999999999999",
                "-inf",
                "1",
                "2024-01-01 10:00",
            ],
        );
        assert!(
            r.contains("qty: \"-99999999999999999999\" is out of range"),
            "{r}"
        );
        assert!(r.contains("price: \"-inf\" is not a finite number"), "{r}");
    }

    #[test]
    fn rules_give_one_reason_each_and_all_are_kept() {
        let ds = dataset(
            r#"
[[dataset.columns]]
name = "id"
type = "string"
required = true
[[dataset.columns]]
name = "volume"
type = "integer"
min = 0
max = 1000
[[dataset.columns]]
name = "price"
type = "float"
min = 0.5
[[dataset.columns]]
name = "email"
type = "string"
pattern = "^[^@]+@[^@]+$"
[[dataset.columns]]
name = "status"
type = "string"
allowed = ["new", "paid", "shipped"]
"#,
            "",
        );
        let (ok, canon, r) = check(&ds, &["a", "0", "0.5", "x@y", " paid "]);
        assert!(ok, "{r}");
        assert_eq!(canon, vec!["a", "0", "0.5", "x@y", " paid "]);

        let (ok, _, r) = check(&ds, &["", "-5", "0.25", "x", "foo"]);
        assert!(!ok);
        assert_eq!(
            r,
            "id: required but empty; volume: -5 is below the minimum 0; price: 0.25 is below the minimum 0.5; \
             email: \"x\" does not match the pattern ^[^@]+@[^@]+$; status: \"foo\" is not one of [new, paid, shipped]"
        );
        let (_, _, r) = check(&ds, &["NA", "1001", "1", "NA", "NA"]);
        assert_eq!(
            r,
            "id: required but empty (\"NA\" is a null value); volume: 1001 is above the maximum 1000"
        );
        // A pattern is not anchored unless it says so.
        let ds2 = dataset(
            "[[dataset.columns]]\nname = \"code\"\ntype = \"string\"\npattern = \"[0-9]{3}\"\n",
            "",
        );
        assert!(check(&ds2, &["ab123cd"]).0);
        assert!(!check(&ds2, &["ab12cd"]).0);
    }

    #[test]
    fn long_values_are_cut_in_reasons() {
        let ds = dataset(
            "[[dataset.columns]]\nname = \"code\"\ntype = \"string\"\npattern = \"^[a-z]+$\"\nallowed = [\"ab\"]\n",
            "",
        );
        let long = format!("{}é", "X".repeat(100));
        let (ok, _, r) = check(&ds, &[&long]);
        assert!(!ok);
        let shown = format!("\"{}\"… (101 characters)", "X".repeat(60));
        assert_eq!(
            r,
            format!(
                "code: {shown} is not one of [ab]; code: {shown} does not match the pattern ^[a-z]+$"
            )
        );
    }

    #[test]
    fn top_reasons_group_by_template() {
        let ds = dataset(
            "[[dataset.columns]]\nname = \"v\"\ntype = \"integer\"\nmin = 0\n[[dataset.columns]]\nname = \"d\"\ntype = \"date\"\n",
            "key = [\"d\"]",
        );
        let mut t = Tally::default();
        for _ in 0..3 {
            t.add(ReasonKey {
                column: Some(0),
                kind: Kind::BelowMin,
            });
        }
        t.add(ReasonKey {
            column: Some(1),
            kind: Kind::NotType,
        });
        t.add(ReasonKey {
            column: None,
            kind: Kind::FieldCount,
        });
        t.add(ReasonKey {
            column: None,
            kind: Kind::DuplicateKey,
        });
        let top = t.top(&ds, 10);
        let got: Vec<(&str, u64)> = top.iter().map(|r| (r.reason.as_str(), r.rows)).collect();
        assert_eq!(
            got,
            vec![
                ("v: below the minimum 0", 3),
                ("d: duplicate key", 1),
                ("d: not a date", 1),
                ("wrong number of fields", 1)
            ]
        );
        assert_eq!(t.top(&ds, 2).len(), 2);
    }
}
