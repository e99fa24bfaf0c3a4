//! The Sluice pipeline as a library.
//!
//! - [`stages`]: the one dispatch point, a [`StageInput`](sluice_proto::StageInput) in and a
//!   [`StageOutput`](sluice_proto::StageOutput) or typed error out, with each stage's I/O through the
//!   ports (fetch inputs, run the sync stage crate in a blocking thread, store outputs by run id).
//! - [`summary`]: stage outputs folded into a run summary, and the workers' bookkeeping of a run
//!   ([`summary::RecordingHandler`]): the same rules in every mode.
//! - [`definition`]: `statemachine/pipeline.asl.json` and the typed execution input.
//! - [`embedded`] and [`file_run`]: `sluice run`, the definition executed in-process.
//! - [`faults`]: `SLUICE_INJECT_FAULTS`, to try the retry and alert paths.
//! - [`supersede`]: a changed re-upload removes the rows and partitions of the key's earlier versions.

pub mod batch;
pub mod definition;
pub mod embedded;
pub mod faults;
pub mod file_run;
pub mod objects;
pub mod stages;
pub mod summary;
pub mod supersede;

pub use stages::{Progress, StageContext, handle};
