//! The log keeper: a small process, one per home, that holds the read ends of every service's
//! stdout and stderr pipes, writes each line with a timestamp into `logs/NAME.log`, and forwards
//! the lines to the engine when one is connected.
//!
//! Why a separate process: a service's output must not depend on the engine staying alive. If
//! the engine is killed, the keeper keeps the pipes open (so services never get SIGPIPE or block)
//! and keeps writing the files; the next engine connects, learns which pipes are held, and the
//! lines flow to it again. Why not a pipe per service owned by the engine: those close with it.
//!
//! The keeper exits when it holds no pipe and no engine is connected. It never waits on the
//! engine: lines the engine is too slow to take are counted and dropped from the forward only
//! (the file has them).

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use gitvisor_protocol::LogLine;

use crate::file::LogFile;
use crate::lines::{format_line, next_stamp, read_file_tail};
use crate::seqpacket::{Listener, Packet, MAX_PACKET};
use crate::time::now_us;
use crate::wire::{FromKeeper, Origin, StreamInfo, ToKeeper};

/// The argument the engine's binary recognises to run as the keeper.
pub const KEEPER_ARG: &str = "__log-keeper";
/// The listening socket arrives as this descriptor.
pub const LISTEN_FD: i32 = 3;
/// Longest line kept whole; longer output is split.
const MAX_LINE: usize = 64 * 1024;
/// How long a keeper with nothing to do waits for an engine before it exits.
const IDLE_GRACE: Duration = Duration::from_secs(10);

/// Call first thing in `main` of every binary that can host the keeper (`gitvisor-keeper`, and
/// the `gitvisor` CLI and the tray app as fallbacks): when the process was started as the
/// keeper, runs it and exits.
pub fn run_if_requested() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new(KEEPER_ARG)) {
        return;
    }
    let Some(logs) = args.next() else { std::process::exit(2) };
    // SAFETY: the engine passed the listening socket as this descriptor and nothing else owns it.
    let listener = unsafe { OwnedFd::from_raw_fd(LISTEN_FD) };
    let code = match run(listener, PathBuf::from(logs)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("gitvisor log keeper: {e}");
            1
        }
    };
    std::process::exit(code);
}

struct Stream {
    info: StreamInfo,
    open_pipes: u8,
    /// The engine's note of this process's exit has come (its output may still be flowing:
    /// a child it left holds the pipes).
    exit_noted: bool,
}

/// Processes whose pipes closed before the note of their exit came, at most this many: their
/// `Closed` goes with that note (see [`FromKeeper::Closed`]).
const HELD_CLOSED: usize = 1024;

#[derive(Default)]
struct Keeper {
    logs: PathBuf,
    files: HashMap<String, LogFile>,
    streams: Vec<Stream>,
    engine: Option<Rc<Packet>>,
    dropped: HashMap<String, u64>,
    /// Fleet singletons' dead-man switches, by service.
    leashes: HashMap<String, tokio::task::JoinHandle<()>>,
    /// Per service, the time of its newest line (see [`next_stamp`]).
    stamps: HashMap<String, u64>,
    /// Processes whose output is all forwarded, waiting for the note of their exit.
    held_closed: std::collections::VecDeque<(String, u32)>,
    /// While a batch is handled: what goes to the engine in its answer.
    outbox: Option<Vec<FromKeeper>>,
    /// While a batch is handled: the services whose notes are not written out yet.
    unflushed: Vec<String>,
}

type Shared = Rc<RefCell<Keeper>>;

