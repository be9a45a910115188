//! JSON-RPC 2.0 envelopes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub jsonrpc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    pub method: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub params: Value,
}

impl Request {
    pub fn new(id: u64, method: &str, params: Value) -> Self {
        Request { jsonrpc: "2.0".into(), id: Some(Value::from(id)), method: method.into(), params }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub jsonrpc: String,
    pub id: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl Response {
    pub fn ok(id: Value, result: Value) -> Self {
        Response { jsonrpc: "2.0".into(), id, result: Some(result), error: None }
    }
    pub fn err(id: Value, error: RpcError) -> Self {
        Response { jsonrpc: "2.0".into(), id, result: None, error: Some(error) }
    }
}

/// A message the engine sends without a request: a log line or an event of a stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    pub jsonrpc: String,
    pub method: String,
    pub params: Value,
}

impl Notification {
    pub fn new(method: &str, params: Value) -> Self {
        Notification { jsonrpc: "2.0".into(), method: method.into(), params }
    }

    /// The notification carrying `notice`, named by its kind.
    pub fn of<N: crate::methods::Notice>(notice: &N) -> Self {
        Notification::new(N::NAME, serde_json::to_value(notice).unwrap_or(Value::Null))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// Error codes: JSON-RPC's own, then gitvisor's (positive, stable). On the wire an error
/// carries the number ([`ErrorCode::code`]); a face that shows errors to people (the window)
/// carries the name ([`ErrorCode::name`]), which is also how [`crate::OpOutcome`] names why one
/// service's operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ParseError,
    InvalidRequest,
    MethodNotFound,
    InvalidParams,
    Internal,
    HandshakeRequired,
    VersionMismatch,
    /// Never sent by the engine: a client could not reach it (not running, connection lost).
    EngineUnreachable,
    UnknownService,
    InProgress,
    Held,
    OperationFailed,
    /// The unit's file is invalid; the message says where and why.
    InvalidUnit,
    /// A unit this one requires did not start (or is on a cycle, or does not exist).
    DependencyFailed,
    /// The service itself did not do what was asked (it failed to start, exited).
    ServiceFailed,
    /// The services repository refused or failed (unknown commit, a state git refuses).
    Git,
    /// No such crash report, an id that is not one, an export target refused.
    CrashReport,
    /// The engine is shutting down.
    Stopping,
    /// A source given to `import` cannot be imported (malformed, unreadable, a name that clashes).
    Import,
}

const CODES: &[(ErrorCode, i64)] = &[
    (ErrorCode::ParseError, -32700),
    (ErrorCode::InvalidRequest, -32600),
    (ErrorCode::MethodNotFound, -32601),
    (ErrorCode::InvalidParams, -32602),
    (ErrorCode::Internal, -32603),
    (ErrorCode::HandshakeRequired, -32001),
    (ErrorCode::VersionMismatch, -32002),
    (ErrorCode::EngineUnreachable, -32003),
    (ErrorCode::UnknownService, 1),
    (ErrorCode::InProgress, 2),
    (ErrorCode::Held, 3),
    (ErrorCode::OperationFailed, 4),
    (ErrorCode::InvalidUnit, 5),
    (ErrorCode::DependencyFailed, 6),
    (ErrorCode::ServiceFailed, 7),
    (ErrorCode::Git, 8),
    (ErrorCode::CrashReport, 9),
    (ErrorCode::Stopping, 10),
    (ErrorCode::Import, 11),
];

impl ErrorCode {
    pub fn code(self) -> i64 {
        CODES.iter().find(|(c, _)| *c == self).map(|(_, n)| *n).unwrap_or(-32603)
    }

    /// The code a number stands for; unknown numbers (a newer engine's) are `OperationFailed`.
    pub fn from_code(code: i64) -> ErrorCode {
        CODES.iter().find(|(_, n)| *n == code).map(|(c, _)| *c).unwrap_or(ErrorCode::OperationFailed)
    }

    /// The stable name: `unknown_service`, `in_progress`...
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::ParseError => "parse_error",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::MethodNotFound => "method_not_found",
            ErrorCode::InvalidParams => "invalid_params",
            ErrorCode::Internal => "internal",
            ErrorCode::HandshakeRequired => "handshake_required",
            ErrorCode::VersionMismatch => "version_mismatch",
            ErrorCode::EngineUnreachable => "engine_unreachable",
            ErrorCode::UnknownService => "unknown_service",
            ErrorCode::InProgress => "in_progress",
            ErrorCode::Held => "held",
            ErrorCode::OperationFailed => "operation_failed",
            ErrorCode::InvalidUnit => "invalid_unit",
            ErrorCode::DependencyFailed => "dependency_failed",
            ErrorCode::ServiceFailed => "service_failed",
            ErrorCode::Git => "git",
            ErrorCode::CrashReport => "crash_report",
            ErrorCode::Stopping => "stopping",
            ErrorCode::Import => "import",
        }
    }

    /// A lock refused the operation: this engine runs another one on the same key, or another
    /// holder has it.
    pub fn is_busy(self) -> bool {
        matches!(self, ErrorCode::InProgress | ErrorCode::Held)
    }

    pub fn error(self, message: impl Into<String>) -> RpcError {
        RpcError { code: self.code(), message: message.into(), data: None }
    }
}

impl RpcError {
    pub fn kind(&self) -> ErrorCode {
        ErrorCode::from_code(self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_one_to_one() {
        let mut numbers = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for (c, n) in CODES {
            assert!(numbers.insert(*n), "{n} twice");
            assert!(names.insert(c.name()), "{} twice", c.name());
            assert_eq!(ErrorCode::from_code(c.code()), *c);
            // The serde name is the stable name.
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::Value::from(c.name()));
        }
        assert_eq!(ErrorCode::from_code(999), ErrorCode::OperationFailed);
    }
}
