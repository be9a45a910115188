//! gitvisor's log keeper: a small process, one per home, that holds the read ends of every
//! service's stdout and stderr pipes and writes each line, timestamped, into `logs/NAME.log`
//! (see [`keeper`] for why it is a process of its own).
//!
//! This crate is the keeper and what the engine shares with it: the wire format ([`wire`]) over
//! SOCK_SEQPACKET sockets with descriptor passing ([`seqpacket`]), the rotating files ([`file`])
//! and the format of their lines ([`lines`]). It knows nothing of units or the engine, so its
//! executable (`gitvisor-keeper`) maps only the code it runs.

pub mod file;
pub mod keeper;
pub mod lines;
pub mod seqpacket;
pub mod time;
pub mod wire;

pub use keeper::{run_if_requested, KEEPER_ARG, LISTEN_FD};
