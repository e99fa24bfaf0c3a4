//! The typed messages of Sluice.
//!
//! Everything that crosses a process boundary (an SQS message, a Step Functions task input or
//! output, a run summary in the run store or on stdout) is one of these types. They serialise with
//! serde, and their JSON Schemas are exported to `proto/schemas/` by [`schemas::all`] (a test fails
//! when the checked-in copies are stale).
//!
//! Payloads stay small: stages pass references to objects (the claim-check pattern), counts and
//! statistics, never rows.

pub mod batch;
pub mod error;
pub mod ids;
pub mod schemas;
pub mod stage;
pub mod summary;

pub use batch::*;
pub use error::{ErrorName, StageError};
pub use ids::{DatasetName, ObjectRef, RunId};
pub use stage::*;
pub use summary::*;
