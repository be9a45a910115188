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
    model: MenuModel,
    items: HashMap<String, Handle<R>>,
}

/// The tray, once created (managed state; absent on the mock runtime of the tests).
pub struct Tray<R: Runtime>(Mutex<Option<Built<R>>>);

type Items<R> = HashMap<String, Handle<R>>;

fn build_menu<R: Runtime>(app: &AppHandle<R>, model: &MenuModel) -> tauri::Result<(Menu<R>, Items<R>)> {
    let mut items: Items<R> = HashMap::new();
    let plain = |items: &mut Items<R>, it: &menu_model::Item| -> tauri::Result<MenuItem<R>> {
        let m = MenuItem::with_id(app, &it.id, &it.label, it.enabled, None::<&str>)?;
        items.insert(it.id.clone(), Handle::Item(m.clone()));
        Ok(m)
    };
    let menu = Menu::new(app)?;
    menu.append(&plain(&mut items, &model.header)?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    for s in &model.services {
        let children: Vec<MenuItem<R>> =
            s.items().into_iter().map(|it| plain(&mut items, it)).collect::<tauri::Result<_>>()?;
        let refs: Vec<&dyn IsMenuItem<R>> = children.iter().map(|c| c as &dyn IsMenuItem<R>).collect();
        let id = menu_model::submenu_id(&s.name);
        let sub = Submenu::with_id_and_items(app, &id, &s.label, true, &refs)?;
        items.insert(id, Handle::Sub(sub.clone()));
        menu.append(&sub)?;
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
    app.manage(Tray(Mutex::new(Some(Built { tray, model, items }))));
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
            for c in changes {
                if let Err(e) = apply(&built.items, &c) {
                    tracing::warn!("tray menu: {e}");
                }
            }
        }
        None => match build_menu(app, &model) {
            Ok((menu, items)) => {
                if let Err(e) = built.tray.set_menu(Some(menu)) {
                    tracing::warn!("tray menu: {e}");
                }
                built.items = items;
            }
            Err(e) => tracing::warn!("tray menu: {e}"),
        },
    }
    built.model = model;
}

fn apply<R: Runtime>(items: &Items<R>, change: &Change) -> tauri::Result<()> {
    let (Change::Label { id, .. } | Change::Enabled { id, .. } | Change::Checked { id, .. }) = change;
    let Some(handle) = items.get(id) else { return Ok(()) };
    match (change, handle) {
        (Change::Label { label, .. }, Handle::Item(i)) => i.set_text(label),
        (Change::Label { label, .. }, Handle::Check(i)) => i.set_text(label),
        (Change::Label { label, .. }, Handle::Sub(i)) => i.set_text(label),
        (Change::Enabled { enabled, .. }, Handle::Item(i)) => i.set_enabled(*enabled),
        (Change::Enabled { enabled, .. }, Handle::Check(i)) => i.set_enabled(*enabled),
        (Change::Enabled { enabled, .. }, Handle::Sub(i)) => i.set_enabled(*enabled),
        (Change::Checked { checked, .. }, Handle::Check(i)) => i.set_checked(*checked),
        (Change::Checked { .. }, _) => Ok(()),
    }
}

/// The model the tray shows now (for the commands that change one of its inputs).
pub fn current<R: Runtime>(app: &AppHandle<R>) -> Option<MenuModel> {
    let state = app.try_state::<Tray<R>>()?;
    let guard = state.0.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_ref().map(|b| b.model.clone())
}
