//! The one dispatch point of the stages: a [`StageInput`] in, a [`StageOutput`] or a typed
//! [`StageError`] out. The embedded run calls it in-process; the workers call it per task message.
//!
//! Each handler fetches its inputs through the object store port, runs the (sync, streaming) stage
//! library on local files in a blocking thread, and stores the outputs under keys derived from the run id.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sluice_proto::*;
use sluice_runtime::ports::{
    Catalog, CatalogColumn, CatalogPartition, EncodedRows, Mailer, ObjectStore, OutgoingEmail,
    RowItem, RowSink, TableFormat, TableRef, TableSpec,
};
use sluice_runtime::runs::RunStore;
use sluice_spec::config::{Config, Dataset};
use sluice_spec::keys::RunKeys;
use tracing::Instrument;

use crate::faults::Faults;

/// Everything a stage needs besides its input.
#[derive(Clone)]
pub struct StageContext {
    pub config: Arc<Config>,
    pub store: Arc<dyn ObjectStore>,
    pub rows: Arc<dyn RowSink>,
    /// The run records: a re-upload's stages look up the key's earlier runs here.
    pub runs: Arc<dyn RunStore>,
    pub mailer: Arc<dyn Mailer>,
    /// Scratch space; each task gets its own temporary folder inside it.
    pub scratch_root: PathBuf,
    /// How far the run is, for a progress bar (embedded runs on a terminal).
    pub progress: Option<Arc<Progress>>,
    /// Scripted failures (`SLUICE_INJECT_FAULTS`), applied by [`handle`] before a stage runs, so the
    /// embedded run and the AWS workers fail the same way.
    pub faults: Arc<Faults>,
    /// The loader's warehouse, connected on first use.
    pub warehouse: Arc<WarehouseHandle>,
    /// The data catalog the partitioner registers `[dataset.catalog]` tables and their partitions in
    /// (AWS: Glue; embedded: JSON files under the data directory).
    pub catalog: Arc<dyn Catalog>,
}

/// Where the loader writes, and its connection once made (shared by every task of the process).
#[derive(Default)]
pub struct WarehouseHandle {
    /// `SLUICE_WAREHOUSE_URL`, else `[warehouse] url` (the composition root decides); `None` when
    /// neither is set.
    pub url: Option<String>,
    /// Without a URL: the embedded warehouse file (`{data_dir}/warehouse.db`); `None` in AWS mode, where
    /// a URL is required.
    pub embedded: Option<PathBuf>,
    connected: tokio::sync::OnceCell<sluice_loader::Warehouse>,
}

impl WarehouseHandle {
    pub fn new(url: Option<String>, embedded: Option<PathBuf>) -> Self {
        WarehouseHandle {
            url,
            embedded,
            connected: tokio::sync::OnceCell::new(),
        }
    }

    async fn get(
        &self,
        config: &Config,
        ds: &Dataset,
    ) -> Result<&sluice_loader::Warehouse, StageError> {
        self.get_or(config, || Self::unconfigured(config, ds)).await
    }

    async fn get_or(
        &self,
        config: &Config,
        unconfigured: impl FnOnce() -> StageError,
    ) -> Result<&sluice_loader::Warehouse, StageError> {
        let (staging, analytics) = (
            &config.warehouse.staging_schema,
            &config.warehouse.analytics_schema,
        );
        match (&self.url, &self.embedded) {
            (Some(url), _) => {
                self.connected
                    .get_or_try_init(|| sluice_loader::Warehouse::connect(url, staging, analytics))
                    .await
            }
            (None, Some(path)) => {
                self.connected
                    .get_or_try_init(|| {
                        sluice_loader::Warehouse::open_sqlite(path, staging, analytics)
                    })
                    .await
            }
            (None, None) => Err(unconfigured()),
        }
    }

    /// Fails at once when a dataset to load has nowhere to go (AWS mode without a URL), so a run finds
    /// out before it validates the whole file.
    pub fn check_configured(&self, config: &Config, ds: &Dataset) -> Result<(), StageError> {
        if ds.load && self.url.is_none() && self.embedded.is_none() {
            return Err(Self::unconfigured(config, ds));
        }
        Ok(())
    }

    fn unconfigured(config: &Config, ds: &Dataset) -> StageError {
        StageError::invalid_input(format!(
            "dataset {:?} has load = true but no warehouse is configured: set [warehouse] url = \
             \"postgres://user@host:5432/database\" in {} or the SLUICE_WAREHOUSE_URL variable",
            ds.name.as_str(),
            config.path.display()
        ))
    }
}

