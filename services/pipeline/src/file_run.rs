//! The embedded run of one file: which dataset it is, and recording the run around the state machine
//! execution ([`embedded`](crate::embedded)). Landing the file is the object store's job (the CLI
//! copies it into the landing folder first).

use std::path::Path;

use chrono::{NaiveDate, Utc};
use sluice_proto::*;
use sluice_runtime::runs::RunStore;
use sluice_spec::config::{Config, Dataset};
use sluice_spec::keys::run_id_for;

use crate::embedded;
use crate::stages::StageContext;

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

/// Runs statemachine/pipeline.asl.json with the local executor on a file already landed as `source`
/// (with this ETag). A failing stage does not return an error: the definition retries, alerts and fails
/// the run, which is recorded. Running the same landed bytes again is a new attempt of the same run.
pub async fn run_landed(
    ctx: &StageContext,
    runs: &dyn RunStore,
    ds: &Dataset,
    source: ObjectRef,
    etag: &str,
    as_of: NaiveDate,
) -> anyhow::Result<RunSummary> {
    let run_id = run_id_for(&source.bucket, &source.key, etag);
    tracing::info!(%run_id, dataset = %ds.name, source = %ctx.store.uri(&source), "run started");

    let run = RunSummary::started(run_id.clone(), ds.name.clone(), source, Utc::now());
    runs.start_attempt(&run)
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?;
    let mut run = embedded::execute(ctx, run, as_of).await?;
    run.finished_at = Some(Utc::now());
    if let Some(e) = &run.error {
        tracing::error!(%run_id, stage = ?e.stage, error = %e.error, cause = %e.cause, "run failed");
    }
    let finished = run.clone();
    runs.update_run(&run_id, &mut |stored| *stored = finished.clone())
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?;
    crate::summary::run_ended(&run);
    Ok(run)
}

/// Why `file` cannot be run, when it is not a readable regular file: what it is instead.
pub fn not_a_readable_file(file: &Path) -> Option<String> {
    let what = match std::fs::metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::read_link(file) {
            Ok(target) => format!(
                "is a symbolic link to {}, which does not exist",
                target.display()
            ),
            Err(_) => "no such file".to_string(),
        },
        Err(e) => format!("cannot be read: {e}"),
        Ok(m) if m.is_dir() => format!(
            "is a directory; pass the files in it (e.g. {})",
            file.join("*.csv").display()
        ),
        Ok(m) if !m.is_file() => {
            format!(
                "is not a regular file ({})",
                special_file_kind(&m.file_type())
            )
        }
        // A regular file: it must also open (permissions).
        Ok(_) => match std::fs::File::open(file) {
            Ok(_) => return None,
            Err(e) => format!("cannot be read: {e}"),
        },
    };
    Some(format!("{}: {what}", file.display()))
}

#[cfg(unix)]
fn special_file_kind(ty: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ty.is_fifo() {
        "a named pipe"
    } else if ty.is_socket() {
        "a socket"
    } else if ty.is_block_device() {
        "a block device"
    } else if ty.is_char_device() {
        "a character device"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_file_kind(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// A whole-file error's cause starts with the URI of the landed copy the stage read
/// (`file://.../buckets/...: name.csv: ...`): name the file the way the user typed it instead.
pub fn name_the_file_as_typed(run: &mut RunSummary, landed_uri: &str, typed: &Path) {
    let Some(error) = &mut run.error else {
        return;
    };
    let Some(rest) = error
        .cause
        .strip_prefix(landed_uri)
        .and_then(|r| r.strip_prefix(": "))
    else {
        return;
    };
    // The validator names the file by its name alone, which the typed path already says.
    let rest = typed
        .file_name()
        .and_then(|n| rest.strip_prefix(&format!("{}: ", n.to_string_lossy())))
        .unwrap_or(rest);
    error.cause = format!("{}: {rest}", typed.display());
}
