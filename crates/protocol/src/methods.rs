//! The method table: one type per method, tying the method's name to its parameters and its
//! reply. A caller writes `client.call(Status::all())` and gets a [`StatusReply`]; the engine
//! parses a request into one [`Call`] and dispatches it with one exhaustive `match`. Method and
//! notification names are spelled here and nowhere else.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::message::{ErrorCode, RpcError};
use crate::name::ServiceName;
use crate::types::*;

/// A request of the protocol: its parameters are the value itself.
pub trait Method: Serialize + DeserializeOwned + Send + 'static {
    const NAME: &'static str;
    type Reply: Serialize + DeserializeOwned + Send + 'static;
}

/// A message the engine sends without being asked, on a stream.
pub trait Notice: Serialize + DeserializeOwned + Send + 'static {
    const NAME: &'static str;
}

macro_rules! method {
    ($ty:ident, $name:literal, $reply:ty) => {
        impl Method for $ty {
            const NAME: &'static str = $name;
            type Reply = $reply;
        }
    };
}

/// Parameters of a method that takes none: `{}` or absent.
macro_rules! no_params {
    ($($(#[$doc:meta])* $ty:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $ty {}
    )*};
}

/// The status of these services; of every service when `names` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub names: Vec<ServiceName>,
}

impl Status {
    pub fn all() -> Status {
        Status::default()
    }
}

/// The services' recent CPU and memory samples (every service's when `names` is empty); takes
/// a sample now when the last is over a second old.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(default)]
    pub names: Vec<ServiceName>,
}

/// Starts the services and what they require, in dependency order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    pub names: Vec<ServiceName>,
    /// Answer once they are ready (`ReadyCheck=`), not only started.
    #[serde(default)]
    pub wait: bool,
}

/// Stops the services, after what requires them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stop {
    pub names: Vec<ServiceName>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restart {
    pub names: Vec<ServiceName>,
}

/// Asks running services to reload their configuration: `ExecReload=`, or SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reload {
    pub names: Vec<ServiceName>,
}

/// The last `lines` lines of the services' output, interleaved by time (every service when
/// `names` is empty); with `follow`, a [`ServiceLogLine`] per new line on the same connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logs {
    #[serde(default)]
    pub names: Vec<ServiceName>,
    pub lines: usize,
    #[serde(default)]
    pub follow: bool,
}

no_params! {
    /// Every event from now on, as [`EventNotification`]s on the same connection.
    EventsSubscribe,
    /// The engine's effective settings.
    Config,
    /// Applies the branch's commit now (`sync`).
    SyncNow,
    /// The timer units with their next and last elapse (`gitvisor timers`).
    Timers,
}

/// Crash reports (and manual captures), newest first; one service's when `service` is given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashList {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceName>,
}

/// The state of git maintenance (`gitvisor maintenance status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceStatus {}

/// Runs git maintenance now on every repository where the safety checks allow it (all but the
/// minimum interval); answers at once, the runs go on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceRunNow {}

/// The fleet as this node sees it (`gitvisor fleet status`); refused outside fleet mode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetStatus {}

/// Enables services: a commit adding `[Install] WantedBy=default.target` to each unit that
/// lacks one, applied at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enable {
    pub names: Vec<ServiceName>,
}

/// Disables services: a commit removing each unit's `[Install] WantedBy=`, applied at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disable {
    pub names: Vec<ServiceName>,
}

/// Turns Procfiles, process-compose files, PM2 ecosystem files and systemd units into unit
/// files in one commit, applied at once; with `dry_run`, only says what it would write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    /// Absolute paths of the source files (the engine reads them).
    pub paths: Vec<String>,
    #[serde(default)]
    pub dry_run: bool,
    /// Put before every unit name (`app-`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub limit: usize,
}

/// A new commit whose tree is `commit`'s, applied at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollback {
    pub commit: String,
}

/// What a rollback to `commit` would change in the unit files (a unified diff).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    pub commit: String,
}

/// What `commit` changed in the unit files against its first parent (a unified diff).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitDiff {
    pub commit: String,
}

/// `id` in the crash methods: a report's id, a unique prefix of one, or `latest` (the newest
/// crash report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashShow {
    pub id: String,
}

/// Copies a report to `path`: absolute, never overwritten if it exists (a directory takes the
/// report's file name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashExport {
    pub id: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashExportReply {
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashRm {
    pub id: Option<String>,
    #[serde(default)]
    pub all: bool,
}

/// Captures a service's working directory now, written as a report of kind `capture`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    pub name: ServiceName,
}

/// A unit file to edit: `name` is `web`, `web.service`, a template `web@` or a timer
/// `nightly.timer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitGet {
    pub name: String,
}

