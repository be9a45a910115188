//! The kernel's socket tables, `/proc/net/{tcp,tcp6,udp,udp6}` (proc(5)), read as text: one
//! line per socket after a header,
//!
//! ```text
//!   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
//!    0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 …
//! ```
//!
//! Addresses are the raw bytes of the address, printed as 32-bit words (one for IPv4, four for
//! IPv6) in the host's byte order; ports are in hex, already in host order. `st` is the TCP
//! state (`0A`: LISTEN); a UDP socket that is bound and not connected has no remote (all
//! zeros). The inode names the socket: `/proc/PID/fd/N` links to `socket:[INODE]`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use gitvisor_units::PortProto;

/// TCP's LISTEN state in the `st` column.
const TCP_LISTEN: u8 = 0x0A;

/// A listening TCP socket or a bound, unconnected UDP socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub proto: PortProto,
    pub address: IpAddr,
    pub port: u16,
    pub inode: u64,
}

/// The listening (TCP) or bound (UDP) sockets of one table's text; `v6` for `tcp6`/`udp6`.
/// The header and lines that do not parse are skipped.
pub fn parse(text: &str, proto: PortProto, v6: bool) -> Vec<Socket> {
    text.lines().skip(1).filter_map(|line| parse_line(line, proto, v6)).collect()
}

fn parse_line(line: &str, proto: PortProto, v6: bool) -> Option<Socket> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (local, remote, state, inode) = (fields.get(1)?, fields.get(2)?, fields.get(3)?, fields.get(9)?);
    let (address, port) = endpoint(local, v6)?;
    let (remote_address, remote_port) = endpoint(remote, v6)?;
    let state = u8::from_str_radix(state, 16).ok()?;
    let open = match proto {
        PortProto::Tcp => state == TCP_LISTEN,
        PortProto::Udp => port != 0 && remote_port == 0 && remote_address.is_unspecified(),
    };
    let inode = inode.parse().ok()?;
    open.then_some(Socket { proto, address, port, inode })
}

/// `ADDR:PORT` as the kernel prints it.
fn endpoint(text: &str, v6: bool) -> Option<(IpAddr, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = addr.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let address = if v6 {
        if addr.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for i in 0..4 {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
        }
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        if addr.len() != 8 {
            return None;
        }
        IpAddr::V4(Ipv4Addr::from(word(0)?))
    };
    Some((address, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Sample tables as a little-endian machine prints them (these tests assume one, as x86 and
    // arm64 Linux are).
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 11111 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 22222 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 33333 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:A000 0100007F:1F90 06 00000000:00000000 03:00000BB8 00000000     0        0 0 3 0000000000000000
   garbage line
";

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 44444 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:2382 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 55555 1 0000000000000000 100 0 0 10 0
   2: 00000000000000000000000001000000:2382 00000000000000000000000001000000:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 66666 1 0000000000000000 20 4 30 10 -1
";

    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000   104        0 77777 2 0000000000000000 0
  101: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 88888 2 0000000000000000 0
  102: 0F02000A:9C40 08080808:0035 01 00000000:00000000 00:00000000 00000000  1000        0 99999 2 0000000000000000 0
";

    const UDP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  200: 00000000000000000000000000000000:14E9 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000   104        0 12121 2 0000000000000000 0
";

    fn sock(proto: PortProto, address: &str, port: u16, inode: u64) -> Socket {
        Socket { proto, address: address.parse().unwrap(), port, inode }
    }

    #[test]
    fn ipv4_tcp_listeners_only_with_hex_ports() {
        assert_eq!(
            parse(TCP, PortProto::Tcp, false),
            [sock(PortProto::Tcp, "0.0.0.0", 8080, 11111), sock(PortProto::Tcp, "127.0.0.1", 5432, 22222)],
            "established (01) and time-wait (06) sockets are not listeners"
        );
    }

    #[test]
    fn ipv6_addresses_are_four_host_order_words() {
        assert_eq!(
            parse(TCP6, PortProto::Tcp, true),
            [sock(PortProto::Tcp, "::", 80, 44444), sock(PortProto::Tcp, "::1", 9090, 55555)]
        );
    }

    #[test]
    fn udp_sockets_count_when_bound_and_not_connected() {
        assert_eq!(
            parse(UDP, PortProto::Udp, false),
            [sock(PortProto::Udp, "0.0.0.0", 5353, 77777), sock(PortProto::Udp, "127.0.0.1", 53, 88888)],
            "a connected socket (a client's, with a remote) is not a bound port"
        );
        assert_eq!(parse(UDP6, PortProto::Udp, true), [sock(PortProto::Udp, "::", 5353, 12121)]);
    }

    #[test]
    fn malformed_text_gives_nothing_and_never_panics() {
        for text in [
            "",
            "header only",
            "h\n0: zz:zz 00000000:0000 0A 0 0 0 0 0 1",
            "h\n0: 0100007F:1F90",
            "h\n0: 01:1F90 00:0 0A a b c d e 5",
        ] {
            assert!(parse(text, PortProto::Tcp, false).is_empty(), "{text:?}");
            assert!(parse(text, PortProto::Tcp, true).is_empty(), "{text:?}");
        }
    }

    #[test]
    fn this_machine_s_tables_read_and_show_a_listener_of_ours() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let text = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let found = parse(&text, PortProto::Tcp, false);
        assert!(
            found.iter().any(|s| s.port == port && s.address == IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{port} not among {found:?}"
        );
    }
}
