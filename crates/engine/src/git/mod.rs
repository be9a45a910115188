//! Git-backed configuration: the services repository, the sync plan, the watcher, and (to come)
//! maintenance.

pub mod maintenance;
pub mod plan;
pub mod repo;
pub mod watcher;

pub use repo::{short, GitError, Head, ServicesRepo};