/// How far a run is: what a progress bar shows. Stages update it as they go.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes of the landed file validated so far.
    pub bytes: AtomicU64,
    /// Rows stored in the row store so far.
    pub rows: AtomicU64,
    stage: Mutex<&'static str>,
}

impl Progress {
    /// What the run is doing now ("validating", "storing rows", ...).
    pub fn set_stage(&self, stage: &'static str) {
        *self.stage.lock().unwrap_or_else(|p| p.into_inner()) = stage;
    }

    pub fn stage(&self) -> &'static str {
        *self.stage.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Rows sent to the row store per batch.
const ROW_BATCH: usize = 5000;

impl StageContext {
    fn dataset(&self, name: &DatasetName) -> Result<Arc<Dataset>, StageError> {
        self.config
            .dataset(name.as_str())
            .cloned()
            .map(Arc::new)
            .ok_or_else(|| {
                StageError::invalid_input(format!(
                    "dataset {name:?} is not defined in {}",
                    self.config.path.display()
                ))
            })
    }

    fn scratch(&self) -> Result<tempfile::TempDir, StageError> {
        std::fs::create_dir_all(&self.scratch_root)?;
        Ok(tempfile::Builder::new()
            .prefix("task-")
            .tempdir_in(&self.scratch_root)?)
    }

    fn keys<'a>(&'a self, run_id: &'a RunId) -> RunKeys<'a> {
        RunKeys {
            work_bucket: &self.config.buckets.work,
            run_id,
        }
    }
}

/// Runs a stage's work in a blocking thread, inside a span named `step` of the task's span.
async fn blocking<T: Send + 'static>(
    step_name: &'static str,
    f: impl FnOnce() -> Result<T, StageError> + Send + 'static,
) -> Result<T, StageError> {
    let span = step(step_name);
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| StageError::internal(format!("stage thread failed: {e}")))?
}

