//! Starting a service's process: argv from the unit (never through a shell), a clean
//! environment, its working directory, its own session and process group, optional user and
//! group, stdout and stderr into pipes whose read ends go to the log keeper.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use gitvisor_units::{env_file, ExecCommand, Unit};
use nix::unistd::{Gid, Group, Uid, User};

/// Everything needed to start a command of a unit, resolved before forking.
#[derive(Debug)]
pub struct SpawnSpec {
    pub program: PathBuf,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub credentials: Option<Credentials>,
    /// `cgroup.procs` files the child joins (writes `0` to) before exec.
    pub join: Vec<std::os::fd::OwnedFd>,
    /// What was skipped on the way (lines of environment files), for the service's log.
    pub warnings: Vec<String>,
    /// `PrivatePIDs=`, where PID namespaces can be made: the program runs as PID 1 of a new
    /// PID namespace with its own /proc.
    pub private_pids: bool,
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

pub struct Spawned {
    pub pid: u32,
    pub start_time: u64,
    pub out: OwnedFd,
    pub err: OwnedFd,
    /// Made with the process, when the way it was started gives one.
    pub pidfd: Option<OwnedFd>,
}

/// Resolves `command` of `unit` into a spec. Errors are one line for the user.
pub fn prepare(
    unit: &Unit,
    command: &ExecCommand,
    service: &str,
    extra_env: &[(&str, String)],
) -> Result<SpawnSpec, String> {
    // `+`/`!`: the engine's own credentials, whatever User=/Group= say.
    let credentials = if command.privileged { None } else { credentials(unit)? };
    let (home, user_name) = match &credentials {
        Some(c) => home_and_name(User::from_uid(Uid::from_raw(c.uid)).ok().flatten()),
        None => engine_user().clone(),
    };

    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())),
        ("HOME".into(), home.display().to_string()),
        ("USER".into(), user_name),
        ("LANG".into(), std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into())),
        ("GITVISOR_SERVICE".into(), service.to_string()),
    ];
    for (k, v) in extra_env {
        set(&mut env, k, v.clone());
    }
    // systemd's order: PassEnvironment= lowest, then Environment=, then EnvironmentFile=
    // (each file over the earlier ones), UnsetEnvironment= last.
    for name in &unit.pass_environment {
        if let Ok(v) = std::env::var(name) {
            set(&mut env, name, v);
        }
    }
    for (k, v) in &unit.environment {
        set(&mut env, k, v.clone());
    }
    let mut warnings = Vec::new();
    for file in &unit.environment_files {
        match std::fs::read(&file.path) {
            Ok(bytes) => {
                // A `.env` file's `${VAR}` sees what is defined so far: Environment=, earlier
                // files, the base environment.
                let dialect = env_file::Dialect::of(&file.path);
                let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
                let parsed = env_file::parse(dialect, &bytes, &lookup)
                    .map_err(|e| format!("EnvironmentFile {}: {e}", file.path.display()))?;
                for var in parsed.vars {
                    set(&mut env, &var.name, var.value);
                }
                let at = file.path.display();
                warnings.extend(parsed.warnings.into_iter().map(|w| format!("EnvironmentFile {at}: {w}")));
            }
            Err(e) if file.optional && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("EnvironmentFile {}: {e}", file.path.display())),
        }
    }

    for unset in &unit.unset_environment {
        match unset.split_once('=') {
            Some((k, v)) => env.retain(|(ek, ev)| !(ek == k && ev == v)),
            None => env.retain(|(ek, _)| ek != unset),
        }
    }

    // Without WorkingDirectory=, the user's home, or `/` when it does not exist (`nobody`'s is
    // /nonexistent): systemd lets the default be missing.
    let cwd = unit.working_directory.clone().unwrap_or_else(|| {
        if home.is_dir() {
            home.clone()
        } else {
            PathBuf::from("/")
        }
    });
    // The working directory and a program named by its path are checked when the start fails
    // (`diagnose`), not before every start: a restart loop paid a stat for each.
    let argv0 = command.argv.first().ok_or("empty command")?;
    let path = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str()).unwrap_or("");
    let program = resolve_program(argv0, path, &cwd)?;
    let mut argv = if command.substitute { substitute(&command.argv, &env) } else { command.argv.clone() };
    // `@`: what the program sees as its name.
    if let Some(arg0) = &command.arg0 {
        argv[0].clone_from(arg0);
    }
    let private_pids = unit.private_pids && pid_namespaces().is_ok();
    Ok(SpawnSpec { program, argv, env, cwd, credentials, join: Vec::new(), warnings, private_pids })
}

