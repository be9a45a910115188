//! The tray menu as plain data computed from the engine's state, so its labels, enabled states
//! and counts are tested without a display; `tray.rs` turns it into Tauri menu items and
//! [`changes`] tells it which items to update in place.

use gitvisor_protocol::{Health, ServiceState, ServiceStatus, StatusReply};

/// What the tray icon shows: the worst state of any service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// Every service is running (or stopped on purpose).
    Ok,
    /// Something is starting, stopping, waiting to restart or unhealthy.
    Busy,
    /// Some service failed, or a unit cannot be loaded.
    Failed,
    /// No engine answers for the home.
    Unreachable,
}

impl Aggregate {
    /// The icon file in `icons/` for this state.
    pub fn icon_name(self) -> &'static str {
        match self {
            Aggregate::Ok => "tray-ok",
            Aggregate::Busy => "tray-busy",
            Aggregate::Failed => "tray-failed",
            Aggregate::Unreachable => "tray-unreachable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: String,
    pub label: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceMenu {
    pub name: String,
    /// The submenu's label: name and state.
    pub label: String,
    pub start: Item,
    pub stop: Item,
    pub restart: Item,
    pub logs: Item,
}

impl ServiceMenu {
    pub fn items(&self) -> [&Item; 4] {
        [&self.start, &self.stop, &self.restart, &self.logs]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuModel {
    pub aggregate: Aggregate,
    /// The first, disabled line: the counts.
    pub header: Item,
    /// Offered when this app was attached to a daemon that no longer answers: run the engine
    /// here (it adopts the services the daemon left running).
    pub take_over: Option<Item>,
    pub services: Vec<ServiceMenu>,
    pub open: Item,
    pub crashes: Item,
    pub sync: Item,
    pub autostart: Item,
    pub autostart_checked: bool,
    pub quit: Item,
}

/// What the menu is computed from.
pub struct MenuInput<'a> {
    /// `None` when no engine answers.
    pub status: Option<&'a StatusReply>,
    /// Crash reports written since the user last looked at them.
    pub new_crashes: usize,
    pub autostart: bool,
    /// A daemon runs the engine; this app is its client.
    pub attached: bool,
}

/// Menu ids. A service's items are `svc:<action>:<name>`: the action comes first, so a name
/// (which may contain `:`) is taken whole.
pub const OPEN: &str = "open";
pub const CRASHES: &str = "crashes";
pub const SYNC: &str = "sync";
pub const AUTOSTART: &str = "autostart";
pub const QUIT: &str = "quit";
pub const HEADER: &str = "header";
pub const TAKE_OVER: &str = "take-over";

/// A click on a menu item, decoded from its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Start(String),
    Stop(String),
    Restart(String),
    Logs(String),
    Open,
    Crashes,
    Sync,
    ToggleAutostart,
    TakeOver,
    Quit,
}

pub fn action_of(id: &str) -> Option<Action> {
    match id {
        OPEN => return Some(Action::Open),
        CRASHES => return Some(Action::Crashes),
        SYNC => return Some(Action::Sync),
        AUTOSTART => return Some(Action::ToggleAutostart),
        QUIT => return Some(Action::Quit),
        TAKE_OVER => return Some(Action::TakeOver),
        _ => {}
    }
    let rest = id.strip_prefix("svc:")?;
    let (action, name) = rest.split_once(':')?;
    let name = name.to_string();
    Some(match action {
        "start" => Action::Start(name),
        "stop" => Action::Stop(name),
        "restart" => Action::Restart(name),
        "logs" => Action::Logs(name),
        _ => return None,
    })
}

fn item(id: impl Into<String>, label: impl Into<String>, enabled: bool) -> Item {
    Item { id: id.into(), label: label.into(), enabled }
}

/// The aggregate of a set of services.
pub fn aggregate(status: Option<&StatusReply>) -> Aggregate {
    let Some(status) = status else { return Aggregate::Unreachable };
    let services = &status.services;
    if services.iter().any(|s| s.state == ServiceState::Failed) || !status.invalid.is_empty() {
        return Aggregate::Failed;
    }
    let busy = services.iter().any(|s| {
        matches!(s.state, ServiceState::Starting | ServiceState::Stopping | ServiceState::Backoff)
            || s.health == Health::Unhealthy
    });
    if busy {
        Aggregate::Busy
    } else {
        Aggregate::Ok
    }
}

/// The header line: how many services are in each kind of state, e.g.
/// `3 running, 1 failed, 2 stopped`.
pub fn counts_line(status: Option<&StatusReply>) -> String {
    let Some(status) = status else { return "gitvisor: engine not reachable".into() };
    if status.services.is_empty() && status.invalid.is_empty() {
        return "gitvisor: no services".into();
    }
    let count = |f: &dyn Fn(&ServiceStatus) -> bool| status.services.iter().filter(|s| f(s)).count();
    let elsewhere = |s: &ServiceStatus| elsewhere(s).is_some();
    let parts = [
        (count(&|s| s.state == ServiceState::Running), "running"),
        (count(&|s| s.state == ServiceState::Active), "active (exited)"),
        (
            count(&|s| {
                matches!(s.state, ServiceState::Starting | ServiceState::Stopping | ServiceState::Backoff)
            }),
            "starting",
        ),
        (count(&|s| s.state == ServiceState::Failed), "failed"),
        (
            count(&|s| matches!(s.state, ServiceState::Stopped | ServiceState::Exited) && !elsewhere(s)),
            "stopped",
        ),
        (count(&elsewhere), "on other nodes"),
        (status.invalid.len(), "invalid"),
    ];
    let text: Vec<String> =
        parts.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} {what}")).collect();
    format!("gitvisor: {}", text.join(", "))
}

/// The node a fleet singleton runs on, when it is not this one.
fn elsewhere(s: &ServiceStatus) -> Option<&str> {
    s.fleet.as_deref().and_then(|f| f.strip_prefix("on ")).filter(|_| !s.state.is_active())
}

fn service_label(s: &ServiceStatus) -> String {
    if let Some(node) = elsewhere(s) {
        return format!("{}: on {node}", s.name);
    }
    let mut label = format!("{}: {}", s.name, s.state);
    if let Some(pid) = s.pid.filter(|_| s.state.is_active()) {
        label.push_str(&format!(" (pid {pid})"));
    }
    if s.health == Health::Unhealthy {
        label.push_str(", unhealthy");
    }
    // Each listening port once, whatever addresses it is bound on.
    let mut ports: Vec<String> = Vec::new();
    for p in s.ports.iter().map(|p| p.label()) {
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    if !ports.is_empty() {
        label.push_str(&format!(", ports {}", ports.join(", ")));
    }
    if !s.unenforced.is_empty() {
        // The keys only: the window and `gitvisor status` have the sentences.
        let keys: Vec<&str> = s.unenforced.iter().filter_map(|u| u.split(' ').next()).collect();
        label.push_str(&format!(", not enforced: {}", keys.join(" ")));
    }
    if let Some(op) = &s.busy {
        label.push_str(&format!(", {op} in progress"));
    }
    label
}

fn service_menu(s: &ServiceStatus) -> ServiceMenu {
    let id = |action: &str| format!("svc:{action}:{}", s.name);
    let free = s.busy.is_none();
    // An active service (or one waiting to restart) can be stopped or restarted; a service
    // whose processes are gone can be started.
    let active = s.state.is_active() || matches!(s.state, ServiceState::Backoff | ServiceState::Active);
    let stoppable = active && s.state != ServiceState::Stopping;
    ServiceMenu {
        name: s.name.clone(),
        label: service_label(s),
        start: item(id("start"), "Start", free && !active),
        stop: item(id("stop"), "Stop", free && stoppable),
        restart: item(id("restart"), "Restart", free && stoppable),
        logs: item(id("logs"), "Show logs", true),
    }
}

pub fn menu_model(input: &MenuInput) -> MenuModel {
    let reachable = input.status.is_some();
    let services = input.status.map(|s| s.services.iter().map(service_menu).collect()).unwrap_or_default();
    let crashes = match input.new_crashes {
        0 => "Crash reports".to_string(),
        n => format!("Crash reports ({n} new)"),
    };
    MenuModel {
        aggregate: aggregate(input.status),
        header: item(HEADER, counts_line(input.status), false),
        take_over: (!reachable && input.attached).then(|| item(TAKE_OVER, "Start the engine here", true)),
        services,
        open: item(OPEN, "Open gitvisor", true),
        crashes: item(CRASHES, crashes, true),
        sync: item(SYNC, "Sync now", reachable),
        autostart: item(AUTOSTART, "Start at login", true),
        autostart_checked: input.autostart,
        quit: item(QUIT, "Quit", true),
    }
}

/// One in-place update of the menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Label {
        id: String,
        label: String,
    },
    Enabled {
        id: String,
        enabled: bool,
    },
    Checked {
        id: String,
        checked: bool,
    },
    /// A service's submenu label changed: GTK cannot relabel a submenu in place, so that one
    /// submenu (the `index`th service) is replaced with its items.
    Submenu {
        index: usize,
    },
}

