//! Fleet mode for real: engines in separate homes clone one bare repository and share one
//! `redis-server` on a loopback port. The singleton appends its node and fencing token to a
//! shared file under `flock` twenty times a second, so the file's order is the order of its
//! runs: two copies running at once would interleave their fences.

use std::process::Command;
use std::time::Instant;

use gitvisor_testkit::{kill_processes_in, wait_dead, wait_for, wait_until, Home, RedisServer};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

const SOLO: &str = "while :; do
  flock runs.lock sh -c 'echo \"$GITVISOR_FLEET_NODE $GITVISOR_FLEET_FENCE\" >> runs.log'
  sleep 0.05
done
";

/// Machines sharing one repository and one Redis, each a home with its engine.
struct Fleet {
    redis: RedisServer,
    /// `remote.git`, the author's clone, and `run/` (the services' working directory).
    dir: tempfile::TempDir,
    ttl: &'static str,
    nodes: Vec<(String, Home)>,
}

impl Fleet {
    /// A remote holding `solo` (a singleton, restarted always) and `everywhere` (a plain
    /// service), both enabled.
    fn new(ttl: &'static str) -> Fleet {
        let redis = RedisServer::start_tcp();
        let dir = tempfile::Builder::new().prefix("gitvisor-fleet-").tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("solo.sh"), SOLO).unwrap();
        let author = dir.path().join("author");
        git(&["init", "-q", "-b", "main", author.to_str().unwrap()]);
        let unit = |description: &str, exec: &str, extra: &str| {
            format!(
                "[Unit]\nDescription={description}\n[Service]\nExecStart={exec}\nWorkingDirectory={}\n{extra}\
                 [Install]\nWantedBy=default.target\n",
                run.display()
            )
        };
        let solo = unit(
            "one node at a time",
            &format!("/bin/sh {}/solo.sh", run.display()),
            "Singleton=yes\nRestart=always\nRestartSec=0\n",
        );
        std::fs::write(author.join("solo.service"), solo).unwrap();
        std::fs::write(author.join("everywhere.service"), unit("on every node", "/bin/sleep 1000", ""))
            .unwrap();
        git(&["-C", author.to_str().unwrap(), "add", "-A"]);
        git(&["-C", author.to_str().unwrap(), "commit", "-q", "-m", "the fleet's services"]);
        let remote = dir.path().join("remote.git");
        git(&["clone", "-q", "--bare", author.to_str().unwrap(), remote.to_str().unwrap()]);
        Fleet { redis, dir, ttl, nodes: Vec::new() }
    }

    /// Starts an engine for each name, in its own home, configured for this fleet.
    fn start(&mut self, names: &[&str]) {
        for name in names {
            let mut h = Home::new(env!("CARGO_BIN_EXE_gitvisor"));
            let config = format!(
                "[fleet]\nremote = \"{}\"\nredis = \"{}\"\nnode = \"{name}\"\nlease_ttl = \"{}\"\npull_interval = \"1s\"\n",
                self.dir.path().join("remote.git").display(),
                self.redis.tcp_url(),
                self.ttl
            );
            std::fs::write(h.path().join("config.toml"), config).unwrap();
            h.start_daemon();
            self.nodes.push((name.to_string(), h));
        }
    }

    fn home(&self, node: &str) -> &Home {
        &self.nodes.iter().find(|(n, _)| n == node).expect("a node of the fleet").1
    }

    fn home_mut(&mut self, node: &str) -> &mut Home {
        &mut self.nodes.iter_mut().find(|(n, _)| n == node).expect("a node of the fleet").1
    }

    /// The singleton's runs so far: node and fencing token of each line, in the file's order.
    fn runs(&self) -> Vec<(String, u64)> {
        let text = std::fs::read_to_string(self.dir.path().join("run/runs.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let (node, fence) = l.split_once(' ')?;
                Some((node.to_string(), fence.parse().ok()?))
            })
            .collect()
    }

    /// Waits for a line of the singleton for which `pred` holds; its node and fence.
    fn wait_run(&self, what: &str, pred: impl Fn(&(String, u64)) -> bool) -> (String, u64) {
        wait_for(what, || self.runs().into_iter().rev().find(&pred))
    }

    /// The nodes whose engine answers and says the singleton runs there.
    fn running_it(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, h)| h.try_state("solo").as_deref() == Some("running"))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// While the singleton writes `lines` more lines, every look at the nodes finds it running
    /// on one at most, and `node` is the one writing.
    fn one_runs_it(&self, node: &str, lines: usize) {
        let until = self.runs().len() + lines;
        wait_until(&format!("{lines} more runs of the singleton"), || {
            let running = self.running_it();
            assert!(running.len() <= 1, "the singleton runs on {running:?}");
            let runs = self.runs();
            assert_eq!(runs.last().map(|(n, _)| n.as_str()), Some(node), "who writes");
            runs.len() >= until
        });
    }

    /// No two copies ever ran at once: fences never go back in the file, and each fence is
    /// one node's.
    fn assert_no_overlap(&self) {
        let runs = self.runs();
        assert!(!runs.is_empty());
        for w in runs.windows(2) {
            assert!(w[0].1 <= w[1].1, "a run with fence {} after one with {}: {runs:?}", w[1].1, w[0].1);
            if w[0].1 == w[1].1 {
                assert_eq!(w[0].0, w[1].0, "one fence, two nodes: {runs:?}");
            }
        }
    }

    fn solo(&self, node: &str) -> Value {
        self.home(node).service("solo")
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Stops the engines (and their services) first, then what engines killed by a test
        // left running in the shared directory.
        self.nodes.clear();
        kill_processes_in(self.dir.path());
    }
}

