//! The wire protocol between a gitvisor engine and its clients (the CLI, the tray app when it
//! attaches to a headless daemon).
//!
//! Newline-delimited JSON-RPC 2.0 over a Unix socket: one JSON object per line, at most
//! [`MAX_FRAME`] bytes. A client opens with `hello` (the version handshake); every other method
//! is refused until then. Streams (`logs.follow`, `events.subscribe`) answer once and then send
//! notifications on the same connection. See `docs/protocol.md`.

pub mod client;
pub mod fleet;
pub mod frame;
pub mod maintenance;
pub mod message;
pub mod methods;
pub mod name;
pub mod timers;
pub mod types;

pub use client::{Client, ClientError};
pub use fleet::*;
pub use frame::{FrameError, FrameReader, MAX_FRAME};
pub use maintenance::*;
pub use message::{ErrorCode, Notification, Request, Response, RpcError};
pub use methods::*;
pub use name::ServiceName;
pub use timers::*;
pub use types::*;

/// Bumped on any incompatible change to methods or types.
pub const PROTOCOL_VERSION: u32 = 2;
