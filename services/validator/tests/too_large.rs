//! A row too large for the row store is an invalid row with that reason, not a failed file.

mod common;

use common::{dataset, run};

fn notes(store_rows: bool) -> sluice_spec::config::Dataset {
    dataset(&format!(
        r#"
key = ["id"]
store_rows = {store_rows}
[[dataset.columns]]
name = "id"
type = "integer"
[[dataset.columns]]
name = "note"
type = "string"
"#
    ))
}

#[test]
fn a_row_over_the_item_limit_is_invalid_when_rows_are_stored() {
    let big = "x".repeat(410 * 1024);
    let input = format!("id,note\n1,short\n2,{big}\n3,also short\n");
    let out = run(&notes(true), &input);
    assert_eq!(
        (out.report.rows.valid, out.report.rows.invalid),
        (2, 1),
        "only the large row is invalid"
    );
    let reasons = out.reasons();
    assert_eq!(reasons.len(), 1);
    let (line, reason) = &reasons[0];
    assert_eq!(*line, 3);
    assert!(
        reason.starts_with("row is ") && reason.contains("over the row store's 409600-byte limit"),
        "{reason}"
    );
    assert_eq!(
        out.report.top_reasons[0].reason,
        "too large for the row store"
    );

    // A row just under the limit is stored as usual.
    let fits = "y".repeat(300 * 1024);
    let out = run(&notes(true), &format!("id,note\n1,{fits}\n"));
    assert_eq!(out.report.rows.valid, 1);
}

#[test]
fn without_a_row_store_large_rows_are_valid() {
    let big = "x".repeat(410 * 1024);
    let out = run(&notes(false), &format!("id,note\n1,{big}\n"));
    assert_eq!((out.report.rows.valid, out.report.rows.invalid), (1, 0));
}
