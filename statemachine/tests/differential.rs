//! Differential test: every definition of tests/definitions, statemachine/pipeline.asl.json and
//! statemachine/batch.asl.json runs in the local engine (Responder as task runner, virtual clock)
//! and in a Step Functions emulator (ministack, started by scripts/test), and both must end the
//! same way: status, output, error, cause and the states entered.
//!
//! In the emulator this test is the worker: each run gets its own SQS queue, every QueueUrl of the
//! definition points at it, and every message the Task states send is answered with
//! SendTaskSuccess/SendTaskFailure from the same responder file the local engine uses. A message
//! says which Task state sent it with a `"state"` field of its body (the definition files carry
//! it; the pipeline and the batch get it added here, to both engines' copy), and the workers of
//! both engines answer by that label: a literal, because the emulator's `$$.State.Name` is shared
//! between concurrent Parallel branches; for the Task states of the batch's Map iterations it is
//! made from the item (`"state.$": "States.Format('Validate member {}', $.member.dataset)"`), so
//! that every member has its own answers whatever order the iterations run in.
//!
//! The batch's cases also compare the task messages both engines sent (bodies without their task
//! tokens): the failure paths (`States.JsonMerge`, `"failure": null`) only show in the failure
//! alert's message, not in how the execution ends.
//!
//! Where the emulator departs from AWS, the local engine keeps the AWS behaviour and the
//! difference is listed per definition in [`known_differences`], with the AWS documentation that
//! decides it. An entry that no longer shows up fails the test, so the list cannot go stale.
//!
//! `#[ignore]`d unless asked for (scripts/test does, with the emulator running); asked for without
//! AWS_ENDPOINT_URL, it fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_sfn::types::{ExecutionStatus as SfnStatus, HistoryEvent};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sluice_proto::{
    AnalyticsExport, AnalyticsOutput, AnalyticsTable, EmailSent, ExportOutput, LoadOutput,
    NotifyOutput, ObjectRef, RowCounts, StageInput, StageOutput, TaskEnvelope, ValidateOutput,
};
use sluice_statemachine::responder::Outcome;
use sluice_statemachine::{
    Execution, Executor, Responder, StateMachine, TaskError, TaskRequest, TaskRunner, VirtualClock,
};

/// How long one emulator execution may take before the test gives up on it (the slowest
/// definition waits about 3 s in real time).
const EXECUTION_DEADLINE: Duration = Duration::from_secs(60);
/// Emulator executions run at the same time (each has its own queue and state machine).
const CONCURRENT_CASES: usize = 6;
const ROLE_ARN: &str = "arn:aws:iam::000000000000:role/sluice";

/// A way the emulator is known to differ from AWS Step Functions for one definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gap {
    /// The emulator records `*StateEntered` only for top-level states, none for the states of
    /// Parallel branches and Map iterations. AWS records every state entered, in branches and
    /// iterations too (GetExecutionHistory, HistoryEvent: `TaskStateEntered`, `PassStateEntered`
    /// ... follow `ParallelStateStarted` / `MapIterationStarted`). The states are then compared
    /// on the top-level states only.
    NestedStatesNotInHistory,
    /// The emulator ignores the definition's top-level `TimeoutSeconds`. AWS: "The maximum
    /// number of seconds an execution of the state machine can run. If it runs longer than the
    /// specified time, the execution fails with a States.Timeout error" (Amazon States Language,
    /// "Top-level fields"), and the status is TIMED_OUT.
    ExecutionTimeoutNotEnforced,
    /// The emulator gives `null` for an `InputPath` that matches nothing and runs on. AWS fails
    /// the execution with States.Runtime, "caused by errors at runtime, such as attempting to
    /// apply InputPath or OutputPath on a null JSON payload. ... A retry or catch on States.ALL
    /// won't catch States.Runtime errors" (Developer Guide, "Handling errors", error names).
    MissingInputPathIgnored,
    /// The emulator replaces a non-object node on the way of a `ResultPath` with `{}`. AWS fails
    /// the state with States.ResultPathMatchFailure: "Step Functions failed to apply a state's
    /// ResultPath field to the input the state received" (Developer Guide, "Handling errors").
    ResultPathOverwritesNonObject,
    /// The emulator's JSONPath reads fields, non-negative indexes, quoted names and wildcards
    /// only (ministack 1.5.33, services/stepfunctions.py, `_parse_jsonpath_tokens` at line 3248):
    /// a filter (`[?(...)]`), a deep scan (`..name`), a slice, a union or a negative index selects
    /// null. AWS reads them with Jayway JSONPath (Developer Guide, "Paths": "you can use ... the
    /// JsonPath syntax", with the example `$.store.book[?(@.price < 10)]`).
    JsonPathFiltersUnsupported,
    /// The emulator evaluates `Assign` in JSONata states only (services/stepfunctions.py:2992,
    /// `_apply_state_assign` returns unless the state's query language is JSONata), and its
    /// JSONPath reader does not take a `$name` root (line 3281: after `$` only `.` or `[`). AWS:
    /// "Pass, Task, Map, Parallel, Choice and Wait states support Assign ... in JSONPath and
    /// JSONata" and `$name` reads a variable in any path (Developer Guide, "Passing data between
    /// states with variables").
    JsonPathVariablesUnsupported,
    /// In a JSONPath definition, the emulator skips the `Assign` of a catcher of a JSONata state:
    /// `_apply_catcher` (services/stepfunctions.py:3666) hands the catcher itself to
    /// `_apply_state_assign`, which looks for the query language on it (line 2992) and, finding
    /// none, falls back to the definition's JSONPath. AWS: a state's `QueryLanguage` "overrides the
    /// top-level" for that state, its catchers included, and "Assign ... in Catch" sees
    /// `$states.errorOutput` (Developer Guide, "Transforming data with JSONata in Step Functions",
    /// "Passing data between states with variables"). The variable is then undefined downstream.
    JsonataCatcherAssignInJsonPathDefinition,
}

