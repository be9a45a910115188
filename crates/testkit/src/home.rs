//! The fixture: a temporary home with its directories, unit files and environment.

use std::path::{Path, PathBuf};
use std::process::Child;

use tempfile::TempDir;

use crate::process::kill_processes_in;

/// A temporary gitvisor home (`GITVISOR_HOME`) with `services/` and `work/`, and the
/// `gitvisor` binary that drives it. Dropping it stops its daemon (if the test started one),
/// kills what is left running in it, and removes it unless `GITVISOR_TEST_KEEP` is set.
pub struct Home {
    pub(crate) dir: Option<TempDir>,
    pub(crate) path: PathBuf,
    pub(crate) bin: PathBuf,
    pub(crate) user_dirs: bool,
    pub(crate) daemon: Option<Child>,
}

/// How a [`Home`] is made: see [`Home::builder`].
pub struct HomeBuilder {
    bin: PathBuf,
    prefix: String,
    user_dirs: bool,
}

impl HomeBuilder {
    /// The temporary directory's name starts with `prefix` (default `gitvisor-test-`).
    pub fn prefix(mut self, prefix: &str) -> HomeBuilder {
        self.prefix = prefix.to_string();
        self
    }

    /// The test's processes get their own `HOME` (`user/`) and XDG config and data directories
    /// (`xdg/config`, `xdg/data`) inside the home, so an app writes no user-level files (an
    /// autostart entry goes to `$HOME/.config/autostart` whatever `XDG_CONFIG_HOME` says).
    pub fn isolate_user_dirs(mut self) -> HomeBuilder {
        self.user_dirs = true;
        self
    }

    pub fn build(self) -> Home {
        let dir = tempfile::Builder::new().prefix(&self.prefix).tempdir().expect("temp dir");
        let path = dir.path().to_path_buf();
        let mut dirs = vec![path.join("services"), path.join("work")];
        if self.user_dirs {
            dirs.extend([path.join("user"), path.join("xdg/config"), path.join("xdg/data")]);
        }
        for d in dirs {
            std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
        }
        Home { dir: Some(dir), path, bin: self.bin, user_dirs: self.user_dirs, daemon: None }
    }
}

impl Home {
    /// A home driven by the `gitvisor` binary at `bin`, with the defaults.
    pub fn new(bin: impl Into<PathBuf>) -> Home {
        Home::builder(bin).build()
    }

    pub fn builder(bin: impl Into<PathBuf>) -> HomeBuilder {
        HomeBuilder { bin: bin.into(), prefix: "gitvisor-test-".into(), user_dirs: false }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The services repository, where unit files go.
    pub fn services(&self) -> PathBuf {
        self.path.join("services")
    }

    /// A scratch directory for what services write; `sh_unit`'s services run in it, so the
    /// clean-up finds what they left.
    pub fn work(&self) -> PathBuf {
        self.path.join("work")
    }

    /// The text of the file `name` in the home, empty if there is none (a log, say).
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path.join(name)).unwrap_or_default()
    }

    /// Environment of every process of the test (the apps it starts, the CLI, the daemon): this
    /// home, the log filter (`GITVISOR_TEST_LOG`, `info` by default), and with
    /// [`HomeBuilder::isolate_user_dirs`] the user's directories inside the home.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("GITVISOR_HOME".to_string(), self.path.display().to_string()),
            // GITVISOR_TEST_LOG=debug shows more in the app logs a failing test prints.
            (
                "GITVISOR_LOG".to_string(),
                std::env::var("GITVISOR_TEST_LOG").unwrap_or_else(|_| "info".into()),
            ),
        ];
        if self.user_dirs {
            let at = |p: &str| self.path.join(p).display().to_string();
            env.extend([
                ("HOME".to_string(), at("user")),
                ("XDG_CONFIG_HOME".to_string(), at("xdg/config")),
                ("XDG_DATA_HOME".to_string(), at("xdg/data")),
            ]);
        }
        env
    }

    /// Writes `services/NAME.service`.
    pub fn unit(&self, name: &str, text: &str) {
        std::fs::write(self.services().join(format!("{name}.service")), text).expect("write unit");
    }

    /// The text of a unit running `sh -c SCRIPT` in the work directory, with `extra` lines at
    /// the end of `[Service]` (or further sections). SCRIPT is part of a unit's command line, read
    /// as systemd reads it: `${VAR}` is the engine's to substitute, `$$` is a literal `$` (the
    /// shell's pid is `$$$$`), `%%` a literal `%`.
    pub fn sh_unit_text(&self, script: &str, extra: &str) -> String {
        let script = script.replace('\'', "'\\''");
        format!(
            "[Service]\nExecStart=/bin/sh -c '{script}'\nWorkingDirectory={}\n{extra}\n",
            self.work().display()
        )
    }

    /// The same unit described as `description` and enabled (`WantedBy=default.target`): it
    /// starts with the engine.
    pub fn enabled_sh_unit_text(&self, description: &str, script: &str, extra: &str) -> String {
        format!(
            "[Unit]\nDescription={description}\n{}[Install]\nWantedBy=default.target\n",
            self.sh_unit_text(script, extra)
        )
    }

    /// Writes the unit NAME of [`Home::sh_unit_text`].
    pub fn sh_unit(&self, name: &str, script: &str, extra: &str) {
        self.unit(name, &self.sh_unit_text(script, extra));
    }

    /// Writes the unit NAME of [`Home::enabled_sh_unit_text`], described as "NAME of the test".
    /// Written before the first start, it is in the first commit (the engine commits what it
    /// finds when it creates the repository).
    pub fn enabled_sh_unit(&self, name: &str, script: &str, extra: &str) {
        self.unit(name, &self.enabled_sh_unit_text(&format!("{name} of the test"), script, extra));
    }

    /// The pid of the engine owning the home (from its lock file).
    pub fn engine_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.path.join("engine.lock")).ok()?.trim().parse().ok()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            self.stop_daemon();
        }
        kill_processes_in(&self.path);
        if std::env::var_os("GITVISOR_TEST_KEEP").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("kept {}", dir.keep().display());
            }
        }
    }
}
