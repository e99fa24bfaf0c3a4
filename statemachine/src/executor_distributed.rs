//! How the executor runs a Map Run: a Map state in Distributed mode, or one with an `ItemReader`,
//! `ItemBatcher` or `ResultWriter` (fields only Distributed mode takes). See [`crate::distributed`]
//! for the shapes.
//!
//! The history of the parent shows, as Step Functions records it: `MapStateStarted` (its `length`
//! is 0 when the items come from an ItemReader: they are read inside the Map Run), `MapRunStarted`
//! (`mapRunArn`), then `MapRunSucceeded` or `MapRunFailed` (`error`, `cause`), then
//! `MapStateSucceeded` / `MapStateFailed`. Each child execution (an item, or a batch of them) runs
//! out of the parent's history, without the parent's variables. The Map Run fails with
//! States.ExceedToleratedFailureThreshold when more items failed than `ToleratedFailureCount` /
//! `ToleratedFailurePercentage` allow; both default to 0, so without them one failed item fails
//! it (Developer Guide, "Tolerated failure threshold for Distributed Map state"); the children not
//! finished then are stopped and reported PENDING. A tolerated failure shows in the results as the
//! child's record (ResultWriter (Map): "If a child workflow execution fails, Step Functions returns
//! its execution result unchanged").
//!
//! `ItemSelector` is applied to every item before any child starts (the batches are made of the
//! selected items), so an ItemSelector error fails the Map Run rather than one child.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};

use super::{
    ACCOUNT, Assigned, Executor, MapItem, REGION, Run, Tolerance, Track, apply_output_path,
    apply_result_path, check_size, is_distributed, map_inputs, non_negative_at, percentage_at,
};
use crate::distributed::{
    Batcher, Child, GET_OBJECT, LIST_OBJECTS_V2, MapRun, Outcome, PUT_OBJECT, RESULT_WRITER_FAILED,
    ReaderConfig, Transformation, WriterConfig, items_of_object, object_item, result_files,
    results,
};
use crate::error::{self, StatesError};
use crate::jsonata::{Template, expression_text};
use crate::model::MapState;
use crate::objects::ObjectSource;
use crate::path::{Path, kind_of};
use crate::template::PayloadTemplate;
use crate::value::{as_integer, compact};
use crate::variables::Variables;

impl Executor {
    /// Where Distributed Map states read their items (`ItemReader`, S3 GetObject/ListObjectsV2)
    /// and write their results (`ResultWriter`, S3 PutObject). Without it, a Map with an ItemReader
    /// fails with States.ItemReaderFailed, and one that exports its results with
    /// States.ResultWriterFailed.
    pub fn with_objects(mut self, objects: Arc<dyn ObjectSource>) -> Self {
        self.objects = Some(objects);
        self
    }
}

/// Whether a Map state runs as a Map Run (Distributed mode, or a field only that mode has).
pub(super) fn is_map_run(s: &MapState) -> bool {
    is_distributed(s)
        || s.item_reader.is_some()
        || s.item_batcher.is_some()
        || s.result_writer.is_some()
}

fn reader_failed(cause: impl Into<String>) -> StatesError {
    StatesError::new(error::ITEM_READER_FAILED, cause)
}

fn writer_failed(cause: impl Into<String>) -> StatesError {
    StatesError::new(RESULT_WRITER_FAILED, cause)
}

/// A string field of evaluated `Parameters`/`Arguments` (`Bucket`, `Key`, `Prefix`).
fn text_param<'v>(params: &'v Value, field: &str, what: &str) -> Result<Option<&'v str>, String> {
    match params.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "{what} \"{field}\" must be a string, got {}",
            kind_of(other)
        )),
    }
}