/// Whether this engine can give a service its own PID namespace (it needs CAP_SYS_ADMIN: root
/// outside a restricted container); why not. Tried once, by starting `true` in one.
pub fn pid_namespaces() -> Result<(), String> {
    static PROBE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    PROBE
        .get_or_init(|| {
            let mut cmd = Command::new("true");
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            // SAFETY: unshare(2) only, between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            match cmd.status() {
                Ok(_) => Ok(()),
                Err(e) => Err(format!(
                    "this engine cannot make PID namespaces ({e}; it needs CAP_SYS_ADMIN, e.g. root)"
                )),
            }
        })
        .clone()
}

fn home_and_name(user: Option<User>) -> (PathBuf, String) {
    let home = user
        .as_ref()
        .map(|u| u.dir.clone())
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/"));
    let name = user.map(|u| u.name).or_else(|| std::env::var("USER").ok()).unwrap_or_default();
    (home, name)
}

/// The engine's own user, looked up once (a start reads no /etc/passwd).
fn engine_user() -> &'static (PathBuf, String) {
    static USER: std::sync::OnceLock<(PathBuf, String)> = std::sync::OnceLock::new();
    USER.get_or_init(|| home_and_name(User::from_uid(Uid::current()).ok().flatten()))
}

fn set(env: &mut Vec<(String, String)>, key: &str, value: String) {
    match env.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => env.push((key.to_string(), value)),
    }
}

/// systemd's substitution in a command line (systemd.service(5), "Command lines"), from the
/// environment the process gets: `${VAR}` within or as a word becomes the value exactly (an
/// unset one, nothing), `$VAR` as a word of its own becomes the value split at whitespace (zero
/// or more words), `$$` becomes `$`. Any other `$` stays. The program (the first word) is never
/// substituted, as systemd does.
pub fn substitute(argv: &[String], env: &[(String, String)]) -> Vec<String> {
    let get = |name: &str| env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let is_name = |s: &str| {
        s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut out = Vec::with_capacity(argv.len());
    for (i, word) in argv.iter().enumerate() {
        if i == 0 {
            out.push(word.clone());
            continue;
        }
        if let Some(name) = word.strip_prefix('$').filter(|n| is_name(n)) {
            out.extend(get(name).unwrap_or("").split_whitespace().map(str::to_string));
            continue;
        }
        let mut w = String::with_capacity(word.len());
        let mut rest = word.as_str();
        while let Some(at) = rest.find('$') {
            w.push_str(&rest[..at]);
            rest = &rest[at..];
            if let Some(after) = rest.strip_prefix("$$") {
                w.push('$');
                rest = after;
            } else if let Some((name, after)) =
                rest.strip_prefix("${").and_then(|r| r.split_once('}')).filter(|(n, _)| is_name(n))
            {
                w.push_str(get(name).unwrap_or(""));
                rest = after;
            } else {
                w.push('$');
                rest = &rest[1..];
            }
        }
        w.push_str(rest);
        out.push(w);
    }
    out
}

/// A regular file someone may execute.
fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn resolve_program(argv0: &str, path: &str, cwd: &Path) -> Result<PathBuf, String> {
    if argv0.contains('/') {
        return Ok(if Path::new(argv0).is_absolute() { PathBuf::from(argv0) } else { cwd.join(argv0) });
    }
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(argv0))
        .find(|p| executable(p))
        .ok_or_else(|| format!("ExecStart: {argv0} not found in PATH ({path})"))
}

