//! The engine's side of the method table (`gitvisor_protocol::methods`): one [`Handler`] per
//! method, and [`Engine::call`], the one exhaustive dispatch the socket server uses. The tray
//! app calls the same handlers in-process, typed, so a face never writes an operation of its
//! own.
//!
//! Streams (`logs` with `follow`, `events.subscribe`) belong to a connection, not to the
//! engine: the socket server handles them itself, and their handlers refuse.

use std::future::Future;

use gitvisor_protocol::{
    methods::*, CaptureReply, CrashListReply, CrashRmReply, CrashShowReply, EnableReply, ErrorCode, Hello,
    HistoryReply, LogsReply, Method, OpReply, RollbackReply, RpcError, StatusReply, SyncReport, TimersReply,
    Welcome, PROTOCOL_VERSION,
};
use serde_json::Value;

use crate::engine::{Engine, EngineError};

/// Why a request did not get its reply: the engine's error, or a refusal of the request itself.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("{}", .0.message)]
    Refused(RpcError),
}

impl CallError {
    pub fn code(&self) -> ErrorCode {
        match self {
            CallError::Engine(e) => e.code(),
            CallError::Refused(e) => e.kind(),
        }
    }
}

impl From<CallError> for RpcError {
    fn from(e: CallError) -> RpcError {
        match e {
            CallError::Engine(e) => e.into(),
            CallError::Refused(e) => e,
        }
    }
}

/// A method the engine answers by itself.
pub trait Handler: Method {
    fn handle(self, engine: &Engine) -> impl Future<Output = Result<Self::Reply, CallError>> + Send;
}

fn needs_connection() -> CallError {
    CallError::Refused(
        ErrorCode::InvalidRequest.error("a handshake or a stream needs a connection of its own"),
    )
}

impl Handler for Hello {
    /// The handshake's answer: the socket server sends it and marks the connection greeted.
    async fn handle(self, engine: &Engine) -> Result<Welcome, CallError> {
        if self.protocol != PROTOCOL_VERSION {
            let msg = format!(
                "protocol version {} is not supported by this engine (it speaks {PROTOCOL_VERSION}); use matching gitvisor versions",
                self.protocol
            );
            return Err(CallError::Refused(ErrorCode::VersionMismatch.error(msg)));
        }
        Ok(Welcome {
            protocol: PROTOCOL_VERSION,
            engine: env!("CARGO_PKG_VERSION").to_string(),
            home: engine.paths().home.display().to_string(),
            pid: std::process::id(),
        })
    }
}

impl Handler for Status {
    async fn handle(self, engine: &Engine) -> Result<StatusReply, CallError> {
        Ok(engine.status(&self.names)?)
    }
}

impl Handler for Start {
    async fn handle(self, engine: &Engine) -> Result<OpReply, CallError> {
        Ok(engine.start(&self.names, self.wait).await?)
    }
}

impl Handler for Stop {
    async fn handle(self, engine: &Engine) -> Result<OpReply, CallError> {
        Ok(engine.stop(&self.names).await?)
    }
}

impl Handler for Reload {
    async fn handle(self, engine: &Engine) -> Result<OpReply, CallError> {
        Ok(engine.reload(&self.names).await?)
    }
}

impl Handler for gitvisor_protocol::methods::Metrics {
    async fn handle(self, engine: &Engine) -> Result<gitvisor_protocol::MetricsReply, CallError> {
        Ok(engine.metrics(&self.names)?)
    }
}

impl Handler for Timers {
    async fn handle(self, engine: &Engine) -> Result<TimersReply, CallError> {
        Ok(engine.timers())
    }
}

impl Handler for Restart {
    async fn handle(self, engine: &Engine) -> Result<OpReply, CallError> {
        Ok(engine.restart(&self.names).await?)
    }
}

impl Handler for Logs {
    async fn handle(self, engine: &Engine) -> Result<LogsReply, CallError> {
        if self.follow {
            return Err(needs_connection());
        }
        Ok(LogsReply { lines: engine.logs(&self.names, self.lines)? })
    }
}

