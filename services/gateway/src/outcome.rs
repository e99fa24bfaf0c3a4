//! What each state did in a run, read from its execution history: the colours of the run page's graph,
//! as the Step Functions console's graph view shows them.
//!
//! - `succeeded`: entered and left without an error;
//! - `retried`: failed at least once, then a retry succeeded;
//! - `caught`: its error went to a Catch (the run went on elsewhere);
//! - `failed`: its error ended the execution, or it is a Fail state that was reached;
//! - `running`: entered and not left yet (the run is still in it);
//! - `cancelled`: still in it when the execution failed elsewhere (a sibling branch);
//! - a state that is not in the map was not reached.
//!
//! Task events (`TaskScheduled`, `TaskFailed`, ...) name no state: each belongs to the state whose
//! `...StateEntered` event its `previousEventId` chain leads back to (the events of one branch form a
//! chain), which is also how Parallel branches and Map iterations keep their states apart.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateOutcome {
    pub status: &'static str,
    /// How many times the state was entered.
    pub entered: u32,
    /// How many errors it had (retried ones included).
    pub errors: u32,
    /// The last error's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Default)]
struct Visit {
    entered: u32,
    errors: u32,
    error: Option<String>,
    /// The last task/branch result of the current visit was an error.
    failing: bool,
    exited: bool,
    kind_fail: bool,
    caught: bool,
    retried: bool,
}

fn field<'a>(event: &'a Value, key: &str) -> Option<&'a str> {
    event.get(key).and_then(Value::as_str)
}

fn id_of(event: &Value, key: &str) -> u64 {
    event.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Each reached state's outcome, by state name.
pub fn state_outcomes(history: &[Value]) -> BTreeMap<String, StateOutcome> {
    let by_id: HashMap<u64, &Value> = history.iter().map(|e| (id_of(e, "id"), e)).collect();
    // The state an event belongs to: the nearest `{Kind}StateEntered` up its chain, where the kind is
    // the event's (`TaskFailed`: a Task state; `ParallelStateFailed`: the Parallel state, whose chain
    // passes through its branches' states first).
    let owner = |event: &Value, ty: &str| -> Option<String> {
        let entered = if ty.starts_with("Parallel") {
            "ParallelStateEntered"
        } else if ty.starts_with("Map") {
            "MapStateEntered"
        } else {
            "TaskStateEntered"
        };
        let mut at = by_id.get(&id_of(event, "previousEventId"))?;
        for _ in 0..history.len() + 1 {
            if field(at, "type") == Some(entered) {
                return at
                    .get("details")
                    .and_then(|d| field(d, "name"))
                    .map(str::to_string);
            }
            at = by_id.get(&id_of(at, "previousEventId"))?;
        }
        None
    };
    let mut visits: BTreeMap<String, Visit> = BTreeMap::new();
    let mut execution_failed = false;
    for event in history {
        let ty = field(event, "type").unwrap_or_default();
        let name = event
            .get("details")
            .and_then(|d| field(d, "name"))
            .map(str::to_string);
        if ty.starts_with("Execution") {
            if ty.ends_with("Failed") || ty.ends_with("TimedOut") || ty.ends_with("Aborted") {
                execution_failed = true;
            }
            continue;
        }
        if let Some(state) = ty.strip_suffix("StateEntered").and(name.clone()) {
            let v = visits.entry(state).or_default();
            v.entered += 1;
            v.exited = false;
            v.failing = false;
            v.kind_fail = ty == "FailStateEntered";
            continue;
        }
        if let Some(state) = ty.strip_suffix("StateExited").and(name) {
            let v = visits.entry(state).or_default();
            v.exited = true;
            if v.failing {
                v.caught = true;
            } else if v.errors > 0 {
                v.retried = true;
            }
            continue;
        }
        let failed = ty.ends_with("Failed") || ty.ends_with("TimedOut") || ty.ends_with("Aborted");
        let succeeded = ty.ends_with("Succeeded");
        if !(failed || succeeded) || ty.starts_with("MapRun") {
            continue;
        }
        let Some(state) = owner(event, ty) else {
            continue;
        };
        let v = visits.entry(state).or_default();
        if failed {
            // A branch or iteration failing is reported by its own state; the Parallel/Map's own
            // `...StateFailed`-style events also land here, once.
            v.errors += 1;
            v.failing = true;
            v.error = event
                .get("details")
                .and_then(|d| field(d, "error"))
                .map(str::to_string)
                .or(v.error.take());
        } else {
            v.failing = false;
        }
    }
    visits
        .into_iter()
        .map(|(name, v)| {
            let status = if v.kind_fail {
                "failed"
            } else if !v.exited {
                if v.failing || (execution_failed && v.errors > 0) {
                    "failed"
                } else if execution_failed {
                    // Left behind when the execution stopped elsewhere (a failing branch).
                    "cancelled"
                } else {
                    "running"
                }
            } else if v.caught {
                "caught"
            } else if v.retried {
                "retried"
            } else {
                "succeeded"
            };
            (
                name,
                StateOutcome {
                    status,
                    entered: v.entered,
                    errors: v.errors,
                    error: v.error,
                },
            )
        })
        .collect()
}

/// The Task states of a definition that send to each stage's queue (`"QueueUrl": "embedded://STAGE"`,
/// as the gateway's copy of the definition has them).
fn task_states_by_stage(definition: &Value) -> BTreeMap<String, Vec<String>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut machines = vec![definition];
    while let Some(machine) = machines.pop() {
        let Some(states) = machine.get("States").and_then(Value::as_object) else {
            continue;
        };
        for (name, state) in states {
            if let Some(stage) = state
                .pointer("/Parameters/QueueUrl")
                .and_then(Value::as_str)
                .and_then(|u| u.strip_prefix("embedded://"))
            {
                found
                    .entry(stage.to_string())
                    .or_default()
                    .push(name.clone());
            }
            for branch in state
                .get("Branches")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                machines.push(branch);
            }
            for key in ["ItemProcessor", "Iterator"] {
                if let Some(p) = state.get(key) {
                    machines.push(p);
                }
            }
        }
    }
    found
}

