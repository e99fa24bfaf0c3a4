//! Helpers shared by the integration tests: a dataset from TOML, one validation run in a temp folder.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use sluice_proto::{ErrorName, StageError};
use sluice_spec::config::{Config, Dataset};
use sluice_validator::{Limits, ValidateOptions, ValidationReport, validate_with_limits};

/// A dataset from the body of a `[[dataset]]` table (name and the header line are added).
pub fn dataset(body: &str) -> Dataset {
    let text = format!("[[dataset]]\nname = \"t\"\n{body}");
    match Config::parse(Path::new("test.toml"), &text) {
        Ok(mut c) => c.datasets.remove(0),
        Err(e) => panic!("bad test spec: {e}"),
    }
}

/// The stock dataset most tests use: key = date.
pub fn stocks() -> Dataset {
    dataset(
        r#"
format = { null_values = ["", "NA"] }
key = ["date"]
[[dataset.columns]]
name = "date"
type = "date"
formats = ["%Y-%m-%d"]
required = true
[[dataset.columns]]
name = "open"
type = "float"
min = 0
[[dataset.columns]]
name = "close"
type = "float"
min = 0
[[dataset.columns]]
name = "volume"
type = "integer"
min = 0
"#,
    )
}

/// One finished run: the report and both outputs as text.
#[derive(Debug)]
pub struct Outcome {
    pub report: ValidationReport,
    pub valid: String,
    pub invalid: String,
}

impl Outcome {
    /// The invalid rows as records (without the header).
    pub fn invalid_rows(&self) -> Vec<Vec<String>> {
        read_csv(&self.invalid).split_off(1)
    }

    /// The valid rows as records (without the header).
    pub fn valid_rows(&self) -> Vec<Vec<String>> {
        read_csv(&self.valid).split_off(1)
    }

    /// `(line, reasons)` of every invalid row.
    pub fn reasons(&self) -> Vec<(u64, String)> {
        self.invalid_rows()
            .into_iter()
            .map(|r| (r[0].parse().unwrap(), r[1].clone()))
            .collect()
    }
}

pub fn read_csv(text: &str) -> Vec<Vec<String>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    rdr.records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

pub struct Workdir {
    pub dir: tempfile::TempDir,
    pub input: PathBuf,
    pub valid: PathBuf,
    pub invalid: PathBuf,
    pub arrow: PathBuf,
    pub scratch: PathBuf,
}

impl Workdir {
    pub fn new(input: &[u8]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let input_path = dir.path().join("prices.csv");
        std::fs::write(&input_path, input).unwrap();
        let scratch = dir.path().join("scratch");
        std::fs::create_dir(&scratch).unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        Workdir {
            valid: out.join("valid.csv"),
            invalid: out.join("invalid.csv"),
            arrow: out.join("valid.arrow"),
            input: input_path,
            scratch,
            dir,
        }
    }

    pub fn run(&self, ds: &Dataset, limits: Limits) -> Result<Outcome, StageError> {
        let opts = ValidateOptions {
            scratch_dir: &self.scratch,
            progress: None,
            tap: None,
            valid_arrow: Some(&self.arrow),
        };
        let report =
            validate_with_limits(ds, &self.input, &self.valid, &self.invalid, &opts, limits)?;
        assert_eq!(report.valid_arrow, self.arrow.exists());
        if report.valid_arrow {
            assert_arrow_matches_csv(ds, &self.arrow, &self.valid);
        }
        Ok(Outcome {
            report,
            valid: std::fs::read_to_string(&self.valid).unwrap(),
            invalid: std::fs::read_to_string(&self.invalid).unwrap(),
        })
    }

    /// Files left in the output folder (outputs and any temporary file).
    pub fn outputs(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.valid.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// Every row of `valid.arrow` holds the values that `valid.csv` holds in the same row, and the raw
/// records read beside it are `valid.csv`'s: every validator test checks the typed hand-off too.
pub fn assert_arrow_matches_csv(ds: &Dataset, arrow: &std::path::Path, csv: &std::path::Path) {
    use sluice_columnar::Rows as _;
    let mut typed = sluice_columnar::ArrowRows::open(arrow, Some(csv), ds).unwrap();
    let mut text = sluice_spec::canonical::CanonicalReader::open(csv, ds).unwrap();
    assert_eq!(typed.header_raw(), text.header_raw());
    let (mut n, mut last_line) = (0, 0);
    loop {
        let more = text.next_record(ds).unwrap();
        assert_eq!(typed.next_record(ds).unwrap(), more, "row {n}");
        if !more {
            break;
        }
        assert_eq!(typed.raw(), text.raw(), "row {n}");
        // Each row knows its line in the source file, and the rows keep the file's order.
        let line = typed
            .source_line()
            .expect("the Arrow copy carries source lines");
        assert!(line > last_line, "row {n}: line {line} after {last_line}");
        last_line = line;
        for (i, c) in ds.columns.iter().enumerate() {
            assert_eq!(
                typed.value(i, c).unwrap(),
                text.value(i, c).unwrap(),
                "row {n}, column {}",
                c.name
            );
        }
        n += 1;
    }
}

/// Validates `input` with the default limits; panics on a file-level error.
pub fn run(ds: &Dataset, input: &str) -> Outcome {
    match Workdir::new(input.as_bytes()).run(ds, Limits::default()) {
        Ok(o) => o,
        Err(e) => panic!("unexpected file error: {e}"),
    }
}

/// Validates `input` and expects a file-level `Sluice.InvalidInput` error; returns its cause after
/// checking that no output (or temporary file) was left behind.
pub fn file_error(ds: &Dataset, input: &[u8]) -> String {
    file_error_with(ds, input, Limits::default())
}

pub fn file_error_with(ds: &Dataset, input: &[u8], limits: Limits) -> String {
    let w = Workdir::new(input);
    match w.run(ds, limits) {
        Ok(o) => panic!("expected a file error, got {:?}", o.report),
        Err(e) => {
            assert_eq!(e.error, ErrorName::InvalidInput, "{e}");
            assert!(
                e.cause.starts_with("prices.csv"),
                "the cause names the file: {}",
                e.cause
            );
            assert_eq!(
                w.outputs(),
                Vec::<String>::new(),
                "nothing partial is left behind"
            );
            e.cause
        }
    }
}
