//! One handler per method, dispatched by one exhaustive match.

use gitvisor_protocol::{
    Call, ErrorCode, FrameReader, Logs, LogsReply, Notification, Request, Response, RpcError, Subscribed,
};
use serde_json::Value;
use tokio::io::BufReader;
use tokio::net::unix::OwnedReadHalf;
use tokio::sync::watch;

use super::Conn;
use crate::engine::Engine;
use crate::events::Priority;
use crate::rpc::Handler;

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
    let call = match Call::parse(&req.method, req.params) {
        Ok(c) => c,
        Err(e) => return conn.error(id, e).await,
    };
    if !*greeted && !matches!(call, Call::Hello(_)) {
        return conn
            .error(id, ErrorCode::HandshakeRequired.error("send hello first (the version handshake)"))
            .await;
    }
    let result: Result<Value, RpcError> = match call {
        Call::Hello(h) => match h.handle(engine).await {
            Ok(welcome) => {
                *greeted = true;
                Ok(to_value(welcome))
            }
            Err(e) => Err(e.into()),
        },
        Call::Logs(p) if p.follow => return follow_logs(engine, conn, frames, id, p, stop).await,
        Call::EventsSubscribe(_) => return stream_events(engine, conn, frames, id, stop).await,
        other => engine.call(other).await,
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
    p: Logs,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (lines, mut follow) = match engine.follow_logs(&p.names, p.lines) {
        Ok(x) => x,
        Err(e) => return conn.error(id, e.into()).await,
    };
    conn.send(&Response::ok(id, to_value(LogsReply { lines }))).await?;
    loop {
        tokio::select! {
            line = follow.next() => match line {
                Some(line) => conn.send(&Notification::of(&line)).await?,
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
    conn.send(&Response::ok(id, to_value(Subscribed {}))).await?;
    loop {
        tokio::select! {
            ev = sub.recv() => match ev {
                Some(ev) => conn.send(&Notification::of(&ev)).await?,
                None => return Ok(()),
            },
            f = frames.next() => if !matches!(f, Ok(Some(_))) { return Ok(()) },
            () = super::stopped(&mut stop) => return Ok(()),
        }
    }
}

fn to_value<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
