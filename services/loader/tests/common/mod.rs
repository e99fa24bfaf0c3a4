//! What the PostgreSQL and SQLite tests share: the dataset, and files validated as a run would.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use sluice_spec::config::{Config, Dataset};

/// A dataset `orders` with `load = true` and the given `[[dataset.columns]]`.
pub fn dataset(columns: &str) -> Dataset {
    let spec = format!(
        "[[dataset]]\nname = \"orders\"\nload = true\nformat = {{ null_values = [\"\", \"NA\"] }}\n{columns}"
    );
    Config::parse(Path::new("sluice.toml"), &spec)
        .unwrap()
        .datasets
        .remove(0)
}

/// One column of every type.
pub const ALL_TYPES: &str = r#"
[[dataset.columns]]
name = "id"
type = "integer"
[[dataset.columns]]
name = "placed"
type = "datetime"
formats = ["%Y-%m-%dT%H:%M:%S%.f"]
[[dataset.columns]]
name = "shipped"
type = "date"
[[dataset.columns]]
name = "price"
type = "float"
[[dataset.columns]]
name = "paid"
type = "boolean"
[[dataset.columns]]
name = "note"
type = "string"
"#;

/// Validated rows of a file (valid.csv and valid.arrow) in a temporary folder of their own.
pub struct Validated {
    pub dir: tempfile::TempDir,
    pub csv: PathBuf,
    pub arrow: PathBuf,
}

pub fn validate(ds: &Dataset, csv: &str) -> Validated {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, csv).unwrap();
    let (valid, invalid, arrow) = (
        dir.path().join("valid.csv"),
        dir.path().join("invalid.csv"),
        dir.path().join("valid.arrow"),
    );
    let opts = sluice_validator::ValidateOptions {
        scratch_dir: dir.path(),
        progress: None,
        tap: None,
        valid_arrow: Some(&arrow),
    };
    let report = sluice_validator::validate(ds, &input, &valid, &invalid, &opts).unwrap();
    assert!(report.valid_arrow);
    Validated {
        dir,
        csv: valid,
        arrow,
    }
}

/// Analytics queries for the tests: `name = sql` pairs.
pub fn queries(pairs: &[(&str, &str)]) -> Vec<sluice_spec::config::AnalyticsQuery> {
    pairs
        .iter()
        .map(|(name, sql)| sluice_spec::config::AnalyticsQuery {
            name: name.to_string(),
            sql: sql.to_string(),
        })
        .collect()
}
