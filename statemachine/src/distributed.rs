//! Distributed Map: the item readers, the batcher and the result files of a Map Run, as the Step
//! Functions Developer Guide defines them ("Map state in Distributed mode", "ItemReader (Map)",
//! "ItemBatcher (Map)", "ResultWriter (Map)", "Tolerated failure threshold for Distributed Map
//! state"). This module is the pure part (bytes in, items out; children in, files out); the
//! executor runs the Map Run itself (`executor_distributed.rs`) with an [`crate::objects::ObjectSource`].
//!
//! - `ItemReader` with `arn:aws:states:::s3:getObject` reads one object, by `ReaderConfig.InputType`:
//!   `CSV` (every row an object of strings keyed by the header: `CSVHeaderLocation` `FIRST_ROW`, or
//!   `GIVEN` with `CSVHeaders`; `CSVDelimiter` `COMMA` (default), `PIPE`, `SEMICOLON`, `SPACE` or
//!   `TAB`; RFC 4180 quoting; a missing field is `""`, a field past the header is dropped, blank
//!   lines are skipped, duplicate or over-10-KiB headers fail), `JSON` (an array: its elements) or
//!   `JSONL` (one JSON value a line). `MANIFEST` (S3 Inventory / Athena manifests, whose data files
//!   are gzip-compressed) and `PARQUET` are not read locally: they fail with States.ItemReaderFailed.
//! - `arn:aws:states:::s3:listObjectsV2` makes an item of every object under `Prefix`, shaped as the
//!   guide shows: `{"Etag": "\"<md5>\"", "Key", "LastModified": <epoch seconds>, "Size",
//!   "StorageClass": "STANDARD"}`.
//! - `ItemBatcher` groups the (selected) items into child inputs `{"BatchInput": {...}, "Items":
//!   [...]}` (`BatchInput` only when given), at most `MaxItemsPerBatch` items and
//!   `MaxInputBytesPerBatch` bytes of child input each.
//! - `ResultWriter` writes `{Prefix}/{MapRunId}/manifest.json` and one `SUCCEEDED_0.json`,
//!   `FAILED_0.json`, `PENDING_0.json` per status that has children: records of the child
//!   executions (`Transformation` `NONE`: ExecutionArn, Input, InputDetails, Name, Output /
//!   Error+Cause, RedriveCount, RedriveStatus, StartDate, StateMachineArn, Status, StopDate;
//!   `COMPACT`: the outputs; `FLATTEN`: the outputs with arrays flattened; a failed child's record is
//!   always kept whole), as a JSON array or JSON Lines (`OutputType`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::history::format_timestamp;
use crate::objects::ObjectSummary;
use crate::path::kind_of;
use crate::value::compact;

/// ItemReader: read one object.
pub const GET_OBJECT: &str = "arn:aws:states:::s3:getObject";
/// ItemReader: list the objects under a prefix.
pub const LIST_OBJECTS_V2: &str = "arn:aws:states:::s3:listObjectsV2";
/// ResultWriter: write the results to objects.
pub const PUT_OBJECT: &str = "arn:aws:states:::s3:putObject";
/// The ResultWriter could not write the results of a Map Run.
pub const RESULT_WRITER_FAILED: &str = "States.ResultWriterFailed";

/// "Currently, Step Functions supports CSV headers of up to 10 KiB" (ItemReader (Map)).
const CSV_HEADER_LIMIT_BYTES: usize = 10 * 1024;

/// `ReaderConfig.InputType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    Csv,
    Json,
    Jsonl,
    Manifest,
    Parquet,
}

/// The parts of `ReaderConfig` that say how an object's bytes become items (`MaxItems` is read by
/// the executor, as it may be a path or an expression).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderConfig {
    pub input_type: Option<InputType>,
    /// `CSVHeaderLocation: GIVEN`: the column names; `None` for `FIRST_ROW` (the default).
    pub given_headers: Option<Vec<String>>,
    pub delimiter: char,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            input_type: None,
            given_headers: None,
            delimiter: ',',
        }
    }
}

