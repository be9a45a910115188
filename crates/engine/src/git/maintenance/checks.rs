//! The safety checks of a maintenance run (SPEC section 9), as pure functions of what they look
//! at, so each is tested without a repository in a strange state or a clock to wait for.

use std::path::Path;
use std::time::{Duration, SystemTime};

/// Why a run did not happen. Each is one line for `gitvisor maintenance status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    #[error("maintenance is turned off ([maintenance] enabled = false)")]
    Disabled,
    #[error("the last run was {ago} ago; the minimum interval is {interval}")]
    TooSoon { ago: String, interval: String },
    #[error("{0} is in progress in the repository")]
    InProgress(&'static str),
    #[error("git gc already runs there (gc.pid: process {0})")]
    GcRunning(u32),
    #[error("{running} run(s) already going; at most {max} at a time ([maintenance] max_concurrent)")]
    Concurrency { running: usize, max: u32 },
    #[error("invalid [maintenance] prune = {0:?} (git's forms: now, never, 2.weeks.ago, 2024-01-31)")]
    InvalidPrune(String),
    #[error("{0}")]
    Locked(String),
    #[error("{0} is not a git repository")]
    NotARepository(String),
}

/// What git is in the middle of in `git_dir`, if anything.
pub fn operation_in_progress(git_dir: &Path) -> Option<&'static str> {
    const MARKERS: &[(&str, &str)] = &[
        ("MERGE_HEAD", "a merge"),
        ("CHERRY_PICK_HEAD", "a cherry-pick"),
        ("REVERT_HEAD", "a revert"),
        ("BISECT_LOG", "a bisect"),
        ("rebase-merge", "a rebase"),
        ("rebase-apply", "a rebase"),
        ("index.lock", "another git command (index.lock)"),
    ];
    MARKERS.iter().find(|(f, _)| git_dir.join(f).exists()).map(|(_, what)| *what)
}

/// The pid in `gc.pid` when it names a live process of this host: git writes `PID HOST`.
pub fn gc_running(git_dir: &Path, host: &str, alive: impl Fn(u32) -> bool) -> Option<u32> {
    let text = std::fs::read_to_string(git_dir.join("gc.pid")).ok()?;
    let mut words = text.split_whitespace();
    let pid: u32 = words.next()?.parse().ok()?;
    let on_this_host = words.next().is_none_or(|h| h == host);
    (on_this_host && alive(pid)).then_some(pid)
}

/// Whether git's `--prune=` accepts `s`, for the forms gitvisor documents: `now`, `never`,
/// `all`, `N.unit.ago` (also spelled with spaces), and an ISO date.
pub fn valid_prune(s: &str) -> bool {
    const UNITS: &[&str] = &["second", "minute", "hour", "day", "week", "month", "year"];
    let s = s.trim();
    if matches!(s, "now" | "never" | "all") {
        return true;
    }
    let words: Vec<&str> = s.split(['.', ' ']).filter(|w| !w.is_empty()).collect();
    if let [n, unit, "ago"] = words.as_slice() {
        let unit = unit.strip_suffix('s').unwrap_or(unit);
        return n.parse::<u64>().is_ok() && UNITS.contains(&unit);
    }
    is_iso_date(s)
}

fn is_iso_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    matches!(parts.as_slice(), [y, m, d]
        if y.len() == 4 && m.len() == 2 && d.len() == 2
            && [y, m, d].iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
            && (1..=12).contains(&m.parse::<u32>().unwrap_or(0))
            && (1..=31).contains(&d.parse::<u32>().unwrap_or(0)))
}

/// The checks that need no lock, in the order the SPEC lists them. `last` is the last run's
/// start for this repository; `forced` skips the interval (`gitvisor maintenance run`).
pub struct Inputs<'a> {
    pub enabled: bool,
    pub min_interval: Duration,
    pub last: Option<SystemTime>,
    pub now: SystemTime,
    pub forced: bool,
    pub git_dir: &'a Path,
    pub running: usize,
    pub max_concurrent: u32,
    pub prune: &'a str,
    pub host: &'a str,
}

