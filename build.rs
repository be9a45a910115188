// Tests that need root (dropping privileges, acting as another uid, mounting a tmpfs) are
// ignored, with the reason in the test summary, when the suite runs as another user; under CI
// (CI=true) they always run, so a missing precondition there is a failure, never a silent pass.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(gitvisor_test_root)");
    println!("cargo::rerun-if-env-changed=CI");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if ci || effective_uid() == Some(0) {
        println!("cargo::rustc-cfg=gitvisor_test_root");
    }
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}
