//! The window: created on demand, destroyed when closed (its webview then uses no memory; it is
//! re-created in a fraction of a second), while the app lives on in the tray.

use tauri::{AppHandle, Emitter, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

use crate::shell::Shell;

pub const LABEL: &str = "main";

/// Shows the window on `route` (`services`, `logs/NAME`, `crashes`, `history`), creating it if
/// it does not exist.
pub fn show<R: Runtime>(app: &AppHandle<R>, route: &str) -> tauri::Result<()> {
    if let Some(w) = app.get_webview_window(LABEL) {
        w.show()?;
        w.unminimize()?;
        w.set_focus()?;
        app.emit_to(LABEL, "gv:navigate", route)?;
        return Ok(());
    }
    let url = WebviewUrl::App(format!("index.html#{route}").into());
    WebviewWindowBuilder::new(app, LABEL, url)
        .title("gitvisor")
        .inner_size(1080.0, 700.0)
        .min_inner_size(640.0, 420.0)
        .build()?;
    if let Some(shell) = app.try_state::<Shell>() {
        shell.window_open.send_replace(true);
    }
    Ok(())
}

/// The window is gone: stop what only it used.
pub fn destroyed<R: Runtime>(app: &AppHandle<R>) {
    tracing::info!("window closed; gitvisor stays in the tray");
    if let Some(shell) = app.try_state::<Shell>() {
        shell.window_open.send_replace(false);
        if let Some(task) = shell.follow.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}
