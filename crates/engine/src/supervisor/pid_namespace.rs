//! `PrivatePIDs=` (systemd.exec(5)): the service's program runs as PID 1 of a new PID namespace,
//! with a /proc of its own (so it sees only its processes), in a private mount namespace.
//!
//! `unshare(CLONE_NEWPID)` moves only the caller's future children into the new namespace, so
//! the process the engine started (and watches: its main process) stays outside as a shim: it
//! forks the namespace's PID 1, which goes on to exec the program, then waits for it, passes on
//! the signals it gets, and ends as it ended (the same exit status, or killed by the same
//! signal). When PID 1 ends, the kernel kills the rest of the namespace.
//!
//! As in systemd, the program is PID 1: a signal reaches it only if it handles that signal
//! (SIGKILL always does), so a program that ignores SIGTERM as PID 1 is killed after
//! `TimeoutStopSec=`.
//!
//! Everything here runs between fork and exec of a multi-threaded engine: only async-signal-
//! safe calls, no allocation.

use std::io;
use std::sync::atomic::{AtomicI32, Ordering};

/// The namespace's PID 1, as the shim's signal handler sees it.
static CHILD: AtomicI32 = AtomicI32::new(0);

/// Signals the shim passes on to PID 1 (what a stop or a reload sends, and the job-control and
/// user signals a program may use).
const FORWARDED: [i32; 9] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGABRT,
];

extern "C" fn forward(sig: libc::c_int) {
    let child = CHILD.load(Ordering::Relaxed);
    if child > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(child, sig) };
    }
}

/// Called in the forked child before exec: returns in the namespace's PID 1 (which then execs
/// the program); never returns in the shim.
///
/// # Safety
/// Only between fork and exec.
pub unsafe fn enter() -> io::Result<()> {
    // SAFETY: plain syscalls between fork and exec.
    unsafe {
        if libc::unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS) < 0 {
            return Err(io::Error::last_os_error());
        }
        let pid = libc::fork();
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid > 0 {
            shim(pid);
        }
        // PID 1 of the new namespace: mounts made here stay here; a /proc of its own.
        let none = c"none";
        if libc::mount(
            none.as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) < 0
        {
            return Err(io::Error::last_os_error());
        }
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        if libc::mount(c"proc".as_ptr(), c"/proc".as_ptr(), c"proc".as_ptr(), flags, std::ptr::null()) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The shim's life: pass signals on to `child`, wait for it, end as it did.
unsafe fn shim(child: libc::pid_t) -> ! {
    // SAFETY: async-signal-safe calls only; the handler reads an atomic and calls kill(2).
    unsafe {
        CHILD.store(child, Ordering::Relaxed);
        // The descriptors the shim inherited (among them std's exec-error pipe, which the
        // engine reads until every copy is closed) are PID 1's business, not the shim's.
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) < 0 {
            for fd in 3..1024 {
                libc::close(fd);
            }
        }
        for sig in FORWARDED {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = forward as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
        let mut status: libc::c_int = 0;
        loop {
            let r = libc::waitpid(child, &mut status, 0);
            if r == child {
                break;
            }
            if r < 0 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(255);
            }
        }
        if libc::WIFSIGNALED(status) {
            // Die of the same signal, so the engine sees the service's end as it was.
            let sig = libc::WTERMSIG(status);
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &action, std::ptr::null_mut());
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), sig);
            libc::_exit(128 + sig);
        }
        libc::_exit(libc::WEXITSTATUS(status));
    }
}