/// An allow-list entry: the emulator departs from AWS because of `gap`; with `diverges_at`, the
/// runs part at that state: the states entered up to it are still compared, nothing after it.
struct Known {
    gap: Gap,
    diverges_at: Option<&'static str>,
}

/// The allow-list: definitions whose emulator run differs from AWS, and how.
fn known_differences(name: &str) -> Vec<Known> {
    use Gap::*;
    let nested = Known {
        gap: NestedStatesNotInHistory,
        diverges_at: None,
    };
    let at = |gap, state| Known {
        gap,
        diverges_at: Some(state),
    };
    match name {
        "23-parallel"
        | "24-parallel-branch-fails"
        | "25-parallel-catch"
        | "26-map-item-selector"
        | "27-map-max-concurrency"
        | "28-map-iteration-fails"
        | "31-map-legacy-iterator"
        | "42-jsonata-data-flow"
        | "pipeline-happy-path"
        | "pipeline-transient-retry"
        | "batch-happy-path"
        | "batch-member-fails-validation"
        | "batch-analytics-fails" => vec![nested],
        "29-execution-timeout" => vec![at(ExecutionTimeoutNotEnforced, "Pause")],
        // The Fail state's Cause reads `$reason`, which the emulator never assigned.
        "39-jsonata-retry-catch-fail" => {
            vec![at(JsonataCatcherAssignInJsonPathDefinition, "Declined")]
        }
        "32-runtime-error-not-caught" => vec![at(MissingInputPathIgnored, "Work")],
        "33-result-path-match-failure" => vec![at(ResultPathOverwritesNonObject, "Work")],
        // Both runs pass the same states; the emulator's output is all nulls.
        "40-path-filters" => vec![at(JsonPathFiltersUnsupported, "Send")],
        // `$valid` reads nothing in the emulator, so its Choice goes to the Default.
        "41-variables" => vec![at(JsonPathVariablesUnsupported, "Check")],
        _ => Vec::new(),
    }
}

/// One differential case.
struct Case {
    name: String,
    /// The definition both engines run (QueueUrls are replaced for the emulator only).
    definition: Value,
    input: Value,
    responder: Value,
    /// Whether the cause is compared: when the definition decides it (a Fail state's Cause, the
    /// worker's SendTaskFailure), which its expected file then pins. The wording of errors the
    /// interpreter raises itself (States.NoChoiceMatched, States.Runtime) is not specified by AWS.
    compare_cause: bool,
    /// What the local run must show for the case to mean anything (pipeline and batch cases).
    check_local: Option<LocalCheck>,
    /// Whether the task messages sent are compared too (their bodies, without the task token, in
    /// a stable order: the iterations of a Map send theirs in no set order).
    compare_messages: bool,
}

/// A check of the local run's ending.
type LocalCheck = fn(&Execution) -> Result<(), String>;

/// How an execution ended, in the terms both engines share.
#[derive(Debug, Clone, PartialEq)]
struct Ending {
    status: String,
    output: Option<Value>,
    error: Option<String>,
    cause: Option<String>,
    states: Vec<String>,
    /// The bodies of the task messages sent, task tokens removed, sorted.
    messages: Vec<Value>,
}

fn definitions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/definitions")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// tests/definitions-extended: the definitions statelint cannot read (filters, variables).
fn extended_definitions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/definitions-extended")
}

