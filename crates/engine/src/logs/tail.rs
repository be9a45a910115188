//! The in-memory tail of a service's output, bounded in lines and bytes, holding each line once.
//!
//! Lines reach it two ways: forwarded by the log keeper as they are written, and read back from
//! the log file once (the seed: what was written before this engine, or before the tail was
//! first asked for). The keeper writes each line to the file before forwarding it and stamps a
//! service's lines with strictly increasing times, so a forwarded line stamped no later than the
//! newest line already taken is one the tail has: it is skipped, never added twice.
//!
//! Each line keeps where it came from ([`Origin`]), so the tail at a process's exit can be cut
//! out of it later: a crash report written while the service already runs again (a crash loop)
//! still holds only what led to that exit.

use std::collections::VecDeque;
use std::sync::Arc;

use gitvisor_protocol::LogLine;

use super::wire::Origin;

pub const TAIL_LINES: usize = 1000;
pub const TAIL_BYTES: usize = 512 * 1024;

#[derive(Default)]
pub struct Tail {
    /// Shared, so that taking the tail at an exit (at every crash of a crash loop) copies
    /// pointers, not the lines' text.
    lines: VecDeque<(Arc<LogLine>, Origin)>,
    bytes: usize,
    /// The newest line taken from the file or the keeper (markers aside).
    last_us: u64,
    seeded: bool,
}

impl Tail {
    /// The tail was seeded from the file.
    pub fn seeded(&self) -> bool {
        self.seeded
    }

    /// Takes the file's last lines, once. `before`: the time of the first line the keeper
    /// forwarded, which is being taken now; only older lines of the file go in (the rest will
    /// arrive forwarded). `None`: nothing was forwarded yet; every line of the file goes in, and
    /// a forwarded one the file already had is skipped when it comes.
    pub fn seed(&mut self, file: Vec<LogLine>, before: Option<u64>) {
        self.seeded = true;
        let older: Vec<LogLine> = file.into_iter().filter(|l| before.is_none_or(|b| l.at_us < b)).collect();
        if let Some(newest) = older.last() {
            self.last_us = self.last_us.max(newest.at_us);
        }
        for line in older.into_iter().rev() {
            self.bytes += line.text.len();
            self.lines.push_front((Arc::new(line), Origin::Unknown));
        }
        self.trim();
    }

    /// A line the keeper forwarded; false when the tail already has it (read from the file).
    pub fn push(&mut self, line: Arc<LogLine>, origin: Origin) -> bool {
        if line.at_us <= self.last_us {
            return false;
        }
        self.last_us = line.at_us;
        self.add(line, origin);
        true
    }

    /// A note of the engine's own that is not in the file (lines it missed): kept as it comes.
    pub fn mark(&mut self, line: Arc<LogLine>) {
        self.add(line, Origin::Unknown);
    }

    fn add(&mut self, line: Arc<LogLine>, origin: Origin) {
        self.bytes += line.text.len();
        self.lines.push_back((line, origin));
        self.trim();
    }

    fn trim(&mut self) {
        while self.lines.len() > TAIL_LINES || self.bytes > TAIL_BYTES {
            match self.lines.pop_front() {
                Some((old, _)) => self.bytes -= old.text.len(),
                None => break,
            }
        }
    }

    pub fn last(&self, n: usize) -> Vec<LogLine> {
        self.lines.iter().skip(self.lines.len().saturating_sub(n)).map(|(l, _)| LogLine::clone(l)).collect()
    }

    /// The note of `pid`'s exit has arrived.
    pub fn has_exit_of(&self, pid: u32) -> bool {
        self.lines.iter().any(|(_, o)| is_exit_note(o, pid))
    }

