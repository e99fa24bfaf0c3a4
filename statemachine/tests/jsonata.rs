//! The executor on JSONata states (Developer Guide, "Transforming data with JSONata in Step
//! Functions"), field by field, on a virtual clock.

mod common;

use common::{Plan, SQS, run_with, t0, times_of};
use serde_json::{Value, json};
use sluice_statemachine::{Execution, ExecutionStatus, StateMachine};

fn jsonata(states: Value, start: &str) -> Value {
    json!({"QueryLanguage": "JSONata", "StartAt": start, "States": states})
}

fn assert_failed(exec: &Execution, error: &str, cause: &str) {
    assert_eq!(exec.status, ExecutionStatus::Failed, "{exec:#?}");
    assert_eq!(exec.error.as_deref(), Some(error), "{exec:#?}");
    let got = exec.cause.as_deref().unwrap_or_default();
    assert!(got.contains(cause), "cause {got:?} lacks {cause:?}");
}

#[tokio::test]
async fn the_conversion_example_of_the_documentation() {
    // "Transforming data with JSONata": the JSONPath Parameters and their JSONata Arguments give
    // the same task input.
    let def = json!({"StartAt": "Name", "States": {
        "Name": {"Type": "Pass", "Assign": {"customerName": "María"}, "Next": "T"},
        "T": {"Type": "Task", "QueryLanguage": "JSONata", "Resource": SQS,
              "Arguments": {"static": "Hello", "title": "{% $states.input.title %}",
                            "name": "{% $customerName %}", "not-evaluated": "$customerName"},
              "End": true}
    }});
    let (exec, script) = run_with(&def, json!({"title": "Doctor"}), |_, _| {
        Plan::ok(json!({"ok": true}))
    })
    .await;
    assert_eq!(
        script.requests()[0].0.parameters,
        json!({"static": "Hello", "title": "Doctor", "name": "María", "not-evaluated": "$customerName"})
    );
    // Without Output, a Task's output is its result.
    assert_eq!(exec.output, Some(json!({"ok": true})));
}

#[tokio::test]
async fn task_output_assign_and_the_states_variable() {
    let def = jsonata(
        json!({
            "T": {"Type": "Task", "Resource": SQS,
                  "Arguments": {"n": "{% $states.input.n %}", "token": "{% $states.context.Task.Token %}",
                                "state": "{% $states.context.State.Name %}"},
                  "Output": {"input": "{% $states.input %}", "sum": "{% $states.result.a + $states.result.b %}"},
                  "Assign": {"total": "{% $states.result.a + $states.result.b %}", "before": "{% $states.input.n %}"},
                  "Next": "Read"},
            "Read": {"Type": "Pass", "Output": {"total": "{% $total %}", "before": "{% $before %}", "input": "{% $states.input %}"}, "End": true}
        }),
        "T",
    );
    let (exec, script) = run_with(&def, json!({"n": 1}), |_, _| {
        Plan::ok(json!({"a": 2, "b": 3}))
    })
    .await;
    let request = &script.requests()[0].0;
    assert_eq!(request.parameters["token"], json!(request.task_token));
    assert_eq!(request.parameters["state"], "T");
    assert_eq!(
        exec.output,
        Some(json!({"total": 5, "before": 1, "input": {"input": {"n": 1}, "sum": 5}}))
    );
    // The history shows the assigned variables as for JSONPath states.
    let exited = exec.events("TaskStateExited");
    assert_eq!(
        exited[0].details["assignedVariables"],
        json!({"total": "5", "before": "1"})
    );
}

#[tokio::test]
async fn expressions_read_the_variables_of_the_states_entry() {
    // Output and Assign of one state see the value the variable had when the state was entered.
    let def = jsonata(
        json!({
            "A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "B"},
            "B": {"Type": "Pass", "Assign": {"x": "{% $x + 1 %}"}, "Output": {"seen": "{% $x %}"}, "Next": "C"},
            "C": {"Type": "Pass", "Output": {"before": "{% $states.input.seen %}", "now": "{% $x %}"}, "End": true}
        }),
        "A",
    );
    let (exec, _) = run_with(&def, json!({}), |_, _| Plan::never()).await;
    assert_eq!(exec.output, Some(json!({"before": 1, "now": 2})));
}