impl Handler for EventsSubscribe {
    async fn handle(self, _: &Engine) -> Result<Subscribed, CallError> {
        Err(needs_connection())
    }
}

impl Handler for Config {
    async fn handle(self, engine: &Engine) -> Result<Value, CallError> {
        Ok(serde_json::to_value(engine.settings()).unwrap_or(Value::Null))
    }
}

impl Handler for SyncNow {
    async fn handle(self, engine: &Engine) -> Result<SyncReport, CallError> {
        Ok(engine.sync().await?)
    }
}

impl Handler for History {
    async fn handle(self, engine: &Engine) -> Result<HistoryReply, CallError> {
        Ok(engine.history(self.limit)?)
    }
}

impl Handler for Rollback {
    async fn handle(self, engine: &Engine) -> Result<RollbackReply, CallError> {
        Ok(engine.rollback(&self.commit).await?)
    }
}

impl Handler for Diff {
    async fn handle(self, engine: &Engine) -> Result<String, CallError> {
        Ok(engine.diff_to(&self.commit)?)
    }
}

impl Handler for CommitDiff {
    async fn handle(self, engine: &Engine) -> Result<String, CallError> {
        Ok(engine.commit_diff(&self.commit)?)
    }
}

impl Handler for CrashList {
    async fn handle(self, engine: &Engine) -> Result<CrashListReply, CallError> {
        Ok(engine.crash_list(self.service.as_ref())?)
    }
}

impl Handler for CrashShow {
    async fn handle(self, engine: &Engine) -> Result<CrashShowReply, CallError> {
        Ok(engine.crash_show(&self.id)?)
    }
}

impl Handler for CrashExport {
    async fn handle(self, engine: &Engine) -> Result<CrashExportReply, CallError> {
        Ok(CrashExportReply { path: engine.crash_export(&self.id, &self.path)? })
    }
}

impl Handler for CrashRm {
    async fn handle(self, engine: &Engine) -> Result<CrashRmReply, CallError> {
        Ok(CrashRmReply { removed: engine.crash_rm(self.id.as_deref(), self.all)? })
    }
}

impl Handler for Enable {
    async fn handle(self, engine: &Engine) -> Result<EnableReply, CallError> {
        Ok(engine.set_enabled(&self.names, true).await?)
    }
}

impl Handler for Disable {
    async fn handle(self, engine: &Engine) -> Result<EnableReply, CallError> {
        Ok(engine.set_enabled(&self.names, false).await?)
    }
}

impl Handler for gitvisor_protocol::methods::Import {
    async fn handle(self, engine: &Engine) -> Result<gitvisor_protocol::ImportReply, CallError> {
        Ok(engine.import(self).await?)
    }
}

impl Handler for MaintenanceStatus {
    async fn handle(self, engine: &Engine) -> Result<gitvisor_protocol::MaintenanceStatusReply, CallError> {
        Ok(engine.maintenance_status())
    }
}

impl Handler for MaintenanceRunNow {
    async fn handle(self, engine: &Engine) -> Result<gitvisor_protocol::MaintenanceRunReply, CallError> {
        Ok(engine.maintenance_run())
    }
}

impl Handler for FleetStatus {
    async fn handle(self, engine: &Engine) -> Result<gitvisor_protocol::FleetStatusReply, CallError> {
        Ok(engine.fleet_status().await?)
    }
}

impl Handler for Capture {
    async fn handle(self, engine: &Engine) -> Result<CaptureReply, CallError> {
        Ok(engine.capture(&self.name).await?)
    }
}

impl Handler for Graph {
    async fn handle(self, engine: &Engine) -> Result<gitvisor_protocol::GraphReply, CallError> {
        Ok(engine.graph())
    }
}

impl Handler for Timeline {
    async fn handle(self, engine: &Engine) -> Result<gitvisor_protocol::TimelineReply, CallError> {
        Ok(engine.timeline(&self.names, self.since_ms))
    }
}