fn definition_cases() -> Vec<Case> {
    let mut names: Vec<(PathBuf, String)> = [definitions_dir(), extended_definitions_dir()]
        .into_iter()
        .flat_map(|dir| {
            std::fs::read_dir(&dir)
                .expect("the definitions folders are readable")
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
        .into_iter()
        .map(|(dir, name)| {
            let file = |ext: &str| dir.join(format!("{name}.{ext}.json"));
            let expected = read_json(&file("expected"));
            Case {
                definition: read_json(&file("asl")),
                input: read_json(&file("input")),
                responder: read_json(&file("responder")),
                compare_cause: expected.get("cause").is_some(),
                check_local: None,
                compare_messages: false,
                name,
            }
        })
        .collect()
}

// ----------------------------------------------------------------------------------------------
// The pipeline: read from disk at test time, with scripted workers.
// ----------------------------------------------------------------------------------------------

fn object(bucket: &str, key: &str) -> Value {
    json!({"bucket": bucket, "key": key})
}

fn pipeline_input() -> Value {
    json!({
        "run_id": "0123456789abcdef0123456789abcdef",
        "dataset": "stocks",
        "source": object("sluice-landing", "incoming/stocks/aapl.csv"),
        "as_of": "2024-03-01",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    })
}

/// What every stage answers when all goes well (the shapes of sluice-proto's stage outputs).
fn pipeline_answers() -> serde_json::Map<String, Value> {
    let email = json!({"emails": [{"to": "ops@example.com", "message_id": "m-1"}]});
    let answers = json!({
        "Validate rows": [{"output": {
            "rows": {"total": 12, "valid": 10, "invalid": 2},
            "valid": object("sluice-work", "runs/r/valid.csv"),
            "valid_arrow": object("sluice-work", "runs/r/valid.arrow"),
            "invalid": object("sluice-work", "runs/r/invalid.csv"),
            "top_reasons": [{"reason": "volume: below the minimum 0", "rows": 2}],
            "stored_rows": 10
        }}],
        "Filter and compute stats": [{"output": {
            "filtered_rows": 7,
            "filtered": object("sluice-work", "runs/r/filtered.csv"),
            // A file whose values have no exact Arrow form: the later stages are given null.
            "filtered_arrow": null,
            "stats_object": object("sluice-work", "runs/r/stats.json"),
            "stats": {"high": {"count": 7, "mean": 2.0, "min": 1.0, "max": 3.0, "sum": 14.0, "stddev": 0.5}}
        }}],
        "Partition rows": [{"output": {
            "partitions": [
                object("sluice-curated", "stocks/2023/01.csv"),
                object("sluice-curated", "stocks/2023/02.csv")
            ],
            "count": 2,
            "manifest": object("sluice-curated", "stocks/_manifest.json")
        }}],
        "Draw plots": [{"output": {"plots": [object("sluice-work", "runs/r/plots/1-low-and-high.png")]}}],
        "Send invalid-rows report": [{"output": email}],
        "Send success summary": [{"output": email}],
        "Send failure alert": [{"output": email}]
    });
    match answers {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    }
}

/// Adds `"state": "<name>"` to the MessageBody object of every Task state that has no label
/// (`"state"` or `"state.$"`).
fn label_task_messages(states: &mut Value) {
    let Some(states) = states.as_object_mut() else {
        return;
    };
    for (name, state) in states.iter_mut() {
        if state["Type"] == "Task"
            && let Some(body) = state
                .pointer_mut("/Parameters/MessageBody")
                .and_then(Value::as_object_mut)
            && !body.contains_key("state")
            && !body.contains_key("state.$")
        {
            body.insert("state".into(), Value::String(name.clone()));
        }
        if let Some(branches) = state.get_mut("Branches").and_then(Value::as_array_mut) {
            branches
                .iter_mut()
                .for_each(|b| label_task_messages(&mut b["States"]));
        }
        for key in ["ItemProcessor", "Iterator"] {
            if let Some(processor) = state.get_mut(key) {
                label_task_messages(&mut processor["States"]);
            }
        }
    }
}

fn pipeline_cases() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipeline.asl.json");
    let mut definition = read_json(&path);
    label_task_messages(&mut definition["States"]);

    let happy = Value::Object(pipeline_answers());
    let mut retry = pipeline_answers();
    let valid = retry["Validate rows"][0].clone();
    retry.insert(
        "Validate rows".into(),
        json!([{"error": "Sluice.Transient", "cause": "S3 throttled the read (SlowDown)"}, valid]),
    );
    let mut permanent = pipeline_answers();
    permanent.insert(
        "Validate rows".into(),
        json!([{"error": "Sluice.InvalidInput", "cause": "aapl.csv line 1: the header has no column \"date\"; add it"}]),
    );

    let case = |name: &str, responder: Value, check: LocalCheck| Case {
        name: name.to_string(),
        definition: definition.clone(),
        input: pipeline_input(),
        responder,
        compare_cause: true,
        check_local: Some(check),
        compare_messages: false,
    };
    vec![
        case("pipeline-happy-path", happy, |e| {
            expect_local(
                e,
                "SUCCEEDED",
                None,
                &["Send invalid-rows report", "Run succeeded"],
            )
        }),
        case("pipeline-transient-retry", Value::Object(retry), |e| {
            expect_local(e, "SUCCEEDED", None, &["Run succeeded"])?;
            let attempts = e
                .events("TaskScheduled")
                .len()
                .saturating_sub(e.events("TaskSucceeded").len());
            (attempts == 1)
                .then_some(())
                .ok_or_else(|| format!("expected one retried attempt, saw {attempts}"))
        }),
        case(
            "pipeline-permanent-failure",
            Value::Object(permanent),
            |e| {
                expect_local(
                    e,
                    "FAILED",
                    Some("Sluice.InvalidInput"),
                    &["Validation failed", "Send failure alert", "Run failed"],
                )
            },
        ),
    ]
}

/// The local run ended as the case intends (so that two equal runs are the right ones).
fn expect_local(
    e: &Execution,
    status: &str,
    error: Option<&str>,
    states: &[&str],
) -> Result<(), String> {
    if e.status.as_str() != status || e.error.as_deref() != error {
        return Err(format!(
            "the local run ended {} {:?} ({:?}), not {status} {error:?}",
            e.status.as_str(),
            e.error,
            e.cause
        ));
    }
    match states
        .iter()
        .find(|s| !e.states_entered.iter().any(|x| x == *s))
    {
        Some(missing) => Err(format!(
            "the local run never entered \"{missing}\": {:?}",
            e.states_entered
        )),
        None => Ok(()),
    }
}

// ----------------------------------------------------------------------------------------------
// The batch: statemachine/batch.asl.json, read from disk at test time, with scripted workers.
// ----------------------------------------------------------------------------------------------

/// The batch's members: dataset and run id.
const MEMBERS: [(&str, &str); 3] = [
    ("orders", "11111111111111111111111111111111"),
    ("reviews", "22222222222222222222222222222222"),
    ("shipments", "33333333333333333333333333333333"),
];

/// The Map whose iterations validate and load the members.
const MEMBERS_MAP: &str = "Validate and load members";

/// The batch's failure alert (its message says which step failed and why).
const BATCH_ALERT: &str = "Send batch failure alert";

fn batch_input() -> Value {
    json!({
        "batch": "trading",
        "run_id": "trading-2026-12-02",
        "period": "2026-12-02",
        "as_of": "2026-12-02",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "members": MEMBERS.iter().map(|(ds, run)| json!({
            "dataset": ds,
            "run_id": run,
            "source": object("landing", &format!("incoming/{ds}/{ds}.csv")),
        })).collect::<Vec<_>>(),
    })
}

fn stage_output(o: StageOutput) -> Value {
    json!([{"output": serde_json::to_value(o).expect("a stage output serializes")}])
}

/// What every worker of the batch answers when all goes well (sluice-proto's stage outputs),
/// keyed by the labels of `label_member_tasks`: each member has its own.
fn batch_answers() -> serde_json::Map<String, Value> {
    let mut answers = serde_json::Map::new();
    for (ds, run) in MEMBERS {
        let work = |f: &str| ObjectRef::new("work", format!("runs/{run}/{f}"));
        answers.insert(
            format!("Validate member {ds}"),
            stage_output(StageOutput::Validator(ValidateOutput {
                rows: RowCounts {
                    total: 5,
                    valid: 4,
                    invalid: 1,
                },
                valid: work("valid.csv"),
                valid_arrow: None,
                invalid: work("invalid.csv"),
                top_reasons: vec![],
                stored_rows: 4,
            })),
        );
        answers.insert(
            format!("Load member {ds}"),
            stage_output(StageOutput::Loader(LoadOutput {
                table: format!("staging.{ds}"),
                loaded_rows: 4,
                replaced_rows: 0,
            })),
        );
    }
    answers.insert(
        "Run analytics".into(),
        stage_output(StageOutput::Analytics(AnalyticsOutput {
            tables: vec![AnalyticsTable {
                name: "late".into(),
                table: "analytics.late".into(),
                rows: 2,
            }],
        })),
    );
    answers.insert(
        "Export analytics".into(),
        stage_output(StageOutput::Export(ExportOutput {
            exports: vec![AnalyticsExport {
                name: "late".into(),
                object: ObjectRef::new(
                    "curated",
                    "trading/analytics/late/as_of=2026-12-02/late.csv",
                ),
                rows: 2,
            }],
        })),
    );
    let email = stage_output(StageOutput::BatchNotifier(NotifyOutput {
        emails: vec![EmailSent {
            to: vec!["team@example.com".into()],
            subject: "trading 2026-12-02".into(),
        }],
    }));
    answers.insert("Send batch summary".into(), email.clone());
    answers.insert(BATCH_ALERT.into(), email);
    answers
}

/// Labels the messages of the Task states of the members' Map with the state's name and the
/// member's dataset ("Validate member reviews"), computed by each engine from the item.
fn label_member_tasks(definition: &mut Value) {
    let states = definition
        .pointer_mut(&format!("/States/{MEMBERS_MAP}/ItemProcessor/States"))
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| {
            panic!("batch.asl.json has no Map \"{MEMBERS_MAP}\" with an ItemProcessor")
        });
    let mut labelled = 0;
    for (name, state) in states.iter_mut() {
        if state["Type"] == "Task"
            && let Some(body) = state
                .pointer_mut("/Parameters/MessageBody")
                .and_then(Value::as_object_mut)
        {
            body.insert(
                "state.$".into(),
                Value::String(format!("States.Format('{name} {{}}', $.member.dataset)")),
            );
            labelled += 1;
        }
    }
    assert_eq!(
        labelled, 2,
        "the members' Map has a validate and a load Task state"
    );
}

