//! Git maintenance (SPEC section 9): `git gc --auto` on the services repository and on the
//! repositories `[maintenance] repos` names, after a sync applied a new commit and once a day.
//!
//! A run happens only when every check of [`checks`] passes and the repository's maintenance
//! lock (the engine's lock primitive, with its lock file in that repository's git dir) is
//! free. Each run is a tracked child process: start, exit, duration and the tail of its output
//! are recorded (the last 100, in `maintenance.json`, so the interval survives a restart) and
//! announced as an event. Nothing waits for a run; at shutdown the engine gives running ones a
//! bounded time, then terminates them.

pub mod checks;
mod run;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use gitvisor_protocol::{EventKind, MaintenanceRun, MaintenanceSkip, MaintenanceStatusReply};
use gitvisor_state::Locks;
use serde::{Deserialize, Serialize};

use crate::background::Background;
use crate::events::EventBus;
use crate::settings::MaintenanceSettings;
use checks::{Inputs, Skip};

/// Runs kept in the record.
const KEPT: usize = 100;
/// How often maintenance is considered without a sync.
pub const DAILY: Duration = Duration::from_secs(24 * 3600);
/// The lock key of a repository's maintenance (its lock file lives in the git dir).
const LOCK_KEY: &str = "gitvisor-maintenance";
/// The background task name of a run.
const RUN_TASK: &str = "maintenance run";

/// What survives a restart: the last runs and the last skip.
#[derive(Default, Serialize, Deserialize)]
struct Record {
    runs: VecDeque<MaintenanceRun>,
    last_skip: Option<MaintenanceSkip>,
}

#[derive(Default)]
struct State {
    record: Record,
    /// Runs going now, by repository, with their process ids.
    running: HashMap<String, (MaintenanceRun, Option<u32>)>,
}

/// The engine's maintenance: cheap to clone, shared with its background tasks.
#[derive(Clone)]
pub struct Maintainer {
    settings: MaintenanceSettings,
    repos: Vec<PathBuf>,
    record_file: PathBuf,
    bus: EventBus,
    state: Arc<Mutex<State>>,
    finished: Arc<tokio::sync::Notify>,
}

