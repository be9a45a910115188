//! Where the tray's engine lives: in this process when the home is free (the tray then owns it
//! and serves its socket, exactly as `gitvisor daemon` would), or in a headless daemon that
//! already owns the home, reached over the socket. Either way an operation is one typed request
//! of the method table (`gitvisor_protocol::methods`): handled in-process by the engine's own
//! handler (`gitvisor_engine::rpc`), or sent over the wire.

use std::path::PathBuf;

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
    kind: Kind,
}

enum Kind {
    /// This process owns the home; `owned` is taken at shutdown.
    Local { engine: Engine, owned: Mutex<Option<OwnedEngine>> },
    /// A daemon owns the home: one connection per call (a slow stop never holds up a status).
    Attached,
}

impl Backend {
    /// Owns the home if no engine does, else attaches to the one that does.
    pub async fn open(paths: Paths, keeper_program: PathBuf) -> Result<Backend, String> {
        match OwnedEngine::open(paths.clone(), keeper_program).await {
            Ok(owned) => {
                let engine = owned.engine.clone();
                Ok(Backend { paths, kind: Kind::Local { engine, owned: Mutex::new(Some(owned)) } })
            }
            Err(DaemonError::AlreadyRunning { pid, .. }) => {
                tracing::info!(
                    "a gitvisor engine{} owns {}: attaching to it",
                    pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                    paths.home.display()
                );
                Ok(Backend { paths, kind: Kind::Attached })
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Another process (a headless daemon) runs the engine.
    pub fn attached(&self) -> bool {
        matches!(self.kind, Kind::Attached)
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    async fn connect(&self) -> Result<Client, CommandError> {
        Ok(Client::connect(&self.paths.socket, &self.paths.home.display().to_string(), CLIENT_NAME).await?)
    }

    /// Runs one engine operation: its typed reply, or the engine's error with its code.
    pub async fn call<M: Handler>(&self, request: M) -> Result<M::Reply, CommandError> {
        match &self.kind {
            Kind::Local { engine, .. } => Ok(request.handle(engine).await?),
            Kind::Attached => Ok(self.connect().await?.call(request).await?),
        }
    }

    /// The engine's events from now on.
    pub async fn events(&self) -> Result<Events, CommandError> {
        match &self.kind {
            Kind::Local { engine, .. } => Ok(Events::Local(engine.subscribe(Priority::Tray, 1024))),
            Kind::Attached => {
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
        match &self.kind {
            Kind::Local { engine, .. } => {
                let (tail, follow) =
                    engine.follow_logs(&names, lines).map_err(gitvisor_engine::rpc::CallError::from)?;
                Ok((tail, LogStream::Local(follow)))
            }
            Kind::Attached => {
                let mut client = self.connect().await?;
                let reply = client.call(Logs { names, lines, follow: true }).await?;
                Ok((reply.lines, LogStream::Remote(client)))
            }
        }
    }

    /// Stops every service and releases the home when this process owns it; an attached tray
    /// leaves the daemon and its services alone.
    pub async fn shutdown(&self) {
        if let Kind::Local { owned, .. } = &self.kind {
            if let Some(owned) = owned.lock().await.take() {
                owned.shutdown().await;
            }
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