fn batch_cases() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("batch.asl.json");
    let mut definition = read_json(&path);
    label_member_tasks(&mut definition);
    label_task_messages(&mut definition["States"]);

    let mut invalid_member = batch_answers();
    invalid_member.insert(
        "Validate member reviews".into(),
        json!([{"error": "Sluice.InvalidInput", "cause": "reviews.csv line 1: the header has no column \"points\"; add it"}]),
    );
    let mut analytics_fails = batch_answers();
    analytics_fails.insert(
        "Run analytics".into(),
        json!([{"error": "Sluice.InvalidInput", "cause": "batch \"trading\": analytics query \"late\" failed: relation \"staging.nope\" does not exist (SQLSTATE 42P01)"}]),
    );

    let case = |name: &str, responder: serde_json::Map<String, Value>, check: LocalCheck| Case {
        name: name.to_string(),
        definition: definition.clone(),
        input: batch_input(),
        responder: Value::Object(responder),
        compare_cause: true,
        check_local: Some(check),
        compare_messages: true,
    };
    vec![
        case("batch-happy-path", batch_answers(), |e| {
            expect_local(
                e,
                "SUCCEEDED",
                None,
                &[
                    "Run analytics",
                    "Export analytics",
                    "Send batch summary",
                    "Batch succeeded",
                ],
            )?;
            never_entered(
                e,
                &[
                    "Member validation failed",
                    "Member load failed",
                    BATCH_ALERT,
                ],
            )?;
            entered_times(e, "Member loaded", 3)
        }),
        case("batch-member-fails-validation", invalid_member, |e| {
            expect_local(
                e,
                "FAILED",
                Some("Sluice.BatchFailed"),
                &[
                    "Member validation failed",
                    "Member failed",
                    BATCH_ALERT,
                    "Batch failed",
                ],
            )?;
            never_entered(
                e,
                &["Run analytics", "Export analytics", "Send batch summary"],
            )?;
            entered_times(e, "Member validation failed", 1)?;
            entered_times(e, "Load member", 2)?;
            expect_alert(
                e,
                ("validator", Some("reviews"), "Sluice.InvalidInput"),
                "no column \"points\"",
            )
        }),
        case("batch-analytics-fails", analytics_fails, |e| {
            expect_local(
                e,
                "FAILED",
                Some("Sluice.BatchFailed"),
                &[
                    "Analytics failed",
                    "Record analytics failure",
                    BATCH_ALERT,
                    "Batch failed",
                ],
            )?;
            never_entered(
                e,
                &["Export analytics", "Send batch summary", "Member failed"],
            )?;
            expect_alert(
                e,
                ("analytics", None, "Sluice.InvalidInput"),
                "SQLSTATE 42P01",
            )
        }),
    ]
}