/// A step of a stage task (`read`, `validate`, `write rows`, `write outputs`, ...): a span inside the
/// task's span.
fn step(name: &'static str) -> tracing::Span {
    let span = tracing::info_span!(
        target: "sluice::step",
        "step",
        otel.name = name,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    // Its ids, for JSON log lines written inside it.
    sluice_telemetry::set_parent(&span, None);
    span
}

/// Runs one stage.
pub async fn handle(ctx: &StageContext, input: StageInput) -> Result<StageOutput, StageError> {
    if let Some(e) = ctx.faults.take(input.stage()) {
        return Err(e);
    }
    match input {
        StageInput::Validator(i) => validate(ctx, i).await.map(StageOutput::Validator),
        StageInput::FilterStats(i) => filter_stats(ctx, i).await.map(StageOutput::FilterStats),
        StageInput::Partitioner(i) => partition(ctx, i).await.map(StageOutput::Partitioner),
        StageInput::Plotter(i) => plot(ctx, i).await.map(StageOutput::Plotter),
        StageInput::Loader(i) => load(ctx, i).await.map(StageOutput::Loader),
        StageInput::Notifier(i) => notify(ctx, i).await.map(StageOutput::Notifier),
        StageInput::Analytics(i) => analytics(ctx, i).await.map(StageOutput::Analytics),
        StageInput::Export(i) => export(ctx, i).await.map(StageOutput::Export),
        StageInput::BatchNotifier(i) => batch_notify(ctx, i).await.map(StageOutput::BatchNotifier),
    }
}

async fn validate(ctx: &StageContext, input: ValidateInput) -> Result<ValidateOutput, StageError> {
    let ds = ctx.dataset(&input.dataset)?;
    ctx.warehouse.check_configured(&ctx.config, &ds)?;
    let scratch = ctx.scratch()?;
    let source = ctx
        .store
        .local_copy(&input.source, scratch.path())
        .instrument(step("read"))
        .await?;
    let valid_path = scratch.path().join("valid.csv");
    let invalid_path = scratch.path().join("invalid.csv");
    let valid_arrow_path = scratch.path().join("valid.arrow");
    let source_uri = ctx.store.uri(&input.source);
    let files = ValidatorFiles {
        source: source.path().to_path_buf(),
        valid: valid_path.clone(),
        invalid: invalid_path.clone(),
        valid_arrow: valid_arrow_path.clone(),
        scratch: scratch.path().to_path_buf(),
    };
    if let Some(p) = &ctx.progress {
        p.set_stage("validating");
    }

    // Rows are stored while the file is validated when the store can hold them back until the file
    // is accepted (SQLite: one transaction); otherwise (DynamoDB) once it has been.
    let writer = if ds.store_rows {
        ctx.rows.begin_rows(&ds.name, &input.run_id).await?
    } else {
        None
    };
    let (report, stored_rows) = match writer {
        Some(writer) => {
            let report = validate_and_store(ctx, &ds, &input.run_id, files, writer)
                .instrument(step("validate and write rows"))
                .await
                .map_err(|e| e.context(&source_uri))?;
            let stored = report.rows.valid;
            (report, stored)
        }
        None => {
            let report = run_validator(ds.clone(), files, ctx.progress.clone(), None)
                .await
                .map_err(|e| e.context(&source_uri))?;
            let stored = if ds.store_rows {
                if let Some(p) = &ctx.progress {
                    p.set_stage("storing rows");
                }
                store_rows(ctx, &ds, &input.run_id, &valid_path)
                    .instrument(step("write rows"))
                    .await?
            } else {
                0
            };
            (report, stored)
        }
    };
    if ds.store_rows {
        crate::supersede::earlier_rows(ctx, &ds.name, &input.run_id).await?;
    }

    sluice_telemetry::metrics::rows(ds.name.as_str(), report.rows.valid, report.rows.invalid);
    let keys = ctx.keys(&input.run_id);
    let (valid, invalid) = (keys.valid(), keys.invalid());
    let valid_arrow = async {
        ctx.store.put_file(&valid, &valid_path, "text/csv").await?;
        ctx.store
            .put_file(&invalid, &invalid_path, "text/csv")
            .await?;
        Ok::<_, StageError>(if report.valid_arrow {
            let obj = keys.valid_arrow();
            ctx.store
                .put_file(&obj, &valid_arrow_path, ARROW_CONTENT_TYPE)
                .await?;
            Some(obj)
        } else {
            None
        })
    }
    .instrument(step("write outputs"))
    .await?;
    Ok(ValidateOutput {
        rows: report.rows,
        valid,
        valid_arrow,
        invalid,
        top_reasons: report.top_reasons,
        stored_rows,
    })
}

/// The validator's input, outputs and scratch folder.
struct ValidatorFiles {
    source: PathBuf,
    valid: PathBuf,
    invalid: PathBuf,
    valid_arrow: PathBuf,
    scratch: PathBuf,
}

/// Runs the validator in a blocking thread; `tap` receives the valid rows as they are found.
async fn run_validator(
    ds: Arc<Dataset>,
    files: ValidatorFiles,
    progress: Option<Arc<Progress>>,
    tap: Option<ChannelTap>,
) -> Result<sluice_validator::ValidationReport, StageError> {
    blocking("validate", move || {
        let opts = sluice_validator::ValidateOptions {
            scratch_dir: &files.scratch,
            progress: progress.as_ref().map(|p| &p.bytes),
            tap: tap.as_ref().map(|t| t as &dyn sluice_validator::RowTap),
            valid_arrow: Some(&files.valid_arrow),
        };
        let report =
            sluice_validator::validate(&ds, &files.source, &files.valid, &files.invalid, &opts)?;
        if let Some(tap) = tap {
            tap.flush()?;
        }
        Ok(report)
    })
    .await
}

/// Validates the file while a task stores its valid rows through `writer` (the validator is the
/// bottleneck of the two, so storing costs little wall time), then commits them if the file was
/// accepted. A refused file, or any failure, drops the writer: the store is left as it was.
async fn validate_and_store(
    ctx: &StageContext,
    ds: &Arc<Dataset>,
    run_id: &RunId,
    files: ValidatorFiles,
    mut writer: Box<dyn sluice_runtime::ports::RowWriter>,
) -> Result<sluice_validator::ValidationReport, StageError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<sluice_validator::CanonRows>(2);
    let mut store = {
        let mut encoder = sluice_validator::RowEncoder::new(ds, run_id);
        let progress = ctx.progress.clone();
        AbortOnDrop(tokio::spawn(async move {
            let (mut key, mut item) = (String::new(), String::new());
            while let Some(rows) = rx.recv().await {
                let mut encoded = EncodedRows::default();
                for i in 0..rows.len() {
                    key.clear();
                    item.clear();
                    encoder.encode(&rows, i, &mut key, &mut item)?;
                    encoded.push(&key, &item);
                }
                writer.put(encoded).await?;
                if let Some(p) = &progress {
                    p.rows.fetch_add(rows.len() as u64, Ordering::Relaxed);
                }
            }
            Ok::<_, StageError>(writer)
        }))
    };
    let tap = ChannelTap::new(ds.columns.len(), tx);
    let validated = run_validator(ds.clone(), files, ctx.progress.clone(), Some(tap)).await;
    // The tap (the only sender) is gone, so the store task ends once it has written what it got.
    let stored = (&mut store.0)
        .await
        .map_err(|e| StageError::internal(format!("row store task failed: {e}")))?;
    // A store failure stops the validator (its tap cannot send): then the store's error is the cause.
    // Otherwise the validator's own error comes first (a refused file is not a store problem).
    let report = match validated {
        Err(e) if e.cause == TAP_STOPPED => return Err(stored.err().unwrap_or(e)),
        Err(e) => return Err(e),
        Ok(report) => report,
    };
    let writer = stored?;
    if let Some(p) = &ctx.progress {
        p.set_stage("committing rows");
    }
    writer.commit().await?;
    Ok(report)
}