impl Maintainer {
    /// `services`: the services repository; the settings add more.
    pub fn new(
        settings: MaintenanceSettings,
        services: &Path,
        record_file: PathBuf,
        bus: EventBus,
    ) -> Maintainer {
        let mut repos = vec![services.to_path_buf()];
        repos.extend(settings.repos.iter().map(PathBuf::from));
        let record = gitvisor_state::load_or_default::<Record>(&record_file).value;
        Maintainer {
            settings,
            repos,
            record_file,
            bus,
            state: Arc::new(Mutex::new(State { record, running: HashMap::new() })),
            finished: Arc::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Considers every repository now, starting a run where the checks allow; `forced` skips
    /// the minimum interval. Answers at once with what started and what was skipped.
    pub fn consider(&self, forced: bool, background: &Background) -> (Vec<String>, Vec<MaintenanceSkip>) {
        let mut started = Vec::new();
        let mut skipped = Vec::new();
        for repo in &self.repos {
            match self.start_run(repo, forced, background) {
                Ok(()) => started.push(repo.display().to_string()),
                Err(skip) => {
                    let s = MaintenanceSkip {
                        repo: repo.display().to_string(),
                        at_ms: crate::time::now_ms(),
                        reason: skip.to_string(),
                    };
                    tracing::debug!("maintenance of {} skipped: {}", s.repo, s.reason);
                    self.state().record.last_skip = Some(s.clone());
                    skipped.push(s);
                }
            }
        }
        self.save();
        (started, skipped)
    }

    fn start_run(&self, repo: &Path, forced: bool, background: &Background) -> Result<(), Skip> {
        let key = repo.display().to_string();
        let git_dir = git_dir(repo).ok_or_else(|| Skip::NotARepository(key.clone()))?;
        let host = crate::time::host_name();
        {
            let state = self.state();
            if state.running.contains_key(&key) {
                return Err(Skip::Concurrency {
                    running: state.running.len(),
                    max: self.settings.max_concurrent,
                });
            }
            let last = state
                .record
                .runs
                .iter()
                .find(|r| r.repo == key)
                .map(|r| SystemTime::UNIX_EPOCH + Duration::from_millis(r.started_ms));
            let inputs = Inputs {
                enabled: self.settings.enabled,
                min_interval: self.settings.min_interval,
                last,
                now: SystemTime::now(),
                forced,
                git_dir: &git_dir,
                running: state.running.len(),
                max_concurrent: self.settings.max_concurrent,
                prune: &self.settings.prune,
                host: &host,
            };
            checks::check(&inputs, crate::supervisor::process::is_alive)?;
        }
        // The repository's lock, taken now (not waited for) and held by the run.
        let locks = Locks::local(git_dir);
        let guard = locks.try_hold(LOCK_KEY, RUN_TASK).map_err(|e| Skip::Locked(e.to_string()))?;
        let run = MaintenanceRun {
            repo: key.clone(),
            started_ms: crate::time::now_ms(),
            duration_ms: None,
            exit_code: None,
            signal: None,
            output_tail: String::new(),
            forced,
        };
        self.state().running.insert(key.clone(), (run.clone(), None));
        let me = self.clone();
        let repo = repo.to_path_buf();
        background.spawn(RUN_TASK, async move {
            let _held = guard;
            let pid_of = me.clone();
            let key_of = key.clone();
            let done = run::gc(&repo, &me.settings, move |pid| {
                if let Some(r) = pid_of.state().running.get_mut(&key_of) {
                    r.1 = Some(pid);
                }
            })
            .await;
            me.finish_run(&key, run, done);
        });
        Ok(())
    }

    fn finish_run(&self, key: &str, mut run: MaintenanceRun, done: run::Done) {
        run.duration_ms = Some(crate::time::now_ms().saturating_sub(run.started_ms));
        run.exit_code = done.exit_code;
        run.signal = done.signal;
        run.output_tail = done.output_tail;
        {
            let mut state = self.state();
            state.running.remove(key);
            state.record.runs.push_front(run.clone());
            state.record.runs.truncate(KEPT);
        }
        self.save();
        self.finished.notify_waiters();
        self.bus.publish(EventKind::Maintenance { run });
    }

    fn save(&self) {
        let bytes = {
            let state = self.state();
            serde_json::to_vec_pretty(&state.record).unwrap_or_default()
        };
        if let Err(e) = gitvisor_state::write_atomic(&self.record_file, &bytes) {
            tracing::warn!("cannot save {}: {e}", self.record_file.display());
        }
    }

    pub fn status(&self) -> MaintenanceStatusReply {
        let state = self.state();
        MaintenanceStatusReply {
            settings: serde_json::to_value(&self.settings).unwrap_or_default(),
            repos: self.repos.iter().map(|r| r.display().to_string()).collect(),
            running: state.running.values().map(|(r, _)| r.clone()).collect(),
            runs: state.record.runs.iter().cloned().collect(),
            last_skip: state.record.last_skip.clone(),
        }
    }

    /// At shutdown: waits up to `grace` for running gc processes, then asks the rest to end
    /// (SIGTERM) and gives them a moment to be recorded; whatever still runs is killed when
    /// its task is stopped.
    pub async fn finish(&self, grace: Duration) {
        if self.wait_idle(grace).await {
            return;
        }
        let pids: Vec<u32> = self.state().running.values().filter_map(|(_, pid)| *pid).collect();
        for pid in pids {
            tracing::warn!("git maintenance (process {pid}) still runs at shutdown: terminating it");
            crate::supervisor::process::signal_process(pid, libc::SIGTERM);
        }
        self.wait_idle(Duration::from_secs(2)).await;
    }

    /// True once no run is going, false if some still runs after `limit`.
    async fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.finished.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.state().running.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }
}

/// The git dir of the repository at `repo` (a working directory, or a bare repository).
fn git_dir(repo: &Path) -> Option<PathBuf> {
    git2::Repository::open(repo).ok().map(|r| r.path().to_path_buf())
}
