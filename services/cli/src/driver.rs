//! The embedded pipeline: one run of one file, stage after stage, in this process.
//!
//! This straight-line driver is the foundation's; the state-machine work replaces it with the local
//! ASL executor running statemachine/pipeline.asl.json over the same [`handlers`](crate::handlers).

use std::path::Path;

use chrono::{NaiveDate, Utc};
use sluice_core::config::{Config, Dataset};
use sluice_core::embedded::FsObjectStore;
use sluice_core::keys::run_id_for;
use sluice_core::ports::{ObjectStore, RunStore};
use sluice_proto::*;

use crate::handlers::{StageContext, handle};

/// Picks the dataset a local file belongs to: `--dataset`; else the datasets whose suffix accepts the
/// file name and whose prefix the file's folder ends with (`examples/incoming/stocks/a.csv` is under
/// `incoming/stocks/`); else those whose suffix alone accepts it; else the only dataset.
pub fn dataset_for<'a>(config: &'a Config, file: &Path, name: Option<&str>) -> anyhow::Result<&'a Dataset> {
    if let Some(name) = name {
        return config.dataset(name).ok_or_else(|| {
            let known: Vec<&str> = config.datasets.iter().map(|d| d.name.as_str()).collect();
            anyhow::anyhow!(
                "there is no dataset {name:?} in {} (datasets: {})",
                config.path.display(),
                known.join(", ")
            )
        });
    }
    let file_name = file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let folder = format!("/{}/", file.parent().map(|p| p.to_string_lossy().replace('\\', "/")).unwrap_or_default());
    let by_suffix: Vec<&Dataset> = config.datasets.iter().filter(|d| file_name.ends_with(&d.suffix)).collect();
    let by_prefix: Vec<&Dataset> = by_suffix
        .iter()
        .copied()
        .filter(|d| !d.prefix.is_empty() && folder.ends_with(&format!("/{}", d.prefix.trim_start_matches('/'))))
        .collect();
    let candidates = if by_prefix.is_empty() { by_suffix } else { by_prefix };
    match (candidates.as_slice(), config.datasets.as_slice()) {
        ([one], _) => Ok(one),
        (_, [only]) => Ok(only),
        (_, []) => anyhow::bail!("{} defines no [[dataset]]", config.path.display()),
        (many, all) => {
            let names: Vec<&str> = if many.is_empty() {
                all.iter().map(|d| d.name.as_str()).collect()
            } else {
                many.iter().map(|d| d.name.as_str()).collect()
            };
            anyhow::bail!(
                "cannot tell which dataset {} belongs to (it could be {}); pass --dataset NAME",
                file.display(),
                names.join(", ")
            )
        }
    }
}

/// Lands `file` in the landing bucket under the dataset's prefix and runs the pipeline on it.
/// A failing stage does not return an error: the run is FAILED, alerted and recorded.
pub async fn run_file(
    ctx: &StageContext,
    store: &FsObjectStore,
    runs: &dyn RunStore,
    ds: &Dataset,
    file: &Path,
    as_of: NaiveDate,
) -> anyhow::Result<RunSummary> {
    let file_name = file
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("{} is not a file name", file.display()))?
        .to_string_lossy()
        .into_owned();
    let source = ObjectRef::new(&ctx.config.buckets.landing, format!("{}{}", ds.prefix, file_name));
    let meta = store.land(file, &source).await.map_err(|e| anyhow::anyhow!(e.cause))?;
    let run_id = run_id_for(&source.bucket, &source.key, &meta.etag);
    tracing::info!(%run_id, dataset = %ds.name, source = %store.uri(&source), bytes = meta.size, "run started");

    let mut run = RunSummary::started(run_id.clone(), ds.name.clone(), source.clone(), Utc::now());
    runs.put_run(&run).await.map_err(|e| anyhow::anyhow!(e.cause))?;

    match pipeline(ctx, &mut run, as_of).await {
        Ok(()) => run.status = RunStatus::Succeeded,
        Err((stage, e)) => {
            tracing::error!(%run_id, %stage, error = %e.error, cause = %e.cause, "run failed");
            run.status = RunStatus::Failed;
            run.error = Some(RunError { stage: Some(stage.to_string()), error: e.error.to_string(), cause: e.cause.clone() });
            let alert = NotifyInput {
                run_id: run_id.clone(),
                dataset: ds.name.clone(),
                source: source.clone(),
                notice: Notice::Failure { stage: stage.to_string(), error: e.error.to_string(), cause: e.cause },
            };
            match handle(ctx, StageInput::Notifier(alert)).await {
                Ok(StageOutput::Notifier(out)) => run.emails.extend(out.emails),
                Ok(_) => {}
                Err(e) => tracing::error!(%run_id, cause = %e.cause, "the failure alert could not be sent"),
            }
        }
    }
    run.finished_at = Some(Utc::now());
    runs.put_run(&run).await.map_err(|e| anyhow::anyhow!(e.cause))?;
    Ok(run)
}