/// If the stage is dropped (its task was cancelled), the store task stops too: its writer is dropped,
/// which rolls the run's rows back and releases SQLite's write lock at once, and the validator's tap
/// finds the channel closed and stops the validator.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the tap says when the store task is gone.
const TAP_STOPPED: &str = "the row store stopped while the file was being validated";

/// Collects valid rows into batches for the store task; the validator calls it from its thread.
struct ChannelTap {
    width: usize,
    rows: std::cell::RefCell<sluice_validator::CanonRows>,
    tx: tokio::sync::mpsc::Sender<sluice_validator::CanonRows>,
}

/// Rows per batch for the store task while validating: enough that the hand-offs cost nothing per
/// row, few enough that the batches in flight (in the channel, being encoded, queued for and in the
/// writer thread) stay a few hundred KiB each.
const TAP_BATCH_ROWS: usize = 2000;
/// A batch for the store task also ends at this many bytes of fields, so wide rows keep it small.
const TAP_BATCH_BYTES: usize = 256 * 1024;

impl ChannelTap {
    fn new(width: usize, tx: tokio::sync::mpsc::Sender<sluice_validator::CanonRows>) -> Self {
        ChannelTap {
            width,
            rows: std::cell::RefCell::new(sluice_validator::CanonRows::new(width)),
            tx,
        }
    }

    fn send(&self) -> Result<(), StageError> {
        let full = self
            .rows
            .replace(sluice_validator::CanonRows::new(self.width));
        if full.is_empty() {
            return Ok(());
        }
        self.tx
            .blocking_send(full)
            .map_err(|_| StageError::internal(TAP_STOPPED))
    }

    fn flush(self) -> Result<(), StageError> {
        self.send()
    }
}

impl sluice_validator::RowTap for ChannelTap {
    fn valid_row(&self, canon: &csv::ByteRecord) -> Result<(), StageError> {
        let full = {
            let mut rows = self.rows.borrow_mut();
            rows.push(canon);
            rows.len() >= TAP_BATCH_ROWS || rows.byte_len() >= TAP_BATCH_BYTES
        };
        if full { self.send() } else { Ok(()) }
    }
}

/// Streams the valid rows into the row store: a blocking reader feeds batches through a bounded
/// channel, so memory holds at most two batches.
async fn store_rows(
    ctx: &StageContext,
    ds: &Arc<Dataset>,
    run_id: &RunId,
    valid: &Path,
) -> Result<u64, StageError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<RowItem>>(2);
    let reader = {
        let (ds, run_id, valid) = (ds.clone(), run_id.clone(), valid.to_path_buf());
        tokio::task::spawn_blocking(move || -> Result<(), StageError> {
            let mut batch = Vec::with_capacity(ROW_BATCH);
            for row in sluice_validator::stored_rows(&ds, &run_id, &valid)? {
                let row = row?;
                batch.push(RowItem {
                    key: row.key,
                    item: row.item,
                });
                if batch.len() == ROW_BATCH && tx.blocking_send(std::mem::take(&mut batch)).is_err()
                {
                    return Ok(()); // the writer stopped; its error is reported below
                }
            }
            if !batch.is_empty() {
                let _ = tx.blocking_send(batch);
            }
            Ok(())
        })
    };
    let dataset = ds.name.clone();
    let mut written = 0;
    let mut write_result = Ok(());
    while let Some(batch) = rx.recv().await {
        match ctx.rows.put_rows(&dataset, run_id, &batch).await {
            Ok(n) => {
                written += n;
                if let Some(p) = &ctx.progress {
                    p.rows.fetch_add(n, Ordering::Relaxed);
                }
            }
            Err(e) => {
                write_result = Err(e);
                break;
            }
        }
    }
    drop(rx);
    reader
        .await
        .map_err(|e| StageError::internal(format!("row reader failed: {e}")))??;
    write_result.map(|()| written)
}

