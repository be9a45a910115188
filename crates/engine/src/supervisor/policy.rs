//! What a unit says about supervising it, and the pure rules built on it: what an exit means
//! (its class, whether it is restarted, whether it gets a crash report), the restart delay
//! schedule, the start limit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use gitvisor_protocol::{ExitClass, ExitInfo};
use gitvisor_units::{ExitStatusSet, RestartPolicy, ServiceType, Unit};

/// The signals systemd counts as a clean end (systemd.service(5), `Restart=`).
const CLEAN_SIGNALS: [i32; 4] = [libc::SIGHUP, libc::SIGINT, libc::SIGTERM, libc::SIGPIPE];

/// What an exit means ([`Policy::judge`]): the supervisor restarts by it and the crash reporter
/// writes by it (it travels in the `Exited` event), so the two never disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub class: ExitClass,
    /// `Restart=` restarts the service.
    pub restart: bool,
    /// The exit gets a crash report.
    pub report: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub restart: RestartPolicy,
    pub restart_sec: Duration,
    pub restart_steps: u32,
    pub restart_max_delay: Option<Duration>,
    pub start_limit_interval: Duration,
    pub start_limit_burst: u32,
    pub timeout_stop: Duration,
    pub kill_signal: i32,
    pub has_exec_stop: bool,
    /// ExecStart's `-` prefix: a non-zero exit status counts as success.
    pub ignore_failure: bool,
    /// `SuccessExitStatus=`: more clean ends.
    pub success: ExitStatusSet,
    /// `RestartPreventExitStatus=`: never restarted.
    pub prevent: ExitStatusSet,
    /// `RestartForceExitStatus=`: always restarted (a requested stop aside).
    pub force: ExitStatusSet,
    /// `Type=oneshot`: a failure leaves it `failed`.
    pub oneshot: bool,
    /// A oneshot stays `active` once its commands finished.
    pub remain_after_exit: bool,
    /// What a missed watchdog is killed with.
    pub watchdog_signal: i32,
}

impl Policy {
    pub fn of(unit: &Unit) -> Policy {
        Policy {
            restart: unit.restart,
            restart_sec: unit.restart_sec,
            restart_steps: unit.restart_steps,
            restart_max_delay: unit.restart_max_delay,
            start_limit_interval: unit.start_limit_interval,
            start_limit_burst: unit.start_limit_burst,
            timeout_stop: unit.timeout_stop,
            kill_signal: unit.kill_signal,
            has_exec_stop: !unit.exec_stop.is_empty(),
            ignore_failure: unit.exec_start.ignore_failure,
            success: unit.success_exit_status.clone(),
            prevent: unit.restart_prevent_exit_status.clone(),
            force: unit.restart_force_exit_status.clone(),
            oneshot: unit.service_type == ServiceType::Oneshot,
            remain_after_exit: unit.remain_after_exit && unit.service_type == ServiceType::Oneshot,
            watchdog_signal: unit.watchdog_signal,
        }
    }

    /// The one judgement of an exit: its class (systemd.service(5) `Restart=`'s meaning),
    /// whether `Restart=` restarts the service, and whether the exit gets a crash report.
    /// `stop_requested`: the engine was stopping the service when it ended.
    pub fn judge(&self, exit: &ExitInfo, stop_requested: bool) -> Verdict {
        let class = self.classify(exit, stop_requested);
        let listed = |set: &ExitStatusSet| set.contains(exit.code, exit.signal);
        let restart = match (self.restart, class) {
            (_, ExitClass::Stopped) => false,
            _ if listed(&self.prevent) => false,
            _ if listed(&self.force) => true,
            (RestartPolicy::No, _) => false,
            (RestartPolicy::Always, _) => true,
            (RestartPolicy::OnSuccess, class) => class == ExitClass::Clean,
            // An end the engine could not see may have been a crash: it counts as one.
            (RestartPolicy::OnFailure, class) => matches!(class, ExitClass::Failure | ExitClass::Unknown),
            // Abnormal: killed by an unclean signal, not a failing status.
            (RestartPolicy::OnAbnormal, ExitClass::Failure) => exit.signal.is_some(),
            (RestartPolicy::OnAbnormal, class) => class == ExitClass::Unknown,
            // Only a missed watchdog ([`Policy::restarts_watchdog`]).
            (RestartPolicy::OnWatchdog, _) => false,
        };
        let report = match class {
            ExitClass::Failure => true,
            // Only a policy that restarts an unknown end as a failure says it was one
            // (`always` restarts any end, so its restart says nothing).
            ExitClass::Unknown => {
                matches!(self.restart, RestartPolicy::OnFailure | RestartPolicy::OnAbnormal)
            }
            ExitClass::Clean | ExitClass::Stopped => false,
        };
        Verdict { class, restart, report }
    }

