//! AWS mode's composition roots: which AWS adapters go with which library for `sluice worker`,
//! `sluice dispatcher`, `sluice deploy` and `sluice runs --aws`.
//!
//! Every process reads the dataset spec and finds AWS only through the SDK's standard settings
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials...); resource names come from the spec
//! (`sluice_aws::provision`).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sluice_aws::provision::{self, events_queue, stage_queue};
use sluice_aws::{
    AwsClients, DynamoRowSink, DynamoRunStore, S3ObjectStore, SesMailer, SfnStateMachines,
    SfnTaskCallbacks, SfnWorkflow, SqsWorkQueue,
};
use sluice_dispatcher::{Dispatcher, run_dispatcher};
use sluice_pipeline::StageContext;
use sluice_pipeline::faults::Faults;
use sluice_pipeline::summary::RecordingHandler;
use sluice_proto::{RunId, Stage};
use sluice_runtime::runs::RunStore;
use sluice_runtime::shutdown;
use sluice_runtime::worker::{WorkerSettings, run_worker};

use crate::{load_config, report};

/// `sluice worker STAGE`: the stage's queue -> the pipeline's stage dispatch (with run bookkeeping)
/// -> Step Functions.
pub async fn worker(
    config_path: &Path,
    stage: Stage,
    concurrency: usize,
    lease: Duration,
    grace: Duration,
) -> anyhow::Result<ExitCode> {
    if lease < Duration::from_secs(3) {
        anyhow::bail!("--lease-seconds must be at least 3: the lease is renewed every third of it");
    }
    let config = load_config(config_path)?;
    let clients = AwsClients::from_env().await;
    let url = sluice_aws::queue_url(&clients.sqs, &stage_queue(&config, stage))
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?;
    let scratch_root = std::env::temp_dir().join(format!("sluice-{stage}-{}", std::process::id()));
    let runs: Arc<DynamoRunStore> = Arc::new(DynamoRunStore::new(
        clients.dynamodb.clone(),
        config.aws.runs_table.clone(),
    ));
    let ctx = StageContext {
        config: config.clone(),
        store: Arc::new(S3ObjectStore::new(clients.s3.clone())),
        rows: Arc::new(DynamoRowSink::new(
            clients.dynamodb.clone(),
            config.aws.rows_table.clone(),
        )),
        runs: runs.clone(),
        mailer: Arc::new(SesMailer::new(clients.ses.clone())),
        scratch_root: scratch_root.clone(),
        progress: None,
        faults: Arc::new(Faults::from_env()?),
        warehouse: Arc::new(crate::warehouse_handle(&config, None)),
        catalog: Arc::new(sluice_aws::GlueCatalog::new(clients.glue.clone())),
    };
    let handler = Arc::new(RecordingHandler { ctx, runs });
    let settings = WorkerSettings {
        concurrency: concurrency.max(1),
        lease,
        extend_every: lease / 3,
        // A third of the shortest HeartbeatSeconds of this stage's states in pipeline.asl.json.
        heartbeat_every: sluice_pipeline::definition::heartbeat_every(stage),
        grace,
        ..WorkerSettings::new(stage)
    };
    let shutdown = shutdown::on_signal()?;
    tracing::info!(%stage, queue = %url, "listening");
    let result = run_worker(
        Arc::new(SqsWorkQueue::new(clients.sqs.clone(), url)),
        Arc::new(SfnTaskCallbacks::new(clients.sfn.clone())),
        handler,
        settings,
        shutdown,
    )
    .await;
    // Each task cleans its own folder; this removes the (now empty) root.
    let _ = std::fs::remove_dir_all(&scratch_root);
    result.map_err(|e| anyhow::anyhow!("{stage} worker: {}", e.cause))?;
    Ok(ExitCode::SUCCESS)
}

/// `sluice dispatcher`: the events queue -> one Step Functions execution per landed file.
pub async fn dispatcher(config_path: &Path, reconcile_every: Duration) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let clients = AwsClients::from_env().await;
    let url = sluice_aws::queue_url(&clients.sqs, &events_queue(&config))
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?;
    let workflow = deployed_workflow(&config, &clients).await?;
    let state_machine_arn = workflow.state_machine_arn().to_string();
    tracing::info!(queue = %url, state_machine = %state_machine_arn, "dispatcher started");
    let dispatcher = Arc::new(Dispatcher {
        runs: Arc::new(DynamoRunStore::new(
            clients.dynamodb.clone(),
            config.aws.runs_table.clone(),
        )),
        workflow: Arc::new(workflow),
        mailer: Some(Arc::new(SesMailer::new(clients.ses.clone()))),
        dead_letters: Some(Arc::new(sluice_aws::dlq::SqsDeadLetters {
            sqs: clients.sqs.clone(),
            sources: Stage::ALL
                .iter()
                .map(|&s| (stage_queue(&config, s), s.to_string()))
                .chain([(events_queue(&config), "events".to_string())])
                .collect(),
        })),
        alerted: Default::default(),
        store: Some(Arc::new(sluice_aws::S3ObjectStore::new(clients.s3.clone()))),
        config,
    });
    run_dispatcher(
        Arc::new(SqsWorkQueue::new(clients.sqs.clone(), url)),
        dispatcher,
        sluice_dispatcher::consumer_settings(),
        reconcile_every,
        shutdown::on_signal()?,
    )
    .await
    .map_err(|e| anyhow::anyhow!("dispatcher: {}", e.cause))?;
    Ok(ExitCode::SUCCESS)
}