type Failed = (Stage, StageError);

async fn stage(ctx: &StageContext, input: StageInput) -> Result<StageOutput, Failed> {
    let which = input.stage();
    handle(ctx, input).await.map_err(|e| (which, e))
}

/// Validate, filter and compute stats, partition and plot side by side, then notify.
async fn pipeline(ctx: &StageContext, run: &mut RunSummary, as_of: NaiveDate) -> Result<(), Failed> {
    let uri = |o: &ObjectRef| ctx.store.uri(o);
    let (run_id, dataset, source) = (run.run_id.clone(), run.dataset.clone(), run.source.clone());

    let StageOutput::Validator(v) =
        stage(ctx, StageInput::Validator(ValidateInput { run_id: run_id.clone(), dataset: dataset.clone(), source: source.clone() })).await?
    else {
        unreachable!("the validator answers with a validator output")
    };
    run.rows.total = v.rows.total;
    run.rows.valid = v.rows.valid;
    run.rows.invalid = v.rows.invalid;
    run.outputs.valid = Some(uri(&v.valid));
    run.outputs.invalid = Some(uri(&v.invalid));

    let StageOutput::FilterStats(f) = stage(
        ctx,
        StageInput::FilterStats(FilterStatsInput { run_id: run_id.clone(), dataset: dataset.clone(), valid: v.valid.clone(), as_of }),
    )
    .await?
    else {
        unreachable!("filter-stats answers with a filter-stats output")
    };
    run.rows.filtered = f.filtered_rows;
    run.stats = f.stats.clone();
    run.outputs.filtered = Some(uri(&f.filtered));
    run.outputs.stats = Some(uri(&f.stats_object));

    let part_in = PartitionInput { run_id: run_id.clone(), dataset: dataset.clone(), filtered: f.filtered.clone() };
    let plot_in = PlotInput { run_id: run_id.clone(), dataset: dataset.clone(), filtered: f.filtered.clone() };
    let (parts, plots) =
        tokio::join!(stage(ctx, StageInput::Partitioner(part_in)), stage(ctx, StageInput::Plotter(plot_in)));
    if let StageOutput::Partitioner(p) = parts? {
        run.outputs.partitions = p.partitions.iter().map(uri).collect();
    }
    if let StageOutput::Plotter(p) = plots? {
        run.outputs.plots = p.plots.iter().map(uri).collect();
    }

    if v.rows.invalid > 0 {
        let notice = Notice::InvalidRows { rows: v.rows, top_reasons: v.top_reasons.clone(), invalid: v.invalid.clone() };
        let input = NotifyInput { run_id: run_id.clone(), dataset: dataset.clone(), source: source.clone(), notice };
        if let StageOutput::Notifier(n) = stage(ctx, StageInput::Notifier(input)).await? {
            run.emails.extend(n.emails);
        }
    }
    let notice = Notice::Success {
        rows: v.rows,
        filtered_rows: f.filtered_rows,
        stats: f.stats,
        outputs: run.outputs.clone(),
    };
    let input = NotifyInput { run_id, dataset, source, notice };
    if let StageOutput::Notifier(n) = stage(ctx, StageInput::Notifier(input)).await? {
        run.emails.extend(n.emails);
    }
    Ok(())
}
