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
    HomeLock::acquire(&paths.engine_lock).map_err(|e| match e {
        HomeLockError::Held { pid, .. } => {
            DaemonError::AlreadyRunning { home: paths.home.display().to_string(), pid }
        }
        other => DaemonError::Io {
            context: format!("locking {}", paths.engine_lock.display()),
            source: std::io::Error::other(other.to_string()),
        },
    })
}

pub async fn run(paths: Paths, keeper_program: PathBuf) -> Result<(), DaemonError> {
    let _home = own_home(&paths)?;
    let mut term = signal(SignalKind::terminate())
        .map_err(|source| DaemonError::Io { context: "SIGTERM handler".into(), source })?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|source| DaemonError::Io { context: "SIGINT handler".into(), source })?;
    let listener = crate::server::bind(&paths.socket).map_err(|source| DaemonError::Io {
        context: format!("listening on {}", paths.socket.display()),
        source,
    })?;
    let engine = Engine::open(EngineOptions { paths: paths.clone(), keeper_program }).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(crate::server::serve(engine.clone(), listener, stop_rx));
    tracing::info!("gitvisor engine {} serving {}", std::process::id(), paths.socket.display());
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping services"),
        _ = int.recv() => tracing::info!("SIGINT: stopping services"),
    }
    engine.shutdown().await;
    let _ = stop_tx.send(true);
    let _ = server.await;
    let _ = std::fs::remove_file(&paths.socket);
    Ok(())
}
