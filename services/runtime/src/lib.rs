//! What every Sluice process shares at run time, with no adapter in it: the ports (traits) stage I/O
//! goes through, the message consumer that workers and the dispatcher both run, graceful shutdown, and
//! the rules of runs (a status never goes backwards).

pub mod consumer;
pub mod ports;
pub mod runs;
pub mod shutdown;
pub mod worker;

pub use sluice_proto as proto;