/// The local copy of an optional input object (the typed copies: absent when none was written).
async fn local_copy_of(
    ctx: &StageContext,
    obj: Option<&ObjectRef>,
    scratch: &Path,
) -> Result<Option<sluice_runtime::ports::LocalFile>, StageError> {
    match obj {
        Some(obj) => ctx.store.local_copy(obj, scratch).await.map(Some),
        None => Ok(None),
    }
}

/// The media type of Arrow IPC files (the stages' typed hand-off).
const ARROW_CONTENT_TYPE: &str = "application/vnd.apache.arrow.file";

async fn filter_stats(
    ctx: &StageContext,
    input: FilterStatsInput,
) -> Result<FilterStatsOutput, StageError> {
    let ds = ctx.dataset(&input.dataset)?;
    let scratch = ctx.scratch()?;
    let valid = ctx.store.local_copy(&input.valid, scratch.path()).await?;
    let valid_arrow = local_copy_of(ctx, input.valid_arrow.as_ref(), scratch.path()).await?;
    let filtered_path = scratch.path().join("filtered.csv");
    let filtered_arrow_path = scratch.path().join("filtered.arrow");
    let stats_path = scratch.path().join("stats.json");
    let report = {
        let (ds, src, f, fa, s, as_of) = (
            ds.clone(),
            valid.path().to_path_buf(),
            filtered_path.clone(),
            filtered_arrow_path.clone(),
            stats_path.clone(),
            input.as_of,
        );
        let src_arrow = valid_arrow.as_ref().map(|a| a.path().to_path_buf());
        blocking("filter and compute stats", move || match src_arrow {
            Some(sa) => {
                sluice_filter_stats::filter_stats_columnar(&ds, &src, &sa, as_of, &f, &fa, &s)
            }
            None => sluice_filter_stats::filter_stats(&ds, &src, as_of, &f, &s),
        })
        .await?
    };
    let keys = ctx.keys(&input.run_id);
    let (filtered, stats_object) = (keys.filtered(), keys.stats());
    ctx.store
        .put_file(&filtered, &filtered_path, "text/csv")
        .await?;
    let filtered_arrow = if valid_arrow.is_some() {
        let obj = keys.filtered_arrow();
        ctx.store
            .put_file(&obj, &filtered_arrow_path, ARROW_CONTENT_TYPE)
            .await?;
        Some(obj)
    } else {
        None
    };
    ctx.store
        .put_file(&stats_object, &stats_path, "application/json")
        .await?;
    Ok(FilterStatsOutput {
        filtered_rows: report.filtered_rows,
        filtered,
        filtered_arrow,
        stats_object,
        stats: report.stats,
    })
}