fn run(listener: OwnedFd, logs: PathBuf) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = Listener::new(listener)?;
        let keeper: Shared = Rc::new(RefCell::new(Keeper { logs, ..Keeper::default() }));
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let idle = tokio::time::sleep(IDLE_GRACE);
        tokio::pin!(idle);
        // A finished Sleep is ready forever: poll it once only, or the loop would spin.
        let mut grace_over = false;
        loop {
            tokio::select! {
                conn = listener.accept() => {
                    let conn = Rc::new(conn?);
                    keeper.borrow_mut().engine = Some(conn.clone());
                    let streams = keeper.borrow().streams.iter().map(|s| s.info.clone()).collect();
                    send(&conn, &FromKeeper::Streams { streams, batches: true }).await;
                    tokio::task::spawn_local(serve_engine(keeper.clone(), conn, done_tx.clone()));
                }
                Some(()) = done_rx.recv() => {
                    if keeper.borrow().is_idle() {
                        return Ok(());
                    }
                }
                () = &mut idle, if !grace_over => {
                    grace_over = true;
                    if keeper.borrow().is_idle() {
                        return Ok(());
                    }
                }
            }
        }
    })
}

impl Keeper {
    fn is_idle(&self) -> bool {
        self.streams.is_empty() && self.engine.is_none() && self.leashes.values().all(|l| l.is_finished())
    }

    fn file(&mut self, service: &str, max_size: u64, max_files: u32) -> &mut LogFile {
        let path = self.logs.join(format!("{service}.log"));
        let f =
            self.files.entry(service.to_string()).or_insert_with(|| LogFile::new(path, max_size, max_files));
        f.max_size = max_size;
        f.max_files = max_files;
        f
    }

    /// The time of a new line of `service`: now, or just after its newest line.
    fn stamp(&mut self, service: &str) -> u64 {
        let logs = &self.logs;
        let last = self.stamps.entry(service.to_string()).or_insert_with(|| {
            // A keeper that replaces another goes on after the lines it wrote.
            read_file_tail(logs, service, 1).last().map(|l| l.at_us).unwrap_or(0)
        });
        *last = next_stamp(*last, now_us());
        *last
    }

    /// Forwards lines to the engine without waiting; counts what did not fit. Within a batch,
    /// they go in its answer.
    fn forward(&mut self, service: &str, lines: Vec<LogLine>, origin: Origin) {
        let Some(engine) = self.engine.clone() else { return };
        let missed = self.dropped.get(service).copied().unwrap_or(0);
        if let Some(outbox) = &mut self.outbox {
            if missed > 0 {
                outbox.push(FromKeeper::Dropped { service: service.to_string(), count: missed });
                self.dropped.remove(service);
            }
            outbox.push(FromKeeper::Lines { service: service.to_string(), lines, origin });
            return;
        }
        if missed > 0 {
            let msg = FromKeeper::Dropped { service: service.to_string(), count: missed };
            if !engine.try_send(&serde_json::to_vec(&msg).unwrap_or_default()).unwrap_or(false) {
                *self.dropped.entry(service.to_string()).or_default() += lines.len() as u64;
                return;
            }
            self.dropped.remove(service);
        }
        for batch in batches(lines) {
            let n = batch.len() as u64;
            let msg = FromKeeper::Lines { service: service.to_string(), lines: batch, origin };
            if !engine.try_send(&serde_json::to_vec(&msg).unwrap_or_default()).unwrap_or(false) {
                *self.dropped.entry(service.to_string()).or_default() += n;
            }
        }
    }

    /// Tells the engine that all of a process's output has come: now, or within a batch in its
    /// answer.
    fn tell_closed(&mut self, service: String, pid: u32) {
        let msg = FromKeeper::Closed { service, pid };
        if let Some(outbox) = &mut self.outbox {
            outbox.push(msg);
        } else if let Some(engine) = &self.engine {
            let _ = engine.try_send(&serde_json::to_vec(&msg).unwrap_or_default());
        }
    }

    /// Both pipes of a process closed: `Closed` goes now when the note of its exit came
    /// already, else with that note.
    fn pipes_closed(&mut self, info: &StreamInfo, exit_noted: bool) {
        if exit_noted {
            self.tell_closed(info.service.clone(), info.pid);
            return;
        }
        self.held_closed.push_back((info.service.clone(), info.pid));
        if self.held_closed.len() > HELD_CLOSED {
            // A note that never came (the engine that would send it is gone): tell it late
            // rather than never.
            if let Some((service, pid)) = self.held_closed.pop_front() {
                self.tell_closed(service, pid);
            }
        }
    }

