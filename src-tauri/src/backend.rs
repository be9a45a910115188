//! Where the tray's engine lives: in this process when the home is free (the tray then owns it
//! and serves its socket, exactly as `gitvisor daemon` would), or in a headless daemon that
//! already owns the home, reached over the socket. Either way an operation is one call into
//! the engine's method table (`gitvisor_engine::rpc`): in-process, or the same method over
//! the wire.

use std::path::PathBuf;

use gitvisor_engine::daemon::{DaemonError, OwnedEngine};
use gitvisor_engine::events::{Priority, Subscription};
use gitvisor_engine::logs::LogFollow;
use gitvisor_engine::{Engine, Paths};
use gitvisor_protocol::{Client, ClientError, Event, LogLine, LogNotification, LogsParams, LogsReply};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Mutex;

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

    async fn connect(&self) -> Result<Client, String> {
        Client::connect(&self.paths.socket, &self.paths.home.display().to_string(), CLIENT_NAME)
            .await
            .map_err(|e| e.to_string())
    }

    /// Runs the engine operation `method` with `params`; the error is the engine's one line.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        match &self.kind {
            Kind::Local { engine, .. } => engine.call(method, &params).await.map_err(|e| e.message),
            Kind::Attached => {
                let mut client = self.connect().await?;
                client.call(method, params).await.map_err(|e| match e {
                    ClientError::Rpc(e) => e.message,
                    other => other.to_string(),
                })
            }
        }
    }

    pub async fn call_as<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T, String> {
        let v = self.call(method, params).await?;
        serde_json::from_value(v).map_err(|e| format!("{method}: unexpected answer from the engine: {e}"))
    }

    /// The engine's events from now on.
    pub async fn events(&self) -> Result<Events, String> {
        match &self.kind {
            Kind::Local { engine, .. } => Ok(Events::Local(engine.subscribe(Priority::Tray, 1024))),
            Kind::Attached => {
                let mut client = self.connect().await?;
                client.call::<Value>("events.subscribe", Value::Null).await.map_err(|e| e.to_string())?;
                Ok(Events::Remote(client))
            }
        }
    }

    /// The last `lines` lines of a service's log, then each new line.
    pub async fn follow_logs(&self, name: &str, lines: usize) -> Result<(Vec<LogLine>, LogStream), String> {
        match &self.kind {
            Kind::Local { engine, .. } => {
                let (tail, follow) = engine.follow_logs(name, lines).map_err(|e| e.to_string())?;
                Ok((tail, LogStream::Local(follow)))
            }
            Kind::Attached => {
                let mut client = self.connect().await?;
                let params = LogsParams { name: name.to_string(), lines, follow: true };
                let reply: LogsReply = client
                    .call("logs", serde_json::to_value(params).expect("serialisable"))
                    .await
                    .map_err(|e| match e {
                        ClientError::Rpc(e) => e.message,
                        other => other.to_string(),
                    })?;
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
            Events::Remote(client) => loop {
                match client.notification().await {
                    Ok(Some((method, params))) if method == "event" => {
                        if let Ok(ev) = serde_json::from_value(params) {
                            return Some(ev);
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return None,
                }
            },
        }
    }
}

pub enum LogStream {
    Local(LogFollow),
    Remote(Client),
}

impl LogStream {
    /// The next line; `None` when the service's log or the engine is gone.
    pub async fn next(&mut self) -> Option<LogLine> {
        match self {
            LogStream::Local(follow) => follow.next().await,
            LogStream::Remote(client) => loop {
                match client.notification().await {
                    Ok(Some((method, params))) if method == "log" => {
                        if let Ok(n) = serde_json::from_value::<LogNotification>(params) {
                            return Some(n.line);
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return None,
                }
            },
        }
    }
}