pub fn check(i: &Inputs, alive: impl Fn(u32) -> bool) -> Result<(), Skip> {
    if !i.enabled {
        return Err(Skip::Disabled);
    }
    if !i.forced {
        if let Some(last) = i.last {
            let ago = i.now.duration_since(last).unwrap_or_default();
            if ago < i.min_interval {
                return Err(Skip::TooSoon {
                    ago: humantime::format_duration(Duration::from_secs(ago.as_secs())).to_string(),
                    interval: humantime::format_duration(i.min_interval).to_string(),
                });
            }
        }
    }
    if !i.git_dir.is_dir() {
        return Err(Skip::NotARepository(i.git_dir.display().to_string()));
    }
    if let Some(what) = operation_in_progress(i.git_dir) {
        return Err(Skip::InProgress(what));
    }
    if let Some(pid) = gc_running(i.git_dir, i.host, alive) {
        return Err(Skip::GcRunning(pid));
    }
    if i.running >= i.max_concurrent.max(1) as usize {
        return Err(Skip::Concurrency { running: i.running, max: i.max_concurrent.max(1) });
    }
    if !valid_prune(i.prune) {
        return Err(Skip::InvalidPrune(i.prune.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(git_dir: &Path) -> Inputs<'_> {
        Inputs {
            enabled: true,
            min_interval: Duration::from_secs(3600),
            last: None,
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(100_000),
            forced: false,
            git_dir,
            running: 0,
            max_concurrent: 1,
            prune: "2.weeks.ago",
            host: "here",
        }
    }

    #[test]
    fn each_marker_is_an_operation_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(operation_in_progress(dir.path()), None);
        std::fs::create_dir(dir.path().join("rebase-merge")).unwrap();
        assert_eq!(operation_in_progress(dir.path()), Some("a rebase"));
        assert_eq!(check(&inputs(dir.path()), |_| false), Err(Skip::InProgress("a rebase")));
        std::fs::remove_dir(dir.path().join("rebase-merge")).unwrap();
        std::fs::write(dir.path().join("index.lock"), "").unwrap();
        assert_eq!(operation_in_progress(dir.path()), Some("another git command (index.lock)"));
    }

    #[test]
    fn a_gc_pid_counts_only_for_a_live_process_of_this_host() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gc.pid"), "4242 here").unwrap();
        assert_eq!(gc_running(dir.path(), "here", |p| p == 4242), Some(4242));
        assert_eq!(gc_running(dir.path(), "here", |_| false), None, "a stale gc.pid");
        assert_eq!(gc_running(dir.path(), "elsewhere", |_| true), None, "another host's");
        assert_eq!(check(&inputs(dir.path()), |_| true), Err(Skip::GcRunning(4242)));
    }

    #[test]
    fn the_interval_holds_unless_forced_and_the_rest_always_hold() {
        let dir = tempfile::tempdir().unwrap();
        let mut i = inputs(dir.path());
        i.last = Some(i.now - Duration::from_secs(600));
        let err = check(&i, |_| false).unwrap_err();
        assert_eq!(err.to_string(), "the last run was 10m ago; the minimum interval is 1h");
        i.forced = true;
        assert_eq!(check(&i, |_| false), Ok(()));
        i.running = 1;
        assert!(matches!(check(&i, |_| false), Err(Skip::Concurrency { running: 1, max: 1 })));
        i.running = 0;
        i.prune = "sometime";
        assert_eq!(check(&i, |_| false), Err(Skip::InvalidPrune("sometime".into())));
        i.enabled = false;
        assert_eq!(check(&i, |_| false), Err(Skip::Disabled));
    }

    #[test]
    fn prune_takes_gits_documented_forms() {
        for ok in ["now", "never", "all", "2.weeks.ago", "1.week.ago", "3 days ago", "2024-01-31"] {
            assert!(valid_prune(ok), "{ok}");
        }
        for bad in ["", "soon", "2.fortnights.ago", "weeks.ago", "2024-13-01", "2.weeks", "; rm -rf"] {
            assert!(!valid_prune(bad), "{bad}");
        }
    }
}
