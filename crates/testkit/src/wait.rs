//! Waits that end: each one gives up at [`DEADLINE`] with a panic naming what it waited for.

use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use crate::process::alive;

/// How long any wait lasts before the test fails. Generous on purpose: the tests run on slow,
/// shared 2-core CI machines, often beside a build. A passing test never waits this long; tests
/// wait for events, never for fixed times.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// How often a condition is looked at again: short, so a wait ends soon after its event.
const POLL: Duration = Duration::from_millis(20);

/// Polls `f` until it gives `Ok`. After [`DEADLINE`] it panics naming `what`, the last `Err`
/// (what was seen instead) and `context()` (a log, say).
pub(crate) fn poll<T>(
    what: &str,
    mut f: impl FnMut() -> Result<T, String>,
    context: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let seen = match f() {
            Ok(v) => return v,
            Err(seen) => seen,
        };
        if Instant::now() >= deadline {
            let seen = if seen.is_empty() { seen } else { format!("\nlast seen: {seen}") };
            panic!("timed out after {DEADLINE:?} waiting for {what}{seen}{}", context());
        }
        std::thread::sleep(POLL);
    }
}

/// Waits until `f` gives a value, and returns it.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    poll(what, || f().ok_or_else(String::new), String::new)
}

/// Waits until `cond` holds.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    wait_for(what, || cond().then_some(()))
}

/// Waits until the process `pid` is gone (a zombie counts as gone).
pub fn wait_dead(pid: u32) {
    wait_until(&format!("process {pid} to exit"), || !alive(pid))
}

/// Waits until the file at `path` has some text; returns the text.
pub fn wait_file(path: &Path) -> String {
    wait_for(&format!("{} to have some text", path.display()), || {
        std::fs::read_to_string(path).ok().filter(|s| !s.is_empty())
    })
}

/// Waits until a line of the file at `path` satisfies `pred`; returns that line.
pub fn wait_line(path: &Path, mut pred: impl FnMut(&str) -> bool) -> String {
    wait_for(&format!("a line of {} that matches", path.display()), || {
        let text = std::fs::read_to_string(path).ok()?;
        text.lines().find(|l| pred(l)).map(String::from)
    })
}

/// Waits until `child` exits (`what` names it); returns its status.
pub fn wait_exit(child: &mut Child, what: &str) -> ExitStatus {
    wait_for(&format!("{what} to exit"), || child.try_wait().expect("try_wait"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_line_returns_the_first_matching_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("log");
        std::fs::write(&file, "one\ntwo three\nfour three\n").unwrap();
        assert_eq!(wait_line(&file, |l| l.contains("three")), "two three");
    }

    #[test]
    fn wait_for_gives_the_value_once_there_is_one() {
        let mut n = 0;
        assert_eq!(
            wait_for("the third call", || {
                n += 1;
                (n == 3).then_some(n)
            }),
            3
        );
    }

    #[test]
    fn wait_exit_and_wait_dead_see_a_child_end() {
        let mut child = std::process::Command::new("/bin/sh").args(["-c", "exit 4"]).spawn().unwrap();
        let pid = child.id();
        assert_eq!(wait_exit(&mut child, "sh").code(), Some(4));
        wait_dead(pid);
    }
}
