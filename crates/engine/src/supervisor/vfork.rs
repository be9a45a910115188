//! The common start of a service's process: a vfork-style clone that shares the engine's memory
//! until the program is exec'd, runs on a stack kept from one start to the next, and hands back
//! a pidfd made by the clone itself.
//!
//! Why not glibc's `posix_spawn`, which does the same: it maps and unmaps a stack for every
//! child (the unmap flushes the TLB of every CPU the engine's threads ran on) and returns a pid,
//! so a pidfd costs another system call; in a restart loop those were a tenth of the engine's
//! CPU (docs/benchmarks.md).
//!
//! What runs in the child is limited to plain system calls through libc: it shares the engine's
//! memory (and its thread's TLS) while the engine's thread is suspended, so it must not allocate,
//! lock or run Rust code that could unwind.

use std::ffi::CStr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Mutex;

/// What the child needs, all resolved and laid out before the clone.
pub struct Exec<'a> {
    pub program: &'a CStr,
    /// NUL-terminated arrays of pointers into C strings that outlive the call.
    pub argv: &'a [*const libc::c_char],
    pub envp: &'a [*const libc::c_char],
    pub cwd: &'a CStr,
    /// Become stdout and stderr.
    pub out: i32,
    pub err: i32,
}

struct Child<'a> {
    exec: &'a Exec<'a>,
    /// The errno of the step that failed, written by the child before it exits.
    failed: i32,
}

const STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);

/// One stack for every start; a start that finds it in use (another thread starting a process
/// at the same moment) takes a fresh one.
static STACK: Mutex<Option<Box<Stack>>> = Mutex::new(None);

/// Starts `exec` in its own session, with /dev/null as stdin, every signal at its default and
/// none blocked. Returns the child's pid and its pidfd once the program runs, or the errno of
/// what failed (the child was reaped).
pub fn spawn(exec: &Exec) -> Result<(u32, OwnedFd), i32> {
    let mut kept = STACK.try_lock().ok();
    let mut fresh: Option<Box<Stack>> = None;
    let stack: &mut Stack = match kept.as_deref_mut() {
        Some(slot) => slot.get_or_insert_with(new_stack),
        None => fresh.insert(new_stack()),
    };
    let mut child = Child { exec, failed: 0 };
    let mut pidfd: libc::c_int = -1;
    // SAFETY: the stack outlives the child's use of it (CLONE_VFORK suspends this thread until
    // the child has exec'd or exited, and the stack is held until then); the child only reads
    // `child` and writes its `failed`, which this thread reads after the clone returned. All
    // signals are blocked across the clone, so no handler of the engine's runs on the child's
    // stack before the child has reset them.
    let pid = unsafe {
        let mut old: u64 = 0;
        set_mask(ALL_SIGNALS, Some(&mut old));
        let top = stack.0.as_mut_ptr().add(STACK_SIZE).cast::<libc::c_void>();
        let pid = libc::clone(
            run_child,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
            std::ptr::addr_of_mut!(child).cast(),
            std::ptr::addr_of_mut!(pidfd),
        );
        let clone_errno = *libc::__errno_location();
        set_mask(old, None);
        if pid < 0 {
            return Err(clone_errno);
        }
        pid
    };
    // SAFETY: CLONE_PIDFD stored a new descriptor that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    // The child wrote `failed` before exiting, and this thread was suspended until then.
    let failed = unsafe { std::ptr::read_volatile(&child.failed) };
    if failed != 0 {
        // It exited with 127: reap it, as posix_spawn does.
        let mut status = 0;
        // SAFETY: plain system call on our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        return Err(failed);
    }
    Ok((pid as u32, pidfd))
}

/// Every signal, glibc's own two (thread cancellation, set*id) included: `sigfillset` and
/// `pthread_sigmask` leave those out, and a handler of either must not run on the child's stack.
const ALL_SIGNALS: u64 = !0;

/// The calling thread's signal mask, through the system call itself (see [`ALL_SIGNALS`]).
///
/// # Safety
/// A plain system call; the caller restores the mask it replaced.
unsafe fn set_mask(mask: u64, old: Option<&mut u64>) {
    let old = old.map_or(std::ptr::null_mut(), |o| o as *mut u64);
    // SAFETY: the kernel reads `mask` and writes `old`, both valid; its sigset is 64 bits on
    // every architecture gitvisor builds for.
    unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &mask as *const u64, old, 8usize) };
}

fn new_stack() -> Box<Stack> {
    Box::new(Stack([0; STACK_SIZE]))
}

