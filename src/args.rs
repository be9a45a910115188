//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gitvisor",
    version,
    about = "A per-user process supervisor with git-versioned systemd-style units"
)]
pub struct Cli {
    /// The gitvisor home: everything under DIR (default: $GITVISOR_HOME, else the platform's
    /// usual places).
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Cmd,
}

/// Services named, or every service with `--all`.
#[derive(Args)]
pub struct Names {
    #[arg(required_unless_present = "all", value_name = "NAME")]
    pub names: Vec<String>,
    /// Every service.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run the engine headless in the foreground (SIGTERM or Ctrl-C stops services and exits).
    Daemon,
    /// Show the services and their states (every service when none is named).
    Status {
        names: Vec<String>,
        /// Every service (the same as naming none).
        #[arg(long, conflicts_with = "names")]
        all: bool,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
        /// Show it again every 2 s (CPU % and memory are sampled while it watches) until
        /// interrupted.
        #[arg(long, conflicts_with = "json")]
        watch: bool,
    },
    /// Start services (and what they require), in dependency order.
    Start {
        #[command(flatten)]
        names: Names,
        /// Return once they are ready (`ReadyCheck=`), not only started: exit 0 when ready, 1
        /// with the reason when one failed or was not ready within `TimeoutStartSec=`.
        #[arg(long)]
        wait: bool,
    },
    /// Stop services (and what requires them).
    Stop(Names),
    /// Restart services.
    Restart(Names),
    /// Ask running services to reload their configuration: `ExecReload=`, or SIGHUP.
    Reload(Names),
    /// Enable services: a commit adding `[Install] WantedBy=default.target`, applied at once.
    Enable {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Disable services: a commit removing their `[Install] WantedBy=`, applied at once.
    Disable {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show services' output: one service's, several interleaved by time, or every one's.
    Logs {
        names: Vec<String>,
        /// Every service (the same as naming none).
        #[arg(long, conflicts_with = "names")]
        all: bool,
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
    /// Services' recent CPU and memory: the samples taken while someone looked (the window,
    /// `status`), with a sparkline of each.
    Metrics {
        names: Vec<String>,
        /// Print JSON for scripts (every sample).
        #[arg(long)]
        json: bool,
    },
    /// The timer units: when each elapses next and last, and the service it starts.
    Timers {
        /// Print JSON for scripts.
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
    /// Turn a Procfile (+ .env), process-compose.yaml, PM2 ecosystem file or systemd units into
    /// unit files, in one commit applied at once; every key that does not translate is listed.
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print the units and what did not translate; write and commit nothing.
        #[arg(long)]
        dry_run: bool,
        /// Put this before every unit name (`--prefix app-`: web becomes app-web.service).
        #[arg(long)]
        prefix: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print the effective settings from config.toml.
    Config,
    /// Git maintenance (`git gc --auto`) of the services repository and `[maintenance] repos`.
    Maintenance {
        #[command(subcommand)]
        command: MaintenanceCmd,
    },
    /// Fleet mode: the nodes sharing this services repository and Redis, and who runs each
    /// singleton.
    Fleet {
        #[command(subcommand)]
        command: FleetCmd,
    },
    /// Install a systemd user unit that runs `gitvisor daemon` at login (a server, or a desktop
    /// without the tray), and start it when a user manager runs.
    InstallUserService {
        /// Remove the unit instead (the engine it runs is stopped first).
        #[arg(long)]
        remove: bool,
    },
}

#[derive(Subcommand)]
pub enum MaintenanceCmd {
    /// The settings, the runs going and the last ones, and why the last skipped run was skipped.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Run it now wherever the safety checks allow (every check but the minimum interval).
    Run,
}

#[derive(Subcommand)]
pub enum FleetCmd {
    /// The nodes seen (last heartbeat), and each singleton's holder, lease expiry and fencing
    /// token.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum CrashCmd {
    /// Reports, newest first: id, service, time, reason, size.
    List {
        /// Only this service's reports.
        service: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A report's summary (from its report.json) and the files it holds. ID: a report's id, a
    /// unique prefix of one, or `latest`.
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
