//! `gitvisor daemon`: owns a home, runs the engine headless, serves the socket, and on SIGTERM or
//! SIGINT stops every service in reverse dependency order and exits 0.

use std::path::PathBuf;

use gitvisor_state::{HomeLock, HomeLockError};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::engine::{Engine, EngineError, EngineOptions};
use crate::paths::Paths;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("another gitvisor engine{} already owns {home}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    AlreadyRunning { home: String, pid: Option<u32> },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{0}")]
    Engine(#[from] EngineError),
}

/// Takes the home's exclusive lock: held for as long as the value lives.
pub fn own_home(paths: &Paths) -> Result<HomeLock, DaemonError> {
    paths.create_dirs().map_err(|source| DaemonError::Io {
        context: format!("creating {}", paths.home.display()),
        source,
    })?;
    // A lock whose holder is gone is about to be free: the kernel releases a dead process's
    // flock a moment after the process is reaped (its files are closed by a deferred work
    // item), so an engine restarted at once after a crash waits for it rather than refusing.
    let deadline = std::time::Instant::now() + DEAD_HOLDER_GRACE;
    loop {
        match HomeLock::acquire(&paths.engine_lock) {
            Ok(lock) => return Ok(lock),
            Err(HomeLockError::Held { pid, .. }) => {
                let dead = pid.is_none_or(|p| !crate::supervisor::process::is_alive(p));
                if !dead || std::time::Instant::now() >= deadline {
                    return Err(DaemonError::AlreadyRunning { home: paths.home.display().to_string(), pid });
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(other) => {
                return Err(DaemonError::Io {
                    context: format!("locking {}", paths.engine_lock.display()),
                    source: std::io::Error::other(other.to_string()),
                })
            }
        }
    }
}

/// How long a lock whose recorded holder is dead is waited for.
const DEAD_HOLDER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// An engine that owns its home and serves its socket: what `gitvisor daemon` runs, and what
/// the tray app runs when no other engine owns the home.
pub struct OwnedEngine {
    pub engine: Engine,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    socket: PathBuf,
    _home: HomeLock,
}

impl OwnedEngine {
    /// Takes the home (or fails with `AlreadyRunning`), binds the socket, opens the engine and
    /// serves the socket until [`OwnedEngine::shutdown`].
    pub async fn open(paths: Paths, keeper_program: PathBuf) -> Result<OwnedEngine, DaemonError> {
        raise_open_files_limit();
        let home = own_home(&paths)?;
        let listener = crate::server::bind(&paths.socket).map_err(|source| DaemonError::Io {
            context: format!("listening on {}", paths.socket.display()),
            source,
        })?;
        let engine = Engine::open(EngineOptions::new(paths.clone(), keeper_program)).await?;
        let (stop, stop_rx) = watch::channel(false);
        let server = tokio::spawn(crate::server::serve(engine.clone(), listener, stop_rx));
        tracing::info!("gitvisor engine {} serving {}", std::process::id(), paths.socket.display());
        Ok(OwnedEngine { engine, stop, server, socket: paths.socket, _home: home })
    }

    /// Stops every service in reverse dependency order, then the server; releases the home.
    pub async fn shutdown(self) {
        self.engine.shutdown().await;
        let _ = self.stop.send(true);
        let _ = self.server.await;
        let _ = std::fs::remove_file(&self.socket);
    }
}

pub async fn run(paths: Paths, keeper_program: PathBuf) -> Result<(), DaemonError> {
    let mut term = signal(SignalKind::terminate())
        .map_err(|source| DaemonError::Io { context: "SIGTERM handler".into(), source })?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|source| DaemonError::Io { context: "SIGINT handler".into(), source })?;
    let owned = OwnedEngine::open(paths, keeper_program).await?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping services"),
        _ = int.recv() => tracing::info!("SIGINT: stopping services"),
    }
    owned.shutdown().await;
    Ok(())
}

/// The soft limit on open files the engine raises itself to, where the hard limit allows.
const OPEN_FILES: u64 = 65536;

/// Lifts the soft limit on open files towards the hard one: the engine holds two pipes per
/// service starting, its sockets and its clients' connections, and 1024 (a common default) is
/// reached by a few hundred services and clients. Services inherit it (`LimitNOFILE=` is not
/// supported); 65536, not the hard limit itself, so that programs that close every possible
/// descriptor at start stay fast.
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let target = hard.min(OPEN_FILES);
        if soft < target {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
                tracing::warn!("cannot raise the open files limit from {soft} to {target}: {e}");
            }
        }
    }
}