impl Handler for UnitGet {
    async fn handle(self, engine: &Engine) -> Result<gitvisor_protocol::UnitText, CallError> {
        Ok(engine.unit_get(&self.name)?)
    }
}

impl Handler for UnitValidate {
    async fn handle(self, engine: &Engine) -> Result<gitvisor_protocol::UnitCheck, CallError> {
        Ok(engine.unit_validate(&self.name, &self.text)?)
    }
}

impl Handler for UnitCommit {
    async fn handle(self, engine: &Engine) -> Result<gitvisor_protocol::UnitCommitReply, CallError> {
        Ok(engine.unit_commit(&self.name, &self.text, self.message.as_deref()).await?)
    }
}

impl Handler for UnitDelete {
    async fn handle(self, engine: &Engine) -> Result<gitvisor_protocol::UnitCommitReply, CallError> {
        Ok(engine.unit_delete(&self.name, self.message.as_deref()).await?)
    }
}

impl Handler for UnitDraft {
    async fn handle(self, engine: &Engine) -> Result<gitvisor_protocol::UnitText, CallError> {
        Ok(engine.unit_draft(&self.name, self.text.as_deref())?)
    }
}

impl Handler for UnitDiscard {
    async fn handle(self, engine: &Engine) -> Result<gitvisor_protocol::UnitText, CallError> {
        Ok(engine.unit_discard(&self.name)?)
    }
}

/// Runs `m` and turns its reply into the wire's value.
async fn reply<M: Handler>(engine: &Engine, m: M) -> Result<Value, RpcError> {
    let reply = m.handle(engine).await?;
    serde_json::to_value(reply)
        .map_err(|e| ErrorCode::Internal.error(format!("cannot encode the reply: {e}")))
}

impl Engine {
    /// Answers one typed request, as the socket would.
    pub async fn call(&self, call: Call) -> Result<Value, RpcError> {
        match call {
            Call::Hello(m) => reply(self, m).await,
            Call::Status(m) => reply(self, m).await,
            Call::Start(m) => reply(self, m).await,
            Call::Stop(m) => reply(self, m).await,
            Call::Restart(m) => reply(self, m).await,
            Call::Reload(m) => reply(self, m).await,
            Call::Logs(m) => reply(self, m).await,
            Call::EventsSubscribe(m) => reply(self, m).await,
            Call::Config(m) => reply(self, m).await,
            Call::SyncNow(m) => reply(self, m).await,
            Call::History(m) => reply(self, m).await,
            Call::Rollback(m) => reply(self, m).await,
            Call::Diff(m) => reply(self, m).await,
            Call::CommitDiff(m) => reply(self, m).await,
            Call::CrashList(m) => reply(self, m).await,
            Call::CrashShow(m) => reply(self, m).await,
            Call::CrashExport(m) => reply(self, m).await,
            Call::CrashRm(m) => reply(self, m).await,
            Call::Capture(m) => reply(self, m).await,
            Call::Enable(m) => reply(self, m).await,
            Call::Disable(m) => reply(self, m).await,
            Call::Import(m) => reply(self, m).await,
            Call::MaintenanceStatus(m) => reply(self, m).await,
            Call::Timers(m) => reply(self, m).await,
            Call::Metrics(m) => reply(self, m).await,
            Call::MaintenanceRunNow(m) => reply(self, m).await,
            Call::FleetStatus(m) => reply(self, m).await,
            Call::Graph(m) => reply(self, m).await,
            Call::Timeline(m) => reply(self, m).await,
            Call::UnitGet(m) => reply(self, m).await,
            Call::UnitValidate(m) => reply(self, m).await,
            Call::UnitCommit(m) => reply(self, m).await,
            Call::UnitDelete(m) => reply(self, m).await,
            Call::UnitDraft(m) => reply(self, m).await,
            Call::UnitDiscard(m) => reply(self, m).await,
        }
    }
}
