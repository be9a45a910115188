//! What gitvisor's tests run against, written once: a real engine in a temporary home, driven
//! through the real `gitvisor` CLI, and waits that always end. For tests only: no product code
//! depends on it, and it is never published.
//!
//! - [`Home`] is the fixture: a temporary directory with `services/` and `work/`, unit writers,
//!   git helpers (the git binary, as a user would), the environment a test's processes get, the
//!   daemon, and the CLI runner. The `gitvisor` binary it runs is the caller's to name: the root
//!   package's tests have `env!("CARGO_BIN_EXE_gitvisor")`, the tray's find it beside their own
//!   executable. Dropping it kills whatever the test left running in the home.
//! - The waits ([`wait_until`], [`wait_for`], [`wait_dead`], [`wait_file`], [`wait_line`],
//!   [`wait_exit`], [`Home::wait_state`], and [`EventStream`] for the engine's events) each end at
//!   [`DEADLINE`] with a panic naming what they waited for. They poll briefly or read a stream;
//!   none sleeps a fixed time in place of knowing.
//! - [`alive`] and [`kill_processes_in`] read `/proc`.
//! - [`RedisServer`] is a real Redis on a Unix socket, for the fleet tests.
//!
//! `GITVISOR_TEST_KEEP=1` keeps each test's home (logs, reports, repository) to look at it.

mod cli;
mod daemon;
mod git;
mod home;
mod lines;
mod process;
mod redis;
mod wait;

pub use home::{Home, HomeBuilder};
pub use lines::{ChildLines, EventStream};
pub use process::{alive, kill_processes_in};
pub use redis::RedisServer;
pub use wait::{wait_dead, wait_exit, wait_file, wait_for, wait_line, wait_until, DEADLINE};
