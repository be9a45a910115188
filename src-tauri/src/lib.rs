//! gitvisor's tray app: the engine (in this process, or a headless daemon's over its socket),
//! a tray icon whose colour and menu follow the services, and a window (`ui/`) for services,
//! logs, crash reports and history. Everything here is a thin face over the engine's
//! operations; the menu is a plain model (`menu_model`) tested without a display.

pub mod autostart;
pub mod backend;
pub mod commands;
pub mod error;
pub mod menu_model;
pub mod notify;
pub mod pump;
pub mod shell;
pub mod tray;
pub mod window;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use clap::Parser;
use gitvisor_engine::Paths;
use tauri::{AppHandle, Builder, Manager, RunEvent, Runtime, WindowEvent};

use crate::backend::Backend;
use crate::menu_model::Action;
use crate::shell::Shell;

#[derive(Parser, Debug)]
#[command(name = "gitvisor-tray", version, about = "gitvisor in the system tray")]
pub struct Args {
    /// Start in the tray without opening the window (how start at login runs it).
    #[arg(long)]
    pub hidden: bool,
    /// The gitvisor home (default: $GITVISOR_HOME, else the platform's usual places).
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
}

/// Registers the window's commands: the real app and the tests' mock app both go through it.
pub fn with_commands<R: Runtime>(builder: Builder<R>) -> Builder<R> {
    builder.invoke_handler(tauri::generate_handler![
        commands::snapshot,
        commands::status,
        commands::start,
        commands::stop,
        commands::restart,
        commands::follow_logs,
        commands::unfollow_logs,
        commands::sync,
        commands::history,
        commands::commit_diff,
        commands::rollback_diff,
        commands::rollback,
        commands::import_units,
        commands::crash_list,
        commands::crash_show,
        commands::crash_export,
        commands::crash_seen,
        commands::capture,
        commands::app_info,
        commands::set_autostart,
        commands::take_over,
        commands::timers,
        commands::metrics,
        commands::graph,
        commands::open_port,
        commands::timeline,
        commands::unit_get,
        commands::unit_validate,
        commands::unit_commit,
        commands::unit_delete,
        commands::unit_draft,
        commands::unit_discard,
    ])
}

/// The app's configuration, assets and permissions (from tauri.conf.json and capabilities/):
/// the tests' mock app uses the same, so a command the window is not granted fails there too.
pub fn context<R: Runtime>() -> tauri::Context<R> {
    tauri::generate_context!()
}

/// A stable name for the home, for the single-instance D-Bus name: one app per home.
fn home_key(home: &std::path::Path) -> String {
    // FNV-1a: stable across builds, unlike std's hasher.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in home.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("h{h:016x}")
}

