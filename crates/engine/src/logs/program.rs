//! Which executable the log keeper runs from.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The keeper's own executable, `gitvisor-keeper`, installed beside the host's (the package,
/// `scripts/run` and cargo put them together); else the `gitvisor` CLI beside it; else the host
/// itself (every host calls `gitvisor_keeper::run_if_requested` first). The keeper lives as long
/// as any service runs and every page of code its executable maps counts in its memory: started
/// from the tray app it would map GTK and WebKit (49 MiB RSS), from the CLI the whole engine
/// (5–6 MiB), from its own executable only what it runs.
pub fn keeper_program(own: &Path) -> PathBuf {
    ["gitvisor-keeper", "gitvisor"]
        .iter()
        .map(|name| own.with_file_name(name))
        .find(|p| executable(p))
        .unwrap_or_else(|| own.to_path_buf())
}

fn executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keepers_own_executable_first_then_the_cli_then_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("gitvisor-tray");
        std::fs::write(&own, "").unwrap();
        let put = |name: &str, mode: u32| {
            let p = dir.path().join(name);
            std::fs::write(&p, "").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        assert_eq!(keeper_program(&own), own, "nothing beside the host: the host itself");
        let cli = put("gitvisor", 0o644);
        assert_eq!(keeper_program(&own), own, "a file that cannot be executed is not used");
        std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(keeper_program(&own), cli);
        std::fs::create_dir(dir.path().join("gitvisor-keeper")).unwrap();
        assert_eq!(keeper_program(&own), cli, "a directory is not an executable");
        std::fs::remove_dir(dir.path().join("gitvisor-keeper")).unwrap();
        let keeper = put("gitvisor-keeper", 0o755);
        assert_eq!(keeper_program(&own), keeper);
        assert_eq!(keeper_program(&cli), keeper, "the CLI uses it too");
    }
}