    /// The note of `pid`'s exit came: its `Closed` follows when its pipes closed already.
    fn exit_noted(&mut self, service: &str, pid: u32) {
        if let Some(s) = self.streams.iter_mut().find(|s| s.info.service == service && s.info.pid == pid) {
            s.exit_noted = true;
        } else if let Some(i) = self.held_closed.iter().position(|(s, p)| s == service && *p == pid) {
            if let Some((service, pid)) = self.held_closed.remove(i) {
                self.tell_closed(service, pid);
            }
        }
    }

    /// Sends a batch's answer in one packet (or, too large for one, message by message).
    fn answer(&mut self, msgs: Vec<FromKeeper>) {
        let Some(engine) = self.engine.clone() else { return };
        if msgs.is_empty() {
            return;
        }
        let lost = |k: &mut Keeper, msgs: &[FromKeeper]| {
            for m in msgs {
                if let FromKeeper::Lines { service, lines, .. } = m {
                    *k.dropped.entry(service.clone()).or_default() += lines.len() as u64;
                }
            }
        };
        let batch = FromKeeper::Batch { msgs };
        let bytes = serde_json::to_vec(&batch).unwrap_or_default();
        let FromKeeper::Batch { msgs } = batch else { unreachable!("made above") };
        if bytes.len() <= MAX_PACKET {
            if !engine.try_send(&bytes).unwrap_or(false) {
                lost(self, &msgs);
            }
            return;
        }
        for m in msgs {
            if !engine.try_send(&serde_json::to_vec(&m).unwrap_or_default()).unwrap_or(false) {
                lost(self, std::slice::from_ref(&m));
            }
        }
    }
}

/// Splits lines into messages that fit in a packet.
fn batches(lines: Vec<LogLine>) -> Vec<Vec<LogLine>> {
    let mut out = vec![Vec::new()];
    let mut size = 0;
    for l in lines {
        let cost = l.text.len() * 2 + 64;
        if size + cost > MAX_PACKET / 2 && !out.last().expect("non-empty").is_empty() {
            out.push(Vec::new());
            size = 0;
        }
        size += cost;
        out.last_mut().expect("non-empty").push(l);
    }
    out
}

async fn send(conn: &Packet, msg: &FromKeeper) {
    let _ = conn.send(&serde_json::to_vec(msg).unwrap_or_default(), &[]).await;
}

async fn serve_engine(keeper: Shared, conn: Rc<Packet>, done: tokio::sync::mpsc::UnboundedSender<()>) {
    let mut buf = vec![0u8; MAX_PACKET];
    loop {
        let (n, fds) = conn.recv(&mut buf).await.unwrap_or_default();
        if n == 0 {
            break;
        }
        let Ok(msg) = serde_json::from_slice::<ToKeeper>(&buf[..n]) else { continue };
        let mut fds = fds.into_iter();
        if let ToKeeper::Batch { msgs } = msg {
            keeper.borrow_mut().outbox = Some(Vec::new());
            for msg in msgs {
                handle(&keeper, msg, &mut fds, &done);
            }
            let mut k = keeper.borrow_mut();
            // The batch's notes reach their files in one write each.
            for service in std::mem::take(&mut k.unflushed) {
                if let Some(f) = k.files.get_mut(&service) {
                    let _ = f.flush();
                }
            }
            let answer = k.outbox.take().unwrap_or_default();
            k.answer(answer);
        } else {
            handle(&keeper, msg, &mut fds, &done);
        }
    }
    let mut k = keeper.borrow_mut();
    if k.engine.as_ref().is_some_and(|e| Rc::ptr_eq(e, &conn)) {
        k.engine = None;
    }
    let _ = done.send(());
}

