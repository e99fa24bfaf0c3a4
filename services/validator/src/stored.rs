//! Valid rows as records for the row store (DynamoDB items, SQLite rows), read back from `valid.csv`.

use std::fs::File;
use std::io;
use std::path::Path;

use csv::StringRecord;
use serde_json::{Map, Number, Value as Json};
use sluice_proto::{RunId, StageError};
use sluice_spec::config::Dataset;
use sluice_spec::values::{ColumnType, Value, parse_canonical};

use crate::source::file_name;

const READ_BUFFER: usize = 256 * 1024;

/// One valid row for the row store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    /// The key columns' canonical values joined with `|` (a `|` or `\` inside a value is escaped with
    /// `\`), so the same row from a re-run overwrites; `{run_id}#{n}` when the dataset has no key, with
    /// `n` the 1-based position of the row in `valid.csv`.
    pub key: String,
    /// Column name -> typed JSON: integers and floats as numbers, booleans as booleans, dates,
    /// datetimes and strings as strings (canonical form), null as null.
    pub item: Map<String, Json>,
}

/// Streams the rows of a canonical `valid.csv` (see [`stored_rows`]).
pub struct StoredRows {
    name: String,
    rdr: csv::Reader<File>,
    rec: StringRecord,
    columns: Vec<(String, ColumnType)>,
    key: Vec<usize>,
    run_id: RunId,
    rows: u64,
    done: bool,
}

/// Reads a canonical `valid.csv` (as written by [`crate::validate`]) back as records for the row store,
/// one at a time. The file is our own output, so anything unexpected in it is an internal error.
pub fn stored_rows(
    ds: &Dataset,
    run_id: &RunId,
    valid_csv: &Path,
) -> Result<StoredRows, StageError> {
    let name = file_name(valid_csv);
    let file = File::open(valid_csv)
        .map_err(|e| StageError::internal(format!("{name}: cannot read the valid rows: {e}")))?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .buffer_capacity(READ_BUFFER)
        .from_reader(file);
    let mut rec = StringRecord::new();
    let has_header = rdr
        .read_record(&mut rec)
        .map_err(|e| StageError::internal(format!("{name}: cannot read the header: {e}")))?;
    let expected: Vec<&str> = ds.columns.iter().map(|c| c.name.as_str()).collect();
    if !has_header || rec.iter().ne(expected.iter().copied()) {
        return Err(StageError::internal(format!(
            "{name}: the header of the valid rows is {:?}, but dataset {:?} declares {:?}; the file was not \
             written for this dataset spec",
            rec.iter().collect::<Vec<_>>(),
            ds.name,
            expected
        )));
    }
    Ok(StoredRows {
        name,
        rdr,
        rec,
        columns: ds.columns.iter().map(|c| (c.name.clone(), c.ty)).collect(),
        key: ds.key.clone(),
        run_id: run_id.clone(),
        rows: 0,
        done: false,
    })
}

impl StoredRows {
    fn row(&self) -> Result<StoredRow, StageError> {
        let line = self.rec.position().map_or(0, |p| p.line());
        if self.rec.len() != self.columns.len() {
            return Err(StageError::internal(format!(
                "{}: line {line}: {} fields where the header has {}",
                self.name,
                self.rec.len(),
                self.columns.len()
            )));
        }
        let mut item = Map::with_capacity(self.columns.len());
        for ((name, ty), text) in self.columns.iter().zip(self.rec.iter()) {
            let value = parse_canonical(*ty, text).map_err(|e| {
                StageError::internal(format!(
                    "{}: line {line}: column {name}: {}",
                    self.name, e.0
                ))
            })?;
            // Dates and datetimes are already in their canonical text: keep it rather than format
            // the parsed value again (the same characters, at a fraction of the cost).
            let json = match value {
                Value::Date(_) | Value::Datetime(_) => Json::String(text.to_string()),
                other => to_json(other),
            };
            item.insert(name.clone(), json);
        }
        let key = if self.key.is_empty() {
            format!("{}#{}", self.run_id, self.rows)
        } else {
            let mut key = String::new();
            for (n, &k) in self.key.iter().enumerate() {
                if n > 0 {
                    key.push('|');
                }
                for ch in self.rec.get(k).unwrap_or("").chars() {
                    if ch == '|' || ch == '\\' {
                        key.push('\\');
                    }
                    key.push(ch);
                }
            }
            key
        };
        Ok(StoredRow { key, item })
    }
}

fn to_json(v: Value<'_>) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Str(s) => Json::String(s.to_string()),
        Value::Int(i) => Json::Number(i.into()),
        // Valid floats are finite, so `from_f64` always succeeds.
        Value::Float(f) => Number::from_f64(f).map_or(Json::Null, Json::Number),
        Value::Bool(b) => Json::Bool(b),
        Value::Date(d) => Json::String(d.format("%Y-%m-%d").to_string()),
        Value::Datetime(dt) => Json::String(dt.format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
    }
}

impl Iterator for StoredRows {
    type Item = Result<StoredRow, StageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.rdr.read_record(&mut self.rec) {
            Ok(true) => {
                self.rows += 1;
                let row = self.row();
                self.done = row.is_err();
                Some(row)
            }
            Ok(false) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                let what = match e.kind() {
                    csv::ErrorKind::Io(io) => io::Error::new(io.kind(), io.to_string()).to_string(),
                    _ => e.to_string(),
                };
                Some(Err(StageError::internal(format!(
                    "{}: cannot read the valid rows: {what}",
                    self.name
                ))))
            }
        }
    }
}
