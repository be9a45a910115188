//! One handler per method, dispatched by one exhaustive match.

use gitvisor_protocol::{
    ErrorCode, FrameReader, LogNotification, LogsParams, LogsReply, Notification, Request, Response,
    RpcError, Welcome, PROTOCOL_VERSION,
};
use serde_json::Value;
use tokio::io::BufReader;
use tokio::net::unix::OwnedReadHalf;
use tokio::sync::watch;

use super::Conn;
use crate::engine::Engine;
use crate::events::Priority;
use crate::rpc::{engine_error, parse, to_value, Method};

type Frames = FrameReader<BufReader<OwnedReadHalf>>;

/// Handles one request. `Err` ends the connection (the client is gone).
pub(super) async fn handle(
    engine: &Engine,
    conn: &mut Conn,
    frames: &mut Frames,
    req: Request,
    greeted: &mut bool,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let id = req.id.clone().unwrap_or(Value::Null);
    let method = match parse(&req.method, &req.params) {
        Ok(m) => m,
        Err(e) => return conn.error(id, e).await,
    };
    if !*greeted && !matches!(method, Method::Hello(_)) {
        return conn
            .error(id, ErrorCode::HandshakeRequired.error("send hello first (the version handshake)"))
            .await;
    }
    let result: Result<Value, RpcError> = match method {
        Method::Hello(h) => {
            if h.protocol != PROTOCOL_VERSION {
                let msg = format!(
                    "protocol version {} is not supported by this engine (it speaks {PROTOCOL_VERSION}); use matching gitvisor versions",
                    h.protocol
                );
                Err(ErrorCode::VersionMismatch.error(msg))
            } else {
                *greeted = true;
                Ok(to_value(Welcome {
                    protocol: PROTOCOL_VERSION,
                    engine: env!("CARGO_PKG_VERSION").to_string(),
                    home: engine.paths().home.display().to_string(),
                    pid: std::process::id(),
                }))
            }
        }
        Method::Logs(p) if p.follow => return follow_logs(engine, conn, frames, id, p, stop).await,
        Method::EventsSubscribe => return stream_events(engine, conn, frames, id, stop).await,
        other => crate::rpc::call(engine, other).await,
    };
    match result {
        Ok(v) => conn.send(&Response::ok(id, v)).await,
        Err(e) => conn.error(id, e).await,
    }
}

/// Answers with the tail, then sends each new line as a `log` notification until the client
/// closes the connection or the engine stops.
async fn follow_logs(
    engine: &Engine,
    conn: &mut Conn,
    frames: &mut Frames,
    id: Value,
    p: LogsParams,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (lines, mut follow) = match engine.follow_logs(&p.name, p.lines) {
        Ok(x) => x,
        Err(e) => return conn.error(id, engine_error(e)).await,
    };
    conn.send(&Response::ok(id, to_value(LogsReply { lines }))).await?;
    loop {
        tokio::select! {
            line = follow.next() => match line {
                Some(line) => {
                    let n = LogNotification { name: p.name.clone(), line };
                    conn.send(&Notification::new("log", to_value(n))).await?;
                }
                None => return Ok(()),
            },
            f = frames.next() => if !matches!(f, Ok(Some(_))) { return Ok(()) },
            () = super::stopped(&mut stop) => return Ok(()),
        }
    }
}

async fn stream_events(
    engine: &Engine,
    conn: &mut Conn,
    frames: &mut Frames,
    id: Value,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut sub = engine.subscribe(Priority::Socket, 1024);
    conn.send(&Response::ok(id, Value::Object(Default::default()))).await?;
    loop {
        tokio::select! {
            ev = sub.recv() => match ev {
                Some(ev) => conn.send(&Notification::new("event", to_value(ev))).await?,
                None => return Ok(()),
            },
            f = frames.next() => if !matches!(f, Ok(Some(_))) { return Ok(()) },
            () = super::stopped(&mut stop) => return Ok(()),
        }
    }
}
