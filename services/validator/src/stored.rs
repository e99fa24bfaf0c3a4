//! Valid rows as records for the row store (DynamoDB items, SQLite rows), read back from `valid.csv`.

use std::fmt::Write as _;
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
        let mut key = String::new();
        write_key(&mut key, &self.key, &self.run_id, self.rows, |k| {
            self.rec.get(k).unwrap_or("")
        });
        Ok(StoredRow { key, item })
    }
}

/// The row key: the key columns joined with `|` (escaped), or `{run_id}#{n}` without key columns.
fn write_key<'r>(
    out: &mut String,
    key: &[usize],
    run_id: &RunId,
    n: u64,
    field: impl Fn(usize) -> &'r str,
) {
    if key.is_empty() {
        let _ = write!(out, "{run_id}#{n}");
        return;
    }
    for (i, &k) in key.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        let text = field(k);
        if text.contains(['|', '\\']) {
            for ch in text.chars() {
                if ch == '|' || ch == '\\' {
                    out.push('\\');
                }
                out.push(ch);
            }
        } else {
            out.push_str(text);
        }
    }
}

/// Valid rows as the validator found them (canonical fields in spec order), packed in two buffers so a
/// batch of rows costs no allocation per row or field. What [`crate::RowTap`] receivers collect to hand
/// to another thread.
#[derive(Debug, Clone)]
pub struct CanonRows {
    width: usize,
    bytes: Vec<u8>,
    /// Where each field ends in `bytes`, `width` per row.
    ends: Vec<usize>,
}

impl CanonRows {
    pub fn new(width: usize) -> Self {
        CanonRows {
            width: width.max(1),
            bytes: Vec::new(),
            ends: Vec::new(),
        }
    }

    pub fn push(&mut self, canon: &csv::ByteRecord) {
        for i in 0..self.width {
            self.bytes
                .extend_from_slice(canon.get(i).unwrap_or_default());
            self.ends.push(self.bytes.len());
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len() / self.width
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field bytes held, to bound a batch by size as well as by rows.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    fn field(&self, row: usize, col: usize) -> &[u8] {
        let at = row * self.width + col;
        let start = if at == 0 { 0 } else { self.ends[at - 1] };
        &self.bytes[start..self.ends[at]]
    }
}

/// Turns canonical rows into what the row store keeps: the key (as [`StoredRow::key`]) and the item as
/// JSON object text, byte for byte what `serde_json` writes for [`StoredRow::item`] (keys in sorted
/// order, floats in shortest round-trip form), without building the map.
pub struct RowEncoder {
    name: String,
    /// Columns in the order their names sort (a JSON object's keys as `serde_json::Map` writes
    /// them): index in the spec, type, and the key already written as JSON with its colon.
    sorted: Vec<(usize, ColumnType, String)>,
    key: Vec<usize>,
    run_id: RunId,
    rows: u64,
    number: Vec<u8>,
}

impl RowEncoder {
    pub fn new(ds: &Dataset, run_id: &RunId) -> Self {
        let mut sorted: Vec<(usize, ColumnType, String)> = ds
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let name = serde_json::to_string(&c.name).unwrap_or_default();
                (i, c.ty, format!("{name}:"))
            })
            .collect();
        sorted.sort_by(|a, b| ds.columns[a.0].name.cmp(&ds.columns[b.0].name));
        RowEncoder {
            name: ds.name.to_string(),
            sorted,
            key: ds.key.clone(),
            run_id: run_id.clone(),
            rows: 0,
            number: Vec::new(),
        }
    }

