//! The executor against the worked examples of the Amazon States Language and the AWS
//! Step Functions documentation, on a virtual clock.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{Plan, SQS, machine, run_with, t0, times_of};
use serde_json::{Value, json};
use sluice_statemachine::{Execution, ExecutionStatus, Executor, Responder, VirtualClock};

fn task(extra: Value) -> Value {
    let mut t = json!({"Type": "Task", "Resource": SQS});
    if let (Value::Object(t), Value::Object(extra)) = (&mut t, extra) {
        t.extend(extra);
    }
    t
}

fn one_task(extra: Value) -> Value {
    let mut t = task(extra);
    if t.get("Next").is_none() {
        t["End"] = json!(true);
    }
    json!({"StartAt": "T", "States": {"T": t}})
}

fn assert_failed(exec: &Execution, error: &str) {
    assert_eq!(exec.status, ExecutionStatus::Failed, "{exec:#?}");
    assert_eq!(exec.error.as_deref(), Some(error), "{exec:#?}");
    assert_eq!(exec.output, None);
}

// -----------------------------------------------------------------------------------------------
// Input and output processing

#[tokio::test]
async fn input_result_and_output_paths_numbers_example() {
    let input = json!({"title": "Numbers to add", "numbers": {"val1": 3, "val2": 4}});
    let def = one_task(json!({"InputPath": "$.numbers", "ResultPath": "$.sum", "OutputPath": "$"}));
    let (exec, script) = run_with(&def, input.clone(), |req, _| {
        let p = &req.parameters;
        Plan::ok(json!(
            p["val1"].as_i64().unwrap() + p["val2"].as_i64().unwrap()
        ))
    })
    .await;
    assert_eq!(
        script.requests()[0].0.parameters,
        json!({"val1": 3, "val2": 4})
    );
    assert_eq!(
        exec.output,
        Some(json!({"title": "Numbers to add", "numbers": {"val1": 3, "val2": 4}, "sum": 7}))
    );

    let def =
        one_task(json!({"InputPath": "$.numbers", "ResultPath": "$.sum", "OutputPath": "$.sum"}));
    let (exec, _) = run_with(&def, input, |_, _| Plan::ok(json!(7))).await;
    assert_eq!(exec.output, Some(json!(7)));
}

#[tokio::test]
async fn result_selector_example() {
    // From "Filtering state output using ResultSelector" (an EMR createCluster.sync result).
    let result = json!({
        "resourceType": "elasticmapreduce",
        "resource": "createCluster.sync",
        "output": {"SdkHttpMetadata": {"HttpStatusCode": 200}, "SdkResponseMetadata": {"RequestId": "1234"}, "ClusterId": "AKIAIOSFODNN7EXAMPLE"}
    });
    let def = one_task(json!({
        "ResultSelector": {"ClusterId.$": "$.output.ClusterId", "ResourceType.$": "$.resourceType"},
        "ResultPath": "$.EMROutput"
    }));
    let (exec, _) = run_with(&def, json!({"cluster": "c1"}), move |_, _| {
        Plan::ok(result.clone())
    })
    .await;
    assert_eq!(
        exec.output,
        Some(
            json!({"cluster": "c1", "EMROutput": {"ClusterId": "AKIAIOSFODNN7EXAMPLE", "ResourceType": "elasticmapreduce"}})
        )
    );
}

#[tokio::test]
async fn null_paths() {
    // InputPath null: the task gets {}. ResultPath null: the input passes through. OutputPath null: {}.
    let def = one_task(json!({"InputPath": null, "ResultPath": null}));
    let (exec, script) =
        run_with(&def, json!({"keep": 1}), |_, _| Plan::ok(json!("ignored"))).await;
    assert_eq!(script.requests()[0].0.parameters, json!({}));
    assert_eq!(exec.output, Some(json!({"keep": 1})));
    let def =
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "OutputPath": null, "End": true}}});
    let (exec, _) = run_with(&def, json!({"a": 1}), |_, _| Plan::never()).await;
    assert_eq!(exec.output, Some(json!({})));
}

#[tokio::test]
async fn result_path_overwrites_adds_and_fails_on_a_non_object() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "Hello", "ResultPath": "$.master.detail", "End": true}}});
    let (exec, _) = run_with(&def, json!({"master": {"detail": [1, 2, 3]}}), |_, _| {
        Plan::never()
    })
    .await;
    assert_eq!(exec.output, Some(json!({"master": {"detail": "Hello"}})));
    let (exec, _) = run_with(&def, json!({"other": true}), |_, _| Plan::never()).await;
    assert_eq!(
        exec.output,
        Some(json!({"other": true, "master": {"detail": "Hello"}}))
    );
    let (exec, _) = run_with(&def, json!({"master": "not an object"}), |_, _| {
        Plan::never()
    })
    .await;
    assert_failed(&exec, "States.ResultPathMatchFailure");
    assert!(exec.cause.as_deref().unwrap().contains("$.master.detail"));

    // Unlike States.Runtime, a ResultPath failure of a Task can be caught.
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": SQS, "ResultPath": "$.a.b", "Next": "Done",
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Handled"}]},
        "Done": {"Type": "Succeed"}, "Handled": {"Type": "Succeed"}}});
    let (exec, _) = run_with(&def, json!({"a": 5}), |_, _| Plan::ok(json!(1))).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    assert_eq!(
        exec.output.as_ref().unwrap()["err"]["Error"],
        "States.ResultPathMatchFailure"
    );
    assert_eq!(exec.states_entered, ["T", "Handled"]);
}

#[tokio::test]
async fn parameters_see_the_context_object() {
    let def = one_task(json!({"Parameters": {
        "QueueUrl": "https://queue",
        "MessageBody": {
            "token.$": "$$.Task.Token",
            "execution.$": "$$.Execution.Name",
            "state.$": "$$.State.Name",
            "retry.$": "$$.State.RetryCount",
            "attempt.$": "States.MathAdd($$.State.RetryCount, 1)",
            "original.$": "$$.Execution.Input.id",
            "id.$": "$.id",
            "literal": [1, {"x": "y"}]
        }
    }, "Retry": [{"ErrorEquals": ["Again"], "IntervalSeconds": 1}]}));
    let (exec, script) = run_with(&def, json!({"id": "run-1"}), |_, call| {
        if call == 0 {
            Plan::err("Again", "once more")
        } else {
            Plan::ok(json!("ok"))
        }
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    let reqs = script.requests();
    assert_eq!(reqs.len(), 2);
    for (i, (req, _)) in reqs.iter().enumerate() {
        let body = &req.parameters["MessageBody"];
        assert_eq!(
            body["token"],
            json!(req.task_token),
            "the Parameters see this attempt's token"
        );
        assert_eq!(body["execution"], "test-exec");
        assert_eq!(body["state"], "T");
        assert_eq!(body["retry"], json!(i));
        assert_eq!(body["attempt"], json!(i + 1));
        assert_eq!(req.attempt as usize, i + 1);
        assert_eq!(body["original"], "run-1");
        assert_eq!(body["literal"], json!([1, {"x": "y"}]));
        assert_eq!(req.parameters["QueueUrl"], "https://queue");
    }
    assert_ne!(
        reqs[0].0.task_token, reqs[1].0.task_token,
        "a fresh token per attempt"
    );
    assert!(reqs[0].0.task_token.len() >= 32);
}

#[tokio::test]
async fn pass_state_parameters_and_result() {
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('Hello, {}', $.name)", "n": 1}, "ResultPath": "$.p", "Next": "B"},
        "B": {"Type": "Pass", "Result": {"fixed": true}, "ResultPath": "$.r", "OutputPath": "$['p','r']", "End": true}
    }});
    let (exec, _) = run_with(&def, json!({"name": "Ada"}), |_, _| Plan::never()).await;
    assert_eq!(
        exec.output,
        Some(json!([{"greeting": "Hello, Ada", "n": 1}, {"fixed": true}]))
    );
    assert_eq!(exec.states_entered, ["A", "B"]);
}

