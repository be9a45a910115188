use gitvisor_protocol::{Health, ServiceState, ServiceStatus, StatusReply};

use super::*;

fn svc(name: &str, state: ServiceState) -> ServiceStatus {
    ServiceStatus {
        name: name.into(),
        description: None,
        state,
        pid: state.is_active().then_some(100),
        restarts: 0,
        health: Health::Unknown,
        health_checked_ms: None,
        health_error: None,
        ready: state == ServiceState::Running,
        enabled: true,
        commit: None,
        error: None,
        since_ms: 0,
        started_ms: None,
        last_exit: None,
        last_exit_class: None,
        busy: None,
        adopted: false,
        cpu_ms: None,
        memory_kb: None,
        fleet: None,
        unenforced: Vec::new(),
        limits: None,
        cpu_percent: None,
        service_type: "simple".into(),
        status_text: None,
        watch: None,
        capture_off: None,
        ports: Vec::new(),
    }
}

fn reply(services: Vec<ServiceStatus>) -> StatusReply {
    StatusReply {
        services,
        invalid: vec![],
        problems: vec![],
        commit: None,
        branch: Some("main".into()),
        pending: vec![],
        repo_problem: None,
    }
}

fn model(status: Option<&StatusReply>, new_crashes: usize, autostart: bool) -> MenuModel {
    menu_model(&MenuInput { status, new_crashes, autostart, attached: false })
}

#[test]
fn an_attached_app_whose_daemon_is_gone_offers_to_run_the_engine_here() {
    let gone = menu_model(&MenuInput { status: None, new_crashes: 0, autostart: false, attached: true });
    let offer = gone.take_over.as_ref().expect("offered");
    assert_eq!((offer.label.as_str(), offer.enabled), ("Start the engine here", true));
    assert_eq!(action_of(&offer.id), Some(Action::TakeOver));
    // Not while the daemon answers, nor for an app that owned the home.
    let r = reply(vec![svc("web", ServiceState::Running)]);
    let answering =
        menu_model(&MenuInput { status: Some(&r), new_crashes: 0, autostart: false, attached: true });
    assert!(answering.take_over.is_none());
    assert!(model(None, 0, false).take_over.is_none());
    // Its coming and going rebuilds the menu.
    assert_eq!(changes(&answering, &gone), None);
}

#[test]
fn all_running_is_ok_with_counts_and_actions() {
    let r = reply(vec![svc("api", ServiceState::Running), svc("web", ServiceState::Running)]);
    let m = model(Some(&r), 0, false);
    assert_eq!(m.aggregate, Aggregate::Ok);
    assert_eq!(m.header.label, "gitvisor: 2 running");
    assert!(!m.header.enabled, "the header is information, not an action");
    assert_eq!(m.services.len(), 2);
    let api = &m.services[0];
    assert_eq!(api.label, "api: running (pid 100)");
    assert!(!api.start.enabled && api.stop.enabled && api.restart.enabled && api.logs.enabled);
    assert_eq!(api.stop.id, "svc:stop:api");
    assert_eq!(m.crashes.label, "Crash reports");
    assert!(m.sync.enabled && m.open.enabled && m.quit.enabled);
    assert!(!m.autostart_checked);
}

#[test]
fn a_remaining_oneshot_counts_as_active_exited_and_can_be_stopped_not_started() {
    let mut setup = svc("setup", ServiceState::Active);
    setup.pid = None;
    let r = reply(vec![svc("api", ServiceState::Running), setup]);
    let m = model(Some(&r), 0, false);
    assert_eq!(m.aggregate, Aggregate::Ok);
    assert_eq!(m.header.label, "gitvisor: 1 running, 1 active (exited)");
    let setup = &m.services[1];
    assert!(!setup.start.enabled && setup.stop.enabled && setup.restart.enabled, "{setup:?}");
}

