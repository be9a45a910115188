//! What `gitvisor maintenance status|run` shows: git maintenance runs and why one was skipped.

use serde::{Deserialize, Serialize};

/// One `git gc --auto` run, finished or still going.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceRun {
    /// The repository's working directory (or the git dir of a bare one).
    pub repo: String,
    /// Unix time in milliseconds.
    pub started_ms: u64,
    /// `None` while it runs.
    pub duration_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// The last few KiB of what gc printed (stdout and stderr).
    pub output_tail: String,
    /// Asked by `gitvisor maintenance run` (the interval was not checked).
    pub forced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceSkip {
    pub repo: String,
    pub at_ms: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MaintenanceStatusReply {
    /// The `[maintenance]` settings in force.
    pub settings: serde_json::Value,
    /// The repositories maintained: the services repository, then `[maintenance] repos`.
    pub repos: Vec<String>,
    pub running: Vec<MaintenanceRun>,
    /// The last runs, newest first (at most 100 are kept).
    pub runs: Vec<MaintenanceRun>,
    /// The last time a run was considered and did not happen, and why.
    pub last_skip: Option<MaintenanceSkip>,
}

/// What `maintenance.run` did: the repositories whose gc started, and those skipped with why.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MaintenanceRunReply {
    pub started: Vec<String>,
    pub skipped: Vec<MaintenanceSkip>,
}