fn never_entered(e: &Execution, states: &[&str]) -> Result<(), String> {
    match states
        .iter()
        .find(|s| e.states_entered.iter().any(|x| x == *s))
    {
        Some(s) => Err(format!(
            "the local run entered \"{s}\": {:?}",
            e.states_entered
        )),
        None => Ok(()),
    }
}

fn entered_times(e: &Execution, state: &str, times: usize) -> Result<(), String> {
    let n = e.states_entered.iter().filter(|s| *s == state).count();
    (n == times).then_some(()).ok_or_else(|| {
        format!(
            "the local run entered \"{state}\" {n} times, not {times}: {:?}",
            e.states_entered
        )
    })
}

/// The failure alert of the local run names the step, the member and the error, with the cause.
fn expect_alert(
    e: &Execution,
    (step, dataset, error): (&str, Option<&str>, &str),
    cause: &str,
) -> Result<(), String> {
    let alerts: Vec<Value> = local_messages(e)
        .into_iter()
        .filter(|m| m["state"] == BATCH_ALERT)
        .collect();
    let [alert] = alerts.as_slice() else {
        return Err(format!("expected one failure alert, saw {alerts:#?}"));
    };
    let envelope: TaskEnvelope = serde_json::from_value(alert.clone())
        .map_err(|err| format!("the alert is not a TaskEnvelope ({err}): {alert:#}"))?;
    let StageInput::BatchNotifier(notice) = &envelope.input else {
        return Err(format!("the alert is no batch notice: {alert:#}"));
    };
    let failure = notice
        .failure()
        .ok_or_else(|| format!("the alert names no failure: {alert:#}"))?;
    let got = (
        failure.step.as_str(),
        failure.dataset.as_ref().map(|d| d.as_str()),
        failure.error.as_str(),
    );
    if got != (step, dataset, error) || !failure.cause.contains(cause) {
        return Err(format!(
            "the alert says {failure:?}, not {step} {dataset:?} {error} with \"{cause}\""
        ));
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------------
// Running a case in each engine.
// ----------------------------------------------------------------------------------------------

/// The local engine's worker: answers each task from the responder by the label of the message it
/// sends (`MessageBody.state`), as the emulator's worker does, else by its state's name.
struct ByLabel(Responder);

#[async_trait]
impl TaskRunner for ByLabel {
    async fn run_task(&self, mut request: TaskRequest) -> Result<Value, TaskError> {
        if let Some(label) = request
            .parameters
            .pointer("/MessageBody/state")
            .and_then(Value::as_str)
        {
            request.state_name = label.to_string();
        }
        self.0.run_task(request).await
    }
}

/// The bodies of the task messages of the local run, in the order they were sent.
fn local_messages(e: &Execution) -> Vec<Value> {
    e.events("TaskScheduled")
        .iter()
        .filter_map(|event| {
            let parameters = event.details["parameters"].as_str()?;
            let parameters: Value = serde_json::from_str(parameters).ok()?;
            parameters.get("MessageBody").cloned()
        })
        .collect()
}

/// Messages as they are compared: without their task tokens (new for every attempt), sorted.
fn comparable_messages(messages: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let mut messages: Vec<Value> = messages
        .into_iter()
        .map(|mut m| {
            if let Some(body) = m.as_object_mut() {
                body.remove("task_token");
                body.remove("token");
            }
            m
        })
        .collect();
    messages.sort_by_cached_key(Value::to_string);
    messages
}

async fn run_locally(case: &Case) -> Result<(Ending, Execution), String> {
    let machine = StateMachine::parse(&case.definition.to_string()).map_err(|e| e.to_string())?;
    let responder = Responder::from_value(&case.responder)?;
    let clock = Arc::new(VirtualClock::starting_now());
    let exec = Executor::new(machine, Arc::new(ByLabel(responder)), clock)
        .execute(case.input.clone(), &case.name)
        .await;
    let ending = Ending {
        status: exec.status.as_str().to_string(),
        output: exec.output.clone(),
        error: exec.error.clone(),
        cause: exec.cause.clone(),
        // The states as the history records them, as the emulator's are read: the iterations of a
        // Distributed Map are child executions, out of the parent's history in both.
        states: exec
            .history
            .iter()
            .filter(|e| e.event_type.ends_with("StateEntered"))
            .filter_map(|e| e.details["name"].as_str().map(String::from))
            .collect(),
        messages: comparable_messages(local_messages(&exec)),
    };
    Ok((ending, exec))
}

struct Clients {
    sfn: aws_sdk_sfn::Client,
    sqs: aws_sdk_sqs::Client,
}

/// Points every `QueueUrl` of the definition (literal URLs and `${...QueueUrl}` placeholders) at
/// the run's queue.
fn with_queue(value: &mut Value, queue_url: &str) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "QueueUrl" && v.is_string() {
                    *v = Value::String(queue_url.to_string());
                } else {
                    with_queue(v, queue_url);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| with_queue(v, queue_url)),
        _ => {}
    }
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}

