//! Which partition a row belongs to, and the Hive-style key of that partition's files.

use chrono::{Datelike, NaiveDateTime, Timelike};
use sluice_proto::RunId;
use sluice_spec::config::{Dataset, Granularity};

/// Hive's name for the partition of rows whose partition column is null.
pub const DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// A partition, small and `Copy` so that hundreds of thousands of them (minute partitions over a
/// year) cost a few megabytes; the key text is only built when a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum PartitionKey {
    /// The instant truncated to the granularity: parts below it are zero.
    At {
        year: i32,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
    },
    /// The partition column is null.
    Default,
}

impl PartitionKey {
    /// The partition of a row whose partition column holds `at` (`None` for null).
    pub(crate) fn of(at: Option<NaiveDateTime>, granularity: Granularity) -> Self {
        let Some(at) = at else {
            return PartitionKey::Default;
        };
        // chrono's month/day/hour/minute are at most 31 and 59: they fit in a u8.
        let part =
            |keep: Granularity, value: u32| if granularity >= keep { value as u8 } else { 0 };
        PartitionKey::At {
            year: at.year(),
            month: part(Granularity::Month, at.month()),
            day: part(Granularity::Day, at.day()),
            hour: part(Granularity::Hour, at.hour()),
            minute: part(Granularity::Minute, at.minute()),
        }
    }

    /// The object key of this partition's file: `stocks/year=2024/month=03/part-{run_id}.csv`.
    pub(crate) fn object_key(&self, ds: &Dataset, run_id: &RunId, extension: &str) -> String {
        let Some(partition) = &ds.partition else {
            return String::new();
        };
        let mut key = format!("{}/", ds.name);
        match *self {
            PartitionKey::Default => {
                let column = &ds.columns[partition.column].name;
                key.push_str(&format!("{}={DEFAULT_PARTITION}", escape_path_name(column)));
            }
            PartitionKey::At {
                year,
                month,
                day,
                hour,
                minute,
            } => {
                key.push_str(&format!("year={year:04}"));
                let g = partition.granularity;
                for (level, name, value) in [
                    (Granularity::Month, "month", month),
                    (Granularity::Day, "day", day),
                    (Granularity::Hour, "hour", hour),
                    (Granularity::Minute, "minute", minute),
                ] {
                    if g >= level {
                        key.push_str(&format!("/{name}={value:02}"));
                    }
                }
            }
        }
        key.push_str(&format!("/part-{run_id}.{extension}"));
        key
    }
}

/// Hive's escaping of a partition column name in a path (`FileUtils.escapePathName`): `/`, `=`,
/// `%`, control characters and a few others become `%XX`, so any column name makes one safe
/// path segment.
fn escape_path_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let escaped = c.is_ascii_control()
            || matches!(
                c,
                '"' | '#' | '%' | '\'' | '*' | '/' | ':' | '=' | '?' | '\\' | '{' | '[' | ']' | '^'
            );
        if escaped {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_become_one_safe_path_segment() {
        assert_eq!(escape_path_name("event_time"), "event_time");
        assert_eq!(escape_path_name("a/b=c%"), "a%2Fb%3Dc%25");
        assert_eq!(escape_path_name("..\\x"), "..%5Cx");
        assert_eq!(escape_path_name("tab\there"), "tab%09here");
        assert_eq!(escape_path_name("dátum"), "dátum");
    }
}
