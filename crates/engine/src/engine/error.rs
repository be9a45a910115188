//! What an engine operation can fail with: one variant per kind of failure, each carrying what
//! failed, each mapped to its own protocol code, so no face ever classifies an error by its text.

use gitvisor_protocol::{ErrorCode, RpcError};
use gitvisor_state::LockError;

use crate::crash::CrashError;
use crate::git::GitError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no service named {0}")]
    UnknownService(String),
    /// The operation's lock is taken (in progress here, or held by another holder).
    #[error("{0}")]
    Lock(#[from] LockError),
    /// A unit cannot be used: a template instance whose file is invalid.
    #[error("{0}")]
    InvalidUnit(String),
    #[error("{0}")]
    Git(#[from] GitError),
    #[error("{0}")]
    Crash(#[from] CrashError),
    /// The request names something the operation cannot take.
    #[error("{0}")]
    InvalidParams(String),
    #[error("the engine is stopping")]
    Stopping,
    /// A source given to `import` cannot be imported, or would replace a unit.
    #[error("{0}")]
    Import(#[from] gitvisor_import::ImportError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

impl EngineError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> EngineError {
        EngineError::Io { context: context.into(), source }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::UnknownService(_) => ErrorCode::UnknownService,
            EngineError::Lock(LockError::InProgress { .. }) => ErrorCode::InProgress,
            EngineError::Lock(LockError::Held { .. }) => ErrorCode::Held,
            EngineError::Lock(LockError::Backend(_) | LockError::Lost { .. }) => ErrorCode::OperationFailed,
            EngineError::InvalidUnit(_) => ErrorCode::InvalidUnit,
            EngineError::Git(_) => ErrorCode::Git,
            EngineError::Crash(_) => ErrorCode::CrashReport,
            EngineError::InvalidParams(_) => ErrorCode::InvalidParams,
            EngineError::Stopping => ErrorCode::Stopping,
            EngineError::Import(_) => ErrorCode::Import,
            EngineError::Io { .. } => ErrorCode::OperationFailed,
        }
    }
}

impl From<EngineError> for RpcError {
    fn from(e: EngineError) -> RpcError {
        e.code().error(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_own_code() {
        let cases = [
            (EngineError::UnknownService("web".into()), ErrorCode::UnknownService, "no service named web"),
            (
                LockError::InProgress { key: "web".into(), op: "stop".into() }.into(),
                ErrorCode::InProgress,
                "stop in progress on web",
            ),
            (
                LockError::Held { key: "sync".into(), holder: "pid 7".into() }.into(),
                ErrorCode::Held,
                "sync is locked by pid 7",
            ),
            (EngineError::Stopping, ErrorCode::Stopping, "the engine is stopping"),
            (
                EngineError::InvalidParams("name a report id".into()),
                ErrorCode::InvalidParams,
                "name a report id",
            ),
        ];
        for (e, code, text) in cases {
            let rpc = RpcError::from(e);
            assert_eq!(rpc.kind(), code);
            assert_eq!(rpc.message, text);
        }
    }
}
