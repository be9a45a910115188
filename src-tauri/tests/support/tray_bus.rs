//! The desktop side of the tray, on the test's private bus: a minimal
//! `org.kde.StatusNotifierWatcher` (where the app's StatusNotifierItem registers), a
//! notification server that records what the app shows, and a client for the item's menu
//! (`com.canonical.dbusmenu`): read it, click an item.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
use zbus::{interface, Connection};

#[derive(Default)]
struct Watcher {
    /// (bus name, object path) of each registered item.
    items: Arc<Mutex<Vec<(String, String)>>>,
}

#[interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    async fn register_status_notifier_item(
        &self,
        service: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) {
        let sender = hdr.sender().map(|s| s.to_string()).unwrap_or_default();
        // The argument is the item's object path (appindicator) or its bus name.
        let (bus, path) = if service.starts_with('/') {
            (sender, service.to_string())
        } else {
            (service.to_string(), "/StatusNotifierItem".to_string())
        };
        self.items.lock().unwrap().push((bus.clone(), path.clone()));
        let _ = Self::status_notifier_item_registered(&emitter, &format!("{bus}{path}")).await;
    }

    fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.lock().unwrap().iter().map(|(b, p)| format!("{b}{p}")).collect()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }

    #[zbus(signal)]
    async fn status_notifier_item_registered(emitter: &SignalEmitter<'_>, service: &str) -> zbus::Result<()>;
}

/// A notification the app showed: (summary, body).
pub type Shown = (String, String);

#[derive(Default)]
struct Notifications {
    shown: Arc<Mutex<Vec<Shown>>>,
}

#[interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        _app_name: &str,
        _replaces_id: u32,
        _app_icon: &str,
        summary: &str,
        body: &str,
        _actions: Vec<String>,
        _hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut shown = self.shown.lock().unwrap();
        shown.push((summary.to_string(), body.to_string()));
        shown.len() as u32
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        ("gitvisor-test".into(), "gitvisor".into(), "1".into(), "1.2".into())
    }

    fn close_notification(&self, _id: u32) {}
}

/// The watcher and the notification server, on the bus at `address`.
pub struct Desktop {
    pub conn: Connection,
    items: Arc<Mutex<Vec<(String, String)>>>,
    shown: Arc<Mutex<Vec<Shown>>>,
}

/// GetLayout's answer: the revision, then the root item (id, properties, children).
type Layout = (u32, (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>));

/// One item of a dbusmenu layout.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: i32,
    pub label: String,
    pub enabled: bool,
    pub toggle_state: Option<i32>,
    pub children: Vec<Node>,
}

impl Node {
    /// The first item, depth first, whose label satisfies `f`.
    pub fn find(&self, f: &dyn Fn(&str) -> bool) -> Option<&Node> {
        if f(&self.label) {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(f))
    }

    pub fn labels(&self) -> Vec<String> {
        let mut out = vec![self.label.clone()];
        for c in &self.children {
            out.extend(c.labels());
        }
        out
    }
}

fn node_of(v: &Value<'_>) -> Option<Node> {
    let v = match v {
        Value::Value(inner) => inner.as_ref(),
        other => other,
    };
    let Value::Structure(s) = v else { return None };
    let fields = s.fields();
    let id = match fields.first()? {
        Value::I32(i) => *i,
        _ => return None,
    };
    let mut label = String::new();
    let mut enabled = true;
    let mut toggle_state = None;
    if let Some(Value::Dict(props)) = fields.get(1) {
        let props: HashMap<String, OwnedValue> = props.try_clone().ok()?.try_into().ok()?;
        if let Some(l) = props.get("label") {
            label = String::try_from(l.try_clone().ok()?).unwrap_or_default().replace('_', "");
        }
        if let Some(e) = props.get("enabled") {
            enabled = bool::try_from(e.try_clone().ok()?).unwrap_or(true);
        }
        if let Some(t) = props.get("toggle-state") {
            toggle_state = i32::try_from(t.try_clone().ok()?).ok();
        }
    }
    let mut children = Vec::new();
    if let Some(Value::Array(a)) = fields.get(2) {
        for c in a.iter() {
            children.extend(node_of(c));
        }
    }
    Some(Node { id, label, enabled, toggle_state, children })
}

impl Desktop {
    pub async fn serve(address: &str) -> Desktop {
        let watcher = Watcher::default();
        let items = watcher.items.clone();
        let notifications = Notifications::default();
        let shown = notifications.shown.clone();
        let conn = zbus::connection::Builder::address(address)
            .expect("bus address")
            .name("org.kde.StatusNotifierWatcher")
            .expect("name")
            .name("org.freedesktop.Notifications")
            .expect("name")
            .serve_at("/StatusNotifierWatcher", watcher)
            .expect("watcher")
            .serve_at("/org/freedesktop/Notifications", notifications)
            .expect("notifications")
            .build()
            .await
            .expect("connect to the test bus");
        Desktop { conn, items, shown }
    }

    /// The first registered tray item, once there is one.
    pub fn item(&self) -> Option<(String, String)> {
        self.items.lock().unwrap().first().cloned()
    }

    pub fn notifications(&self) -> Vec<Shown> {
        self.shown.lock().unwrap().clone()
    }

    async fn menu_path(&self, bus: &str, path: &str) -> zbus::Result<OwnedObjectPath> {
        let reply = self
            .conn
            .call_method(
                Some(bus),
                path,
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &("org.kde.StatusNotifierItem", "Menu"),
            )
            .await?;
        let v: OwnedValue = reply.body().deserialize()?;
        Ok(OwnedObjectPath::try_from(v)?)
    }

    /// The item's whole menu.
    pub async fn layout(&self) -> zbus::Result<Node> {
        let (bus, path) =
            self.item().ok_or_else(|| zbus::Error::Failure("no tray item registered".into()))?;
        let menu = self.menu_path(&bus, &path).await?;
        let reply = self
            .conn
            .call_method(
                Some(bus.as_str()),
                menu.as_str(),
                Some("com.canonical.dbusmenu"),
                "GetLayout",
                &(0i32, -1i32, Vec::<String>::new()),
            )
            .await?;
        let (_revision, root): Layout = reply.body().deserialize()?;
        let children = root.2.iter().filter_map(|c| node_of(c)).collect();
        Ok(Node { id: root.0, label: String::new(), enabled: true, toggle_state: None, children })
    }

    /// Clicks a menu item, as a desktop's tray host does.
    pub async fn click(&self, id: i32) -> zbus::Result<()> {
        let (bus, path) =
            self.item().ok_or_else(|| zbus::Error::Failure("no tray item registered".into()))?;
        let menu = self.menu_path(&bus, &path).await?;
        let now = 0u32;
        self.conn
            .call_method(
                Some(bus.as_str()),
                menu.as_str(),
                Some("com.canonical.dbusmenu"),
                "Event",
                &(id, "clicked", Value::from(0i32), now),
            )
            .await?;
        Ok(())
    }
}