fn credentials(unit: &Unit) -> Result<Option<Credentials>, String> {
    if unit.user.is_none() && unit.group.is_none() {
        return Ok(None);
    }
    let user = match &unit.user {
        Some(name) => Some(lookup_user(name)?),
        None => None,
    };
    let gid = match (&unit.group, &user) {
        (Some(g), _) => lookup_group(g)?,
        (None, Some(u)) => u.gid.as_raw(),
        (None, None) => Gid::current().as_raw(),
    };
    let uid = user.as_ref().map(|u| u.uid.as_raw()).unwrap_or_else(|| Uid::current().as_raw());
    if !Uid::effective().is_root() {
        if uid != Uid::current().as_raw() || gid != Gid::current().as_raw() {
            return Err(
                "User=/Group= differ from the engine's user, which only works when gitvisor runs as root"
                    .into(),
            );
        }
        return Ok(None);
    }
    let groups = match &user {
        Some(u) => {
            let name = CString::new(u.name.as_bytes()).map_err(|_| "User: invalid name".to_string())?;
            nix::unistd::getgrouplist(&name, Gid::from_raw(gid))
                .map_err(|e| format!("User {}: cannot list its groups: {e}", u.name))?
                .into_iter()
                .map(Gid::as_raw)
                .collect()
        }
        None => vec![gid],
    };
    Ok(Some(Credentials { uid, gid, groups }))
}

fn lookup_user(name: &str) -> Result<User, String> {
    let found = match name.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)),
        Err(_) => User::from_name(name),
    };
    found.ok().flatten().ok_or_else(|| format!("User={name}: no such user"))
}

fn lookup_group(name: &str) -> Result<u32, String> {
    let found = match name.parse::<u32>() {
        Ok(gid) => Group::from_gid(Gid::from_raw(gid)),
        Err(_) => Group::from_name(name),
    };
    found.ok().flatten().map(|g| g.gid.as_raw()).ok_or_else(|| format!("Group={name}: no such group"))
}

/// Starts the process. Returns once the program has been exec'd (or failed to).
pub fn spawn(spec: &SpawnSpec) -> Result<Spawned, String> {
    let (out_r, out_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let (err_r, err_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    // The vfork path runs nothing of ours in the child: joining a cgroup needs the fork path.
    let before = boot_ticks();
    let started = if spec.credentials.is_none() && spec.join.is_empty() && !spec.private_pids {
        vfork_spawn(spec, out_w.as_raw_fd(), err_w.as_raw_fd()).map(|(pid, pidfd)| (pid, Some(pidfd)))
    } else {
        fork_exec(spec, out_w, err_w).map(|pid| (pid, None))
    };
    let (pid, pidfd) = started.map_err(|e| diagnose(spec).unwrap_or(e))?;
    let after = boot_ticks();
    // The kernel's start time is the clock tick (since boot) of the fork, which happened
    // between the two readings: when they agree, that is it. Reading /proc/PID/stat costs more
    // than the rest of a restart's bookkeeping (a fresh /proc entry, while the child execs).
    let start_time = match (before, after) {
        (Some(b), Some(a)) if b == a => b,
        _ => super::process::start_time(pid).unwrap_or(0),
    };
    Ok(Spawned { pid, start_time, out: out_r, err: err_r, pidfd })
}

/// Why a start failed, in the unit's terms, when it is its working directory or its program.
fn diagnose(spec: &SpawnSpec) -> Option<String> {
    match std::fs::metadata(&spec.cwd) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Some(format!("WorkingDirectory {} is not a directory", spec.cwd.display())),
        Err(e) => return Some(format!("WorkingDirectory {}: {e}", spec.cwd.display())),
    }
    (!executable(&spec.program))
        .then(|| format!("ExecStart: {} is not an executable file", spec.program.display()))
}

/// CLOCK_BOOTTIME in the clock ticks `/proc/PID/stat` counts a start time in (`USER_HZ`).
fn boot_ticks() -> Option<u64> {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) } != 0 {
        return None;
    }
    // SAFETY: sysconf has no preconditions.
    let hz = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        n if n > 0 => n as u64,
        _ => return None,
    };
    let ns = u64::try_from(now.tv_sec).ok()? * 1_000_000_000 + u64::try_from(now.tv_nsec).ok()?;
    Some(ns / (1_000_000_000 / hz))
}

