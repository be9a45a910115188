//! One service's watch: an inotify watch on each directory its rules descend (never on what
//! `.gitignore` or `Exclude=` leave out), new directories added as they appear, and a burst of
//! changes turned into one call of `on_change` once it has been quiet for the debounce time.
//! When inotify cannot be had (the watch limit or the instance limit reached) the same
//! directories are polled every second instead, and the view says so.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::event::{CreateKind, EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use super::rules::Rules;
use super::{Change, Mode, View};

/// How often a polled tree is looked at.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// Events waiting to be read; beyond, they are dropped and the tree is looked at again.
const QUEUE: usize = 4096;

type Events = mpsc::Receiver<notify::Result<notify::Event>>;

/// The events' handler, shared by the inotify and the polling backends.
#[derive(Clone)]
struct Handler {
    tx: mpsc::Sender<notify::Result<notify::Event>>,
    overflow: Arc<AtomicBool>,
}

impl notify::EventHandler for Handler {
    fn handle_event(&mut self, event: notify::Result<notify::Event>) {
        if self.tx.try_send(event).is_err() {
            self.overflow.store(true, Ordering::Relaxed);
        }
    }
}

enum Backend {
    Inotify(notify::INotifyWatcher),
    Poll(notify::PollWatcher),
}

impl Backend {
    fn watch(&mut self, dir: &Path) -> notify::Result<()> {
        match self {
            Backend::Inotify(w) => w.watch(dir, RecursiveMode::NonRecursive),
            Backend::Poll(w) => w.watch(dir, RecursiveMode::NonRecursive),
        }
    }

    fn unwatch(&mut self, dir: &Path) {
        let _ = match self {
            Backend::Inotify(w) => w.unwatch(dir),
            Backend::Poll(w) => w.unwatch(dir),
        };
    }
}

/// inotify has run out (of watches or of instances): worth polling instead.
fn out_of_inotify(e: &notify::Error) -> bool {
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => true,
        notify::ErrorKind::Io(io) => {
            matches!(io.raw_os_error(), Some(libc::ENOSPC | libc::EMFILE | libc::ENFILE))
        }
        _ => false,
    }
}

