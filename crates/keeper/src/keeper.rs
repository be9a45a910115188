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
}

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
                    send(&conn, &FromKeeper::Streams { streams }).await;
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

    /// Forwards lines to the engine without waiting; counts what did not fit.
    fn forward(&mut self, service: &str, lines: Vec<LogLine>, origin: Origin) {
        let Some(engine) = self.engine.clone() else { return };
        let missed = self.dropped.get(service).copied().unwrap_or(0);
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
        let (n, mut fds) = conn.recv(&mut buf).await.unwrap_or_default();
        if n == 0 {
            break;
        }
        let Ok(msg) = serde_json::from_slice::<ToKeeper>(&buf[..n]) else { continue };
        match msg {
            ToKeeper::Attach { service, pid, start_time, max_file_size, max_files } => {
                if fds.len() != 2 {
                    continue;
                }
                let err = fds.pop().expect("two");
                let out = fds.pop().expect("two");
                let info = StreamInfo { service: service.clone(), pid, start_time };
                {
                    let mut k = keeper.borrow_mut();
                    k.file(&service, max_file_size, max_files);
                    k.streams.push(Stream { info: info.clone(), open_pipes: 2 });
                }
                for (fd, name) in [(out, "out"), (err, "err")] {
                    tokio::task::spawn_local(pump(keeper.clone(), info.clone(), fd, name, done.clone()));
                }
            }
            ToKeeper::Note { service, text, max_file_size, max_files, pid, exit } => {
                let mut k = keeper.borrow_mut();
                let line = LogLine { at_us: k.stamp(&service), stream: "gitvisor".into(), text };
                let f = k.file(&service, max_file_size, max_files);
                f.push(&format_line(&line));
                let _ = f.flush();
                k.forward(&service, vec![line], Origin::Note { pid, exit });
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
        }
    }
    let mut k = keeper.borrow_mut();
    if k.engine.as_ref().is_some_and(|e| Rc::ptr_eq(e, &conn)) {
        k.engine = None;
    }
    let _ = done.send(());
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
    let pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(fd).ok();
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
            k.streams.remove(i);
            if let Some(engine) = k.engine.clone() {
                let msg = FromKeeper::Closed { service: info.service.clone(), pid: info.pid };
                let _ = engine.try_send(&serde_json::to_vec(&msg).unwrap_or_default());
            }
        }
    }
    drop(k);
    let _ = done.send(());
}

thread_local! {
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; 64 * 1024]);
}

/// Reads what the pipe has into `pending`; 0 at end of file (or on an error).
async fn read_shared(pipe: &tokio::net::unix::pipe::Receiver, pending: &mut Vec<u8>) -> usize {
    loop {
        if pipe.readable().await.is_err() {
            return 0;
        }
        let read = READ_BUF.with(|b| {
            let mut b = b.borrow_mut();
            pipe.try_read(&mut b).inspect(|&n| pending.extend_from_slice(&b[..n]))
        });
        match read {
            Ok(n) => return n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return 0,
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