#[tokio::test]
async fn runtime_errors_are_not_caught_even_by_states_all() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": SQS, "InputPath": "$.missing", "End": true,
              "Retry": [{"ErrorEquals": ["States.ALL"]}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}]},
        "H": {"Type": "Succeed"}}});
    let (exec, script) = run_with(&def, json!({"a": 1}), |_, _| Plan::ok(json!(1))).await;
    assert_failed(&exec, "States.Runtime");
    assert!(script.requests().is_empty());
    assert_eq!(exec.states_entered, ["T"]);

    let def = one_task(json!({"Parameters": {"x.$": "$.nope"}}));
    let (exec, _) = run_with(&def, json!({}), |_, _| Plan::ok(json!(1))).await;
    assert_failed(&exec, "States.Runtime");
    assert!(
        exec.cause
            .as_deref()
            .unwrap()
            .contains("'$.nope' specified for the field 'x.$'"),
        "{:?}",
        exec.cause
    );
}

#[tokio::test]
async fn oversized_results_exceed_the_data_limit_and_are_not_caught() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": SQS, "End": true, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}]},
        "H": {"Type": "Succeed"}}});
    let big = "x".repeat(300 * 1024);
    let (exec, _) = run_with(&def, json!({}), move |_, _| Plan::ok(json!(big.clone()))).await;
    assert_failed(&exec, "States.DataLimitExceeded");
}

// -----------------------------------------------------------------------------------------------
// Choice

fn choice_machine() -> Value {
    // The example of the Choice state in the Amazon States Language specification.
    json!({"StartAt": "ChoiceStateX", "States": {
        "ChoiceStateX": {"Type": "Choice", "Choices": [
            {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"},
            {"Variable": "$.value", "IsPresent": false, "Next": "Missing"},
            {"And": [
                {"Variable": "$.value", "NumericGreaterThanEquals": 20},
                {"Variable": "$.value", "NumericLessThan": 30}
            ], "Next": "ValueInTwenties"},
            {"Variable": "$.rating", "NumericGreaterThanPath": "$.auditThreshold", "Next": "StartAudit"}
        ], "Default": "DefaultState"},
        "Public": {"Type": "Pass", "End": true},
        "Missing": {"Type": "Pass", "End": true},
        "ValueInTwenties": {"Type": "Pass", "End": true},
        "StartAudit": {"Type": "Pass", "End": true},
        "DefaultState": {"Type": "Fail", "Error": "DefaultStateError", "Cause": "No Matches!"}
    }})
}

#[tokio::test]
async fn choice_rules_route_like_the_specification_example() {
    let def = choice_machine();
    for (input, next) in [
        (json!({"type": "Public"}), "Public"),
        (json!({"type": "Private"}), "Missing"),
        (json!({"type": "Private", "value": 25}), "ValueInTwenties"),
        (
            json!({"type": "Private", "value": 35, "rating": 60, "auditThreshold": 50}),
            "StartAudit",
        ),
    ] {
        let (exec, _) = run_with(&def, input.clone(), |_, _| Plan::never()).await;
        assert_eq!(exec.status, ExecutionStatus::Succeeded, "{input}");
        assert_eq!(exec.states_entered, ["ChoiceStateX", next], "{input}");
        assert_eq!(exec.output, Some(input));
    }
    let (exec, _) = run_with(
        &def,
        json!({"type": "Private", "value": 35, "rating": 10, "auditThreshold": 50}),
        |_, _| Plan::never(),
    )
    .await;
    assert_failed(&exec, "DefaultStateError");
    assert_eq!(exec.cause.as_deref(), Some("No Matches!"));
    assert_eq!(exec.states_entered, ["ChoiceStateX", "DefaultState"]);
}

#[tokio::test]
async fn no_choice_matched_and_missing_variables() {
    let def = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "S"}]},
        "S": {"Type": "Succeed"}}});
    let (exec, _) = run_with(&def, json!({"n": 2}), |_, _| Plan::never()).await;
    assert_failed(&exec, "States.NoChoiceMatched");
    let (exec, _) = run_with(&def, json!({}), |_, _| Plan::never()).await;
    assert_failed(&exec, "States.Runtime");
    assert!(
        exec.cause
            .as_deref()
            .unwrap()
            .contains("Invalid path '$.n'")
    );
}

// -----------------------------------------------------------------------------------------------
// Retry and Catch