/// Checks a unit's text as `gitvisor validate` does, saving nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitValidate {
    pub name: String,
    pub text: String,
}

/// Commits a unit's text (a new unit or a change; refused, with nothing written, while it has
/// errors) and applies it at once. Its draft, if any, goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitCommit {
    pub name: String,
    pub text: String,
    /// The commit message; `Edit web.service` (or `Add …`) when absent or blank.
    #[serde(default)]
    pub message: Option<String>,
}

/// Removes a unit in a commit, applied at once (the service stops).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitDelete {
    pub name: String,
    #[serde(default)]
    pub message: Option<String>,
}

/// Keeps the text of an edit not committed yet (in the home), or forgets it (`text` absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitDraft {
    pub name: String,
    #[serde(default)]
    pub text: Option<String>,
}

/// Puts a unit file of the working tree back as committed (its uncommitted edits are lost;
/// an uncommitted new file is removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitDiscard {
    pub name: String,
}

/// What happened to the services (every one's when `names` is empty) since `since_ms` (the
/// last day at most): starts, exits, restarts after a change, and the syncs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    #[serde(default)]
    pub names: Vec<ServiceName>,
    #[serde(default)]
    pub since_ms: u64,
}

no_params!(
    /// The services' dependency graph with each one's state, and the critical chain of the
    /// last start.
    Graph
);

/// The answer to [`EventsSubscribe`]: nothing but the stream that follows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribed {}

method!(Hello, "hello", Welcome);
method!(Status, "status", StatusReply);
method!(Start, "start", OpReply);
method!(Stop, "stop", OpReply);
method!(Restart, "restart", OpReply);
method!(Reload, "reload", OpReply);
method!(Logs, "logs", LogsReply);
method!(EventsSubscribe, "events.subscribe", Subscribed);
method!(Config, "config", Value);
method!(SyncNow, "sync", SyncReport);
method!(History, "history", HistoryReply);
method!(Rollback, "rollback", RollbackReply);
method!(Diff, "diff", String);
method!(CommitDiff, "commit.diff", String);
method!(CrashList, "crash.list", CrashListReply);
method!(Enable, "enable", EnableReply);
method!(Disable, "disable", EnableReply);
method!(Import, "import", ImportReply);
method!(MaintenanceStatus, "maintenance.status", crate::MaintenanceStatusReply);
method!(MaintenanceRunNow, "maintenance.run", crate::MaintenanceRunReply);
method!(FleetStatus, "fleet.status", crate::FleetStatusReply);
method!(CrashShow, "crash.show", CrashShowReply);
method!(CrashExport, "crash.export", CrashExportReply);
method!(CrashRm, "crash.rm", CrashRmReply);
method!(Capture, "capture", CaptureReply);
method!(Timers, "timers", crate::TimersReply);
method!(Metrics, "metrics", MetricsReply);
method!(Graph, "graph", GraphReply);
method!(Timeline, "timeline", TimelineReply);
method!(UnitGet, "unit.get", UnitText);
method!(UnitValidate, "unit.validate", UnitCheck);
method!(UnitCommit, "unit.commit", UnitCommitReply);
method!(UnitDelete, "unit.delete", UnitCommitReply);
method!(UnitDraft, "unit.draft", UnitText);
method!(UnitDiscard, "unit.discard", UnitText);

impl Notice for ServiceLogLine {
    const NAME: &'static str = "log";
}

impl Notice for Event {
    const NAME: &'static str = "event";
}

/// The parameters of `method`, or an error naming the method and what is wrong.
fn params_of<M: Method>(params: Value) -> Result<M, RpcError> {
    // JSON-RPC lets a method without parameters omit them.
    let params = if params.is_null() { Value::Object(Default::default()) } else { params };
    serde_json::from_value(params)
        .map_err(|e| ErrorCode::InvalidParams.error(format!("{}: invalid params: {e}", M::NAME)))
}

macro_rules! calls {
    ($($ty:ident),* $(,)?) => {
        /// One request of the protocol, typed: what the engine dispatches.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Call {
            $($ty($ty),)*
        }

        impl Call {
            /// The typed request for `method` with `params`.
            pub fn parse(method: &str, params: Value) -> Result<Call, RpcError> {
                $(
                    if method == <$ty as Method>::NAME {
                        return params_of::<$ty>(params).map(Call::$ty);
                    }
                )*
                Err(ErrorCode::MethodNotFound.error(format!("no method named {method:?}")))
            }

            pub fn name(&self) -> &'static str {
                match self {
                    $(Call::$ty(_) => <$ty as Method>::NAME,)*
                }
            }

            /// The parameters as they go on the wire.
            pub fn params(&self) -> Value {
                match self {
                    $(Call::$ty(m) => serde_json::to_value(m).unwrap_or(Value::Null),)*
                }
            }
        }

        $(
            impl From<$ty> for Call {
                fn from(m: $ty) -> Call {
                    Call::$ty(m)
                }
            }
        )*

        /// Every method's name, in the table's order.
        pub const METHOD_NAMES: &[&str] = &[$(<$ty as Method>::NAME),*];
    };
}

