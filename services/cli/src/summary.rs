//! Folding stage outputs into a run summary: the same rules for the embedded run and the AWS workers.

use sluice_proto::{ObjectRef, RunSummary, StageOutput};

/// Records what a stage produced in the run summary (counts, stats, output URIs, e-mails).
pub fn apply_output(
    run: &mut RunSummary,
    output: &StageOutput,
    uri_of: &dyn Fn(&ObjectRef) -> String,
) {
    match output {
        StageOutput::Validator(v) => {
            run.rows.total = v.rows.total;
            run.rows.valid = v.rows.valid;
            run.rows.invalid = v.rows.invalid;
            run.outputs.valid = Some(uri_of(&v.valid));
            run.outputs.invalid = Some(uri_of(&v.invalid));
        }
        StageOutput::FilterStats(f) => {
            run.rows.filtered = f.filtered_rows;
            run.stats = f.stats.clone();
            run.outputs.filtered = Some(uri_of(&f.filtered));
            run.outputs.stats = Some(uri_of(&f.stats_object));
        }
        StageOutput::Partitioner(p) => {
            run.outputs.partitions = p.partitions.iter().map(uri_of).collect();
            run.outputs.partition_count = p.count;
            run.outputs.partition_manifest = Some(uri_of(&p.manifest));
        }
        StageOutput::Plotter(p) => run.outputs.plots = p.plots.iter().map(uri_of).collect(),
        StageOutput::Notifier(n) => run.emails.extend(n.emails.iter().cloned()),
    }
}