#[tokio::test]
async fn backoff_timings_follow_interval_and_rate() {
    // The documentation's example: two retries after waiting 3 and 4.5 seconds.
    let def = one_task(
        json!({"Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 3, "MaxAttempts": 2, "BackoffRate": 1.5}], "TimeoutSeconds": 2}),
    );
    let (exec, script) = run_with(&def, json!({}), |_, _| Plan::never()).await;
    assert_failed(&exec, "States.Timeout");
    assert_eq!(script.requests().len(), 3);
    // Scheduled at 0, then (timeout 2 + wait 3) = 5, then (5 + 2 + 4.5) = 11.5.
    assert_eq!(times_of(&exec, "TaskScheduled"), [0.0, 5.0, 11.5]);
    assert_eq!(times_of(&exec, "TaskTimedOut"), [2.0, 7.0, 13.5]);
}

#[tokio::test]
async fn an_hour_long_backoff_runs_instantly() {
    let def = one_task(
        json!({"Retry": [{"ErrorEquals": ["Sluice.Transient"], "IntervalSeconds": 3600, "MaxAttempts": 5}]}),
    );
    let real = std::time::Instant::now();
    let (exec, _) = run_with(&def, json!({}), |_, call| {
        if call < 3 {
            Plan::err("Sluice.Transient", "busy")
        } else {
            Plan::ok(json!("done"))
        }
    })
    .await;
    assert!(real.elapsed().as_secs() < 5);
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    // 1 h, 2 h, 4 h.
    assert_eq!(
        times_of(&exec, "TaskScheduled"),
        [0.0, 3600.0, 10800.0, 25200.0]
    );
    assert_eq!(times_of(&exec, "ExecutionSucceeded"), [25200.0]);
}

#[tokio::test]
async fn max_delay_seconds_caps_the_backoff() {
    let def = one_task(
        json!({"Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 10, "BackoffRate": 10, "MaxAttempts": 3, "MaxDelaySeconds": 60}]}),
    );
    let (exec, _) = run_with(&def, json!({}), |_, _| Plan::err("E", "again")).await;
    assert_failed(&exec, "E");
    // Waits of 10, 60 (not 100) and 60 (not 1000).
    assert_eq!(times_of(&exec, "TaskScheduled"), [0.0, 10.0, 70.0, 130.0]);
}

#[tokio::test]
async fn full_jitter_stays_within_the_computed_delay_and_is_seedable() {
    let def = one_task(
        json!({"Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 8, "BackoffRate": 2, "MaxAttempts": 4, "JitterStrategy": "FULL"}]}),
    );
    let waits = |exec: &Execution| {
        let t = times_of(exec, "TaskScheduled");
        let f = times_of(exec, "TaskFailed");
        (1..t.len()).map(|i| t[i] - f[i - 1]).collect::<Vec<f64>>()
    };
    let (a, _) = run_with(&def, json!({}), |_, _| Plan::err("E", "x")).await;
    let wa = waits(&a);
    assert_eq!(wa.len(), 4);
    for (w, max) in wa.iter().zip([8.0, 16.0, 32.0, 64.0]) {
        assert!((0.0..=max).contains(w), "{w} not in [0, {max}]");
    }
    assert!(
        wa.iter().any(|w| w.fract() != 0.0 || *w == 0.0),
        "jitter draws fractions: {wa:?}"
    );
    // The same seed gives the same delays.
    let (b, _) = run_with(&def, json!({}), |_, _| Plan::err("E", "x")).await;
    assert_eq!(wa, waits(&b));
}

#[tokio::test]
async fn each_retrier_counts_its_own_attempts() {
    // The "complex retry scenarios" example of the Step Functions documentation: ErrorA, ErrorB,
    // ErrorC, ErrorB wait 1, 2 and 5 seconds; the fourth error matches the first retrier, which has
    // used its MaxAttempts (2) on ErrorA and ErrorB together, so it goes to the catcher.
    let def = json!({"StartAt": "X", "States": {
        "X": {"Type": "Task", "Resource": SQS, "Next": "Y",
              "Retry": [{"ErrorEquals": ["ErrorA", "ErrorB"], "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 2},
                        {"ErrorEquals": ["ErrorC"], "IntervalSeconds": 5}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Z"}]},
        "Y": {"Type": "Succeed"},
        "Z": {"Type": "Pass", "End": true}}});
    let errors = ["ErrorA", "ErrorB", "ErrorC", "ErrorB", "ErrorB"];
    let (exec, _) = run_with(&def, json!({}), move |_, call| {
        Plan::err(errors[call], "boom")
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    assert_eq!(exec.states_entered, ["X", "Z"]);
    assert_eq!(times_of(&exec, "TaskScheduled"), [0.0, 1.0, 3.0, 8.0]);
    assert_eq!(
        exec.output,
        Some(json!({"Error": "ErrorB", "Cause": "boom"}))
    );
}

#[tokio::test]
async fn max_attempts_zero_never_retries() {
    let def = one_task(
        json!({"Retry": [{"ErrorEquals": ["States.Timeout"], "MaxAttempts": 0}, {"ErrorEquals": ["States.ALL"]}], "TimeoutSeconds": 1}),
    );
    let (exec, script) = run_with(&def, json!({}), |_, _| Plan::never()).await;
    assert_failed(&exec, "States.Timeout");
    assert_eq!(script.requests().len(), 1);
}

#[tokio::test]
async fn catch_with_result_path_keeps_input_and_error() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": SQS, "End": true,
              "Catch": [{"ErrorEquals": ["java.lang.Exception"], "ResultPath": "$.error-info", "Next": "Recovery"},
                        {"ErrorEquals": ["States.ALL"], "Next": "EndState"}]},
        "Recovery": {"Type": "Pass", "End": true},
        "EndState": {"Type": "Pass", "End": true}}});
    let (exec, _) = run_with(&def, json!({"order": 1}), |_, _| {
        Plan::err("java.lang.Exception", "NPE")
    })
    .await;
    assert_eq!(
        exec.output,
        Some(json!({"order": 1, "error-info": {"Error": "java.lang.Exception", "Cause": "NPE"}}))
    );
    assert_eq!(exec.states_entered, ["T", "Recovery"]);
    let (exec, _) = run_with(&def, json!({"order": 1}), |_, _| Plan::err("Other", "why")).await;
    assert_eq!(exec.output, Some(json!({"Error": "Other", "Cause": "why"})));
    assert_eq!(exec.states_entered, ["T", "EndState"]);
}

#[tokio::test]
async fn task_failed_matches_everything_but_timeouts() {
    let def = |caught: &str| {
        json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": SQS, "TimeoutSeconds": 5, "End": true,
                  "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1}],
                  "Catch": [{"ErrorEquals": [caught], "Next": "H"}]},
            "H": {"Type": "Succeed"}}})
    };
    // A timeout is neither retried nor caught by States.TaskFailed...
    let (exec, script) = run_with(&def("States.TaskFailed"), json!({}), |_, _| Plan::never()).await;
    assert_failed(&exec, "States.Timeout");
    assert_eq!(script.requests().len(), 1);
    assert_eq!(times_of(&exec, "TaskTimedOut"), [5.0]);
    // ...but States.Timeout catches it.
    let (exec, _) = run_with(&def("States.Timeout"), json!({}), |_, _| Plan::never()).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    assert_eq!(exec.output.unwrap()["Error"], "States.Timeout");
    // Any other error is retried (3 times) and then caught by States.TaskFailed.
    let (exec, script) = run_with(&def("States.TaskFailed"), json!({}), |_, _| {
        Plan::err("Sluice.InvalidInput", "bad")
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    assert_eq!(script.requests().len(), 4);
}

#[tokio::test]
async fn heartbeat_timeout_when_the_worker_goes_quiet() {
    let def = one_task(json!({"TimeoutSeconds": 3600, "HeartbeatSeconds": 60}));
    // Works 200 s without a heartbeat: fails at 60 s.
    let (exec, _) = run_with(&def, json!({}), |_, _| Plan::ok(json!(1)).after(200)).await;
    assert_failed(&exec, "States.HeartbeatTimeout");
    assert_eq!(times_of(&exec, "TaskTimedOut"), [60.0]);
    // The same work with a heartbeat every 50 s succeeds at 200 s.
    let (exec, script) = run_with(&def, json!({}), |_, _| {
        Plan::ok(json!(1)).after(200).beating(50)
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    assert_eq!(times_of(&exec, "TaskSucceeded"), [200.0]);
    let req = &script.requests()[0].0;
    assert_eq!(req.heartbeat, Some(std::time::Duration::from_secs(60)));
    assert_eq!(req.timeout, std::time::Duration::from_secs(3600));
    // Heartbeats do not extend TimeoutSeconds.
    let def = one_task(json!({"TimeoutSeconds": 120, "HeartbeatSeconds": 60}));
    let (exec, _) = run_with(&def, json!({}), |_, _| {
        Plan::ok(json!(1)).after(500).beating(30)
    })
    .await;
    assert_failed(&exec, "States.Timeout");
    assert_eq!(times_of(&exec, "TaskTimedOut"), [120.0]);
}

#[tokio::test]
async fn timeout_and_heartbeat_from_paths() {
    let def = one_task(
        json!({"TimeoutSecondsPath": "$.limits.timeout", "HeartbeatSecondsPath": "$.limits.heartbeat"}),
    );
    let (exec, script) = run_with(
        &def,
        json!({"limits": {"timeout": 30, "heartbeat": 10}}),
        |_, _| Plan::never(),
    )
    .await;
    assert_failed(&exec, "States.HeartbeatTimeout");
    assert_eq!(script.requests()[0].0.timeout.as_secs(), 30);
    let (exec, _) = run_with(
        &def,
        json!({"limits": {"timeout": -1, "heartbeat": 10}}),
        |_, _| Plan::never(),
    )
    .await;
    assert_failed(&exec, "States.Runtime");
}

#[tokio::test]
async fn a_task_that_answers_at_the_deadline_beats_its_timeout() {
    let def = one_task(json!({"TimeoutSeconds": 10}));
    let (exec, _) = run_with(&def, json!({}), |_, _| Plan::ok(json!("in time")).after(10)).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
}

// -----------------------------------------------------------------------------------------------
// Parallel

#[tokio::test]
async fn parallel_outputs_follow_branch_order_and_branches_overlap_in_time() {
    let def = json!({"StartAt": "P", "States": {
    "P": {"Type": "Parallel", "ResultPath": "$.results", "End": true,
          "ResultSelector": {"first.$": "$[0]", "second.$": "$[1].b"},
          "Branches": [
              {"StartAt": "Slow", "States": {"Slow": {"Type": "Wait", "Seconds": 10, "Next": "A"}, "A": {"Type": "Pass", "Result": "a", "End": true}}},
              {"StartAt": "Quick", "States": {"Quick": {"Type": "Wait", "Seconds": 5, "Next": "B"}, "B": {"Type": "Pass", "Result": {"b": 2}, "End": true}}}
          ]}}});
    let (exec, _) = run_with(&def, json!({"in": 1}), |_, _| Plan::never()).await;
    assert_eq!(
        exec.output,
        Some(json!({"in": 1, "results": {"first": "a", "second": 2}}))
    );
    // Both waits run at once: the state ends at 10 s, not 15 s.
    assert_eq!(times_of(&exec, "ExecutionSucceeded"), [10.0]);
    // Entered in the order things happened: both waits, then B (at 5 s), then A (at 10 s).
    assert_eq!(exec.states_entered, ["P", "Slow", "Quick", "B", "A"]);
    let types: Vec<&str> = exec.history.iter().map(|e| e.event_type.as_str()).collect();
    assert!(types.contains(&"ParallelStateStarted") && types.contains(&"ParallelStateSucceeded"));
}

#[tokio::test]
async fn a_failing_branch_fails_the_parallel_with_its_own_error() {
    let def = json!({"StartAt": "P", "States": {
    "P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": SQS, "End": true}}},
        {"StartAt": "Later", "States": {"Later": {"Type": "Wait", "Seconds": 100, "Next": "Never"}, "Never": {"Type": "Pass", "End": true}}}
    ]}}});
    let (exec, _) = run_with(&def, json!({}), |_, _| {
        Plan::err("Sluice.InvalidInput", "bad partition column").after(3)
    })
    .await;
    assert_failed(&exec, "Sluice.InvalidInput");
    assert_eq!(exec.cause.as_deref(), Some("bad partition column"));
    assert!(
        !exec.states_entered.contains(&"Never".to_string()),
        "the other branch was stopped"
    );
    assert_eq!(times_of(&exec, "ExecutionFailed"), [3.0]);
    assert_eq!(exec.events("ParallelStateFailed").len(), 1);

    // With a Catch on the Parallel, the branch error is handled there.
    let mut caught = def.clone();
    caught["States"]["P"]["Catch"] =
        json!([{"ErrorEquals": ["Sluice.InvalidInput"], "ResultPath": "$.error", "Next": "Alert"}]);
    caught["States"]["Alert"] = json!({"Type": "Pass", "End": true});
    let (exec, _) = run_with(&caught, json!({"run": 1}), |_, _| {
        Plan::err("Sluice.InvalidInput", "bad")
    })
    .await;
    assert_eq!(
        exec.output,
        Some(json!({"run": 1, "error": {"Error": "Sluice.InvalidInput", "Cause": "bad"}}))
    );
}

#[tokio::test]
async fn parallel_retry_reruns_every_branch() {
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "End": true, "Retry": [{"ErrorEquals": ["Sluice.Transient"], "IntervalSeconds": 2}],
              "Branches": [{"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": SQS, "End": true}}},
                           {"StartAt": "V", "States": {"V": {"Type": "Pass", "End": true}}}]}}});
    let (exec, script) = run_with(&def, json!({}), |_, call| {
        if call == 0 {
            Plan::err("Sluice.Transient", "busy")
        } else {
            Plan::ok(json!("w"))
        }
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    assert_eq!(script.requests().len(), 2);
    assert_eq!(exec.output, Some(json!(["w", {}])));
    // The first attempt's failing branch stopped the Parallel before its second branch started.
    assert_eq!(exec.states_entered, ["P", "W", "W", "V"]);
}

// -----------------------------------------------------------------------------------------------
// Map

#[tokio::test]
async fn map_item_selector_and_context() {
    let def = json!({"StartAt": "M", "States": {
        "M": {"Type": "Map", "ItemsPath": "$.detail.shipped", "ResultPath": "$.detail.shipped", "End": true,
              "ItemSelector": {"parcel.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "courier.$": "$.delivery-partner"},
              "ItemProcessor": {"StartAt": "Ship", "States": {"Ship": {"Type": "Task", "Resource": SQS, "End": true}}}}}});
    let input = json!({"delivery-partner": "UQS", "detail": {"shipped": [{"prod": "R31", "count": 1}, {"prod": "S39", "count": 2}]}});
    let (exec, script) = run_with(&def, input, |req, _| {
        Plan::ok(json!(format!(
            "{}#{}",
            req.parameters["parcel"]["prod"].as_str().unwrap(),
            req.parameters["index"]
        )))
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    assert_eq!(
        script.requests()[0].0.parameters,
        json!({"parcel": {"prod": "R31", "count": 1}, "index": 0, "courier": "UQS"})
    );
    assert_eq!(
        exec.output.as_ref().unwrap()["detail"]["shipped"],
        json!(["R31#0", "S39#1"])
    );
    assert_eq!(exec.states_entered, ["M", "Ship", "Ship"]);
    assert_eq!(exec.events("MapIterationStarted").len(), 2);
    assert_eq!(exec.events("MapStateStarted")[0].details["length"], 2);
}

#[tokio::test]
async fn distributed_map_iterations_stay_out_of_the_parent_history() {
    // AWS runs each iteration of a Distributed Map as a child execution, with its own history; the
    // parent shows MapRunStarted/MapRunSucceeded around them, no iteration or task events.
    let map = |mode: &str| {
        json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
            "ItemProcessor": {"ProcessorConfig": {"Mode": mode, "ExecutionType": "STANDARD"},
                "StartAt": "W", "States": {"W": {"Type": "Task", "Resource": SQS, "End": true}}}}}})
    };
    let (exec, _) = run_with(&map("DISTRIBUTED"), json!([1, 2, 3]), |req, _| {
        Plan::ok(req.parameters.clone())
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    assert_eq!(exec.output, Some(json!([1, 2, 3])));
    let types: Vec<&str> = exec.history.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "MapStateEntered",
            "MapStateStarted",
            "MapRunStarted",
            "MapRunSucceeded",
            "MapStateSucceeded",
            "MapStateExited",
            "ExecutionSucceeded"
        ]
    );
    // The states entered (the execution result) still name every state, as the contract says.
    assert_eq!(exec.states_entered, ["M", "W", "W", "W"]);

    let (inline, _) = run_with(&map("INLINE"), json!([1, 2, 3]), |req, _| {
        Plan::ok(req.parameters.clone())
    })
    .await;
    assert_eq!(inline.events("MapIterationStarted").len(), 3);
    assert_eq!(inline.events("TaskScheduled").len(), 3);
    assert!(inline.events("MapRunStarted").is_empty());
}

