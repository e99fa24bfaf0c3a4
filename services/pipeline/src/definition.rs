//! `statemachine/pipeline.asl.json`, the one definition every mode runs, and how it is started.

use sluice_proto::Stage;

pub use sluice_spec::keys::execution_input;

/// The definition, built into the binary so `sluice run` needs no file next to it.
pub const PIPELINE_ASL: &str = include_str!("../../../statemachine/pipeline.asl.json");

/// The batch definition (`[[batch]]`), built in the same way.
pub const BATCH_ASL: &str = include_str!("../../../statemachine/batch.asl.json");

/// The queue URL placeholder of each stage in pipeline.asl.json.
pub fn queue_placeholder(stage: Stage) -> &'static str {
    match stage {
        Stage::Validator => "${ValidatorQueueUrl}",
        Stage::FilterStats => "${FilterStatsQueueUrl}",
        Stage::Partitioner => "${PartitionerQueueUrl}",
        Stage::Plotter => "${PlotterQueueUrl}",
        Stage::Loader => "${LoaderQueueUrl}",
        Stage::Notifier => "${NotifierQueueUrl}",
    }
}

/// pipeline.asl.json with each stage's queue URL filled in by `url_of`.
pub fn pipeline_definition(url_of: impl Fn(Stage) -> String) -> String {
    fill_queues(PIPELINE_ASL, url_of)
}

/// batch.asl.json with each stage's queue URL filled in by `url_of`.
pub fn batch_definition(url_of: impl Fn(Stage) -> String) -> String {
    fill_queues(BATCH_ASL, url_of)
}

fn fill_queues(definition: &str, url_of: impl Fn(Stage) -> String) -> String {
    Stage::ALL
        .iter()
        .fold(definition.to_string(), |def, &stage| {
            def.replace(queue_placeholder(stage), &url_of(stage))
        })
}

pub fn embedded_url(stage: Stage) -> String {
    format!("embedded://{stage}")
}

/// The smallest `HeartbeatSeconds` among the Task states that send to `stage`'s queue (None when no
/// such state sets one).
pub fn heartbeat_seconds(stage: Stage) -> Option<u64> {
    fn walk(states: &serde_json::Value, queue: &str, min: &mut Option<u64>) {
        let Some(states) = states.as_object() else {
            return;
        };
        for state in states.values() {
            let sends_here = state
                .pointer("/Parameters/QueueUrl")
                .and_then(|q| q.as_str())
                == Some(queue);
            if sends_here && let Some(h) = state.get("HeartbeatSeconds").and_then(|h| h.as_u64()) {
                *min = Some(min.map_or(h, |m: u64| m.min(h)));
            }
            for branch in state
                .get("Branches")
                .and_then(|b| b.as_array())
                .into_iter()
                .flatten()
                .chain(state.get("Iterator"))
                .chain(state.get("ItemProcessor"))
            {
                walk(&branch["States"], queue, min);
            }
        }
    }
    let mut min = None;
    for text in [PIPELINE_ASL, BATCH_ASL] {
        let definition: serde_json::Value = serde_json::from_str(text).ok()?;
        walk(&definition["States"], queue_placeholder(stage), &mut min);
    }
    min
}

/// How often a worker of `stage` sends a task heartbeat: a third of the shortest HeartbeatSeconds its
/// tasks allow (so two beats can be lost), and at most every 30 s.
pub fn heartbeat_every(stage: Stage) -> std::time::Duration {
    let cap = std::time::Duration::from_secs(30);
    heartbeat_seconds(stage).map_or(cap, |h| {
        std::time::Duration::from_millis(h * 1000 / 3).min(cap)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled() {
        let def = pipeline_definition(embedded_url);
        assert!(
            !def.contains("${"),
            "a queue URL placeholder is left in pipeline.asl.json"
        );
        assert!(
            !batch_definition(embedded_url).contains("${"),
            "a queue URL placeholder is left in batch.asl.json"
        );
        for stage in Stage::ALL {
            assert!(
                PIPELINE_ASL.contains(queue_placeholder(stage)),
                "{stage} has no queue in the definition"
            );
        }
    }

    #[test]
    fn workers_beat_three_times_per_heartbeat_window_of_their_tasks() {
        for stage in Stage::ALL {
            let h = heartbeat_seconds(stage)
                .unwrap_or_else(|| panic!("{stage}: no HeartbeatSeconds in pipeline.asl.json"));
            assert!(
                heartbeat_every(stage).as_millis() * 3 <= u128::from(h) * 1000,
                "{stage}: a beat every {:?} for HeartbeatSeconds {h}",
                heartbeat_every(stage)
            );
        }
        // The notifier's states allow 60 s; its workers beat every 20 s.
        assert_eq!(heartbeat_seconds(Stage::Notifier), Some(60));
        assert_eq!(heartbeat_every(Stage::Notifier).as_secs(), 20);
    }
}
