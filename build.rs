//! Two things. Tests that need root (dropping privileges, acting as another uid, mounting a
//! tmpfs) are ignored, with the reason in the test summary, when the suite runs as another user;
//! under CI (CI=true) they always run, so a missing precondition there is a failure, never a
//! silent pass.
//!
//! And release builds place the functions a running daemon (and its log keeper) executes together
//! at the start of the code, in the order `scripts/layout` recorded in `layout/*.order`. The
//! kernel maps executable code 64 KiB around every page a process touches, so scattered hot
//! functions keep far more of the executable resident than they need (docs/benchmarks.md,
//! "Code layout"). Names the linker does not find are skipped: a stale file costs memory, never
//! correctness. The names carry hashes of each crate's features, and cargo unifies features
//! over the packages of one build: the scripts build `-p gitvisor` on its own (as
//! `scripts/layout` does), never in one invocation with the tray app.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(gitvisor_test_root)");
    println!("cargo::rerun-if-env-changed=CI");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if ci || effective_uid() == Some(0) {
        println!("cargo::rustc-cfg=gitvisor_test_root");
    }
    symbol_order();
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn symbol_order() {
    let supported = ordering_supported();
    for bin in ["gitvisor", "gitvisor-keeper"] {
        let order = Path::new("layout").join(format!("{bin}.order"));
        println!("cargo::rerun-if-changed={}", order.display());
        if supported && order.is_file() {
            let abs = std::fs::canonicalize(&order).expect("an existing file has a canonical path");
            println!("cargo::rustc-link-arg-bin={bin}=-Wl,--symbol-ordering-file={}", abs.display());
            println!("cargo::rustc-link-arg-bin={bin}=-Wl,--no-warn-symbol-ordering");
        }
    }
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
}

/// Only for release builds linked by rustc's own lld, the default for x86_64 Linux (glibc) since
/// Rust 1.90: the GNU linker has no `--symbol-ordering-file`, and a build that picks its own
/// linker (`-C linker=`, `-C link-arg=-fuse-ld=`, `linker-flavor`) is left as it is.
fn ordering_supported() -> bool {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("PROFILE") != "release"
        || var("CARGO_CFG_TARGET_ARCH") != "x86_64"
        || var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
    {
        return false;
    }
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    if flags.contains("linker") || flags.contains("fuse-ld") || flags.contains("link-self-contained") {
        return false;
    }
    let target = var("TARGET").to_uppercase().replace('-', "_");
    if std::env::var_os(format!("CARGO_TARGET_{target}_LINKER")).is_some() {
        return false;
    }
    rustc_minor().is_some_and(|minor| minor >= 90)
}

/// The minor version of the compiler building this crate (`rustc 1.95.0 (…)` → 95).
fn rustc_minor() -> Option<u32> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    (parts.next()? == "1").then_some(())?;
    parts.next()?.parse().ok()
}
