//! The embedded run of one file: which dataset it is, landing it, and recording the run around the
//! state machine execution ([`flow`](crate::flow)).

use std::path::Path;

use chrono::{NaiveDate, Utc};
use sluice_core::config::{Config, Dataset};
use sluice_core::embedded::FsObjectStore;
use sluice_core::keys::run_id_for;
use sluice_core::ports::{ObjectStore, RunStore};
use sluice_proto::*;

use crate::flow;
use crate::handlers::StageContext;

/// Picks the dataset a local file belongs to: `--dataset`; else the datasets whose suffix accepts the
/// file name and whose prefix the file's folder ends with (`examples/incoming/stocks/a.csv` is under
/// `incoming/stocks/`); else those whose suffix alone accepts it; else the only dataset.
pub fn dataset_for<'a>(
    config: &'a Config,
    file: &Path,
    name: Option<&str>,
) -> anyhow::Result<&'a Dataset> {
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
    let file_name = file
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let folder = format!(
        "/{}/",
        file.parent()
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default()
    );
    let by_suffix: Vec<&Dataset> = config
        .datasets
        .iter()
        .filter(|d| file_name.ends_with(&d.suffix))
        .collect();
    let by_prefix: Vec<&Dataset> = by_suffix
        .iter()
        .copied()
        .filter(|d| {
            !d.prefix.is_empty()
                && folder.ends_with(&format!("/{}", d.prefix.trim_start_matches('/')))
        })
        .collect();
    let candidates = if by_prefix.is_empty() {
        by_suffix
    } else {
        by_prefix
    };
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

/// Lands `file` in the landing bucket under the dataset's prefix and runs statemachine/pipeline.asl.json
/// on it with the local executor. A failing stage does not return an error: the definition retries,
/// alerts and fails the run, which is recorded.
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
    let source = ObjectRef::new(
        &ctx.config.buckets.landing,
        format!("{}{}", ds.prefix, file_name),
    );
    let meta = store
        .land(file, &source)
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?;
    let run_id = run_id_for(&source.bucket, &source.key, &meta.etag);
    tracing::info!(%run_id, dataset = %ds.name, source = %store.uri(&source), bytes = meta.size, "run started");

    let run = RunSummary::started(run_id.clone(), ds.name.clone(), source.clone(), Utc::now());
    runs.put_run(&run)
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?;
    let mut run = flow::execute(ctx, run, as_of).await?;
    run.finished_at = Some(Utc::now());
    if let Some(e) = &run.error {
        tracing::error!(%run_id, stage = ?e.stage, error = %e.error, cause = %e.cause, "run failed");
    }
    runs.put_run(&run)
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?;
    Ok(run)
}
