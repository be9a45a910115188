//! The supervision state machine of one service, as a pure function: given the current state, an
//! input and the time, it returns the next state and the actions to perform. The service task
//! (`task.rs`) performs the actions; everything here is tested without a single process.

use std::time::{Duration, Instant};

use gitvisor_protocol::{ExitClass, ExitInfo, ServiceState};

use super::policy::{Policy, StartLimit};

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A start asked by a user (resets the start limit and backoff) or by the engine.
    Start {
        manual: bool,
    },
    Stop,
    Restart,
    Spawned,
    SpawnFailed(String),
    /// A condition (`Condition…=`) did not hold at an automatic restart: the service stays
    /// down, not failed (why).
    Skipped(String),
    Exited(ExitInfo),
    /// The single timer fired: restart delay in `backoff`, stop timeout in `stopping`.
    Timer,
    ExecStopDone,
    /// Every `ExecStart=` command of a oneshot ended well (the last one's exit): it is done.
    Finished(ExitInfo),
    /// A unit this one requires could not start.
    DependencyFailed(String),
    /// The engine kills the service for a cause (its health probes failed `HealthCheckRetries`
    /// times in a row, or it was not ready within `TimeoutStartSec=`): its end counts as a
    /// failure, for this reason.
    KillFor(String),
    /// The service missed its watchdog (`WatchdogSec=`): killed with `WatchdogSignal=`, a
    /// failure for this reason.
    Watchdog(String),
    /// A new version of the unit was committed. A failure of the old version (a failed start,
    /// a crash it was not restarted from) is forgotten, with its start-limit budget.
    Replaced,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Spawn,
    RunExecStop,
    /// SIGKILL what `ExecStop=` started: it outlived the stop timeout.
    KillExecStop,
    /// Send this signal to the service's process group.
    Signal(i32),
    /// SIGKILL the process group.
    Kill,
    /// SIGKILL what the exited main process left in its group.
    KillLeftovers,
    ArmTimer(Duration),
    CancelTimer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopPhase {
    ExecStop,
    Signal,
    Kill,
}

#[derive(Debug, Clone)]
pub struct Machine {
    pub state: ServiceState,
    /// Automatic restarts since the engine registered the service.
    pub restarts: u32,
    /// Position in the backoff schedule.
    pub step: u32,
    pub started_at: Option<Instant>,
    pub error: Option<String>,
    pub last_exit: Option<ExitInfo>,
    /// How the policy judged the last exit.
    pub last_class: Option<ExitClass>,
    restart_after_stop: bool,
    /// The stop under way is of a oneshot that remained active: no process to signal, its
    /// end is ExecStop='s.
    stopping_remained: bool,
    /// The stop under way is a kill for a cause (why): its end is a failure.
    pub killed_for: Option<String>,
    /// That kill is the watchdog's (`Restart=on-watchdog` restarts it).
    watchdog_kill: bool,
    stop_phase: Option<StopPhase>,
    limit: StartLimit,
}

impl Default for Machine {
    fn default() -> Self {
        Machine::new(ServiceState::Stopped)
    }
}

impl Machine {
    pub fn new(state: ServiceState) -> Machine {
        Machine {
            state,
            restarts: 0,
            step: 0,
            started_at: None,
            error: None,
            last_exit: None,
            last_class: None,
            restart_after_stop: false,
            stopping_remained: false,
            killed_for: None,
            watchdog_kill: false,
            stop_phase: None,
            limit: StartLimit::default(),
        }
    }

    /// A machine for a process adopted from an earlier engine.
    pub fn adopted(now: Instant, restarts: u32) -> Machine {
        Machine { restarts, started_at: Some(now), ..Machine::new(ServiceState::Running) }
    }

    pub fn stop_requested(&self) -> bool {
        self.state == ServiceState::Stopping
    }

    /// The stop under way still runs `ExecStop=` (its time is not up).
    pub fn in_exec_stop(&self) -> bool {
        self.state == ServiceState::Stopping && self.stop_phase == Some(StopPhase::ExecStop)
    }

