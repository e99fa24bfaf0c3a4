//! `asl`: the bytes (lossy UTF-8) as an Amazon States Language definition, through the linter
//! (`lint_str`, which runs `lint_value`, and `successors`), `StateMachine::parse` / `from_value`, and, for a
//! definition that reads, the Mermaid renderer.

use serde_json::Value;
use sluice_statemachine::StateMachine;
use sluice_statemachine::lint::{lint_str, successors};
use sluice_statemachine::model::DefinitionError;
use sluice_statemachine::render::render;

use super::{Features, Target, files_in};

pub(super) const TARGET: Target = Target {
    name: "asl",
    about: "ASL definitions through lint, StateMachine::parse/from_value and render",
    exec,
    seeds,
    tokens: TOKENS,
    json: true,
    max_len: 32 * 1024,
};

const TOKENS: &[&str] = &[
    "Comment",
    "StartAt",
    "States",
    "Version",
    "TimeoutSeconds",
    "QueryLanguage",
    "JSONPath",
    "JSONata",
    "Type",
    "Task",
    "Pass",
    "Choice",
    "Wait",
    "Succeed",
    "Fail",
    "Parallel",
    "Map",
    "Next",
    "End",
    "Resource",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "ItemSelector",
    "ItemsPath",
    "ItemProcessor",
    "ProcessorConfig",
    "Iterator",
    "MaxConcurrency",
    "Branches",
    "Result",
    "Choices",
    "Default",
    "Variable",
    "And",
    "Or",
    "Not",
    "StringEquals",
    "StringEqualsPath",
    "StringMatches",
    "NumericLessThan",
    "NumericGreaterThanEqualsPath",
    "BooleanEquals",
    "TimestampEquals",
    "TimestampLessThanPath",
    "IsPresent",
    "IsNull",
    "IsNumeric",
    "IsString",
    "IsBoolean",
    "IsTimestamp",
    "Seconds",
    "SecondsPath",
    "Timestamp",
    "TimestampPath",
    "Error",
    "Cause",
    "ErrorPath",
    "CausePath",
    "Retry",
    "Catch",
    "ErrorEquals",
    "IntervalSeconds",
    "MaxAttempts",
    "BackoffRate",
    "MaxDelaySeconds",
    "JitterStrategy",
    "FULL",
    "NONE",
    "HeartbeatSeconds",
    "HeartbeatSecondsPath",
    "TimeoutSecondsPath",
    "States.ALL",
    "States.TaskFailed",
    "States.Timeout",
    "States.Runtime",
    "States.Format('{}', $.a)",
    "States.Array($)",
    "States.MathRandom(1, 2)",
    "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
    "$",
    "$$",
    "$.a",
    "$$.Task.Token",
    "$$.Map.Item.Value",
    "$[0]",
    "$..x",
    "$.a[*]",
    ".$",
    "x.$",
    "*",
    "a*b",
    "\\*",
    "2024-01-01T00:00:00Z",
    "2024-13-01T00:00:00Z",
    "2016-12-31T23:59:60Z",
];

const TYPES: &[&str] = &[
    "Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map",
];

const MINIMAL: &str = r#"{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}"#;

fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = files_in("statemachine/tests/definitions", ".asl.json");
    seeds.extend(files_in("statemachine", "pipeline.asl.json"));
    seeds.push(MINIMAL.as_bytes().to_vec());
    seeds.push(
        br#"{"Comment":"every type","StartAt":"T","TimeoutSeconds":60,"States":{
"T":{"Type":"Task","Resource":"arn:aws:states:::sqs:sendMessage.waitForTaskToken","Parameters":{"QueueUrl":"q","MessageBody":{"token.$":"$$.Task.Token","n.$":"States.MathAdd($.n, 1)"}},"HeartbeatSeconds":5,"TimeoutSeconds":10,"Retry":[{"ErrorEquals":["Sluice.Transient"],"IntervalSeconds":1,"MaxAttempts":3,"BackoffRate":2.0,"MaxDelaySeconds":5,"JitterStrategy":"FULL"},{"ErrorEquals":["States.ALL"]}],"Catch":[{"ErrorEquals":["States.ALL"],"ResultPath":"$.error","Next":"F"}],"ResultSelector":{"r.$":"$"},"ResultPath":"$.out","Next":"C"},
"C":{"Type":"Choice","Choices":[{"And":[{"Variable":"$.n","NumericGreaterThan":1},{"Not":{"Variable":"$.s","StringMatches":"a*\\*b"}}],"Next":"W"},{"Variable":"$.t","TimestampLessThanPath":"$.u","Next":"P"}],"Default":"S"},
"W":{"Type":"Wait","SecondsPath":"$.n","Next":"P"},
"P":{"Type":"Parallel","Branches":[{"StartAt":"B","States":{"B":{"Type":"Pass","Result":{"x":1},"End":true}}}],"ResultPath":null,"Next":"M"},
"M":{"Type":"Map","ItemsPath":"$.items","MaxConcurrency":2,"ItemSelector":{"v.$":"$$.Map.Item.Value"},"ItemProcessor":{"StartAt":"I","States":{"I":{"Type":"Succeed"}}},"Next":"S"},
"S":{"Type":"Succeed","OutputPath":"$.out"},
"F":{"Type":"Fail","ErrorPath":"$.error.Error","CausePath":"States.Format('{}', $.error.Cause)"}}}"#
            .to_vec(),
    );
    seeds
}

pub(super) fn exec(data: &[u8], f: &mut Features) {
    let text = String::from_utf8_lossy(data);
    let problems = lint_str(&text);
    for p in &problems {
        let _ = p.to_string();
        f.text("problem", &p.message);
    }
    f.add("problems", problems.len().min(4) as u64);
    match StateMachine::parse(&text) {
        Ok(sm) => {
            let drawing = render(&sm);
            f.add("parsed", sm.states.len().min(8) as u64);
            f.add("drawing lines", drawing.lines().count().min(64) as u64);
        }
        Err(DefinitionError::Json(_)) => f.add("not json", 0),
        Err(e) => {
            let _ = e.to_string();
            f.add("invalid", 0);
        }
    }
    if let Ok(value) = serde_json::from_str::<Value>(&text) {
        if let Some(states) = value.get("States").and_then(Value::as_object) {
            for state in states.values() {
                let ty = state.get("Type").and_then(Value::as_str).unwrap_or("?");
                let ty = TYPES.iter().find(|t| **t == ty).copied().unwrap_or("?");
                f.add(ty, successors(state).len().min(4) as u64);
            }
        }
        if problems.is_empty() {
            // `from_value` lints again and reads the typed model from the value, not the text.
            match StateMachine::from_value(&value) {
                Ok(sm) => {
                    let _ = render(&sm);
                    f.add("from value", 1);
                }
                Err(e) => f.text("from value", &e.to_string()),
            }
        }
    }
}
