//! `install-user-service`: the engine at login without the tray. Writes a systemd user unit
//! that runs `gitvisor daemon` for this home and, where a user manager runs, enables and starts
//! it; `--remove` undoes that. A tray started later attaches to that daemon.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use gitvisor_engine::Paths;

use super::Result;

const UNIT: &str = "gitvisor.service";

/// The unit's text for this binary and home.
pub fn unit_text(program: &Path, home: Option<&Path>) -> String {
    let env = home
        .map(|h| format!("Environment=\"GITVISOR_HOME={}\"\n", h.display().to_string().replace('"', "\\\"")))
        .unwrap_or_default();
    format!(
        "# Installed by `gitvisor install-user-service`: the gitvisor engine at login.\n\
         [Unit]\n\
         Description=gitvisor, the per-user process supervisor\n\
         \n\
         [Service]\n\
         ExecStart=\"{program}\" daemon\n\
         {env}\
         # The engine stops its services itself on SIGTERM, in dependency order. If it dies, its\n\
         # services keep running and the engine started next adopts them: systemd must not kill\n\
         # them with it.\n\
         KillMode=process\n\
         Restart=on-failure\n\
         RestartSec=1s\n\
         # Stopping every service can take up to each one's TimeoutStopSec=.\n\
         TimeoutStopSec=5min\n\
         # Resource limits (MemoryMax=, CPUQuota=...) need a cgroup subtree of its own.\n\
         Delegate=yes\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        program = program.display().to_string().replace('"', "\\\""),
    )
}

fn unit_path() -> Result<PathBuf> {
    let config = dirs_config()
        .ok_or("cannot find the user's configuration directory ($XDG_CONFIG_HOME or ~/.config)")?;
    Ok(config.join("systemd/user").join(UNIT))
}

fn dirs_config() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()).map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".config"))
    })
}

/// `systemctl --user ARGS`, quietly; false when it fails or no user manager answers.
fn systemctl(args: &[&str]) -> bool {
    Command::new("systemctl")
        .arg("--user")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn run(paths: &Paths, home: Option<&Path>, remove: bool) -> Result<ExitCode> {
    let path = unit_path()?;
    let manager = systemctl(&["show-environment"]);
    if remove {
        if manager {
            systemctl(&["disable", "--now", UNIT]);
        }
        match std::fs::remove_file(&path) {
            Ok(()) => println!("removed {}", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                println!("{} was not installed", path.display())
            }
            Err(e) => return Err(format!("cannot remove {}: {e}", path.display()).into()),
        }
        if manager {
            systemctl(&["daemon-reload"]);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let program = std::env::current_exe()?;
    // The home the daemon runs: the one named here, or $GITVISOR_HOME; the platform's
    // usual places otherwise (then nothing needs saying).
    let home =
        home.map(Path::to_path_buf).or_else(|| std::env::var_os("GITVISOR_HOME").map(|_| paths.home.clone()));
    let home = home.map(|h| std::path::absolute(&h).unwrap_or(h));
    let text = unit_text(&program, home.as_deref());
    let dir = path.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    gitvisor_state::write_atomic(&path, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("installed {}", path.display());
    if !manager {
        println!(
            "no systemd user manager answers here: where one runs, `systemctl --user enable --now {UNIT}` starts the engine now and at every login"
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !systemctl(&["daemon-reload"]) {
        return Err("systemctl --user daemon-reload failed".into());
    }
    // An engine that already owns the home (the tray, a daemon in a terminal) keeps it; the
    // unit starts at the next login.
    let owned = matches!(
        gitvisor_engine::daemon::own_home(paths),
        Err(gitvisor_engine::daemon::DaemonError::AlreadyRunning { .. })
    );
    if owned {
        if !systemctl(&["enable", UNIT]) {
            return Err(format!("systemctl --user enable {UNIT} failed").into());
        }
        println!("enabled: an engine already runs this home, so it starts at the next login");
    } else {
        if !systemctl(&["enable", "--now", UNIT]) {
            return Err(format!("systemctl --user enable --now {UNIT} failed").into());
        }
        println!("enabled and started: the engine runs now and at every login");
    }
    Ok(ExitCode::SUCCESS)
}