    /// Applies `input`; returns the actions in the order they must run.
    pub fn step(&mut self, policy: &Policy, input: Input, now: Instant) -> Vec<Action> {
        use ServiceState::*;
        let input_is_restart = input == Input::Restart;
        let input_is_timer = input == Input::Timer;
        match (self.state, input) {
            (Stopped | Exited | Failed, Input::Start { manual }) => {
                if manual {
                    self.limit.reset();
                    self.step = 0;
                }
                self.begin_start(policy, now, vec![])
            }
            (Backoff, Input::Start { .. } | Input::Restart) => {
                self.begin_start(policy, now, vec![Action::CancelTimer])
            }
            (Starting | Running | Active, Input::Start { .. }) => vec![],
            (Stopping, Input::Start { .. }) => {
                self.restart_after_stop = true;
                vec![]
            }
            (Starting, Input::Spawned) => {
                self.state = Running;
                self.started_at = Some(now);
                self.error = None;
                vec![]
            }
            (Starting, Input::Skipped(why)) => {
                self.state = Stopped;
                self.error = Some(format!("start skipped: {why}"));
                vec![]
            }
            (Starting, Input::SpawnFailed(e)) => {
                self.state = Failed;
                self.error = Some(e);
                vec![]
            }
            (Starting | Running, Input::Stop) => {
                self.restart_after_stop = false;
                self.begin_stop(policy)
            }
            (Starting | Running, Input::Restart) => {
                self.restart_after_stop = true;
                self.begin_stop(policy)
            }
            (Stopped | Exited | Failed, Input::Restart) => {
                self.limit.reset();
                self.step = 0;
                self.begin_start(policy, now, vec![])
            }
            (Backoff, Input::Stop) => {
                self.state = Stopped;
                vec![Action::CancelTimer]
            }
            (Stopping, Input::Restart) => {
                // A user's request turns a health kill into that request.
                self.killed_for = None;
                self.restart_after_stop = true;
                vec![]
            }
            (Stopping, Input::Stop) => {
                self.killed_for = None;
                self.restart_after_stop = false;
                vec![]
            }
            (Starting | Running, Input::KillFor(reason)) => {
                // As systemd's watchdog: no ExecStop= (the service does not answer), the stop
                // signal, SIGKILL after TimeoutStopSec=.
                self.kill_for(policy, reason, policy.kill_signal, false)
            }
            (Starting | Running, Input::Watchdog(reason)) => {
                self.kill_for(policy, reason, policy.watchdog_signal, true)
            }
            (Starting, Input::Finished(exit)) => {
                // A oneshot's end: done, and active on with RemainAfterExit=.
                self.last_exit = Some(exit);
                self.last_class = Some(ExitClass::Clean);
                self.error = None;
                if policy.remain_after_exit {
                    self.state = Active;
                    self.started_at = Some(now);
                } else {
                    self.state = Exited;
                    self.started_at = None;
                }
                vec![Action::KillLeftovers]
            }
            (Active, Input::Stop | Input::Restart) => {
                let restart = input_is_restart;
                self.restart_after_stop = restart;
                if policy.has_exec_stop {
                    self.state = Stopping;
                    self.stopping_remained = true;
                    self.stop_phase = Some(StopPhase::ExecStop);
                    return vec![Action::RunExecStop, Action::ArmTimer(policy.timeout_stop)];
                }
                self.started_at = None;
                if restart {
                    self.limit.reset();
                    self.step = 0;
                    return self.begin_start(policy, now, vec![]);
                }
                self.state = Stopped;
                vec![]
            }
            (Stopping, Input::ExecStopDone | Input::Timer) if self.stopping_remained => {
                // What ExecStop= left (a timeout) is killed; the service is down either way.
                let mut actions = vec![Action::CancelTimer];
                if self.stop_phase == Some(StopPhase::ExecStop) && input_is_timer {
                    actions.push(Action::KillExecStop);
                }
                self.stopping_remained = false;
                self.stop_phase = None;
                self.started_at = None;
                if std::mem::take(&mut self.restart_after_stop) {
                    self.limit.reset();
                    self.step = 0;
                    return self.begin_start(policy, now, actions);
                }
                self.state = Stopped;
                self.error = None;
                actions
            }
            (Stopping, Input::Exited(exit)) if self.killed_for.is_some() => {
                let reason = self.killed_for.take().unwrap_or_default();
                self.stop_phase = None;
                let restart = if std::mem::take(&mut self.watchdog_kill) {
                    policy.restarts_watchdog()
                } else {
                    policy.restarts_unhealthy()
                };
                self.after_failure(
                    policy,
                    exit,
                    ExitClass::Failure,
                    restart,
                    Some(reason),
                    now,
                    vec![Action::CancelTimer],
                )
            }
            (Stopped | Exited | Failed, Input::Stop) => {
                if self.state != Stopped {
                    self.state = Stopped;
                }
                vec![]
            }
            (Stopping, Input::Exited(exit)) => {
                self.last_exit = Some(exit);
                self.last_class = Some(ExitClass::Stopped);
                self.started_at = None;
                self.stop_phase = None;
                let mut actions = vec![Action::CancelTimer, Action::KillLeftovers];
                if std::mem::take(&mut self.restart_after_stop) {
                    self.limit.reset();
                    self.step = 0;
                    actions = self.begin_start(policy, now, actions);
                } else {
                    self.state = Stopped;
                    self.error = None;
                }
                actions
            }
            (Starting | Running, Input::Exited(exit)) => self.on_unrequested_exit(policy, exit, now),
            (Backoff, Input::Timer) => self.begin_start(policy, now, vec![]),
            (Stopping, Input::ExecStopDone) if self.stop_phase == Some(StopPhase::ExecStop) => {
                self.stop_phase = Some(StopPhase::Signal);
                vec![Action::Signal(policy.kill_signal), Action::ArmTimer(policy.timeout_stop)]
            }
            (Stopping, Input::Timer) => match self.stop_phase {
                Some(StopPhase::ExecStop) => {
                    self.stop_phase = Some(StopPhase::Signal);
                    vec![
                        Action::KillExecStop,
                        Action::Signal(policy.kill_signal),
                        Action::ArmTimer(policy.timeout_stop),
                    ]
                }
                _ => {
                    self.stop_phase = Some(StopPhase::Kill);
                    vec![Action::Kill]
                }
            },
            (Failed, Input::Replaced) => {
                self.state = Stopped;
                self.error = None;
                self.limit.reset();
                self.step = 0;
                vec![]
            }
            (Exited | Active, Input::Replaced) => {
                self.error = None;
                vec![]
            }
            (Stopped | Exited | Failed | Backoff, Input::DependencyFailed(reason)) => {
                self.state = Failed;
                self.error = Some(reason);
                vec![Action::CancelTimer]
            }
            // Anything else is stale (a timer that raced a state change, a second exit...).
            _ => vec![],
        }
    }