fn max_user_watches() -> String {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The watched directories and how they are watched.
struct Tree {
    rules: Rules,
    backend: Backend,
    handler: Handler,
    dirs: BTreeSet<PathBuf>,
    mode: Mode,
}

impl Tree {
    fn switch_to_polling(&mut self, why: String) {
        tracing::warn!("{why}");
        match notify::PollWatcher::new(
            self.handler.clone(),
            notify::Config::default().with_poll_interval(POLL_EVERY),
        ) {
            Ok(mut poll) => {
                for d in &self.dirs {
                    let _ = poll.watch(d, RecursiveMode::NonRecursive);
                }
                self.backend = Backend::Poll(poll);
                self.mode = Mode::Polling(why);
            }
            Err(e) => self.mode = Mode::Failed(format!("{why}; polling failed too: {e}")),
        }
    }

    fn add(&mut self, dir: &Path) {
        if self.dirs.contains(dir) {
            return;
        }
        let watched = if test_hooks::inotify_full(&self.backend, self.dirs.len()) {
            Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch))
        } else {
            self.backend.watch(dir)
        };
        match watched {
            Ok(()) => {
                self.dirs.insert(dir.to_path_buf());
            }
            Err(e) if out_of_inotify(&e) && matches!(self.backend, Backend::Inotify(_)) => {
                self.switch_to_polling(format!(
                    "inotify watches ran out ({e}; fs.inotify.max_user_watches is {}): polling every {}s",
                    max_user_watches(),
                    POLL_EVERY.as_secs()
                ));
                if self.backend.watch(dir).is_ok() {
                    self.dirs.insert(dir.to_path_buf());
                }
            }
            // Gone already, or not readable: nothing to watch there.
            Err(e) => tracing::debug!("watch {}: {e}", dir.display()),
        }
    }

    /// `dir` and, with `recursive`, every directory below it the rules descend.
    fn collect(&mut self, dir: &Path, recursive: bool, out: &mut BTreeSet<PathBuf>) {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            if !d.is_dir() || !self.rules.descends(&d) {
                continue;
            }
            out.insert(d.clone());
            if !recursive {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&d) else { continue };
            for e in entries.flatten() {
                // Not through symbolic links: a link to `/` must not watch the machine.
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }

    /// Watches `dir` and, with `recursive`, what is below it.
    fn add_tree(&mut self, dir: &Path, recursive: bool) {
        let mut found = BTreeSet::new();
        self.collect(dir, recursive, &mut found);
        for d in found {
            self.add(&d);
        }
    }

    /// Looks at the whole tree again (a `.gitignore` changed, or events were lost): watches
    /// what is now descended, drops what no longer is.
    fn rescan(&mut self) {
        let mut found = BTreeSet::new();
        for r in self.rules.roots().to_vec() {
            self.collect(&r.dir, r.recursive, &mut found);
        }
        for gone in self.dirs.difference(&found).cloned().collect::<Vec<_>>() {
            self.backend.unwatch(&gone);
            self.dirs.remove(&gone);
        }
        for d in found {
            self.add(&d);
        }
    }

    /// A new directory under a recursive root is watched with what is under it.
    fn added_dir(&mut self, dir: &Path) {
        let under_recursive = self.rules.roots().iter().any(|r| r.recursive && dir.starts_with(&r.dir));
        if under_recursive && dir.parent().is_some_and(|p| self.dirs.contains(p)) {
            self.add_tree(dir, true);
        }
    }

    fn removed(&mut self, path: &Path) {
        if self.dirs.contains(path) {
            // inotify drops the watch of a deleted directory by itself.
            self.dirs.retain(|d| !d.starts_with(path));
        }
    }
}

/// What one event means: the paths that trigger a restart.
fn triggering(tree: &mut Tree, event: notify::Event, rescan: &mut bool) -> Vec<PathBuf> {
    if matches!(event.kind, EventKind::Access(_) | EventKind::Other) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for path in event.paths {
        let created = matches!(event.kind, EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_)));
        let is_dir =
            matches!(event.kind, EventKind::Create(CreateKind::Folder)) || (created && path.is_dir());
        if matches!(event.kind, EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_)))
            && !path.exists()
        {
            tree.removed(&path);
        }
        if is_dir {
            tree.added_dir(&path);
        }
        if tree.rules.reads_gitignore() && path.file_name().is_some_and(|n| n == ".gitignore") {
            tree.rules.forget_gitignores();
            *rescan = true;
        }
        if tree.rules.triggers(&path, is_dir) {
            out.push(path);
        }
    }
    out
}

/// Sets up the watch (on a blocking thread: a large tree takes a while to walk) and returns
/// it with its events.
async fn start(rules: Rules) -> Result<(Tree, Events, Arc<AtomicBool>), String> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let overflow = Arc::new(AtomicBool::new(false));
    let handler = Handler { tx, overflow: overflow.clone() };
    let tree = tokio::task::spawn_blocking(move || {
        let (backend, mode) = match notify::INotifyWatcher::new(handler.clone(), notify::Config::default()) {
            Ok(w) => (Some(Backend::Inotify(w)), Mode::Inotify),
            Err(e) => (None, Mode::Polling(format!("inotify is unavailable ({e}): polling every 1s"))),
        };
        let backend = match backend {
            Some(b) => b,
            None => {
                let poll = notify::PollWatcher::new(
                    handler.clone(),
                    notify::Config::default().with_poll_interval(POLL_EVERY),
                )
                .map_err(|e| format!("cannot watch files: {e}"))?;
                Backend::Poll(poll)
            }
        };
        let mut tree = Tree { rules, backend, handler, dirs: BTreeSet::new(), mode };
        for r in tree.rules.roots().to_vec() {
            tree.add_tree(&r.dir, r.recursive);
        }
        Ok::<_, String>(tree)
    })
    .await
    .map_err(|e| format!("watch setup: {e}"))??;
    Ok((tree, rx, overflow))
}