fn git(args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=fleet test", "-c", "user.email=fleet@test"])
        .args(args)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn since_ms(t: Instant) -> u128 {
    t.elapsed().as_millis()
}

#[test]
fn a_singleton_runs_on_exactly_one_node_and_moves_when_its_engine_is_killed() {
    let mut f = Fleet::new("2s");
    f.start(&["a", "b", "c"]);
    let (holder, fence) = f.wait_run("a node runs the singleton", |_| true);
    f.one_runs_it(&holder, 20);
    // Every node says where it runs; the plain service runs everywhere.
    for (name, h) in &f.nodes {
        let want = if *name == holder { "here".to_string() } else { format!("on {holder}") };
        h.wait_until(&format!("{name} to say the singleton runs {want}"), || {
            h.service("solo")["fleet"] == want
        });
        h.wait_state("everywhere", "running");
        assert_eq!(h.service("everywhere")["fleet"], Value::Null);
    }
    // `fleet status` names the nodes, the holder, its lease and its fence.
    let status: Value = serde_json::from_str(&f.home("b").ok(&["fleet", "status", "--json"])).unwrap();
    let nodes: Vec<&str> =
        status["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(nodes, ["a", "b", "c"], "{status:#}");
    let solo = &status["singletons"][0];
    assert_eq!(
        (&solo["service"], &solo["holder"], &solo["fence"]),
        (&"solo".into(), &holder.clone().into(), &fence.into())
    );
    assert!(solo["expires_in_ms"].as_u64().is_some_and(|ms| ms <= 2000), "{status:#}");
    let text = f.home("c").ok(&["fleet", "status"]);
    assert!(text.lines().any(|l| l.starts_with("solo") && l.contains(&holder)), "{text}");

    // The holder's engine dies; its keeper kills the singleton before the lease can expire,
    // and another node takes over.
    let pid = f.solo(&holder)["pid"].as_u64().unwrap() as u32;
    let killed = Instant::now();
    f.home_mut(&holder).kill_daemon();
    wait_dead(pid);
    let dead_ms = since_ms(killed);
    let (next, _) = f.wait_run("another node runs the singleton", |(n, _)| *n != holder);
    eprintln!(
        "failover: the old copy dead after {dead_ms} ms, the new one running after {} ms",
        since_ms(killed)
    );
    f.one_runs_it(&next, 20);
    f.assert_no_overlap();
}

#[test]
fn redis_down_stops_the_singleton_and_nothing_else_and_it_comes_back() {
    let mut f = Fleet::new("2s");
    f.start(&["a", "b"]);
    let (holder, fence) = f.wait_run("a node runs the singleton", |_| true);
    let plain: Vec<u64> =
        f.nodes.iter().map(|(_, h)| h.wait_state("everywhere", "running")["pid"].as_u64().unwrap()).collect();
    let pid = f.solo(&holder)["pid"].as_u64().unwrap() as u32;
    f.redis.kill();
    // Its lease cannot be renewed: the holder stops it before the lease could have expired,
    // and says why.
    wait_dead(pid);
    let h = f.home(&holder);
    let s = h.wait_for("the holder to say why the singleton stopped", || {
        let s = h.service("solo");
        let why = s["fleet"].as_str().unwrap_or_default();
        (s["state"] != "running" && why.starts_with("not run here: Redis")).then_some(s)
    });
    assert_eq!(s["pid"], Value::Null, "{s:#}");
    let still: Vec<u64> =
        f.nodes.iter().map(|(_, h)| h.service("everywhere")["pid"].as_u64().unwrap()).collect();
    assert_eq!(still, plain, "plain services go on untouched");
    // Redis comes back (empty: no persistence); a node takes the lease again, with a larger
    // fence than any before.
    f.redis.restart();
    let (again, _) = f.wait_run("the singleton to run again", |(_, fe)| *fe > fence);
    f.one_runs_it(&again, 20);
    f.assert_no_overlap();
}

#[test]
fn a_paused_holder_loses_its_lease_and_stops_its_copy_when_continued() {
    let mut f = Fleet::new("2s");
    f.start(&["a", "b"]);
    let (holder, old_fence) = f.wait_run("a node runs the singleton", |_| true);
    let pid = f.solo(&holder)["pid"].as_u64().unwrap() as u32;
    let engine = Pid::from_raw(f.home(&holder).daemon_pid() as i32);
    kill(engine, Signal::SIGSTOP).unwrap();
    // The stalled engine cannot renew: its keeper kills the copy before the lease expires,
    // the other node takes over after it did.
    wait_dead(pid);
    let (other, new_fence) = f.wait_run("the other node to take over", |(n, _)| *n != holder);
    assert!(new_fence > old_fence);
    kill(engine, Signal::SIGCONT).unwrap();
    // Continued, it sees its lease gone and does not start its copy again (Restart=always).
    let h = f.home(&holder);
    h.wait_until("the continued engine to say the singleton runs elsewhere", || {
        let s = h.service("solo");
        s["fleet"] == format!("on {other}") && s["state"] != "running"
    });
    f.one_runs_it(&other, 20);
    f.assert_no_overlap();
    assert!(
        !f.runs().iter().any(|(n, fe)| *n == holder && *fe > old_fence),
        "the stalled node ran it again: {:?}",
        f.runs()
    );
}

#[test]
fn without_a_usable_fleet_singletons_do_not_run_and_the_rest_does() {
    let mut h = crate::home();
    std::fs::write(h.path().join("config.toml"), "[fleet]\nredis = \"no such scheme\"\n").unwrap();
    h.enabled_sh_unit("solo", "exec sleep 1000", "Singleton=yes");
    h.enabled_sh_unit("plain", "exec sleep 1000", "");
    h.start_daemon();
    h.wait_state("plain", "running");
    let s = h.service("solo");
    assert_ne!(s["state"], "running");
    let why = s["fleet"].as_str().unwrap_or_default();
    assert!(why.starts_with("not run: Redis: cannot use \"no such scheme\""), "{s:#}");
    // `fleet status` says why there is no fleet; so does it on a home without one.
    let out = h.run(&["fleet", "status"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fleet mode is off: Redis: cannot use \"no such scheme\""), "{err}");
    let mut plain = crate::home();
    plain.start_daemon();
    let out = plain.run(&["fleet", "status"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fleet mode is off (no [fleet] in config.toml)"), "{err}");
}
