//! AWS mode: `sluice worker`, `sluice dispatcher`, `sluice deploy`, `sluice runs --aws`.
//! (Being built: each command says so until it exists.)

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use sluice_proto::Stage;

fn not_built(what: &str) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`sluice {what}` is not built yet in this version")
}

pub async fn worker(_config: &Path, _stage: Stage, _concurrency: usize, _lease: Duration) -> anyhow::Result<ExitCode> {
    not_built("worker")
}

pub async fn dispatcher(_config: &Path) -> anyhow::Result<ExitCode> {
    not_built("dispatcher")
}

pub async fn deploy(_config: &Path) -> anyhow::Result<ExitCode> {
    not_built("deploy")
}

pub async fn runs_list(_config: &Path, _limit: u64, _json: bool) -> anyhow::Result<ExitCode> {
    not_built("runs list --aws")
}

pub async fn runs_show(_config: &Path, _run_id: &str, _json: bool) -> anyhow::Result<ExitCode> {
    not_built("runs show --aws")
}