#[tokio::test]
async fn pass_wait_and_succeed_default_to_their_input() {
    let def = jsonata(
        json!({
            "P": {"Type": "Pass", "Next": "W"},
            "W": {"Type": "Wait", "Seconds": "{% $states.input.wait %}", "Next": "W2"},
            "W2": {"Type": "Wait", "Timestamp": "{% $states.input.until %}", "Next": "S"},
            "S": {"Type": "Succeed"}
        }),
        "P",
    );
    let input = json!({"wait": 30, "until": "2024-03-01T13:00:00Z"});
    let (exec, _) = run_with(&def, input.clone(), |_, _| Plan::never()).await;
    assert_eq!(exec.output, Some(input));
    let entered = times_of(&exec, "WaitStateEntered");
    let exited = times_of(&exec, "WaitStateExited");
    assert_eq!(exited[0] - entered[0], 30.0);
    let until = t0() + chrono::Duration::hours(1);
    assert_eq!(exec.events("WaitStateExited")[1].timestamp, until);
}

#[tokio::test]
async fn wait_and_task_fields_given_as_expressions_are_checked() {
    for (seconds, cause) in [
        (json!("{% 'soon' %}"), "Expected 'number', but was 'string'"),
        (json!("{% 1.5 %}"), "cannot be parsed as an integer"),
        (json!("{% -1 %}"), "cannot be negative"),
    ] {
        let def = jsonata(
            json!({"W": {"Type": "Wait", "Seconds": seconds, "End": true}}),
            "W",
        );
        let (exec, _) = run_with(&def, json!({}), |_, _| Plan::never()).await;
        assert_failed(&exec, "States.QueryEvaluationError", cause);
    }
    let def = jsonata(
        json!({"W": {"Type": "Wait", "Timestamp": "{% 'tomorrow' %}", "End": true}}),
        "W",
    );
    let (exec, _) = run_with(&def, json!({}), |_, _| Plan::never()).await;
    assert_failed(&exec, "States.QueryEvaluationError", "RFC 3339");

    // TimeoutSeconds and HeartbeatSeconds as expressions reach the task runner.
    let def = jsonata(
        json!({"T": {"Type": "Task", "Resource": SQS, "TimeoutSeconds": "{% $states.input.t %}",
                     "HeartbeatSeconds": "{% $states.input.t - 5 %}", "End": true}}),
        "T",
    );
    let (exec, script) = run_with(&def, json!({"t": 60}), |_, _| Plan::ok(json!(1))).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    let request = &script.requests()[0].0;
    assert_eq!(request.timeout.as_secs(), 60);
    assert_eq!(request.heartbeat.map(|h| h.as_secs()), Some(55));
    assert_eq!(
        request.parameters,
        json!({"t": 60}),
        "no Arguments: the state input"
    );
    let (exec, _) = run_with(&def, json!({"t": 0}), |_, _| Plan::ok(json!(1))).await;
    assert_failed(
        &exec,
        "States.QueryEvaluationError",
        "TimeoutSeconds must be a positive integer",
    );
}

