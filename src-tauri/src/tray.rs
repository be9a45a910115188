//! The tray icon and its menu: Tauri items built from the menu model, updated in place when
//! only labels or enabled states change (no flicker), rebuilt when services come or go.

use std::collections::HashMap;
use std::sync::Mutex;

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, IsMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Runtime};

use crate::menu_model::{self, Aggregate, Change, MenuModel};

pub const TRAY_ID: &str = "gitvisor";

pub fn icon(aggregate: Aggregate) -> Image<'static> {
    let bytes: &'static [u8] = match aggregate {
        Aggregate::Ok => include_bytes!("../../icons/tray-ok.png"),
        Aggregate::Busy => include_bytes!("../../icons/tray-busy.png"),
        Aggregate::Failed => include_bytes!("../../icons/tray-failed.png"),
        Aggregate::Unreachable => include_bytes!("../../icons/tray-unreachable.png"),
    };
    Image::from_bytes(bytes).expect("the tray icons are valid PNG files")
}

enum Handle<R: Runtime> {
    Item(MenuItem<R>),
    Check(CheckMenuItem<R>),
    Sub(Submenu<R>),
}

struct Built<R: Runtime> {
    tray: TrayIcon<R>,
    menu: Menu<R>,
    model: MenuModel,
    items: HashMap<String, Handle<R>>,
}

/// The tray, once created (managed state; absent on the mock runtime of the tests).
pub struct Tray<R: Runtime>(Mutex<Option<Built<R>>>);

type Items<R> = HashMap<String, Handle<R>>;

/// Where the services' submenus start: after the header and a separator (the take-over item,
/// shown only while no engine answers, comes with no services).
const SERVICES_AT: usize = 2;

fn service_submenu<R: Runtime>(
    app: &AppHandle<R>,
    items: &mut Items<R>,
    s: &menu_model::ServiceMenu,
) -> tauri::Result<Submenu<R>> {
    let mut children = Vec::new();
    for it in s.items() {
        let m = MenuItem::with_id(app, &it.id, &it.label, it.enabled, None::<&str>)?;
        items.insert(it.id.clone(), Handle::Item(m.clone()));
        children.push(m);
    }
    let refs: Vec<&dyn IsMenuItem<R>> = children.iter().map(|c| c as &dyn IsMenuItem<R>).collect();
    let id = menu_model::submenu_id(&s.name);
    let sub = Submenu::with_id_and_items(app, &id, &s.label, true, &refs)?;
    items.insert(id, Handle::Sub(sub.clone()));
    Ok(sub)
}

fn build_menu<R: Runtime>(app: &AppHandle<R>, model: &MenuModel) -> tauri::Result<(Menu<R>, Items<R>)> {
    let mut items: Items<R> = HashMap::new();
    let plain = |items: &mut Items<R>, it: &menu_model::Item| -> tauri::Result<MenuItem<R>> {
        let m = MenuItem::with_id(app, &it.id, &it.label, it.enabled, None::<&str>)?;
        items.insert(it.id.clone(), Handle::Item(m.clone()));
        Ok(m)
    };
    let menu = Menu::new(app)?;
    menu.append(&plain(&mut items, &model.header)?)?;
    if let Some(t) = &model.take_over {
        menu.append(&plain(&mut items, t)?)?;
    }
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    for s in &model.services {
        menu.append(&service_submenu(app, &mut items, s)?)?;
    }
    if !model.services.is_empty() {
        menu.append(&PredefinedMenuItem::separator(app)?)?;
    }
    for it in [&model.open, &model.crashes, &model.sync] {
        menu.append(&plain(&mut items, it)?)?;
    }
    let a = &model.autostart;
    let check =
        CheckMenuItem::with_id(app, &a.id, &a.label, a.enabled, model.autostart_checked, None::<&str>)?;
    items.insert(a.id.clone(), Handle::Check(check.clone()));
    menu.append(&check)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&plain(&mut items, &model.quit)?)?;
    Ok((menu, items))
}

