//! gitvisor's persisted state.

mod atomic;
mod error_context;
mod json_file;

pub use atomic::write_atomic;
pub use json_file::{load_or_default, save, Loaded};
