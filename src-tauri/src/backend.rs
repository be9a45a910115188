//! Where the tray's engine lives: in this process when the home is free (the tray then owns it
//! and serves its socket, exactly as `gitvisor daemon` would), or in a headless daemon that
//! already owns the home, reached over the socket. Either way an operation is one typed request
//! of the method table (`gitvisor_protocol::methods`): handled in-process by the engine's own
//! handler (`gitvisor_engine::rpc`), or sent over the wire. An attached app whose daemon is
//! gone can take the home over ([`Backend::take_over`]): it then runs the engine itself and
//! adopts the services the daemon left running.

use std::path::PathBuf;
use std::sync::RwLock;

use gitvisor_engine::daemon::{DaemonError, OwnedEngine};
use gitvisor_engine::events::{Priority, Subscription};
use gitvisor_engine::logs::LogFollow;
use gitvisor_engine::rpc::Handler;
use gitvisor_engine::{Engine, Paths};
use gitvisor_protocol::{Client, Event, EventsSubscribe, Logs, ServiceLogLine, ServiceName};
use tokio::sync::Mutex;

use crate::error::CommandError;

const CLIENT_NAME: &str = "gitvisor-tray";

pub struct Backend {
    paths: Paths,
    keeper_program: PathBuf,
    /// The engine when this process owns the home; `None` while attached to a daemon (one
    /// connection per call, so a slow stop never holds up a status).
    local: RwLock<Option<Engine>>,
    /// What owns the home (lock, socket, engine); taken at shutdown.
    owned: Mutex<Option<OwnedEngine>>,
}

impl Backend {
    /// Owns the home if no engine does, else attaches to the one that does.
    pub async fn open(paths: Paths, keeper_program: PathBuf) -> Result<Backend, String> {
        let backend = Backend { paths, keeper_program, local: RwLock::new(None), owned: Mutex::new(None) };
        match backend.own().await {
            Ok(()) => Ok(backend),
            Err(DaemonError::AlreadyRunning { pid, .. }) => {
                tracing::info!(
                    "a gitvisor engine{} owns {}: attaching to it",
                    pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                    backend.paths.home.display()
                );
                Ok(backend)
            }
            Err(e) => Err(e.to_string()),
        }
    }

    async fn own(&self) -> Result<(), DaemonError> {
        let owned = OwnedEngine::open(self.paths.clone(), self.keeper_program.clone()).await?;
        *self.local.write().unwrap_or_else(|e| e.into_inner()) = Some(owned.engine.clone());
        *self.owned.lock().await = Some(owned);
        Ok(())
    }

    /// Runs the engine in this process when the daemon this app was attached to is gone: the
    /// services it left running are adopted. Refused while an engine owns the home.
    pub async fn take_over(&self) -> Result<(), CommandError> {
        if !self.attached() {
            return Ok(());
        }
        self.own().await.map_err(|e| match e {
            DaemonError::AlreadyRunning { .. } => CommandError::new(
                gitvisor_protocol::ErrorCode::Held,
                format!("{e}: it runs the engine; this app stays attached to it"),
            ),
            other => CommandError::app(other.to_string()),
        })?;
        tracing::info!("took over {}: the engine runs in this app", self.paths.home.display());
        Ok(())
    }

    fn engine(&self) -> Option<Engine> {
        self.local.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Another process (a headless daemon) runs the engine.
    pub fn attached(&self) -> bool {
        self.engine().is_none()
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    async fn connect(&self) -> Result<Client, CommandError> {
        Ok(Client::connect(&self.paths.socket, &self.paths.home.display().to_string(), CLIENT_NAME).await?)
    }

    /// Runs one engine operation: its typed reply, or the engine's error with its code.
    pub async fn call<M: Handler>(&self, request: M) -> Result<M::Reply, CommandError> {
        match self.engine() {
            Some(engine) => Ok(request.handle(&engine).await?),
            None => Ok(self.connect().await?.call(request).await?),
        }
    }

    /// The engine's events from now on.
    pub async fn events(&self) -> Result<Events, CommandError> {
        match self.engine() {
            Some(engine) => Ok(Events::Local(engine.subscribe(Priority::Tray, 1024))),
            None => {
                let mut client = self.connect().await?;
                client.call(EventsSubscribe {}).await?;
                Ok(Events::Remote(client))
            }
        }
    }

    /// The last `lines` lines of the services' logs, then each new line.
    pub async fn follow_logs(
        &self,
        names: Vec<ServiceName>,
        lines: usize,
    ) -> Result<(Vec<ServiceLogLine>, LogStream), CommandError> {
        match self.engine() {
            Some(engine) => {
                let (tail, follow) =
                    engine.follow_logs(&names, lines).map_err(gitvisor_engine::rpc::CallError::from)?;
                Ok((tail, LogStream::Local(follow)))
            }
            None => {
                let mut client = self.connect().await?;
                let reply = client.call(Logs { names, lines, follow: true }).await?;
                Ok((reply.lines, LogStream::Remote(client)))
            }
        }
    }

    /// Stops every service and releases the home when this process owns it; an attached tray
    /// leaves the daemon and its services alone.
    pub async fn shutdown(&self) {
        if let Some(owned) = self.owned.lock().await.take() {
            self.local.write().unwrap_or_else(|e| e.into_inner()).take();
            owned.shutdown().await;
        }
    }
}

pub enum Events {
    Local(Subscription),
    Remote(Client),
}

impl Events {
    /// The next event; `None` when the engine is gone.
    pub async fn next(&mut self) -> Option<Event> {
        match self {
            Events::Local(sub) => sub.recv().await,
            Events::Remote(client) => client.next::<Event>().await.ok().flatten(),
        }
    }
}

pub enum LogStream {
    Local(LogFollow),
    Remote(Client),
}

impl LogStream {
    /// The next line; `None` when the followed logs or the engine are gone.
    pub async fn next(&mut self) -> Option<ServiceLogLine> {
        match self {
            LogStream::Local(follow) => follow.next().await,
            LogStream::Remote(client) => client.next::<ServiceLogLine>().await.ok().flatten(),
        }
    }
}