/// Creates the tray icon with its menu; clicks go to `on_action`.
pub fn create<R: Runtime>(
    app: &AppHandle<R>,
    model: MenuModel,
    on_action: impl Fn(&AppHandle<R>, menu_model::Action) + Send + Sync + 'static,
) -> tauri::Result<()> {
    let (menu, items) = build_menu(app, &model)?;
    let tray = TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(model.aggregate))
        .tooltip(&model.header.label)
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(move |app, event| {
            if let Some(action) = menu_model::action_of(event.id().as_ref()) {
                on_action(app, action);
            }
        })
        .build(app)?;
    app.manage(Tray(Mutex::new(Some(Built { tray, menu, model, items }))));
    Ok(())
}

/// Brings the tray to `model`, touching only what changed.
pub fn update<R: Runtime>(app: &AppHandle<R>, model: MenuModel) {
    let Some(state) = app.try_state::<Tray<R>>() else { return };
    let mut guard = state.0.lock().unwrap_or_else(|e| e.into_inner());
    let Some(built) = guard.as_mut() else { return };
    if built.model.aggregate != model.aggregate {
        if let Err(e) = built.tray.set_icon(Some(icon(model.aggregate))) {
            tracing::warn!("tray icon: {e}");
        }
    }
    if built.model.header.label != model.header.label {
        let _ = built.tray.set_tooltip(Some(&model.header.label));
    }
    match menu_model::changes(&built.model, &model) {
        Some(changes) => {
            tracing::debug!("tray menu: {} changes", changes.len());
            for c in changes {
                if let Err(e) = built.apply(app, &model, &c) {
                    tracing::warn!("tray menu: {e}");
                }
            }
        }
        None => match build_menu(app, &model) {
            Ok((menu, items)) => {
                if let Err(e) = built.tray.set_menu(Some(menu.clone())) {
                    tracing::warn!("tray menu: {e}");
                }
                built.menu = menu;
                built.items = items;
            }
            Err(e) => tracing::warn!("tray menu: {e}"),
        },
    }
    built.model = model;
}

impl<R: Runtime> Built<R> {
    fn apply(&mut self, app: &AppHandle<R>, model: &MenuModel, change: &Change) -> tauri::Result<()> {
        let id = match change {
            Change::Label { id, .. } | Change::Enabled { id, .. } | Change::Checked { id, .. } => id,
            Change::Submenu { index } => return self.replace_submenu(app, model, *index),
        };
        let Some(handle) = self.items.get(id) else { return Ok(()) };
        match (change, handle) {
            (Change::Label { label, .. }, Handle::Item(i)) => i.set_text(label),
            (Change::Label { label, .. }, Handle::Check(i)) => i.set_text(label),
            (Change::Label { label, .. }, Handle::Sub(i)) => i.set_text(label),
            (Change::Enabled { enabled, .. }, Handle::Item(i)) => i.set_enabled(*enabled),
            (Change::Enabled { enabled, .. }, Handle::Check(i)) => i.set_enabled(*enabled),
            (Change::Enabled { enabled, .. }, Handle::Sub(i)) => i.set_enabled(*enabled),
            (Change::Checked { checked, .. }, Handle::Check(i)) => i.set_checked(*checked),
            (Change::Checked { .. }, _) | (Change::Submenu { .. }, _) => Ok(()),
        }
    }

    fn replace_submenu(&mut self, app: &AppHandle<R>, model: &MenuModel, index: usize) -> tauri::Result<()> {
        let Some(s) = model.services.get(index) else { return Ok(()) };
        if let Some(Handle::Sub(old)) = self.items.remove(&menu_model::submenu_id(&s.name)) {
            self.menu.remove(&old)?;
        }
        for it in s.items() {
            self.items.remove(&it.id);
        }
        let sub = service_submenu(app, &mut self.items, s)?;
        self.menu.insert(&sub, SERVICES_AT + index)
    }
}

/// The model the tray shows now (for the commands that change one of its inputs).
pub fn current<R: Runtime>(app: &AppHandle<R>) -> Option<MenuModel> {
    let state = app.try_state::<Tray<R>>()?;
    let guard = state.0.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_ref().map(|b| b.model.clone())
}
