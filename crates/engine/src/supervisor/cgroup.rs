//! Resource limits through cgroups: `MemoryMax=`, `CPUQuota=`, `TasksMax=`.
//!
//! A service that sets a limit gets a cgroup of its own, named after the home and the service
//! (so a restarted engine finds it again when it adopts the process), and its process joins it
//! between fork and exec: every process of the service is in it from its first instruction.
//!
//! - **cgroup v2** when the engine's own cgroup offers the memory, cpu and pids controllers and
//!   may be written (on a desktop with systemd: the user's delegated `user@UID.service`
//!   subtree). The engine's cgroup holds the engine, and v2 lets only a cgroup without processes
//!   hand controllers to its children: the engine moves itself into a leaf (`gitvisor-engine`)
//!   first. Files: `memory.max`, `cpu.max`, `pids.max`; OOM kills in `memory.events`.
//! - **cgroup v1** when the memory, cpu and pids hierarchies are mounted under the root and the
//!   engine may create cgroups in them: `memory.limit_in_bytes`, `cpu.cfs_quota_us` and
//!   `cpu.cfs_period_us`, `pids.max`; OOM kills in `memory.oom_control`.
//! - Otherwise limits are not enforced, and status, the tray and the window say why.
//!
//! A stop signals every process in the cgroup as well as the process group, so what left the
//! group (`setsid`, a double fork) goes too. The cgroup is removed once the service is down.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use gitvisor_units::Unit;

/// The controllers the limits need.
const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];
/// The CFS period `CPUQuota=` is a share of (systemd's default, 100 ms).
const CPU_PERIOD_US: u64 = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// Where this engine puts its services' cgroups, or why it cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The directory services' cgroups are made in.
    V2 { parent: PathBuf },
    /// Per controller, the directory services' cgroups are made in.
    V1 { memory: PathBuf, cpu: PathBuf, pids: PathBuf },
}

impl Backend {
    pub fn version(&self) -> Version {
        match self {
            Backend::V2 { .. } => Version::V2,
            Backend::V1 { .. } => Version::V1,
        }
    }

    /// Finds where this engine can put services' cgroups. `root`: where cgroup file systems
    /// are mounted (`/sys/fs/cgroup`); `own`: `/proc/self/cgroup`; `home_id`: names this home's
    /// cgroups apart from another home's.
    pub fn detect(root: &Path, own: &str, home_id: &str) -> Result<Backend, String> {
        let v2 = v2(root, own, home_id);
        if v2.is_ok() {
            return v2;
        }
        let v1 = v1(root, own, home_id);
        match (v2, v1) {
            (_, Ok(b)) => Ok(b),
            (Err(e2), Err(e1)) => Err(format!("no usable cgroup: {e2}; {e1}")),
            (Ok(b), _) => Ok(b),
        }
    }

    /// The engine's: `/sys/fs/cgroup` (or `$GITVISOR_CGROUP_ROOT`, for an unusual mount).
    pub fn for_engine(home: &Path) -> Result<Backend, String> {
        let root = std::env::var_os("GITVISOR_CGROUP_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"));
        let own =
            std::fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
        Backend::detect(&root, &own, &home_id(home))
    }

    /// The cgroup of `service` (made or not).
    pub fn cgroup(&self, service: &str) -> ServiceCgroup {
        let leaf = sanitize(service);
        match self {
            Backend::V2 { parent } => {
                ServiceCgroup { version: Version::V2, dirs: vec![parent.join(&leaf)], memory: None }
            }
            Backend::V1 { memory, cpu, pids } => ServiceCgroup {
                version: Version::V1,
                dirs: vec![memory.join(&leaf), cpu.join(&leaf), pids.join(&leaf)],
                memory: Some(memory.join(&leaf)),
            },
        }
    }
}

/// The engine's cgroup backend, found the first time a service with limits needs it (finding a
/// v2 one moves the engine into a leaf: not done for nothing).
pub struct Cgroups {
    home: PathBuf,
    found: std::sync::OnceLock<Result<Backend, String>>,
}

impl Cgroups {
    pub fn new(home: &Path) -> Cgroups {
        Cgroups { home: home.to_path_buf(), found: std::sync::OnceLock::new() }
    }

    pub fn backend(&self) -> &Result<Backend, String> {
        self.found.get_or_init(|| {
            let found = Backend::for_engine(&self.home);
            if let Err(e) = &found {
                tracing::warn!("resource limits are not enforced: {e}");
            }
            found
        })
    }
}

/// A short, stable name for a home.
pub fn home_id(home: &Path) -> String {
    // FNV-1a: stable across runs and versions (std's hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in home.as_os_str().as_encoded_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:012x}", h & 0xffff_ffff_ffff)
}

fn sanitize(service: &str) -> String {
    service.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.@".contains(c) { c } else { '_' }).collect()
}