    fn classify(&self, exit: &ExitInfo, stop_requested: bool) -> ExitClass {
        if stop_requested {
            return ExitClass::Stopped;
        }
        match (exit.code, exit.signal) {
            (Some(0), _) => ExitClass::Clean,
            (code, signal) if self.success.contains(code, signal) => ExitClass::Clean,
            (Some(_), _) if self.ignore_failure => ExitClass::Clean,
            (Some(_), _) => ExitClass::Failure,
            (None, Some(s)) if CLEAN_SIGNALS.contains(&s) => ExitClass::Clean,
            (None, Some(_)) => ExitClass::Failure,
            (None, None) => ExitClass::Unknown,
        }
    }

    /// Delay before restart number `step` (0-based): RestartSec, then growing geometrically to
    /// RestartMaxDelaySec over RestartSteps restarts.
    pub fn delay(&self, step: u32) -> Duration {
        let (steps, Some(max)) = (self.restart_steps, self.restart_max_delay) else {
            return self.restart_sec;
        };
        if steps == 0 || step == 0 || max <= self.restart_sec {
            return if step == 0 { self.restart_sec } else { max.max(self.restart_sec) };
        }
        let base = self.restart_sec.max(Duration::from_millis(1)).as_secs_f64();
        let ratio = max.as_secs_f64() / base;
        let k = step.min(steps) as f64 / steps as f64;
        Duration::from_secs_f64(base * ratio.powf(k)).min(max)
    }

    /// Whether a kill for a cause (failed health probes, a start that timed out) is restarted:
    /// as systemd's watchdog and start timeout, by `on-failure`, `on-abnormal` and `always`.
    pub fn restarts_unhealthy(&self) -> bool {
        matches!(self.restart, RestartPolicy::OnFailure | RestartPolicy::OnAbnormal | RestartPolicy::Always)
    }

    /// Whether a kill for a missed watchdog is restarted: as any kill for a cause, and by
    /// `on-watchdog`.
    pub fn restarts_watchdog(&self) -> bool {
        self.restarts_unhealthy() || self.restart == RestartPolicy::OnWatchdog
    }

    /// How long a service must stay up for its backoff to start over.
    pub fn backoff_reset_after(&self) -> Duration {
        self.restart_max_delay.unwrap_or(Duration::from_secs(10))
    }
}

/// Start times within the limit's interval.
#[derive(Debug, Clone, Default)]
pub struct StartLimit {
    starts: VecDeque<Instant>,
}

impl StartLimit {
    /// Records a start at `now`, or returns the error when the limit forbids it.
    pub fn try_start(&mut self, policy: &Policy, now: Instant) -> Result<(), String> {
        let interval = policy.start_limit_interval;
        if interval.is_zero() || policy.start_limit_burst == 0 {
            return Ok(());
        }
        while self.starts.front().is_some_and(|t| now.duration_since(*t) >= interval) {
            self.starts.pop_front();
        }
        if self.starts.len() >= policy.start_limit_burst as usize {
            return Err(format!(
                "start limit hit: more than {} starts within {}",
                policy.start_limit_burst,
                humantime::format_duration(interval)
            ));
        }
        self.starts.push_back(now);
        Ok(())
    }

    pub fn reset(&mut self) {
        self.starts.clear();
    }
}

