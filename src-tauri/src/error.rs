//! The one error a window command answers with: `{ code, message }`. `code` is the engine's
//! stable error name (`unknown_service`, `in_progress`, `service_failed`...; see
//! `gitvisor_protocol::ErrorCode::name`), or `app` for a failure of the app itself (a file it
//! keeps, start at login). The window shows `message` and decides how by `code`.

use gitvisor_engine::rpc::CallError;
use gitvisor_protocol::{ClientError, ErrorCode};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub code: String,
    pub message: String,
}

impl CommandError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> CommandError {
        CommandError { code: code.name().to_string(), message: message.into() }
    }

    /// A failure of the app itself, not of the engine.
    pub fn app(message: impl Into<String>) -> CommandError {
        CommandError { code: "app".into(), message: message.into() }
    }
}

impl From<CallError> for CommandError {
    fn from(e: CallError) -> CommandError {
        CommandError::new(e.code(), e.to_string())
    }
}

impl From<ClientError> for CommandError {
    fn from(e: ClientError) -> CommandError {
        CommandError::new(e.code(), e.message())
    }
}

#[cfg(test)]
mod tests {
    use gitvisor_engine::EngineError;

    use super::*;

    #[test]
    fn the_engine_s_code_reaches_the_window_by_name() {
        let e = CommandError::from(CallError::Engine(EngineError::UnknownService("web".into())));
        assert_eq!(
            e,
            CommandError { code: "unknown_service".into(), message: "no service named web".into() }
        );
        let json = serde_json::to_value(CommandError::app("cannot save")).unwrap();
        assert_eq!(json, serde_json::json!({"code": "app", "message": "cannot save"}));
    }
}
