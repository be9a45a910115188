//! The `gitvisor` binary's integration tests: a real daemon in a temporary home, driven through
//! the real CLI (`gitvisor-testkit`). One test binary with a module per area, so the suite links
//! once.

mod abuse;
mod adoption;
mod background;
mod chaos;
mod cli;
mod crash_reports;
mod daemon;
mod dependencies;
mod engine_restart;
mod fleet;
mod floods;
mod git_sync;
mod health;
mod import;
mod lifecycle;
mod limits;
mod logs;
mod maintenance;
mod new_user;
mod ports;
mod readiness;
mod service_types;
mod timeline;
mod timers;
mod unit_edit;
mod watch;

use gitvisor_testkit::Home;

/// Fails a test that needs root when it runs as another user (under CI, where `build.rs` does
/// not let such tests be ignored).
fn need_root(what: &str) {
    assert_eq!(unsafe { libc::geteuid() }, 0, "{what} needs root: run the suite as root");
}

/// A fresh home driven by this package's `gitvisor` binary.
fn home() -> Home {
    Home::new(env!("CARGO_BIN_EXE_gitvisor"))
}
