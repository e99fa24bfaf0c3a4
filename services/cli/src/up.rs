//! `sluice up`: embedded and long-running. Every two seconds it looks at the landing folder of each
//! dataset and, once what is there has stopped changing (a file still being copied in is left until it
//! has), runs the objects that have no run; it runs the sweeps (`[[schedule]]`) and polls the sources
//! (`[[source]]`) on their cadence. At start, each sweep runs once and each source whose last poll is
//! older than its current tick is polled once: a tick missed while `up` was down runs once, not once
//! per missed tick. Ctrl-C or SIGTERM stops it between two pieces of work.
//! It serves the web UI and HTTP API (`sluice_gateway`) over the same data directory; uploads and
//! found files run in the background, up to `--max-runs` at once.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use std::sync::{Arc, Mutex};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sluice_gateway::{Gateway, LocalExecutions, Runner};
use sluice_proto::{ObjectRef, RunId, RunSummary, StageError};
use sluice_spec::config::Dataset;
use sluice_spec::keys::run_id_for;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::{Embedded, Listen, poll_embedded, run_object};

/// How often the landing folder is looked at.
const LOOK_EVERY: Duration = Duration::from_secs(2);

/// What a dataset's landing folder held at a look: (key, size, modified).
type Snapshot = Vec<(String, u64, Option<SystemTime>)>;

fn snapshot(root: &Path) -> Snapshot {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                dirs.push(path);
            } else if meta.is_file() {
                files.push((
                    path.to_string_lossy().into_owned(),
                    meta.len(),
                    meta.modified().ok(),
                ));
            }
        }
    }
    files.sort();
    files
}

/// Runs landed files in the background, at most `slots` at once; a file already accepted (queued or
/// running) is not taken twice, whoever brings it (an upload, the landing folder, a sweep).
pub struct UpRunner {
    env: Arc<Embedded>,
    json: bool,
    slots: Arc<Semaphore>,
    /// Accepted and not finished: the summary shown while it waits for a slot.
    accepted: Mutex<HashMap<RunId, (RunSummary, bool)>>,
    tasks: Mutex<JoinSet<()>>,
    /// Itself, for the tasks it spawns.
    me: std::sync::Weak<UpRunner>,
}

impl UpRunner {
    fn new(env: Arc<Embedded>, json: bool, max_runs: usize) -> Arc<Self> {
        Arc::new_cyclic(|me| UpRunner {
            env,
            json,
            slots: Arc::new(Semaphore::new(max_runs.max(1))),
            accepted: Mutex::default(),
            tasks: Mutex::default(),
            me: me.clone(),
        })
    }

    /// Accepts a landed object for a run (unless it is accepted already).
    fn submit(&self, ds: &Dataset, source: ObjectRef, etag: String) {
        let run_id = run_id_for(&source.bucket, &source.key, &etag);
        {
            let Ok(mut accepted) = self.accepted.lock() else {
                return;
            };
            if accepted.contains_key(&run_id) {
                return;
            }
            let shown =
                RunSummary::started(run_id.clone(), ds.name.clone(), source.clone(), Utc::now());
            accepted.insert(run_id.clone(), (shown, false));
        }
        let Some(me) = self.me.upgrade() else { return };
        let ds = ds.clone();
        let task = async move {
            let Ok(_slot) = me.slots.clone().acquire_owned().await else {
                return;
            };
            if let Ok(mut accepted) = me.accepted.lock()
                && let Some(entry) = accepted.get_mut(&run_id)
            {
                entry.1 = true;
            }
            let today = Utc::now().date_naive();
            if let Err(e) = run_object(&me.env, &ds, source, etag, today, me.json).await {
                eprintln!("run {run_id}: {e:#}");
            }
            if let Ok(mut accepted) = me.accepted.lock() {
                accepted.remove(&run_id);
            }
        };
        if let Ok(mut tasks) = self.tasks.lock() {
            // Reap the finished ones as new ones come.
            while tasks.try_join_next().is_some() {}
            tasks.spawn(task);
        }
    }

    /// Every object of `ds` in the landing folder without a run: accepted.
    async fn submit_unrun(&self, ds: &Dataset) -> anyhow::Result<()> {
        let env = &self.env;
        let found = sluice_dispatcher::sweep::find_unrun(
            env.store.as_ref(),
            env.db.as_ref(),
            &env.config,
            ds,
        )
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?;
        for (source, etag, _, _) in found.to_run {
            self.submit(ds, source, etag);
        }
        Ok(())
    }