    /// The last `n` lines as they stood at `pid`'s exit, whatever came since: everything before
    /// the process's first line; its own output, wherever it arrived (its last lines may follow
    /// the note of its exit); the engine's notes up to that note. No later process's output, no
    /// later note. Without the exit note (it was lost), the notes up to the process's last line.
    pub fn at_exit_of(&self, pid: u32, n: usize) -> Vec<Arc<LogLine>> {
        let about = |o: &Origin| match *o {
            Origin::Output { pid: p } => p == pid,
            Origin::Note { pid: p, .. } => p == Some(pid),
            Origin::Unknown => false,
        };
        let first = self.lines.iter().position(|(_, o)| about(o));
        let cut = self
            .lines
            .iter()
            .position(|(_, o)| is_exit_note(o, pid))
            .or_else(|| self.lines.iter().rposition(|(_, o)| about(o)))
            .unwrap_or(self.lines.len());
        let kept: Vec<&Arc<LogLine>> = self
            .lines
            .iter()
            .enumerate()
            .filter(|(i, (_, origin))| match *origin {
                Origin::Output { pid: p } if p == pid => true,
                // Another process's output: one that ran before this one, not after.
                Origin::Output { .. } => first.map_or(*i <= cut, |f| *i < f),
                Origin::Note { .. } | Origin::Unknown => *i <= cut,
            })
            .map(|(_, (l, _))| l)
            .collect();
        kept[kept.len().saturating_sub(n)..].iter().map(|l| Arc::clone(l)).collect()
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

fn is_exit_note(origin: &Origin, pid: u32) -> bool {
    *origin == Origin::Note { pid: Some(pid), exit: true }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(at_us: u64, text: &str) -> LogLine {
        LogLine { at_us, stream: "out".into(), text: text.into() }
    }

    fn texts(t: &Tail) -> Vec<String> {
        t.last(usize::MAX).into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn keeps_the_last_lines_within_both_bounds() {
        let mut t = Tail::default();
        for i in 0..(TAIL_LINES + 10) {
            t.push(at(i as u64 + 1, &i.to_string()).into(), Origin::Unknown);
        }
        assert_eq!(t.len(), TAIL_LINES);
        assert_eq!(t.last(1)[0].text, (TAIL_LINES + 9).to_string());
        let big = "y".repeat(TAIL_BYTES / 4);
        for i in 0..10 {
            t.push(at(TAIL_LINES as u64 + 100 + i, &big).into(), Origin::Unknown);
        }
        assert!(t.len() <= 4);
        assert_eq!(t.last(100).len(), t.len());
    }

    #[test]
    fn lines_in_flight_when_the_tail_is_seeded_are_kept_once() {
        // The file has 1..=4; 3 and 4 were forwarded but not yet taken when the tail was asked
        // for (the crash reporter after a crash, during a crash loop).
        let mut t = Tail::default();
        t.seed((1..=4).map(|i| at(i, &i.to_string())).collect(), None);
        for i in 3..=6 {
            t.push(at(i, &i.to_string()).into(), Origin::Unknown);
        }
        assert_eq!(texts(&t), ["1", "2", "3", "4", "5", "6"]);
    }

    #[test]
    fn seeding_at_the_first_forwarded_line_takes_only_what_came_before_it() {
        // The file has 1..=4 when the keeper's first line (3) arrives; 4 is on its way.
        let mut t = Tail::default();
        t.seed((1..=4).map(|i| at(i, &i.to_string())).collect(), Some(3));
        for i in 3..=5 {
            assert!(t.push(at(i, &i.to_string()).into(), Origin::Unknown));
        }
        assert_eq!(texts(&t), ["1", "2", "3", "4", "5"]);
        assert!(t.seeded());
    }

    #[test]
    fn a_marker_hides_no_line() {
        let mut t = Tail::default();
        t.seed(vec![at(1, "1")], None);
        // The engine's clock is ahead of the keeper's stamps.
        t.mark(at(100, "[lines not shown]").into());
        assert!(t.push(at(2, "2").into(), Origin::Unknown));
        assert_eq!(texts(&t), ["1", "[lines not shown]", "2"]);
    }

    fn out(pid: u32) -> Origin {
        Origin::Output { pid }
    }

    fn note(pid: Option<u32>) -> Origin {
        Origin::Note { pid, exit: false }
    }

    fn exit_note(pid: u32) -> Origin {
        Origin::Note { pid: Some(pid), exit: true }
    }

    /// A crash loop as the tail receives it: process 10 crashes, 11 is started before the exit
    /// of 10 is noted (a restart with no delay spawns first), prints, crashes; the limit is hit.
    fn crash_loop() -> Tail {
        let mut t = Tail::default();
        t.seed(vec![at(1, "from an earlier engine")], None);
        let lines = [
            ("started process 10", note(Some(10))),
            ("run 10", out(10)),
            ("process 10 exited with status 1", exit_note(10)),
            ("run 11", out(11)),
            ("late line of 10", out(10)),
            ("started process 11", note(Some(11))),
            ("crash report of 10", note(None)),
            ("process 11 exited with status 1", exit_note(11)),
            ("failed: start limit hit", note(None)),
        ];
        for (i, (text, origin)) in lines.into_iter().enumerate() {
            assert!(t.push(at(10 + i as u64, text).into(), origin));
        }
        t
    }

    #[test]
    fn a_crash_loops_report_of_an_early_exit_holds_nothing_later() {
        let t = crash_loop();
        let got: Vec<String> = t.at_exit_of(10, 200).into_iter().map(|l| l.text.clone()).collect();
        assert_eq!(
            got,
            [
                "from an earlier engine",
                "started process 10",
                "run 10",
                "process 10 exited with status 1",
                "late line of 10"
            ]
        );
        assert!(t.has_exit_of(10) && t.has_exit_of(11) && !t.has_exit_of(12));
    }

    #[test]
    fn the_last_exit_of_a_loop_ends_at_its_note_not_at_the_failure() {
        let t = crash_loop();
        let got: Vec<String> = t.at_exit_of(11, 200).into_iter().map(|l| l.text.clone()).collect();
        assert_eq!(
            got,
            [
                "from an earlier engine",
                "started process 10",
                "run 10",
                "process 10 exited with status 1",
                "run 11",
                "started process 11",
                "crash report of 10",
                "process 11 exited with status 1",
            ]
        );
        // Bounded to the last lines.
        let last: Vec<String> = t.at_exit_of(11, 2).into_iter().map(|l| l.text.clone()).collect();
        assert_eq!(last, ["crash report of 10", "process 11 exited with status 1"]);
    }

    #[test]
    fn without_its_exit_note_a_tail_ends_at_the_process_last_line() {
        let mut t = Tail::default();
        t.push(at(1, "started process 7").into(), note(Some(7)));
        t.push(at(2, "run 7").into(), out(7));
        t.push(at(3, "started process 8").into(), note(Some(8)));
        t.push(at(4, "run 8").into(), out(8));
        let got: Vec<String> = t.at_exit_of(7, 200).into_iter().map(|l| l.text.clone()).collect();
        assert_eq!(got, ["started process 7", "run 7"]);
    }

    #[test]
    fn the_tail_at_an_exit_shares_the_lines_it_holds_not_copies_of_them() {
        let mut t = Tail::default();
        t.push(at(1, "started process 7").into(), note(Some(7)));
        t.push(at(2, "run 7").into(), out(7));
        t.push(at(3, "process 7 exited with status 1").into(), Origin::Note { pid: Some(7), exit: true });
        let (a, b) = (t.at_exit_of(7, 200), t.at_exit_of(7, 200));
        assert_eq!(a.len(), 3);
        assert!(
            a.iter().zip(&b).all(|(x, y)| Arc::ptr_eq(x, y)),
            "one copy of each line, however often taken"
        );
    }
}
