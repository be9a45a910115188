//! A real Redis for fleet tests: `redis-server` on a Unix socket in a temporary directory (no
//! port to race for), or on a free loopback port as a fleet's machines reach it, without
//! persistence, ended when dropped. `redis-cli` talks to it on its socket either way.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::wait::wait_until;

pub struct RedisServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The loopback port it also listens on (0: none).
    port: u16,
}

impl RedisServer {
    /// Starts one on a Unix socket and waits until it answers `PING`.
    pub fn start() -> RedisServer {
        RedisServer::start_on(0)
    }

    /// Starts one that also listens on a free port of 127.0.0.1 ([`RedisServer::tcp_url`]).
    pub fn start_tcp() -> RedisServer {
        // The port is free now; it stays ours unless another process binds it in the instant
        // before redis-server does (then the start fails loudly).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        RedisServer::start_on(port)
    }

    fn start_on(port: u16) -> RedisServer {
        let dir = tempfile::Builder::new().prefix("gitvisor-redis-").tempdir().expect("temp dir");
        let mut server = RedisServer { child: None, dir, port };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--unixsocketperm", "700"])
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

    /// The URL of its loopback port (started with [`RedisServer::start_tcp`]).
    pub fn tcp_url(&self) -> String {
        assert_ne!(self.port, 0, "started without a port: use RedisServer::start_tcp");
        format!("redis://127.0.0.1:{}", self.port)
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
