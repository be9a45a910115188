//! The tray app's memory (release build): hidden in the tray, with its window open, hidden again
//! after the window is closed, next to `gitvisor daemon` alone on the same ten services.
//!
//! The app runs on its own virtual display (Xvfb) and private session bus (dbus-daemon), as in
//! the end-to-end tests. The window is opened the way a user opens it a second time: launching
//! the app again, whose single-instance hand-off shows the first one's window. It is closed the
//! way a window manager's close button closes it: a WM_DELETE_WINDOW message (through libX11,
//! loaded at run time). Each phase is weighed once the app's memory has settled (its RSS moved
//! less than 1 % over two seconds) and per process: RSS, and PSS so that pages the app shares
//! with its WebKit helpers are counted once in the sum.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::process::{sleep, wait_for, Spawned};
use crate::procfs::{self, Pid};
use crate::stamps;
use crate::supervisors::gitvisor::Gitvisor;
use crate::supervisors::log_tail;
use crate::Result;

const SERVICES: usize = 10;
const TITLE: &str = "gitvisor";

#[derive(Serialize, Clone, Debug)]
pub struct Proc {
    /// "app", "log keeper", "WebKitWebProcess", ... ("daemon" for the headless engine).
    pub role: String,
    pub rss_kib: u64,
    pub pss_kib: u64,
}

#[derive(Serialize, Clone, Debug)]
pub struct Phase {
    /// "hidden", "window open", "hidden after closing", "daemon alone".
    pub name: String,
    pub processes: Vec<Proc>,
    pub rss_kib: u64,
    pub pss_kib: u64,
}

#[derive(Serialize, Clone, Debug)]
pub struct TrayMemory {
    pub services: usize,
    pub phases: Vec<Phase>,
}

/// A child killed on drop (Xvfb, dbus-daemon).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program` with `args` and returns it with the first line it prints (Xvfb's display
/// number, dbus-daemon's address).
fn start_printing(program: &str, args: &[&str]) -> Result<(Killed, String)> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {program} (scripts/setup installs it): {e}"))?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let child = Killed(child);
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line)?;
    let line = line.trim().to_string();
    if line.is_empty() {
        return Err(format!("{program} printed nothing").into());
    }
    Ok((child, line))
}

fn descendants(top: Pid) -> Vec<Pid> {
    let all: Vec<(Pid, Option<Pid>)> = procfs::all_pids().into_iter().map(|p| (p, procfs::ppid(p))).collect();
    let mut out = vec![top];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(all.iter().filter(|(_, pp)| *pp == Some(parent)).map(|(p, _)| *p));
        i += 1;
    }
    out
}