fn now_ms() -> u64 {
    crate::time::now_us() / 1000
}

/// The path as a person reads it: relative to the working directory when under it.
fn shown(base: &Path, p: &Path) -> String {
    p.strip_prefix(base).unwrap_or(p).to_string_lossy().into_owned()
}

/// Watches until dropped, calling `on_change` once per burst of changes (each call awaited
/// before the next burst is looked at).
pub async fn run<F, Fut>(
    base: PathBuf,
    rules: Rules,
    debounce: Duration,
    view: Arc<Mutex<View>>,
    mut on_change: F,
) where
    F: FnMut(Change) -> Fut,
    Fut: Future<Output = ()>,
{
    let set = |f: &dyn Fn(&mut View)| f(&mut view.lock().unwrap_or_else(|e| e.into_inner()));
    let (mut tree, mut rx, overflow) = match start(rules).await {
        Ok(t) => t,
        Err(e) => {
            set(&|v| v.mode = Mode::Failed(e.clone()));
            return;
        }
    };
    set(&|v| {
        v.mode = tree.mode.clone();
        v.directories = tree.dirs.len();
    });
    // A burst: its paths in order of first change, when it began, when it last moved.
    let mut pending: Vec<PathBuf> = Vec::new();
    let mut first: Option<tokio::time::Instant> = None;
    let mut last = tokio::time::Instant::now();
    // A burst that never goes quiet (a file rewritten continuously) still restarts this often.
    let longest = (debounce * 10).max(Duration::from_secs(2));
    loop {
        let due = first.map(|f| (last + debounce).min(f + longest));
        let wake = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = rx.recv() => {
                let Some(event) = event else { return };
                let mut rescan = false;
                let paths = match event {
                    Ok(ev) => triggering(&mut tree, ev, &mut rescan),
                    Err(e) => {
                        tracing::debug!("watch {}: {e}", base.display());
                        Vec::new()
                    }
                };
                if overflow.swap(false, Ordering::Relaxed) {
                    // Events were lost: new directories may be unwatched, and something changed.
                    rescan = true;
                    pending.push(base.clone());
                }
                if rescan {
                    tree.rescan();
                }
                set(&|v| {
                    v.directories = tree.dirs.len();
                    v.mode = tree.mode.clone();
                });
                if !paths.is_empty() || (rescan && !pending.is_empty()) {
                    let now = tokio::time::Instant::now();
                    first.get_or_insert(now);
                    last = now;
                    for p in paths {
                        if !pending.contains(&p) {
                            pending.push(p);
                        }
                    }
                }
            }
            () = wake => {
                first = None;
                let paths = std::mem::take(&mut pending);
                let Some(head) = paths.first() else { continue };
                let change = Change { path: shown(&base, head), more: paths.len() - 1, at_ms: now_ms() };
                set(&|v| v.last_change = Some(change.clone()));
                on_change(change).await;
            }
        }
    }
}

/// A hook the tests use in place of the kernel's watch limit (debug builds only: a release
/// engine reads no such variable). The real limit, `fs.inotify.max_user_watches`, is the
/// machine's: lowering it would starve every other test running beside.
mod test_hooks {
    /// `GITVISOR_TEST_INOTIFY_WATCHES=N`: a service's watch gets at most N inotify watches.
    pub fn inotify_full(backend: &super::Backend, watched: usize) -> bool {
        #[cfg(debug_assertions)]
        if let super::Backend::Inotify(_) = backend {
            let limit =
                std::env::var("GITVISOR_TEST_INOTIFY_WATCHES").ok().and_then(|v| v.parse::<usize>().ok());
            return limit.is_some_and(|n| watched >= n);
        }
        let _ = (backend, watched);
        false
    }
}