async fn partition(
    ctx: &StageContext,
    input: PartitionInput,
) -> Result<PartitionOutput, StageError> {
    let ds = ctx.dataset(&input.dataset)?;
    let scratch = ctx.scratch()?;
    let filtered = ctx
        .store
        .local_copy(&input.filtered, scratch.path())
        .await?;
    let filtered_arrow = local_copy_of(ctx, input.filtered_arrow.as_ref(), scratch.path()).await?;
    let out_dir = scratch.path().join("partitions");
    let written = {
        let (ds, run_id, src, out) = (
            ds.clone(),
            input.run_id.clone(),
            filtered.path().to_path_buf(),
            out_dir.clone(),
        );
        let src_arrow = filtered_arrow.as_ref().map(|a| a.path().to_path_buf());
        blocking("partition", move || match src_arrow {
            Some(sa) => sluice_partitioner::partition_columnar(&ds, &run_id, &src, &sa, &out),
            None => sluice_partitioner::partition(&ds, &run_id, &src, &out),
        })
        .await?
    };
    // The folders of the Parquet files, for the catalog (before the keys become object references).
    let table = catalog_table(&ctx.config, &ds);
    let folders = if table.is_some() {
        sluice_partitioner::catalog::partitions_of(&ds, &written)
    } else {
        Vec::new()
    };
    let mut all = Vec::with_capacity(written.len());
    for key in written {
        let obj = ObjectRef::new(&ctx.config.buckets.curated, &key);
        let content_type = if key.ends_with(".parquet") {
            "application/vnd.apache.parquet"
        } else {
            "text/csv"
        };
        ctx.store
            .put_file(&obj, &out_dir.join(&key), content_type)
            .await?;
        all.push(obj);
    }
    // Every partition goes into the manifest; messages name only the first few (payload limits).
    let manifest = ctx.keys(&input.run_id).partition_manifest();
    let manifest_path = scratch.path().join("partitions.json");
    let json = serde_json::to_vec_pretty(&all).map_err(|e| StageError::internal(e.to_string()))?;
    std::fs::write(&manifest_path, json)?;
    ctx.store
        .put_file(&manifest, &manifest_path, "application/json")
        .await?;
    let current = crate::supersede::earlier_partitions(ctx, &input.run_id).await?;
    if !current {
        // The object was replaced during this run: its partitions are gone, the newer run writes its own.
        all.clear();
    }
    let catalog = match table {
        Some(table) if current => Some(
            register(ctx.catalog.as_ref(), &table, folders)
                .instrument(step("catalog"))
                .await?,
        ),
        _ => None,
    };
    let count = all.len() as u64;
    all.truncate(PARTITIONS_LISTED);
    Ok(PartitionOutput {
        count,
        partitions: all,
        manifest,
        catalog,
    })
}

/// The catalog table of a dataset with `[dataset.catalog]`: an external Parquet table over its folder in
/// the curated bucket (`{curated}/{dataset}/`), its columns typed from the spec
/// ([`sluice_partitioner::catalog::hive_type`]) and named in lower case (catalogs compare names without
/// case; Athena matches Parquet columns the same way), partitioned by the folder keys (`year`, `month`,
/// ...). None for a dataset without a catalog.
pub fn catalog_table(config: &Config, ds: &Dataset) -> Option<TableSpec> {
    let catalog = ds.catalog.as_ref()?;
    Some(TableSpec {
        table: TableRef {
            database: catalog.database.clone(),
            table: catalog.table.clone(),
        },
        description: format!(
            "Sluice dataset {}: the Parquet partitions its partitioner writes",
            ds.name
        ),
        bucket: config.buckets.curated.clone(),
        prefix: format!("{}/", ds.name),
        format: TableFormat::Parquet,
        columns: ds
            .columns
            .iter()
            .map(|c| CatalogColumn {
                name: c.name.to_lowercase(),
                hive_type: sluice_partitioner::catalog::hive_type(c.ty).to_string(),
            })
            .collect(),
        partition_keys: sluice_partitioner::catalog::partition_keys(ds),
    })
}

/// Makes the catalog table match the spec and registers the partitions a run wrote
/// ([`sluice_partitioner::catalog::partitions_of`]).
async fn register(
    catalog: &dyn Catalog,
    table: &TableSpec,
    folders: Vec<(Vec<String>, String)>,
) -> Result<CatalogOutput, StageError> {
    let table_change = catalog.ensure_table(table).await?;
    let partitions: Vec<CatalogPartition> = folders
        .into_iter()
        .map(|(values, prefix)| CatalogPartition { values, prefix })
        .collect();
    let added = catalog.add_partitions(table, &partitions).await?;
    tracing::info!(
        table = %table.table,
        table_change = table_change.as_str(),
        partitions = partitions.len(),
        added = added.added,
        "catalog table up to date"
    );
    Ok(CatalogOutput {
        table: table.table.to_string(),
        table_change,
        partitions: partitions.len() as u64,
        partitions_added: added.added,
    })
}