#[tokio::test]
async fn map_keeps_item_order_whatever_finishes_first() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
        "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": SQS, "End": true}}}}}});
    // Item i works (5 - i) seconds: the last item finishes first.
    let (exec, _) = run_with(&def, json!([0, 1, 2, 3, 4]), |req, _| {
        let i = req.parameters.as_u64().unwrap();
        Plan::ok(json!(i * 10)).after(5 - i)
    })
    .await;
    assert_eq!(exec.output, Some(json!([0, 10, 20, 30, 40])));
    assert_eq!(times_of(&exec, "ExecutionSucceeded"), [5.0]);
}

#[tokio::test]
async fn max_concurrency_bounds_the_iterations_in_flight() {
    let def = |n: u64| {
        json!({"StartAt": "M", "States": {"M": {"Type": "Map", "MaxConcurrency": n, "End": true,
            "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": SQS, "End": true}}}}}})
    };
    for (limit, in_flight, seconds) in [(1u64, 1usize, 50.0), (2, 2, 30.0), (0, 5, 10.0)] {
        let (exec, script) = run_with(&def(limit), json!([1, 2, 3, 4, 5]), |_, _| {
            Plan::ok(json!(null)).after(10)
        })
        .await;
        assert_eq!(exec.status, ExecutionStatus::Succeeded);
        assert_eq!(
            script.max_in_flight.load(Ordering::SeqCst),
            in_flight,
            "MaxConcurrency {limit}"
        );
        assert_eq!(
            times_of(&exec, "ExecutionSucceeded"),
            [seconds],
            "MaxConcurrency {limit}"
        );
    }
}

