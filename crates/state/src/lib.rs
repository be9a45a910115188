//! gitvisor's persisted state.

mod atomic;
mod error_context;

pub use atomic::write_atomic;