#[tokio::test]
async fn choice_conditions_outputs_and_default() {
    let def = jsonata(
        json!({
            "C": {"Type": "Choice", "Choices": [
                    {"Condition": "{% $states.input.n > 10 %}", "Output": {"big": "{% $states.input.n %}"},
                     "Assign": {"verdict": "big"}, "Next": "Done"},
                    {"Condition": "{% $states.input.n > 5 %}", "Next": "Done"}],
                  "Default": "Done", "Assign": {"verdict": "small"}, "Output": {"default": true}},
            "Done": {"Type": "Pass", "Output": {"in": "{% $states.input %}", "verdict": "{% $exists($verdict) ? $verdict : 'none' %}"}, "End": true}
        }),
        "C",
    );
    for (n, want) in [
        (20, json!({"in": {"big": 20}, "verdict": "big"})),
        // A rule without Output: the state's Output.
        (7, json!({"in": {"default": true}, "verdict": "none"})),
        (1, json!({"in": {"default": true}, "verdict": "small"})),
    ] {
        let (exec, _) = run_with(&def, json!({"n": n}), |_, _| Plan::never()).await;
        assert_eq!(exec.output, Some(want), "n = {n}");
    }
    // A Condition must give a boolean; no match without a Default fails.
    let def = jsonata(
        json!({"C": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n %}", "Next": "S"}]}, "S": {"Type": "Succeed"}}),
        "C",
    );
    let (exec, _) = run_with(&def, json!({"n": 1}), |_, _| Plan::never()).await;
    assert_failed(
        &exec,
        "States.QueryEvaluationError",
        "must give true or false",
    );
    let def = jsonata(
        json!({"C": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n = 2 %}", "Next": "S"}]}, "S": {"Type": "Succeed"}}),
        "C",
    );
    let (exec, _) = run_with(&def, json!({"n": 1}), |_, _| Plan::never()).await;
    assert_failed(&exec, "States.NoChoiceMatched", "");
}

#[tokio::test]
async fn retry_and_catch_with_output_and_assign() {
    let def = jsonata(
        json!({
            "T": {"Type": "Task", "Resource": SQS,
                  "Retry": [{"ErrorEquals": ["Transient"], "IntervalSeconds": 2, "MaxAttempts": 1}],
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled",
                             "Output": {"error": "{% $states.errorOutput.Error %}", "input": "{% $states.input %}"},
                             "Assign": {"cause": "{% $states.errorOutput.Cause %}"}}],
                  "Assign": {"never": 1},
                  "End": true},
            "Handled": {"Type": "Pass", "Output": {"caught": "{% $states.input %}", "cause": "{% $cause %}",
                                                    "never": "{% $exists($never) %}"}, "End": true}
        }),
        "T",
    );
    let (exec, script) = run_with(&def, json!({"id": 3}), |_, call| {
        if call == 0 {
            Plan::err("Transient", "try again")
        } else {
            Plan::err("Permanent", "no luck")
        }
    })
    .await;
    assert_eq!(script.requests().len(), 2);
    assert_eq!(
        exec.output,
        Some(
            json!({"caught": {"error": "Permanent", "input": {"id": 3}}, "cause": "no luck", "never": false})
        )
    );
    // Without Output, a catcher passes the error output on.
    let def = jsonata(
        json!({
            "T": {"Type": "Task", "Resource": SQS, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "S"}], "End": true},
            "S": {"Type": "Succeed"}
        }),
        "T",
    );
    let (exec, _) = run_with(&def, json!({}), |_, _| Plan::err("E", "c")).await;
    assert_eq!(exec.output, Some(json!({"Error": "E", "Cause": "c"})));
}

#[tokio::test]
async fn query_evaluation_errors_can_be_caught() {
    let def = jsonata(
        json!({
            "P": {"Type": "Task", "Resource": SQS, "Arguments": "{% $states.input.missing %}",
                  "Catch": [{"ErrorEquals": ["States.QueryEvaluationError"], "Next": "S"}], "End": true},
            "S": {"Type": "Succeed"}
        }),
        "P",
    );
    let (exec, script) = run_with(&def, json!({}), |_, _| Plan::ok(json!(1))).await;
    assert!(script.requests().is_empty());
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    assert_eq!(
        exec.output.as_ref().unwrap()["Error"],
        "States.QueryEvaluationError"
    );
    let cause = exec.output.as_ref().unwrap()["Cause"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        cause.contains("'Arguments'") && cause.contains("undefined"),
        "{cause}"
    );
    // A type error names the JSONata error code.
    let def = jsonata(
        json!({"P": {"Type": "Pass", "Output": "{% $states.input.a + 'x' %}", "End": true}}),
        "P",
    );
    let (exec, _) = run_with(&def, json!({"a": 1}), |_, _| Plan::never()).await;
    assert_failed(&exec, "States.QueryEvaluationError", "T2002");
}

