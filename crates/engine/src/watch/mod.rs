//! `[Watch]`: restarting a service when files under its working directory change. The rules
//! (which paths count, which directories to watch) are pure (`rules.rs`); one task per watched
//! service holds its watches and debounces its changes (`tree.rs`); the engine's watch keeper
//! decides which services are watched and restarts them (`engine/watches.rs`).

pub mod rules;
pub mod tree;

/// How a service's files are watched.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mode {
    /// Being set up.
    #[default]
    Starting,
    Inotify,
    /// inotify could not be had: the directories are polled (why).
    Polling(String),
    /// Nothing is watched (why).
    Failed(String),
}

/// A burst of changes that restarts a service (the protocol's type: events and status show it).
pub use gitvisor_protocol::FileChange as Change;

/// What status shows of a service's watch.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub mode: Mode,
    /// Directories watched.
    pub directories: usize,
    pub last_change: Option<Change>,
}
