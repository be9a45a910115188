//! An engine's background work has one owner: dropping the engine without a shutdown (as a
//! tray app or a test that lets go of it does) leaves no task running.

use std::time::{Duration, Instant};

use gitvisor_engine::{Engine, EngineOptions, Paths};

const BIN: &str = env!("CARGO_BIN_EXE_gitvisor");

#[test]
fn an_engine_dropped_without_shutdown_leaves_no_task_running() {
    // The kit's home ends what is left in it (the service the engine started keeps running for
    // a successor to adopt) when it goes.
    let home = super::home();
    home.enabled_sh_unit("web", "while :; do sleep 1; done", "");
    // A watched service: its watch is a task of the watch keeper's, which must end with it.
    home.enabled_sh_unit("dev", "while :; do sleep 1; done", "[Watch]\n");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let metrics = tokio::runtime::Handle::current().metrics();
        let before = metrics.num_alive_tasks();
        let engine = Engine::open(EngineOptions::new(Paths::under(home.path()), BIN.into()))
            .await
            .expect("the engine opens on a fresh home");
        let mut running = engine.background_tasks();
        running.sort();
        assert_eq!(
            running,
            [
                "capture sweeper",
                "crash reporter",
                "dependency watcher",
                "git watcher",
                "maintenance timer",
                "state writer",
                "timeline keeper",
                "timer keeper",
                "watch keeper"
            ]
        );
        assert!(metrics.num_alive_tasks() > before);
        let watching = Instant::now() + Duration::from_secs(30);
        while engine
            .status(&[])
            .unwrap()
            .services
            .iter()
            .find(|s| s.name == "dev")
            .unwrap()
            .watch
            .as_ref()
            .unwrap()
            .mode
            != "inotify"
        {
            assert!(Instant::now() < watching, "dev's files were never watched");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
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
}