/// Where the history says nothing of a Task state that alone sends to a stage, what the stage's
/// worker recorded for the run stands in (an emulator that leaves Parallel branches out of
/// GetExecutionHistory; ministack 1.5.33 does, services/stepfunctions.py `_run_sub_machine`).
/// Stages several states send to (the notifier) are left alone: which state it was is unknown.
pub fn fill_from_stage_statuses(
    outcomes: &mut BTreeMap<String, StateOutcome>,
    definition: &Value,
    statuses: &BTreeMap<sluice_proto::Stage, sluice_proto::StageStatus>,
) {
    use sluice_proto::StageState;
    for (stage, names) in task_states_by_stage(definition) {
        let [name] = names.as_slice() else { continue };
        if outcomes.contains_key(name) {
            continue;
        }
        let Some(status) = sluice_proto::Stage::parse(&stage).and_then(|s| statuses.get(&s)) else {
            continue;
        };
        let retried = status.attempt > 1;
        let (label, errors) = match status.state {
            StageState::Succeeded if retried => ("retried", status.attempt - 1),
            StageState::Succeeded => ("succeeded", 0),
            StageState::Failed => ("failed", status.attempt),
            StageState::Retrying => ("running", status.attempt),
        };
        outcomes.insert(
            name.clone(),
            StateOutcome {
                status: label,
                entered: status.attempt.max(1),
                errors,
                error: None,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_branch_left_out_of_the_history_is_filled_from_its_stages_record() {
        use sluice_proto::{Stage, StageState, StageStatus};
        let definition: Value =
            serde_json::from_str(&sluice_pipeline::definition::pipeline_definition(
                sluice_pipeline::definition::embedded_url,
            ))
            .unwrap();
        let mut outcomes = BTreeMap::new();
        outcomes.insert(
            "Validate rows".to_string(),
            StateOutcome {
                status: "succeeded",
                entered: 1,
                errors: 0,
                error: None,
            },
        );
        let statuses = BTreeMap::from([
            (
                Stage::Validator,
                StageStatus {
                    state: StageState::Failed,
                    attempt: 1,
                },
            ),
            (
                Stage::Partitioner,
                StageStatus {
                    state: StageState::Succeeded,
                    attempt: 2,
                },
            ),
            (
                Stage::Plotter,
                StageStatus {
                    state: StageState::Succeeded,
                    attempt: 1,
                },
            ),
            (
                Stage::Notifier,
                StageStatus {
                    state: StageState::Succeeded,
                    attempt: 1,
                },
            ),
        ]);
        fill_from_stage_statuses(&mut outcomes, &definition, &statuses);
        assert_eq!(
            outcomes["Validate rows"].status, "succeeded",
            "the history wins"
        );
        assert_eq!(outcomes["Partition rows"].status, "retried");
        assert_eq!(outcomes["Draw plots"].status, "succeeded");
        assert!(
            !outcomes.contains_key("Send success summary"),
            "the notifier's states are several"
        );
        assert!(
            !outcomes.contains_key("Load rows"),
            "no record, nothing said"
        );
    }

    fn ev(id: u64, prev: u64, ty: &str, details: Value) -> Value {
        json!({"id": id, "previousEventId": prev, "type": ty, "timestamp": "2026-01-01T00:00:00.000Z", "details": details})
    }

    fn status(outcomes: &BTreeMap<String, StateOutcome>, name: &str) -> &'static str {
        outcomes
            .get(name)
            .map(|o| o.status)
            .unwrap_or("not reached")
    }

    #[test]
    fn succeeded_retried_caught_failed_and_not_reached() {
        let h = vec![
            ev(1, 0, "ExecutionStarted", json!({})),
            ev(2, 1, "PassStateEntered", json!({"name": "Start"})),
            ev(3, 2, "PassStateExited", json!({"name": "Start"})),
            ev(4, 3, "TaskStateEntered", json!({"name": "Validate"})),
            ev(5, 4, "TaskScheduled", json!({})),
            ev(6, 5, "TaskFailed", json!({"error": "Sluice.Transient"})),
            ev(7, 6, "TaskScheduled", json!({})),
            ev(8, 7, "TaskSucceeded", json!({})),
            ev(9, 8, "TaskStateExited", json!({"name": "Validate"})),
            ev(10, 9, "TaskStateEntered", json!({"name": "Filter"})),
            ev(11, 10, "TaskScheduled", json!({})),
            ev(
                12,
                11,
                "TaskFailed",
                json!({"error": "Sluice.InvalidInput"}),
            ),
            ev(13, 12, "TaskStateExited", json!({"name": "Filter"})),
            ev(
                14,
                13,
                "PassStateEntered",
                json!({"name": "Filtering failed"}),
            ),
            ev(
                15,
                14,
                "PassStateExited",
                json!({"name": "Filtering failed"}),
            ),
            ev(16, 15, "FailStateEntered", json!({"name": "Run failed"})),
            ev(
                17,
                16,
                "ExecutionFailed",
                json!({"error": "Sluice.InvalidInput"}),
            ),
        ];
        let o = state_outcomes(&h);
        assert_eq!(status(&o, "Start"), "succeeded");
        assert_eq!(status(&o, "Validate"), "retried");
        assert_eq!(o["Validate"].errors, 1);
        assert_eq!(status(&o, "Filter"), "caught");
        assert_eq!(o["Filter"].error.as_deref(), Some("Sluice.InvalidInput"));
        assert_eq!(status(&o, "Filtering failed"), "succeeded");
        assert_eq!(status(&o, "Run failed"), "failed");
        assert_eq!(status(&o, "Partition"), "not reached");
    }

    #[test]
    fn a_running_state_and_an_uncaught_error() {
        let running = vec![
            ev(1, 0, "ExecutionStarted", json!({})),
            ev(2, 1, "TaskStateEntered", json!({"name": "Validate"})),
            ev(3, 2, "TaskScheduled", json!({})),
        ];
        assert_eq!(status(&state_outcomes(&running), "Validate"), "running");
        let mut failed = running.clone();
        failed.push(ev(4, 3, "TaskFailed", json!({"error": "States.Timeout"})));
        failed.push(ev(
            5,
            4,
            "ExecutionFailed",
            json!({"error": "States.Timeout"}),
        ));
        assert_eq!(status(&state_outcomes(&failed), "Validate"), "failed");
    }

    #[test]
    fn parallel_branches_keep_their_task_events_apart() {
        // Two branches interleaved: the left one's task fails and is caught, the right one succeeds.
        let h = vec![
            ev(1, 0, "ExecutionStarted", json!({})),
            ev(2, 1, "ParallelStateEntered", json!({"name": "P"})),
            ev(3, 2, "ParallelStateStarted", json!({})),
            ev(4, 3, "TaskStateEntered", json!({"name": "Left"})),
            ev(5, 3, "TaskStateEntered", json!({"name": "Right"})),
            ev(6, 4, "TaskScheduled", json!({})),
            ev(7, 5, "TaskScheduled", json!({})),
            ev(8, 6, "TaskFailed", json!({"error": "E"})),
            ev(9, 7, "TaskSucceeded", json!({})),
            ev(10, 9, "TaskStateExited", json!({"name": "Right"})),
            ev(11, 8, "TaskStateExited", json!({"name": "Left"})),
            ev(12, 11, "PassStateEntered", json!({"name": "Left failed"})),
            ev(13, 12, "PassStateExited", json!({"name": "Left failed"})),
            ev(14, 13, "ParallelStateSucceeded", json!({})),
            ev(15, 14, "ParallelStateExited", json!({"name": "P"})),
        ];
        let o = state_outcomes(&h);
        assert_eq!(status(&o, "Left"), "caught");
        assert_eq!(status(&o, "Right"), "succeeded");
        assert_eq!(status(&o, "P"), "succeeded");
    }

    #[test]
    fn a_failing_branch_fails_its_parallel_state_and_cancels_the_others() {
        let h = vec![
            ev(1, 0, "ExecutionStarted", json!({})),
            ev(2, 1, "ParallelStateEntered", json!({"name": "P"})),
            ev(3, 2, "ParallelStateStarted", json!({})),
            ev(4, 3, "FailStateEntered", json!({"name": "Left failed"})),
            ev(5, 3, "TaskStateEntered", json!({"name": "Right"})),
            ev(6, 5, "TaskScheduled", json!({})),
            ev(
                7,
                4,
                "ParallelStateFailed",
                json!({"error": "Sluice.PartitionFailed"}),
            ),
            ev(
                8,
                7,
                "ExecutionFailed",
                json!({"error": "Sluice.PartitionFailed"}),
            ),
        ];
        let o = state_outcomes(&h);
        assert_eq!(status(&o, "P"), "failed");
        assert_eq!(o["P"].error.as_deref(), Some("Sluice.PartitionFailed"));
        assert_eq!(status(&o, "Left failed"), "failed");
        assert_eq!(status(&o, "Right"), "cancelled");
    }
}
