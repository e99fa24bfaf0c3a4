//! The core every Sluice deployment shares: the dataset spec, typed values, the ports (object store,
//! run store, row sink, mailer) with their embedded adapters, and where each output lives.

pub mod canonical;
pub mod config;
pub mod keys;
pub mod values;

pub use sluice_proto as proto;
pub mod aws;
pub mod embedded;
pub mod format;
pub mod ports;
pub mod worker;
