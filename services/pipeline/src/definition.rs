//! `statemachine/pipeline.asl.json`, the one definition every mode runs, and how it is started.

use sluice_proto::Stage;

pub use sluice_spec::keys::execution_input;

/// The definition, built into the binary so `sluice run` needs no file next to it.
pub const PIPELINE_ASL: &str = include_str!("../../../statemachine/pipeline.asl.json");

/// The queue URL placeholder of each stage in pipeline.asl.json.
pub fn queue_placeholder(stage: Stage) -> &'static str {
    match stage {
        Stage::Validator => "${ValidatorQueueUrl}",
        Stage::FilterStats => "${FilterStatsQueueUrl}",
        Stage::Partitioner => "${PartitionerQueueUrl}",
        Stage::Plotter => "${PlotterQueueUrl}",
        Stage::Notifier => "${NotifierQueueUrl}",
    }
}

/// pipeline.asl.json with each stage's queue URL filled in by `url_of`.
pub fn pipeline_definition(url_of: impl Fn(Stage) -> String) -> String {
    Stage::ALL
        .iter()
        .fold(PIPELINE_ASL.to_string(), |def, &stage| {
            def.replace(queue_placeholder(stage), &url_of(stage))
        })
}

pub fn embedded_url(stage: Stage) -> String {
    format!("embedded://{stage}")
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
        for stage in Stage::ALL {
            assert!(
                PIPELINE_ASL.contains(queue_placeholder(stage)),
                "{stage} has no queue in the definition"
            );
        }
    }
}
