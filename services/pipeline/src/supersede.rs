//! A changed re-upload of a key supersedes what the earlier versions of that key left behind: once the
//! newest version's rows are stored and its partitions written, the rows and partition files of the
//! key's earlier runs are removed, so the row store and the curated bucket hold only the new data.
//!
//! "Newest" is the version the key holds now: a run cleans up only while its own version is still the
//! object's current one (an older run that finishes late leaves everything to the newer run, which
//! removes the older run's outputs once it is done). This is for runs started by an event (their source
//! carries the event's ETag): `sluice run FILE...` runs exactly the files it is given, and two files of
//! one name (`jan/prices.csv`, `feb/prices.csv`) both keep their outputs.

use sluice_proto::{DatasetName, ErrorName, ObjectRef, RunId, RunSummary, StageError};
use sluice_spec::keys::RunKeys;

use crate::stages::StageContext;

/// Where a run stands against the object it reads.
enum Standing {
    /// Its version is the object's current one (or it carries none): these are the key's other runs.
    Newest(Vec<RunSummary>),
    /// The object was replaced since the run started.
    Replaced,
}

async fn standing(ctx: &StageContext, run_id: &RunId) -> Result<Standing, StageError> {
    let Some(run) = ctx.runs.get_run(run_id).await? else {
        return Ok(Standing::Newest(Vec::new()));
    };
    let Some(version) = &run.source.version else {
        // `sluice run FILE...`: each file given is a run of its own, even two files of one name.
        return Ok(Standing::Newest(Vec::new()));
    };
    let current = ctx.store.head(&run.source).await?;
    if current.is_none_or(|m| m.etag.trim_matches('"') != version.trim_matches('"')) {
        return Ok(Standing::Replaced);
    }
    Ok(Standing::Newest(
        ctx.runs
            .runs_of_source(&run.source.bucket, &run.source.key)
            .await?
            .into_iter()
            .filter(|r| &r.run_id != run_id)
            .collect(),
    ))
}

/// After a run stored its rows: removes the rows the key's earlier runs stored and this run did not
/// overwrite. When the object was replaced while this run was storing, this run's own rows go instead
/// (those a newer run has not overwritten) and the run ends `Sluice.Superseded`.
pub async fn earlier_rows(
    ctx: &StageContext,
    dataset: &DatasetName,
    run_id: &RunId,
) -> Result<u64, StageError> {
    match standing(ctx, run_id).await? {
        Standing::Replaced => {
            let removed = ctx.rows.delete_run_rows(dataset, run_id).await?;
            Err(StageError::new(
                ErrorName::Superseded,
                format!(
                    "the object of run {run_id} was replaced while its rows were being stored; its {removed} \
                     row(s) not overwritten by the newer version were removed"
                ),
            ))
        }
        Standing::Newest(earlier) => {
            let mut removed = 0;
            for run in earlier {
                removed += ctx.rows.delete_run_rows(&run.dataset, &run.run_id).await?;
            }
            if removed > 0 {
                tracing::info!(%run_id, removed, "removed the rows of the key's earlier versions");
            }
            Ok(removed)
        }
    }
}

/// Before a run's warehouse load commits (under the loader's lock on the source): `Sluice.Superseded`
/// when the object was replaced since the run started, so an older run that finishes late never puts
/// its rows back over the newer version's (the newer run loads its own).
pub async fn still_current(ctx: &StageContext, run_id: &RunId) -> Result<(), StageError> {
    match standing(ctx, run_id).await? {
        Standing::Newest(_) => Ok(()),
        Standing::Replaced => Err(StageError::new(
            ErrorName::Superseded,
            format!(
                "the object of run {run_id} was replaced while its rows were being loaded; the load was rolled \
                 back and the newer version's run loads its own rows"
            ),
        )),
    }
}

/// After a run wrote its partitions (and their manifest): removes the partition files of the key's
/// earlier runs. When the object was replaced in the meantime, this run's own files go instead (the
/// newer run writes its own); returns whether this run's files were kept.
pub async fn earlier_partitions(ctx: &StageContext, run_id: &RunId) -> Result<bool, StageError> {
    let (runs, kept) = match standing(ctx, run_id).await? {
        Standing::Replaced => {
            tracing::info!(%run_id, "the object was replaced during this run: its partitions are removed");
            (vec![run_id.clone()], false)
        }
        Standing::Newest(earlier) => (earlier.into_iter().map(|r| r.run_id).collect(), true),
    };
    let mut removed = 0;
    for run in &runs {
        removed += remove_partitions(ctx, run).await?;
    }
    if removed > 0 && kept {
        tracing::info!(%run_id, removed, "removed the partition files of the key's earlier versions");
    }
    Ok(kept)
}

/// Removes every file a run's partition manifest lists, and the manifest.
async fn remove_partitions(ctx: &StageContext, run_id: &RunId) -> Result<u64, StageError> {
    let manifest = RunKeys {
        work_bucket: &ctx.config.buckets.work,
        run_id,
    }
    .partition_manifest();
    if ctx.store.head(&manifest).await?.is_none() {
        return Ok(0);
    }
    std::fs::create_dir_all(&ctx.scratch_root)?;
    let scratch = tempfile::Builder::new()
        .prefix("supersede-")
        .tempdir_in(&ctx.scratch_root)?;
    let local = ctx.store.local_copy(&manifest, scratch.path()).await?;
    let files: Vec<ObjectRef> =
        serde_json::from_slice(&std::fs::read(local.path())?).map_err(|e| {
            StageError::internal(format!(
                "{}: not a partition manifest: {e}",
                manifest.s3_uri()
            ))
        })?;
    for file in &files {
        ctx.store.delete(file).await?;
    }
    ctx.store.delete(&manifest).await?;
    Ok(files.len() as u64)
}