/// One message of the engine's; an `Attach` takes its two descriptors from `fds`.
fn handle(
    keeper: &Shared,
    msg: ToKeeper,
    fds: &mut impl Iterator<Item = OwnedFd>,
    done: &tokio::sync::mpsc::UnboundedSender<()>,
) {
    match msg {
        ToKeeper::Attach { service, pid, start_time, max_file_size, max_files } => {
            let (Some(out), Some(err)) = (fds.next(), fds.next()) else { return };
            let info = StreamInfo { service: service.clone(), pid, start_time };
            {
                let mut k = keeper.borrow_mut();
                k.file(&service, max_file_size, max_files);
                k.streams.push(Stream { info: info.clone(), open_pipes: 2, exit_noted: false });
            }
            for (fd, name) in [(out, "out"), (err, "err")] {
                tokio::task::spawn_local(pump(keeper.clone(), info.clone(), fd, name, done.clone()));
            }
        }
        ToKeeper::Note { service, text, max_file_size, max_files, pid, exit } => {
            let mut k = keeper.borrow_mut();
            let line = LogLine { at_us: k.stamp(&service), stream: "gitvisor".into(), text };
            let in_batch = k.outbox.is_some();
            let f = k.file(&service, max_file_size, max_files);
            f.push(&format_line(&line));
            if !in_batch {
                let _ = f.flush();
            } else if !k.unflushed.contains(&service) {
                k.unflushed.push(service.clone());
            }
            k.forward(&service, vec![line], Origin::Note { pid, exit });
            if let (true, Some(pid)) = (exit, pid) {
                k.exit_noted(&service, pid);
            }
        }
        ToKeeper::Goodbye => {}
        ToKeeper::Leash { service, pgid, until_ms } => {
            let k2 = keeper.clone();
            let name = service.clone();
            let wait = Duration::from_millis(until_ms.saturating_sub(crate::time::now_ms()));
            let fire = tokio::task::spawn_local(async move {
                tokio::time::sleep(wait).await;
                if nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                )
                .is_ok()
                {
                    let text = format!(
                        "the lease of this singleton was not renewed in time: killed process group {pgid}"
                    );
                    let line = LogLine { at_us: now_us(), stream: "gitvisor".into(), text };
                    let mut k = k2.borrow_mut();
                    if let Some(f) = k.files.get_mut(&name) {
                        f.push(&format_line(&line));
                        let _ = f.flush();
                    }
                }
            });
            if let Some(old) = keeper.borrow_mut().leashes.insert(service, fire) {
                old.abort();
            }
        }
        ToKeeper::Unleash { service } => {
            if let Some(old) = keeper.borrow_mut().leashes.remove(&service) {
                old.abort();
            }
        }
        // A batch within a batch: its messages in place, answered with the outer one.
        ToKeeper::Batch { msgs } => {
            for msg in msgs {
                handle(keeper, msg, fds, done);
            }
        }
    }
}

/// Reads one pipe until it closes, writing and forwarding whole lines.
async fn pump(
    keeper: Shared,
    info: StreamInfo,
    fd: OwnedFd,
    stream: &'static str,
    done: tokio::sync::mpsc::UnboundedSender<()>,
) {
    // Only a partial line is kept per pipe; reads go through one buffer shared by all pipes
    // (the keeper is single-threaded and the buffer is never held across an await), so a
    // hundred idle services cost a hundred small tasks, not a hundred 64 KiB buffers.
    let mut pending: Vec<u8> = Vec::new();
    let pipe = nonblocking(fd).and_then(crate::seqpacket::register).ok();
    loop {
        let n = match &pipe {
            Some(p) => read_shared(p, &mut pending).await,
            None => 0,
        };
        let eof = n == 0;
        let mut texts = Vec::new();
        let mut start = 0;
        while let Some(i) = pending[start..].iter().position(|&b| b == b'\n') {
            // A line longer than MAX_LINE is split even when its end came in the same read.
            for piece in pending[start..start + i].chunks(MAX_LINE) {
                texts.push(line_text(piece));
            }
            start += i + 1;
        }
        pending.drain(..start);
        while pending.len() >= MAX_LINE || (eof && !pending.is_empty()) {
            let cut = pending.len().min(MAX_LINE);
            texts.push(line_text(&pending[..cut]));
            pending.drain(..cut);
        }
        if pending.is_empty() && pending.capacity() > 4096 {
            // A burst is over: give its memory back.
            pending = Vec::new();
        }
        if !texts.is_empty() {
            let mut k = keeper.borrow_mut();
            let lines: Vec<LogLine> = texts
                .into_iter()
                .map(|text| LogLine { at_us: k.stamp(&info.service), stream: stream.to_string(), text })
                .collect();
            let f = k.files.get_mut(&info.service).expect("file made at attach");
            for l in &lines {
                f.push(&format_line(l));
            }
            if let Err(e) = f.flush() {
                eprintln!("gitvisor log keeper: writing the log of {}: {e}", info.service);
            }
            k.forward(&info.service, lines, Origin::Output { pid: info.pid });
        }
        if eof {
            break;
        }
    }
    let mut k = keeper.borrow_mut();
    if let Some(i) = k.streams.iter().position(|s| s.info == info) {
        k.streams[i].open_pipes -= 1;
        if k.streams[i].open_pipes == 0 {
            let stream = k.streams.remove(i);
            k.pipes_closed(&stream.info, stream.exit_noted);
        }
    }
    drop(k);
    let _ = done.send(());
}

