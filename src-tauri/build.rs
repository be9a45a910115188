// Declares the window's commands in the app manifest: each becomes a permission
// (`allow-<command>`) that capabilities/main.json must grant, so the window can call nothing
// it is not given.
fn main() {
    let commands = &[
        "snapshot",
        "status",
        "start",
        "stop",
        "restart",
        "follow_logs",
        "unfollow_logs",
        "sync",
        "history",
        "commit_diff",
        "rollback_diff",
        "rollback",
        "import_units",
        "crash_list",
        "crash_show",
        "crash_export",
        "crash_seen",
        "capture",
        "app_info",
        "set_autostart",
        "take_over",
        "timers",
        "metrics",
        "graph",
        "open_port",
        "timeline",
        "unit_get",
        "unit_validate",
        "unit_commit",
        "unit_delete",
        "unit_draft",
        "unit_discard",
    ];
    let attributes =
        tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(commands));
    tauri_build::try_build(attributes).expect("tauri-build");
}
