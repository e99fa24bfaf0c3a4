//! Where every output of a run lives. All keys derive from the run id, so a re-run overwrites.

use chrono::NaiveDate;
use sluice_proto::{DatasetName, ExecutionInput, ObjectRef, RunId};
use xxhash_rust::xxh3::Xxh3;

/// The run id of an object: a stable 128-bit hash of bucket, key and ETag (or version id).
pub fn run_id_for(bucket: &str, key: &str, etag: &str) -> RunId {
    let mut h = Xxh3::new();
    for part in [bucket, key, etag.trim_matches('"')] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    RunId::from_digest(h.digest128())
}

/// Keys in the work bucket for one run.
pub struct RunKeys<'a> {
    pub work_bucket: &'a str,
    pub run_id: &'a RunId,
}

impl RunKeys<'_> {
    fn at(&self, rest: &str) -> ObjectRef {
        ObjectRef::new(self.work_bucket, format!("runs/{}/{rest}", self.run_id))
    }
    pub fn valid(&self) -> ObjectRef {
        self.at("valid.csv")
    }
    pub fn invalid(&self) -> ObjectRef {
        self.at("invalid.csv")
    }
    pub fn filtered(&self) -> ObjectRef {
        self.at("filtered.csv")
    }
    pub fn valid_arrow(&self) -> ObjectRef {
        self.at("valid.arrow")
    }
    pub fn filtered_arrow(&self) -> ObjectRef {
        self.at("filtered.arrow")
    }
    pub fn stats(&self) -> ObjectRef {
        self.at("stats.json")
    }
    /// Every partition file of the run, as a JSON array of object references.
    pub fn partition_manifest(&self) -> ObjectRef {
        self.at("partitions.json")
    }
    /// `file_name` as the plotter names it (`1-low-and-high.png`).
    pub fn plot(&self, file_name: &str) -> ObjectRef {
        self.at(&format!("plots/{file_name}"))
    }
}

/// A lowercase, dash-separated form of a title for file names (`Low and High` -> `low-and-high`).
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        "chart".to_string()
    } else {
        out
    }
}

/// A W3C traceparent whose trace id is the run id, so every hop of a file shares one trace.
pub fn traceparent_for(run_id: &RunId) -> String {
    let trace: String = format!("{:0>32}", run_id.as_str())
        .chars()
        .rev()
        .take(32)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let trace = if trace.bytes().all(|b| b.is_ascii_hexdigit()) {
        trace.to_ascii_lowercase()
    } else {
        format!(
            "{:032x}",
            xxhash_rust::xxh3::xxh3_128(run_id.as_str().as_bytes())
        )
    };
    let span = &format!("{:016x}", xxhash_rust::xxh3::xxh3_64(trace.as_bytes()));
    format!("00-{trace}-{span}-01")
}

/// The input of a run's execution, the same for the dispatcher (AWS) and the embedded run.
pub fn execution_input(
    run_id: &RunId,
    dataset: &DatasetName,
    source: &ObjectRef,
    as_of: NaiveDate,
    load: bool,
) -> ExecutionInput {
    ExecutionInput {
        run_id: run_id.clone(),
        dataset: dataset.clone(),
        source: source.clone(),
        as_of,
        traceparent: traceparent_for(run_id),
        load,
    }
}

/// Where a batch's analytics table is exported:
/// `{curated}/{batch}/analytics/{name}/as_of={YYYY-MM-DD}/{name}.csv`.
pub fn analytics_export(curated: &str, batch: &str, name: &str, as_of: NaiveDate) -> ObjectRef {
    ObjectRef::new(
        curated,
        format!(
            "{batch}/analytics/{name}/as_of={}/{name}.csv",
            as_of.format("%Y-%m-%d")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_stable_and_distinct() {
        let a = run_id_for("landing", "incoming/a.csv", "\"abc\"");
        assert_eq!(a, run_id_for("landing", "incoming/a.csv", "abc"));
        assert_ne!(a, run_id_for("landing", "incoming/a.csv", "abd"));
        // Length-prefixing keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(run_id_for("ab", "c", "e"), run_id_for("a", "bc", "e"));
        assert_eq!(a.as_str().len(), 32);
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Low and High"), "low-and-high");
        assert_eq!(slug("  Volume (shares) "), "volume-shares");
        assert_eq!(slug("€€"), "chart");
    }

    #[test]
    fn traceparents_are_w3c_shaped() {
        let tp = traceparent_for(&RunId::parse("b355bbaed6607462d53ddc06e607bcfa").unwrap());
        assert_eq!(
            tp,
            format!("00-b355bbaed6607462d53ddc06e607bcfa-{}-01", &tp[36..52])
        );
        let other = traceparent_for(&RunId::parse("not-hex").unwrap());
        assert_eq!(other.len(), 55);
    }
}