#[tokio::test]
async fn map_items_item_selector_and_limits() {
    let def = jsonata(
        json!({
            "M": {"Type": "Map", "Items": "{% $states.input.orders[qty > 0] %}",
                  "MaxConcurrency": "{% $states.input.parallel %}",
                  "ItemSelector": {"sku": "{% $states.context.Map.Item.Value.sku %}",
                                   "index": "{% $states.context.Map.Item.Index %}",
                                   "customer": "{% $states.input.customer %}"},
                  "ItemProcessor": {"StartAt": "Line", "States": {
                      "Line": {"Type": "Pass", "Output": "{% $states.input.customer & '-' & $states.input.sku & '-' & $states.input.index %}", "End": true}}},
                  "Output": {"lines": "{% $states.result %}", "count": "{% $count($states.result) %}"},
                  "Assign": {"lines": "{% $states.result %}"},
                  "End": true}
        }),
        "M",
    );
    let input = json!({"customer": "c1", "parallel": 1,
                       "orders": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 0}, {"sku": "c", "qty": 2}]});
    let (exec, _) = run_with(&def, input, |_, _| Plan::never()).await;
    assert_eq!(
        exec.output,
        Some(json!({"lines": ["c1-a-0", "c1-c-1"], "count": 2}))
    );
    assert_eq!(exec.events("MapStateStarted")[0].details["length"], 2);

    // Without Items the input must be an array; Items must give one.
    let def = jsonata(
        json!({"M": {"Type": "Map", "End": true,
                     "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}}}}),
        "M",
    );
    let (exec, _) = run_with(&def, json!([1, 2]), |_, _| Plan::never()).await;
    assert_eq!(exec.output, Some(json!([1, 2])));
    let (exec, _) = run_with(&def, json!({"a": 1}), |_, _| Plan::never()).await;
    assert_failed(&exec, "States.QueryEvaluationError", "must be an array");

    // ToleratedFailureCount as an expression.
    let def = jsonata(
        json!({"M": {"Type": "Map", "Items": [1, 2, 3], "ToleratedFailureCount": "{% $states.input.tolerate %}", "End": true,
                     "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Task", "Resource": SQS, "End": true}}}}}),
        "M",
    );
    let (exec, _) = run_with(&def, json!({"tolerate": 1}), |req, _| {
        if req.parameters == json!(2) {
            Plan::err("Bad", "item 2")
        } else {
            Plan::ok(json!("ok"))
        }
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    assert_eq!(exec.output.as_ref().unwrap()[0], "ok");
    assert_eq!(exec.output.as_ref().unwrap()[1]["Error"], "Bad");
}

#[tokio::test]
async fn parallel_arguments_output_and_branch_scopes() {
    let def = jsonata(
        json!({
            "Init": {"Type": "Pass", "Assign": {"base": 10}, "Next": "Par"},
            "Par": {"Type": "Parallel", "Arguments": {"n": "{% $states.input.n + $base %}"},
                    "Branches": [
                        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Assign": {"inner": 1}, "Output": "{% $states.input.n * 2 %}", "End": true}}},
                        {"StartAt": "B", "States": {"B": {"Type": "Pass", "Output": "{% $states.input.n + $base %}", "End": true}}}],
                    "Output": {"results": "{% $states.result %}", "sum": "{% $sum($states.result) %}"},
                    "Assign": {"first": "{% $states.result[0] %}"},
                    "Next": "After"},
            "After": {"Type": "Pass", "Output": {"first": "{% $first %}", "inner": "{% $exists($inner) %}", "par": "{% $states.input %}"}, "End": true}
        }),
        "Init",
    );
    let (exec, _) = run_with(&def, json!({"n": 1}), |_, _| Plan::never()).await;
    assert_eq!(
        exec.output,
        Some(json!({"first": 22, "inner": false, "par": {"results": [22, 21], "sum": 43}}))
    );
}

#[tokio::test]
async fn fail_error_and_cause_expressions() {
    let def = jsonata(
        json!({"F": {"Type": "Fail", "Error": "{% 'Order.' & $states.input.kind %}", "Cause": "{% $string($states.input.id) %}"}}),
        "F",
    );
    let (exec, _) = run_with(&def, json!({"kind": "Invalid", "id": 42}), |_, _| {
        Plan::never()
    })
    .await;
    assert_failed(&exec, "Order.Invalid", "42");
    let def = jsonata(
        json!({"F": {"Type": "Fail", "Error": "{% $states.input.id %}"}}),
        "F",
    );
    let (exec, _) = run_with(&def, json!({"id": 42}), |_, _| Plan::never()).await;
    assert_failed(&exec, "States.QueryEvaluationError", "Expected 'string'");
}

#[tokio::test]
async fn step_functions_functions_and_the_clock() {
    let def = jsonata(
        json!({"P": {"Type": "Pass", "Output": {
            "chunks": "{% $partition($states.input.items, 2) %}",
            "range": "{% $range(0, 10, 5) %}",
            "hash": "{% $hash('input data', 'SHA-1') %}",
            "seeded": "{% $random(7) = $random(7) %}",
            "uuid": "{% $length($uuid()) %}",
            "parsed": "{% $parse($states.input.text).a %}",
            "now": "{% $now() %}",
            "entered": "{% $states.context.State.EnteredTime %}"
        }, "End": true}}),
        "P",
    );
    let (exec, _) = run_with(
        &def,
        json!({"items": [1, 2, 3], "text": "{\"a\": [true]}"}),
        |_, _| Plan::never(),
    )
    .await;
    assert_eq!(
        exec.output,
        Some(json!({
            "chunks": [[1, 2], [3]], "range": [0, 5, 10],
            "hash": "aaff4a450a104cd177d28d18d74485e8cae074b7", "seeded": true, "uuid": 36,
            "parsed": [true], "now": "2024-03-01T12:00:00.000Z", "entered": "2024-03-01T12:00:00.000Z"
        }))
    );
}

#[tokio::test]
async fn jsonata_and_jsonpath_states_share_variables() {
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Parameters": {"v.$": "$.v"}, "Assign": {"fromPath.$": "$.v"}, "Next": "B"},
        "B": {"Type": "Pass", "QueryLanguage": "JSONata", "Assign": {"fromJsonata": "{% $fromPath * 2 %}"}, "Next": "C"},
        "C": {"Type": "Pass", "Parameters": {"a.$": "$fromPath", "b.$": "$fromJsonata"}, "End": true}
    }});
    let (exec, _) = run_with(&def, json!({"v": 4}), |_, _| Plan::never()).await;
    assert_eq!(exec.output, Some(json!({"a": 4, "b": 8})));
}

#[test]
fn bad_definitions_are_refused_with_the_state() {
    let err = StateMachine::parse(
        &jsonata(
            json!({"P": {"Type": "Pass", "Parameters": {"a": 1}, "Output": "{% $states.input. %}", "End": true}}),
            "P",
        )
        .to_string(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("State \"P\": \"Parameters\" is a JSONPath field"),
        "{err}"
    );
    assert!(
        err.contains("State \"P\": \"Output\": the JSONata expression is not valid"),
        "{err}"
    );
}

#[test]
fn render_shows_conditions_on_choice_edges() {
    let sm = StateMachine::parse(
        &jsonata(
            json!({
                "C": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n > 10\n and $x %}", "Next": "S"}], "Default": "S"},
                "S": {"Type": "Succeed"}
            }),
            "C",
        )
        .to_string(),
    )
    .unwrap();
    let out = sluice_statemachine::render::render(&sm);
    assert!(
        out.contains("-->|\"$states.input.n #gt; 10 and $x\"|"),
        "{out}"
    );
}
