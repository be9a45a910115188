//! What the crate's tests share: the names in a directory, and re-running this test binary as
//! a second process, for tests about other processes.
//!
//! The parent runs one named test in a child with an environment variable set; that test
//! sees the variable, does its part, prints [`READY`] and waits for its stdin to close. Such a
//! helper is `#[ignore]`d, so a plain test run never counts it as a pass; the child runs it
//! with `--ignored`, and it fails if it finds no variable.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

const READY: &str = "GITVISOR-TEST-CHILD-READY";

/// A child test process; dropping it closes its stdin and waits for it to exit.
pub struct TestChild {
    child: Child,
    stdin: Option<ChildStdin>,
    // Kept open so the child's last lines do not fail with a broken pipe.
    _stdout: BufReader<ChildStdout>,
}

impl TestChild {
    /// Runs the test `name` (full path, e.g. `lock::tests::child`) with `env` set, and
    /// returns once it printed that it is ready.
    pub fn spawn(name: &str, env: &[(&str, &str)]) -> TestChild {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            let read = stdout.read_line(&mut line).unwrap();
            assert!(read > 0, "test child {name} exited before it was ready");
            // libtest may print "test NAME ... " on the same line first.
            if line.trim_end().ends_with(READY) {
                break;
            }
        }
        TestChild { child, stdin, _stdout: stdout }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets the child finish and asserts it succeeded.
    pub fn finish(mut self) {
        drop(self.stdin.take());
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for TestChild {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// In the child: the value its parent set for it.
pub fn parent_set(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("a helper run by its parent test, which sets {var}"))
}

/// In the child: tell the parent we are ready, then wait until it lets us go.
pub fn ready_then_wait_for_parent() {
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{READY}").unwrap();
    stdout.flush().unwrap();
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
}

/// The names in `dir`, sorted.
pub fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