/// `sluice deploy`: every resource of the spec, idempotently, one line each.
pub async fn deploy(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let clients = AwsClients::from_env().await;
    let arn = provision::deploy(
        &config,
        &clients,
        &|url_of| sluice_pipeline::definition::pipeline_definition(url_of),
        &|url_of| sluice_pipeline::definition::batch_definition(url_of),
        &mut |kind, name, state| println!("{kind:<14} {name:<40} {state}"),
    )
    .await?;
    println!("state machine ARN: {arn}");
    Ok(ExitCode::SUCCESS)
}

/// Every queue with a dead-letter queue: the stages', then the events queue.
fn dlq_sources(config: &sluice_spec::config::Config) -> Vec<String> {
    Stage::ALL
        .iter()
        .map(|&s| stage_queue(config, s))
        .chain([events_queue(config)])
        .collect()
}

/// `sluice dlq list`.
pub async fn dlq_list(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let clients = AwsClients::from_env().await;
    let reports = sluice_aws::dlq::list(&clients.sqs, &dlq_sources(&config))
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?;
    for r in &reports {
        println!("{:<40} {} message(s)", r.dlq, r.depth);
        for m in &r.samples {
            println!(
                "    {}  received {} time(s)  {}",
                m.message_id, m.receive_count, m.about
            );
        }
    }
    let total: u64 = reports.iter().map(|r| r.depth).sum();
    if total > 0 {
        println!("move them back with `sluice dlq redrive QUEUE` or `sluice dlq redrive --all`");
    }
    Ok(ExitCode::SUCCESS)
}

/// `sluice dlq redrive QUEUE|--all`: `queue` is a stage name or `events`; None means all.
pub async fn dlq_redrive(config_path: &Path, queue: Option<&str>) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let sources = match queue {
        None => dlq_sources(&config),
        Some("events") => vec![events_queue(&config)],
        Some(name) => match Stage::parse(name) {
            Some(stage) => vec![stage_queue(&config, stage)],
            None => anyhow::bail!(
                "{name:?} is not a queue with a dead-letter queue: one of validator, filter-stats, \
                 partitioner, plotter, notifier, events"
            ),
        },
    };
    let clients = AwsClients::from_env().await;
    for source in sources {
        match sluice_aws::dlq::redrive(&clients.sqs, &source)
            .await
            .map_err(|e| anyhow::anyhow!(e.cause))?
        {
            sluice_aws::dlq::Redrive::MoveTask { handle } => {
                println!("{source}-dlq -> {source}: SQS is moving the messages (task {handle})")
            }
            sluice_aws::dlq::Redrive::Moved(n) => {
                println!("{source}-dlq -> {source}: {n} message(s) moved")
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_store(config: &Path) -> anyhow::Result<DynamoRunStore> {
    let config = load_config(config)?;
    let clients = AwsClients::from_env().await;
    Ok(DynamoRunStore::new(
        clients.dynamodb,
        config.aws.runs_table.clone(),
    ))
}

/// The deployed state machines of the spec (the pipeline's, and the batch's when it has batches).
async fn deployed_workflow(
    config: &sluice_spec::config::Config,
    clients: &AwsClients,
) -> anyhow::Result<SfnWorkflow> {
    let machines = SfnStateMachines::new(clients.sfn.clone());
    let find = |name: String, what: &'static str| {
        let machines = machines.clone();
        async move {
            machines
                .find_state_machine(&name)
                .await
                .map_err(|e| anyhow::anyhow!(e.cause))?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "state machine {name}{what} does not exist: run `sluice deploy` first (with the same --config)"
                    )
                })
        }
    };
    let mut workflow = SfnWorkflow::new(
        clients.sfn.clone(),
        find(config.aws.state_machine.clone(), "").await?,
    );
    if !config.batches.is_empty() {
        let arn = find(
            config.aws.batch_state_machine.clone(),
            " (the spec's [[batch]])",
        )
        .await?;
        workflow = workflow.with_batch_state_machine(arn);
    }
    Ok(workflow)
}

/// `sluice sweep DATASET --aws`: what the dispatcher does on a schedule's tick, now.
pub async fn sweep(config_path: &Path, dataset: &str) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let clients = AwsClients::from_env().await;
    let workflow = deployed_workflow(&config, &clients).await?;
    let dispatcher = Dispatcher {
        runs: Arc::new(DynamoRunStore::new(
            clients.dynamodb.clone(),
            config.aws.runs_table.clone(),
        )),
        workflow: Arc::new(workflow),
        mailer: None,
        dead_letters: None,
        alerted: Default::default(),
        store: Some(Arc::new(sluice_aws::S3ObjectStore::new(clients.s3.clone()))),
        config,
    };
    let report = dispatcher
        .sweep(dataset)
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?;
    println!(
        "sweep of {dataset}: started {} run(s); {} object(s) had run already",
        report.started, report.already
    );
    Ok(ExitCode::SUCCESS)
}