    fn begin_start(&mut self, policy: &Policy, now: Instant, mut actions: Vec<Action>) -> Vec<Action> {
        match self.limit.try_start(policy, now) {
            Ok(()) => {
                self.state = ServiceState::Starting;
                actions.push(Action::Spawn);
            }
            Err(e) => {
                self.state = ServiceState::Failed;
                self.error = Some(e);
            }
        }
        actions
    }

    /// Kills the service for a cause (its end is a failure for `reason`) with `signal`, SIGKILL
    /// after `TimeoutStopSec=`.
    fn kill_for(&mut self, policy: &Policy, reason: String, signal: i32, watchdog: bool) -> Vec<Action> {
        self.killed_for = Some(reason);
        self.watchdog_kill = watchdog;
        self.restart_after_stop = false;
        self.state = ServiceState::Stopping;
        self.stop_phase = Some(StopPhase::Signal);
        vec![Action::Signal(signal), Action::ArmTimer(policy.timeout_stop)]
    }

    fn begin_stop(&mut self, policy: &Policy) -> Vec<Action> {
        self.state = ServiceState::Stopping;
        if policy.has_exec_stop {
            self.stop_phase = Some(StopPhase::ExecStop);
            vec![Action::RunExecStop, Action::ArmTimer(policy.timeout_stop)]
        } else {
            self.stop_phase = Some(StopPhase::Signal);
            vec![Action::Signal(policy.kill_signal), Action::ArmTimer(policy.timeout_stop)]
        }
    }

    fn on_unrequested_exit(&mut self, policy: &Policy, exit: ExitInfo, now: Instant) -> Vec<Action> {
        let verdict = policy.judge(&exit, false);
        // An end whose status cannot be known is not known to be an error: its last exit says
        // what is known, once.
        let error = (verdict.class == ExitClass::Failure).then(|| exit.describe());
        self.after_failure(policy, exit, verdict.class, verdict.restart, error, now, vec![])
    }

