//! What a unit says about supervising it, and the pure rules built on it: whether an exit is
//! restarted, the restart delay schedule, the start limit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use gitvisor_protocol::ExitInfo;
use gitvisor_units::{RestartPolicy, Unit};

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
            has_exec_stop: unit.exec_stop.is_some(),
            ignore_failure: unit.exec_start.ignore_failure,
        }
    }

    /// systemd's "clean" exit: status 0, or one of the polite signals.
    pub fn is_clean(&self, exit: &ExitInfo) -> bool {
        match (exit.code, exit.signal) {
            (Some(0), _) => true,
            (Some(_), _) => self.ignore_failure,
            (None, Some(s)) => [libc::SIGHUP, libc::SIGINT, libc::SIGTERM, libc::SIGPIPE].contains(&s),
            (None, None) => false,
        }
    }

    pub fn should_restart(&self, exit: &ExitInfo) -> bool {
        let clean = self.is_clean(exit);
        // An exit the engine did not witness counts as abnormal: it may have been a crash.
        let abnormal = !clean && exit.code.is_none();
        match self.restart {
            RestartPolicy::No => false,
            RestartPolicy::Always => true,
            RestartPolicy::OnSuccess => clean,
            RestartPolicy::OnFailure => !clean,
            RestartPolicy::OnAbnormal => abnormal,
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: Option<i32>, signal: Option<i32>) -> ExitInfo {
        ExitInfo { code, signal, core_dumped: false, at_ms: 0, usage: None }
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
                [&ok, &fail, &term, &segv, &unknown].iter().map(|e| p.should_restart(e)).collect();
            assert_eq!(got, expected, "{policy:?}");
        }
    }

    #[test]
    fn ignored_failure_counts_as_success() {
        let mut p = test_policy(RestartPolicy::OnFailure);
        p.ignore_failure = true;
        assert!(!p.should_restart(&exit(Some(1), None)));
        assert!(p.should_restart(&exit(None, Some(libc::SIGKILL))));
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
