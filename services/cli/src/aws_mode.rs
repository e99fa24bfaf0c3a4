//! AWS mode: `sluice worker`, `sluice dispatcher`, `sluice deploy`, `sluice runs --aws`.
//!
//! Every process reads the dataset spec and finds AWS only through the SDK's standard settings
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials...). Resource names come from the spec:
//! queues `{queue_prefix}{stage}` and `{queue_prefix}events`, each with a `-dlq` dead-letter queue; the
//! state machine `[aws] state_machine`; the tables `[aws] runs_table` / `rows_table`; the buckets.

mod deploy;
mod dispatcher;
mod worker;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use sluice_core::aws::{AwsClients, DynamoRunStore};
use sluice_core::config::Config;
use sluice_core::ports::RunStore;
use sluice_proto::{RunId, Stage};
use tokio::sync::watch;

pub use deploy::deploy;
pub use dispatcher::dispatcher;
pub use worker::worker;

use crate::report;

/// The name of a stage's queue.
pub fn stage_queue(config: &Config, stage: Stage) -> String {
    format!("{}{stage}", config.aws.queue_prefix)
}

/// The name of the queue S3 event notifications go to.
pub fn events_queue(config: &Config) -> String {
    format!("{}events", config.aws.queue_prefix)
}

fn load_config(path: &Path) -> anyhow::Result<Arc<Config>> {
    Config::load(path).map(Arc::new).map_err(|e| {
        if e.line == 0 && !path.exists() {
            anyhow::anyhow!(
                "{}: no dataset spec here; pass --config FILE (examples: examples/sluice.toml)",
                path.display()
            )
        } else {
            anyhow::anyhow!("{e}")
        }
    })
}

/// The URL of a queue `sluice deploy` created.
async fn queue_url(sqs: &aws_sdk_sqs::Client, name: &str) -> anyhow::Result<String> {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => out
            .queue_url
            .ok_or_else(|| anyhow::anyhow!("SQS answered GetQueueUrl {name} without a URL")),
        Err(e) => {
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_does_not_exist())
            {
                anyhow::bail!(
                    "SQS queue {name} does not exist: run `sluice deploy` first (with the same --config)"
                )
            }
            Err(anyhow::anyhow!(
                "SQS GetQueueUrl {name} failed: {}",
                sdk_error_text(&e)
            ))
        }
    }
}

/// An SDK error with its sources: the top-level text is often just "dispatch failure".
fn sdk_error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A channel that turns true on SIGTERM or SIGINT (Ctrl-C), for a graceful shutdown.
fn shutdown_signal() -> anyhow::Result<watch::Receiver<bool>> {
    let (tx, rx) = watch::channel(false);
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        #[cfg(unix)]
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        };
        #[cfg(not(unix))]
        let name = {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        };
        tracing::info!(signal = name, "shutting down");
        let _ = tx.send(true);
    });
    Ok(rx)
}

async fn run_store(config: &Path) -> anyhow::Result<DynamoRunStore> {
    let config = load_config(config)?;
    let clients = AwsClients::from_env().await;
    Ok(DynamoRunStore::new(
        clients.dynamodb,
        config.aws.runs_table.clone(),
    ))
}

pub async fn runs_list(config: &Path, limit: u64, json: bool) -> anyhow::Result<ExitCode> {
    let store = run_store(config).await?;
    let runs = store
        .list_runs(limit)
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?;
    if json {
        for r in &runs {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        print!("{}", report::table(&runs));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn runs_show(config: &Path, run_id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let store = run_store(config).await?;
    let id = RunId::parse(run_id).map_err(|e| anyhow::anyhow!(e))?;
    let Some(run) = store
        .get_run(&id)
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?
    else {
        anyhow::bail!(
            "no run {run_id} in DynamoDB table {} (see `sluice runs list --aws`)",
            store.table()
        );
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        print!("{}", report::human(&run));
        let stages = store
            .stage_statuses(&id)
            .await
            .map_err(|e| anyhow::anyhow!(e.cause))?;
        if !stages.is_empty() {
            let list: Vec<String> = stages
                .iter()
                .map(|(stage, status)| format!("{stage} {status}"))
                .collect();
            println!("  stages: {}", list.join(", "));
        }
    }
    Ok(ExitCode::SUCCESS)
}
