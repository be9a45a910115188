//! Service output: the log keeper process, its wire format, rotating files, in-memory tails.

pub mod file;
pub mod follow;
pub mod keeper;
pub mod link;
pub mod seqpacket;
pub mod tail;
pub mod wire;

pub use follow::LogFollow;
pub use link::LogLink;