impl ReaderConfig {
    /// Reads `ReaderConfig` (absent: the defaults).
    pub fn from_value(v: Option<&Value>) -> Result<ReaderConfig, String> {
        let mut config = ReaderConfig::default();
        let Some(v) = v else { return Ok(config) };
        let Value::Object(c) = v else {
            return Err(format!(
                "ReaderConfig must be an object, got {}",
                kind_of(v)
            ));
        };
        let text = |field: &str| c.get(field).and_then(Value::as_str);
        config.input_type = match text("InputType") {
            None => None,
            Some("CSV") => Some(InputType::Csv),
            Some("JSON") => Some(InputType::Json),
            Some("JSONL") => Some(InputType::Jsonl),
            Some("MANIFEST") => Some(InputType::Manifest),
            Some("PARQUET") => Some(InputType::Parquet),
            Some(other) => return Err(format!("unknown ReaderConfig.InputType \"{other}\"")),
        };
        config.delimiter = match text("CSVDelimiter") {
            None | Some("COMMA") => ',',
            Some("PIPE") => '|',
            Some("SEMICOLON") => ';',
            Some("SPACE") => ' ',
            Some("TAB") => '\t',
            Some(other) => return Err(format!("unknown ReaderConfig.CSVDelimiter \"{other}\"")),
        };
        if text("CSVHeaderLocation") == Some("GIVEN") {
            let headers = c
                .get("CSVHeaders")
                .and_then(Value::as_array)
                .map(|h| {
                    h.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .filter(|h| !h.is_empty())
                .ok_or("CSVHeaderLocation GIVEN needs CSVHeaders, the column names")?;
            config.given_headers = Some(headers);
        }
        Ok(config)
    }
}

/// The items of an object read with `s3:getObject`.
pub fn items_of_object(bytes: &[u8], config: &ReaderConfig) -> Result<Vec<Value>, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| format!("the object is not UTF-8 text ({e})"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match config.input_type {
        Some(InputType::Csv) => csv_items(text, config),
        Some(InputType::Json) => json_items(text),
        Some(InputType::Jsonl) => jsonl_items(text),
        Some(InputType::Manifest) => Err(
            "InputType MANIFEST (an S3 Inventory or Athena manifest) is not read by the local executor; \
             read a CSV, JSON or JSONL object, or list the objects with arn:aws:states:::s3:listObjectsV2"
                .into(),
        ),
        Some(InputType::Parquet) => Err(
            "InputType PARQUET is not read by the local executor; read a CSV, JSON or JSONL object"
                .into(),
        ),
        None => Err("ReaderConfig.InputType (CSV, JSON or JSONL) is needed to read an object".into()),
    }
}

/// A JSON file: an array, whose elements are the items.
pub fn json_items(text: &str) -> Result<Vec<Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(other) => Err(format!(
            "a JSON dataset must be an array of items, but this one is {}",
            kind_of(&other)
        )),
        Err(e) => Err(format!("the object is not JSON: {e}")),
    }
}

/// A JSON Lines file: every non-blank line is one item.
pub fn jsonl_items(text: &str) -> Result<Vec<Value>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| format!("line {} is not JSON: {e}", i + 1))
        })
        .collect()
}

/// A CSV file: every row (after the header row, with `FIRST_ROW`) is an object of strings.
pub fn csv_items(text: &str, config: &ReaderConfig) -> Result<Vec<Value>, String> {
    let mut rows = parse_csv(text, config.delimiter)?.into_iter();
    let headers = match &config.given_headers {
        Some(h) => h.clone(),
        None => match rows.next() {
            Some(h) => h,
            None => return Ok(Vec::new()),
        },
    };
    let header_bytes: usize = headers.iter().map(|h| h.len() + 1).sum();
    if header_bytes > CSV_HEADER_LIMIT_BYTES {
        return Err(format!(
            "the CSV header is {header_bytes} bytes; Step Functions reads headers of up to 10 KiB"
        ));
    }
    let mut seen = HashSet::new();
    if let Some(dup) = headers.iter().find(|h| !seen.insert(h.as_str())) {
        return Err(format!(
            "CSV headers cannot contain duplicates (\"{dup}\" is there twice)"
        ));
    }
    Ok(rows
        .map(|row| {
            let fields: Map<String, Value> = headers
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    (
                        h.clone(),
                        Value::String(row.get(i).cloned().unwrap_or_default()),
                    )
                })
                .collect();
            Value::Object(fields)
        })
        .collect())
}