#[test]
fn a_failed_service_makes_the_menu_red_and_can_be_started() {
    let mut failed = svc("db", ServiceState::Failed);
    failed.error = Some("exited with status 3".into());
    let r = reply(vec![svc("api", ServiceState::Running), failed, svc("web", ServiceState::Stopped)]);
    let m = model(Some(&r), 2, true);
    assert_eq!(m.aggregate, Aggregate::Failed);
    assert_eq!(m.header.label, "gitvisor: 1 running, 1 failed, 1 stopped");
    let db = &m.services[1];
    assert_eq!(db.label, "db: failed");
    assert!(db.start.enabled && !db.stop.enabled && !db.restart.enabled);
    assert_eq!(m.crashes.label, "Crash reports (2 new)");
    assert!(m.autostart_checked);
}

#[test]
fn starting_backoff_and_unhealthy_are_busy() {
    for (state, health) in [
        (ServiceState::Starting, Health::Unknown),
        (ServiceState::Backoff, Health::Unknown),
        (ServiceState::Stopping, Health::Unknown),
        (ServiceState::Running, Health::Unhealthy),
    ] {
        let mut s = svc("a", state);
        s.health = health;
        let r = reply(vec![s, svc("b", ServiceState::Running)]);
        assert_eq!(model(Some(&r), 0, false).aggregate, Aggregate::Busy, "{state} {health:?}");
    }
    let mut s = svc("a", ServiceState::Backoff);
    s.pid = None;
    let m = model(Some(&reply(vec![s])), 0, false);
    assert_eq!(m.header.label, "gitvisor: 1 starting");
    // Waiting to restart: it can be stopped (cancels the restart), not started twice.
    assert!(!m.services[0].start.enabled && m.services[0].stop.enabled);
}

#[test]
fn a_service_under_an_operation_offers_no_other_operation() {
    let mut s = svc("web", ServiceState::Running);
    s.busy = Some("restart".into());
    let m = model(Some(&reply(vec![s])), 0, false);
    let web = &m.services[0];
    assert_eq!(web.label, "web: running (pid 100), restart in progress");
    assert!(!web.start.enabled && !web.stop.enabled && !web.restart.enabled);
    assert!(web.logs.enabled);
}

#[test]
fn unreachable_engine_has_no_services_and_no_sync() {
    let m = model(None, 0, false);
    assert_eq!(m.aggregate, Aggregate::Unreachable);
    assert_eq!(m.header.label, "gitvisor: engine not reachable");
    assert!(m.services.is_empty());
    assert!(!m.sync.enabled);
    assert!(m.open.enabled && m.quit.enabled, "the window and Quit work without an engine");
}

#[test]
fn empty_home_and_invalid_units() {
    let m = model(Some(&reply(vec![])), 0, false);
    assert_eq!(m.header.label, "gitvisor: no services");
    assert_eq!(m.aggregate, Aggregate::Ok);
    let mut r = reply(vec![svc("a", ServiceState::Running)]);
    r.invalid = vec!["bad.service:3: Restart: unknown value".into()];
    let m = model(Some(&r), 0, false);
    assert_eq!(m.header.label, "gitvisor: 1 running, 1 invalid");
    assert_eq!(m.aggregate, Aggregate::Failed);
}

#[test]
fn ids_decode_to_actions_even_with_colons_in_names() {
    assert_eq!(action_of("svc:restart:web"), Some(Action::Restart("web".into())));
    assert_eq!(action_of("svc:logs:a:b"), Some(Action::Logs("a:b".into())));
    assert_eq!(action_of(QUIT), Some(Action::Quit));
    assert_eq!(action_of(AUTOSTART), Some(Action::ToggleAutostart));
    assert_eq!(action_of(HEADER), None);
    assert_eq!(action_of("svc:web"), None, "a submenu is not an action");
    assert_eq!(action_of("svc:explode:web"), None);
    let r = reply(vec![svc("x:y", ServiceState::Stopped)]);
    let m = model(Some(&r), 0, false);
    for item in m.services[0].items() {
        assert!(action_of(&item.id).is_some(), "{} decodes", item.id);
    }
}

