//! Supervision of services: the pure state machine and its policy, spawning, kernel-level process
//! handling, what contains a service's processes, health probes (to come), and the task that
//! drives one service.

pub mod cgroup;
pub mod conditions;
pub mod containment;
pub mod health;
pub mod machine;
pub mod notify;
pub mod pid_namespace;
pub mod policy;
pub mod process;
pub mod readiness;
pub mod spawn;
pub mod task;
pub mod unenforced;
mod vfork;

pub use task::{Command, Initial, Outcome, ServiceCtx, Snapshot};
