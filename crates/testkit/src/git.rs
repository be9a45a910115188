//! The services repository, changed with the git binary as a user would, and what the engine
//! says it applied.

use std::process::Command;

use serde_json::Value;

use crate::Home;

impl Home {
    /// Runs git in `services/` as a test user; asserts success and returns stdout, trimmed.
    pub fn git(&self, args: &[&str]) -> String {
        let o = Command::new("git")
            .arg("-C")
            .arg(self.services())
            .args(["-c", "user.name=Tester", "-c", "user.email=tester@example.com"])
            .args(args)
            .output()
            .expect("run git");
        assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Writes the unit NAME and commits it alone; returns the commit id.
    pub fn commit_unit(&self, name: &str, text: &str, message: &str) -> String {
        self.unit(name, text);
        self.git(&["add", &format!("{name}.service")]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Commits every change in `services/`; returns the commit id.
    pub fn commit_all(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// The engine's syncs, oldest first (`sync-history.jsonl`).
    pub fn sync_history(&self) -> Vec<Value> {
        self.log("sync-history.jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect()
    }

    /// Waits until the engine has applied `commit`.
    pub fn wait_commit(&self, commit: &str) {
        self.wait_until(&format!("commit {commit} to be applied"), || self.status()["commit"] == commit);
    }
}
