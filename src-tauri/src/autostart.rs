//! Start at login (an XDG autostart entry on Linux), through the autostart plugin. The entry
//! starts the app with `--hidden`: at login it goes to the tray without opening its window.

use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_autostart::AutoLaunchManager;

pub fn enabled<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.try_state::<AutoLaunchManager>().is_some_and(|m| m.is_enabled().unwrap_or(false))
}

/// Turns it on or off; answers the state now in force and shows it in the tray.
pub fn set<R: Runtime>(app: &AppHandle<R>, on: bool) -> Result<bool, String> {
    let m = app.try_state::<AutoLaunchManager>().ok_or("start at login is not available in this session")?;
    let done = if on { m.enable() } else { m.disable() };
    done.map_err(|e| format!("cannot turn start at login {}: {e}", if on { "on" } else { "off" }))?;
    let now = m.is_enabled().map_err(|e| e.to_string())?;
    if let Some(shell) = app.try_state::<crate::shell::Shell>() {
        crate::pump::publish(app, &shell);
    }
    Ok(now)
}
