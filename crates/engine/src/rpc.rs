//! The engine's operations by name: the one table the socket server serves and the tray app
//! calls in-process, so a face never writes an operation of its own.
//!
//! Streams (`logs` with `follow`, `events.subscribe`) and the handshake belong to a connection,
//! not to the engine: the socket server handles them itself, and [`call`] refuses them.

use gitvisor_protocol::{
    CaptureParams, CommitParams, CrashExportParams, CrashIdParams, CrashRmParams, CrashRmReply, ErrorCode,
    Hello, HistoryParams, LogsParams, LogsReply, NamesParams, RollbackParams, RpcError,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::engine::{Engine, EngineError};

/// The methods of the protocol, with their parameters.
pub enum Method {
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
    Diff(CommitParams),
    CommitDiff(CommitParams),
    CrashList,
    CrashShow(CrashIdParams),
    CrashExport(CrashExportParams),
    CrashRm(CrashRmParams),
    Capture(CaptureParams),
}

/// Reads a request's method and parameters; an unknown method or a parameter of the wrong shape
/// is one clear error naming it.
pub fn parse(method: &str, params: &Value) -> Result<Method, RpcError> {
    fn typed<T: DeserializeOwned>(method: &str, params: &Value) -> Result<T, RpcError> {
        let p = if params.is_null() { Value::Object(Default::default()) } else { params.clone() };
        serde_json::from_value(p)
            .map_err(|e| ErrorCode::InvalidParams.error(format!("{method}: invalid params: {e}")))
    }
    let names = |params: &Value| -> Result<NamesParams, RpcError> {
        // No names (no params, or `{}`) means every service.
        if params.is_null() || params.as_object().is_some_and(|o| !o.contains_key("names")) {
            return Ok(NamesParams { names: Vec::new() });
        }
        typed(method, params)
    };
    Ok(match method {
        "hello" => Method::Hello(typed(method, params)?),
        "status" => Method::Status(names(params)?),
        "start" => Method::Start(typed(method, params)?),
        "stop" => Method::Stop(typed(method, params)?),
        "restart" => Method::Restart(typed(method, params)?),
        "logs" => Method::Logs(typed(method, params)?),
        "events.subscribe" => Method::EventsSubscribe,
        "config" => Method::Config,
        "sync" => Method::Sync,
        "history" => Method::History(typed(method, params)?),
        "rollback" => Method::Rollback(typed(method, params)?),
        "diff" => Method::Diff(typed(method, params)?),
        "commit.diff" => Method::CommitDiff(typed(method, params)?),
        "crash.list" => Method::CrashList,
        "crash.show" => Method::CrashShow(typed(method, params)?),
        "crash.export" => Method::CrashExport(typed(method, params)?),
        "crash.rm" => Method::CrashRm(typed(method, params)?),
        "capture" => Method::Capture(typed(method, params)?),
        other => return Err(ErrorCode::MethodNotFound.error(format!("no method named {other:?}"))),
    })
}

pub fn engine_error(e: EngineError) -> RpcError {
    let code = match &e {
        EngineError::UnknownService(_) => ErrorCode::UnknownService,
        EngineError::Lock(gitvisor_state::LockError::InProgress { .. }) => ErrorCode::InProgress,
        EngineError::Lock(gitvisor_state::LockError::Held { .. }) => ErrorCode::Held,
        _ => ErrorCode::OperationFailed,
    };
    code.error(e.to_string())
}

pub(crate) fn to_value<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Runs one engine operation. The handshake and the streams are refused: they need a
/// connection (see the module comment).
pub async fn call(engine: &Engine, method: Method) -> Result<Value, RpcError> {
    match method {
        Method::Status(p) => engine.status(&p.names).map(to_value).map_err(engine_error),
        Method::Start(p) => engine.start(&p.names).await.map(to_value).map_err(engine_error),
        Method::Stop(p) => engine.stop(&p.names).await.map(to_value).map_err(engine_error),
        Method::Restart(p) => engine.restart(&p.names).await.map(to_value).map_err(engine_error),
        Method::Config => Ok(to_value(engine.settings())),
        Method::Sync => engine.sync().await.map(to_value).map_err(engine_error),
        Method::History(p) => engine.history(p.limit).map(to_value).map_err(engine_error),
        Method::Rollback(p) => engine.rollback(&p.commit).await.map(to_value).map_err(engine_error),
        Method::Diff(p) => engine.diff_to(&p.commit).map(to_value).map_err(engine_error),
        Method::CommitDiff(p) => engine.commit_diff(&p.commit).map(to_value).map_err(engine_error),
        Method::CrashList => engine.crash_list().map(to_value).map_err(engine_error),
        Method::CrashShow(p) => engine.crash_show(&p.id).map(to_value).map_err(engine_error),
        Method::CrashExport(p) => engine
            .crash_export(&p.id, &p.path)
            .map(|path| serde_json::json!({ "path": path }))
            .map_err(engine_error),
        Method::CrashRm(p) => engine
            .crash_rm(p.id.as_deref(), p.all)
            .map(|removed| to_value(CrashRmReply { removed }))
            .map_err(engine_error),
        Method::Capture(p) => engine.capture(&p.name).await.map(to_value).map_err(engine_error),
        Method::Logs(p) if !p.follow => {
            engine.logs(&p.name, p.lines).map(|lines| to_value(LogsReply { lines })).map_err(engine_error)
        }
        Method::Hello(_) | Method::Logs(_) | Method::EventsSubscribe => {
            Err(ErrorCode::InvalidRequest.error("a handshake or a stream needs a connection of its own"))
        }
    }
}

impl Engine {
    /// Runs the operation named `method` with JSON `params`, as the socket would.
    pub async fn call(&self, method: &str, params: &Value) -> Result<Value, RpcError> {
        call(self, parse(method, params)?).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn status_without_names_means_every_service() {
        for params in [Value::Null, json!({})] {
            assert!(
                matches!(parse("status", &params), Ok(Method::Status(p)) if p.names.is_empty()),
                "{params}"
            );
        }
        assert!(
            matches!(parse("status", &json!({"names": ["web"]})), Ok(Method::Status(p)) if p.names == ["web"])
        );
        let bad = parse("status", &json!({"names": "web"})).err().expect("names must be a list");
        assert!(bad.message.starts_with("status: invalid params"), "{}", bad.message);
    }

    #[test]
    fn unknown_methods_and_bad_params_are_named() {
        assert!(parse("explode", &Value::Null).err().unwrap().message.contains("explode"));
        let e = parse("stop", &json!({})).err().expect("stop needs names");
        assert!(e.message.contains("names"), "{}", e.message);
    }
}