thread_local! {
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; 64 * 1024]);
}

/// Makes a pipe's read end non-blocking, as tokio's reactor needs. One `fcntl`: tokio's own
/// pipe type also checks the descriptor's type and reads its flags first, which a restart paid
/// for twice (docs/benchmarks.md); these descriptors come from the engine, which made them pipes.
fn nonblocking(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    // A pipe's read end has no other status flag worth keeping (O_RDONLY is not a status flag).
    use std::os::fd::AsRawFd;
    nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))?;
    Ok(fd)
}

/// Reads what the pipe has into `pending`; 0 at end of file (or on an error).
async fn read_shared(pipe: &tokio::io::unix::AsyncFd<OwnedFd>, pending: &mut Vec<u8>) -> usize {
    loop {
        let Ok(mut ready) = pipe.readable().await else { return 0 };
        let read = READ_BUF.with(|b| {
            let mut b = b.borrow_mut();
            ready.try_io(|fd| {
                let n = nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(fd.get_ref()), &mut b)?;
                pending.extend_from_slice(&b[..n]);
                Ok(n)
            })
        });
        match read {
            Ok(Ok(n)) => return n,
            // Not ready after all: tokio cleared the readiness; wait again.
            Err(_would_block) => continue,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(Err(_)) => return 0,
        }
    }
}

