//! A client of the engine's socket: connects, shakes hands, calls methods, reads notifications.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use crate::frame::{FrameError, FrameReader};
use crate::message::{ErrorCode, Request, RpcError};
use crate::methods::{Method, Notice};
use crate::types::{Hello, Welcome};
use crate::PROTOCOL_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no gitvisor engine is running for {home} (socket {socket}: {reason})")]
    NotRunning { home: String, socket: String, reason: String },
    #[error("{0}")]
    Rpc(#[from] RpcError),
    #[error("connection to the engine lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("the engine sent an invalid message: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The engine's code for an error it answered; `EngineUnreachable` when it could not be
    /// reached or the connection broke.
    pub fn code(&self) -> ErrorCode {
        match self {
            ClientError::Rpc(e) => e.kind(),
            _ => ErrorCode::EngineUnreachable,
        }
    }

    /// One line for a person: the engine's own message when it answered.
    pub fn message(&self) -> String {
        match self {
            ClientError::Rpc(e) => e.message.clone(),
            other => other.to_string(),
        }
    }
}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Io(io) => ClientError::Io(io),
            other => ClientError::Protocol(other.to_string()),
        }
    }
}

pub struct Client {
    reader: FrameReader<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
    next_id: u64,
    pub welcome: Welcome,
}

impl Client {
    /// Connects to `socket` and performs the version handshake. `home` only names the home in
    /// the error a user sees when no engine runs.
    pub async fn connect(socket: &Path, home: &str, client: &str) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(socket).await.map_err(|e| ClientError::NotRunning {
            home: home.to_string(),
            socket: socket.display().to_string(),
            reason: e.to_string(),
        })?;
        let (r, w) = stream.into_split();
        let mut c = Client {
            reader: FrameReader::new(BufReader::new(r)),
            writer: w,
            next_id: 1,
            welcome: Welcome { protocol: 0, engine: String::new(), home: String::new(), pid: 0 },
        };
        let hello = Hello { protocol: PROTOCOL_VERSION, client: client.to_string() };
        c.welcome = c.call(hello).await?;
        Ok(c)
    }

    /// Sends a request and waits for its reply, skipping notifications that arrive first.
    pub async fn call<M: Method>(&mut self, request: M) -> Result<M::Reply, ClientError> {
        let params = serde_json::to_value(&request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.call_raw(M::NAME, params).await
    }

    async fn call_raw<T: DeserializeOwned>(&mut self, method: &str, params: Value) -> Result<T, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_string(&Request::new(id, method, params)).expect("serialisable");
        line.push('\n');
        self.writer.write_all(line.as_bytes()).await?;
        loop {
            let frame = self.reader.next().await?.ok_or_else(|| {
                ClientError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "engine closed the connection",
                ))
            })?;
            let v: Value = serde_json::from_str(&frame).map_err(|e| ClientError::Protocol(e.to_string()))?;
            if v.get("id").and_then(Value::as_u64) != Some(id) {
                continue;
            }
            if let Some(err) = v.get("error") {
                let err: RpcError =
                    serde_json::from_value(err.clone()).map_err(|e| ClientError::Protocol(e.to_string()))?;
                return Err(ClientError::Rpc(err));
            }
            let result = v.get("result").cloned().unwrap_or(Value::Null);
            return serde_json::from_value(result).map_err(|e| ClientError::Protocol(e.to_string()));
        }
    }

    /// The next notification of kind `N` on a stream (others are skipped); `None` when the
    /// engine closes the connection.
    pub async fn next<N: Notice>(&mut self) -> Result<Option<N>, ClientError> {
        loop {
            let Some(frame) = self.reader.next().await? else { return Ok(None) };
            let v: Value = serde_json::from_str(&frame).map_err(|e| ClientError::Protocol(e.to_string()))?;
            if v.get("id").is_some() || v.get("method").and_then(Value::as_str) != Some(N::NAME) {
                continue;
            }
            let params = v.get("params").cloned().unwrap_or(Value::Null);
            return serde_json::from_value(params)
                .map(Some)
                .map_err(|e| ClientError::Protocol(e.to_string()));
        }
    }
}