/// Runs the case in the emulator, acting as the worker of its Task states, and cleans up after.
async fn run_in_emulator(clients: &Clients, case: &Case, tag: &str) -> Result<Ending, String> {
    let slug: String = case
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let name = format!("sd-{tag}-{slug}");
    let queue_url = clients
        .sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .map_err(|e| format!("CreateQueue {name}: {e:?}"))?
        .queue_url()
        .ok_or("CreateQueue returned no QueueUrl")?
        .to_string();
    let mut definition = case.definition.clone();
    with_queue(&mut definition, &queue_url);
    let machine_arn = clients
        .sfn
        .create_state_machine()
        .name(&name)
        .definition(definition.to_string())
        .role_arn(ROLE_ARN)
        .send()
        .await
        .map_err(|e| format!("CreateStateMachine {name}: {e:?}"))?
        .state_machine_arn()
        .to_string();
    let result = execute_in_emulator(clients, case, &machine_arn, &queue_url).await;
    // Best effort: the emulator is reset between test runs anyway.
    let _ = clients
        .sfn
        .delete_state_machine()
        .state_machine_arn(&machine_arn)
        .send()
        .await;
    let _ = clients
        .sqs
        .delete_queue()
        .queue_url(&queue_url)
        .send()
        .await;
    result
}

async fn execute_in_emulator(
    clients: &Clients,
    case: &Case,
    machine_arn: &str,
    queue_url: &str,
) -> Result<Ending, String> {
    // A fresh responder: each call of a state takes its next entry, as in the local run.
    let responder = Responder::from_value(&case.responder)?;
    let execution_arn = clients
        .sfn
        .start_execution()
        .state_machine_arn(machine_arn)
        .input(case.input.to_string())
        .send()
        .await
        .map_err(|e| format!("StartExecution: {e:?}"))?
        .execution_arn()
        .to_string();
    let started = Instant::now();
    let mut messages = Vec::new();
    let status = loop {
        let received = clients
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| format!("ReceiveMessage: {e:?}"))?;
        for message in received.messages() {
            let body = message.body().unwrap_or_default();
            let body: Value = serde_json::from_str(body)
                .map_err(|e| format!("a task message is not JSON ({e}): {body}"))?;
            answer(clients, &responder, &body).await?;
            messages.push(body);
            if let Some(handle) = message.receipt_handle() {
                clients
                    .sqs
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| format!("DeleteMessage: {e:?}"))?;
            }
        }
        let described = clients
            .sfn
            .describe_execution()
            .execution_arn(&execution_arn)
            .send()
            .await
            .map_err(|e| format!("DescribeExecution: {e:?}"))?;
        if *described.status() != SfnStatus::Running {
            break described.status().as_str().to_string();
        }
        if started.elapsed() > EXECUTION_DEADLINE {
            let _ = clients
                .sfn
                .stop_execution()
                .execution_arn(&execution_arn)
                .send()
                .await;
            return Err(format!(
                "the execution was still RUNNING after {} s; stopped it",
                EXECUTION_DEADLINE.as_secs()
            ));
        }
    };

    let history = history(clients, &execution_arn).await?;
    let mut ending = Ending {
        status,
        output: None,
        error: None,
        cause: None,
        states: Vec::new(),
        messages: comparable_messages(messages),
    };
    // Output, error and cause come from the history's closing event, as AWS records them:
    // DescribeExecution of the emulator also sets `output` on FAILED executions, where AWS leaves
    // it null ("This field is set only if the execution succeeds"); the history has no such field.
    for event in &history {
        if let Some(d) = event.state_entered_event_details() {
            ending.states.push(d.name().to_string());
        }
        if let Some(d) = event.execution_succeeded_event_details() {
            let text = d.output().unwrap_or("null");
            ending.output = Some(
                serde_json::from_str(text)
                    .map_err(|e| format!("the execution output is not JSON ({e}): {text}"))?,
            );
        }
        if let Some(d) = event.execution_failed_event_details() {
            ending.error = non_empty(d.error());
            ending.cause = non_empty(d.cause());
        }
        if let Some(d) = event.execution_timed_out_event_details() {
            ending.error = non_empty(d.error());
            ending.cause = non_empty(d.cause());
        }
    }
    Ok(ending)
}

/// Answers one task message from the responder (an unnamed state fails with States.TaskFailed,
/// with the cause the local Responder gives).
async fn answer(clients: &Clients, responder: &Responder, body: &Value) -> Result<(), String> {
    let state = body["state"]
        .as_str()
        .ok_or_else(|| format!("a task message has no \"state\" field: {body}"))?;
    let token = body
        .get("token")
        .or_else(|| body.get("task_token"))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("a task message has no task token: {body}"))?;
    let outcome = responder.next_outcome(state).unwrap_or(Outcome::Error {
        error: "States.TaskFailed".into(),
        cause: format!("The responder file has no outcome for Task state '{state}'"),
    });
    match outcome {
        Outcome::Output(v) => clients
            .sfn
            .send_task_success()
            .task_token(token)
            .output(v.to_string())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("SendTaskSuccess for \"{state}\": {e:?}")),
        Outcome::Error { error, cause } => clients
            .sfn
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(cause)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("SendTaskFailure for \"{state}\": {e:?}")),
    }
}