fn line_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// A keeper in a thread of its own, on a socket in `dir`.
    fn start_keeper(dir: &std::path::Path) -> (PathBuf, std::thread::JoinHandle<std::io::Result<()>>) {
        let socket = dir.join("logd.sock");
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let listener = crate::seqpacket::bind(&socket).unwrap();
        (socket, std::thread::spawn(move || run(listener, logs)))
    }

    async fn next(conn: &Packet) -> FromKeeper {
        let mut buf = vec![0u8; MAX_PACKET];
        let (n, _) = tokio::time::timeout(Duration::from_secs(20), conn.recv(&mut buf))
            .await
            .expect("the keeper answers")
            .unwrap();
        serde_json::from_slice(&buf[..n]).unwrap()
    }

    fn note(pid: u32, exit: bool, text: &str) -> ToKeeper {
        let (max_file_size, max_files) = (1 << 20, 2);
        ToKeeper::Note {
            service: "s".into(),
            text: text.into(),
            max_file_size,
            max_files,
            pid: Some(pid),
            exit,
        }
    }

    fn attach(pid: u32) -> ToKeeper {
        ToKeeper::Attach { service: "s".into(), pid, start_time: 1, max_file_size: 1 << 20, max_files: 2 }
    }

    /// What a message says, in short: `note:TEXT`, `out:TEXT`, `closed:PID`.
    fn said(msg: &FromKeeper) -> Vec<String> {
        match msg {
            FromKeeper::Lines { lines, origin, .. } => lines
                .iter()
                .map(|l| match origin {
                    Origin::Note { .. } => format!("note:{}", l.text),
                    _ => format!("{}:{}", l.stream, l.text),
                })
                .collect(),
            FromKeeper::Closed { pid, .. } => vec![format!("closed:{pid}")],
            FromKeeper::Batch { msgs } => msgs.iter().flat_map(said).collect(),
            FromKeeper::Dropped { count, .. } => vec![format!("dropped:{count}")],
            FromKeeper::Streams { .. } => vec!["streams".into()],
        }
    }

    #[test]
    fn a_restart_is_one_packet_each_way_and_closed_waits_for_the_exit_note() {
        let dir = tempfile::tempdir().unwrap();
        let (socket, keeper) = start_keeper(dir.path());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let conn = Packet::connect(&socket).unwrap();
            assert!(matches!(next(&conn).await, FromKeeper::Streams { batches: true, .. }));

            // Process 10 starts: its note and its pipes in one packet, one answer.
            let (out_r, out_w) = nix::unistd::pipe().unwrap();
            let (err_r, err_w) = nix::unistd::pipe().unwrap();
            let batch = ToKeeper::Batch { msgs: vec![note(10, false, "started 10"), attach(10)] };
            let fds = [out_r.as_raw_fd(), err_r.as_raw_fd()];
            conn.send(&serde_json::to_vec(&batch).unwrap(), &fds).await.unwrap();
            drop((out_r, err_r));
            let answer = next(&conn).await;
            assert!(matches!(answer, FromKeeper::Batch { .. }), "{answer:?}");
            assert_eq!(said(&answer), ["note:started 10"]);

            // It writes a line and exits: its output comes, its end is held for the exit note.
            nix::unistd::write(&out_w, b"hello\n").unwrap();
            drop((out_w, err_w));
            assert_eq!(said(&next(&conn).await), ["out:hello"]);

            // The restart: 10's exit, 11's start and pipes; one answer with 10's end in it.
            let (out_r, out_w) = nix::unistd::pipe().unwrap();
            let (err_r, err_w) = nix::unistd::pipe().unwrap();
            let batch = ToKeeper::Batch {
                msgs: vec![note(10, true, "10 exited"), note(11, false, "started 11"), attach(11)],
            };
            let fds = [out_r.as_raw_fd(), err_r.as_raw_fd()];
            conn.send(&serde_json::to_vec(&batch).unwrap(), &fds).await.unwrap();
            drop((out_r, err_r));
            assert_eq!(said(&next(&conn).await), ["note:10 exited", "closed:10", "note:started 11"]);

            // An exit note that comes while the pipes are open (a child holds them): the end is
            // told when they close. Messages one by one, as an older engine sends them.
            conn.send(&serde_json::to_vec(&note(11, true, "11 exited")).unwrap(), &[]).await.unwrap();
            assert_eq!(said(&next(&conn).await), ["note:11 exited"]);
            drop((out_w, err_w));
            assert_eq!(said(&next(&conn).await), ["closed:11"]);
        });
        drop(rt);
        keeper.join().unwrap().unwrap();
        let log = std::fs::read_to_string(dir.path().join("logs/s.log")).unwrap();
        let order: Vec<&str> = ["started 10", "hello", "10 exited", "started 11", "11 exited"]
            .into_iter()
            .filter(|t| log.contains(t))
            .collect();
        assert_eq!(order.len(), 5, "{log}");
        let at = |t: &str| log.find(t).unwrap();
        assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{log}");
    }

    #[test]
    fn batches_fit_in_a_packet() {
        let lines: Vec<LogLine> =
            (0..100).map(|_| LogLine { at_us: 0, stream: "out".into(), text: "z".repeat(4000) }).collect();
        let b = batches(lines);
        assert!(b.len() > 1);
        for batch in &b {
            let msg =
                FromKeeper::Lines { service: "s".into(), lines: batch.clone(), origin: Origin::Unknown };
            assert!(serde_json::to_vec(&msg).unwrap().len() < MAX_PACKET);
        }
        assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 100);
    }
}