    /// After an end the engine did not ask for (or a health kill): the exit is recorded, and
    /// the service restarts through the backoff schedule and the start limit, or stays down.
    #[allow(clippy::too_many_arguments)]
    fn after_failure(
        &mut self,
        policy: &Policy,
        exit: ExitInfo,
        class: ExitClass,
        restart: bool,
        error: Option<String>,
        now: Instant,
        mut actions: Vec<Action>,
    ) -> Vec<Action> {
        let uptime = self.started_at.map(|t| now.saturating_duration_since(t)).unwrap_or_default();
        self.error = error;
        self.last_exit = Some(exit);
        self.last_class = Some(class);
        self.started_at = None;
        actions.push(Action::KillLeftovers);
        if !restart {
            // A oneshot that failed is failed, as in systemd; other services have exited (the
            // last exit says how).
            let failed = policy.oneshot && class == ExitClass::Failure;
            self.state = if failed { ServiceState::Failed } else { ServiceState::Exited };
            return actions;
        }
        if uptime >= policy.backoff_reset_after() {
            self.step = 0;
        }
        let delay = policy.delay(self.step);
        self.step = self.step.saturating_add(1);
        self.restarts = self.restarts.saturating_add(1);
        if delay.is_zero() {
            return self.begin_start(policy, now, actions);
        }
        self.state = ServiceState::Backoff;
        actions.push(Action::ArmTimer(delay));
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::super::policy::test_policy;
    use super::*;
    use gitvisor_units::RestartPolicy;
    use ServiceState::*;

    fn exit(code: i32) -> ExitInfo {
        ExitInfo::ended(Some(code), None, 0)
    }

    fn running(p: &Policy, now: Instant) -> Machine {
        let mut m = Machine::default();
        assert_eq!(m.step(p, Input::Start { manual: true }, now), vec![Action::Spawn]);
        assert_eq!(m.state, Starting);
        assert_eq!(m.step(p, Input::Spawned, now), vec![]);
        assert_eq!(m.state, Running);
        m
    }

    #[test]
    fn start_spawns_and_spawned_is_running() {
        let p = test_policy(RestartPolicy::No);
        running(&p, Instant::now());
    }

    #[test]
    fn spawn_failure_is_failed_with_the_error() {
        let p = test_policy(RestartPolicy::Always);
        let mut m = Machine::default();
        m.step(&p, Input::Start { manual: true }, Instant::now());
        m.step(&p, Input::SpawnFailed("no such file".into()), Instant::now());
        assert_eq!((m.state, m.error.as_deref()), (Failed, Some("no such file")));
    }

    #[test]
    fn exit_without_restart_is_exited_and_failure_is_recorded() {
        let p = test_policy(RestartPolicy::No);
        let now = Instant::now();
        let mut m = running(&p, now);
        assert_eq!(m.step(&p, Input::Exited(exit(3)), now), vec![Action::KillLeftovers]);
        assert_eq!(m.state, Exited);
        assert_eq!(m.error.as_deref(), Some("exited with status 3"));
        let mut m = running(&p, now);
        m.step(&p, Input::Exited(exit(0)), now);
        assert_eq!((m.state, m.error.clone()), (Exited, None));
    }

    #[test]
    fn restart_goes_through_backoff_and_the_timer() {
        let p = test_policy(RestartPolicy::OnFailure);
        let now = Instant::now();
        let mut m = running(&p, now);
        let a = m.step(&p, Input::Exited(exit(1)), now);
        assert_eq!(a, vec![Action::KillLeftovers, Action::ArmTimer(Duration::from_millis(100))]);
        assert_eq!((m.state, m.restarts), (Backoff, 1));
        assert_eq!(m.step(&p, Input::Timer, now), vec![Action::Spawn]);
        assert_eq!(m.state, Starting);
    }

    #[test]
    fn zero_delay_restarts_at_once() {
        let mut p = test_policy(RestartPolicy::Always);
        p.restart_sec = Duration::ZERO;
        let now = Instant::now();
        let mut m = running(&p, now);
        assert_eq!(m.step(&p, Input::Exited(exit(0)), now), vec![Action::KillLeftovers, Action::Spawn]);
        assert_eq!(m.state, Starting);
    }

    #[test]
    fn crash_loop_hits_the_start_limit_and_fails() {
        let mut p = test_policy(RestartPolicy::Always);
        p.restart_sec = Duration::ZERO;
        let now = Instant::now();
        let mut m = Machine::default();
        m.step(&p, Input::Start { manual: true }, now);
        for _ in 0..4 {
            m.step(&p, Input::Spawned, now);
            m.step(&p, Input::Exited(exit(1)), now);
            assert_eq!(m.state, Starting);
        }
        m.step(&p, Input::Spawned, now);
        m.step(&p, Input::Exited(exit(1)), now);
        assert_eq!(m.state, Failed);
        assert!(m.error.as_deref().unwrap().starts_with("start limit hit"));
        // A user's start clears the limit.
        assert_eq!(m.step(&p, Input::Start { manual: true }, now), vec![Action::Spawn]);
    }

    #[test]
    fn backoff_resets_after_staying_up() {
        let mut p = test_policy(RestartPolicy::Always);
        p.restart_sec = Duration::from_secs(1);
        p.restart_steps = 3;
        p.restart_max_delay = Some(Duration::from_secs(8));
        let t0 = Instant::now();
        let mut m = running(&p, t0);
        m.step(&p, Input::Exited(exit(1)), t0);
        m.step(&p, Input::Timer, t0);
        m.step(&p, Input::Spawned, t0);
        let a = m.step(&p, Input::Exited(exit(1)), t0);
        assert_eq!(a[1], Action::ArmTimer(Duration::from_secs(2)));
        m.step(&p, Input::Timer, t0);
        m.step(&p, Input::Spawned, t0);
        // Up for longer than RestartMaxDelaySec: the schedule starts over.
        let a = m.step(&p, Input::Exited(exit(1)), t0 + Duration::from_secs(9));
        assert_eq!(a[1], Action::ArmTimer(Duration::from_secs(1)));
    }

    #[test]
    fn stop_signals_then_kills_after_the_timeout() {
        let p = test_policy(RestartPolicy::Always);
        let now = Instant::now();
        let mut m = running(&p, now);
        assert_eq!(
            m.step(&p, Input::Stop, now),
            vec![Action::Signal(libc::SIGTERM), Action::ArmTimer(Duration::from_secs(10))]
        );
        assert_eq!(m.state, Stopping);
        assert_eq!(m.step(&p, Input::Timer, now), vec![Action::Kill]);
        let a = m.step(&p, Input::Exited(ExitInfo::ended(None, Some(9), 0)), now);
        assert_eq!(a, vec![Action::CancelTimer, Action::KillLeftovers]);
        assert_eq!(m.state, Stopped);
        assert_eq!(m.restarts, 0, "a requested stop is not restarted");
        assert_eq!((m.error.clone(), m.last_class), (None, Some(ExitClass::Stopped)));
    }

    #[test]
    fn exec_stop_runs_first_then_the_signal() {
        let mut p = test_policy(RestartPolicy::No);
        p.has_exec_stop = true;
        let now = Instant::now();
        let mut m = running(&p, now);
        assert_eq!(m.step(&p, Input::Stop, now), vec![Action::RunExecStop, Action::ArmTimer(p.timeout_stop)]);
        assert_eq!(
            m.step(&p, Input::ExecStopDone, now),
            vec![Action::Signal(libc::SIGTERM), Action::ArmTimer(p.timeout_stop)]
        );
        assert_eq!(m.step(&p, Input::Timer, now), vec![Action::Kill]);
    }

    #[test]
    fn exec_stop_timeout_moves_on_to_the_signal() {
        let mut p = test_policy(RestartPolicy::No);
        p.has_exec_stop = true;
        let now = Instant::now();
        let mut m = running(&p, now);
        m.step(&p, Input::Stop, now);
        assert_eq!(
            m.step(&p, Input::Timer, now),
            vec![Action::KillExecStop, Action::Signal(libc::SIGTERM), Action::ArmTimer(p.timeout_stop)],
            "the ExecStop command that hung is killed, not left behind"
        );
    }

    #[test]
    fn restart_stops_then_starts() {
        let p = test_policy(RestartPolicy::No);
        let now = Instant::now();
        let mut m = running(&p, now);
        m.step(&p, Input::Restart, now);
        assert_eq!(m.state, Stopping);
        let a = m.step(&p, Input::Exited(exit(0)), now);
        assert_eq!(a, vec![Action::CancelTimer, Action::KillLeftovers, Action::Spawn]);
        assert_eq!(m.state, Starting);
    }

    #[test]
    fn restart_of_a_stopped_service_starts_it() {
        let p = test_policy(RestartPolicy::No);
        let mut m = Machine::default();
        assert_eq!(m.step(&p, Input::Restart, Instant::now()), vec![Action::Spawn]);
    }

    #[test]
    fn stop_during_backoff_cancels_the_restart() {
        let p = test_policy(RestartPolicy::Always);
        let now = Instant::now();
        let mut m = running(&p, now);
        m.step(&p, Input::Exited(exit(1)), now);
        assert_eq!(m.step(&p, Input::Stop, now), vec![Action::CancelTimer]);
        assert_eq!(m.state, Stopped);
        assert_eq!(m.step(&p, Input::Timer, now), vec![], "a stale timer does nothing");
    }

    #[test]
    fn start_while_running_does_nothing() {
        let p = test_policy(RestartPolicy::No);
        let now = Instant::now();
        let mut m = running(&p, now);
        assert_eq!(m.step(&p, Input::Start { manual: true }, now), vec![]);
        assert_eq!(m.state, Running);
    }

    #[test]
    fn dependency_failure_marks_failed() {
        let p = test_policy(RestartPolicy::No);
        let mut m = Machine::default();
        m.step(&p, Input::DependencyFailed("requires db, which failed".into()), Instant::now());
        assert_eq!((m.state, m.error.as_deref()), (Failed, Some("requires db, which failed")));
    }

    #[test]
    fn adopted_process_exit_follows_the_policy() {
        let p = test_policy(RestartPolicy::OnFailure);
        let now = Instant::now();
        let mut m = Machine::adopted(now, 2);
        let unknown = super::super::process::unknown_exit();
        m.step(&p, Input::Exited(unknown.clone()), now);
        assert_eq!((m.state, m.restarts), (Backoff, 3));
        assert_eq!((m.error.clone(), m.last_class), (None, Some(ExitClass::Unknown)));
        // Not restarted: it is exited, with no error; its last exit says what is known.
        let p = test_policy(RestartPolicy::No);
        let mut m = Machine::adopted(now, 0);
        m.step(&p, Input::Exited(unknown.clone()), now);
        assert_eq!((m.state, m.error.clone(), m.last_exit), (Exited, None, Some(unknown)));
    }

    #[test]
    fn a_new_version_forgets_the_old_failure_and_its_budget() {
        let p = test_policy(RestartPolicy::No);
        let now = Instant::now();
        let mut m = Machine::default();
        m.step(&p, Input::Start { manual: false }, now);
        m.step(&p, Input::SpawnFailed("no such file".into()), now);
        assert_eq!(m.state, Failed);
        assert_eq!(m.step(&p, Input::Replaced, now), vec![]);
        assert_eq!((m.state, m.error.as_deref()), (Stopped, None));
        // An exited service keeps its state (it is not running) but loses the old error.
        let mut m = running(&p, now);
        m.step(&p, Input::Exited(exit(3)), now);
        assert_eq!((m.state, m.error.is_some()), (Exited, true));
        m.step(&p, Input::Replaced, now);
        assert_eq!((m.state, m.error.as_deref()), (Exited, None));
        // A running one is untouched.
        let mut m = running(&p, now);
        assert_eq!(m.step(&p, Input::Replaced, now), vec![]);
        assert_eq!(m.state, Running);
    }

    #[test]
    fn a_new_version_resets_a_spent_start_limit() {
        let mut p = test_policy(RestartPolicy::No);
        p.start_limit_burst = 1;
        let now = Instant::now();
        let mut m = Machine::default();
        m.step(&p, Input::Start { manual: false }, now);
        m.step(&p, Input::Spawned, now);
        m.step(&p, Input::Exited(exit(1)), now);
        m.step(&p, Input::Start { manual: false }, now);
        assert_eq!(m.state, Failed, "the second start in the interval is over the limit");
        m.step(&p, Input::Replaced, now);
        assert_eq!(m.step(&p, Input::Start { manual: false }, now), vec![Action::Spawn]);
    }

    fn killed(signal: i32) -> ExitInfo {
        ExitInfo { code: None, signal: Some(signal), ..exit(0) }
    }

    #[test]
    fn an_unhealthy_service_is_killed_and_its_end_is_a_restarted_failure() {
        let mut p = test_policy(RestartPolicy::OnFailure);
        p.has_exec_stop = true;
        let now = Instant::now();
        let mut m = running(&p, now);
        let why = "unhealthy: 3 probes failed: HTTP 500".to_string();
        // No ExecStop=: the stop signal at once, SIGKILL after the timeout.
        assert_eq!(
            m.step(&p, Input::KillFor(why.clone()), now),
            vec![Action::Signal(libc::SIGTERM), Action::ArmTimer(p.timeout_stop)]
        );
        assert_eq!(m.state, Stopping);
        // SIGTERM is a clean end for Restart=; after a health kill it is a failure.
        let a = m.step(&p, Input::Exited(killed(libc::SIGTERM)), now);
        assert_eq!(a, vec![Action::CancelTimer, Action::KillLeftovers, Action::ArmTimer(p.restart_sec)]);
        assert_eq!((m.state, m.restarts, m.error.as_deref()), (Backoff, 1, Some(why.as_str())));
        assert_eq!(m.last_class, Some(ExitClass::Failure));
        assert_eq!(m.killed_for, None);
    }

    #[test]
    fn health_kills_count_against_the_start_limit_and_follow_restart() {
        let mut p = test_policy(RestartPolicy::Always);
        p.restart_sec = Duration::ZERO;
        p.start_limit_burst = 2;
        let now = Instant::now();
        let mut m = running(&p, now);
        m.step(&p, Input::KillFor("unhealthy".into()), now);
        assert_eq!(m.step(&p, Input::Exited(killed(libc::SIGTERM)), now).last(), Some(&Action::Spawn));
        m.step(&p, Input::Spawned, now);
        m.step(&p, Input::KillFor("unhealthy".into()), now);
        m.step(&p, Input::Exited(killed(libc::SIGKILL)), now);
        assert_eq!(m.state, Failed, "a third start in the interval is over the limit");
        // Restart=on-success and no leave it down, with the reason.
        for restart in [RestartPolicy::No, RestartPolicy::OnSuccess] {
            let p = test_policy(restart);
            let mut m = running(&p, now);
            m.step(&p, Input::KillFor("unhealthy: 1 probe failed: HTTP 500".into()), now);
            m.step(&p, Input::Exited(killed(libc::SIGTERM)), now);
            assert_eq!((m.state, m.error.as_deref()), (Exited, Some("unhealthy: 1 probe failed: HTTP 500")));
        }
    }

    #[test]
    fn a_users_stop_during_a_health_kill_is_a_stop() {
        let p = test_policy(RestartPolicy::Always);
        let now = Instant::now();
        let mut m = running(&p, now);
        m.step(&p, Input::KillFor("unhealthy".into()), now);
        m.step(&p, Input::Stop, now);
        m.step(&p, Input::Exited(killed(libc::SIGTERM)), now);
        assert_eq!((m.state, m.error.as_deref(), m.restarts), (Stopped, None, 0));
        // Health verdicts for a service that is not running are stale.
        assert_eq!(m.step(&p, Input::KillFor("late".into()), now), vec![]);
        assert_eq!(m.state, Stopped);
    }

    fn oneshot(remain: bool, exec_stop: bool) -> Policy {
        let mut p = test_policy(RestartPolicy::No);
        p.oneshot = true;
        p.remain_after_exit = remain;
        p.has_exec_stop = exec_stop;
        p
    }

    #[test]
    fn a_oneshot_starts_until_finished_then_exits_or_remains_active() {
        let now = Instant::now();
        let p = oneshot(false, false);
        let mut m = Machine::default();
        assert_eq!(m.step(&p, Input::Start { manual: true }, now), vec![Action::Spawn]);
        assert_eq!(m.state, Starting, "its commands run while it starts");
        assert_eq!(m.step(&p, Input::Finished(exit(0)), now), vec![Action::KillLeftovers]);
        assert_eq!((m.state, m.last_class, m.error.as_deref()), (Exited, Some(ExitClass::Clean), None));
        // RemainAfterExit=yes: active with no process; a start does nothing, a stop ends it.
        let p = oneshot(true, false);
        let mut m = Machine::default();
        m.step(&p, Input::Start { manual: true }, now);
        m.step(&p, Input::Finished(exit(0)), now);
        assert_eq!(m.state, Active);
        assert_eq!(m.step(&p, Input::Start { manual: false }, now), vec![]);
        assert_eq!(m.state, Active);
        assert_eq!(m.step(&p, Input::Restart, now), vec![Action::Spawn], "a restart runs it again");
        m.step(&p, Input::Finished(exit(0)), now);
        assert_eq!(m.step(&p, Input::Stop, now), vec![]);
        assert_eq!(m.state, Stopped);
    }

    #[test]
    fn a_remaining_oneshot_stops_through_exec_stop() {
        let now = Instant::now();
        let p = oneshot(true, true);
        let mut m = Machine::default();
        m.step(&p, Input::Start { manual: true }, now);
        m.step(&p, Input::Finished(exit(0)), now);
        assert_eq!(m.step(&p, Input::Stop, now), vec![Action::RunExecStop, Action::ArmTimer(p.timeout_stop)]);
        assert_eq!(m.state, Stopping);
        assert_eq!(m.step(&p, Input::ExecStopDone, now), vec![Action::CancelTimer]);
        assert_eq!(m.state, Stopped);
        // An ExecStop= that outlives the timeout is killed; a restart then starts again.
        m.step(&p, Input::Start { manual: true }, now);
        m.step(&p, Input::Finished(exit(0)), now);
        m.step(&p, Input::Restart, now);
        assert_eq!(
            m.step(&p, Input::Timer, now),
            vec![Action::CancelTimer, Action::KillExecStop, Action::Spawn]
        );
        assert_eq!(m.state, Starting);
    }

    #[test]
    fn a_oneshot_that_fails_is_failed_unless_restarted() {
        let now = Instant::now();
        let p = oneshot(false, false);
        let mut m = Machine::default();
        m.step(&p, Input::Start { manual: true }, now);
        m.step(&p, Input::Exited(exit(2)), now);
        assert_eq!((m.state, m.error.as_deref()), (Failed, Some("exited with status 2")));
        let mut p = oneshot(false, false);
        p.restart = RestartPolicy::OnFailure;
        let mut m = Machine::default();
        m.step(&p, Input::Start { manual: true }, now);
        let a = m.step(&p, Input::Exited(exit(2)), now);
        assert_eq!(a, vec![Action::KillLeftovers, Action::ArmTimer(p.restart_sec)]);
        assert_eq!(m.state, Backoff);
        // A simple service that fails has exited (the spec's states), as before.
        let p = test_policy(RestartPolicy::No);
        let mut m = running(&p, now);
        m.step(&p, Input::Exited(exit(2)), now);
        assert_eq!(m.state, Exited);
    }

    #[test]
    fn a_missed_watchdog_kills_with_its_signal_and_on_watchdog_restarts() {
        let now = Instant::now();
        for (restart, restarted) in
            [(RestartPolicy::OnWatchdog, true), (RestartPolicy::OnFailure, true), (RestartPolicy::No, false)]
        {
            let p = test_policy(restart);
            let mut m = running(&p, now);
            assert_eq!(
                m.step(&p, Input::Watchdog("watchdog: no WATCHDOG=1 within 1s".into()), now),
                vec![Action::Signal(libc::SIGABRT), Action::ArmTimer(p.timeout_stop)]
            );
            let a = m.step(&p, Input::Exited(killed(libc::SIGABRT)), now);
            assert_eq!(a.contains(&Action::ArmTimer(p.restart_sec)), restarted, "{restart:?}");
            assert_eq!(m.error.as_deref(), Some("watchdog: no WATCHDOG=1 within 1s"));
        }
        // Restart=on-watchdog restarts nothing else.
        let p = test_policy(RestartPolicy::OnWatchdog);
        let mut m = running(&p, now);
        m.step(&p, Input::Exited(exit(1)), now);
        assert_eq!(m.state, Exited);
    }
}