#[test]
fn a_state_change_updates_only_what_changed() {
    let before = reply(vec![svc("api", ServiceState::Running), svc("web", ServiceState::Running)]);
    let mut after = before.clone();
    after.services[1].state = ServiceState::Stopped;
    after.services[1].pid = None;
    let old = model(Some(&before), 0, false);
    let new = model(Some(&after), 0, false);
    let changes = changes(&old, &new).expect("same services: updated in place");
    assert_eq!(
        changes,
        vec![
            Change::Label { id: HEADER.into(), label: "gitvisor: 1 running, 1 stopped".into() },
            // web's submenu (the second service) is replaced; api's is not touched.
            Change::Submenu { index: 1 },
        ]
    );
    assert_eq!(new.services[1].label, "web: stopped");
    assert!(new.services[1].start.enabled && !new.services[1].stop.enabled);
    assert_eq!(super::changes(&new, &new), Some(vec![]), "nothing changed, nothing touched");
}

#[test]
fn new_crashes_and_autostart_update_in_place() {
    let r = reply(vec![svc("api", ServiceState::Running)]);
    let old = model(Some(&r), 0, false);
    let new = model(Some(&r), 3, true);
    let c = changes(&old, &new).unwrap();
    assert_eq!(
        c,
        vec![
            Change::Label { id: CRASHES.into(), label: "Crash reports (3 new)".into() },
            Change::Checked { id: AUTOSTART.into(), checked: true },
        ]
    );
}

#[test]
fn added_or_removed_services_rebuild_the_menu() {
    let one = reply(vec![svc("api", ServiceState::Running)]);
    let two = reply(vec![svc("api", ServiceState::Running), svc("web", ServiceState::Running)]);
    assert_eq!(changes(&model(Some(&one), 0, false), &model(Some(&two), 0, false)), None);
    assert_eq!(changes(&model(Some(&two), 0, false), &model(Some(&one), 0, false)), None);
    assert_eq!(changes(&model(Some(&one), 0, false), &model(None, 0, false)), None);
}

#[test]
fn enabled_states_alone_update_items_in_place() {
    let before = reply(vec![svc("api", ServiceState::Running)]);
    let old = model(Some(&before), 0, false);
    let mut new = old.clone();
    new.services[0].restart.enabled = false;
    assert_eq!(
        changes(&old, &new),
        Some(vec![Change::Enabled { id: "svc:restart:api".into(), enabled: false }])
    );
}

#[test]
fn a_singleton_on_another_node_is_shown_there_and_not_counted_stopped() {
    let mut held = svc("db", ServiceState::Stopped);
    held.fleet = Some("on node-b".into());
    let r = reply(vec![svc("web", ServiceState::Running), held]);
    let m = model(Some(&r), 0, false);
    assert_eq!(m.header.label, "gitvisor: 1 running, 1 on other nodes");
    assert_eq!(m.services[1].label, "db: on node-b");
    assert_eq!(m.aggregate, Aggregate::Ok);
}

#[test]
fn what_a_unit_asks_for_and_does_not_get_is_in_its_label() {
    let mut limited = svc("web", ServiceState::Running);
    limited.pid = Some(42);
    limited.unenforced = vec![
        "MemoryMax= is not enforced: resource limits need cgroups".into(),
        "TasksMax= is not enforced: resource limits need cgroups".into(),
    ];
    let r = reply(vec![limited]);
    let m = model(Some(&r), 0, false);
    assert_eq!(m.services[0].label, "web: running (pid 42), not enforced: MemoryMax= TasksMax=");
}

#[test]
fn listening_ports_are_in_the_label_once_each() {
    let mut web = svc("web", ServiceState::Running);
    web.pid = Some(42);
    let port = |port, proto: &str, address: &str| gitvisor_protocol::ListeningPort {
        port,
        proto: proto.into(),
        address: address.into(),
    };
    web.ports = vec![port(5353, "udp", "0.0.0.0"), port(8080, "tcp", "0.0.0.0"), port(8080, "tcp", "::")];
    let r = reply(vec![web]);
    let m = model(Some(&r), 0, false);
    assert_eq!(m.services[0].label, "web: running (pid 42), ports 5353/udp, 8080");
}