/// Splits CSV text into rows of fields (RFC 4180: fields in double quotes may hold the delimiter,
/// line breaks and `""` for a quote; CRLF or LF line ends). Blank lines are skipped.
pub fn parse_csv(text: &str, delimiter: char) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    // Whether the current line has anything (a character, a delimiter, a quote): a blank line has not.
    let mut has_content = false;
    let mut at_field_start = true;
    let mut quoted_since: Option<usize> = None;
    let mut line = 1usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted_since.is_some() {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted_since = None,
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                quoted_since = Some(line);
                at_field_start = false;
                has_content = true;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                line += 1;
                if has_content {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                field.clear();
                has_content = false;
                at_field_start = true;
            }
            c if c == delimiter => {
                row.push(std::mem::take(&mut field));
                has_content = true;
                at_field_start = true;
            }
            c => {
                field.push(c);
                has_content = true;
                at_field_start = false;
            }
        }
    }
    if let Some(start) = quoted_since {
        return Err(format!(
            "line {start}: a quoted field is not closed (a \" is missing)"
        ));
    }
    if has_content {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

/// The item `s3:listObjectsV2` makes of one object.
pub fn object_item(o: &ObjectSummary) -> Value {
    json!({
        "Etag": o.etag,
        "Key": o.key,
        "LastModified": o.last_modified.timestamp(),
        "Size": o.size,
        "StorageClass": "STANDARD"
    })
}

/// `ItemBatcher`, with its paths and templates evaluated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batcher {
    pub max_items: Option<u64>,
    pub max_bytes: Option<u64>,
    pub batch_input: Option<Value>,
}

impl Batcher {
    fn wrap(&self, items: Vec<Value>) -> Value {
        let mut m = Map::new();
        if let Some(b) = &self.batch_input {
            m.insert("BatchInput".into(), b.clone());
        }
        m.insert("Items".into(), Value::Array(items));
        Value::Object(m)
    }

    /// Groups items, in order, into child inputs; each with the number of items it holds.
    pub fn batch(&self, items: Vec<Value>) -> Result<Vec<(Value, usize)>, String> {
        // The size of a child input is its JSON text: the empty batch plus the items and commas.
        let empty = compact(&self.wrap(Vec::new())).len() as u64;
        let mut out = Vec::new();
        let mut current: Vec<Value> = Vec::new();
        let mut size = empty;
        for (index, item) in items.into_iter().enumerate() {
            let item_size = compact(&item).len() as u64;
            let full = self.max_items.is_some_and(|m| current.len() as u64 >= m);
            let too_big = self
                .max_bytes
                .is_some_and(|m| size + item_size + u64::from(!current.is_empty()) > m);
            if !current.is_empty() && (full || too_big) {
                let n = current.len();
                out.push((self.wrap(std::mem::take(&mut current)), n));
                size = empty;
            }
            if let Some(m) = self.max_bytes
                && empty + item_size > m
            {
                return Err(format!(
                    "item {index} alone makes a batch of {} bytes, more than MaxInputBytesPerBatch ({m})",
                    empty + item_size
                ));
            }
            size += item_size + u64::from(!current.is_empty());
            current.push(item);
        }
        if !current.is_empty() {
            let n = current.len();
            out.push((self.wrap(current), n));
        }
        Ok(out)
    }
}

/// `WriterConfig.Transformation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transformation {
    /// The child execution records, with their metadata.
    None,
    /// The children's outputs.
    Compact,
    /// The children's outputs, arrays flattened into the results.
    Flatten,
}

/// `WriterConfig.OutputType` (for the result files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputType {
    Json,
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    pub transformation: Transformation,
    pub output_type: OutputType,
}

impl WriterConfig {
    /// Reads `WriterConfig`. The default transformation is `NONE` when the results are exported
    /// to objects, `COMPACT` when they are not (ResultWriter (Map), "Transformation").
    pub fn from_value(v: Option<&Value>, exporting: bool) -> Result<WriterConfig, String> {
        let text = |field: &str| v.and_then(|c| c.get(field)).and_then(Value::as_str);
        let transformation = match text("Transformation") {
            None if exporting => Transformation::None,
            None => Transformation::Compact,
            Some("NONE") => Transformation::None,
            Some("COMPACT") => Transformation::Compact,
            Some("FLATTEN") => Transformation::Flatten,
            Some(other) => return Err(format!("unknown WriterConfig.Transformation \"{other}\"")),
        };
        let output_type = match text("OutputType") {
            None | Some("JSON") => OutputType::Json,
            Some("JSONL") => OutputType::Jsonl,
            Some(other) => return Err(format!("unknown WriterConfig.OutputType \"{other}\"")),
        };
        Ok(WriterConfig {
            transformation,
            output_type,
        })
    }
}