/// The common case: a vfork-style clone that does not copy the engine's page tables, so a
/// restart costs little more than the exec itself (see `vfork.rs`).
fn vfork_spawn(spec: &SpawnSpec, out: i32, err: i32) -> Result<(u32, OwnedFd), String> {
    let cstr = |s: &[u8]| CString::new(s).map_err(|_| "a NUL byte in the command or environment".to_string());
    let program = cstr(spec.program.as_os_str().as_bytes())?;
    let argv: Vec<CString> = spec.argv.iter().map(|a| cstr(a.as_bytes())).collect::<Result<_, _>>()?;
    let envp: Vec<CString> =
        spec.env.iter().map(|(k, v)| cstr(format!("{k}={v}").as_bytes())).collect::<Result<_, _>>()?;
    let cwd = cstr(spec.cwd.as_os_str().as_bytes())?;
    let pointers = |v: &[CString]| v.iter().map(|c| c.as_ptr()).chain([std::ptr::null()]).collect::<Vec<_>>();
    let (argv_p, envp_p) = (pointers(&argv), pointers(&envp));
    let exec = super::vfork::Exec { program: &program, argv: &argv_p, envp: &envp_p, cwd: &cwd, out, err };
    super::vfork::spawn(&exec).map_err(|errno| {
        format!("cannot start {}: {}", spec.program.display(), std::io::Error::from_raw_os_error(errno))
    })
}