/// The engine's path in the hierarchy whose `/proc/self/cgroup` line ends with `which`.
fn own_path(own: &str, which: impl Fn(&str) -> bool) -> Option<&str> {
    own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        which(controllers).then_some(path)
    })
}

fn v2(root: &Path, own: &str, home_id: &str) -> Result<Backend, String> {
    let path = own_path(own, str::is_empty).ok_or("cgroup v2: the engine is in no v2 cgroup")?;
    // Unified at the root, or beside the v1 hierarchies (hybrid).
    let mount = [root.to_path_buf(), root.join("unified")]
        .into_iter()
        .find(|m| m.join("cgroup.controllers").is_file())
        .ok_or("cgroup v2: not mounted")?;
    let own_dir = mount.join(path.trim_start_matches('/'));
    let available = std::fs::read_to_string(own_dir.join("cgroup.controllers"))
        .map_err(|e| format!("cgroup v2: {}: {e}", own_dir.display()))?;
    let missing: Vec<&str> =
        CONTROLLERS.iter().copied().filter(|c| !available.split_whitespace().any(|a| a == *c)).collect();
    if !missing.is_empty() {
        return Err(format!("cgroup v2 offers no {} controller here", missing.join(", ")));
    }
    let parent = own_dir.join(format!("gitvisor-{home_id}"));
    let enabled = std::fs::read_to_string(own_dir.join("cgroup.subtree_control")).unwrap_or_default();
    if !CONTROLLERS.iter().all(|c| enabled.split_whitespace().any(|e| e == *c)) {
        // Only a cgroup without processes hands controllers down: the engine's own processes
        // move into a leaf first.
        let leaf = own_dir.join("gitvisor-engine");
        std::fs::create_dir_all(&leaf).map_err(|e| format!("cgroup v2: {}: {e}", leaf.display()))?;
        let procs = std::fs::read_to_string(own_dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.split_whitespace() {
            let _ = std::fs::write(leaf.join("cgroup.procs"), pid);
        }
        let want: Vec<String> = CONTROLLERS.iter().map(|c| format!("+{c}")).collect();
        std::fs::write(own_dir.join("cgroup.subtree_control"), want.join(" "))
            .map_err(|e| format!("cgroup v2: cannot enable the controllers in {}: {e}", own_dir.display()))?;
    }
    std::fs::create_dir_all(&parent).map_err(|e| format!("cgroup v2: {}: {e}", parent.display()))?;
    std::fs::write(parent.join("cgroup.subtree_control"), "+memory +cpu +pids")
        .map_err(|e| format!("cgroup v2: cannot enable the controllers in {}: {e}", parent.display()))?;
    Ok(Backend::V2 { parent })
}

fn v1(root: &Path, own: &str, home_id: &str) -> Result<Backend, String> {
    let dir = |controller: &str| -> Result<PathBuf, String> {
        let mount = root.join(controller);
        if !mount.join("cgroup.procs").is_file() {
            return Err(format!("cgroup v1: no {controller} hierarchy mounted at {}", mount.display()));
        }
        let path = own_path(own, |c| c.split(',').any(|x| x == controller)).unwrap_or("/");
        let parent = mount.join(path.trim_start_matches('/')).join(format!("gitvisor-{home_id}"));
        std::fs::create_dir_all(&parent).map_err(|e| format!("cgroup v1: {}: {e}", parent.display()))?;
        Ok(parent)
    };
    Ok(Backend::V1 { memory: dir("memory")?, cpu: dir("cpu")?, pids: dir("pids")? })
}

/// One service's cgroup: a directory per hierarchy (one in v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCgroup {
    pub version: Version,
    dirs: Vec<PathBuf>,
    /// Where the memory controller's files are (v1); v2 has them in its one directory.
    memory: Option<PathBuf>,
}

/// The limits a unit sets, as files and values of `version`.
pub fn limit_files(version: &Version, unit: &Unit) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    match version {
        Version::V2 => {
            if let Some(b) = unit.memory_max {
                out.push(("memory.max", b.to_string()));
            }
            if let Some(p) = unit.cpu_quota {
                out.push(("cpu.max", format!("{} {CPU_PERIOD_US}", u64::from(p) * CPU_PERIOD_US / 100)));
            }
            if let Some(n) = unit.tasks_max {
                out.push(("pids.max", n.to_string()));
            }
        }
        Version::V1 => {
            if let Some(b) = unit.memory_max {
                out.push(("memory.limit_in_bytes", b.to_string()));
            }
            if let Some(p) = unit.cpu_quota {
                out.push(("cpu.cfs_period_us", CPU_PERIOD_US.to_string()));
                out.push(("cpu.cfs_quota_us", (u64::from(p) * CPU_PERIOD_US / 100).to_string()));
            }
            if let Some(n) = unit.tasks_max {
                out.push(("pids.max", n.to_string()));
            }
        }
    }
    out
}

