//! The socket server: newline-delimited JSON-RPC 2.0 over a Unix socket (docs/protocol.md).
//! Each connection is served by its own task; a bad frame gets an error response and the
//! connection goes on; nothing a client sends can stall the engine or another client.

mod handlers;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use gitvisor_protocol::{ErrorCode, FrameError, FrameReader, Request, Response, RpcError};
use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::engine::Engine;

/// Binds the engine's socket, readable and writable by its owner only. The caller owns the home
/// (holds its lock), so a socket file left there is stale and replaced.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // Create it private from the start: no window where another user could connect.
    let old = unsafe { libc::umask(0o177) };
    let listener = UnixListener::bind(path);
    unsafe { libc::umask(old) };
    let listener = listener?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves until `stop` turns true. Connection tasks end with their clients or with `stop`.
/// Connections served at once; more are told so and closed (each costs a task and buffers).
pub const MAX_CONNECTIONS: usize = 1024;
/// How long a new connection may take to send its first request: one that sends nothing is
/// dropped, so idle connections cannot pile up.
const FIRST_REQUEST_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn serve(engine: Engine, listener: UnixListener, stop: watch::Receiver<bool>) {
    let mut connections = tokio::task::JoinSet::new();
    let mut stop_rx = stop.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) if connections.len() >= MAX_CONNECTIONS => {
                    connections.spawn(async move {
                        let (_, writer) = stream.into_split();
                        let mut conn = Conn { writer };
                        let msg = format!("refused: {MAX_CONNECTIONS} connections are open already");
                        let _ = conn.error(Value::Null, ErrorCode::InvalidRequest.error(msg)).await;
                    });
                }
                Ok((stream, _)) => {
                    let engine = engine.clone();
                    let stop = stop.clone();
                    connections.spawn(async move { serve_connection(engine, stream, stop).await });
                }
                Err(e) => {
                    tracing::warn!("accept on the engine socket failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            () = stopped(&mut stop_rx) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// Resolves once `stop` turns true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

pub(crate) struct Conn {
    pub writer: OwnedWriteHalf,
}

impl Conn {
    pub async fn send(&mut self, value: &impl serde::Serialize) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.writer.write_all(&line).await
    }

    pub async fn error(&mut self, id: Value, error: RpcError) -> std::io::Result<()> {
        self.send(&Response::err(id, error)).await
    }
}

async fn serve_connection(engine: Engine, stream: UnixStream, stop: watch::Receiver<bool>) {
    let peer_ok = stream.peer_cred().map(|c| c.uid() == nix::unistd::geteuid().as_raw()).unwrap_or(false);
    let (reader, writer) = stream.into_split();
    let mut conn = Conn { writer };
    if !peer_ok {
        let _ = conn
            .error(
                Value::Null,
                ErrorCode::InvalidRequest.error("refused: the engine serves only its own user"),
            )
            .await;
        return;
    }
    let mut frames = FrameReader::new(BufReader::new(reader));
    let mut greeted = false;
    match tokio::time::timeout(FIRST_REQUEST_WITHIN, frames.fill()).await {
        Ok(Ok(true)) => {}
        // Nothing within the time, or closed: nothing to answer.
        _ => return,
    }
    loop {
        let frame = match frames.next().await {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(FrameError::Io(_)) => return,
            Err(e) => {
                let code = match e {
                    FrameError::TooLarge { .. } => ErrorCode::InvalidRequest,
                    _ => ErrorCode::ParseError,
                };
                if conn.error(Value::Null, code.error(e.to_string())).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let request: Request = match serde_json::from_str::<Value>(&frame) {
            Err(e) => {
                if conn
                    .error(Value::Null, ErrorCode::ParseError.error(format!("invalid JSON: {e}")))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            Ok(v) => match serde_json::from_value::<Request>(v.clone()) {
                Ok(r) if r.jsonrpc == "2.0" => r,
                _ => {
                    let id = v.get("id").cloned().unwrap_or(Value::Null);
                    let msg = "invalid request: expected {\"jsonrpc\":\"2.0\",\"method\":...,\"id\":...}";
                    if conn.error(id, ErrorCode::InvalidRequest.error(msg)).await.is_err() {
                        return;
                    }
                    continue;
                }
            },
        };
        let outcome =
            handlers::handle(&engine, &mut conn, &mut frames, request, &mut greeted, stop.clone()).await;
        if outcome.is_err() {
            return;
        }
    }
}
