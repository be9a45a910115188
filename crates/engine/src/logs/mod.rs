//! Service output: the engine's side of the log keeper process (the keeper itself, its wire
//! format and its files are the `gitvisor-keeper` crate), in-memory tails and followers.

pub mod follow;
pub mod link;
mod program;
pub mod tail;

pub use follow::LogFollow;
pub use gitvisor_keeper::{file, lines, seqpacket, wire};
pub use link::LogLink;
pub use program::keeper_program;
