//! Just enough rtnetlink: link dumps, link events, and setting a link up or down.
//!
//! Link state comes from the kernel's RTM_NEWLINK/RTM_DELLINK multicast (events, no
//! polling). A dedicated thread blocks on the socket and hands each change over.

use std::io;
use std::mem::size_of;

const NLMSG_HDR: usize = 16;
const IFINFO: usize = 16;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const RTMGRP_LINK: u32 = 1;
const IFLA_IFNAME: u16 = 3;
const IFF_UP: u32 = 1;
const IFF_LOWER_UP: u32 = 0x10000;

/// One link as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    /// Administratively up (IFF_UP).
    pub admin_up: bool,
    /// Carrier present and admin up: what SR Linux calls oper-state `up`.
    pub oper_up: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    Changed(Link),
    Removed(String),
}

struct Socket(libc::c_int);

impl Drop for Socket {
    fn drop(&mut self) {
        unsafe { libc::close(self.0) };
    }
}

impl Socket {
    fn open(groups: u32) -> io::Result<Socket> {
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let sock = Socket(fd);
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        addr.nl_groups = groups;
        let rc = unsafe {
            libc::bind(fd, &addr as *const _ as *const libc::sockaddr, size_of::<libc::sockaddr_nl>() as u32)
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sock)
    }

    fn send(&self, msg: &[u8]) -> io::Result<()> {
        let n = unsafe { libc::send(self.0, msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let n = unsafe { libc::recv(self.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
    }
}

fn header(len: usize, kind: u16, flags: u16, seq: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m
}

fn ifinfo(index: i32, flags: u32, change: u32) -> [u8; IFINFO] {
    let mut b = [0u8; IFINFO];
    b[0] = libc::AF_UNSPEC as u8;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// What one netlink message says, if it is about links.
enum Parsed {
    Event(LinkEvent),
    Done,
    Error(i32),
    Other,
}

fn parse_message(kind: u16, body: &[u8]) -> Parsed {
    match kind {
        NLMSG_DONE => Parsed::Done,
        NLMSG_ERROR if body.len() >= 4 => Parsed::Error(-(u32_at(body, 0) as i32)),
        RTM_NEWLINK | RTM_DELLINK if body.len() >= IFINFO => {
            let flags = u32_at(body, 8);
            let mut name = None;
            let mut at = IFINFO;
            while at + 4 <= body.len() {
                let len = u16_at(body, at) as usize;
                if len < 4 || at + len > body.len() {
                    break;
                }
                if u16_at(body, at + 2) == IFLA_IFNAME {
                    let raw = &body[at + 4..at + len];
                    let raw = raw.split(|&c| c == 0).next().unwrap_or_default();
                    name = Some(String::from_utf8_lossy(raw).into_owned());
                }
                at += (len + 3) & !3;
            }
            let Some(name) = name else { return Parsed::Other };
            if kind == RTM_DELLINK {
                return Parsed::Event(LinkEvent::Removed(name));
            }
            let admin_up = flags & IFF_UP != 0;
            Parsed::Event(LinkEvent::Changed(Link { name, admin_up, oper_up: admin_up && flags & IFF_LOWER_UP != 0 }))
        }
        _ => Parsed::Other,
    }
}

/// Every message in one datagram.
fn messages(buf: &[u8]) -> Vec<Parsed> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + NLMSG_HDR <= buf.len() {
        let len = u32_at(buf, at) as usize;
        if len < NLMSG_HDR || at + len > buf.len() {
            break;
        }
        out.push(parse_message(u16_at(buf, at + 4), &buf[at + NLMSG_HDR..at + len]));
        at += (len + 3) & !3;
    }
    out
}

/// Opens the event socket, then dumps every link; `on_event` gets the dump first, then
/// every change, forever (on the calling thread). Returns only on a socket error.
pub fn watch_links(mut on_event: impl FnMut(LinkEvent)) -> io::Error {
    let sock = match Socket::open(RTMGRP_LINK) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut dump = header(NLMSG_HDR + IFINFO, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1);
    dump.extend_from_slice(&ifinfo(0, 0, 0));
    if let Err(e) = sock.send(&dump) {
        return e;
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // ENOBUFS: events were dropped; the caller restarts with a fresh dump.
            Err(e) => return e,
        };
        for m in messages(&buf[..n]) {
            if let Parsed::Event(e) = m {
                on_event(e);
            }
        }
    }
}

/// Sets a link administratively up or down and waits for the kernel's answer.
pub fn set_admin(linux_name: &str, up: bool) -> io::Result<()> {
    let cname = std::ffi::CString::new(linux_name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("no such link {linux_name}")));
    }
    let sock = Socket::open(0)?;
    let mut msg = header(NLMSG_HDR + IFINFO, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 2);
    msg.extend_from_slice(&ifinfo(index as i32, if up { IFF_UP } else { 0 }, IFF_UP));
    sock.send(&msg)?;
    let mut buf = vec![0u8; 8192];
    loop {
        let n = sock.recv(&mut buf)?;
        for m in messages(&buf[..n]) {
            match m {
                Parsed::Error(0) => return Ok(()),
                Parsed::Error(errno) => return Err(io::Error::from_raw_os_error(errno)),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn newlink(name: &str, flags: u32) -> Vec<u8> {
        let mut attr = Vec::new();
        let raw = [name.as_bytes(), &[0]].concat();
        attr.extend_from_slice(&((4 + raw.len()) as u16).to_ne_bytes());
        attr.extend_from_slice(&IFLA_IFNAME.to_ne_bytes());
        attr.extend_from_slice(&raw);
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut m = header(NLMSG_HDR + IFINFO + attr.len(), RTM_NEWLINK, 0, 0);
        m.extend_from_slice(&ifinfo(7, flags, 0));
        m.extend_from_slice(&attr);
        m
    }

    #[test]
    fn parses_admin_and_oper_state_from_flags() {
        let buf =
            [newlink("e1-49", IFF_UP | IFF_LOWER_UP), newlink("e1-50", IFF_UP), newlink("e1-1", IFF_LOWER_UP)].concat();
        let got: Vec<_> = messages(&buf)
            .into_iter()
            .filter_map(|m| if let Parsed::Event(LinkEvent::Changed(l)) = m { Some(l) } else { None })
            .collect();
        let want = |name: &str, admin_up, oper_up| Link { name: name.into(), admin_up, oper_up };
        assert_eq!(got, vec![want("e1-49", true, true), want("e1-50", true, false), want("e1-1", false, false)]);
    }

    #[test]
    fn truncated_messages_are_ignored_not_read_past() {
        let mut buf = newlink("e1-49", IFF_UP);
        buf.truncate(buf.len() - 3);
        assert!(messages(&buf).is_empty());
    }
}
