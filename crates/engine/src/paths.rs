//! Where a home keeps its files (SPEC section 1).

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Paths {
    /// What a user calls the home in messages (GITVISOR_HOME, or the config dir).
    pub home: PathBuf,
    pub services: PathBuf,
    pub config: PathBuf,
    pub state: PathBuf,
    pub logs: PathBuf,
    pub crash_reports: PathBuf,
    pub socket: PathBuf,
    /// Socket of the log keeper (see `logs::keeper`).
    pub logd_socket: PathBuf,
    /// One JSON line per sync applied (`gitvisor history`).
    pub sync_history: PathBuf,
    /// Unit texts of rejected `gitvisor edit`s, so no edit is ever lost.
    pub edit_recovery: PathBuf,
    /// Held by the engine that owns the home.
    pub engine_lock: PathBuf,
    /// Lock files of the lock primitive.
    pub locks: PathBuf,
    /// The last git maintenance runs (`gitvisor maintenance status`).
    pub maintenance: PathBuf,
}

impl Paths {
    /// Everything under one directory, as `GITVISOR_HOME=DIR` asks.
    pub fn under(dir: &Path) -> Paths {
        Paths {
            home: dir.to_path_buf(),
            services: dir.join("services"),
            config: dir.join("config.toml"),
            state: dir.join("state.json"),
            logs: dir.join("logs"),
            crash_reports: dir.join("crash-reports"),
            socket: dir.join("gitvisor.sock"),
            logd_socket: dir.join("logd.sock"),
            sync_history: dir.join("sync-history.jsonl"),
            edit_recovery: dir.join("edit-recovery"),
            engine_lock: dir.join("engine.lock"),
            locks: dir.join("locks"),
            maintenance: dir.join("maintenance.json"),
        }
    }

    /// `GITVISOR_HOME` if set, otherwise the platform's usual places.
    pub fn from_env() -> Paths {
        match std::env::var_os("GITVISOR_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => Paths::under(&absolute(Path::new(&dir))),
            None => Paths::platform(),
        }
    }

    fn platform() -> Paths {
        let home = dirs::home_dir().unwrap_or_else(|| PathBuf::from("/tmp"));
        let config = dirs::config_dir().unwrap_or_else(|| home.join(".config")).join("gitvisor");
        let data = dirs::data_local_dir().unwrap_or_else(|| home.join(".local/share")).join("gitvisor");
        let runtime = dirs::runtime_dir().map(|d| d.join("gitvisor")).unwrap_or_else(|| data.clone());
        Paths {
            home: config.clone(),
            services: config.join("services"),
            config: config.join("config.toml"),
            state: data.join("state.json"),
            logs: data.join("logs"),
            crash_reports: data.join("crash-reports"),
            socket: runtime.join("gitvisor.sock"),
            logd_socket: runtime.join("logd.sock"),
            sync_history: data.join("sync-history.jsonl"),
            edit_recovery: data.join("edit-recovery"),
            engine_lock: data.join("engine.lock"),
            locks: data.join("locks"),
            maintenance: data.join("maintenance.json"),
        }
    }

    /// Creates the directories the engine writes to (mode 0700: logs can hold secrets).
    pub fn create_dirs(&self) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        let mut dirs = vec![
            self.home.clone(),
            self.services.clone(),
            self.logs.clone(),
            self.locks.clone(),
            self.crash_reports.clone(),
            self.edit_recovery.clone(),
        ];
        dirs.extend(
            [&self.state, &self.socket, &self.engine_lock]
                .iter()
                .filter_map(|p| p.parent().map(Path::to_path_buf)),
        );
        for d in dirs {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&d)?;
        }
        // Those that hold what services print or carry (a home made before, or by hand, may be
        // open to others): the user's only.
        for d in [&self.logs, &self.crash_reports, &self.edit_recovery, &self.locks] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    }
}