    /// Appends row `row` of `rows`' key to `key` and its item to `item`. Rows are numbered in the order
    /// they are encoded (the `{run_id}#{n}` key of a dataset without key columns).
    pub fn encode(
        &mut self,
        rows: &CanonRows,
        row: usize,
        key: &mut String,
        item: &mut String,
    ) -> Result<(), StageError> {
        self.rows += 1;
        let text = |col: usize| -> Result<&str, StageError> {
            std::str::from_utf8(rows.field(row, col)).map_err(|e| {
                StageError::internal(format!(
                    "dataset {}: row {}: a canonical field is not UTF-8: {e}",
                    self.name, self.rows
                ))
            })
        };
        for &k in &self.key {
            text(k)?;
        }
        write_key(key, &self.key, &self.run_id, self.rows, |k| {
            std::str::from_utf8(rows.field(row, k)).unwrap_or_default()
        });
        item.push('{');
        for (n, (col, ty, json_name)) in self.sorted.iter().enumerate() {
            if n > 0 {
                item.push(',');
            }
            item.push_str(json_name);
            let field = text(*col)?;
            if field.is_empty() {
                item.push_str("null");
                continue;
            }
            match ty {
                // Canonical integers and booleans are already JSON.
                ColumnType::Integer | ColumnType::Boolean => item.push_str(field),
                // A canonical float keeps the text it was given (`1e3`, `0012.50`); JSON gets the
                // number serde_json would write for it.
                ColumnType::Float => {
                    let value: f64 = field.parse().map_err(|_| {
                        StageError::internal(format!(
                            "dataset {}: row {}: {field:?} is not a canonical float",
                            self.name, self.rows
                        ))
                    })?;
                    self.number.clear();
                    serde_json::to_writer(&mut self.number, &value)
                        .map_err(|e| StageError::internal(format!("row store: {e}")))?;
                    item.push_str(std::str::from_utf8(&self.number).unwrap_or("null"));
                }
                ColumnType::String | ColumnType::Date | ColumnType::Datetime => {
                    if field.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
                        let quoted = serde_json::to_string(field)
                            .map_err(|e| StageError::internal(format!("row store: {e}")))?;
                        item.push_str(&quoted);
                    } else {
                        item.push('"');
                        item.push_str(field);
                        item.push('"');
                    }
                }
            }
        }
        item.push('}');
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_spec::config::Config;

    const SPEC: &str = r#"
[buckets]
landing = "l"
work = "w"
curated = "c"

[[dataset]]
name = "mixed"
key = ["z_name", "id"]

[[dataset.columns]]
name = "z_name"
type = "string"

[[dataset.columns]]
name = "id"
type = "integer"

[[dataset.columns]]
name = "Price"
type = "float"

[[dataset.columns]]
name = "ok"
type = "boolean"

[[dataset.columns]]
name = "day"
type = "date"

[[dataset.columns]]
name = "at"
type = "datetime"

[[dataset.columns]]
name = "a \"quoted\" name"
type = "string"
"#;

    /// The encoder writes what serde_json writes for the map `stored_rows` builds, for awkward values:
    /// escapes, unicode, floats in every spelling, nulls, keys with `|` and `\`.
    #[test]
    fn the_encoder_writes_what_serde_json_writes() {
        let config = Config::parse(Path::new("spec.toml"), SPEC).unwrap();
        let mut ds = config.datasets[0].clone();
        let rows: &[[&str; 7]] = &[
            [
                "a|b",
                "1",
                "1e3",
                "true",
                "2024-02-29",
                "2024-02-29T10:11:12",
                "x",
            ],
            [
                "back\\slash",
                "-9223372036854775808",
                "0012.50",
                "false",
                "",
                "",
                "say \"hi\"\n",
            ],
            [
                "",
                "",
                "",
                "",
                "1999-12-31",
                "2024-01-01T00:00:00.5",
                "tab\there \u{1}",
            ],
            ["é ✓ 𝄞", "42", "-0.000001", "true", "2024-01-01", "", ""],
            [
                "plain",
                "7",
                "1.7976931348623157e308",
                "false",
                "",
                "",
                "ctl\u{1f}",
            ],
            ["p2", "8", "5e-324", "true", "", "", "\u{7f}"],
        ];
        for with_key in [true, false] {
            if !with_key {
                ds.key.clear();
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("valid.csv");
            let mut w = csv::Writer::from_path(&path).unwrap();
            w.write_record(ds.columns.iter().map(|c| c.name.as_str()))
                .unwrap();
            let mut batch = CanonRows::new(ds.columns.len());
            for r in rows {
                w.write_record(r).unwrap();
                batch.push(&csv::ByteRecord::from(r.to_vec()));
            }
            w.flush().unwrap();
            drop(w);
            let run_id = RunId::from_digest(7);
            let expected: Vec<StoredRow> = stored_rows(&ds, &run_id, &path)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let mut enc = RowEncoder::new(&ds, &run_id);
            assert_eq!(batch.len(), rows.len());
            for (i, want) in expected.iter().enumerate() {
                let (mut key, mut item) = (String::new(), String::new());
                enc.encode(&batch, i, &mut key, &mut item).unwrap();
                assert_eq!(key, want.key, "row {i}");
                assert_eq!(item, serde_json::to_string(&want.item).unwrap(), "row {i}");
            }
        }
    }
}