#[tokio::test]
async fn a_failing_iteration_fails_the_map() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "MaxConcurrency": 1, "End": true,
        "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": SQS, "End": true}}}}}});
    let (exec, script) = run_with(&def, json!([1, 2, 3, 4]), |req, _| {
        if req.parameters == json!(2) {
            Plan::err("Bad.Item", "item 2")
        } else {
            Plan::ok(json!(1))
        }
    })
    .await;
    assert_failed(&exec, "Bad.Item");
    assert_eq!(
        script.requests().len(),
        2,
        "the iterations after the failure never start"
    );
    assert_eq!(exec.events("MapIterationFailed").len(), 1);
    assert_eq!(exec.events("MapStateFailed").len(), 1);
}

#[tokio::test]
async fn tolerated_failures() {
    let def = |tolerance: Value| {
        let mut m = json!({"Type": "Map", "End": true,
            "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": SQS, "End": true}}}});
        if let (Value::Object(m), Value::Object(t)) = (&mut m, tolerance) {
            m.extend(t);
        }
        json!({"StartAt": "M", "States": {"M": m}})
    };
    let fail_odd = |req: &sluice_statemachine::TaskRequest, _: usize| {
        let n = req.parameters.as_u64().unwrap();
        if n % 2 == 1 {
            Plan::err("Odd", format!("{n} is odd").as_str())
        } else {
            Plan::ok(json!(n))
        }
    };
    // 2 of 4 fail: a count of 2 tolerates it, and the failed items show their error.
    let (exec, _) = run_with(
        &def(json!({"ToleratedFailureCount": 2})),
        json!([0, 1, 2, 3]),
        fail_odd,
    )
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    assert_eq!(
        exec.output,
        Some(
            json!([0, {"Error": "Odd", "Cause": "1 is odd"}, 2, {"Error": "Odd", "Cause": "3 is odd"}])
        )
    );
    // A count of 1 does not.
    let (exec, _) = run_with(
        &def(json!({"ToleratedFailureCount": 1})),
        json!([0, 1, 2, 3]),
        fail_odd,
    )
    .await;
    assert_failed(&exec, "States.ExceedToleratedFailureThreshold");
    // 50 % tolerates 2 of 4, 40 % does not.
    let (exec, _) = run_with(
        &def(json!({"ToleratedFailurePercentage": 50})),
        json!([0, 1, 2, 3]),
        fail_odd,
    )
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    let (exec, _) = run_with(
        &def(json!({"ToleratedFailurePercentage": 40})),
        json!([0, 1, 2, 3]),
        fail_odd,
    )
    .await;
    assert_failed(&exec, "States.ExceedToleratedFailureThreshold");
}

#[tokio::test]
async fn legacy_iterator_and_parameters_and_bad_items() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.xs", "End": true,
        "Parameters": {"x.$": "$$.Map.Item.Value", "k.$": "$.k"},
        "Iterator": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}});
    let (exec, _) = run_with(&def, json!({"xs": [1, 2], "k": "v"}), |_, _| Plan::never()).await;
    assert_eq!(
        exec.output,
        Some(json!([{"x": 1, "k": "v"}, {"x": 2, "k": "v"}]))
    );
    let (exec, _) = run_with(&def, json!({"xs": {"not": "an array"}, "k": 1}), |_, _| {
        Plan::never()
    })
    .await;
    assert_failed(&exec, "States.Runtime");
    assert!(
        exec.cause
            .unwrap()
            .contains("must select an array, but it selected an object")
    );
    let (exec, _) = run_with(&def, json!({"xs": [], "k": 1}), |_, _| Plan::never()).await;
    assert_eq!(exec.output, Some(json!([])));
}

// -----------------------------------------------------------------------------------------------
// Wait, Succeed, Fail and the execution timeout

#[tokio::test]
async fn wait_seconds_paths_and_timestamps() {
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Wait", "Seconds": 30, "Next": "B"},
        "B": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "C"},
        "C": {"Type": "Wait", "TimestampPath": "$.until", "Next": "D"},
        "D": {"Type": "Wait", "Timestamp": "2024-03-01T00:00:00Z", "Next": "E"},
        "E": {"Type": "Succeed"}}});
    let input = json!({"delay": 90, "until": "2024-03-02T12:00:00Z"});
    let (exec, _) = run_with(&def, input.clone(), |_, _| Plan::never()).await;
    assert_eq!(exec.output, Some(input));
    assert_eq!(
        times_of(&exec, "WaitStateExited"),
        [30.0, 120.0, 86400.0, 86400.0],
        "a past Timestamp does not wait"
    );
    for bad in [
        json!({"delay": -1, "until": "x"}),
        json!({"delay": "10", "until": "x"}),
        json!({"delay": 1, "until": "tomorrow"}),
    ] {
        let (exec, _) = run_with(&def, bad.clone(), |_, _| Plan::never()).await;
        assert_failed(&exec, "States.Runtime");
    }
}

