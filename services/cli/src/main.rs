//! `sluice`: one binary for every Sluice process. See docs/contracts.md for the command line users rely on.

mod aws_mode;
mod report;
mod up;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use sluice_embedded::{FsObjectStore, OutboxMailer, SqliteStore};
use sluice_pipeline::StageContext;
use sluice_pipeline::file_run::{
    dataset_for, name_the_file_as_typed, not_a_readable_file, run_landed,
};
use sluice_proto::{ObjectRef, RunId, RunStatus};
use sluice_runtime::ports::ObjectStore;
use sluice_runtime::runs::RunStore;
use sluice_spec::config::Config;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Validate, filter, summarise, partition, chart and load CSV files"
)]
struct Cli {
    /// The dataset spec.
    #[arg(
        long,
        global = true,
        default_value = "sluice.toml",
        env = "SLUICE_CONFIG"
    )]
    config: PathBuf,
    /// Where embedded mode keeps buckets, the run store and the outbox
    /// (default: `[embedded] data_dir` of the spec, else ./.sluice).
    #[arg(long, global = true, env = "SLUICE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Where the web UI and HTTP API listen.
#[derive(clap::Args, Clone, Debug)]
struct Listen {
    /// The address to listen on (127.0.0.1: this machine only).
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// The port (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline on files, embedded, in this process (one run per file; the files of a
    /// `[[batch]]`'s datasets land as its members and run together once the set is complete).
    Run {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The dataset the files belong to (default: matched by the spec's prefix/suffix).
        #[arg(long)]
        dataset: Option<String>,
        /// The date filter windows are relative to (default: today, UTC).
        #[arg(long, value_parser = parse_date)]
        as_of: Option<NaiveDate>,
        /// Print one run summary (JSON) per line instead of a report.
        #[arg(long)]
        json: bool,
    },
    /// Run history from the run store.
    Runs {
        /// Read the AWS run store (DynamoDB, `[aws] runs_table`) instead of the embedded one.
        #[arg(long, global = true)]
        aws: bool,
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// Runs every object under a dataset's prefix in the landing bucket that has no run yet (objects
    /// that ran are left alone): the catch-up for lost events, and what `[[schedule]]` does on a cadence.
    Sweep {
        dataset: String,
        /// Sweep the AWS landing bucket and start executions there (as the dispatcher does on a tick).
        #[arg(long)]
        aws: bool,
        /// The date filter windows are relative to (embedded; default: today, UTC).
        #[arg(long, value_parser = parse_date)]
        as_of: Option<NaiveDate>,
        /// Print one run summary (JSON) per line instead of a report.
        #[arg(long)]
        json: bool,
    },
    /// Embedded and long-running: serves the web UI and HTTP API, runs every file uploaded or dropped
    /// into the landing folder, the sweeps (`[[schedule]]`) and the sources (`[[source]]`) on their
    /// cadence, until Ctrl-C or SIGTERM.
    Up {
        /// Print one run summary (JSON) per line instead of reports.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        listen: Listen,
        /// How many runs go on at once (more wait for a slot).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
        max_runs: u16,
    },
    /// AWS mode: the web UI and HTTP API over S3, DynamoDB and Step Functions (uploads land in the
    /// landing bucket; its S3 event runs them).
    Gateway {
        #[command(flatten)]
        listen: Listen,
    },
    /// Polls a `[[source]]` once: what changed since the last poll lands in the landing bucket and,
    /// embedded, runs at once.
    Poll {
        source: String,
        /// Poll into the AWS landing bucket (its S3 event runs the file).
        #[arg(long)]
        aws: bool,
        /// The date filter windows are relative to (embedded; default: today, UTC).
        #[arg(long, value_parser = parse_date)]
        as_of: Option<NaiveDate>,
        /// Print the run summary (JSON) instead of a report.
        #[arg(long)]
        json: bool,
    },
    /// Batch runs (`[[batch]]`): what each batch waits for, and its runs.
    Batches {
        /// Read the AWS run store (DynamoDB, `[aws] runs_table`) instead of the embedded one.
        #[arg(long, global = true)]
        aws: bool,
        #[command(subcommand)]
        command: BatchesCommand,
    },
    /// AWS mode: one worker service for a stage (validator, filter-stats, partitioner, plotter, notifier, loader).
    Worker {
        #[arg(value_parser = parse_stage)]
        stage: sluice_proto::Stage,
        /// Tasks worked on at once.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// SQS visibility lease in seconds, renewed while a task runs.
        #[arg(long, default_value_t = 60)]
        lease_seconds: u64,
        /// On SIGTERM, how long running tasks may finish before their leases are released and the
        /// process exits (keep it below the platform's stop timeout, e.g. ECS's 30 s).
        #[arg(long, default_value_t = 25)]
        grace_seconds: u64,
    },
    /// AWS mode: S3 event notifications -> one Step Functions execution per file; reconciles runs
    /// whose execution ended outside the pipeline (timeout, abort) and sends their failure alert.
    Dispatcher {
        /// How often RUNNING runs are checked against their executions.
        #[arg(long, default_value_t = 60)]
        reconcile_seconds: u64,
    },
    /// AWS mode: create or update buckets, queues, notifications, tables, the state machine and SES
    /// identities against the configured endpoint (idempotent).
    Deploy,
    /// AWS mode: the dead-letter queues of the stage and events queues.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Check, draw and run Amazon States Language definitions locally.
    Statemachine {
        #[command(subcommand)]
        command: StatemachineCommand,
    },
}

#[derive(Subcommand)]
enum BatchesCommand {
    /// Every batch of the spec: the members landed since its last run, and its runs, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One batch run in full (`trading-2026-12-02`).
    Show {
        run_id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Each dead-letter queue's depth and its oldest messages (what run or object each is about).
    List,
    /// Moves the messages of a dead-letter queue back to the queue they came from.
    Redrive {
        /// The queue: a stage (validator, filter-stats, partitioner, plotter, notifier) or `events`.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        queue: Option<String>,
        /// Every dead-letter queue.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum StatemachineCommand {
    /// Check a definition (what statelint checks); exit 1 when it has problems.
    Lint { file: PathBuf },
    /// Print a Mermaid flowchart of a definition.
    Render { file: PathBuf },
    /// Run a definition with scripted task outcomes (see docs/contracts.md, "Task responder file").
    Exec {
        file: PathBuf,
        /// The execution input (JSON text).
        #[arg(long, default_value = "{}")]
        input: String,
        #[arg(long)]
        responder: PathBuf,
        /// Print the execution result as one JSON object.
        #[arg(long)]
        json: bool,
        /// Do not really wait for Wait states and Retry intervals (the history keeps their times).
        #[arg(long)]
        fast: bool,
        /// The objects of Distributed Map states (ItemReader, ResultWriter): bucket B, key K is the
        /// file DIR/B/K.
        #[arg(long, value_name = "DIR")]
        objects: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RunsCommand {
    /// The most recent runs first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u64,
        #[arg(long)]
        json: bool,
    },
    /// One run in full.
    Show {
        run_id: String,
        #[arg(long)]
        json: bool,
    },
}

fn parse_stage(s: &str) -> Result<sluice_proto::Stage, String> {
    sluice_proto::Stage::parse(s).ok_or_else(|| {
        let all: Vec<&str> = sluice_proto::Stage::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        format!("{s:?} is not a stage: one of {}", all.join(", "))
    })
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date: use YYYY-MM-DD"))
}

/// The dataset spec, with a hint when the file is not there.
fn load_config(path: &Path) -> anyhow::Result<Arc<Config>> {
    Config::load(path).map(Arc::new).map_err(|e| {
        if e.line == 0 && !path.exists() {
            anyhow::anyhow!(
                "{}: no dataset spec here; pass --config FILE (the repository's sluice.toml is an example)",
                path.display()
            )
        } else {
            anyhow::anyhow!("{e}")
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    // Logs and, when the OTEL_* variables ask for it, traces and metrics (inside the runtime: the gRPC
    // exporter needs it).
    let telemetry = {
        let _inside = runtime.enter();
        sluice_telemetry::init(
            &service_name(&cli.command),
            "info,sqlx=warn,sea_orm=warn",
            report::LogWriter,
        )
    };
    let code = match runtime.block_on(run_command(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    };
    // Flush what the exporters hold (a worker gets here after SIGTERM too), off the async threads.
    runtime.block_on(async move {
        let _ = tokio::task::spawn_blocking(move || drop(telemetry)).await;
    });
    // A worker shutting down has released the leases of the tasks it gave up; a stage still running in
    // a blocking thread must not hold the process (dropping the runtime would wait for it).
    runtime.shutdown_timeout(SHUTDOWN_WAIT);
    code
}

/// The process's name in telemetry (`service.name`): `sluice-worker-validator`, `sluice-dispatcher`,
/// `sluice-run`, ...
fn service_name(command: &Command) -> String {
    match command {
        Command::Run { .. }
        | Command::Sweep { aws: false, .. }
        | Command::Poll { aws: false, .. } => "sluice-run".into(),
        Command::Up { .. } => "sluice-up".into(),
        Command::Gateway { .. } => "sluice-gateway".into(),
        Command::Worker { stage, .. } => format!("sluice-worker-{stage}"),
        Command::Dispatcher { .. } => "sluice-dispatcher".into(),
        Command::Deploy => "sluice-deploy".into(),
        _ => "sluice".into(),
    }
}

/// How long the process waits, after its work is done or given up, for blocking threads to end.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// How a report names an object (`s3://...` or `file://...`).
type UriOf = Box<dyn Fn(&ObjectRef) -> String>;

/// The embedded adapters over one data directory.
struct Embedded {
    config: Arc<Config>,
    data_dir: PathBuf,
    store: Arc<FsObjectStore>,
    db: Arc<SqliteStore>,
    ctx: StageContext,
}

async fn embedded(config_path: &Path, data_dir: Option<PathBuf>) -> anyhow::Result<Embedded> {
    let config = load_config(config_path)?;
    let (data_dir, named_by) = match (data_dir, config.data_dir.clone()) {
        (Some(dir), _) => (dir, "--data-dir"),
        (None, Some(dir)) => (dir, "the spec's [embedded] data_dir"),
        (None, None) => (PathBuf::from(".sluice"), "the data directory"),
    };
    sluice_embedded::check_data_dir(&data_dir, named_by).map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let store = Arc::new(FsObjectStore::new(data_dir.join("buckets")));
    let db = Arc::new(
        SqliteStore::open(&data_dir.join("sluice.db"))
            .await
            .map_err(|e| anyhow::anyhow!(e.cause))?,
    );
    let ctx = StageContext {
        config: config.clone(),
        store: store.clone(),
        rows: db.clone(),
        runs: db.clone(),
        mailer: Arc::new(OutboxMailer::new(data_dir.join("outbox"))),
        scratch_root: data_dir.join("tmp"),
        progress: None,
        // `sluice_pipeline::embedded::execute` reads SLUICE_INJECT_FAULTS afresh for each run.
        faults: Arc::default(),
        warehouse: Arc::new(warehouse_handle(
            &config,
            Some(data_dir.join("warehouse.db")),
        )),
        catalog: Arc::new(sluice_embedded::JsonCatalog::new(
            data_dir.join("catalog"),
            data_dir.join("buckets"),
        )),
    };
    Ok(Embedded {
        config,
        data_dir: data_dir.clone(),
        store,
        db,
        ctx,
    })
}

async fn run_command(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            files,
            dataset,
            as_of,
            json,
        } => {
            let mut env = embedded(&cli.config, cli.data_dir).await?;
            let as_of = as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
            // Check every file and dataset before running any, so a typo does not leave half a batch.
            let mut plan = Vec::new();
            for file in &files {
                if let Some(why) = not_a_readable_file(file) {
                    anyhow::bail!("{why}");
                }
                plan.push((
                    file,
                    dataset_for(&env.config, file, dataset.as_deref())?.clone(),
                ));
            }
            let mut all_ok = true;
            for (file, ds) in plan {
                if let Some(batch) = env.config.batch_of(ds.name.as_str()).cloned() {
                    all_ok &= land_batch_member(&env, &batch, &ds, file, as_of, json).await?;
                    continue;
                }
                let progress = Arc::new(sluice_pipeline::Progress::default());
                env.ctx.progress = Some(progress.clone());
                let bar = progress_bar(file, progress, json);
                let run = land_and_run(&env, &ds, file, as_of).await;
                if let Some((bar, ticker)) = bar {
                    ticker.abort();
                    bar.finish_and_clear();
                    report::set_active_bar(None);
                }
                let mut run = run?;
                let landed = env.store.uri(&run.source);
                name_the_file_as_typed(&mut run, &landed, file);
                all_ok &= run.status == RunStatus::Succeeded;
                // A closed stdout (piped into `head`) must not panic or stop the remaining runs.
                let text = if json {
                    format!("{}\n", serde_json::to_string(&run)?)
                } else {
                    report::human(&run)
                };
                let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
            }
            env.db.settle().await;
            Ok(if all_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Sweep {
            dataset, aws: true, ..
        } => aws_mode::sweep(&cli.config, &dataset).await,
        Command::Poll {
            source, aws: true, ..
        } => aws_mode::poll(&cli.config, &source).await,
        Command::Poll {
            source,
            aws: false,
            as_of,
            json,
        } => {
            let env = embedded(&cli.config, cli.data_dir).await?;
            let as_of = as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
            let Some(src) = env.config.source(&source).cloned() else {
                let known: Vec<&str> = env.config.sources.iter().map(|s| s.name.as_str()).collect();
                anyhow::bail!(
                    "there is no source {source:?} in {} (sources: {})",
                    env.config.path.display(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                );
            };
            let ok = poll_embedded(&env, &src, as_of, json).await?;
            env.db.settle().await;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Up {
            json,
            listen,
            max_runs,
        } => {
            let env = embedded(&cli.config, cli.data_dir).await?;
            up::up(
                Arc::new(env),
                json,
                &listen,
                usize::from(max_runs),
                sluice_runtime::shutdown::on_signal()?,
            )
            .await
        }
        Command::Gateway { listen } => aws_mode::gateway(&cli.config, &listen).await,
        Command::Sweep {
            dataset,
            aws: false,
            as_of,
            json,
        } => {
            let env = embedded(&cli.config, cli.data_dir).await?;
            let as_of = as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
            let Some(ds) = env.config.dataset(&dataset).cloned() else {
                let known: Vec<&str> = env
                    .config
                    .datasets
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect();
                anyhow::bail!(
                    "there is no dataset {dataset:?} in {} (datasets: {})",
                    env.config.path.display(),
                    known.join(", ")
                );
            };
            let ok = sweep_embedded(&env, &ds, as_of, json).await?;
            env.db.settle().await;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Batches { aws, command } => {
            let (config, states, uri_of): (_, _, UriOf) = if aws {
                let (config, states) = aws_mode::batches(&cli.config).await?;
                (config, states, Box::new(|o: &ObjectRef| o.s3_uri()))
            } else {
                let env = embedded(&cli.config, cli.data_dir).await?;
                let states = env
                    .db
                    .batches()
                    .await
                    .map_err(|e| anyhow::anyhow!(e.cause))?;
                let store = env.store.clone();
                (
                    env.config,
                    states,
                    Box::new(move |o: &ObjectRef| store.uri(o)),
                )
            };
            match command {
                BatchesCommand::List { json } => {
                    if json {
                        for s in &states {
                            println!("{}", serde_json::to_string(s)?);
                        }
                    } else if config.batches.is_empty() {
                        println!("{} defines no [[batch]]", config.path.display());
                    } else {
                        print!("{}", report::batches_table(&config, &states));
                    }
                }
                BatchesCommand::Show { run_id, json } => {
                    let Some(run) = states
                        .iter()
                        .flat_map(|s| s.runs.iter())
                        .find(|r| r.run_id.as_str() == run_id)
                    else {
                        anyhow::bail!(
                            "no batch run {run_id} in the run store (see `sluice batches list`)"
                        );
                    };
                    if json {
                        println!("{}", serde_json::to_string_pretty(run)?);
                    } else {
                        print!("{}", report::batch_human(run, &uri_of));
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker {
            stage,
            concurrency,
            lease_seconds,
            grace_seconds,
        } => {
            aws_mode::worker(
                &cli.config,
                stage,
                concurrency,
                Duration::from_secs(lease_seconds),
                Duration::from_secs(grace_seconds),
            )
            .await
        }
        Command::Dispatcher { reconcile_seconds } => {
            aws_mode::dispatcher(&cli.config, Duration::from_secs(reconcile_seconds.max(1))).await
        }
        Command::Deploy => aws_mode::deploy(&cli.config).await,
        Command::Dlq {
            command: DlqCommand::List,
        } => aws_mode::dlq_list(&cli.config).await,
        Command::Dlq {
            command: DlqCommand::Redrive { queue, all },
        } => aws_mode::dlq_redrive(&cli.config, if all { None } else { queue.as_deref() }).await,
        Command::Statemachine { command } => {
            let code = match command {
                StatemachineCommand::Lint { file } => sluice_statemachine::cli::lint(&file).await,
                StatemachineCommand::Render { file } => {
                    sluice_statemachine::cli::render(&file).await
                }
                StatemachineCommand::Exec {
                    file,
                    input,
                    responder,
                    json,
                    fast,
                    objects,
                } => {
                    let options = sluice_statemachine::cli::ExecOptions {
                        json,
                        fast,
                        objects,
                    };
                    sluice_statemachine::cli::exec_with(&file, &input, &responder, &options).await
                }
            };
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(2)))
        }
        Command::Runs { aws: true, command } => match command {
            RunsCommand::List { limit, json } => {
                aws_mode::runs_list(&cli.config, limit, json).await
            }
            RunsCommand::Show { run_id, json } => {
                aws_mode::runs_show(&cli.config, &run_id, json).await
            }
        },
        Command::Runs {
            aws: false,
            command,
        } => {
            let env = embedded(&cli.config, cli.data_dir).await?;
            let db = env.db.as_ref();
            match command {
                RunsCommand::List { limit, json } => {
                    let runs = db
                        .list_runs(limit)
                        .await
                        .map_err(|e| anyhow::anyhow!(e.cause))?;
                    report::print_runs(&runs, json)
                }
                RunsCommand::Show { run_id, json } => {
                    let id = RunId::parse(&run_id).map_err(|e| anyhow::anyhow!(e))?;
                    let Some(run) = db
                        .get_run(&id)
                        .await
                        .map_err(|e| anyhow::anyhow!(e.cause))?
                    else {
                        anyhow::bail!("no run {run_id} in the run store (see `sluice runs list`)");
                    };
                    report::print_run(&run, &Default::default(), json)
                }
            }
        }
    }
}

/// Copies `file` into the landing folder under the dataset's prefix: the landed object and its ETag.
async fn land(
    env: &Embedded,
    ds: &sluice_spec::config::Dataset,
    file: &Path,
) -> anyhow::Result<(ObjectRef, String)> {
    let file_name = file
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("{} is not a file name", file.display()))?
        .to_string_lossy()
        .into_owned();
    let source = ObjectRef::new(
        &env.config.buckets.landing,
        format!("{}{}", ds.prefix, file_name),
    );
    let meta = env
        .store
        .land(file, &source)
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?;
    Ok((source, meta.etag))
}

/// Runs every landed object of `ds` that has no run yet; false when a run failed.
async fn sweep_embedded(
    env: &Embedded,
    ds: &sluice_spec::config::Dataset,
    as_of: NaiveDate,
    json: bool,
) -> anyhow::Result<bool> {
    let found =
        sluice_dispatcher::sweep::find_unrun(env.store.as_ref(), env.db.as_ref(), &env.config, ds)
            .await
            .map_err(|e| anyhow::anyhow!(e.cause))?;
    eprintln!(
        "sweep of {}: {} object(s) without a run, {} already ran",
        env.store
            .uri(&ObjectRef::new(&env.config.buckets.landing, &ds.prefix)),
        found.to_run.len(),
        found.already
    );
    let mut all_ok = true;
    for (source, etag, _, _) in found.to_run {
        all_ok &= run_object(env, ds, source, etag, as_of, json).await?;
    }
    Ok(all_ok)
}

/// Runs a landed object (or records it in its batch); prints the report. False when a run failed.
async fn run_object(
    env: &Embedded,
    ds: &sluice_spec::config::Dataset,
    source: ObjectRef,
    etag: String,
    as_of: NaiveDate,
    json: bool,
) -> anyhow::Result<bool> {
    if let Some(batch) = env.config.batch_of(ds.name.as_str()).cloned() {
        let label = env.store.uri(&source);
        return member_landed(env, &batch, ds, source, etag, &label, as_of, json).await;
    }
    let run = run_landed(&env.ctx, env.db.as_ref(), ds, source, &etag, as_of).await?;
    let text = if json {
        format!("{}\n", serde_json::to_string(&run)?)
    } else {
        report::human(&run)
    };
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    Ok(run.status == RunStatus::Succeeded)
}

/// Polls a source now; runs what landed. False when the run failed.
async fn poll_embedded(
    env: &Embedded,
    src: &sluice_spec::config::Source,
    as_of: NaiveDate,
    json: bool,
) -> anyhow::Result<bool> {
    let source = &src.name;
    let scratch = tempfile::tempdir()?;
    let tick = src.cadence.tick_of(chrono::Utc::now());
    let polled = sluice_dispatcher::source::poll(
        env.store.as_ref(),
        Some(env.ctx.mailer.as_ref()),
        &env.config,
        src,
        tick,
        scratch.path(),
    )
    .await
    .map_err(|e| anyhow::anyhow!(e.cause))?;
    use sluice_dispatcher::source::Polled;
    let (object, etag) = match polled {
        Polled::Unchanged => {
            eprintln!(
                "source {source}: the answer has not changed since the last poll; nothing landed"
            );
            return Ok(true);
        }
        Polled::AlreadyPolled { object } => {
            eprintln!(
                "source {source}: this tick was polled already ({}); nothing landed",
                env.store.uri(&object)
            );
            return Ok(true);
        }
        Polled::Landed { object, etag, rows } => {
            eprintln!(
                "source {source}: {rows} row(s) landed as {}",
                env.store.uri(&object)
            );
            (object, etag)
        }
    };
    let ds = env
        .config
        .dataset(src.dataset.as_str())
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("source {source}: no dataset {}", src.dataset))?;
    run_object(env, &ds, object, etag, as_of, json).await
}

/// Lands `file`, then runs it.
async fn land_and_run(
    env: &Embedded,
    ds: &sluice_spec::config::Dataset,
    file: &Path,
    as_of: NaiveDate,
) -> anyhow::Result<sluice_proto::RunSummary> {
    let (source, etag) = land(env, ds, file).await?;
    run_landed(&env.ctx, env.db.as_ref(), ds, source, &etag, as_of).await
}

/// Lands a file of a batch's member dataset and records it; when that completes the batch's set (and
/// the batch has not run in this period), runs the batch. Returns false when a batch run failed.
async fn land_batch_member(
    env: &Embedded,
    batch: &sluice_spec::config::Batch,
    ds: &sluice_spec::config::Dataset,
    file: &Path,
    as_of: NaiveDate,
    json: bool,
) -> anyhow::Result<bool> {
    let (source, etag) = land(env, ds, file).await?;
    member_landed(
        env,
        batch,
        ds,
        source,
        etag,
        &file.display().to_string(),
        as_of,
        json,
    )
    .await
}

/// Records a landed file of a batch's member dataset (`label` names it in the output); when that
/// completes the batch's set, runs the batch. Returns false when a batch run failed.
#[allow(clippy::too_many_arguments)]
async fn member_landed(
    env: &Embedded,
    batch: &sluice_spec::config::Batch,
    ds: &sluice_spec::config::Dataset,
    source: ObjectRef,
    etag: String,
    label: &str,
    as_of: NaiveDate,
    json: bool,
) -> anyhow::Result<bool> {
    use sluice_dispatcher::batches::{BatchDecision, Landing, record_landing};
    let member = sluice_proto::BatchMember {
        dataset: ds.name.clone(),
        run_id: sluice_spec::keys::run_id_for(&source.bucket, &source.key, &etag),
        source,
        etag,
        landed_at: chrono::Utc::now(),
    };
    let now = chrono::Utc::now();
    let decision = record_landing(
        env.db.as_ref(),
        batch,
        member,
        Landing::Deliberate,
        now,
        as_of,
    )
    .await
    .map_err(|e| anyhow::anyhow!(e.cause))?;
    let say = |text: String| {
        if json {
            let line = serde_json::json!({"batch": batch.name, "file": label, "dataset": ds.name.as_str(), "landed": text});
            let _ =
                std::io::Write::write_all(&mut std::io::stdout(), format!("{line}\n").as_bytes());
        } else {
            let _ = std::io::Write::write_all(
                &mut std::io::stdout(),
                format!("{label}: {text}\n").as_bytes(),
            );
        }
    };
    let input = match decision {
        BatchDecision::Waiting { missing } => {
            say(format!(
                "landed as {} of batch {}; the batch waits for {}",
                ds.name.as_str(),
                batch.name,
                missing.join(", ")
            ));
            return Ok(true);
        }
        BatchDecision::WaitingForPeriod { period, run_id } => {
            say(format!(
                "landed as {} of batch {}; the set is complete, but batch run {run_id} holds period {period} \
                 (at most {}): it runs in the next period",
                ds.name.as_str(),
                batch.name,
                batch.at_most.as_str()
            ));
            return Ok(true);
        }
        BatchDecision::WaitingForNew { datasets, run_id } => {
            say(format!(
                "landed as {} of batch {}; the batch waits for new files of {} (their newest files were in batch run {run_id})",
                ds.name.as_str(),
                batch.name,
                datasets.join(", ")
            ));
            return Ok(true);
        }
        BatchDecision::AlreadyIn { run_id } => {
            say(format!(
                "landed as {} of batch {}; every member's file is already in batch run {run_id}: nothing new \
                 to run (see `sluice batches show {run_id}`)",
                ds.name.as_str(),
                batch.name
            ));
            return Ok(true);
        }
        BatchDecision::Start(input) => *input,
    };
    say(format!(
        "landed as {}; batch {} is complete: running {}",
        ds.name.as_str(),
        batch.name,
        input.run_id
    ));
    let started = env
        .db
        .get_batch(&batch.name)
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?
        .and_then(|s| s.runs.into_iter().find(|r| r.run_id == input.run_id))
        .ok_or_else(|| anyhow::anyhow!("batch run {} was not recorded", input.run_id))?;
    let mut ctx = env.ctx.clone();
    ctx.progress = None;
    let finished = match sluice_pipeline::batch::execute_batch(&ctx, started.clone(), &input).await
    {
        Ok(run) => run,
        Err(e) => {
            // Not left RUNNING: a later `sluice run` of a fixed file retries it.
            let mut failed = started;
            failed.status = RunStatus::Failed;
            failed.finished_at = Some(chrono::Utc::now());
            failed.error = Some(sluice_proto::BatchFailure {
                step: "batch".into(),
                dataset: None,
                error: "Sluice.Internal".into(),
                cause: format!("{e:#}"),
            });
            failed
        }
    };
    let stored = finished.clone();
    env.db
        .update_batch(&batch.name, &mut |s| {
            if let Some(r) = s.run_mut(&stored.run_id) {
                *r = stored.clone();
            }
        })
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?;
    let text = if json {
        format!("{}\n", serde_json::to_string(&finished)?)
    } else {
        let store = env.store.clone();
        report::batch_human(&finished, &move |o| store.uri(o))
    };
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    Ok(finished.status == RunStatus::Succeeded)
}

/// A progress bar that follows the run, drawn only on a terminal (never when piped or with --json):
/// bytes while validating, then the stage it is in, with the rows stored so far and their rate. Log
/// lines go above it (see `report::LogWriter`) instead of tearing it.
fn progress_bar(
    file: &Path,
    progress: Arc<sluice_pipeline::Progress>,
    json: bool,
) -> Option<(indicatif::ProgressBar, tokio::task::JoinHandle<()>)> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let len = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:40} [{bar:30}] {bytes}/{total_bytes} {elapsed_precise}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    bar.set_message(format!("{name}: starting"));
    report::set_active_bar(Some(bar.clone()));
    let ticker = {
        let bar = bar.clone();
        tokio::spawn(async move {
            // Rows per second since the first row was stored (rows are stored while the file is
            // validated when the store allows it, after it otherwise).
            let mut storing_since: Option<std::time::Instant> = None;
            loop {
                bar.set_position(progress.bytes.load(Ordering::Relaxed));
                let stage = progress.stage();
                let rows = progress.rows.load(Ordering::Relaxed);
                let storing = matches!(stage, "validating" | "storing rows" | "committing rows");
                let message = if storing && rows > 0 {
                    let since = *storing_since.get_or_insert_with(std::time::Instant::now);
                    let secs = since.elapsed().as_secs_f64().max(0.1);
                    format!(
                        "{name}: {stage}, {} rows stored ({}/s)",
                        sluice_spec::format::group_thousands(&rows.to_string()),
                        sluice_spec::format::group_thousands(&format!("{:.0}", rows as f64 / secs))
                    )
                } else {
                    format!(
                        "{name}: {}",
                        if stage.is_empty() { "starting" } else { stage }
                    )
                };
                bar.set_message(message);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    Some((bar, ticker))
}

/// The loader's warehouse: `SLUICE_WAREHOUSE_URL` overrides `[warehouse] url` (a URL with a password
/// need not be written in the spec).
/// Without either, embedded mode uses `embedded` (SQLite in the data folder); AWS mode passes `None`.
pub(crate) fn warehouse_handle(
    config: &Config,
    embedded: Option<std::path::PathBuf>,
) -> sluice_pipeline::stages::WarehouseHandle {
    let url = std::env::var("SLUICE_WAREHOUSE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| config.warehouse.url.clone());
    sluice_pipeline::stages::WarehouseHandle::new(url, embedded)
}
