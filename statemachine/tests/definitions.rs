//! The portable definition set: tests/definitions/NAME.asl.json with NAME.input.json,
//! NAME.responder.json (the task responder file of `sluice statemachine exec`) and
//! NAME.expected.json (`status`, `output`, `error`, `states`, and `cause` when it is checked).
//!
//! The same files are meant for a differential run against a Step Functions emulator, so they only
//! use what both can do: Task resources are `sqs:sendMessage.waitForTaskToken` with a QueueUrl
//! and a MessageBody `{"state": "<Task state name>", "token.$": "$$.Task.Token", "input.$": "$"}`,
//! waits are short, and outcomes come from the responder (see tests/differential.rs).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use sluice_statemachine::{Executor, Responder, StateMachine, VirtualClock};

/// tests/definitions (checked by statelint and asl-validator too, see scripts/test) and
/// tests/definitions-extended: what those validators cannot read (JSONPath filters, workflow
/// variables, JSONata expressions where statelint wants a number), run and compared the same way.
fn dirs() -> [PathBuf; 2] {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        root.join("tests/definitions"),
        root.join("tests/definitions-extended"),
    ]
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every definition: its folder and its name.
fn cases() -> Vec<(PathBuf, String)> {
    let mut names: Vec<(PathBuf, String)> = dirs()
        .into_iter()
        .flat_map(|dir| {
            std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| {
                    e.ok()?
                        .file_name()
                        .into_string()
                        .ok()?
                        .strip_suffix(".asl.json")
                        .map(str::to_string)
                })
                .map(|name| (dir.clone(), name))
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort_by(|a, b| a.1.cmp(&b.1));
    names
}

fn state_types(states: &Value, out: &mut BTreeSet<String>) {
    for s in states.as_object().into_iter().flat_map(|m| m.values()) {
        let t = s["Type"].as_str().unwrap_or_default();
        out.insert(t.to_string());
        if let Some(branches) = s["Branches"].as_array() {
            branches.iter().for_each(|b| state_types(&b["States"], out));
        }
        for key in ["ItemProcessor", "Iterator"] {
            if s.get(key).is_some() {
                state_types(&s[key]["States"], out);
            }
        }
    }
}

#[tokio::test]
async fn every_definition_gives_its_expected_result() {
    let names = cases();
    assert!(names.len() >= 25, "only {} definitions", names.len());
    let mut types = BTreeSet::new();
    let mut failures = Vec::new();
    for (dir, name) in &names {
        let definition_text =
            std::fs::read_to_string(dir.join(format!("{name}.asl.json"))).unwrap();
        let definition: Value = serde_json::from_str(&definition_text).unwrap();
        state_types(&definition["States"], &mut types);
        let problems = sluice_statemachine::lint::lint_str(&definition_text);
        assert!(problems.is_empty(), "{name}: {problems:#?}");
        let machine = StateMachine::parse(&definition_text).unwrap();
        let input = read_json(&dir.join(format!("{name}.input.json")));
        let responder =
            Responder::from_value(&read_json(&dir.join(format!("{name}.responder.json")))).unwrap();
        let expected = read_json(&dir.join(format!("{name}.expected.json")));
        let clock = Arc::new(VirtualClock::starting_now());
        let exec = Executor::new(machine, Arc::new(responder), clock)
            .execute(input, name)
            .await;

        let got = serde_json::to_value(&exec).unwrap();
        for key in ["status", "output", "error", "states", "cause"] {
            if key == "cause" && expected.get("cause").is_none() {
                continue;
            }
            if got[key] != expected[key] {
                failures.push(format!(
                    "{name}: {key} is {} but {} was expected",
                    got[key], expected[key]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let all: BTreeSet<String> = [
        "Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(types, all, "the set covers every state type");
}

#[test]
fn every_task_uses_the_portable_resource() {
    for (dir, name) in cases() {
        let text = std::fs::read_to_string(dir.join(format!("{name}.asl.json"))).unwrap();
        for (i, _) in text.match_indices("\"Resource\"") {
            let rest = &text[i..];
            assert!(
                rest.starts_with(
                    "\"Resource\": \"arn:aws:states:::sqs:sendMessage.waitForTaskToken\""
                ),
                "{name}"
            );
        }
        let tasks = text.matches("\"Resource\"").count();
        assert_eq!(
            text.matches("\"QueueUrl\"").count(),
            tasks,
            "{name}: every Task names its QueueUrl"
        );
        // AWS refuses a waitForTaskToken Task whose Parameters do not pass the token on, and the
        // differential test's worker finds the sending state by the literal "state" field.
        // JSONPath states pass it with a path, JSONata states with an expression.
        assert_eq!(
            text.matches("\"token.$\": \"$$.Task.Token\"").count()
                + text
                    .matches("\"token\": \"{% $states.context.Task.Token %}\"")
                    .count(),
            tasks,
            "{name}: every Task sends its task token"
        );
        assert_eq!(
            text.matches("\"state\": \"").count(),
            tasks,
            "{name}: every Task message names its state"
        );
    }
}
