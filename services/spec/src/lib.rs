//! The dataset spec and everything derived from it without I/O: typed values and their canonical
//! form, the canonical CSV reader, where every output of a run lives, and number formatting.
//!
//! Stage crates depend on this crate and on `sluice-proto` only; no SDK, no database driver.

pub mod cadence;
pub mod canonical;
pub mod config;
pub mod format;
pub mod keys;
pub mod values;

pub use sluice_proto as proto;
