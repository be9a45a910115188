//! The service notification protocol (sd_notify(3)): a datagram socket per service whose path
//! the service gets in `$NOTIFY_SOCKET`. A message is newline-separated `KEY=VALUE` lines
//! (`READY=1`, `STATUS=…`, `WATCHDOG=1`…). The kernel stamps each with its sender's pid
//! (`SO_PASSCRED`), so the task takes messages only from the processes `NotifyAccess=` allows.
//!
//! The socket's path is stable for a service (`<home>/notify/<name>`): a process adopted by the
//! next engine still reaches it, so its watchdog keeps working across an engine restart.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::socket::{
    bind, recvmsg, setsockopt, socket, sockopt, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag,
    SockType, UnixAddr,
};
use tokio::io::unix::AsyncFd;

/// The largest message taken (systemd's limit is the same order: a page or so of fields).
const MAX_MESSAGE: usize = 4096;

/// One service's notification socket; removed when dropped.
pub struct NotifySocket {
    fd: AsyncFd<OwnedFd>,
    pub path: PathBuf,
}

/// A message, with the pid the kernel says sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub pid: Option<u32>,
    pub fields: Vec<(String, String)>,
}

impl NotifySocket {
    /// Binds `path` (a stale socket file left there is replaced); readable only by the user.
    pub fn bind(path: &Path) -> io::Result<NotifySocket> {
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let fd = socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        let addr = UnixAddr::new(path)?;
        bind(fd.as_raw_fd(), &addr)?;
        setsockopt(&fd, sockopt::PassCred, &true)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        // SAFETY: the socket is owned by the AsyncFd from here on, and closed only by it.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }?;
        Ok(NotifySocket { fd, path: path.to_path_buf() })
    }

    /// The next message (malformed datagrams are skipped, never an error of the service).
    pub async fn recv(&self) -> io::Result<Message> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| receive(fd.get_ref())) {
                Ok(Ok(Some(message))) => return Ok(message),
                Ok(Ok(None)) => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn receive(fd: &OwnedFd) -> io::Result<Option<Message>> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut cmsg = nix::cmsg_space!(libc::ucred);
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(fd.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_TRUNC)?;
    if msg.flags.contains(MsgFlags::MSG_TRUNC) {
        return Ok(None);
    }
    let mut pid = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmCredentials(cred) = c {
            pid = u32::try_from(cred.pid()).ok();
        }
    }
    let len = msg.bytes;
    Ok(Some(Message { pid, fields: parse(&buf[..len]) }))
}

/// The `KEY=VALUE` lines of a message; lines without `=` or not UTF-8 are skipped.
pub fn parse(bytes: &[u8]) -> Vec<(String, String)> {
    let Ok(text) = std::str::from_utf8(bytes) else { return Vec::new() };
    text.split('\n')
        .filter_map(|line| line.split_once('='))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_key_value_lines() {
        assert_eq!(
            parse(b"READY=1\nSTATUS=Serving 3 clients\n\ngarbage\nWATCHDOG=1"),
            [
                ("READY".to_string(), "1".to_string()),
                ("STATUS".to_string(), "Serving 3 clients".to_string()),
                ("WATCHDOG".to_string(), "1".to_string()),
            ]
        );
        assert!(parse(b"\xff\xfe=1").is_empty());
        assert_eq!(parse(b"STATUS=a=b"), [("STATUS".to_string(), "a=b".to_string())]);
    }

    #[tokio::test]
    async fn a_datagram_arrives_with_its_senders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify/web");
        let socket = NotifySocket::bind(&path).unwrap();
        let client = std::os::unix::net::UnixDatagram::unbound().unwrap();
        client.send_to(b"READY=1\nSTATUS=up", &path).unwrap();
        let message = socket.recv().await.unwrap();
        assert_eq!(message.pid, Some(std::process::id()));
        assert_eq!(message.fields[0], ("READY".to_string(), "1".to_string()));
        assert_eq!(message.fields[1], ("STATUS".to_string(), "up".to_string()));
        // A second socket for the same service replaces the first's file; dropping removes it.
        drop(socket);
        assert!(!path.exists());
    }
}
