//! A real Redis for fleet tests: `redis-server` on a Unix socket in a temporary directory (no
//! port to race for), without persistence, ended when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::wait::wait_until;

pub struct RedisServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one and waits until its socket answers `PING`.
    pub fn start() -> RedisServer {
        let dir = tempfile::Builder::new().prefix("gitvisor-redis-").tempdir().expect("temp dir");
        let mut server = RedisServer { child: None, dir };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocketperm", "700"])
            .arg("--unixsocket")
            .arg(self.socket())
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is missing: run ./scripts/setup (it installs what the fleet tests need)");
        self.child = Some(child);
        let socket = self.socket();
        wait_until("redis-server answers", || {
            Command::new("redis-cli")
                .arg("-s")
                .arg(&socket)
                .arg("ping")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
        });
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// The URL gitvisor's `[fleet] redis` takes.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// Runs `redis-cli ARGS` against it; its output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        let o =
            Command::new("redis-cli").arg("-s").arg(self.socket()).args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Kills it (an outage); [`RedisServer::restart`] brings it back, empty.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
