//! Inputs the fuzzer (`fuzz/`, `scripts/fuzz`) found to panic, shrunk: each must now give an
//! answer or an error.

use serde_json::json;
use sluice_statemachine::path::Path;

/// `$.arr[1::9223372036854775807]` (fuzz target `jsonpath`): the slice's next index,
/// `1 + i64::MAX`, overflowed: "attempt to add with overflow" in a debug build, and in a release
/// build a wrapped negative index, then "index out of bounds". A step past the end selects the
/// first item of the slice only, as in Python and Jayway JSONPath.
#[test]
fn a_slice_step_past_the_end_selects_one_item() {
    let input = json!({"arr": [0, 1, 2, 3]});
    for (path, want) in [
        ("$.arr[1::9223372036854775807]", json!([1])),
        ("$.arr[-2::9223372036854775807]", json!([2])),
        ("$.arr[0::9223372036854775807]", json!([0])),
        ("$.arr[3:4:9223372036854775807]", json!([3])),
        ("$.arr[1::4611686018427387904]", json!([1])),
    ] {
        let p = Path::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(p.select(&input, &json!({})), Ok(want), "{path}");
    }
}