/// A Map Run: its ARN, its id (the last part of the ARN, the folder of its result files) and the
/// ARN its child executions name as their state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapRun {
    pub arn: String,
    pub id: String,
    pub state_machine_arn: String,
}

/// How a child execution ended (`Pending`: it never ran, the Map Run failed first).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded(Value),
    Failed { error: String, cause: String },
    Pending,
}

/// One child execution of a Map Run.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    pub name: String,
    pub execution_arn: String,
    pub input: Value,
    /// How many items it processed (more than one with an ItemBatcher).
    pub items: usize,
    pub start: Option<DateTime<Utc>>,
    pub stop: Option<DateTime<Utc>>,
    pub outcome: Outcome,
}

impl Child {
    fn status(&self) -> &'static str {
        match self.outcome {
            Outcome::Succeeded(_) => "SUCCEEDED",
            Outcome::Failed { .. } => "FAILED",
            Outcome::Pending => "PENDING",
        }
    }
}

/// The record of a child execution (Transformation `NONE`): DescribeExecution's fields in
/// PascalCase, input and output as JSON text.
pub fn record(run: &MapRun, c: &Child) -> Value {
    let mut r = Map::new();
    r.insert("Input".into(), Value::String(compact(&c.input)));
    r.insert("InputDetails".into(), json!({"Included": true}));
    r.insert("Status".into(), json!(c.status()));
    if c.outcome == Outcome::Pending {
        return Value::Object(r);
    }
    r.insert("ExecutionArn".into(), json!(c.execution_arn));
    r.insert("Name".into(), json!(c.name));
    r.insert("StateMachineArn".into(), json!(run.state_machine_arn));
    r.insert("RedriveCount".into(), json!(0));
    if let Some(t) = &c.start {
        r.insert("StartDate".into(), json!(format_timestamp(t)));
    }
    if let Some(t) = &c.stop {
        r.insert("StopDate".into(), json!(format_timestamp(t)));
    }
    match &c.outcome {
        Outcome::Succeeded(output) => {
            r.insert("Output".into(), Value::String(compact(output)));
            r.insert("OutputDetails".into(), json!({"Included": true}));
            r.insert("RedriveStatus".into(), json!("NOT_REDRIVABLE"));
            r.insert(
                "RedriveStatusReason".into(),
                json!("Execution is SUCCEEDED and cannot be redriven"),
            );
        }
        Outcome::Failed { error, cause } => {
            r.insert("Error".into(), json!(error));
            r.insert("Cause".into(), json!(cause));
            r.insert("RedriveStatus".into(), json!("REDRIVABLE_BY_MAP_RUN"));
        }
        Outcome::Pending => {}
    }
    Value::Object(r)
}

/// The results of the children, in item order, as a transformation gives them (a failed or
/// pending child always as its record).
pub fn results<'c>(
    run: &MapRun,
    children: impl IntoIterator<Item = &'c Child>,
    t: Transformation,
) -> Vec<Value> {
    let mut out = Vec::new();
    for c in children {
        match (&c.outcome, t) {
            (Outcome::Succeeded(v), Transformation::Compact) => out.push(v.clone()),
            (Outcome::Succeeded(Value::Array(items)), Transformation::Flatten) => {
                out.extend(items.iter().cloned())
            }
            (Outcome::Succeeded(v), Transformation::Flatten) => out.push(v.clone()),
            _ => out.push(record(run, c)),
        }
    }
    out
}

/// One object the ResultWriter writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultFile {
    pub key: String,
    pub bytes: Vec<u8>,
}

fn encode(values: &[Value], output_type: OutputType) -> Vec<u8> {
    match output_type {
        OutputType::Json => compact(&Value::Array(values.to_vec())).into_bytes(),
        OutputType::Jsonl => values
            .iter()
            .map(|v| compact(v) + "\n")
            .collect::<String>()
            .into_bytes(),
    }
}

