//! The engine's side of the log keeper: starts or reconnects to it, hands it each new service's
//! pipes, and keeps the in-memory tails and live followers fed from what it forwards.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gitvisor_protocol::LogLine;
use tokio::sync::broadcast;

use super::lines::read_file_tail;
use super::seqpacket::{self, Packet, MAX_PACKET};
use super::tail::Tail;
use super::wire::{FromKeeper, Origin, StreamInfo, ToKeeper};
use crate::settings::LogSettings;
use gitvisor_keeper::{KEEPER_ARG, LISTEN_FD};

/// A line of the engine's own for a service's log, sent with the pipes it comes before
/// ([`LogLink::attach`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    /// The process it is about.
    pub pid: Option<u32>,
    /// It tells that process's exit.
    pub exit: bool,
}

impl Note {
    pub fn about(pid: u32, text: String) -> Note {
        Note { text, pid: Some(pid), exit: false }
    }

    pub fn exit(pid: u32, text: String) -> Note {
        Note { text, pid: Some(pid), exit: true }
    }
}

#[derive(Default)]
struct ServiceLog {
    tail: Tail,
    followers: Option<broadcast::Sender<LogLine>>,
}

struct Shared {
    logs: HashMap<String, ServiceLog>,
    /// Processes whose output has all arrived (bounded: the oldest are forgotten); waiters are
    /// woken when one is added and when the note of an exit arrives.
    closed: std::collections::VecDeque<(String, u32)>,
}

const CLOSED_KEPT: usize = 1024;

/// The current connection to the keeper and the task reading from it.
struct Connection {
    packet: Arc<Packet>,
    /// The keeper takes several messages in one packet (`ToKeeper::Batch`).
    batches: bool,
    reader: tokio::task::JoinHandle<()>,
    /// Waits for the keeper to exit, when this engine started it (it is this process's child).
    reaper: Option<tokio::task::JoinHandle<()>>,
}

pub struct LogLink {
    conn: Mutex<Connection>,
    /// Reapers of keepers this engine started and no longer talks to (one was killed and
    /// replaced): each ends when its keeper has exited.
    reapers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    closed_notify: Arc<tokio::sync::Notify>,
    shared: Arc<Mutex<Shared>>,
    socket: PathBuf,
    program: PathBuf,
    logs_dir: PathBuf,
    settings: LogSettings,
}

/// The link owns its tasks: dropping it ends them all.
impl Drop for LogLink {
    fn drop(&mut self) {
        let conn = self.conn.get_mut().unwrap_or_else(|e| e.into_inner());
        conn.reader.abort();
        let reapers = self.reapers.get_mut().unwrap_or_else(|e| e.into_inner());
        for r in conn.reaper.take().into_iter().chain(reapers.drain(..)) {
            r.abort();
        }
    }
}

impl LogLink {
    /// Connects to the home's keeper, starting one with `program` if none runs. Returns the
    /// streams the keeper already holds (services left running by an earlier engine).
    pub async fn open(
        socket: &Path,
        logs_dir: &Path,
        program: &Path,
        settings: LogSettings,
    ) -> io::Result<(LogLink, Vec<StreamInfo>)> {
        let shared = Arc::new(Mutex::new(Shared { logs: HashMap::new(), closed: Default::default() }));
        let closed_notify = Arc::new(tokio::sync::Notify::new());
        let (conn, streams) = connect(socket, logs_dir, program, &shared, &closed_notify).await?;
        let link = LogLink {
            conn: Mutex::new(conn),
            reapers: Mutex::default(),
            closed_notify,
            shared,
            socket: socket.to_path_buf(),
            program: program.to_path_buf(),
            logs_dir: logs_dir.to_path_buf(),
            settings,
        };
        Ok((link, streams))
    }