/// `sluice poll SOURCE --aws`: what the dispatcher does on a source's tick, now.
pub async fn poll(config_path: &Path, source: &str) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let clients = AwsClients::from_env().await;
    let Some(src) = config.source(source).cloned() else {
        anyhow::bail!("there is no source {source:?} in {}", config.path.display());
    };
    let store = sluice_aws::S3ObjectStore::new(clients.s3.clone());
    let mailer = SesMailer::new(clients.ses.clone());
    let scratch = tempfile::tempdir()?;
    let tick = src.cadence.tick_of(chrono::Utc::now());
    let polled =
        sluice_dispatcher::source::poll(&store, Some(&mailer), &config, &src, tick, scratch.path())
            .await
            .map_err(|e| anyhow::anyhow!(e.cause))?;
    match polled {
        sluice_dispatcher::source::Polled::Landed { object, rows, .. } => {
            println!(
                "source {source}: {rows} row(s) landed as {} (its S3 event runs it)",
                object.s3_uri()
            );
        }
        sluice_dispatcher::source::Polled::Unchanged => {
            println!(
                "source {source}: the answer has not changed since the last poll; nothing landed"
            );
        }
        sluice_dispatcher::source::Polled::AlreadyPolled { object } => {
            println!(
                "source {source}: this tick was polled already ({})",
                object.s3_uri()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `sluice batches --aws`: the spec and every batch's record in DynamoDB.
pub async fn batches(
    config_path: &Path,
) -> anyhow::Result<(
    Arc<sluice_spec::config::Config>,
    Vec<sluice_proto::BatchState>,
)> {
    let config = load_config(config_path)?;
    let store = run_store(config_path).await?;
    let states = store
        .batches()
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?;
    Ok((config, states))
}

pub async fn runs_list(config: &Path, limit: u64, json: bool) -> anyhow::Result<ExitCode> {
    let store = run_store(config).await?;
    let runs = store
        .list_runs(limit)
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?;
    report::print_runs(&runs, json)
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
    let stages = store
        .stage_statuses(&id)
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?;
    report::print_run(&run, &stages, json)
}

/// Execution histories from Step Functions (executions are named by run id).
struct SfnExecutions {
    machines: SfnStateMachines,
    state_machine_arn: String,
}

#[async_trait::async_trait]
impl sluice_gateway::Executions for SfnExecutions {
    async fn history(
        &self,
        run: &sluice_proto::RunSummary,
    ) -> Result<Vec<serde_json::Value>, sluice_proto::StageError> {
        if !run.history.is_empty() {
            return Ok(run.history.clone());
        }
        let arn = sluice_aws::execution_arn(&self.state_machine_arn, run.run_id.as_str());
        Ok(self
            .machines
            .execution_history(&arn)
            .await?
            .unwrap_or_default())
    }
}

/// `sluice gateway`: the web UI and HTTP API over the deployment (S3, DynamoDB, Step Functions).
pub async fn gateway(config_path: &Path, listen: &crate::Listen) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let clients = AwsClients::from_env().await;
    let workflow = deployed_workflow(&config, &clients).await?;
    let token = crate::up::gateway_token(&config)?;
    let scratch = std::env::temp_dir().join(format!("sluice-gateway-{}", std::process::id()));
    let gateway = Arc::new(sluice_gateway::Gateway {
        config: config.clone(),
        store: Arc::new(S3ObjectStore::new(clients.s3.clone())),
        runs: Arc::new(DynamoRunStore::new(
            clients.dynamodb.clone(),
            config.aws.runs_table.clone(),
        )),
        executions: Arc::new(SfnExecutions {
            machines: SfnStateMachines::new(clients.sfn.clone()),
            state_machine_arn: workflow.state_machine_arn().to_string(),
        }),
        runner: Arc::new(sluice_gateway::EventDriven::default()),
        mode: "AWS",
        definition: sluice_pipeline::definition::pipeline_definition(
            sluice_pipeline::definition::embedded_url,
        ),
        poll: Duration::from_secs(1),
        scratch: scratch.clone(),
        token,
    });
    let addr = std::net::SocketAddr::new(listen.bind, listen.port);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr}: {e} (another process there? try --port)")
    })?;
    eprintln!(
        "sluice gateway: serving http://{}/ ; uploads land in s3://{}; Ctrl-C stops",
        listener.local_addr()?,
        config.buckets.landing
    );
    let mut stop = shutdown::on_signal()?;
    sluice_gateway::serve(listener, gateway, async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await?;
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!("sluice gateway: stopped");
    Ok(ExitCode::SUCCESS)
}
