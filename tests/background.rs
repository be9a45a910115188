//! An engine's background work has one owner: dropping the engine without a shutdown (as a
//! tray app or a test that lets go of it does) leaves no task running.

use std::time::{Duration, Instant};

use gitvisor_engine::{Engine, EngineOptions, Paths};

const BIN: &str = env!("CARGO_BIN_EXE_gitvisor");

#[test]
fn an_engine_dropped_without_shutdown_leaves_no_task_running() {
    let home = tempfile::Builder::new().prefix("gitvisor-test-").tempdir().unwrap();
    let services = home.path().join("services");
    let work = home.path().join("work");
    std::fs::create_dir_all(&services).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        services.join("web.service"),
        format!(
            "[Service]\nExecStart=/bin/sh -c 'while :; do sleep 1; done'\nWorkingDirectory={}\n[Install]\nWantedBy=default.target\n",
            work.display()
        ),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let metrics = tokio::runtime::Handle::current().metrics();
        let before = metrics.num_alive_tasks();
        let engine = Engine::open(EngineOptions::new(Paths::under(home.path()), BIN.into()))
            .await
            .expect("the engine opens on a fresh home");
        let mut running = engine.background_tasks();
        running.sort();
        assert_eq!(running, ["capture sweeper", "crash reporter", "git watcher", "state writer"]);
        assert!(metrics.num_alive_tasks() > before);
        drop(engine);
        // Every task ends (aborted or finished) without anyone stopping it by hand.
        let deadline = Instant::now() + Duration::from_secs(30);
        while metrics.num_alive_tasks() != before {
            assert!(
                Instant::now() < deadline,
                "{} tasks still alive after the engine was dropped",
                metrics.num_alive_tasks() - before
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    // The service the engine started keeps running for a successor to adopt; end it here.
    kill_processes_in(home.path());
}

fn kill_processes_in(home: &std::path::Path) {
    let needle = home.to_string_lossy().into_owned();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) || cwd.starts_with(home) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}
