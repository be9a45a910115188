//! Messages between the engine and the log keeper, one JSON object per packet.

use serde::{Deserialize, Serialize};

use gitvisor_protocol::LogLine;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ToKeeper {
    /// Carries two descriptors: the read ends of the service's stdout and stderr pipes.
    Attach {
        service: String,
        pid: u32,
        start_time: u64,
        max_file_size: u64,
        max_files: u32,
    },
    /// A line the engine writes into a service's log (start, exit, stop...).
    Note {
        service: String,
        text: String,
        max_file_size: u64,
        max_files: u32,
        /// The process it is about.
        #[serde(default)]
        pid: Option<u32>,
        /// It tells that process's exit: the last note about it.
        #[serde(default)]
        exit: bool,
    },
    /// The engine is going away cleanly: exit once the last pipe closes.
    Goodbye,
    /// A fleet singleton's dead-man switch: unless renewed (a later `Leash`) or lifted
    /// (`Unleash`), the keeper SIGKILLs the process group `pgid` at `until_ms` (Unix ms), so
    /// a singleton never outlives its lease even when its engine was killed.
    Leash {
        service: String,
        pgid: u32,
        until_ms: u64,
    },
    Unleash {
        service: String,
    },
    /// Several messages in one packet, handled in order, answered in one packet (a restart's
    /// exit note, start note and new pipes: one wake-up of each side instead of three). The
    /// descriptors of its `Attach` messages come in their order. Sent only to a keeper whose
    /// greeting said it takes them (`Streams { batches: true }`).
    Batch {
        msgs: Vec<ToKeeper>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum FromKeeper {
    /// Sent on connect: the pipes the keeper holds, so a new engine knows what still runs;
    /// `batches`: it takes `ToKeeper::Batch` (a keeper of an older version, left running
    /// across an upgrade, does not).
    Streams {
        streams: Vec<StreamInfo>,
        #[serde(default)]
        batches: bool,
    },
    Lines {
        service: String,
        lines: Vec<LogLine>,
        #[serde(default)]
        origin: Origin,
    },
    /// Lines the engine missed because it did not read fast enough (they are in the file).
    Dropped { service: String, count: u64 },
    /// Both pipes of this process reached their end: all its output has been forwarded. Told
    /// once the note of its exit has come too (the engine waits for both), so that a restart's
    /// answer is one packet.
    Closed { service: String, pid: u32 },
    /// The answer to a `ToKeeper::Batch`: its messages in order.
    Batch { msgs: Vec<FromKeeper> },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StreamInfo {
    pub service: String,
    pub pid: u32,
    pub start_time: u64,
}

/// Where forwarded lines come from: a crash report takes the lines of the process that crashed
/// and the engine's notes up to its exit, and nothing that came later.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// Not known: read back from the file, a marker, or a keeper that does not say.
    #[default]
    Unknown,
    /// The output of this process.
    Output { pid: u32 },
    /// A note of the engine's, about this process (`None`: about the service); `exit`: the note
    /// of its exit.
    Note { pid: Option<u32>, exit: bool },
}
