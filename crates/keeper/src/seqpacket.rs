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
        Ok(Listener { fd: register(fd)? })
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
        Ok(Packet { fd: register(fd)? })
    }

    pub fn connect(path: &Path) -> io::Result<Packet> {
        let fd = new_socket()?;
        socket::connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
        Packet::new(fd)
    }

    /// Sends one message with `fds` attached, waiting for room.
    pub async fn send(&self, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
        self.fd.async_io(Interest::WRITABLE, |fd| send_raw(fd.as_raw_fd(), bytes, fds)).await
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