/// The child, between the clone and the exec: system calls only, made directly rather than
/// through glibc's wrappers, which as cancellation points touch the thread's state (the engine
/// thread's, shared here).
extern "C" fn run_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Child` of the suspended parent, alive until this returns or execs.
    let child = unsafe { &mut *arg.cast::<Child>() };
    let exec = child.exec;
    // SAFETY: plain system calls on values prepared by the parent.
    unsafe {
        // Default dispositions first: this process shares the engine's memory, so none of its
        // handlers may run here; then a fresh process's empty mask. Through the system call:
        // glibc's wrapper refuses its own two signals. The kernel's struct sigaction of SIG_DFL,
        // no flags and an empty mask is all zeros, whatever the architecture's field order.
        let dfl = [0u64; 4];
        for sig in 1..=64 {
            // SIGKILL and SIGSTOP refuse; nothing to do for them.
            libc::syscall(libc::SYS_rt_sigaction, sig, dfl.as_ptr(), std::ptr::null_mut::<u64>(), 8usize);
        }
        // `syscall` returns -1 and sets errno on failure: the parent is told which, and this
        // process ends (`_exit` is the exit_group system call itself, no handlers run).
        fn failed(child: &mut Child) -> ! {
            // SAFETY: errno is this thread's; `_exit` has no preconditions.
            unsafe {
                std::ptr::write_volatile(&mut child.failed, (*libc::__errno_location()).max(1));
                libc::_exit(127)
            }
        }
        // Own session (and so process group).
        if libc::syscall(libc::SYS_setsid) < 0 {
            failed(child);
        }
        let null = libc::syscall(libc::SYS_openat, libc::AT_FDCWD, c"/dev/null".as_ptr(), libc::O_RDONLY);
        if null < 0 {
            failed(child);
        }
        if null != 0 {
            if libc::syscall(libc::SYS_dup3, null, 0, 0) < 0 {
                failed(child);
            }
            libc::syscall(libc::SYS_close, null);
        }
        for (from, to) in [(exec.out, 1), (exec.err, 2)] {
            // Onto itself, dup3 refuses: clearing close-on-exec is what it would do.
            let done = if from == to {
                libc::syscall(libc::SYS_fcntl, from, libc::F_SETFD, 0)
            } else {
                libc::syscall(libc::SYS_dup3, from, to, 0)
            };
            if done < 0 {
                failed(child);
            }
        }
        if libc::syscall(libc::SYS_chdir, exec.cwd.as_ptr()) < 0 {
            failed(child);
        }
        set_mask(0, None);
        libc::syscall(libc::SYS_execve, exec.program.as_ptr(), exec.argv.as_ptr(), exec.envp.as_ptr());
        failed(child)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    struct Started {
        pid: u32,
        pidfd: OwnedFd,
        out: String,
        err: String,
    }

    fn start(argv: &[&str], env: &[&str], cwd: &std::path::Path) -> Result<Started, i32> {
        let c = |s: &str| CString::new(s).unwrap();
        let argv: Vec<CString> = argv.iter().map(|a| c(a)).collect();
        let env: Vec<CString> = env.iter().map(|a| c(a)).collect();
        let ptrs = |v: &[CString]| v.iter().map(|s| s.as_ptr()).chain([std::ptr::null()]).collect::<Vec<_>>();
        let (argv_p, env_p) = (ptrs(&argv), ptrs(&env));
        let cwd = c(cwd.to_str().unwrap());
        let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let exec = Exec {
            program: &argv[0],
            argv: &argv_p,
            envp: &env_p,
            cwd: &cwd,
            out: out_w.as_raw_fd(),
            err: err_w.as_raw_fd(),
        };
        let (pid, pidfd) = spawn(&exec)?;
        drop((out_w, err_w));
        let mut out = String::new();
        std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
        let mut err = String::new();
        std::fs::File::from(err_r).read_to_string(&mut err).unwrap();
        Ok(Started { pid, pidfd, out, err })
    }

    #[test]
    fn a_program_starts_in_a_fresh_state_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        // This test process ignores SIGPIPE (Rust's runtime does) and may block signals: the
        // program must see neither.
        let script = "grep -E '^Sig(Blk|Ign)' /proc/self/status; \
                      echo sid=$(cut -d' ' -f6 /proc/self/stat) pid=$$; \
                      pwd; env; cat; echo oops >&2";
        let s = start(&["/bin/sh", "-c", script], &["ONLY=this"], dir.path()).unwrap();
        let lines: Vec<&str> = s.out.lines().collect();
        assert!(lines.contains(&"SigBlk:\t0000000000000000"), "{}", s.out);
        assert!(lines.contains(&"SigIgn:\t0000000000000000"), "{}", s.out);
        let sid = lines.iter().find(|l| l.starts_with("sid=")).unwrap();
        assert_eq!(*sid, format!("sid={0} pid={0}", s.pid), "its own session");
        assert!(lines.contains(&dir.path().canonicalize().unwrap().to_str().unwrap()), "{}", s.out);
        assert!(lines.contains(&"ONLY=this"), "{}", s.out);
        assert!(!s.out.contains("HOME="), "the environment is only what was given: {}", s.out);
        assert_eq!(s.err, "oops\n");
        // The pidfd is the process's: it turns readable at the exit, and the exit status is 0
        // (`cat` read /dev/null to its end).
        let mut poll = [libc::pollfd { fd: s.pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        // SAFETY: plain system call on a local array.
        assert_eq!(unsafe { libc::poll(poll.as_mut_ptr(), 1, 20_000) }, 1);
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(s.pid as i32), None).unwrap();
        assert_eq!(status, nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(s.pid as i32), 0));
    }

    #[test]
    fn what_fails_before_the_program_runs_is_its_errno() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(start(&["/nonexistent/program"], &[], dir.path()).err(), Some(libc::ENOENT));
        assert_eq!(start(&["/bin/true"], &[], &dir.path().join("gone")).err(), Some(libc::ENOENT));
        let not_executable = dir.path().join("data");
        std::fs::write(&not_executable, "x").unwrap();
        assert_eq!(start(&[not_executable.to_str().unwrap()], &[], dir.path()).err(), Some(libc::EACCES));
        // Many starts reuse one stack: still each its own process.
        let pids: std::collections::HashSet<u32> =
            (0..50).map(|_| start(&["/bin/true"], &[], dir.path()).unwrap().pid).collect();
        assert_eq!(pids.len(), 50);
    }
}