/// The folder of a Map Run's results: `{Prefix}/{MapRunId}/` (a `/` is added after a prefix that
/// does not end with one).
pub fn results_folder(prefix: &str, run: &MapRun) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        format!("{prefix}{}/", run.id)
    } else {
        format!("{prefix}/{}/", run.id)
    }
}

/// The files the ResultWriter writes, the manifest last: one file per status that has children,
/// and `manifest.json` listing them (`{"DestinationBucket", "MapRunArn", "ResultFiles": {"FAILED":
/// [{"Key", "Size"}], "PENDING": [...], "SUCCEEDED": [...]}}`).
pub fn result_files(
    run: &MapRun,
    bucket: &str,
    prefix: &str,
    children: &[Child],
    config: WriterConfig,
) -> Vec<ResultFile> {
    let folder = results_folder(prefix, run);
    let mut files = Vec::new();
    let mut listed = Map::new();
    for status in ["FAILED", "PENDING", "SUCCEEDED"] {
        let of_status = children.iter().filter(|c| c.status() == status);
        let values = if status == "SUCCEEDED" {
            results(run, of_status, config.transformation)
        } else {
            of_status.map(|c| record(run, c)).collect()
        };
        let mut entries = Vec::new();
        if !values.is_empty() {
            let key = format!("{folder}{status}_0.json");
            let bytes = encode(&values, config.output_type);
            entries.push(json!({"Key": key, "Size": bytes.len()}));
            files.push(ResultFile { key, bytes });
        }
        listed.insert(status.into(), Value::Array(entries));
    }
    let manifest = json!({
        "DestinationBucket": bucket,
        "MapRunArn": run.arn,
        "ResultFiles": Value::Object(listed),
    });
    files.push(ResultFile {
        key: format!("{folder}manifest.json"),
        bytes: compact(&manifest).into_bytes(),
    });
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str, config: Value) -> Result<Vec<Value>, String> {
        let mut c = json!({"InputType": "CSV"});
        if let (Value::Object(c), Value::Object(extra)) = (&mut c, config) {
            c.extend(extra);
        }
        items_of_object(text.as_bytes(), &ReaderConfig::from_value(Some(&c))?)
    }

    #[test]
    fn csv_rows_become_objects_of_strings() {
        let items = csv("\u{feff}id,name,note\r\n1,Ada,\"says \"\"hi\"\", twice\"\r\n\r\n2,\"Bob\nSmith\"\n3,Cy,x,extra\n", json!({})).unwrap();
        assert_eq!(
            items,
            [
                json!({"id": "1", "name": "Ada", "note": "says \"hi\", twice"}),
                json!({"id": "2", "name": "Bob\nSmith", "note": ""}),
                json!({"id": "3", "name": "Cy", "note": "x"})
            ]
        );
        // GIVEN headers: every row is data.
        let given = csv(
            "a|b\nc|d",
            json!({"CSVHeaderLocation": "GIVEN", "CSVHeaders": ["x", "y"], "CSVDelimiter": "PIPE"}),
        )
        .unwrap();
        assert_eq!(
            given,
            [json!({"x": "a", "y": "b"}), json!({"x": "c", "y": "d"})]
        );
        for (delimiter, text) in [
            ("SEMICOLON", "h;i\n1;2"),
            ("TAB", "h\ti\n1\t2"),
            ("SPACE", "h i\n1 2"),
            ("COMMA", "h,i\n1,2"),
        ] {
            assert_eq!(
                csv(text, json!({"CSVDelimiter": delimiter})).unwrap(),
                [json!({"h": "1", "i": "2"})],
                "{delimiter}"
            );
        }
        assert_eq!(csv("", json!({})).unwrap(), Vec::<Value>::new());
        assert_eq!(
            csv("only,header\n", json!({})).unwrap(),
            Vec::<Value>::new()
        );
        assert!(
            csv("a,a\n1,2", json!({}))
                .unwrap_err()
                .contains("duplicates")
        );
        assert!(
            csv("a\n\"open", json!({}))
                .unwrap_err()
                .contains("line 2: a quoted field is not closed")
        );
        let wide = format!("{}\n1", "h".repeat(11 * 1024));
        assert!(csv(&wide, json!({})).unwrap_err().contains("10 KiB"));
        assert!(
            ReaderConfig::from_value(Some(
                &json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN"})
            ))
            .is_err()
        );
    }

    #[test]
    fn json_and_json_lines() {
        let json_config = ReaderConfig::from_value(Some(&json!({"InputType": "JSON"}))).unwrap();
        assert_eq!(
            items_of_object(br#"[{"a": 1}, 2, "x"]"#, &json_config).unwrap(),
            [json!({"a": 1}), json!(2), json!("x")]
        );
        assert!(
            items_of_object(br#"{"a": 1}"#, &json_config)
                .unwrap_err()
                .contains("must be an array")
        );
        assert!(
            items_of_object(b"[1,", &json_config)
                .unwrap_err()
                .contains("not JSON")
        );
        let lines = ReaderConfig::from_value(Some(&json!({"InputType": "JSONL"}))).unwrap();
        assert_eq!(
            items_of_object(b"{\"a\": 1}\n\n[2]\r\n3\n", &lines).unwrap(),
            [json!({"a": 1}), json!([2]), json!(3)]
        );
        assert!(
            items_of_object(b"1\n{nope\n", &lines)
                .unwrap_err()
                .contains("line 2")
        );
        for (t, want) in [("MANIFEST", "MANIFEST"), ("PARQUET", "PARQUET")] {
            let c = ReaderConfig::from_value(Some(&json!({"InputType": t}))).unwrap();
            assert!(items_of_object(b"x", &c).unwrap_err().contains(want));
        }
        assert!(
            items_of_object(&[0xff, 0xfe], &lines)
                .unwrap_err()
                .contains("UTF-8")
        );
    }

    #[test]
    fn listed_objects_have_the_documented_shape() {
        let o = ObjectSummary {
            key: "in/a.csv".into(),
            size: 12,
            etag: "\"abc\"".into(),
            last_modified: DateTime::from_timestamp(1_668_699_881, 0).unwrap(),
        };
        assert_eq!(
            object_item(&o),
            json!({"Etag": "\"abc\"", "Key": "in/a.csv", "LastModified": 1_668_699_881, "Size": 12, "StorageClass": "STANDARD"})
        );
    }

    #[test]
    fn batches_respect_both_limits() {
        let items: Vec<Value> = (1..=5).map(|i| json!(i)).collect();
        let by_count = Batcher {
            max_items: Some(2),
            ..Batcher::default()
        };
        let batches = by_count.batch(items.clone()).unwrap();
        assert_eq!(
            batches,
            [
                (json!({"Items": [1, 2]}), 2),
                (json!({"Items": [3, 4]}), 2),
                (json!({"Items": [5]}), 1)
            ]
        );
        // {"Items":[1,2,3]} is 17 bytes; {"Items":[1,2,3,4]} would be 19.
        let by_size = Batcher {
            max_bytes: Some(18),
            ..Batcher::default()
        };
        assert_eq!(
            by_size.batch(items.clone()).unwrap(),
            [
                (json!({"Items": [1, 2, 3]}), 3),
                (json!({"Items": [4, 5]}), 2)
            ]
        );
        let with_input = Batcher {
            max_items: Some(3),
            batch_input: Some(json!({"run": "r1"})),
            ..Batcher::default()
        };
        assert_eq!(
            with_input.batch(items.clone()).unwrap()[0].0,
            json!({"BatchInput": {"run": "r1"}, "Items": [1, 2, 3]})
        );
        let too_small = Batcher {
            max_bytes: Some(11),
            ..Batcher::default()
        };
        assert!(
            too_small
                .batch(vec![json!("long item")])
                .unwrap_err()
                .contains("item 0")
        );
        assert!(by_count.batch(Vec::new()).unwrap().is_empty());
    }

    fn run() -> MapRun {
        MapRun {
            arn: "arn:aws:states:us-east-1:000000000000:mapRun:sm/Map:1111".into(),
            id: "1111".into(),
            state_machine_arn: "arn:aws:states:us-east-1:000000000000:stateMachine:sm/Map".into(),
        }
    }

    fn child(name: &str, input: Value, outcome: Outcome) -> Child {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let ran = outcome != Outcome::Pending;
        Child {
            name: name.into(),
            execution_arn: format!("arn:aws:states:us-east-1:000000000000:execution:sm/Map:{name}"),
            input,
            items: 1,
            start: ran.then_some(t),
            stop: ran.then_some(t),
            outcome,
        }
    }

    #[test]
    fn records_and_transformations() {
        let children = [
            child("a", json!({"n": 1}), Outcome::Succeeded(json!([1, 2]))),
            child(
                "b",
                json!({"n": 2}),
                Outcome::Failed {
                    error: "E".into(),
                    cause: "why".into(),
                },
            ),
            child(
                "c",
                json!({"n": 3}),
                Outcome::Succeeded(json!({"ok": true})),
            ),
        ];
        let r = run();
        assert_eq!(
            record(&r, &children[0]),
            json!({
                "ExecutionArn": "arn:aws:states:us-east-1:000000000000:execution:sm/Map:a",
                "Input": "{\"n\":1}", "InputDetails": {"Included": true}, "Name": "a",
                "Output": "[1,2]", "OutputDetails": {"Included": true},
                "RedriveCount": 0, "RedriveStatus": "NOT_REDRIVABLE",
                "RedriveStatusReason": "Execution is SUCCEEDED and cannot be redriven",
                "StartDate": "2023-11-14T22:13:20.000Z", "StopDate": "2023-11-14T22:13:20.000Z",
                "StateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:sm/Map",
                "Status": "SUCCEEDED"
            })
        );
        let failed = record(&r, &children[1]);
        assert_eq!(
            (
                failed["Error"].clone(),
                failed["Cause"].clone(),
                failed["Status"].clone()
            ),
            (json!("E"), json!("why"), json!("FAILED"))
        );
        assert!(failed.get("Output").is_none());
        assert_eq!(
            record(&r, &child("p", json!(9), Outcome::Pending)),
            json!({"Input": "9", "InputDetails": {"Included": true}, "Status": "PENDING"})
        );
        let compact = results(&r, &children, Transformation::Compact);
        assert_eq!(compact[0], json!([1, 2]));
        assert_eq!(
            compact[1]["Status"], "FAILED",
            "a failed child stays a record"
        );
        assert_eq!(compact[2], json!({"ok": true}));
        let flat = results(&r, &children, Transformation::Flatten);
        assert_eq!(
            (flat[0].clone(), flat[1].clone(), flat[3].clone()),
            (json!(1), json!(2), json!({"ok": true}))
        );
        assert_eq!(results(&r, &children, Transformation::None)[0]["Name"], "a");
    }

    #[test]
    fn result_files_and_manifest() {
        let children = [
            child("a", json!(1), Outcome::Succeeded(json!("A"))),
            child(
                "b",
                json!(2),
                Outcome::Failed {
                    error: "E".into(),
                    cause: "c".into(),
                },
            ),
        ];
        let r = run();
        let config = WriterConfig::from_value(None, true).unwrap();
        assert_eq!(config.transformation, Transformation::None);
        let files = result_files(&r, "out", "jobs", &children, config);
        let keys: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "jobs/1111/FAILED_0.json",
                "jobs/1111/SUCCEEDED_0.json",
                "jobs/1111/manifest.json"
            ]
        );
        let manifest: Value = serde_json::from_slice(&files[2].bytes).unwrap();
        assert_eq!(
            manifest,
            json!({"DestinationBucket": "out", "MapRunArn": r.arn, "ResultFiles": {
                "FAILED": [{"Key": "jobs/1111/FAILED_0.json", "Size": files[0].bytes.len()}],
                "PENDING": [],
                "SUCCEEDED": [{"Key": "jobs/1111/SUCCEEDED_0.json", "Size": files[1].bytes.len()}]}})
        );
        let succeeded: Value = serde_json::from_slice(&files[1].bytes).unwrap();
        assert_eq!(succeeded[0]["Output"], "\"A\"");
        // COMPACT as JSON Lines, under a prefix that ends with '/' and one that is empty.
        let lines = WriterConfig::from_value(
            Some(&json!({"Transformation": "COMPACT", "OutputType": "JSONL"})),
            true,
        )
        .unwrap();
        let files = result_files(&r, "out", "p/", &children[..1], lines);
        assert_eq!(files[0].key, "p/1111/SUCCEEDED_0.json");
        assert_eq!(files[0].bytes, b"\"A\"\n");
        assert_eq!(results_folder("", &r), "1111/");
        assert_eq!(
            WriterConfig::from_value(Some(&json!({})), false)
                .unwrap()
                .transformation,
            Transformation::Compact
        );
        assert!(WriterConfig::from_value(Some(&json!({"OutputType": "CSV"})), true).is_err());
    }
}
