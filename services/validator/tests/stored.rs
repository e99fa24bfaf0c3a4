//! Valid rows read back for the row store.

mod common;

use common::*;
use serde_json::json;
use sluice_proto::{ErrorName, RunId};
use sluice_validator::{Limits, StoredRow, stored_rows};

fn typed() -> sluice_spec::config::Dataset {
    dataset(
        r#"
key = ["sym", "day"]
[[dataset.columns]]
name = "sym"
type = "string"
[[dataset.columns]]
name = "day"
type = "date"
formats = ["%d/%m/%Y"]
[[dataset.columns]]
name = "at"
type = "datetime"
[[dataset.columns]]
name = "n"
type = "integer"
[[dataset.columns]]
name = "x"
type = "float"
[[dataset.columns]]
name = "ok"
type = "boolean"
"#,
    )
}

fn rows_of(ds: &sluice_spec::config::Dataset, input: &str, run_id: &RunId) -> Vec<StoredRow> {
    let w = Workdir::new(input.as_bytes());
    w.run(ds, Limits::default()).unwrap();
    stored_rows(ds, run_id, &w.valid)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[test]
fn rows_carry_typed_values_and_their_key() {
    let run_id = RunId::parse("run1").unwrap();
    let input =
        "sym,day,at,n,x,ok\nAAPL,02/01/2024,2024-01-02 09:30:00,-3,1.25,yes\nMSFT,02/01/2024,,,,\n";
    let rows = rows_of(&typed(), input, &run_id);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].key, "AAPL|2024-01-02");
    assert_eq!(
        serde_json::Value::Object(rows[0].item.clone()),
        json!({"sym": "AAPL", "day": "2024-01-02", "at": "2024-01-02T09:30:00", "n": -3, "x": 1.25, "ok": true})
    );
    assert_eq!(
        serde_json::Value::Object(rows[1].item.clone()),
        json!({"sym": "MSFT", "day": "2024-01-02", "at": null, "n": null, "x": null, "ok": null})
    );
}

#[test]
fn key_parts_with_the_separator_are_escaped() {
    let run_id = RunId::parse("run1").unwrap();
    let rows = rows_of(
        &typed(),
        "sym,day,at,n,x,ok\na|b,01/01/2024,,,,\na\\,01/01/2024,,,,\n",
        &run_id,
    );
    assert_eq!(rows[0].key, "a\\|b|2024-01-01");
    assert_eq!(rows[1].key, "a\\\\|2024-01-01");
}

#[test]
fn without_a_key_rows_are_numbered_within_the_run() {
    let mut ds = typed();
    ds.key.clear();
    let run_id = RunId::parse("0123abcd").unwrap();
    let rows = rows_of(
        &ds,
        "sym,day,at,n,x,ok\nA,01/01/2024,,,,\nB,x,,,,\nC,01/01/2024,,,,\n",
        &run_id,
    );
    let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, vec!["0123abcd#1", "0123abcd#2"]);
    assert_eq!(rows[1].item["sym"], json!("C"));
}

#[test]
fn a_file_written_for_another_spec_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("valid.csv");
    std::fs::write(&path, "a,b\n1,2\n").unwrap();
    let e = stored_rows(&typed(), &RunId::parse("r").unwrap(), &path)
        .err()
        .unwrap();
    assert_eq!(e.error, ErrorName::Internal);
    assert!(
        e.cause
            .contains("valid.csv: the header of the valid rows is"),
        "{e}"
    );

    // A row that is not canonical stops the stream with an error naming the line.
    std::fs::write(&path, "sym,day,at,n,x,ok\nA,01/01/2024,,,,\n").unwrap();
    let mut rows = stored_rows(&typed(), &RunId::parse("r").unwrap(), &path).unwrap();
    let e = rows.next().unwrap().unwrap_err();
    assert!(e.cause.contains("line 2: column day"), "{e}");
    assert!(rows.next().is_none());
}
