//! Ports: which TCP ports a service's processes listen on and which UDP ports they have bound,
//! and who holds a port a unit declares before it starts.
//!
//! # Theory of operation
//!
//! The kernel lists every socket of the engine's network namespace in `/proc/net/{tcp,tcp6,
//! udp,udp6}` ([`proc_net`]) with its inode, and each process's descriptors link to
//! `socket:[INODE]` in `/proc/PID/fd`. A service's ports are the listening sockets whose inode
//! one of its processes holds: its whole tree (the session the service leads, or its cgroup),
//! so a port a child opened counts. They are read only when asked for, with the metrics (a
//! `status` or `metrics` call, at most once a second): nothing here runs on a timer.
//!
//! Before a start, each port of `Ports=` (and of `ReadyCheck=tcp:`) is looked up the other way
//! round: a socket on that port (TCP: listening on any address; UDP: bound) and the processes
//! holding it ([`holder`]). A process of one of this home's services carries the home's mark
//! in its environment, or its session leader does (engine/orphans.rs), which names the
//! service. A socket no readable process holds belongs to another user.

pub mod proc_net;

use std::collections::HashSet;

use gitvisor_protocol::ListeningPort;
use gitvisor_units::{Port, PortProto};

use proc_net::Socket;

/// Every listening TCP socket and bound UDP socket of the engine's network namespace. A table
/// that cannot be read (IPv6 turned off) contributes nothing.
pub fn listening() -> Vec<Socket> {
    let tables = [
        ("tcp", PortProto::Tcp, false),
        ("tcp6", PortProto::Tcp, true),
        ("udp", PortProto::Udp, false),
        ("udp6", PortProto::Udp, true),
    ];
    tables
        .iter()
        .flat_map(|(file, proto, v6)| {
            let text = std::fs::read_to_string(format!("/proc/net/{file}")).unwrap_or_default();
            proc_net::parse(&text, *proto, *v6)
        })
        .collect()
}

/// The socket inodes a process holds open (none when its descriptors cannot be read).
pub fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| {
            let link = std::fs::read_link(e.path()).ok()?;
            link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// The ports `pids` listen on among `sockets`, sorted by port, protocol and address.
pub fn of_processes(pids: &[u32], sockets: &[Socket]) -> Vec<ListeningPort> {
    if sockets.is_empty() {
        return Vec::new();
    }
    let held: HashSet<u64> = pids.iter().flat_map(|p| socket_inodes(*p)).collect();
    let mut out: Vec<ListeningPort> = sockets
        .iter()
        .filter(|s| held.contains(&s.inode))
        .map(|s| ListeningPort {
            port: s.port,
            proto: s.proto.as_str().into(),
            address: s.address.to_string(),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Who holds a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holding processes, lowest pid first; empty when none could be read (another user's).
    pub pids: Vec<u32>,
    /// This home's service they belong to.
    pub service: Option<String>,
}

impl Holder {
    /// `port 8080 is held by pid 1234 (node server.js)`, `… by service api`, `… by another
    /// user's process`; a process of `own` (left by an earlier start) is named with its pid.
    pub fn describe(&self, port: Port, own: &str) -> String {
        let Some(&pid) = self.pids.first() else {
            return format!("port {port} is held by another user's process");
        };
        match self.service.as_deref() {
            Some(s) if s != own => format!("port {port} is held by service {s}"),
            Some(_) => format!(
                "port {port} is held by pid {pid} ({}), left behind by an earlier start of {own}",
                command(pid)
            ),
            None => format!("port {port} is held by pid {pid} ({})", command(pid)),
        }
    }
}

/// Who holds `port` now (none: it is free). `home_id` is this home's mark, to name services.
pub fn holder(port: Port, sockets: &[Socket], home_id: &str) -> Option<Holder> {
    let inodes: HashSet<u64> =
        sockets.iter().filter(|s| s.proto == port.proto && s.port == port.port).map(|s| s.inode).collect();
    if inodes.is_empty() {
        return None;
    }
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| socket_inodes(*pid).iter().any(|i| inodes.contains(i)))
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    let service = pids.iter().find_map(|pid| service_of(*pid, home_id));
    Some(Holder { pids, service })
}

/// The service of this home a process belongs to: named in its environment, or in its session
/// leader's (each start leads a session; a child may have cleared its environment).
fn service_of(pid: u32, home_id: &str) -> Option<String> {
    let mark = format!("{}={home_id}", crate::engine::orphans::HOME_ID_VAR);
    let named = |pid: u32| {
        let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        let vars: Vec<&[u8]> = env.split(|b| *b == 0).collect();
        if !vars.contains(&mark.as_bytes()) {
            return None;
        }
        vars.iter()
            .find_map(|v| v.strip_prefix(b"GITVISOR_SERVICE="))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    named(pid).or_else(|| named(crate::supervisor::process::session_of(pid)?))
}

/// A process on its way out: its memory is gone (no command line, no environment) while its
/// descriptors may still hold sockets for an instant.
pub fn is_exiting(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).map_or(true, |c| c.is_empty())
}

/// A process's command line as one line, shortened: `node server.js`.
pub fn command(pid: u32) -> String {
    const MAX: usize = 160;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut text = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(" ");
    if text.is_empty() {
        // A kernel thread or a process on its way out: its name.
        text = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string();
    }
    if text.chars().count() > MAX {
        text = text.chars().take(MAX - 1).collect::<String>() + "…";
    }
    if text.is_empty() {
        "unknown command".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_of_this_process_is_found_with_its_holder() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (tp, up) = (tcp.local_addr().unwrap().port(), udp.local_addr().unwrap().port());
        let me = std::process::id();
        let sockets = listening();
        let mine = of_processes(&[me], &sockets);
        assert!(mine.contains(&ListeningPort { port: tp, proto: "tcp".into(), address: "127.0.0.1".into() }));
        assert!(mine.contains(&ListeningPort { port: up, proto: "udp".into(), address: "127.0.0.1".into() }));
        let held = holder(Port { port: tp, proto: PortProto::Tcp }, &sockets, "no-such-home").unwrap();
        assert!(held.pids.contains(&me), "{held:?}");
        assert_eq!(held.service, None);
        let said = Holder { pids: vec![me], service: None }
            .describe(Port { port: tp, proto: PortProto::Tcp }, "web");
        assert!(said.starts_with(&format!("port {tp} is held by pid {me} (")), "{said}");
        // The same number in the other protocol is free.
        assert_eq!(
            holder(Port { port: tp, proto: PortProto::Udp }, &sockets, "x").filter(|h| h.pids.contains(&me)),
            None
        );
    }

    #[test]
    fn holders_are_described_as_users_read_them() {
        let p = Port { port: 5353, proto: PortProto::Udp };
        assert_eq!(
            Holder { pids: vec![], service: None }.describe(p, "web"),
            "port 5353/udp is held by another user's process"
        );
        assert_eq!(
            Holder { pids: vec![1], service: Some("api".into()) }.describe(p, "web"),
            "port 5353/udp is held by service api"
        );
    }
}