/// With credentials to drop, a cgroup to join or a PID namespace to make: fork, then those
/// before exec.
fn fork_exec(spec: &SpawnSpec, out_w: OwnedFd, err_w: OwnedFd) -> Result<u32, String> {
    let mut cmd = Command::new(&spec.program);
    cmd.arg0(OsStr::from_bytes(spec.argv[0].as_bytes()))
        .args(&spec.argv[1..])
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w));
    let creds = spec.credentials.clone();
    let join: Vec<i32> = spec.join.iter().map(|f| f.as_raw_fd()).collect();
    let private_pids = spec.private_pids;
    // SAFETY: between fork and exec only async-signal-safe calls: write, setsid, unshare,
    // fork, mount, setgroups, setgid, setuid. Everything they need was resolved before the fork.
    unsafe {
        cmd.pre_exec(move || {
            // Into the service's cgroup first: everything it runs is held and limited.
            for fd in &join {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // Own session and process group: stop signals the whole group, and the service
            // never receives the terminal's signals meant for the engine.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // PrivatePIDs=: from here on in PID 1 of a new namespace (the process the engine
            // started stays outside as its shim), still with the privilege it needs.
            if private_pids {
                super::pid_namespace::enter()?;
            }
            if let Some(c) = &creds {
                // Supplementary groups, then gid, then uid: each step needs the privilege the
                // next one drops.
                let groups: Vec<libc::gid_t> = c.groups.clone();
                if libc::setgroups(groups.len(), groups.as_ptr()) < 0
                    || libc::setgid(c.gid) < 0
                    || libc::setuid(c.uid) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", spec.program.display()))?;
    let pid = child.id();
    // The Child is dropped without waiting: exit is collected through the pidfd (`process.rs`).
    drop(child);
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_substitute_as_systemd_does() {
        // systemd.service(5)'s examples: Environment="ONE=one" 'TWO=two two' and
        // ExecStart=echo $ONE $TWO ${TWO} → "echo" "one" "two" "two" "two two".
        let env = vec![("ONE".to_string(), "one".to_string()), ("TWO".to_string(), "two two".to_string())];
        let argv = |s: &[&str]| s.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(
            substitute(&argv(&["/bin/echo", "$ONE", "$TWO", "${TWO}"]), &env),
            argv(&["/bin/echo", "one", "two", "two", "two two"])
        );
        // Inside a word only ${…} is substituted; $$ is a literal $; unset is empty.
        assert_eq!(
            substitute(&argv(&["/bin/sh", "-c", "test \"$$VAR1\" = x${ONE}y$TWO ${NOPE}. $1 $"]), &env),
            argv(&["/bin/sh", "-c", "test \"$VAR1\" = xoney$TWO . $1 $"])
        );
        // An unset $VAR as a word of its own is no word at all; the program is never substituted.
        assert_eq!(substitute(&argv(&["$ONE", "$NOPE", "a"]), &env), argv(&["$ONE", "a"]));
        assert_eq!(
            substitute(&argv(&["/bin/x", "${unterminated"]), &env),
            argv(&["/bin/x", "${unterminated"])
        );
    }

    #[test]
    fn a_spawned_process_start_time_is_the_kernels() {
        // Many spawns, so that some fall on a tick boundary and take the /proc path, and most
        // are told by the clock: each must equal what the kernel says.
        let mut by_clock = 0;
        for _ in 0..200 {
            let name = gitvisor_units::UnitName::parse("t.service").unwrap();
            let exec = ExecCommand { argv: vec!["/bin/true".into()], ..ExecCommand::default() };
            let unit = Unit::new(name, exec);
            let spec = prepare(&unit, &unit.exec_start, "t", &[]).unwrap();
            let before = boot_ticks().expect("CLOCK_BOOTTIME");
            let sp = spawn(&spec).unwrap();
            let after = boot_ticks().unwrap();
            let kernel = crate::supervisor::process::start_time(sp.pid).unwrap();
            assert_eq!(sp.start_time, kernel, "pid {}", sp.pid);
            by_clock += usize::from(before == after && kernel == before);
            nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(sp.pid as i32), None).unwrap();
        }
        // Ticks are 10 ms and a spawn well under one: most starts are told by the clock.
        assert!(by_clock > 100, "only {by_clock} of 200 starts fell within one tick");
    }

    #[test]
    fn programs_resolve_through_path() {
        assert_eq!(
            resolve_program("sh", "/nonexistent:/bin", Path::new("/")).unwrap(),
            PathBuf::from("/bin/sh")
        );
        assert!(resolve_program("no-such-program-xyz", "/bin", Path::new("/"))
            .unwrap_err()
            .contains("not found in PATH"));
        // A program named by its path is checked when its start fails.
        assert_eq!(resolve_program("/etc/passwd", "", Path::new("/")).unwrap(), PathBuf::from("/etc/passwd"));
    }

    #[test]
    fn a_start_that_fails_says_what_of_the_unit_made_it_fail() {
        let dir = tempfile::tempdir().unwrap();
        let start = |program: &str, cwd: &Path| {
            let name = gitvisor_units::UnitName::parse("t.service").unwrap();
            let mut unit =
                Unit::new(name, ExecCommand { argv: vec![program.into()], ..ExecCommand::default() });
            unit.working_directory = Some(cwd.to_path_buf());
            let spec = prepare(&unit, &unit.exec_start, "t", &[]).unwrap();
            spawn(&spec).map(|sp| sp.pid).unwrap_err()
        };
        assert_eq!(start("/etc/passwd", dir.path()), "ExecStart: /etc/passwd is not an executable file");
        assert_eq!(
            start("/nonexistent/program", dir.path()),
            "ExecStart: /nonexistent/program is not an executable file"
        );
        let gone = dir.path().join("gone");
        assert_eq!(
            start("/bin/true", &gone),
            format!("WorkingDirectory {}: No such file or directory (os error 2)", gone.display())
        );
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert_eq!(
            start("/bin/true", &file),
            format!("WorkingDirectory {} is not a directory", file.display())
        );
    }
}