#[cfg(test)]
pub(crate) fn test_policy(restart: RestartPolicy) -> Policy {
    Policy {
        restart,
        restart_sec: Duration::from_millis(100),
        restart_steps: 0,
        restart_max_delay: None,
        start_limit_interval: Duration::from_secs(10),
        start_limit_burst: 5,
        timeout_stop: Duration::from_secs(10),
        kill_signal: libc::SIGTERM,
        has_exec_stop: false,
        ignore_failure: false,
        success: ExitStatusSet::default(),
        prevent: ExitStatusSet::default(),
        force: ExitStatusSet::default(),
        oneshot: false,
        remain_after_exit: false,
        watchdog_signal: libc::SIGABRT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: Option<i32>, signal: Option<i32>) -> ExitInfo {
        ExitInfo::ended(code, signal, 0)
    }

    #[test]
    fn restart_policies_follow_systemd() {
        let ok = exit(Some(0), None);
        let fail = exit(Some(3), None);
        let term = exit(None, Some(libc::SIGTERM));
        let segv = exit(None, Some(libc::SIGSEGV));
        let unknown = exit(None, None);
        let table = [
            (RestartPolicy::No, [false, false, false, false, false]),
            (RestartPolicy::Always, [true, true, true, true, true]),
            (RestartPolicy::OnSuccess, [true, false, true, false, false]),
            (RestartPolicy::OnFailure, [false, true, false, true, true]),
            (RestartPolicy::OnAbnormal, [false, false, false, true, true]),
        ];
        for (policy, expected) in table {
            let p = test_policy(policy);
            let got: Vec<bool> =
                [&ok, &fail, &term, &segv, &unknown].iter().map(|e| p.judge(e, false).restart).collect();
            assert_eq!(got, expected, "{policy:?}");
        }
    }

    #[test]
    fn exits_are_classed_as_systemd_does() {
        let p = test_policy(RestartPolicy::No);
        let class = |code, signal| p.judge(&exit(code, signal), false).class;
        assert_eq!(class(Some(0), None), ExitClass::Clean);
        assert_eq!(class(Some(1), None), ExitClass::Failure);
        for clean in [libc::SIGHUP, libc::SIGINT, libc::SIGTERM, libc::SIGPIPE] {
            assert_eq!(class(None, Some(clean)), ExitClass::Clean, "signal {clean}");
        }
        for bad in [libc::SIGKILL, libc::SIGSEGV, libc::SIGABRT, libc::SIGQUIT, libc::SIGUSR1] {
            assert_eq!(class(None, Some(bad)), ExitClass::Failure, "signal {bad}");
        }
        assert_eq!(class(None, None), ExitClass::Unknown);
    }

    #[test]
    fn an_exit_while_stopping_is_a_stop_whatever_its_status() {
        for policy in [RestartPolicy::Always, RestartPolicy::OnFailure, RestartPolicy::OnAbnormal] {
            let p = test_policy(policy);
            for e in [exit(Some(1), None), exit(None, Some(libc::SIGKILL)), exit(None, None)] {
                let v = p.judge(&e, true);
                assert_eq!(v, Verdict { class: ExitClass::Stopped, restart: false, report: false }, "{e:?}");
            }
        }
    }

    #[test]
    fn an_external_sigterm_is_clean_for_restart_and_for_reports_alike() {
        let term = exit(None, Some(libc::SIGTERM));
        let v = test_policy(RestartPolicy::OnFailure).judge(&term, false);
        assert_eq!(v, Verdict { class: ExitClass::Clean, restart: false, report: false });
    }

    #[test]
    fn failures_get_a_report_under_every_policy() {
        for policy in [
            RestartPolicy::No,
            RestartPolicy::Always,
            RestartPolicy::OnSuccess,
            RestartPolicy::OnFailure,
            RestartPolicy::OnAbnormal,
        ] {
            let p = test_policy(policy);
            for e in [exit(Some(3), None), exit(None, Some(libc::SIGSEGV))] {
                assert!(p.judge(&e, false).report, "{policy:?} {e:?}");
            }
            assert!(!p.judge(&exit(Some(0), None), false).report, "{policy:?}");
        }
    }

    #[test]
    fn an_unknown_end_gets_a_report_only_when_restarted_as_a_failure() {
        let unknown = exit(None, None);
        let report = |policy| test_policy(policy).judge(&unknown, false).report;
        assert!(report(RestartPolicy::OnFailure) && report(RestartPolicy::OnAbnormal));
        assert!(!report(RestartPolicy::No) && !report(RestartPolicy::OnSuccess));
        assert!(!report(RestartPolicy::Always), "always restarts any end: no failure is implied");
    }

    #[test]
    fn ignored_failure_counts_as_success() {
        let mut p = test_policy(RestartPolicy::OnFailure);
        p.ignore_failure = true;
        let v = p.judge(&exit(Some(1), None), false);
        assert_eq!(v, Verdict { class: ExitClass::Clean, restart: false, report: false });
        let v = p.judge(&exit(None, Some(libc::SIGKILL)), false);
        assert_eq!(v, Verdict { class: ExitClass::Failure, restart: true, report: true });
    }

    #[test]
    fn exit_status_lists_as_systemd_reads_them() {
        let set = |s: &str| gitvisor_units::parse_exit_statuses(s).unwrap();
        // SuccessExitStatus=: more clean ends; Restart=on-failure does not restart them.
        let mut p = test_policy(RestartPolicy::OnFailure);
        p.success = set("75 SIGUSR1");
        assert_eq!(p.judge(&exit(Some(75), None), false).class, ExitClass::Clean);
        assert!(!p.judge(&exit(None, Some(libc::SIGUSR1)), false).restart);
        assert_eq!(p.judge(&exit(Some(74), None), false).class, ExitClass::Failure);
        // RestartPreventExitStatus= wins over Restart=always; still a failure for the report.
        let mut p = test_policy(RestartPolicy::Always);
        p.prevent = set("3");
        assert_eq!(
            p.judge(&exit(Some(3), None), false),
            Verdict { class: ExitClass::Failure, restart: false, report: true }
        );
        assert!(p.judge(&exit(Some(4), None), false).restart);
        // RestartForceExitStatus= restarts even with Restart=no, but never a requested stop.
        let mut p = test_policy(RestartPolicy::No);
        p.force = set("0 TERM");
        assert!(p.judge(&exit(Some(0), None), false).restart);
        assert!(p.judge(&exit(None, Some(libc::SIGTERM)), false).restart);
        assert!(!p.judge(&exit(None, Some(libc::SIGTERM)), true).restart);
        assert!(!p.judge(&exit(Some(1), None), false).restart);
    }

    #[test]
    fn backoff_grows_geometrically_to_the_maximum() {
        let mut p = test_policy(RestartPolicy::Always);
        p.restart_sec = Duration::from_millis(100);
        p.restart_steps = 4;
        p.restart_max_delay = Some(Duration::from_millis(1600));
        let ms: Vec<u128> = (0..7).map(|s| p.delay(s).as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1600, 1600, 1600]);
        assert_eq!(p.backoff_reset_after(), Duration::from_millis(1600));
    }

    #[test]
    fn without_steps_the_delay_is_constant() {
        let p = test_policy(RestartPolicy::Always);
        assert_eq!(p.delay(0), p.delay(9));
        assert_eq!(p.backoff_reset_after(), Duration::from_secs(10));
    }

    #[test]
    fn start_limit_allows_burst_starts_per_interval() {
        let p = test_policy(RestartPolicy::Always);
        let mut l = StartLimit::default();
        let t0 = Instant::now();
        for i in 0..5 {
            l.try_start(&p, t0 + Duration::from_millis(i)).unwrap();
        }
        let err = l.try_start(&p, t0 + Duration::from_millis(10)).unwrap_err();
        assert_eq!(err, "start limit hit: more than 5 starts within 10s");
        // Once the first starts leave the interval, starting is allowed again.
        l.try_start(&p, t0 + Duration::from_secs(10) + Duration::from_millis(1)).unwrap();
    }

    #[test]
    fn zero_interval_disables_the_limit() {
        let mut p = test_policy(RestartPolicy::Always);
        p.start_limit_interval = Duration::ZERO;
        let mut l = StartLimit::default();
        let t0 = Instant::now();
        for _ in 0..100 {
            l.try_start(&p, t0).unwrap();
        }
    }
}