/// The unit sets a limit (and so gets a cgroup).
pub fn has_limits(unit: &Unit) -> bool {
    unit.memory_max.is_some() || unit.cpu_quota.is_some() || unit.tasks_max.is_some()
}

impl ServiceCgroup {
    /// Makes the cgroup (or finds it) and writes the unit's limits; unset ones are lifted.
    pub fn prepare(&self, unit: &Unit) -> Result<(), String> {
        for d in &self.dirs {
            std::fs::create_dir_all(d).map_err(|e| format!("cgroup {}: {e}", d.display()))?;
        }
        let defaults: Vec<(&str, String)> = match self.version {
            Version::V2 => vec![
                ("memory.max", "max".into()),
                ("cpu.max", format!("max {CPU_PERIOD_US}")),
                ("pids.max", "max".into()),
            ],
            Version::V1 => vec![
                ("memory.limit_in_bytes", "-1".into()),
                ("cpu.cfs_quota_us", "-1".into()),
                ("pids.max", "max".into()),
            ],
        };
        let set = limit_files(&self.version, unit);
        let lifted: Vec<(&str, String)> =
            defaults.into_iter().filter(|(f, _)| !set.iter().any(|(s, _)| s == f)).collect();
        for (file, value) in lifted.into_iter().chain(set) {
            let path = self.file(file);
            std::fs::write(&path, &value)
                .map_err(|e| format!("cgroup {}: writing {value}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// Where a controller's file is (v1: the directories are memory's, cpu's, pids').
    fn file(&self, name: &str) -> PathBuf {
        let index = match (&self.version, name.split('.').next()) {
            (Version::V1, Some("cpu")) => 1,
            (Version::V1, Some("pids")) => 2,
            _ => 0,
        };
        self.dirs[index].join(name)
    }

    /// `cgroup.procs` of each hierarchy, open for writing: the child writes `0` to each between
    /// fork and exec, so it runs in the cgroup from its first instruction.
    pub fn join_files(&self) -> Result<Vec<OwnedFd>, String> {
        self.dirs
            .iter()
            .map(|d| {
                let p = d.join("cgroup.procs");
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .map(OwnedFd::from)
                    .map_err(|e| format!("cgroup {}: {e}", p.display()))
            })
            .collect()
    }

    /// Every process in it.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .dirs
            .iter()
            .flat_map(|d| {
                std::fs::read_to_string(d.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Sends `signal` to every process in it; false when there was none.
    pub fn signal_all(&self, signal: i32) -> bool {
        let pids = self.pids();
        for pid in &pids {
            // SAFETY: kill(2); the pids are this service's, read from its cgroup.
            unsafe { libc::kill(*pid as i32, signal) };
        }
        !pids.is_empty()
    }

    /// The peak memory of what ran in it since the last [`ServiceCgroup::reset_peak`], in KiB.
    pub fn peak_kb(&self) -> Option<u64> {
        let (file, dir) = match self.version {
            Version::V2 => ("memory.peak", &self.dirs[0]),
            Version::V1 => ("memory.max_usage_in_bytes", self.memory.as_ref().unwrap_or(&self.dirs[0])),
        };
        let bytes: u64 = std::fs::read_to_string(dir.join(file)).ok()?.trim().parse().ok()?;
        Some(bytes / 1024)
    }

    /// Starts the peak over (v1; v2's `memory.peak` starts with the cgroup, or where the kernel
    /// lets a write reset it).
    pub fn reset_peak(&self) {
        let (file, dir) = match self.version {
            Version::V2 => ("memory.peak", &self.dirs[0]),
            Version::V1 => ("memory.max_usage_in_bytes", self.memory.as_ref().unwrap_or(&self.dirs[0])),
        };
        let _ = std::fs::write(dir.join(file), "0");
    }

    /// OOM kills in it so far.
    pub fn oom_kills(&self) -> u64 {
        let (file, dir) = match self.version {
            Version::V2 => ("memory.events", &self.dirs[0]),
            Version::V1 => ("memory.oom_control", self.memory.as_ref().unwrap_or(&self.dirs[0])),
        };
        parse_oom_kills(&std::fs::read_to_string(dir.join(file)).unwrap_or_default())
    }

    /// Removes it once empty (a cgroup with processes cannot be removed: it stays, and the next
    /// start reuses it).
    pub fn remove(&self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }

    pub fn describe(&self) -> String {
        let v = match self.version {
            Version::V1 => "v1",
            Version::V2 => "v2",
        };
        format!("cgroup {v} {}", self.dirs[0].display())
    }
}

/// The `oom_kill N` line of `memory.events` (v2) or `memory.oom_control` (v1).
pub fn parse_oom_kills(text: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok())).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::units::test_service as unit;

    /// A v2 tree as the kernel shows a delegated subtree: the engine in `/user.slice/app`.
    fn fake_v2(controllers: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let own = root.path().join("user.slice/app");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), controllers).unwrap();
        std::fs::write(own.join("cgroup.controllers"), controllers).unwrap();
        std::fs::write(own.join("cgroup.subtree_control"), "").unwrap();
        std::fs::write(own.join("cgroup.procs"), "4242\n").unwrap();
        root
    }

    #[test]
    fn v2_in_a_delegated_subtree_moves_the_engine_to_a_leaf_and_writes_the_limits() {
        let root = fake_v2("cpuset cpu io memory pids");
        let b = Backend::detect(root.path(), "0::/user.slice/app\n", "h1").unwrap();
        let own = root.path().join("user.slice/app");
        assert_eq!(b, Backend::V2 { parent: own.join("gitvisor-h1") });
        assert_eq!(std::fs::read_to_string(own.join("gitvisor-engine/cgroup.procs")).unwrap(), "4242");
        assert_eq!(
            std::fs::read_to_string(own.join("cgroup.subtree_control")).unwrap(),
            "+memory +cpu +pids"
        );
        let cg = b.cgroup("web@8080");
        cg.prepare(&unit("MemoryMax=64M\nCPUQuota=20%\nTasksMax=5")).unwrap();
        let dir = own.join("gitvisor-h1/web@8080");
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(
            (read("memory.max"), read("cpu.max"), read("pids.max")),
            ("67108864".into(), "20000 100000".into(), "5".into())
        );
        // A limit removed by a new version is lifted.
        cg.prepare(&unit("MemoryMax=64M")).unwrap();
        assert_eq!((read("cpu.max"), read("pids.max")), ("max 100000".into(), "max".into()));
        std::fs::write(dir.join("memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n").unwrap();
        assert_eq!(cg.oom_kills(), 1);
        std::fs::write(dir.join("cgroup.procs"), "10\n11\n").unwrap();
        assert_eq!(cg.pids(), [10, 11]);
        assert_eq!(cg.join_files().unwrap().len(), 1);
    }

    #[test]
    fn without_the_controllers_limits_are_not_enforced_and_the_reason_is_said() {
        let root = fake_v2("cpuset io");
        let err = Backend::detect(root.path(), "0::/user.slice/app\n", "h1").unwrap_err();
        assert!(err.starts_with("no usable cgroup: cgroup v2 offers no memory, cpu, pids controller here; cgroup v1: no memory hierarchy mounted at"), "{err}");
    }

    #[test]
    fn v1_hierarchies_get_a_cgroup_each() {
        let root = tempfile::tempdir().unwrap();
        for c in ["memory", "cpu", "pids"] {
            std::fs::create_dir_all(root.path().join(c).join("sub")).unwrap();
            std::fs::write(root.path().join(c).join("cgroup.procs"), "").unwrap();
        }
        let own = "4:memory:/sub\n2:cpu,cpuacct:/\n8:pids:/\n0::/\n";
        let b = Backend::detect(root.path(), own, "h2").unwrap();
        assert_eq!(b.version(), Version::V1);
        let cg = b.cgroup("db");
        cg.prepare(&unit("MemoryMax=1G\nCPUQuota=150%")).unwrap();
        let read = |p: &str| std::fs::read_to_string(root.path().join(p)).unwrap();
        assert_eq!(read("memory/sub/gitvisor-h2/db/memory.limit_in_bytes"), "1073741824");
        assert_eq!(read("cpu/gitvisor-h2/db/cpu.cfs_quota_us"), "150000");
        assert_eq!(read("cpu/gitvisor-h2/db/cpu.cfs_period_us"), "100000");
        assert_eq!(read("pids/gitvisor-h2/db/pids.max"), "max");
        std::fs::write(
            root.path().join("memory/sub/gitvisor-h2/db/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills(), 2);
        // The kernel makes cgroup.procs with the directory; the fake tree is told.
        for c in ["memory/sub", "cpu", "pids"] {
            std::fs::write(root.path().join(c).join("gitvisor-h2/db/cgroup.procs"), "").unwrap();
        }
        assert_eq!(cg.join_files().unwrap().len(), 3);
    }

    #[test]
    fn home_ids_are_stable_and_distinct() {
        assert_eq!(
            home_id(Path::new("/home/a/.local/share/gitvisor")),
            home_id(Path::new("/home/a/.local/share/gitvisor"))
        );
        assert_ne!(home_id(Path::new("/tmp/h1")), home_id(Path::new("/tmp/h2")));
        assert_eq!(home_id(Path::new("/x")).len(), 12);
    }
}