calls!(
    Hello,
    Status,
    Start,
    Stop,
    Restart,
    Reload,
    Logs,
    EventsSubscribe,
    Config,
    SyncNow,
    History,
    Rollback,
    Diff,
    CommitDiff,
    CrashList,
    CrashShow,
    CrashExport,
    CrashRm,
    Capture,
    Enable,
    Disable,
    Import,
    MaintenanceStatus,
    MaintenanceRunNow,
    FleetStatus,
    Timers,
    Metrics,
    Graph,
    Timeline,
    UnitGet,
    UnitValidate,
    UnitCommit,
    UnitDelete,
    UnitDraft,
    UnitDiscard,
);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn status_without_names_means_every_service() {
        for params in [Value::Null, json!({})] {
            assert_eq!(Call::parse("status", params.clone()), Ok(Call::Status(Status::all())), "{params}");
        }
        let one = Call::parse("status", json!({"names": ["web.service"]})).unwrap();
        assert_eq!(one, Call::Status(Status { names: vec![ServiceName::new("web")] }));
        let bad = Call::parse("status", json!({"names": "web"})).expect_err("names must be a list");
        assert_eq!(bad.code, ErrorCode::InvalidParams.code());
        assert!(bad.message.starts_with("status: invalid params"), "{}", bad.message);
    }

    #[test]
    fn unknown_methods_and_bad_params_are_named() {
        let e = Call::parse("explode", Value::Null).expect_err("no such method");
        assert_eq!(e.code, ErrorCode::MethodNotFound.code());
        assert!(e.message.contains("explode"), "{}", e.message);
        let e = Call::parse("stop", json!({})).expect_err("stop needs names");
        assert!(e.message.contains("names"), "{}", e.message);
    }

    #[test]
    fn every_method_parses_back_to_its_own_name() {
        let calls: Vec<Call> = vec![
            Hello { protocol: 1, client: "t".into() }.into(),
            Status::all().into(),
            Start { names: vec![ServiceName::new("a")], wait: false }.into(),
            Stop { names: vec![ServiceName::new("a")] }.into(),
            Restart { names: vec![ServiceName::new("a")] }.into(),
            Reload { names: vec![ServiceName::new("a")] }.into(),
            Logs { names: vec![ServiceName::new("a")], lines: 3, follow: true }.into(),
            EventsSubscribe {}.into(),
            Config {}.into(),
            SyncNow {}.into(),
            History { limit: 5 }.into(),
            Rollback { commit: "abc".into() }.into(),
            Diff { commit: "abc".into() }.into(),
            CommitDiff { commit: "abc".into() }.into(),
            CrashList { service: None }.into(),
            CrashShow { id: "x".into() }.into(),
            CrashExport { id: "x".into(), path: "/tmp/x".into() }.into(),
            CrashRm { id: None, all: true }.into(),
            Capture { name: ServiceName::new("a") }.into(),
            Enable { names: vec![ServiceName::new("a")] }.into(),
            Disable { names: vec![ServiceName::new("a")] }.into(),
            Import { paths: vec!["/srv/Procfile".into()], dry_run: true, prefix: None }.into(),
            MaintenanceStatus {}.into(),
            MaintenanceRunNow {}.into(),
            FleetStatus {}.into(),
            Timers {}.into(),
            Metrics { names: vec![ServiceName::new("a")] }.into(),
            Graph {}.into(),
            Timeline { names: vec![ServiceName::new("a")], since_ms: 5 }.into(),
            UnitGet { name: "a".into() }.into(),
            UnitValidate { name: "a".into(), text: "[Service]\n".into() }.into(),
            UnitCommit { name: "a".into(), text: "[Service]\n".into(), message: Some("m".into()) }.into(),
            UnitDelete { name: "a".into(), message: None }.into(),
            UnitDraft { name: "a".into(), text: None }.into(),
            UnitDiscard { name: "a".into() }.into(),
        ];
        assert_eq!(calls.len(), METHOD_NAMES.len(), "a method is missing from this test");
        for call in calls {
            assert_eq!(Call::parse(call.name(), call.params()).as_ref(), Ok(&call));
        }
    }

    #[test]
    fn methods_without_params_accept_none() {
        for name in ["events.subscribe", "config", "sync", "crash.list"] {
            assert!(Call::parse(name, Value::Null).is_ok(), "{name}");
        }
    }
}
