//! The CLI's own behaviour: offline commands, exit statuses, errors.

use gitvisor_testkit::EventStream;

use crate::home;

#[test]
fn without_a_daemon_commands_fail_with_one_clear_line() {
    let h = home();
    let o = h.run(&["status"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("gitvisor: no gitvisor engine is running for "), "{err}");
}

#[test]
fn bad_usage_exits_2() {
    let h = home();
    assert_eq!(h.run(&["start"]).status.code(), Some(2));
    assert_eq!(h.run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(h.run(&["logs", "x", "-n", "many"]).status.code(), Some(2));
}

#[test]
fn validate_reports_every_error_with_file_and_line() {
    let h = home();
    h.unit("good", "[Unit]\nDescription=fine\n[Service]\nExecStart=/bin/true\nRestart=always\n");
    h.unit("bad", "[Service]\nExecStart=/bin/true\nRestartSec=soon\nRestart=sometimes\nFoo=bar\n");
    let o = h.run(&["validate"]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    let services = h.services();
    let bad = services.join("bad.service");
    assert!(out.contains(&format!("{}:3: RestartSec:", bad.display())), "{out}");
    assert!(out.contains(&format!("{}:4: Restart:", bad.display())), "{out}");
    assert!(out.contains(&format!("{}:5: Foo:", bad.display())), "unknown keys warn: {out}");
    assert!(out.contains("2 unit files checked: 2 errors, 1 warning"), "{out}");
    let o = h.run(&["validate", services.join("good.service").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    let o = h.run(&["validate", "/nonexistent.service"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn invalid_units_are_shown_in_status_and_the_rest_run() {
    let mut h = home();
    h.unit("broken", "[Service]\nRestart=always\n");
    h.sh_unit("fine", "exec sleep 1000", "[Install]\nWantedBy=default.target");
    h.unit("bad name!", "[Service]\nExecStart=/bin/true\n");
    h.start_daemon();
    h.wait_state("fine", "running");
    let s = h.status();
    let invalid = s["invalid"].to_string();
    assert!(invalid.contains("broken.service") && invalid.contains("ExecStart"), "{invalid}");
    assert!(invalid.contains("bad name!.service"), "{invalid}");
    let table = h.ok(&["status"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("invalid: broken.service"), "{table}");
}

#[test]
fn config_prints_effective_settings_and_warns_about_bad_ones() {
    let h = home();
    std::fs::write(h.path().join("config.toml"), "[logs]\nmax_files = 3\nmax_file_size = \"lots\"\n")
        .unwrap();
    let o = h.run(&["config"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(out.contains("max_files = 3"), "{out}");
    assert!(out.contains("max_file_size = 10485760"), "{out}");
    assert!(err.contains("logs.max_file_size: invalid size \"lots\""), "{err}");
}

#[test]
fn status_json_has_the_documented_fields() {
    let mut h = home();
    h.sh_unit("svc", "exec sleep 1000", "");
    h.start_daemon();
    let s = h.service("svc");
    for key in ["name", "state", "pid", "restarts", "health", "enabled", "commit", "error"] {
        assert!(s.get(key).is_some(), "missing {key} in {s:#}");
    }
}

#[test]
fn events_stream_state_changes() {
    let mut h = home();
    h.sh_unit("evt", "exec sleep 1000", "");
    h.start_daemon();
    let mut events = EventStream::open(&h);
    // The stream is live once the client has subscribed, which the test cannot see: toggle the
    // service until its events arrive.
    let mut seen = Vec::new();
    h.wait_until("state events arrive", || {
        h.ok(&["start", "evt"]);
        h.ok(&["stop", "evt"]);
        while let Some(v) = events.next_within(std::time::Duration::from_millis(200)) {
            seen.push(format!("{}:{}", v["kind"].as_str().unwrap(), v["to"].as_str().unwrap_or("")));
        }
        seen.contains(&"state:running".to_string())
    });
    drop(events);
    let pos = |k: &str| seen.iter().position(|x| x == k).unwrap();
    assert!(pos("state:starting") < pos("state:running"), "{seen:?}");
    assert!(
        seen.contains(&"state:stopping".to_string()) && seen.contains(&"exited:".to_string()),
        "{seen:?}"
    );
}

#[test]
fn status_says_what_a_unit_asks_for_and_does_not_get() {
    let mut h = home();
    h.enabled_sh_unit("isolated", "exec sleep 1000", "HealthCheckURL=https://127.0.0.1:1/");
    h.enabled_sh_unit("plain", "exec sleep 1000", "");
    h.start_daemon();
    h.wait_state("isolated", "running");
    let said: Vec<String> = serde_json::from_value(h.service("isolated")["unenforced"].clone()).unwrap();
    assert_eq!(said, ["HealthCheckURL= is not probed: only http:// URLs are (the engine has no TLS)"]);
    assert_eq!(h.service("plain")["unenforced"], serde_json::json!([]));
    let text = h.ok(&["status"]);
    assert!(text.contains("not enforced: isolated: HealthCheckURL= is not probed"), "{text}");
    assert!(!text.contains("not enforced: plain"), "{text}");
    // An https URL is not probed: the service is not killed for failing probes.
    assert_eq!(h.service("isolated")["health"], "unknown");
}
