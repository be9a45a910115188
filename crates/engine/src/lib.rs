//! The gitvisor engine.
//!
//! Theory of operation: units are loaded from the services directory (`units`), ordered by the
//! dependency graph (`gitvisor-graph`), and each service is driven by its own task
//! (`supervisor::task`) around a pure state machine (`supervisor::machine`). A service's output
//! goes through pipes held by the log keeper process (`logs::keeper`), so services and their
//! logs survive the engine; a new engine adopts live processes from `state.json` (`store`) by
//! pid and start time. Everything that happens is published on the event bus (`events`).
//! Lifecycle operations take the service's lock (`gitvisor-state`'s `Locks`), so they never
//! overlap. The socket server (`server`) and the daemon (`daemon`) are thin faces over the
//! [`Engine`] API; `rpc` is its method table. Work that outlives an operation (the state writer,
//! the crash reporter, the git watcher...) has one owner (`background`).

pub mod background;
pub mod crash;
pub mod daemon;
pub mod engine;
pub mod events;
pub mod fleet;
pub mod git;
pub mod logs;
pub mod metrics;
pub mod ordered;
pub mod paths;
pub mod ports;
pub mod rpc;
pub mod server;
pub mod settings;
pub mod store;
pub mod supervisor;
pub mod time;
pub mod timeline;
pub mod unit_files;
pub mod units;
pub mod watch;

pub use engine::{Engine, EngineError, EngineOptions};
pub use paths::Paths;
pub use settings::Settings;
