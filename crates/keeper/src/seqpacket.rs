//! Unix SOCK_SEQPACKET sockets on tokio, with file descriptor passing. The keeper protocol needs
//! message boundaries and SCM_RIGHTS, which tokio's stream sockets do not offer.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{
    self, AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Registers an owned descriptor with tokio's reactor.
pub fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns the descriptor, so it stays open and the same for its lifetime.
    Ok(unsafe { AsyncFd::register(fd) }?)
}

/// Registers a socket for reading only. A socket registered for writing too is woken each time
/// its peer takes a message (the kernel tells every writer that room was made), so each side
/// of a conversation would wake the other once more per message for nothing; a sender that
/// finds no room waits through [`Packet::send`]'s own registration instead.
fn register_readable(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: as in `register`.
    Ok(unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?)
}

/// Largest message either side sends.
pub const MAX_PACKET: usize = 128 * 1024;

fn new_socket() -> io::Result<OwnedFd> {
    Ok(socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?)
}

/// A bound, listening socket at `path` (a stale file there is replaced).
pub fn bind(path: &Path) -> io::Result<OwnedFd> {
    let fd = new_socket()?;
    let _ = std::fs::remove_file(path);
    socket::bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    socket::listen(&fd, Backlog::new(64).map_err(io::Error::from)?)?;
    Ok(fd)
}

pub struct Listener {
    fd: AsyncFd<OwnedFd>,
}

impl Listener {
    pub fn new(fd: OwnedFd) -> io::Result<Listener> {
        nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))?;
        Ok(Listener { fd: register_readable(fd)? })
    }

    pub async fn accept(&self) -> io::Result<Packet> {
        let raw = self
            .fd
            .async_io(Interest::READABLE, |fd| {
                socket::accept4(fd.as_raw_fd(), SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK)
                    .map_err(io::Error::from)
            })
            .await?;
        // SAFETY: accept4 returned a new descriptor that nothing else owns.
        Packet::new(unsafe { OwnedFd::from_raw_fd(raw) })
    }
}

/// One connected SOCK_SEQPACKET socket.
pub struct Packet {
    fd: AsyncFd<OwnedFd>,
}

impl Packet {
    pub fn new(fd: OwnedFd) -> io::Result<Packet> {
        Ok(Packet { fd: register_readable(fd)? })
    }

    pub fn connect(path: &Path) -> io::Result<Packet> {
        let fd = new_socket()?;
        socket::connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
        Packet::new(fd)
    }

    /// Sends one message with `fds` attached, waiting for room.
    pub async fn send(&self, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
        loop {
            match send_raw(self.fd.as_raw_fd(), bytes, fds) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.room().await?,
                sent => return sent,
            }
        }
    }

    /// Waits until the peer has taken a message: through a duplicate of the socket registered
    /// for writing only while something waits to write (see `register_readable`). A socket
    /// already writable when registered is reported at once, so room made between the failed
    /// send and the registration is not missed.
    async fn room(&self) -> io::Result<()> {
        let dup = self.fd.get_ref().try_clone()?;
        // SAFETY: as in `register`; the duplicate lives as long as the AsyncFd that owns it.
        let waiter = unsafe { AsyncFd::register_with_interest(dup, Interest::WRITABLE) }?;
        waiter.writable().await?.retain_ready();
        Ok(())
    }

    /// Sends without waiting: `Ok(false)` when the peer's queue is full.
    pub fn try_send(&self, bytes: &[u8]) -> io::Result<bool> {
        match send_raw(self.fd.as_raw_fd(), bytes, &[]) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The next message and the descriptors it carried; an empty message means the peer closed.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
        self.fd.async_io(Interest::READABLE, |fd| recv_raw(fd.as_raw_fd(), buf)).await
    }
}

impl AsFd for Packet {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}