#[tokio::test]
async fn fail_state_error_and_cause_from_paths_and_intrinsics() {
    let def = json!({"StartAt": "F", "States": {"F": {"Type": "Fail",
        "ErrorPath": "$.error.Error", "CausePath": "States.Format('stage {} failed: {}', $.stage, $.error.Cause)"}}});
    let (exec, _) = run_with(&def, json!({"stage": "partitioner", "error": {"Error": "Sluice.InvalidInput", "Cause": "no column"}}), |_, _| Plan::never()).await;
    assert_failed(&exec, "Sluice.InvalidInput");
    assert_eq!(
        exec.cause.as_deref(),
        Some("stage partitioner failed: no column")
    );
    assert_eq!(exec.events("FailStateEntered").len(), 1);
    assert!(exec.events("FailStateExited").is_empty());
    let (exec, _) = run_with(
        &def,
        json!({"stage": "x", "error": {"Error": 5, "Cause": "c"}}),
        |_, _| Plan::never(),
    )
    .await;
    assert_failed(&exec, "States.Runtime");
}

#[tokio::test]
async fn succeed_applies_its_paths() {
    let def = json!({"StartAt": "S", "States": {"S": {"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}}});
    let (exec, _) = run_with(&def, json!({"a": {"b": 42}}), |_, _| Plan::never()).await;
    assert_eq!(exec.output, Some(json!(42)));
}

#[tokio::test]
async fn execution_timeout_ends_as_timed_out() {
    let def = json!({"TimeoutSeconds": 100, "StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 60, "Next": "T"},
        "T": {"Type": "Task", "Resource": SQS, "End": true}}});
    let (exec, _) = run_with(&def, json!({}), |_, _| Plan::ok(json!(1)).after(60)).await;
    assert_eq!(exec.status, ExecutionStatus::TimedOut);
    assert_eq!(exec.error.as_deref(), Some("States.Timeout"));
    assert_eq!(exec.output, None);
    assert_eq!(exec.states_entered, ["W", "T"]);
    assert_eq!(times_of(&exec, "ExecutionTimedOut"), [100.0]);
}

// -----------------------------------------------------------------------------------------------
// History and the task runner interface

#[tokio::test]
async fn history_uses_the_step_functions_vocabulary() {
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Next": "T"},
        "T": {"Type": "Task", "Resource": SQS, "Parameters": {"QueueUrl": "q", "MessageBody": {"a.$": "$.a"}}, "TimeoutSeconds": 60, "HeartbeatSeconds": 10, "End": true}}});
    let (exec, _) = run_with(&def, json!({"a": 1}), |_, _| {
        Plan::ok(json!({"done": true}))
    })
    .await;
    let types: Vec<&str> = exec.history.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    for (i, e) in exec.history.iter().enumerate() {
        assert_eq!(e.id, i as u64 + 1);
        assert_eq!(e.previous_event_id, i as u64);
        assert_eq!(e.timestamp, t0());
    }
    let scheduled = exec.events("TaskScheduled")[0];
    assert_eq!(scheduled.details["resourceType"], "sqs");
    assert_eq!(
        scheduled.details["resource"],
        "sendMessage.waitForTaskToken"
    );
    assert_eq!(scheduled.details["timeoutInSeconds"], 60);
    assert_eq!(scheduled.details["heartbeatInSeconds"], 10);
    let params: Value = serde_json::from_str(scheduled.detail("parameters").unwrap()).unwrap();
    assert_eq!(params, json!({"QueueUrl": "q", "MessageBody": {"a": 1}}));
    assert_eq!(exec.events("PassStateEntered")[0].detail("name"), Some("P"));
    assert_eq!(
        exec.events("ExecutionSucceeded")[0].detail("output"),
        Some("{\"done\":true}")
    );
    let v = serde_json::to_value(&exec).unwrap();
    assert_eq!(v["history"][0]["timestamp"], "2024-03-01T12:00:00.000Z");
    assert_eq!(v["history"][1]["previousEventId"], 1);
}

#[tokio::test]
async fn branch_events_link_to_their_own_branch() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
        {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}]}}});
    let (exec, _) = run_with(&def, json!({}), |_, _| Plan::never()).await;
    let started = exec.events("ParallelStateStarted")[0].id;
    let entered: Vec<u64> = exec
        .events("PassStateEntered")
        .iter()
        .map(|e| e.previous_event_id)
        .collect();
    assert_eq!(
        entered,
        [started, started],
        "each branch starts from ParallelStateStarted"
    );
}