async fn history(clients: &Clients, execution_arn: &str) -> Result<Vec<HistoryEvent>, String> {
    let mut events = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = clients
            .sfn
            .get_execution_history()
            .execution_arn(execution_arn)
            .max_results(1000)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| format!("GetExecutionHistory: {e:?}"))?;
        events.extend(page.events().iter().cloned());
        match page.next_token() {
            Some(t) => next = Some(t.to_string()),
            None => return Ok(events),
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Comparing.
// ----------------------------------------------------------------------------------------------

/// The names of the top-level states (state names are unique in the whole machine).
fn top_level_states(definition: &Value) -> BTreeSet<String> {
    definition["States"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The differences between the two runs, after the case's known differences; an empty list when
/// they agree. A known difference that does not show up is itself reported.
fn compare(case: &Case, local: &Ending, emulated: &Ending) -> Vec<String> {
    let known = known_differences(&case.name);
    let nested = known.iter().any(|k| k.gap == Gap::NestedStatesNotInHistory);
    // With nested states missing from the emulator's history, only top-level states compare.
    let local_states: Vec<String> = if nested {
        let top = top_level_states(&case.definition);
        local
            .states
            .iter()
            .filter(|s| top.contains(*s))
            .cloned()
            .collect()
    } else {
        local.states.clone()
    };
    let mut problems = Vec::new();
    if nested && local.states == emulated.states {
        problems.push(format!(
            "known difference {:?} not observed: remove it from the allow-list",
            Gap::NestedStatesNotInHistory
        ));
        return problems;
    }
    let mut full = Vec::new();
    let mut field = |what: &str, l: String, e: String| {
        if l != e {
            full.push(format!("{what}: local {l}, emulator {e}"));
        }
    };
    field("status", local.status.clone(), emulated.status.clone());
    field(
        "output",
        format!("{:?}", local.output),
        format!("{:?}", emulated.output),
    );
    field(
        "error",
        format!("{:?}", local.error),
        format!("{:?}", emulated.error),
    );
    if case.compare_cause {
        field(
            "cause",
            format!("{:?}", local.cause),
            format!("{:?}", emulated.cause),
        );
    }
    field(
        if nested { "top-level states" } else { "states" },
        format!("{local_states:?}"),
        format!("{:?}", emulated.states),
    );
    if case.compare_messages && local.messages != emulated.messages {
        let only = |a: &[Value], b: &[Value]| -> Vec<String> {
            a.iter()
                .filter(|m| !b.contains(m))
                .map(Value::to_string)
                .collect()
        };
        full.push(format!(
            "task messages ({} local, {} emulator): only local {:#?}, only emulator {:#?}",
            local.messages.len(),
            emulated.messages.len(),
            only(&local.messages, &emulated.messages),
            only(&emulated.messages, &local.messages)
        ));
    }
    let Some(divergence) = known.iter().find(|k| k.diverges_at.is_some()) else {
        return full;
    };
    let at = divergence.diverges_at.unwrap_or_default();
    if full.is_empty() {
        problems.push(format!(
            "known difference {:?} not observed: remove it from the allow-list",
            divergence.gap
        ));
    }
    // Up to the state where the emulator departs from AWS, both runs went the same way.
    let through = |states: &[String]| -> Option<Vec<String>> {
        let end = states.iter().position(|s| s == at)?;
        Some(states[..=end].to_vec())
    };
    let (l, e) = (through(&local_states), through(&emulated.states));
    if l.is_none() || l != e {
        problems.push(format!(
            "states up to \"{at}\", where the runs are known to part ({:?}): local {:?}, emulator {:?}",
            divergence.gap, local_states, emulated.states
        ));
    }
    problems
}

#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_engine_matches_the_emulator() {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL is not set: start the emulator (compose/emulator.sh start) and export it, or run scripts/test"
    );
    let started = Instant::now();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let clients = Clients {
        sfn: aws_sdk_sfn::Client::new(&config),
        sqs: aws_sdk_sqs::Client::new(&config),
    };
    // Names unique to this test run, so that runs against one emulator never share a queue.
    let tag = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() % 100_000_000)
        .unwrap_or_default()
        .to_string();

    let cases: Vec<Case> = definition_cases()
        .into_iter()
        .chain(pipeline_cases())
        .chain(batch_cases())
        .collect();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let results: Vec<(String, Result<Vec<String>, String>)> = futures_util::stream::iter(&cases)
        .map(|case| {
            let (clients, tag) = (&clients, &tag);
            async move {
                let result = async {
                    let (local, exec) = run_locally(case).await?;
                    if let Some(check) = case.check_local {
                        check(&exec).map_err(|e| format!("local run: {e}"))?;
                    }
                    let emulated = run_in_emulator(clients, case, tag).await?;
                    Ok(compare(case, &local, &emulated))
                }
                .await;
                (case.name.clone(), result)
            }
        })
        .buffer_unordered(CONCURRENT_CASES)
        .collect()
        .await;

    let mut results = results;
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let mut failures = Vec::new();
    let mut equal = 0;
    for (name, result) in &results {
        match result {
            Ok(problems) if problems.is_empty() => {
                let gaps: Vec<Gap> = known_differences(name).iter().map(|k| k.gap).collect();
                if gaps.is_empty() {
                    equal += 1;
                    println!("{name}: equal");
                } else {
                    println!("{name}: equal except the known {gaps:?}");
                }
            }
            Ok(problems) => failures.push(format!("{name}:\n  {}", problems.join("\n  "))),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    println!(
        "{equal} of {} cases equal with no exception, in {:.1} s",
        results.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "the local engine and the emulator disagree:\n{}",
        failures.join("\n")
    );
    assert!(
        equal >= 25,
        "only {equal} cases compare equal with no exception"
    );
}

#[test]
fn queue_urls_and_state_labels_are_substituted() {
    let mut def = json!({"States": {
        "A": {"Type": "Task", "Parameters": {"QueueUrl": "${ValidatorQueueUrl}", "MessageBody": {"x": 1}}},
        "P": {"Type": "Parallel", "Branches": [{"States": {
            "B": {"Type": "Task", "Parameters": {"QueueUrl": "https://q/old", "MessageBody": {"state": "keep"}}}
        }}]},
        "M": {"Type": "Map", "ItemProcessor": {"States": {
            "C": {"Type": "Task", "Parameters": {"QueueUrl": "u", "MessageBody.$": "$"}},
            "D": {"Type": "Task", "Parameters": {"QueueUrl": "u", "MessageBody": {"state.$": "$.x"}}}
        }}}
    }});
    label_task_messages(&mut def["States"]);
    with_queue(&mut def, "http://q/new");
    assert_eq!(
        def.pointer("/States/A/Parameters/MessageBody/state"),
        Some(&json!("A"))
    );
    assert_eq!(
        def.pointer("/States/P/Branches/0/States/B/Parameters/MessageBody/state"),
        Some(&json!("keep"))
    );
    assert_eq!(
        def.pointer("/States/M/ItemProcessor/States/D/Parameters/MessageBody"),
        Some(&json!({"state.$": "$.x"})),
        "a computed label is kept"
    );
    for p in [
        "/States/A/Parameters/QueueUrl",
        "/States/P/Branches/0/States/B/Parameters/QueueUrl",
        "/States/M/ItemProcessor/States/C/Parameters/QueueUrl",
    ] {
        assert_eq!(def.pointer(p), Some(&json!("http://q/new")), "{p}");
    }
    assert_eq!(
        top_level_states(&def),
        ["A", "M", "P"].iter().map(|s| s.to_string()).collect()
    );
}

#[test]
fn the_batch_members_tasks_are_labelled_by_member() {
    let case = &batch_cases()[0];
    for state in ["Validate member", "Load member"] {
        let body = case
            .definition
            .pointer(&format!(
                "/States/{MEMBERS_MAP}/ItemProcessor/States/{state}/Parameters/MessageBody"
            ))
            .unwrap_or_else(|| panic!("{state} sends a MessageBody"));
        assert_eq!(
            body["state.$"],
            json!(format!("States.Format('{state} {{}}', $.member.dataset)"))
        );
        assert!(body.get("state").is_none(), "{body:#}");
    }
    assert_eq!(
        case.definition
            .pointer("/States/Run analytics/Parameters/MessageBody/state"),
        Some(&json!("Run analytics"))
    );
}

/// The scripted cases end locally as they are meant to (this needs no emulator).
#[tokio::test]
async fn the_scripted_cases_end_locally_as_intended() {
    for case in pipeline_cases().iter().chain(&batch_cases()) {
        let (_, exec) = run_locally(case)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        if let Some(check) = case.check_local {
            check(&exec).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        }
    }
}

#[test]
fn known_differences_are_reported_when_they_vanish() {
    let case = Case {
        name: "23-parallel".into(),
        definition: json!({"States": {"Both": {}, "Done": {}}}),
        input: json!({}),
        responder: json!({}),
        compare_cause: false,
        check_local: None,
        compare_messages: false,
    };
    let ending = |states: &[&str]| Ending {
        status: "SUCCEEDED".into(),
        output: Some(json!(1)),
        error: None,
        cause: None,
        states: states.iter().map(|s| s.to_string()).collect(),
        messages: Vec::new(),
    };
    let local = ending(&["Both", "Left", "Done"]);
    assert!(compare(&case, &local, &ending(&["Both", "Done"])).is_empty());
    assert_eq!(
        compare(&case, &local, &local).len(),
        1,
        "a stale entry fails"
    );

    let case = Case {
        name: "29-execution-timeout".into(),
        definition: json!({"States": {"Pause": {}, "Done": {}}}),
        ..case
    };
    let timed_out = Ending {
        status: "TIMED_OUT".into(),
        output: None,
        error: Some("States.Timeout".into()),
        cause: None,
        states: vec!["Pause".into()],
        messages: Vec::new(),
    };
    assert!(compare(&case, &timed_out, &ending(&["Pause", "Done"])).is_empty());
    assert_eq!(
        compare(&case, &timed_out, &timed_out).len(),
        1,
        "a divergence that is gone fails"
    );
    assert_eq!(
        compare(&case, &timed_out, &ending(&["Done"])).len(),
        1,
        "the states before the divergence are still compared"
    );
    assert_eq!(
        compare(&case, &local, &ending(&["Both"])).len(),
        1,
        "top-level states still compared"
    );

    let case = Case {
        name: "batch-happy-path".into(),
        definition: json!({"States": {"Both": {}, "Done": {}}}),
        compare_messages: true,
        ..case
    };
    let with_messages = |messages: Vec<Value>| Ending {
        messages: comparable_messages(messages),
        ..local.clone()
    };
    let sent = with_messages(vec![
        json!({"state": "B", "task_token": "t1"}),
        json!({"state": "A", "task_token": "t2"}),
    ]);
    let shown = Ending {
        states: vec!["Both".into(), "Done".into()],
        ..with_messages(vec![
            json!({"state": "A", "task_token": "other"}),
            json!({"state": "B", "task_token": "other"}),
        ])
    };
    assert!(
        compare(&case, &sent, &shown).is_empty(),
        "messages compare in any order, without their tokens"
    );
    let differs = Ending {
        messages: comparable_messages(vec![json!({"state": "A"}), json!({"state": "C"})]),
        ..shown
    };
    assert_eq!(
        compare(&case, &sent, &differs).len(),
        1,
        "a message differs"
    );
}
