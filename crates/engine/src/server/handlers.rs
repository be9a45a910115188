//! One handler per method, dispatched by one exhaustive match.

use gitvisor_protocol::{
    CaptureParams, CrashExportParams, CrashIdParams, CrashRmParams, ErrorCode, FrameReader, Hello,
    HistoryParams, LogNotification, LogsParams, LogsReply, NamesParams, Notification, Request, Response,
    RollbackParams, RpcError, Welcome, PROTOCOL_VERSION,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::BufReader;
use tokio::net::unix::OwnedReadHalf;
use tokio::sync::watch;

use super::Conn;
use crate::engine::{Engine, EngineError};
use crate::events::Priority;

type Frames = FrameReader<BufReader<OwnedReadHalf>>;

/// The methods of the protocol.
enum Method {
    Hello(Hello),
    Status(NamesParams),
    Start(NamesParams),
    Stop(NamesParams),
    Restart(NamesParams),
    Logs(LogsParams),
    EventsSubscribe,
    Config,
    Sync,
    History(HistoryParams),
    Rollback(RollbackParams),
    CrashList,
    CrashShow(CrashIdParams),
    CrashExport(CrashExportParams),
    CrashRm(CrashRmParams),
    Capture(CaptureParams),
}

fn parse(req: &Request) -> Result<Method, RpcError> {
    fn params<T: DeserializeOwned>(req: &Request) -> Result<T, RpcError> {
        let p = if req.params.is_null() { Value::Object(Default::default()) } else { req.params.clone() };
        serde_json::from_value(p)
            .map_err(|e| ErrorCode::InvalidParams.error(format!("{}: invalid params: {e}", req.method)))
    }
    fn names(req: &Request) -> Result<NamesParams, RpcError> {
        if req.params.is_null() {
            return Ok(NamesParams { names: Vec::new() });
        }
        params(req)
    }
    Ok(match req.method.as_str() {
        "hello" => Method::Hello(params(req)?),
        "status" => Method::Status(names(req)?),
        "start" => Method::Start(params(req)?),
        "stop" => Method::Stop(params(req)?),
        "restart" => Method::Restart(params(req)?),
        "logs" => Method::Logs(params(req)?),
        "events.subscribe" => Method::EventsSubscribe,
        "config" => Method::Config,
        "sync" => Method::Sync,
        "history" => Method::History(params(req)?),
        "rollback" => Method::Rollback(params(req)?),
        "crash.list" => Method::CrashList,
        "crash.show" => Method::CrashShow(params(req)?),
        "crash.export" => Method::CrashExport(params(req)?),
        "crash.rm" => Method::CrashRm(params(req)?),
        "capture" => Method::Capture(params(req)?),
        other => return Err(ErrorCode::MethodNotFound.error(format!("no method named {other:?}"))),
    })
}

fn engine_error(e: EngineError) -> RpcError {
    let code = match &e {
        EngineError::UnknownService(_) => ErrorCode::UnknownService,
        EngineError::Lock(gitvisor_state::LockError::InProgress { .. }) => ErrorCode::InProgress,
        EngineError::Lock(gitvisor_state::LockError::Held { .. }) => ErrorCode::Held,
        _ => ErrorCode::OperationFailed,
    };
    code.error(e.to_string())
}

fn to_value<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

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
    let method = match parse(&req) {
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
        Method::Status(p) => engine.status(&p.names).map(to_value).map_err(engine_error),
        Method::Start(p) => engine.start(&p.names).await.map(to_value).map_err(engine_error),
        Method::Stop(p) => engine.stop(&p.names).await.map(to_value).map_err(engine_error),
        Method::Restart(p) => engine.restart(&p.names).await.map(to_value).map_err(engine_error),
        Method::Config => Ok(to_value(engine.settings())),
        Method::Sync => engine.sync().await.map(to_value).map_err(engine_error),
        Method::History(p) => engine.history(p.limit).map(to_value).map_err(engine_error),
        Method::Rollback(p) => engine.rollback(&p.commit).await.map(to_value).map_err(engine_error),
        Method::CrashList => engine.crash_list().map(to_value).map_err(engine_error),
        Method::CrashShow(p) => engine.crash_show(&p.id).map(to_value).map_err(engine_error),
        Method::CrashExport(p) => engine
            .crash_export(&p.id, &p.path)
            .map(|path| serde_json::json!({ "path": path }))
            .map_err(engine_error),
        Method::CrashRm(p) => engine
            .crash_rm(p.id.as_deref(), p.all)
            .map(|removed| to_value(gitvisor_protocol::CrashRmReply { removed }))
            .map_err(engine_error),
        Method::Capture(p) => engine.capture(&p.name).await.map(to_value).map_err(engine_error),
        Method::Logs(p) if p.follow => return follow_logs(engine, conn, frames, id, p, stop).await,
        Method::Logs(p) => {
            engine.logs(&p.name, p.lines).map(|lines| to_value(LogsReply { lines })).map_err(engine_error)
        }
        Method::EventsSubscribe => return stream_events(engine, conn, frames, id, stop).await,
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
    // Subscribe before reading the tail so no line falls between the two.
    let mut rx = match engine.follow_logs(&p.name) {
        Ok(rx) => rx,
        Err(e) => return conn.error(id, engine_error(e)).await,
    };
    let lines = engine.logs(&p.name, p.lines).unwrap_or_default();
    let last = lines.last().map(|l| l.at_us).unwrap_or(0);
    conn.send(&Response::ok(id, to_value(LogsReply { lines }))).await?;
    loop {
        tokio::select! {
            line = rx.recv() => match line {
                Ok(line) if line.at_us < last => {}
                Ok(line) => {
                    let n = LogNotification { name: p.name.clone(), line };
                    conn.send(&Notification::new("log", to_value(n))).await?;
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    let text = format!("[{missed} lines skipped: this client reads too slowly]");
                    let line = gitvisor_protocol::LogLine { at_us: crate::time::now_us(), stream: "gitvisor".into(), text };
                    conn.send(&Notification::new("log", to_value(LogNotification { name: p.name.clone(), line }))).await?;
                }
                Err(_) => return Ok(()),
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
