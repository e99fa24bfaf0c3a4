//! `sluice up`: embedded and long-running. Every two seconds it looks at the landing folder of each
//! dataset and, once what is there has stopped changing (a file still being copied in is left until it
//! has), runs the objects that have no run; it runs the sweeps (`[[schedule]]`) and polls the sources
//! (`[[source]]`) on their cadence. At start, each sweep runs once and each source whose last poll is
//! older than its current tick is polled once: a tick missed while `up` was down runs once, not once
//! per missed tick. Ctrl-C or SIGTERM stops it between two pieces of work.
//! (The web UI and HTTP API will be served here too; not built yet.)

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::{Embedded, poll_embedded, sweep_embedded};

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

pub async fn up(
    env: &Embedded,
    json: bool,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<ExitCode> {
    let config = env.config.clone();
    let landing_root = env.data_dir.join("buckets").join(&config.buckets.landing);
    eprintln!(
        "sluice up: watching {} ({} dataset(s)), {} sweep(s), {} source(s); Ctrl-C stops",
        landing_root.display(),
        config.datasets.len(),
        config.schedules.len(),
        config.sources.len()
    );
    let today = || Utc::now().date_naive();

    // Catch up once: each sweep now, each source whose last poll is before its current tick.
    let mut next_sweep: HashMap<String, DateTime<Utc>> = HashMap::new();
    for s in &config.schedules {
        if let Some(ds) = config.dataset(s.dataset.as_str())
            && let Err(e) = sweep_embedded(env, ds, today(), json).await
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
            poll_or_report(env, src, json).await;
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
                if let Err(e) = sweep_embedded(env, ds, today(), json).await {
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
                    && let Err(e) = sweep_embedded(env, ds, today(), json).await
                {
                    tracing::error!(dataset = %key, error = %e, "scheduled sweep failed");
                }
                next_sweep.insert(key, s.cadence.next_after(now));
            }
        }
        for src in &config.sources {
            if next_poll.get(&src.name).is_some_and(|t| *t <= now) {
                poll_or_report(env, src, json).await;
                next_poll.insert(src.name.clone(), src.cadence.next_after(now));
            }
        }
    }
    env.db.settle().await;
    eprintln!("sluice up: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Polls a source; a failure is reported (and alerted by the poll), never the end of `up`.
async fn poll_or_report(env: &Embedded, src: &sluice_spec::config::Source, json: bool) {
    if let Err(e) = poll_embedded(env, src, Utc::now().date_naive(), json).await {
        eprintln!("source {}: {e:#}", src.name);
    }
}
