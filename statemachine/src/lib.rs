//! Amazon States Language for Sluice: a typed model of state machine definitions, a linter, a
//! Mermaid renderer and a local async executor that follows the AWS Step Functions semantics.
//!
//! The crate is generic ASL: it knows nothing about Sluice's stages. Task states are handed to a
//! [`executor::TaskRunner`]; time comes from a [`clock::Clock`], so tests (and
//! `sluice statemachine exec --fast`) can run hour-long backoffs instantly with a
//! [`clock::VirtualClock`].

#![forbid(unsafe_code)]

pub mod choice;
pub mod cli;
pub mod clock;
pub mod distributed;
pub mod error;
pub mod executor;
pub mod history;
pub mod intrinsics;
pub mod jsonata;
pub mod lint;
mod lint_jsonata;
mod load;
pub mod model;
pub mod objects;
pub mod path;
mod problem;
pub mod render;
pub mod responder;
pub mod svg;
pub mod template;
pub mod value;
pub mod variables;

pub use clock::{Clock, SystemClock, VirtualClock};
pub use error::StatesError;
pub use executor::{
    Execution, ExecutionStatus, Executor, HeartbeatHandle, TaskError, TaskRequest, TaskRunner,
};
pub use model::{DefinitionError, StateMachine};
pub use objects::{FolderObjects, MemoryObjects, ObjectSource};
pub use responder::Responder;