#[tokio::test]
async fn the_responder_answers_tasks_and_unnamed_tasks_fail() {
    let def = json!({"StartAt": "Validate", "States": {
        "Validate": {"Type": "Task", "Resource": SQS, "Retry": [{"ErrorEquals": ["Sluice.Transient"], "IntervalSeconds": 2}], "Next": "Other"},
        "Other": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f", "End": true}}});
    let responder = Responder::from_json(r#"{"Validate": [{"error": "Sluice.Transient", "cause": "throttled"}, {"output": {"valid": 10}}]}"#).unwrap();
    let clock = Arc::new(VirtualClock::new(t0()));
    let exec = Executor::new(machine(&def), Arc::new(responder), clock)
        .execute(json!({}), "e")
        .await;
    assert_failed(&exec, "States.TaskFailed");
    assert!(
        exec.cause
            .as_deref()
            .unwrap()
            .contains("no outcome for Task state 'Other'")
    );
    assert_eq!(exec.states_entered, ["Validate", "Other"]);
    assert_eq!(times_of(&exec, "TaskScheduled"), [0.0, 2.0, 2.0]);
}

#[test]
fn executions_can_run_on_a_spawned_task() {
    fn is_send<T: Send>(_: &T) {}
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    let executor = Executor::new(
        machine(&def),
        Arc::new(Responder::default()),
        Arc::new(sluice_statemachine::SystemClock),
    );
    is_send(&executor.execute(json!({}), "e"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_clock_really_waits() {
    let def = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": true}}});
    let executor = Executor::new(
        machine(&def),
        Arc::new(Responder::default()),
        Arc::new(sluice_statemachine::SystemClock),
    );
    let real = std::time::Instant::now();
    let exec = tokio::spawn(async move { executor.execute(json!({"x": 1}), "e").await })
        .await
        .unwrap();
    assert!(real.elapsed() >= std::time::Duration::from_millis(990));
    assert_eq!(exec.output, Some(json!({"x": 1})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_time_is_deterministic_on_a_multi_thread_runtime_too() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "MaxConcurrency": 2, "End": true,
        "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": SQS, "TimeoutSeconds": 25, "End": true}}}}}});
    for _ in 0..20 {
        // Items take 10, 20, 30, 10 s; the 30 s one times out at 25 s and fails the Map then.
        let (exec, script) = run_with(&def, json!([10, 20, 30, 10]), |req, _| {
            Plan::ok(json!(1)).after(req.parameters.as_u64().unwrap())
        })
        .await;
        assert_failed(&exec, "States.Timeout");
        assert_eq!(
            times_of(&exec, "ExecutionFailed"),
            [35.0],
            "item 3 starts at 10 s and times out 25 s later"
        );
        assert_eq!(script.max_in_flight.load(Ordering::SeqCst), 2);
    }
}

// -----------------------------------------------------------------------------------------------
// Workflow variables (Developer Guide, "Passing data between states with variables"); the cases
// follow the executions AWS recorded for LocalStack's snapshot tests of Assign.

fn assigned(exec: &Execution, state: &str) -> Option<Value> {
    exec.history
        .iter()
        .find(|e| e.event_type.ends_with("StateExited") && e.details["name"] == state)
        .and_then(|e| e.details.get("assignedVariables").cloned())
}

#[tokio::test]
async fn assign_sees_the_result_and_new_values_count_from_the_next_state() {
    // BASE_EVALUATION_ORDER_PASS_STATE: Assign reads the Pass state's Result; the state that
    // assigns `answer` anew still reads the old value in its InputPath and OutputPath.
    let def = json!({"StartAt": "State0", "States": {
        "State0": {"Type": "Pass", "Result": {"theQuestion": "What is the answer?"},
                   "Assign": {"question.$": "$.theQuestion", "answer": 42}, "Next": "State1"},
        "State1": {"Type": "Pass", "InputPath": "$answer", "ResultPath": "$.theAnswer", "OutputPath": "$answer",
                   "Assign": {"answer": "<omitted>"}, "End": true}}});
    let (exec, _) = run_with(&def, json!({}), |_, _| Plan::never()).await;
    assert_eq!(exec.output, Some(json!(42)), "{exec:#?}");
    // GetExecutionHistory's StateExitedEventDetails: each assigned value as JSON text.
    assert_eq!(
        assigned(&exec, "State0"),
        Some(json!({"answer": "42", "question": "\"What is the answer?\""}))
    );
    assert_eq!(
        assigned(&exec, "State1"),
        Some(json!({"answer": "\"<omitted>\""}))
    );
    let exited = exec.events("PassStateExited");
    assert_eq!(
        exited[0].details["assignedVariablesDetails"],
        json!({"truncated": false})
    );

    // BASE_ASSIGN_FROM_PARAMETERS: with Parameters, `$` is what they built; a literal Assign and
    // a path one in the same state read the values of the state's entry.
    let def = json!({"StartAt": "S0", "States": {
        "S0": {"Type": "Pass", "Parameters": {"input": "PENDING"}, "Assign": {"result.$": "$.input"}, "Next": "S1"},
        "S1": {"Type": "Pass", "Assign": {"result": "SUCCESS", "originalResult.$": "$result"}, "Next": "S2"},
        "S2": {"Type": "Pass", "Parameters": {"r.$": "$result", "o.$": "$originalResult"}, "End": true}}});
    let (exec, _) = run_with(&def, json!({}), |_, _| Plan::never()).await;
    assert_eq!(
        exec.output,
        Some(json!({"r": "SUCCESS", "o": "PENDING"})),
        "{exec:#?}"
    );
}

#[tokio::test]
async fn variables_are_read_in_every_path_field() {
    let def = json!({"StartAt": "Set", "States": {
        "Set": {"Type": "Pass", "Assign": {"wait": 5, "limit": 2, "items": [1, 2, 3, 4], "prefix": "n",
                                            "timeout": 30, "min": {"v": 2}}, "Next": "Wait"},
        "Wait": {"Type": "Wait", "SecondsPath": "$wait", "Next": "Check"},
        "Check": {"Type": "Choice", "Choices": [
            {"Variable": "$limit", "NumericGreaterThanPath": "$min.v", "Next": "Fail"},
            {"And": [{"Variable": "$limit", "NumericEqualsPath": "$min.v"}, {"Variable": "$prefix", "StringEquals": "n"}],
             "Next": "Each"}], "Default": "Fail"},
        "Each": {"Type": "Map", "ItemsPath": "$items", "MaxConcurrencyPath": "$limit",
                 "ItemSelector": {"v.$": "$$.Map.Item.Value", "label.$": "States.Format('{}{}', $prefix, $$.Map.Item.Index)"},
                 "ItemProcessor": {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": SQS,
                     "TimeoutSecondsPath": "$timeout", "End": true}}},
                 "ResultSelector": {"big.$": "$[?(@.v > $limit)].label"}, "Next": "Done"},
        "Done": {"Type": "Succeed"},
        "Fail": {"Type": "Fail", "ErrorPath": "$prefix", "CausePath": "States.Format('limit {}', $limit)"}}});
    let (exec, script) = run_with(&def, json!({}), |req, _| Plan::ok(req.parameters.clone())).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    assert_eq!(exec.output, Some(json!({"big": ["n2", "n3"]})));
    let requests = script.requests();
    assert_eq!(requests.len(), 4);
    assert!(requests.iter().all(|(r, _)| r.timeout.as_secs() == 30));
    assert_eq!(times_of(&exec, "WaitStateExited"), [5.0]);
}

#[tokio::test]
async fn choice_rules_and_catchers_assign() {
    // BASE_ASSIGN_IN_CHOICE: the matching rule's Assign, else (Default) the state's.
    let def = |input_value: Value| {
        (
            json!({"StartAt": "Check", "States": {
                "Check": {"Type": "Choice", "Choices": [
                    {"Variable": "$.input_value", "IsPresent": false, "Assign": {"status": "UNKNOWN"}, "Next": "Final"},
                    {"Variable": "$.input_value", "NumericEquals": 42, "Assign": {"status": "CORRECT"}, "Next": "Final"}],
                  "Assign": {"status": "INCORRECT", "guess.$": "$.input_value"}, "Default": "Final"},
                "Final": {"Type": "Pass", "Parameters": {"result.$": "$status"}, "End": true}}}),
            json!({"input_value": input_value}),
        )
    };
    for (value, want) in [(json!(42), "CORRECT"), (json!("42"), "INCORRECT")] {
        let (d, input) = def(value);
        let (exec, _) = run_with(&d, input, |_, _| Plan::never()).await;
        assert_eq!(exec.output, Some(json!({"result": want})), "{exec:#?}");
    }
    let (exec, _) = run_with(&def(json!(42)).0, json!({}), |_, _| Plan::never()).await;
    assert_eq!(exec.output, Some(json!({"result": "UNKNOWN"})));
    assert_eq!(
        assigned(&exec, "Check"),
        Some(json!({"status": "\"UNKNOWN\""}))
    );

    // A catcher's Assign reads the error output; the state's own Assign is not applied.
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": SQS, "Assign": {"result": "SUCCESS"},
              "Catch": [{"ErrorEquals": ["States.ALL"], "Assign": {"result.$": "$.Error", "why.$": "$.Cause"}, "Next": "Fallback"}],
              "End": true},
        "Fallback": {"Type": "Pass", "Parameters": {"r.$": "$result", "w.$": "$why"}, "End": true}}});
    let (exec, _) = run_with(&def, json!({}), |_, _| Plan::err("Boom", "it broke")).await;
    assert_eq!(
        exec.output,
        Some(json!({"r": "Boom", "w": "it broke"})),
        "{exec:#?}"
    );
    // And on success the Task's Assign reads its raw result (before ResultSelector).
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": SQS, "ResultSelector": {"n.$": "$.n"}, "Assign": {"raw.$": "$.extra"}, "Next": "P"},
        "P": {"Type": "Pass", "Parameters": {"raw.$": "$raw", "n.$": "$.n"}, "End": true}}});
    let (exec, _) = run_with(&def, json!({}), |_, _| {
        Plan::ok(json!({"n": 1, "extra": "x"}))
    })
    .await;
    assert_eq!(exec.output, Some(json!({"raw": "x", "n": 1})), "{exec:#?}");
}