    /// (waiting for a slot, running)
    fn counts(&self) -> (usize, usize) {
        self.accepted
            .lock()
            .map(|a| {
                let running = a.values().filter(|(_, r)| *r).count();
                (a.len() - running, running)
            })
            .unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Runner for UpRunner {
    async fn landed(
        &self,
        ds: &Dataset,
        source: ObjectRef,
        etag: String,
    ) -> Result<(), StageError> {
        self.submit(ds, source, etag);
        Ok(())
    }

    fn pending(&self, run_id: &RunId) -> Option<RunSummary> {
        self.accepted
            .lock()
            .ok()?
            .get(run_id)
            .map(|(run, _)| run.clone())
    }
}

pub async fn up(
    env: Arc<Embedded>,
    json: bool,
    listen: &Listen,
    max_runs: usize,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<ExitCode> {
    let config = env.config.clone();
    let landing_root = env.data_dir.join("buckets").join(&config.buckets.landing);
    let runner = UpRunner::new(env.clone(), json, max_runs);

    // The UI and API.
    let token = gateway_token(&config)?;
    let gateway = Arc::new(Gateway {
        config: config.clone(),
        store: env.store.clone(),
        runs: env.db.clone(),
        executions: Arc::new(LocalExecutions),
        runner: runner.clone(),
        mode: "embedded",
        definition: sluice_pipeline::definition::pipeline_definition(
            sluice_pipeline::definition::embedded_url,
        ),
        poll: Duration::from_millis(400),
        scratch: env.data_dir.join("tmp").join("uploads"),
        token,
    });
    let addr = std::net::SocketAddr::new(listen.bind, listen.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (another process there? try --port)"))?;
    let local = listener.local_addr()?;
    let server = {
        let mut stop = shutdown.clone();
        tokio::spawn(sluice_gateway::serve(listener, gateway, async move {
            let _ = stop.wait_for(|s| *s).await;
        }))
    };
    eprintln!(
        "sluice up: serving http://{local}/ ; watching {} ({} dataset(s)), {} sweep(s), {} source(s), up to {max_runs} run(s) at once; Ctrl-C stops",
        landing_root.display(),
        config.datasets.len(),
        config.schedules.len(),
        config.sources.len()
    );

    // Catch up once: each sweep now, each source whose last poll is before its current tick.
    let mut next_sweep: HashMap<String, DateTime<Utc>> = HashMap::new();
    for s in &config.schedules {
        if let Some(ds) = config.dataset(s.dataset.as_str())
            && let Err(e) = runner.submit_unrun(ds).await
        {
            eprintln!("sweep of {}: {e:#}", ds.name);
        }
        next_sweep.insert(s.dataset.to_string(), s.cadence.next_after(Utc::now()));
    }
    let mut next_poll: HashMap<String, DateTime<Utc>> = HashMap::new();
    for src in &config.sources {
        let scratch = tempfile::tempdir()?;
        let last =
            sluice_dispatcher::source::last_poll(env.store.as_ref(), &config, src, scratch.path())
                .await
                .map_err(|e| anyhow::anyhow!(e.cause))?;
        if last.is_none_or(|l| l < src.cadence.tick_of(Utc::now())) {
            poll_or_report(&env, src, json).await;
        }
        next_poll.insert(src.name.clone(), src.cadence.next_after(Utc::now()));
    }

    // The landing folders: swept when what they hold changed and then held still for one look.
    let mut seen: HashMap<String, Snapshot> = HashMap::new();
    let mut swept: HashMap<String, Snapshot> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(LOOK_EVERY) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        for ds in &config.datasets {
            // The prefix's folder (a prefix may end inside a file name: `incoming/orders_`).
            let folder = match ds.prefix.rfind('/') {
                Some(i) => landing_root.join(&ds.prefix[..i]),
                None => landing_root.clone(),
            };
            let now = snapshot(&folder);
            let name = ds.name.to_string();
            let still = seen.get(&name) == Some(&now);
            seen.insert(name.clone(), now.clone());
            if still && swept.get(&name) != Some(&now) {
                if let Err(e) = runner.submit_unrun(ds).await {
                    tracing::error!(dataset = %name, error = %e, "sweep of the landing folder failed");
                }
                // What the runs wrote is not under landing; the folder is as it was looked at.
                swept.insert(name, now);
            }
        }
        let now = Utc::now();
        for s in &config.schedules {
            let key = s.dataset.to_string();
            if next_sweep.get(&key).is_some_and(|t| *t <= now) {
                if let Some(ds) = config.dataset(s.dataset.as_str())
                    && let Err(e) = runner.submit_unrun(ds).await
                {
                    tracing::error!(dataset = %key, error = %e, "scheduled sweep failed");
                }
                next_sweep.insert(key, s.cadence.next_after(now));
            }
        }
        for src in &config.sources {
            if next_poll.get(&src.name).is_some_and(|t| *t <= now) {
                poll_or_report(&env, src, json).await;
                next_poll.insert(src.name.clone(), src.cadence.next_after(now));
            }
        }
    }
    // Stop taking work; let the runs in progress finish (a run cut off would stay RUNNING), unless
    // asked again. Runs still waiting for a slot have no record: the next `sluice up` finds them.
    let _ = server.await;
    let (waiting, running) = runner.counts();
    if running > 0 || waiting > 0 {
        eprintln!(
            "sluice up: letting {running} run(s) in progress finish ({waiting} waiting are left for the next start); Ctrl-C again stops at once"
        );
    }
    runner.slots.close();
    let tasks = std::mem::take(
        &mut *runner
            .tasks
            .lock()
            .map_err(|_| anyhow::anyhow!("runner lock poisoned"))?,
    );
    tokio::select! {
        _ = tasks.join_all() => {}
        _ = tokio::signal::ctrl_c() => eprintln!("sluice up: stopped with runs in progress; they stay RUNNING until their files run again"),
    }
    env.db.settle().await;
    eprintln!("sluice up: stopped");
    Ok(ExitCode::SUCCESS)
}

/// `[gateway] token = "env:NAME"`: the variable's value (which must be set and not empty).
pub fn gateway_token(config: &sluice_spec::config::Config) -> anyhow::Result<Option<String>> {
    let Some(var) = &config.gateway.token_env else {
        return Ok(None);
    };
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_string())),
        _ => anyhow::bail!(
            "{}: [gateway] token names the variable {var}, which is not set (or empty): set it to the token clients must send",
            config.path.display()
        ),
    }
}

/// Polls a source; a failure is reported (and alerted by the poll), never the end of `up`.
async fn poll_or_report(env: &Embedded, src: &sluice_spec::config::Source, json: bool) {
    if let Err(e) = poll_embedded(env, src, Utc::now().date_naive(), json).await {
        eprintln!("source {}: {e:#}", src.name);
    }
}
