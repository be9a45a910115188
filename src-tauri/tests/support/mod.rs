//! What the tray app's tests run against: a real home with real services and the real `gitvisor`
//! CLI (`gitvisor-testkit`'s `Home`, with the user's directories inside it), the app binary, and
//! for the end-to-end tests a virtual display (Xvfb), a private D-Bus session bus, a minimal
//! StatusNotifierWatcher (where the app's tray registers) and tauri-driver.
#![allow(dead_code)]

pub mod desktop;
pub mod tray_bus;
pub mod xwindows;

use std::path::{Path, PathBuf};

use gitvisor_testkit::Home;

pub const TRAY_BIN: &str = env!("CARGO_BIN_EXE_gitvisor-tray");

/// The cargo target profile directory this test runs from (`target/debug`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_path_buf()
}

/// The `gitvisor` CLI beside this test: the workspace's test build builds it (`-p
/// gitvisor-tray` alone does not; the home's CLI runner says so when it is missing).
pub fn cli_bin() -> PathBuf {
    profile_dir().join("gitvisor")
}

/// Where the end-to-end tests keep their screenshots (test artifacts, not committed).
pub fn artifacts_dir() -> PathBuf {
    let d = profile_dir().parent().expect("target").join("e2e-artifacts");
    std::fs::create_dir_all(&d).expect("artifacts dir");
    d
}

/// A home for a tray test: the `gitvisor` CLI built beside it, and the user's directories
/// inside the home (the app's autostart entry and settings stay there).
pub fn home() -> Home {
    Home::builder(cli_bin()).prefix("gitvisor-tray-test-").isolate_user_dirs().build()
}