/// The program's file name (not /proc/PID/comm, which is cut at 15 bytes: "WebKitWebProces").
fn program(cmdline: &str) -> String {
    let first = cmdline.split(' ').next().unwrap_or_default();
    Path::new(first).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The supervisor's own processes under `top`: everything it started except the services
/// (which run `stamp`), each with its role.
fn own_processes(top: Pid, stamp: &Path) -> Vec<(Pid, String)> {
    let stamp = stamp.to_string_lossy().into_owned();
    descendants(top)
        .into_iter()
        .filter_map(|p| {
            let cmd = procfs::cmdline(p);
            if cmd.is_empty() || cmd.contains(&stamp) {
                return None;
            }
            let role = if p == top {
                "app".to_string()
            } else if cmd.contains("__log-keeper") {
                "log keeper".to_string()
            } else {
                program(&cmd)
            };
            Some((p, role))
        })
        .collect()
}

fn weigh(name: &str, procs: &[(Pid, String)]) -> Phase {
    let processes: Vec<Proc> = procs
        .iter()
        .filter_map(|(p, role)| {
            Some(Proc { role: role.clone(), rss_kib: procfs::rss_kib(*p)?, pss_kib: procfs::pss_kib(*p)? })
        })
        .collect();
    Phase {
        name: name.into(),
        rss_kib: processes.iter().map(|p| p.rss_kib).sum(),
        pss_kib: processes.iter().map(|p| p.pss_kib).sum(),
        processes,
    }
}

/// Waits until the RSS of `top`'s own processes has moved less than 1 % over the last two
/// seconds (at most a minute), then weighs them.
fn settled(name: &str, top: Pid, stamp: &Path) -> Result<Phase> {
    let total = || -> u64 { own_processes(top, stamp).iter().filter_map(|(p, _)| procfs::rss_kib(*p)).sum() };
    let end = Instant::now() + Duration::from_secs(60);
    let mut window: Vec<u64> = Vec::new();
    while Instant::now() < end {
        window.push(total());
        if window.len() > 8 {
            window.remove(0);
        }
        let (lo, hi) = (window.iter().min().copied().unwrap_or(0), window.iter().max().copied().unwrap_or(0));
        if window.len() == 8 && hi - lo <= hi / 100 {
            break;
        }
        sleep(Duration::from_millis(250))?;
    }
    Ok(weigh(name, &own_processes(top, stamp)))
}

pub fn tray_memory(gv: &Gitvisor, tray: &Path, dir: &Path) -> Result<TrayMemory> {
    let home = dir.join("home");
    let stamps_dir = dir.join("stamps");
    std::fs::create_dir_all(home.join("services"))?;
    std::fs::create_dir_all(&stamps_dir)?;
    for i in 0..SERVICES {
        let exec = format!("{} --idle {}", gv.stamp.display(), stamps_dir.join(i.to_string()).display());
        std::fs::write(home.join("services").join(format!("idle-{i:02}.service")), gv.unit(&exec, ""))?;
    }
    let all_started = || (0..SERVICES).all(|i| !stamps::read(&stamps_dir.join(i.to_string())).is_empty());
    let clear_stamps = || {
        for i in 0..SERVICES {
            let _ = std::fs::remove_file(stamps_dir.join(i.to_string()));
        }
    };

    let (_xvfb, display) =
        start_printing("Xvfb", &["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"])?;
    let display = format!(":{display}");
    let (_bus, bus) = start_printing("dbus-daemon", &["--session", "--nofork", "--print-address=1"])?;
    let app = |log: &Path, extra: &[&str]| -> Result<Spawned> {
        let mut cmd = Command::new(tray);
        cmd.arg("--home")
            .arg(&home)
            .args(extra)
            .env("DISPLAY", &display)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            // Xvfb has no GPU: without this WebKit renders a blank page.
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env("NO_AT_BRIDGE", "1")
            .env("GDK_BACKEND", "x11")
            .env_remove("GITVISOR_HOME")
            .env_remove("GITVISOR_LOG");
        Spawned::start(cmd, log)
    };

    let log = dir.join("tray.log");
    let mut first = app(&log, &["--hidden"])?;
    let top = first.pid();
    let alive = |s: &mut Spawned, what: &str| -> Result<()> {
        match s.exited() {
            Some(status) => Err(format!("{what} exited ({status}):\n{}", log_tail(&log)).into()),
            None => Ok(()),
        }
    };
    let started = wait_for(Duration::from_secs(120), Duration::from_millis(50), || {
        all_started() || first.exited().is_some()
    })?;
    alive(&mut first, "the tray app")?;
    if !started {
        return Err(format!("the tray app did not start its {SERVICES} services in 120 s").into());
    }
    let mut phases = vec![settled("hidden", top, &gv.stamp)?];

    // A second launch hands over to the first, which shows its window, and exits.
    let mut second = app(&dir.join("tray-second.log"), &[])?;
    wait_for(Duration::from_secs(30), Duration::from_millis(50), || second.exited().is_some())?;
    let x = X::open(&display)?;
    let shown = wait_for(Duration::from_secs(60), Duration::from_millis(100), || {
        !x.shown(TITLE).is_empty()
            && own_processes(top, &gv.stamp).iter().any(|(_, r)| r == "WebKitWebProcess")
    })?;
    alive(&mut first, "the tray app")?;
    if !shown {
        return Err("the window did not open on a second launch within 60 s".into());
    }
    phases.push(settled("window open", top, &gv.stamp)?);

    for w in x.shown(TITLE) {
        x.request_close(w);
    }
    let closed = wait_for(Duration::from_secs(30), Duration::from_millis(100), || x.shown(TITLE).is_empty())?;
    alive(&mut first, "the tray app")?;
    if !closed {
        return Err("the window did not close on WM_DELETE_WINDOW within 30 s".into());
    }
    phases.push(settled("hidden after closing", top, &gv.stamp)?);

    // Quit (SIGTERM) stops the services; the daemon then starts them again on the same home.
    if !first.stop(libc::SIGTERM, Duration::from_secs(30)).is_some_and(|s| s.success()) {
        return Err(format!("the tray app did not exit 0 on SIGTERM:\n{}", log_tail(&log)).into());
    }
    clear_stamps();
    let mut daemon = gv.launch_home(&home)?;
    let started = wait_for(Duration::from_secs(120), Duration::from_millis(50), || {
        all_started() || crate::supervisors::Session::check(&mut daemon).is_err()
    })?;
    crate::supervisors::Session::check(&mut daemon)?;
    if !started {
        return Err(format!("gitvisor daemon did not start its {SERVICES} services in 120 s").into());
    }
    let mut alone = settled("daemon alone", daemon.daemon_pid(), &gv.stamp)?;
    for p in &mut alone.processes {
        if p.role == "app" {
            p.role = "daemon".into();
        }
    }
    phases.push(alone);
    crate::supervisors::Session::stop(&mut daemon)?;
    Ok(TrayMemory { services: SERVICES, phases })
}

/// Enough of Xlib, loaded at run time (no link-time dependency on libX11), to find the app's
/// window and ask it to close as a window manager would.
struct X {
    xlib: x11_dl::xlib::Xlib,
    dpy: *mut x11_dl::xlib::Display,
}

/// A window can vanish between listing it and reading it (BadWindow); Xlib's default handler
/// would exit the benchmark.
unsafe extern "C" fn ignore_x_errors(
    _: *mut x11_dl::xlib::Display,
    _: *mut x11_dl::xlib::XErrorEvent,
) -> std::os::raw::c_int {
    0
}

impl X {
    fn open(display: &str) -> Result<X> {
        let xlib = x11_dl::xlib::Xlib::open().map_err(|e| format!("libX11: {e}"))?;
        let name = std::ffi::CString::new(display)?;
        // SAFETY: Xlib calls with a valid C string; the handler only returns.
        let dpy = unsafe {
            (xlib.XSetErrorHandler)(Some(ignore_x_errors));
            (xlib.XOpenDisplay)(name.as_ptr())
        };
        if dpy.is_null() {
            return Err(format!("cannot open X display {display}").into());
        }
        Ok(X { xlib, dpy })
    }

    /// Viewable top-level windows titled `title` (no window manager: the root's children).
    fn shown(&self, title: &str) -> Vec<x11_dl::xlib::Window> {
        let x = &self.xlib;
        let mut out = Vec::new();
        // SAFETY: Xlib calls on an open display; every buffer Xlib returns is freed with XFree.
        unsafe {
            (x.XSync)(self.dpy, 0);
            let root = (x.XDefaultRootWindow)(self.dpy);
            let (mut r, mut parent, mut kids, mut n) = (0, 0, std::ptr::null_mut(), 0u32);
            if (x.XQueryTree)(self.dpy, root, &mut r, &mut parent, &mut kids, &mut n) == 0 || kids.is_null() {
                return out;
            }
            for &w in std::slice::from_raw_parts(kids, n as usize) {
                let mut name = std::ptr::null_mut();
                if (x.XFetchName)(self.dpy, w, &mut name) == 0 || name.is_null() {
                    continue;
                }
                let matches = std::ffi::CStr::from_ptr(name).to_string_lossy() == title;
                (x.XFree)(name.cast());
                let mut attrs: x11_dl::xlib::XWindowAttributes = std::mem::zeroed();
                if matches
                    && (x.XGetWindowAttributes)(self.dpy, w, &mut attrs) != 0
                    && attrs.map_state == x11_dl::xlib::IsViewable
                {
                    out.push(w);
                }
            }
            (x.XFree)(kids.cast());
        }
        out
    }

    /// WM_DELETE_WINDOW, as a window manager's close button sends it.
    fn request_close(&self, w: x11_dl::xlib::Window) {
        let x = &self.xlib;
        // SAFETY: Xlib calls on an open display with a zero-initialised event of the right type.
        unsafe {
            let protocols = (x.XInternAtom)(self.dpy, c"WM_PROTOCOLS".as_ptr(), 0);
            let delete = (x.XInternAtom)(self.dpy, c"WM_DELETE_WINDOW".as_ptr(), 0);
            let mut ev: x11_dl::xlib::XClientMessageEvent = std::mem::zeroed();
            ev.type_ = x11_dl::xlib::ClientMessage;
            ev.window = w;
            ev.message_type = protocols;
            ev.format = 32;
            ev.data.set_long(0, delete as std::os::raw::c_long);
            ev.data.set_long(1, x11_dl::xlib::CurrentTime as std::os::raw::c_long);
            let mut event = x11_dl::xlib::XEvent { client_message: ev };
            (x.XSendEvent)(self.dpy, w, 0, x11_dl::xlib::NoEventMask, &mut event);
            (x.XFlush)(self.dpy);
        }
    }
}

impl Drop for X {
    fn drop(&mut self) {
        // SAFETY: the display was opened by `open` and is closed once.
        unsafe { (self.xlib.XCloseDisplay)(self.dpy) };
    }
}

/// The release tray binary beside the benchmark's own, if built.
pub fn default_binary() -> Option<PathBuf> {
    let p = std::env::current_exe().ok()?.parent()?.join("gitvisor-tray");
    p.is_file().then_some(p)
}
