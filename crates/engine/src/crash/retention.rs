//! Bounded disk: age, count and total size of the reports (enforced after every write and at
//! start), and flood control in crash loops.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use super::names::ReportName;
use crate::settings::CrashReportSettings;

#[derive(Debug, Clone, PartialEq)]
pub struct OnDisk {
    pub name: ReportName,
    pub size: u64,
    pub modified: SystemTime,
}

/// The reports in `dir`, oldest first. Files that are not reports are ignored.
pub fn list(dir: &Path) -> Vec<OnDisk> {
    let mut out: Vec<OnDisk> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = ReportName::parse(e.file_name().to_str()?.strip_suffix(".tar.gz")?)?;
            let meta = e.metadata().ok()?;
            meta.is_file().then(|| OnDisk {
                name,
                size: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.name.stamp, a.modified).cmp(&(&b.name.stamp, b.modified)));
    out
}

/// Which reports to delete: those older than the maximum age, then the oldest until both the
/// count and the total size are within bounds.
pub fn to_delete(reports: &[OnDisk], settings: &CrashReportSettings, now: SystemTime) -> Vec<ReportName> {
    let mut keep: VecDeque<&OnDisk> = VecDeque::new();
    let mut gone = Vec::new();
    for r in reports {
        let age = now.duration_since(r.modified).unwrap_or(Duration::ZERO);
        if age > settings.max_age {
            gone.push(r.name.clone());
        } else {
            keep.push_back(r);
        }
    }
    let mut total: u64 = keep.iter().map(|r| r.size).sum();
    while keep.len() > settings.max_count as usize || total > settings.max_bytes {
        let Some(r) = keep.pop_front() else { break };
        total -= r.size;
        gone.push(r.name.clone());
    }
    gone
}

pub fn enforce(dir: &Path, settings: &CrashReportSettings) -> usize {
    let doomed = to_delete(&list(dir), settings, SystemTime::now());
    let mut n = 0;
    for name in doomed {
        if let Ok(p) = name.path_in(dir) {
            if std::fs::remove_file(&p).is_ok() {
                n += 1;
            }
        }
    }
    if n > 0 {
        tracing::info!("crash reports: removed {n} over the retention limits");
    }
    n
}

/// How many reports of a crash loop are kept at each end.
pub const KEEP_FIRST: usize = 3;
pub const KEEP_LATEST: usize = 3;

/// Once a loop's first and latest reports are kept, a new report is written at most this
/// often per service: the crashes between are counted, and the latest of them is reported
/// when the time comes.
pub const LOOP_REPORT_EVERY: Duration = Duration::from_secs(1);

/// One service's crash loop: its first reports, its latest ones, and how many were dropped.
#[derive(Debug, Default, Clone)]
pub struct Loop {
    pub first: Vec<String>,
    pub latest: VecDeque<String>,
    pub suppressed: u64,
    /// When its last report was written.
    pub last_written: Option<Instant>,
}

impl Loop {
    /// When a crash at `now` may be reported: now (None), or not before the returned time
    /// (the loop is full and its last report is recent).
    pub fn report_not_before(&self, now: Instant) -> Option<Instant> {
        if self.first.len() < KEEP_FIRST || self.latest.len() < KEEP_LATEST {
            return None;
        }
        self.last_written.map(|t| t + LOOP_REPORT_EVERY).filter(|due| *due > now)
    }

    /// Before writing a new report: the report to delete to make room (a middle one), if any.
    /// The new report's `suppressed` is `self.suppressed` after this call.
    pub fn make_room(&mut self) -> Option<String> {
        if self.first.len() < KEEP_FIRST || self.latest.len() < KEEP_LATEST {
            return None;
        }
        self.suppressed += 1;
        self.latest.pop_front()
    }

    pub fn written(&mut self, id: String, at: Instant) {
        self.last_written = Some(at);
        if self.first.len() < KEEP_FIRST {
            self.first.push(id);
        } else {
            self.latest.push_back(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_disk(i: u64, size: u64, age_days: u64, now: SystemTime) -> OnDisk {
        let at = now - Duration::from_secs(age_days * 86400);
        let mut name = ReportName::new("crash", "svc", at);
        name.nonce = format!("{i:06x}");
        OnDisk { name, size, modified: at }
    }

    fn settings(count: u32, bytes: u64) -> CrashReportSettings {
        CrashReportSettings { max_count: count, max_bytes: bytes, max_age: Duration::from_secs(30 * 86400) }
    }

    #[test]
    fn old_reports_go_first_then_the_oldest_over_count_or_size() {
        let now = SystemTime::now();
        let reports = vec![
            on_disk(1, 10, 40, now),
            on_disk(2, 10, 5, now),
            on_disk(3, 10, 4, now),
            on_disk(4, 10, 3, now),
        ];
        let gone = |s| to_delete(&reports, &s, now).into_iter().map(|n| n.nonce).collect::<Vec<_>>();
        assert_eq!(gone(settings(100, 1000)), vec!["000001"]);
        assert_eq!(gone(settings(2, 1000)), vec!["000001", "000002"]);
        assert_eq!(gone(settings(100, 15)), vec!["000001", "000002", "000003"]);
    }

    #[test]
    fn a_loop_keeps_the_first_and_latest_three() {
        let mut l = Loop::default();
        let mut on_disk: Vec<String> = Vec::new();
        for i in 0..50 {
            if let Some(gone) = l.make_room() {
                on_disk.retain(|x| *x != gone);
            }
            let id = format!("r{i}");
            on_disk.push(id.clone());
            l.written(id, Instant::now());
        }
        assert_eq!(on_disk, vec!["r0", "r1", "r2", "r47", "r48", "r49"]);
        assert_eq!(l.suppressed, 44);
    }

    #[test]
    fn a_full_loop_reports_at_most_once_per_interval() {
        let t0 = Instant::now();
        let mut l = Loop::default();
        for i in 0..KEEP_FIRST + KEEP_LATEST {
            assert_eq!(l.report_not_before(t0), None, "report {i} is written at once");
            l.make_room();
            l.written(format!("r{i}"), t0);
        }
        let soon = t0 + Duration::from_millis(10);
        assert_eq!(l.report_not_before(soon), Some(t0 + LOOP_REPORT_EVERY));
        assert_eq!(l.report_not_before(t0 + LOOP_REPORT_EVERY), None);
        // A loop that is not full yet is never held back, however recent its last report.
        let mut young = Loop::default();
        young.written("a".into(), t0);
        assert_eq!(young.report_not_before(soon), None);
    }
}