    fn packet(&self) -> Arc<Packet> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).packet.clone()
    }

    fn batches(&self) -> bool {
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).batches
    }

    /// Replaces a connection to a keeper that went away (it was killed): a new keeper is
    /// started, and the services started from now on log through it.
    async fn reconnect(&self) -> io::Result<Arc<Packet>> {
        tracing::warn!("the log keeper is gone; starting a new one");
        let (conn, _) =
            connect(&self.socket, &self.logs_dir, &self.program, &self.shared, &self.closed_notify).await?;
        let packet = conn.packet.clone();
        let mut old = std::mem::replace(&mut *self.conn.lock().unwrap_or_else(|e| e.into_inner()), conn);
        old.reader.abort();
        if let Some(r) = old.reaper.take() {
            let mut reapers = self.reapers.lock().unwrap_or_else(|e| e.into_inner());
            reapers.retain(|r| !r.is_finished());
            reapers.push(r);
        }
        Ok(packet)
    }

    /// Hands the read ends of a new process's pipes to the keeper, after `notes` (the exit of
    /// the process it replaces, its own start): in one packet, so a restart wakes the keeper
    /// once, and the notes come before the process's first line.
    pub async fn attach(
        &self,
        service: &str,
        pid: u32,
        start_time: u64,
        out: OwnedFd,
        err: OwnedFd,
        notes: Vec<Note>,
    ) -> io::Result<()> {
        let attach = ToKeeper::Attach {
            service: service.to_string(),
            pid,
            start_time,
            max_file_size: self.settings.max_file_size,
            max_files: self.settings.max_files,
        };
        let fds = [out.as_raw_fd(), err.as_raw_fd()];
        let mut msgs: Vec<ToKeeper> = notes.into_iter().map(|n| self.note_msg(service, n)).collect();
        let bytes = if self.batches() {
            msgs.push(attach);
            serde_json::to_vec(&ToKeeper::Batch { msgs })?
        } else {
            // A keeper of an older version: one message each, as it knows them.
            for msg in msgs {
                let _ = self.packet().try_send(&serde_json::to_vec(&msg)?);
            }
            serde_json::to_vec(&attach)?
        };
        match self.packet().send(&bytes, &fds).await {
            Ok(()) => Ok(()),
            Err(_) => self.reconnect().await?.send(&bytes, &fds).await,
        }
    }

    /// Writes a line of the engine's own into the service's log ("baseline capture...").
    pub fn note(&self, service: &str, text: String) {
        self.send_note(service, Note { text, pid: None, exit: false });
    }

    /// A note about the process `pid` ("started process 42: ...").
    pub fn note_about(&self, service: &str, pid: u32, text: String) {
        self.send_note(service, Note::about(pid, text));
    }

    /// The note of the process `pid`'s exit: the last about it.
    pub fn note_exit(&self, service: &str, pid: u32, text: String) {
        self.send_note(service, Note::exit(pid, text));
    }

    fn note_msg(&self, service: &str, note: Note) -> ToKeeper {
        ToKeeper::Note {
            service: service.to_string(),
            text: note.text,
            max_file_size: self.settings.max_file_size,
            max_files: self.settings.max_files,
            pid: note.pid,
            exit: note.exit,
        }
    }

    /// Writes `note` into the service's log.
    pub fn send_note(&self, service: &str, note: Note) {
        let msg = self.note_msg(service, note);
        // Notes are best effort: a full queue must not stall the supervisor.
        let _ = self.packet().try_send(&serde_json::to_vec(&msg).unwrap_or_default());
    }

    /// Arms (or moves) the keeper's dead-man switch of a fleet singleton: its process group
    /// is killed at `until_ms` unless this is called again first.
    pub async fn leash(&self, service: &str, pgid: u32, until_ms: u64) -> io::Result<()> {
        let msg = ToKeeper::Leash { service: service.to_string(), pgid, until_ms };
        self.packet().send(&serde_json::to_vec(&msg).map_err(io::Error::other)?, &[]).await
    }

    pub async fn unleash(&self, service: &str) -> io::Result<()> {
        let msg = ToKeeper::Unleash { service: service.to_string() };
        self.packet().send(&serde_json::to_vec(&msg).map_err(io::Error::other)?, &[]).await
    }

    pub async fn goodbye(&self) {
        let _ = self.packet().send(&serde_json::to_vec(&ToKeeper::Goodbye).unwrap_or_default(), &[]).await;
    }

    /// The last `n` lines of a service's output: from memory, or from its files when more are
    /// asked for than memory keeps.
    pub fn tail(&self, service: &str, n: usize) -> Vec<LogLine> {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let log = shared.logs.entry(service.to_string()).or_default();
        if !log.tail.seeded() {
            // Nothing was forwarded for it yet: the file has all there is (lines on their way
            // from the keeper are skipped when they come).
            log.tail.seed(read_file_tail(&self.logs_dir, service, super::tail::TAIL_LINES), None);
        }
        if n > log.tail.len() && log.tail.len() >= super::tail::TAIL_LINES {
            drop(shared);
            return read_file_tail(&self.logs_dir, service, n);
        }
        log.tail.last(n)
    }

    /// Waits until all of a process's output has arrived (its pipes closed) and the note of its
    /// exit has, or `timeout` passed (a child it left may hold its pipes open). True when both
    /// have.
    pub async fn wait_exit_told(&self, service: &str, pid: u32, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.closed_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
                let closed = shared.closed.iter().any(|(s, p)| s == service && *p == pid);
                let noted = shared.logs.get(service).is_some_and(|l| l.tail.has_exit_of(pid));
                if closed && noted {
                    return true;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// The last `n` lines of a service's output as they stood at the exit of its process `pid`
    /// (see [`Tail::at_exit_of`]).
    pub fn tail_at_exit(&self, service: &str, pid: u32, n: usize) -> Vec<Arc<LogLine>> {
        let shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        shared.logs.get(service).map(|l| l.tail.at_exit_of(pid, n)).unwrap_or_default()
    }

    /// Live lines of a service from now on.
    pub fn follow(&self, service: &str) -> broadcast::Receiver<LogLine> {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let log = shared.logs.entry(service.to_string()).or_default();
        log.followers.get_or_insert_with(|| broadcast::channel(1024).0).subscribe()
    }
}

async fn connect(
    socket: &Path,
    logs_dir: &Path,
    program: &Path,
    shared: &Arc<Mutex<Shared>>,
    notify: &Arc<tokio::sync::Notify>,
) -> io::Result<(Connection, Vec<StreamInfo>)> {
    let (packet, reaper) = match Packet::connect(socket) {
        Ok(c) => (c, None),
        Err(_) => {
            let pid = spawn_keeper(socket, logs_dir, program)?;
            (Packet::connect(socket)?, crate::supervisor::process::reap_in_background(pid))
        }
    };
    let mut buf = vec![0u8; MAX_PACKET];
    let (n, _) = packet.recv(&mut buf).await?;
    let (streams, batches) = match serde_json::from_slice::<FromKeeper>(&buf[..n]) {
        Ok(FromKeeper::Streams { streams, batches }) => (streams, batches),
        _ => return Err(io::Error::other("the log keeper did not greet with its streams")),
    };
    let packet = Arc::new(packet);
    let reader = tokio::spawn(read_keeper(
        packet.clone(),
        shared.clone(),
        notify.clone(),
        buf,
        logs_dir.to_path_buf(),
    ));
    Ok((Connection { packet, batches, reader, reaper }, streams))
}

async fn read_keeper(
    conn: Arc<Packet>,
    shared: Arc<Mutex<Shared>>,
    notify: Arc<tokio::sync::Notify>,
    mut buf: Vec<u8>,
    logs_dir: PathBuf,
) {
    loop {
        let n = match conn.recv(&mut buf).await {
            Ok((0, _)) | Err(_) => {
                tracing::warn!("the log keeper closed its connection; service output goes to files only");
                return;
            }
            Ok((n, _)) => n,
        };
        let Ok(msg) = serde_json::from_slice::<FromKeeper>(&buf[..n]) else { continue };
        if take(msg, &shared, &logs_dir) {
            notify.notify_waiters();
        }
    }
}

/// Takes one message of the keeper's into the tails and followers. True when it may be what a
/// waiter of [`LogLink::wait_exit_told`] waits for.
fn take(msg: FromKeeper, shared: &Mutex<Shared>, logs_dir: &Path) -> bool {
    let (service, lines, origin, marker) = match msg {
        FromKeeper::Lines { service, lines, origin } => (service, lines, origin, None),
        FromKeeper::Dropped { service, count } => {
            let text =
                format!("[{count} lines not shown here: the engine was too slow; they are in the file]");
            let line = LogLine { at_us: crate::time::now_us(), stream: "gitvisor".into(), text };
            (service, vec![], Origin::Unknown, Some(line))
        }
        FromKeeper::Closed { service, pid } => {
            let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
            shared.closed.push_back((service, pid));
            if shared.closed.len() > CLOSED_KEPT {
                shared.closed.pop_front();
            }
            return true;
        }
        FromKeeper::Batch { msgs } => {
            // Every message is taken: no short cut once one wakes.
            let mut wake = false;
            for msg in msgs {
                wake |= take(msg, shared, logs_dir);
            }
            return wake;
        }
        FromKeeper::Streams { .. } => return false,
    };
    let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
    let log = shared.logs.entry(service.clone()).or_default();
    if !log.tail.seeded() {
        // What the file had before the first forwarded line; the lines after it are on
        // their way here.
        let first = lines.first().map(|l| l.at_us);
        log.tail.seed(read_file_tail(logs_dir, &service, super::tail::TAIL_LINES), first);
    }
    let mut taken: Vec<Arc<LogLine>> =
        lines.into_iter().map(Arc::new).filter(|l| log.tail.push(Arc::clone(l), origin)).collect();
    if let Some(marker) = marker {
        let marker = Arc::new(marker);
        log.tail.mark(Arc::clone(&marker));
        taken.push(marker);
    }
    if let Some(tx) = &log.followers {
        for line in taken {
            if tx.send(LogLine::clone(&line)).is_err() {
                log.followers = None;
                break;
            }
        }
    }
    matches!(origin, Origin::Note { exit: true, .. })
}

/// Starts a keeper for this home: binds its socket here (so the first connect cannot race the
/// child's start-up) and passes the listening descriptor as fd 3. Returns its pid, to reap.
fn spawn_keeper(socket: &Path, logs_dir: &Path, program: &Path) -> io::Result<u32> {
    let listener = seqpacket::bind(socket)?;
    let raw = listener.as_raw_fd();
    let mut cmd = std::process::Command::new(program);
    cmd.arg(KEEPER_ARG)
        .arg(logs_dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only async-signal-safe calls (setsid, dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Its own session: a terminal's Ctrl-C or the engine's death must not reach it.
            nix::unistd::setsid()?;
            if raw == LISTEN_FD {
                nix::fcntl::fcntl(raw, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))?;
            } else if libc::dup2(raw, LISTEN_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    Ok(child.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keeper of an older version (its greeting does not offer batches) is sent the notes
    /// and the pipes one message each, as it knows them.
    #[tokio::test]
    async fn a_keeper_without_batches_gets_one_message_each() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("logd.sock");
        let listener = seqpacket::Listener::new(seqpacket::bind(&socket).unwrap()).unwrap();
        let old_keeper = tokio::spawn(async move {
            let conn = listener.accept().await.unwrap();
            conn.send(br#"{"op":"streams","streams":[]}"#, &[]).await.unwrap();
            let mut buf = vec![0u8; MAX_PACKET];
            let mut got = Vec::new();
            for _ in 0..2 {
                let (n, fds) = conn.recv(&mut buf).await.unwrap();
                got.push((serde_json::from_slice::<ToKeeper>(&buf[..n]).unwrap(), fds.len()));
            }
            got
        });
        let settings = LogSettings { max_file_size: 1 << 20, max_files: 2 };
        let (link, streams) =
            LogLink::open(&socket, dir.path(), Path::new("/nonexistent"), settings).await.unwrap();
        assert!(streams.is_empty());
        let (out_r, _out_w) = nix::unistd::pipe().unwrap();
        let (err_r, _err_w) = nix::unistd::pipe().unwrap();
        link.attach("s", 7, 1, out_r, err_r, vec![Note::about(7, "started process 7".into())]).await.unwrap();
        let got =
            tokio::time::timeout(std::time::Duration::from_secs(20), old_keeper).await.unwrap().unwrap();
        assert!(
            matches!(&got[0], (ToKeeper::Note { text, pid: Some(7), exit: false, .. }, 0) if text == "started process 7"),
            "{got:?}"
        );
        assert!(matches!(&got[1], (ToKeeper::Attach { pid: 7, .. }, 2)), "{got:?}");
    }
}