impl Run<'_> {
    /// One attempt of a Map state that runs as a Map Run (`effective` is the input after
    /// InputPath; `ctx` the state's context object).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn map_run_attempt(
        &self,
        name: &str,
        s: &MapState,
        raw: &Value,
        effective: &Value,
        ctx: &Value,
        entered_at: DateTime<Utc>,
        track: &Track,
        vars: &Variables,
    ) -> Result<(Value, Assigned), StatesError> {
        let (items, max_concurrency, tolerance) = if s.item_reader.is_some() {
            let (c, t) = self.map_run_limits(name, s, raw, effective, ctx, vars)?;
            (None, c, t)
        } else {
            let (items, c, t) = match s.jsonata.as_deref() {
                Some(j) => self.map_inputs_jsonata(name, s, j, raw, ctx, vars)?,
                None => map_inputs(name, s, effective, ctx, vars)?,
            };
            (Some(items), c, t)
        };
        self.record(
            track,
            "MapStateStarted",
            json!({"length": items.as_ref().map_or(0, Vec::len)}),
        );
        let run = self.new_map_run(name, s);
        self.record(track, "MapRunStarted", json!({"mapRunArn": run.arn}));
        let outcome = self
            .map_run_body(
                name,
                s,
                (raw, effective, ctx, vars),
                items,
                (max_concurrency, &tolerance),
                entered_at,
                track,
                &run,
            )
            .await;
        let result = match outcome {
            Ok(result) => result,
            Err(e) => {
                self.record(
                    track,
                    "MapRunFailed",
                    json!({"error": e.error, "cause": e.cause}),
                );
                self.record(
                    track,
                    "MapStateFailed",
                    json!({"error": e.error, "cause": e.cause}),
                );
                return Err(e);
            }
        };
        self.record(track, "MapRunSucceeded", json!({}));
        self.record(track, "MapStateSucceeded", json!({}));
        if let Some(j) = s.jsonata.as_deref() {
            return self.jsonata_finish(j, raw, result, ctx, vars);
        }
        let assigned = self.assign(&s.assign, &result, ctx, vars)?;
        let selected = match &s.result_selector {
            Some(t) => self.evaluate(t, &result, ctx, vars)?,
            None => result,
        };
        let merged = apply_result_path(&s.result_path, raw.clone(), selected)?;
        Ok((
            apply_output_path(&s.output_path, merged, ctx, vars)?,
            assigned,
        ))
    }

    /// The Map Run's ARN (`...:mapRun:{machine}/{Label or state name}:{id}`) and its id.
    fn new_map_run(&self, name: &str, s: &MapState) -> MapRun {
        let id = self.with_rng(crate::intrinsics::uuid_v4);
        let machine = &self.exec.state_machine_name;
        let label = s.label.as_deref().unwrap_or(name);
        MapRun {
            arn: format!("arn:aws:states:{REGION}:{ACCOUNT}:mapRun:{machine}/{label}:{id}"),
            state_machine_arn: format!(
                "arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{machine}/{label}"
            ),
            id,
        }
    }

    /// Reads (or takes) the items, makes the children's inputs, runs them and gives the Map's
    /// result.
    #[allow(clippy::too_many_arguments)]
    async fn map_run_body(
        &self,
        name: &str,
        s: &MapState,
        (raw, effective, ctx, vars): (&Value, &Value, &Value, &Variables),
        items: Option<Vec<Value>>,
        (max_concurrency, tolerance): (u64, &Tolerance),
        entered_at: DateTime<Utc>,
        track: &Track,
        run: &MapRun,
    ) -> Result<Value, StatesError> {
        let items = match items {
            Some(items) => items,
            None => self.read_items(name, s, raw, effective, ctx, vars).await?,
        };
        let total_items = items.len();
        let mut selected = Vec::with_capacity(total_items);
        for (index, item) in items.into_iter().enumerate() {
            selected
                .push(self.select_item(name, s, raw, effective, index, item, entered_at, vars)?);
        }
        let inputs: Vec<(Value, usize)> = match &s.item_batcher {
            Some(b) => self
                .batcher(b, s, raw, effective, ctx, vars)?
                .batch(selected)
                .map_err(|why| {
                    StatesError::runtime(format!("The ItemBatcher of Map state '{name}': {why}"))
                })?,
            None => selected.into_iter().map(|v| (v, 1)).collect(),
        };
        for (input, _) in &inputs {
            check_size(
                input,
                &format!("The input of a child execution of Map state '{name}'"),
            )?;
        }
        let mut children: Vec<Child> = inputs
            .into_iter()
            .map(|(input, items)| {
                let child = self.with_rng(crate::intrinsics::uuid_v4);
                Child {
                    // `...:execution:{machine}/{label}:{name}`, under the Map Run's machine.
                    execution_arn: format!(
                        "{}:{child}",
                        run.state_machine_arn
                            .replacen(":stateMachine:", ":execution:", 1)
                    ),
                    name: child,
                    input,
                    items,
                    start: None,
                    stop: None,
                    outcome: Outcome::Pending,
                }
            })
            .collect();
        let exceeded = self
            .run_children(
                name,
                s,
                &mut children,
                max_concurrency,
                tolerance,
                total_items,
                track,
            )
            .await;
        let result = self
            .write_results(name, s, raw, effective, ctx, vars, run, &children)
            .await;
        match exceeded {
            Some(e) => Err(e),
            None => result,
        }
    }

    /// Runs the children, `max_concurrency` at a time (0: all at once), until all are done or the
    /// failures exceed the tolerated threshold (then the error, and the children not done stay
    /// PENDING).
    #[allow(clippy::too_many_arguments)]
    async fn run_children(
        &self,
        name: &str,
        s: &MapState,
        children: &mut [Child],
        max_concurrency: u64,
        tolerance: &Tolerance,
        total_items: usize,
        track: &Track,
    ) -> Option<StatesError> {
        let limit = if max_concurrency == 0 {
            children.len().max(1)
        } else {
            usize::try_from(max_concurrency).unwrap_or(usize::MAX)
        };
        let processor = &s.item_processor;
        let start_id = track.get();
        let inputs: Vec<Value> = children.iter().map(|c| c.input.clone()).collect();
        let mut runs = futures_util::stream::iter(inputs.into_iter().enumerate())
            .map(|(index, input)| async move {
                let started = self.now();
                // A child execution: its own history (not the parent's), no outer variable.
                let child_track = Track::hidden(start_id);
                let result = self
                    .run_machine(
                        &processor.states,
                        &processor.start_at,
                        input,
                        &child_track,
                        Variables::new(),
                    )
                    .await;
                (index, started, self.now(), result)
            })
            .buffer_unordered(limit);
        let mut failed_items = 0usize;
        while let Some((index, start, stop, result)) = runs.next().await {
            let child = &mut children[index];
            child.start = Some(start);
            child.stop = Some(stop);
            child.outcome = match result {
                Ok(output) => Outcome::Succeeded(output),
                Err(e) => {
                    failed_items += child.items;
                    Outcome::Failed {
                        error: e.error,
                        cause: e.cause,
                    }
                }
            };
            let over = if tolerance.is_set() {
                tolerance.exceeded(failed_items, total_items)
            } else {
                failed_items > 0
            };
            if over {
                return Some(StatesError::new(
                    error::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                    format!(
                        "The specified tolerated failure threshold was exceeded: {failed_items} of {total_items} items of Map state '{name}' failed"
                    ),
                ));
            }
        }
        None
    }

    /// `MaxConcurrency` and the tolerated failures of a Map Run that reads its items (which
    /// `map_inputs` would look for in the input).
    fn map_run_limits(
        &self,
        name: &str,
        s: &MapState,
        raw: &Value,
        effective: &Value,
        ctx: &Value,
        vars: &Variables,
    ) -> Result<(u64, Tolerance), StatesError> {
        if let Some(j) = s.jsonata.as_deref() {
            let mut j = j.clone();
            j.items = Some(Template::compile(&json!([])).map_err(StatesError::runtime)?);
            let (_, c, t) = self.map_inputs_jsonata(name, s, &j, raw, ctx, vars)?;
            return Ok((c, t));
        }
        let max_concurrency = match (&s.max_concurrency, &s.max_concurrency_path) {
            (Some(n), _) => *n,
            (None, Some(p)) => non_negative_at(p, effective, ctx, vars, "MaxConcurrencyPath")?,
            (None, None) => 0,
        };
        let count = match (&s.tolerated_failure_count, &s.tolerated_failure_count_path) {
            (Some(n), _) => Some(*n),
            (None, Some(p)) => Some(non_negative_at(
                p,
                effective,
                ctx,
                vars,
                "ToleratedFailureCountPath",
            )?),
            (None, None) => None,
        };
        let percentage = match (
            &s.tolerated_failure_percentage,
            &s.tolerated_failure_percentage_path,
        ) {
            (Some(p), _) => Some(*p),
            (None, Some(p)) => Some(percentage_at(p, effective, ctx, vars)?),
            (None, None) => None,
        };
        Ok((max_concurrency, Tolerance { count, percentage }))
    }

    /// The input of one item: `ItemSelector` (with `$$.Map.Item`), else the item.
    #[allow(clippy::too_many_arguments)]
    fn select_item(
        &self,
        name: &str,
        s: &MapState,
        raw: &Value,
        effective: &Value,
        index: usize,
        item: Value,
        entered_at: DateTime<Utc>,
        vars: &Variables,
    ) -> Result<Value, StatesError> {
        match (s.jsonata.as_deref(), &s.item_selector) {
            (Some(j), _) => self.item_input_jsonata(name, j, raw, index, item, entered_at, vars),
            (None, Some(t)) => {
                let ctx = self.context(
                    name,
                    entered_at,
                    0,
                    None,
                    Some(MapItem {
                        index,
                        value: &item,
                    }),
                );
                self.evaluate(t, effective, &ctx, vars)
            }
            (None, None) => Ok(item),
        }
    }

    /// The `Parameters` (JSONPath) or `Arguments` (JSONata) of an ItemReader or ResultWriter.
    #[allow(clippy::too_many_arguments)]
    fn holder_arguments(
        &self,
        s: &MapState,
        holder: &Map<String, Value>,
        what: &str,
        raw: &Value,
        effective: &Value,
        ctx: &Value,
        vars: &Variables,
    ) -> Result<Value, StatesError> {
        if s.jsonata.is_some() {
            return match holder.get("Arguments") {
                Some(a) => Template::compile(a)
                    .map_err(StatesError::runtime)?
                    .evaluate(&self.env(raw, ctx, vars), &format!("{what}.Arguments")),
                None => Ok(json!({})),
            };
        }
        match holder.get("Parameters") {
            Some(p) => {
                let t = PayloadTemplate::compile(p).map_err(StatesError::runtime)?;
                self.evaluate(&t, effective, ctx, vars)
            }
            None => Ok(json!({})),
        }
    }

    /// An integer of a Distributed Map's configuration: a literal, a `{% %}` expression (JSONata
    /// states) or `{field}Path` (a reference path into the effective input).
    #[allow(clippy::too_many_arguments)]
    fn config_count(
        &self,
        s: &MapState,
        holder: Option<&Map<String, Value>>,
        field: &str,
        raw: &Value,
        effective: &Value,
        ctx: &Value,
        vars: &Variables,
    ) -> Result<Option<u64>, StatesError> {
        let Some(h) = holder else { return Ok(None) };
        if let Some(v) = h.get(field) {
            let v = match v {
                Value::String(text) if s.jsonata.is_some() && expression_text(text).is_some() => {
                    Template::compile(v)
                        .map_err(StatesError::runtime)?
                        .evaluate(&self.env(raw, ctx, vars), field)?
                }
                v => v.clone(),
            };
            return as_integer(&v)
                .and_then(|n| u64::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    crate::jsonata::query_error(format!(
                        "{field} must be a non-negative integer, got {}",
                        compact(&v)
                    ))
                });
        }
        let path_field = format!("{field}Path");
        match h.get(&path_field) {
            Some(Value::String(p)) => {
                let path = Path::parse_reference(p).map_err(StatesError::runtime)?;
                non_negative_at(&path, effective, ctx, vars, &path_field).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// `ItemBatcher`, evaluated.
    fn batcher(
        &self,
        b: &Value,
        s: &MapState,
        raw: &Value,
        effective: &Value,
        ctx: &Value,
        vars: &Variables,
    ) -> Result<Batcher, StatesError> {
        let h = b.as_object();
        let positive = |field: &str| -> Result<Option<u64>, StatesError> {
            match self.config_count(s, h, field, raw, effective, ctx, vars)? {
                Some(0) => Err(StatesError::runtime(format!(
                    "The ItemBatcher {field} must be a positive integer, got 0"
                ))),
                n => Ok(n),
            }
        };
        let max_items = positive("MaxItemsPerBatch")?;
        let max_bytes = positive("MaxInputBytesPerBatch")?;
        let batch_input = match h.and_then(|h| h.get("BatchInput")) {
            None => None,
            Some(t) if s.jsonata.is_some() => Some(
                Template::compile(t)
                    .map_err(StatesError::runtime)?
                    .evaluate(&self.env(raw, ctx, vars), "ItemBatcher.BatchInput")?,
            ),
            Some(t) => {
                let t = PayloadTemplate::compile(t).map_err(StatesError::runtime)?;
                Some(self.evaluate(&t, effective, ctx, vars)?)
            }
        };
        Ok(Batcher {
            max_items,
            max_bytes,
            batch_input,
        })
    }

    /// The items of an `ItemReader`: one object's (s3:getObject) or the objects under a prefix
    /// (s3:listObjectsV2), at most `MaxItems` (0 or absent: all).
    async fn read_items(
        &self,
        name: &str,
        s: &MapState,
        raw: &Value,
        effective: &Value,
        ctx: &Value,
        vars: &Variables,
    ) -> Result<Vec<Value>, StatesError> {
        let Some(reader) = s.item_reader.as_ref().and_then(Value::as_object) else {
            return Err(reader_failed(format!(
                "The ItemReader of Map state '{name}' must be an object"
            )));
        };
        let resource = reader
            .get("Resource")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let config_value = reader.get("ReaderConfig");
        let config = ReaderConfig::from_value(config_value)
            .map_err(|why| reader_failed(format!("Map state '{name}': {why}")))?;
        let params = self.holder_arguments(s, reader, "ItemReader", raw, effective, ctx, vars)?;
        let max_items = self.config_count(
            s,
            config_value.and_then(Value::as_object),
            "MaxItems",
            raw,
            effective,
            ctx,
            vars,
        )?;
        let Some(objects) = self.exec.objects.as_ref() else {
            return Err(reader_failed(format!(
                "Map state '{name}' reads its items from S3 ({resource}), but no object store is configured: \
                 run `sluice statemachine exec` with --objects DIR (bucket B is the folder DIR/B), \
                 or give the Executor one with with_objects"
            )));
        };
        let param = |field: &str| {
            text_param(&params, field, "ItemReader")
                .map_err(|why| reader_failed(format!("Map state '{name}': {why}")))
        };
        let bucket = param("Bucket")?.ok_or_else(|| {
            reader_failed(format!(
                "The ItemReader of Map state '{name}' names no Bucket (Parameters.Bucket)"
            ))
        })?;
        let mut items = match resource {
            GET_OBJECT => {
                let key = param("Key")?.ok_or_else(|| {
                    reader_failed(format!(
                        "The ItemReader of Map state '{name}' names no Key (Parameters.Key) of the object to read"
                    ))
                })?;
                let bytes = objects.get(bucket, key).await.map_err(|why| {
                    reader_failed(format!(
                        "Map state '{name}' could not read s3://{bucket}/{key}: {why}"
                    ))
                })?;
                items_of_object(&bytes, &config).map_err(|why| {
                    reader_failed(format!(
                        "Map state '{name}' could not read items from s3://{bucket}/{key}: {why}"
                    ))
                })?
            }
            LIST_OBJECTS_V2 => {
                let prefix = param("Prefix")?.unwrap_or_default();
                objects
                    .list(bucket, prefix)
                    .await
                    .map_err(|why| {
                        reader_failed(format!(
                            "Map state '{name}' could not list s3://{bucket}/{prefix}: {why}"
                        ))
                    })?
                    .iter()
                    .map(object_item)
                    .collect()
            }
            other => {
                return Err(reader_failed(format!(
                    "The ItemReader of Map state '{name}' has Resource {other:?}; it reads with \
                     {GET_OBJECT} or {LIST_OBJECTS_V2}"
                )));
            }
        };
        if let Some(n) = max_items.filter(|n| *n > 0) {
            items.truncate(usize::try_from(n).unwrap_or(usize::MAX));
        }
        Ok(items)
    }

    /// The Map's result: the children's results (by the WriterConfig's transformation, COMPACT
    /// without a ResultWriter), or, when they are exported, where (`{"MapRunArn",
    /// "ResultWriterDetails": {"Bucket", "Key"}}`, Key being the manifest's).
    #[allow(clippy::too_many_arguments)]
    async fn write_results(
        &self,
        name: &str,
        s: &MapState,
        raw: &Value,
        effective: &Value,
        ctx: &Value,
        vars: &Variables,
        run: &MapRun,
        children: &[Child],
    ) -> Result<Value, StatesError> {
        let Some(writer) = &s.result_writer else {
            return Ok(Value::Array(results(
                run,
                children,
                Transformation::Compact,
            )));
        };
        let Some(writer) = writer.as_object() else {
            return Err(writer_failed(format!(
                "The ResultWriter of Map state '{name}' must be an object"
            )));
        };
        let resource = writer.get("Resource").and_then(Value::as_str);
        let config = WriterConfig::from_value(writer.get("WriterConfig"), resource.is_some())
            .map_err(|why| writer_failed(format!("Map state '{name}': {why}")))?;
        let Some(resource) = resource else {
            return Ok(Value::Array(results(run, children, config.transformation)));
        };
        if resource != PUT_OBJECT {
            return Err(writer_failed(format!(
                "The ResultWriter of Map state '{name}' has Resource {resource:?}; it writes with {PUT_OBJECT}"
            )));
        }
        let params = self.holder_arguments(s, writer, "ResultWriter", raw, effective, ctx, vars)?;
        let param = |field: &str| {
            text_param(&params, field, "ResultWriter")
                .map_err(|why| writer_failed(format!("Map state '{name}': {why}")))
        };
        let bucket = param("Bucket")?.ok_or_else(|| {
            writer_failed(format!(
                "The ResultWriter of Map state '{name}' names no Bucket (Parameters.Bucket)"
            ))
        })?;
        let prefix = param("Prefix")?.unwrap_or_default();
        let Some(objects) = self.exec.objects.as_ref() else {
            return Err(writer_failed(format!(
                "Map state '{name}' writes its results to S3 (ResultWriter), but no object store is configured: \
                 run `sluice statemachine exec` with --objects DIR (bucket B is the folder DIR/B), \
                 or give the Executor one with with_objects"
            )));
        };
        let files = result_files(run, bucket, prefix, children, config);
        let mut manifest = String::new();
        for file in files {
            objects
                .put(bucket, &file.key, file.bytes)
                .await
                .map_err(|why| {
                    writer_failed(format!(
                        "Map state '{name}' could not write s3://{bucket}/{}: {why}",
                        file.key
                    ))
                })?;
            manifest = file.key;
        }
        Ok(json!({
            "MapRunArn": run.arn,
            "ResultWriterDetails": {"Bucket": bucket, "Key": manifest}
        }))
    }
}
