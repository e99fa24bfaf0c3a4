//! Scripted failures (`SLUICE_INJECT_FAULTS`), applied by the stage dispatch before a stage runs, so
//! the embedded run and the AWS workers fail the same way.

use std::collections::HashMap;
use std::sync::Mutex;

use sluice_proto::{ErrorName, Stage, StageError};

/// Scripted failures for trying the retry and alert paths:
/// `SLUICE_INJECT_FAULTS="filter-stats=transient:2,plotter=invalid"` makes the first two filter-stats
/// attempts fail with Sluice.Transient and every plotter attempt with Sluice.InvalidInput. The counts are
/// per [`Faults`] value: one per embedded run, one per worker process in AWS mode.
#[derive(Debug, Default)]
pub struct Faults(Mutex<HashMap<Stage, (ErrorName, u32)>>);

impl Faults {
    /// The faults `SLUICE_INJECT_FAULTS` asks for (none when it is unset).
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var("SLUICE_INJECT_FAULTS") {
            Ok(spec) => Faults::parse(&spec),
            Err(_) => Ok(Faults::default()),
        }
    }

    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let mut map = HashMap::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = || {
                anyhow::anyhow!(
                    "SLUICE_INJECT_FAULTS: {item:?} is not STAGE=transient[:N] or STAGE=invalid[:N]"
                )
            };
            let (stage, rest) = item.split_once('=').ok_or_else(bad)?;
            let stage = Stage::parse(stage).ok_or_else(bad)?;
            let (kind, n) = rest.split_once(':').unwrap_or((rest, ""));
            let name = match kind {
                "transient" => ErrorName::Transient,
                "invalid" => ErrorName::InvalidInput,
                _ => return Err(bad()),
            };
            let n = if n.is_empty() {
                u32::MAX
            } else {
                n.parse().map_err(|_| bad())?
            };
            map.insert(stage, (name, n));
        }
        Ok(Faults(Mutex::new(map)))
    }

    /// The injected failure for this attempt at `stage`, if one is left.
    pub fn take(&self, stage: Stage) -> Option<StageError> {
        let mut map = self.0.lock().ok()?;
        let (name, left) = map.get_mut(&stage)?;
        if *left == 0 {
            return None;
        }
        *left -= 1;
        Some(StageError::new(
            name.clone(),
            format!("injected by SLUICE_INJECT_FAULTS for {stage}"),
        ))
    }
}