#[tokio::test]
async fn branches_and_iterations_have_scopes_of_their_own() {
    // BASE_SCOPE_MAP / BASE_SCOPE_PARALLEL: inner states read the outer variables; what they
    // assign stays inside.
    let def = json!({"StartAt": "Set", "States": {
        "Set": {"Type": "Pass", "Assign": {"x": 42, "items": [1, 2, 3]}, "Next": "Each"},
        "Each": {"Type": "Map", "ItemsPath": "$items", "MaxConcurrency": 1,
                 "ItemProcessor": {"StartAt": "Inner", "States": {
                     "Inner": {"Type": "Pass", "Assign": {"innerX.$": "$x", "item.$": "$"}, "Next": "Read"},
                     "Read": {"Type": "Pass", "Parameters": {"x.$": "$innerX", "item.$": "$item"}, "End": true}}},
                 "Next": "Both"},
        "Both": {"Type": "Parallel", "Branches": [
            {"StartAt": "B1", "States": {"B1": {"Type": "Pass", "Assign": {"mine": 1}, "Parameters": {"x.$": "$x"}, "End": true}}},
            {"StartAt": "B2", "States": {"B2": {"Type": "Pass", "Assign": {"mine": 2}, "Parameters": {"x.$": "$x"}, "End": true}}}],
         "Next": "After"},
        "After": {"Type": "Pass", "Parameters": {"branches.$": "$", "innerX.$": "$innerX"}, "End": true}}});
    // `$innerX` exists only inside the iterations: the linter says After reads a variable no
    // state around it assigns, and a run of the definition read without it fails there.
    let problems = sluice_statemachine::lint::lint_value(&def);
    assert!(
        problems.iter().any(|p| p
            .to_string()
            .starts_with("State \"After\": reads the variable $innerX")),
        "{problems:#?}"
    );
    let exec = run_unlinted(def, json!({})).await;
    assert_failed(&exec, "States.Runtime");
    assert!(
        exec.cause
            .as_deref()
            .unwrap_or_default()
            .contains("$innerX"),
        "{exec:#?}"
    );
    let output_of = |event: &str| -> Value {
        serde_json::from_str(exec.events(event)[0].detail("output").unwrap()).unwrap()
    };
    assert_eq!(
        output_of("MapStateExited"),
        json!([{"x": 42, "item": 1}, {"x": 42, "item": 2}, {"x": 42, "item": 3}])
    );
    assert_eq!(
        output_of("ParallelStateExited"),
        json!([{"x": 42}, {"x": 42}])
    );

    // A branch cannot assign a variable of an outer scope (the linter refuses it when it sees
    // it; a definition read without the linter fails at run time).
    let def = json!({"StartAt": "Set", "States": {
        "Set": {"Type": "Pass", "Assign": {"x": 1}, "Next": "Both"},
        "Both": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "B", "States": {"B": {"Type": "Pass", "Assign": {"x": 2}, "End": true}}}]}}});
    assert!(sluice_statemachine::StateMachine::from_value(&def).is_err());
    let exec = run_unlinted(def, json!({})).await;
    assert_failed(&exec, "States.Runtime");
    assert!(
        exec.cause
            .as_deref()
            .unwrap_or_default()
            .contains("outer scope"),
        "{exec:#?}"
    );

    // A Distributed Map's iterations are child executions: they see no outer variable.
    let def = json!({"StartAt": "Set", "States": {
        "Set": {"Type": "Pass", "Assign": {"x": 1}, "Next": "Each"},
        "Each": {"Type": "Map", "End": true, "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "I", "States": {"I": {"Type": "Pass", "Assign": {"x.$": "$"}, "Parameters": {"own.$": "$"}, "End": true}}}}}});
    let (exec, _) = run_with(&def, json!([7]), |_, _| Plan::never()).await;
    assert_eq!(exec.output, Some(json!([{"own": 7}])), "{exec:#?}");
}

/// Runs a definition as the model reads it, without the linter (to show what the executor does
/// with what the linter refuses).
async fn run_unlinted(def: Value, input: Value) -> Execution {
    let machine: sluice_statemachine::StateMachine = serde_json::from_value(def).unwrap();
    Executor::new(
        machine,
        Arc::new(Responder::default()),
        Arc::new(VirtualClock::starting_now()),
    )
    .execute(input, "unlinted")
    .await
}

#[tokio::test]
async fn variable_size_limits() {
    let big = "x".repeat(256 * 1024);
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Assign": {"big.$": "$.s"}, "End": true}}});
    let (exec, _) = run_with(&def, json!({"s": big}), |_, _| Plan::never()).await;
    assert_failed(&exec, "States.DataLimitExceeded");
}

#[tokio::test]
async fn filters_and_scans_in_a_run() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {
        "cheap.$": "$.books[?(@.price < 10)].title",
        "byAuthor.$": "$.books[?(@.author == 'Tolkien' || @.isbn)].title",
        "authors.$": "$..author",
        "firstTwo.$": "$.books[0:2].price",
        "count.$": "States.ArrayLength($.books[?(@.price >= 10 && @.price <= 20)])"}, "End": true}}});
    let input = json!({"books": [
        {"title": "Sayings", "author": "Rees", "price": 8.95},
        {"title": "Sword", "author": "Waugh", "price": 12.99},
        {"title": "Moby Dick", "author": "Melville", "price": 8.99, "isbn": "0-553-21311-3"},
        {"title": "The Lord of the Rings", "author": "Tolkien", "price": 22.99}]});
    let (exec, _) = run_with(&def, input, |_, _| Plan::never()).await;
    assert_eq!(
        exec.output,
        Some(json!({
            "cheap": ["Sayings", "Moby Dick"],
            "byAuthor": ["Moby Dick", "The Lord of the Rings"],
            "authors": ["Rees", "Waugh", "Melville", "Tolkien"],
            "firstTwo": [8.95, 12.99],
            "count": 1
        })),
        "{exec:#?}"
    );
}

/// Found running the AWS samples (statemachine/corpora): a poll whose scripted answer never
/// changes looped forever. Step Functions fails an execution whose history reaches 25,000 events
/// (Developer Guide, "Step Functions service quotas"), inside a Parallel branch too; the error is a
/// States.Runtime, which no Catch takes.
#[tokio::test]
async fn a_loop_that_never_ends_fails_at_the_history_quota() {
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "End": true,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}],
              "Branches": [{"StartAt": "Poll", "States": {
                  "Poll": {"Type": "Task", "Resource": SQS, "ResultPath": "$.r", "Next": "Done?"},
                  "Done?": {"Type": "Choice", "Choices": [{"Variable": "$.r.done", "IsPresent": true, "Next": "S"}],
                            "Default": "Sleep"},
                  "Sleep": {"Type": "Wait", "Seconds": 60, "Next": "Poll"},
                  "S": {"Type": "Succeed"}}}]},
        "H": {"Type": "Succeed"}}});
    let (exec, _) = run_with(&def, json!({}), |_, _| Plan::ok(json!({}))).await;
    assert_failed(&exec, "States.Runtime");
    assert!(
        exec.cause.as_deref().unwrap().contains("25000 events"),
        "{:?}",
        exec.cause
    );
    // The quota, then the Parallel state's and the execution's failure events.
    let limit = sluice_statemachine::executor::HISTORY_LIMIT;
    assert!(
        (limit..limit + 5).contains(&exec.history.len()),
        "{}",
        exec.history.len()
    );
}
