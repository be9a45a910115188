//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gitvisor",
    version,
    about = "A per-user process supervisor with git-versioned systemd-style units"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run the engine headless in the foreground (SIGTERM or Ctrl-C stops services and exits).
    Daemon,
    /// Show the services and their states.
    Status {
        names: Vec<String>,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Start services (and what they require), in dependency order.
    Start {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Stop services (and what requires them).
    Stop {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Restart services.
    Restart {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show a service's output.
    Logs {
        name: String,
        /// Number of lines to show.
        #[arg(short = 'n', long = "lines", default_value_t = 50)]
        lines: usize,
        /// Keep printing new lines as they come.
        #[arg(short, long)]
        follow: bool,
    },
    /// Stream the engine's events.
    Events {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Apply the committed units now and print what was done.
    Sync,
    /// Commits of the services repository with the units each changed and whether it runs.
    History {
        /// Number of commits to show.
        #[arg(short = 'n', long = "count", default_value_t = 20)]
        count: usize,
        #[arg(long)]
        json: bool,
    },
    /// Make a new commit whose units are those of COMMIT, and apply it.
    Rollback { commit: String },
    /// Show what a rollback to COMMIT would change in the unit files.
    Diff { commit: String },
    /// Edit a unit in $VISUAL or $EDITOR, validate it, and commit it.
    Edit { name: String },
    /// Crash reports: list, show, export, remove.
    Crash {
        #[command(subcommand)]
        command: CrashCmd,
    },
    /// Capture a service's working directory now, written as a tarball beside the crash reports.
    Capture { name: String },
    /// Check unit files offline (a file or a directory; default: the services directory).
    Validate { path: Option<PathBuf> },
    /// Print the effective settings from config.toml.
    Config,
}

#[derive(Subcommand)]
pub enum CrashCmd {
    /// Reports, newest first: id, service, time, reason, size.
    List {
        #[arg(long)]
        json: bool,
    },
    /// A report's summary (from its report.json) and the files it holds.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Copy a report to PATH (a file that does not exist yet, or a directory).
    Export { id: String, path: PathBuf },
    /// Remove a report, or all of them.
    Rm {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        #[arg(long)]
        all: bool,
    },
}
