//! Supervision of services: the pure state machine and its policy, spawning, kernel-level process
//! handling, and the task that drives one service.

pub mod machine;
pub mod policy;
pub mod process;
pub mod spawn;
pub mod task;

pub use task::{Command, Initial, Outcome, ServiceCtx, Snapshot};
