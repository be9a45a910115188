// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    // This binary also hosts the log keeper (see gitvisor_keeper).
    gitvisor_keeper::run_if_requested();
    gitvisor_tray::run()
}