/// The updates that turn the menu built from `old` into `new`, or `None` when its structure
/// changed (services added, removed or renamed) and it must be rebuilt.
pub fn changes(old: &MenuModel, new: &MenuModel) -> Option<Vec<Change>> {
    let same_services = old.services.len() == new.services.len()
        && old.services.iter().zip(&new.services).all(|(a, b)| a.name == b.name);
    if !same_services || old.take_over.is_some() != new.take_over.is_some() {
        return None;
    }
    let mut out = Vec::new();
    let item_changes = |out: &mut Vec<Change>, a: &Item, b: &Item| {
        if a.label != b.label {
            out.push(Change::Label { id: b.id.clone(), label: b.label.clone() });
        }
        if a.enabled != b.enabled {
            out.push(Change::Enabled { id: b.id.clone(), enabled: b.enabled });
        }
    };
    item_changes(&mut out, &old.header, &new.header);
    for (index, (a, b)) in old.services.iter().zip(&new.services).enumerate() {
        if a.label != b.label {
            out.push(Change::Submenu { index });
            continue;
        }
        for (x, y) in a.items().into_iter().zip(b.items()) {
            item_changes(&mut out, x, y);
        }
    }
    for (a, b) in
        [(&old.open, &new.open), (&old.crashes, &new.crashes), (&old.sync, &new.sync), (&old.quit, &new.quit)]
    {
        item_changes(&mut out, a, b);
    }
    item_changes(&mut out, &old.autostart, &new.autostart);
    if old.autostart_checked != new.autostart_checked {
        out.push(Change::Checked { id: new.autostart.id.clone(), checked: new.autostart_checked });
    }
    Some(out)
}

/// The submenu id of a service.
pub fn submenu_id(name: &str) -> String {
    format!("svc:{name}")
}

#[cfg(test)]
mod tests;