fn send_raw(fd: RawFd, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let iov = [IoSlice::new(bytes)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    socket::sendmsg::<()>(fd, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT, None)?;
    Ok(())
}

fn recv_raw(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = socket::recvmsg::<()>(
        fd,
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
    )?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(received) = c {
            // SAFETY: the kernel installed these descriptors for us; we are their only owner.
            fds.extend(received.into_iter().map(|r| unsafe { OwnedFd::from_raw_fd(r) }));
        }
    }
    Ok((msg.bytes, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    fn pair() -> (Packet, Packet) {
        let (a, b) = socket::socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        )
        .unwrap();
        (Packet::new(a).unwrap(), Packet::new(b).unwrap())
    }

    /// The events `fd` is registered for in this process's epoll instances (from
    /// `/proc/self/fdinfo`), if it is registered at all.
    fn registered_events(fd: RawFd) -> Option<u32> {
        for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            let link = std::fs::read_link(entry.path()).unwrap_or_default();
            if link.to_string_lossy() != "anon_inode:[eventpoll]" {
                continue;
            }
            let info =
                std::fs::read_to_string(format!("/proc/self/fdinfo/{}", entry.file_name().to_string_lossy()))
                    .unwrap_or_default();
            for line in info.lines() {
                let mut words = line.split_whitespace();
                if words.next() == Some("tfd:") && words.next() == Some(&fd.to_string()) {
                    words.next(); // "events:"
                    return u32::from_str_radix(words.next()?, 16).ok();
                }
            }
        }
        None
    }

    #[tokio::test]
    async fn a_socket_is_registered_for_reading_only_so_its_peers_reads_do_not_wake_it() {
        let (a, _b) = pair();
        let events = registered_events(a.as_fd().as_raw_fd()).expect("registered with the reactor");
        assert_ne!(events & nix::libc::EPOLLIN as u32, 0, "{events:#x}");
        assert_eq!(events & nix::libc::EPOLLOUT as u32, 0, "{events:#x}: a peer's every read would wake it");
    }

    #[tokio::test]
    async fn a_send_to_a_full_queue_waits_for_the_peer_to_read_then_goes() {
        let (a, b) = pair();
        let mut queued = 0;
        while a.try_send(b"queued").unwrap() {
            queued += 1;
        }
        assert!(queued > 0);
        let a = Arc::new(a);
        let sent = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (a, sent) = (a.clone(), sent.clone());
            async move {
                a.send(b"last", &[]).await.unwrap();
                sent.store(true, Ordering::SeqCst);
            }
        });
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert!(!sent.load(Ordering::SeqCst), "sent into a full queue");
        let events = registered_events(a.as_fd().as_raw_fd()).unwrap();
        assert_eq!(
            events & nix::libc::EPOLLOUT as u32,
            0,
            "the socket itself stays registered for reading only"
        );
        // The kernel reports room once the queue has drained to a quarter of the send buffer.
        let mut buf = [0u8; 16];
        for _ in 0..queued {
            let (n, _) = b.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"queued");
        }
        let (n, _) = tokio::time::timeout(Duration::from_secs(20), b.recv(&mut buf))
            .await
            .expect("the send goes once there is room")
            .unwrap();
        assert_eq!(&buf[..n], b"last", "in order, after what was queued");
        task.await.unwrap();
        assert!(sent.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn descriptors_travel_with_their_message() {
        let (a, b) = pair();
        let (r, w) = nix::unistd::pipe().unwrap();
        a.send(b"with a pipe", &[r.as_raw_fd()]).await.unwrap();
        drop(r);
        let mut buf = [0u8; 32];
        let (n, fds) = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"with a pipe");
        assert_eq!(fds.len(), 1);
        nix::unistd::write(&w, b"x").unwrap();
        let mut got = [0u8; 1];
        assert_eq!(nix::unistd::read(fds[0].as_raw_fd(), &mut got).unwrap(), 1);
        assert_eq!(&got, b"x");
    }
}