pub fn run() -> ExitCode {
    let args = Args::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GITVISOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: a redirected log stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let paths = match &args.home {
        Some(home) => Paths::under(home),
        None => Paths::from_env(),
    };
    let keeper = match std::env::current_exe() {
        Ok(p) => gitvisor_engine::logs::keeper_program(&p),
        Err(e) => {
            eprintln!("gitvisor-tray: cannot find its own executable: {e}");
            return ExitCode::from(1);
        }
    };
    // At login the app starts hidden, on the home it runs on now.
    let custom_home = args.home.is_some() || std::env::var_os("GITVISOR_HOME").is_some();
    let mut login_args = vec!["--hidden".to_string()];
    if custom_home {
        login_args.push("--home".into());
        login_args.push(paths.home.display().to_string());
    }
    let dbus_id = format!("org.gitvisor.tray.{}", home_key(&paths.home));
    // One login entry per home: `gitvisor` for the usual one, `gitvisor-<key>` for others.
    let login_name =
        if custom_home { format!("gitvisor-{}", home_key(&paths.home)) } else { "gitvisor".to_string() };
    let hidden = args.hidden;
    let app = with_commands(tauri::Builder::default())
        .plugin(
            tauri_plugin_single_instance::Builder::new()
                .dbus_id(dbus_id)
                .callback(|app, _argv, _cwd| {
                    if let Err(e) = window::show(app, "services") {
                        tracing::warn!("showing the window: {e}");
                    }
                })
                .build(),
        )
        .plugin(tauri_plugin_autostart::Builder::new().args(login_args).app_name(login_name).build())
        .plugin(tauri_plugin_notification::init())
        .setup(move |app| {
            let backend = tauri::async_runtime::block_on(Backend::open(paths, keeper))?;
            app.manage(Shell::new(backend));
            let handle = app.handle().clone();
            tauri::async_runtime::block_on(pump::refresh(&handle, true));
            let model = pump::model_of(&handle, &app.state::<Shell>().snapshot());
            tray::create(&handle, model, on_action)?;
            pump::spawn(handle.clone());
            spawn_signal_handler(handle.clone());
            if !hidden {
                window::show(&handle, "services")?;
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            if matches!(event, WindowEvent::Destroyed) && window.label() == window::LABEL {
                window::destroyed(window.app_handle());
            }
        })
        .build(context());
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            eprintln!("gitvisor-tray: {e}");
            return ExitCode::from(1);
        }
    };
    app.run(|_app, event| {
        // Closing the window leaves the app in the tray; only Quit (or a signal) exits.
        if let RunEvent::ExitRequested { code: None, api, .. } = event {
            api.prevent_exit();
        }
    });
    ExitCode::SUCCESS
}

/// What a click on a tray menu item does.
fn on_action<R: Runtime>(app: &AppHandle<R>, action: Action) {
    let show = |route: &str| {
        if let Err(e) = window::show(app, route) {
            tracing::warn!("showing the window: {e}");
        }
    };
    match action {
        Action::Start(name) => operate(app, commands::Op::Start, name),
        Action::Stop(name) => operate(app, commands::Op::Stop, name),
        Action::Restart(name) => operate(app, commands::Op::Restart, name),
        Action::Logs(name) => show(&format!("logs/{name}")),
        Action::Open => show("services"),
        Action::Crashes => show("crashes"),
        Action::Sync => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                let shell = app.state::<Shell>();
                if let Err(e) = shell.backend.call(gitvisor_protocol::SyncNow {}).await {
                    pump::notify(&app, "gitvisor: sync failed", &e.message);
                }
            });
        }
        Action::ToggleAutostart => {
            if let Err(e) = autostart::set(app, !autostart::enabled(app)) {
                pump::notify(app, "gitvisor", &e);
            }
        }
        Action::TakeOver => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                let shell = app.state::<Shell>();
                if let Err(e) = commands::take_over_here(&shell).await {
                    pump::notify(&app, "gitvisor: cannot start the engine here", &e.message);
                }
                pump::publish(&app, &shell);
            });
        }
        Action::Quit => quit(app),
    }
}

fn operate<R: Runtime>(app: &AppHandle<R>, op: commands::Op, name: String) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let shell = app.state::<Shell>();
        if let Err(e) = op.run(&shell, &name).await {
            pump::notify(&app, &format!("gitvisor: {} {name} failed", op.name()), &e.message);
        }
    });
}

/// Stops the services this app runs (an attached app leaves the daemon's alone), then exits 0.
pub fn quit<R: Runtime>(app: &AppHandle<R>) {
    let Some(shell) = app.try_state::<Shell>() else {
        app.exit(0);
        return;
    };
    if shell.quitting.swap(true, Ordering::SeqCst) {
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let shell = app.state::<Shell>();
        shell.stop_tasks();
        shell.backend.shutdown().await;
        app.exit(0);
    });
}

/// SIGTERM and SIGINT quit as the menu's Quit does.
fn spawn_signal_handler<R: Runtime>(app: AppHandle<R>) {
    tauri::async_runtime::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        quit(&app);
    });
}