async fn plot(ctx: &StageContext, input: PlotInput) -> Result<PlotOutput, StageError> {
    let ds = ctx.dataset(&input.dataset)?;
    let scratch = ctx.scratch()?;
    let filtered = ctx
        .store
        .local_copy(&input.filtered, scratch.path())
        .await?;
    let filtered_arrow = local_copy_of(ctx, input.filtered_arrow.as_ref(), scratch.path()).await?;
    let out_dir = scratch.path().join("plots");
    std::fs::create_dir_all(&out_dir)?;
    let names = {
        let (ds, src, out) = (ds.clone(), filtered.path().to_path_buf(), out_dir.clone());
        let src_arrow = filtered_arrow.as_ref().map(|a| a.path().to_path_buf());
        blocking("plot", move || match src_arrow {
            Some(sa) => sluice_plotter::plot_columnar(&ds, &src, &sa, &out),
            None => sluice_plotter::plot(&ds, &src, &out),
        })
        .await?
    };
    let keys = ctx.keys(&input.run_id);
    let mut plots = Vec::with_capacity(names.len());
    for name in names {
        let obj = keys.plot(&name);
        ctx.store
            .put_file(&obj, &out_dir.join(&name), "image/png")
            .await?;
        plots.push(obj);
    }
    Ok(PlotOutput { plots })
}

async fn load(ctx: &StageContext, input: LoadInput) -> Result<LoadOutput, StageError> {
    let ds = ctx.dataset(&input.dataset)?;
    if !ds.load {
        return Err(StageError::invalid_input(format!(
            "dataset {:?} is not loaded (load = true is not set in its spec), yet a load was asked for",
            ds.name.as_str()
        )));
    }
    let warehouse = ctx.warehouse.get(&ctx.config, &ds).await?;
    let scratch = ctx.scratch()?;
    let valid = ctx.store.local_copy(&input.valid, scratch.path()).await?;
    let valid_arrow = local_copy_of(ctx, input.valid_arrow.as_ref(), scratch.path()).await?;
    let source_key = format!("{}/{}", input.source.bucket, input.source.key);
    let report = warehouse
        .load(sluice_loader::LoadRequest {
            ds: &ds,
            run_id: &input.run_id,
            source_key: &source_key,
            valid_csv: valid.path(),
            valid_arrow: valid_arrow.as_ref().map(|a| a.path()),
            // A run whose object was replaced meanwhile must not put its rows back over the newer
            // version's: checked under the load's lock, just before it commits.
            before_commit: Some(Box::new(|| {
                Box::pin(crate::supersede::still_current(ctx, &input.run_id))
            })),
        })
        .await?;
    Ok(LoadOutput {
        table: report.table,
        loaded_rows: report.rows,
        replaced_rows: report.replaced,
    })
}

async fn notify(ctx: &StageContext, input: NotifyInput) -> Result<NotifyOutput, StageError> {
    let ds = ctx.dataset(&input.dataset)?;
    let scratch = ctx.scratch()?;
    let attachment = match &input.notice {
        Notice::InvalidRows { invalid, .. } => {
            Some(ctx.store.local_copy(invalid, scratch.path()).await?)
        }
        _ => None,
    };
    let email = {
        // Scoped: the compose context borrows a closure that is not Send, and must not live across an await.
        let store = ctx.store.clone();
        let uri_of = move |o: &ObjectRef| store.uri(o);
        let compose_ctx = sluice_notifier::ComposeContext {
            invalid_rows_csv: attachment.as_ref().map(|a| a.path()),
            uri_of: &uri_of,
            now: chrono::Utc::now(),
        };
        sluice_notifier::compose(&ds, &input, &compose_ctx)?
    };
    let Some(email) = email else {
        return Ok(NotifyOutput { emails: Vec::new() });
    };
    let sent = send_email(ctx, email, input.run_id.as_str()).await?;
    Ok(NotifyOutput { emails: vec![sent] })
}

impl StageContext {
    fn batch(&self, name: &str) -> Result<&sluice_spec::config::Batch, StageError> {
        self.config.batch(name).ok_or_else(|| {
            StageError::invalid_input(format!(
                "batch {name:?} is not defined in {}",
                self.config.path.display()
            ))
        })
    }

    async fn batch_warehouse(&self, batch: &str) -> Result<&sluice_loader::Warehouse, StageError> {
        self.warehouse
            .get_or(&self.config, || {
                StageError::invalid_input(format!(
                    "batch {batch:?} needs a warehouse but none is configured: set [warehouse] url = \
                     \"postgres://user@host:5432/database\" in {} or the SLUICE_WAREHOUSE_URL variable",
                    self.config.path.display()
                ))
            })
            .await
    }
}

/// A batch's analytics queries: each result replaces its table in the analytics schema.
async fn analytics(
    ctx: &StageContext,
    input: AnalyticsInput,
) -> Result<AnalyticsOutput, StageError> {
    let batch = ctx.batch(&input.batch)?;
    let warehouse = ctx.batch_warehouse(&batch.name).await?;
    let tables = warehouse
        .run_analytics(&batch.name, &batch.analytics, input.as_of)
        .await?;
    Ok(AnalyticsOutput { tables })
}

/// A batch's analytics tables as CSV in the curated bucket:
/// `{batch}/analytics/{name}/as_of={date}/{name}.csv`.
async fn export(ctx: &StageContext, input: ExportInput) -> Result<ExportOutput, StageError> {
    let batch = ctx.batch(&input.batch)?;
    let warehouse = ctx.batch_warehouse(&batch.name).await?;
    let scratch = ctx.scratch()?;
    let mut exports = Vec::with_capacity(batch.analytics.len());
    for q in &batch.analytics {
        let file = scratch.path().join(format!("{}.csv", q.name));
        let rows = warehouse.export_table(&q.name, &file).await?;
        let object = sluice_spec::keys::analytics_export(
            &ctx.config.buckets.curated,
            &batch.name,
            &q.name,
            input.as_of,
        );
        ctx.store.put_file(&object, &file, "text/csv").await?;
        exports.push(AnalyticsExport {
            name: q.name.clone(),
            object,
            rows,
        });
    }
    Ok(ExportOutput { exports })
}

/// The batch's e-mail: success summary or failure alert (`[batch.notify]`).
async fn batch_notify(
    ctx: &StageContext,
    input: BatchNotifyInput,
) -> Result<NotifyOutput, StageError> {
    let batch = ctx.batch(&input.batch)?;
    let email = {
        let store = ctx.store.clone();
        let uri_of = move |o: &ObjectRef| store.uri(o);
        let compose_ctx = sluice_notifier::ComposeContext {
            invalid_rows_csv: None,
            uri_of: &uri_of,
            now: chrono::Utc::now(),
        };
        sluice_notifier::batch::compose_batch(batch, &input, &compose_ctx)?
    };
    let Some(email) = email else {
        return Ok(NotifyOutput { emails: Vec::new() });
    };
    let sent = send_email(ctx, email, input.run_id.as_str()).await?;
    Ok(NotifyOutput { emails: vec![sent] })
}

/// Sends a composed e-mail through the mailer port.
async fn send_email(
    ctx: &StageContext,
    email: sluice_notifier::Email,
    run_id: &str,
) -> Result<EmailSent, StageError> {
    let outgoing = OutgoingEmail {
        from: email.from,
        to: email.to,
        subject: email.subject,
        raw: email.raw,
    };
    let sent_to = ctx.mailer.send(&outgoing).await?;
    tracing::info!(%run_id, to = ?outgoing.to, subject = %outgoing.subject, %sent_to, "e-mail sent");
    Ok(EmailSent {
        to: outgoing.to,
        subject: outgoing.subject,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(load: bool) -> Config {
        let spec = format!(
            "[[dataset]]\nname = \"orders\"\nload = {load}\n[[dataset.columns]]\nname = \"id\"\ntype = \"integer\"\n"
        );
        Config::parse(std::path::Path::new("/srv/sluice.toml"), &spec).unwrap()
    }

    /// AWS mode has no embedded warehouse: a dataset to load with no URL is refused before its file is
    /// validated, with what to set.
    #[test]
    fn a_dataset_to_load_without_a_warehouse_is_refused_up_front() {
        let (with, without) = (config(true), config(false));
        let aws = WarehouseHandle::new(None, None);
        let e = aws.check_configured(&with, &with.datasets[0]).unwrap_err();
        assert_eq!(e.error, ErrorName::InvalidInput);
        assert!(
            e.cause.contains("\"orders\"")
                && e.cause.contains("[warehouse] url")
                && e.cause.contains("SLUICE_WAREHOUSE_URL")
                && e.cause.contains("/srv/sluice.toml"),
            "{e}"
        );
        assert!(aws.check_configured(&without, &without.datasets[0]).is_ok());
        let embedded = WarehouseHandle::new(None, Some(PathBuf::from("/tmp/warehouse.db")));
        assert!(embedded.check_configured(&with, &with.datasets[0]).is_ok());
        let url = WarehouseHandle::new(Some("postgres://db/x".into()), None);
        assert!(url.check_configured(&with, &with.datasets[0]).is_ok());
    }
}
