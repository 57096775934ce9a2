//! Next hops on the LAN for decrypted packets, so the worker can transmit them on its LAN
//! AF_XDP socket (from the same UMEM frame) instead of handing them to the kernel's raw socket
//! (route lookup, netfilter, neighbour output, an skb copy: most of a worker's kernel time).
//!
//! The kernel stays the authority: a resolver thread (never the worker) asks it over rtnetlink
//! for the route to a destination (`ip route get`) and the neighbour entry of its next hop
//! (`ip neigh get`), and tells the worker. The worker transmits itself only to destinations the
//! kernel routes out of the LAN interface as plain unicast, with a usable neighbour entry, and
//! only packets that fit the interface's MTU; everything else (a miss, local or broadcast
//! destinations, routes out of other interfaces, packets to fragment) still goes through the
//! raw socket, where the kernel resolves ARP, fragments, or answers with ICMP.
//!
//! Entries are re-resolved every [`REFRESH`], so route and neighbour changes reach the
//! worker within that time, and dropped after [`LIFETIME`] (the next packet to the destination
//! goes through the kernel and asks again), so only destinations in use are held; at most
//! [`MAX_DESTINATIONS`] at a time (beyond that, the others go through the kernel). A neighbour the kernel holds as STALE is used, but the worker
//! then sends one packet to it through the kernel, which makes the kernel re-validate it
//! (DELAY, PROBE, then REACHABLE, or FAILED and the entry goes).

use std::{
    collections::HashMap,
    net::Ipv4Addr,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    sync::mpsc::{self, Receiver, RecvTimeoutError, Sender},
    time::{Duration, Instant},
};

/// How often the entries the worker holds are checked against the kernel's tables.
pub const REFRESH: Duration = Duration::from_secs(1);
/// How long a destination without a usable next hop waits before the worker asks again.
pub const RETRY: Duration = Duration::from_secs(1);
/// How long a resolved destination is kept before it must be asked for again.
pub const LIFETIME: Duration = Duration::from_secs(30);
/// Destinations resolved (or being asked about) at a time.
pub const MAX_DESTINATIONS: usize = 4096;

/// Where to send a decrypted packet on the LAN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// The LAN interface's MTU: larger packets go through the kernel (fragmentation, ICMP).
    pub mtu: u16,
    /// The kernel's entry is STALE: send one packet through the kernel so it re-checks it.
    pub confirm: bool,
}

/// The resolver's word about one destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Transmit to it with this next hop.
    Hop(Ipv4Addr, NextHop),
    /// No usable next hop on the LAN: the kernel's path (asked again after [`RETRY`]).
    Unusable(Ipv4Addr),
    /// Held for [`LIFETIME`]: forget it; the next packet asks again.
    Expired(Ipv4Addr),
}

/// The worker's side: the next hops it may use, and the requests it has outstanding.
pub struct NextHopCache {
    hops: HashMap<Ipv4Addr, NextHop>,
    /// Destinations asked about (or answered "use the kernel") and when.
    asked: HashMap<Ipv4Addr, Instant>,
    requests: Sender<Ipv4Addr>,
    answers: Receiver<Answer>,
}

impl NextHopCache {
    /// Starts the resolver thread for the LAN interface `lan_ifindex`; it ends when the cache
    /// is dropped.
    pub fn start(lan_ifindex: u32) -> std::io::Result<Self> {
        let (requests, requests_rx) = mpsc::channel();
        let (answers_tx, answers) = mpsc::channel();
        let netlink = Netlink::open()?;
        std::thread::Builder::new()
            .name("nexthop".into())
            .spawn(move || resolver(netlink, lan_ifindex, requests_rx, answers_tx))?;
        Ok(Self::with_channels(requests, answers))
    }

    fn with_channels(requests: Sender<Ipv4Addr>, answers: Receiver<Answer>) -> Self {
        NextHopCache {
            hops: HashMap::new(),
            asked: HashMap::new(),
            requests,
            answers,
        }
    }

    /// Applies the resolver's answers (cheap when there are none).
    pub fn update(&mut self) {
        while let Ok(answer) = self.answers.try_recv() {
            match answer {
                Answer::Hop(dst, hop) => {
                    self.hops.insert(dst, hop);
                    self.asked.remove(&dst);
                }
                Answer::Unusable(dst) => {
                    self.hops.remove(&dst);
                    self.asked.insert(dst, Instant::now());
                }
                Answer::Expired(dst) => {
                    self.hops.remove(&dst);
                    self.asked.remove(&dst);
                }
            }
        }
        if self.asked.len() > MAX_DESTINATIONS {
            let now = Instant::now();
            self.asked.retain(|_, at| now.duration_since(*at) < RETRY);
        }
    }

    /// The next hop for `dst`, if known; otherwise asks the resolver (at most once per
    /// [`RETRY`]) and returns `None`: this packet goes through the kernel. A hop flagged for
    /// confirmation also returns `None` once (see the module documentation).
    pub fn lookup(&mut self, dst: Ipv4Addr, now: impl FnOnce() -> Instant) -> Option<NextHop> {
        if let Some(hop) = self.hops.get_mut(&dst) {
            if hop.confirm {
                hop.confirm = false;
                return None;
            }
            return Some(*hop);
        }
        let now = now();
        let due = match self.asked.get(&dst) {
            Some(at) => now.duration_since(*at) >= RETRY,
            None => self.hops.len() + self.asked.len() < MAX_DESTINATIONS,
        };
        if due {
            self.asked.insert(dst, now);
            let _ = self.requests.send(dst);
        }
        None
    }
}

/// The resolver thread: answers requests at once, and re-resolves every known destination
/// every [`REFRESH`], sending only what changed.
fn resolver(
    mut netlink: Netlink,
    lan_ifindex: u32,
    requests: Receiver<Ipv4Addr>,
    answers: Sender<Answer>,
) {
    // What the worker was told last, and when the destination was first resolved.
    let mut known: HashMap<Ipv4Addr, (Option<NextHop>, Instant)> = HashMap::new();
    let mut next_refresh = Instant::now() + REFRESH;
    loop {
        let wait = next_refresh.saturating_duration_since(Instant::now());
        match requests.recv_timeout(wait) {
            Ok(dst) => {
                let hop = netlink.resolve(dst, lan_ifindex);
                known.insert(dst, (hop, Instant::now()));
                let answer = match hop {
                    Some(hop) => Answer::Hop(dst, hop),
                    None => Answer::Unusable(dst),
                };
                if answers.send(answer).is_err() {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                next_refresh = now + REFRESH;
                let mut gone = Vec::new();
                for (dst, (old, since)) in known.iter_mut() {
                    if now.duration_since(*since) >= LIFETIME {
                        if answers.send(Answer::Expired(*dst)).is_err() {
                            return;
                        }
                        gone.push(*dst);
                        continue;
                    }
                    let hop = netlink.resolve(*dst, lan_ifindex);
                    // A STALE entry is flagged on every refresh (the worker sends one packet
                    // through the kernel each time until the kernel has confirmed it).
                    if hop != *old || hop.is_some_and(|h| h.confirm) {
                        let answer = match hop {
                            Some(hop) => Answer::Hop(*dst, hop),
                            None => Answer::Unusable(*dst),
                        };
                        if answers.send(answer).is_err() {
                            return;
                        }
                        *old = hop;
                    }
                    if hop.is_none() {
                        gone.push(*dst);
                    }
                }
                // Destinations without a next hop are asked about again by the worker.
                for dst in gone {
                    known.remove(&dst);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

// rtnetlink constants (linux/rtnetlink.h, linux/neighbour.h, linux/if_link.h).
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTN_UNICAST: u8 = 1;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NUD_REACHABLE: u16 = 0x02;
const NUD_STALE: u16 = 0x04;
const NUD_DELAY: u16 = 0x08;
const NUD_PROBE: u16 = 0x10;
const NUD_PERMANENT: u16 = 0x80;
const IFLA_ADDRESS: u16 = 1;
const IFLA_MTU: u16 = 4;

/// A NETLINK_ROUTE socket for single get requests.
struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    fn open() -> std::io::Result<Self> {
        // SAFETY: plain socket(2); the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a descriptor we just opened and own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let timeout = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: a timeval option of the declared length.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        Ok(Netlink {
            fd,
            seq: 0,
            buf: vec![0; 16384],
        })
    }

    /// The next hop for `dst` if the kernel routes it out of `lan_ifindex` as unicast and has
    /// a usable neighbour entry for it.
    fn resolve(&mut self, dst: Ipv4Addr, lan_ifindex: u32) -> Option<NextHop> {
        let (oif, gateway) = self.route(dst)?;
        if oif != lan_ifindex {
            return None;
        }
        let (dst_mac, state) = self.neighbour(gateway.unwrap_or(dst), oif)?;
        let (src_mac, mtu) = self.link(oif)?;
        Some(NextHop {
            dst_mac,
            src_mac,
            mtu,
            confirm: state & NUD_STALE != 0,
        })
    }

    /// `ip route get DST`: the output interface and gateway of a unicast route.
    fn route(&mut self, dst: Ipv4Addr) -> Option<(u32, Option<Ipv4Addr>)> {
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        let mut body = vec![libc::AF_INET as u8, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        push_attr(&mut body, RTA_DST, &dst.octets());
        let reply = self.request(RTM_GETROUTE, &body, RTM_NEWROUTE)?;
        if reply.len() < 12 || reply[7] != RTN_UNICAST {
            return None;
        }
        let (mut oif, mut gateway) = (None, None);
        for (kind, value) in attrs(&reply[12..]) {
            match (kind, value.len()) {
                (RTA_OIF, 4) => oif = Some(u32::from_ne_bytes(value.try_into().ok()?)),
                (RTA_GATEWAY, 4) => {
                    gateway = Some(Ipv4Addr::new(value[0], value[1], value[2], value[3]))
                }
                _ => {}
            }
        }
        Some((oif?, gateway))
    }

    /// `ip neigh get ADDR dev IFINDEX`: the link-layer address and state of a usable entry.
    fn neighbour(&mut self, addr: Ipv4Addr, ifindex: u32) -> Option<([u8; 6], u16)> {
        // struct ndmsg: family, pad1, pad2 (u16), ifindex (i32), state (u16), flags, type.
        let mut body = vec![libc::AF_INET as u8, 0, 0, 0];
        body.extend_from_slice(&(ifindex as i32).to_ne_bytes());
        body.extend_from_slice(&[0, 0, 0, 0]);
        push_attr(&mut body, NDA_DST, &addr.octets());
        let reply = self.request(RTM_GETNEIGH, &body, RTM_NEWNEIGH)?;
        if reply.len() < 12 {
            return None;
        }
        let state = u16::from_ne_bytes([reply[8], reply[9]]);
        let usable = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT;
        if state & usable == 0 {
            return None;
        }
        attrs(&reply[12..])
            .find(|(kind, value)| *kind == NDA_LLADDR && value.len() == 6)
            .and_then(|(_, value)| value.try_into().ok())
            .map(|mac| (mac, state))
    }

    /// The interface's MAC address and MTU.
    fn link(&mut self, ifindex: u32) -> Option<([u8; 6], u16)> {
        // struct ifinfomsg: family, pad, type (u16), index (i32), flags (u32), change (u32).
        let mut body = vec![libc::AF_UNSPEC as u8, 0, 0, 0];
        body.extend_from_slice(&(ifindex as i32).to_ne_bytes());
        body.extend_from_slice(&[0; 8]);
        let reply = self.request(RTM_GETLINK, &body, RTM_NEWLINK)?;
        if reply.len() < 16 {
            return None;
        }
        let (mut mac, mut mtu) = (None, None);
        for (kind, value) in attrs(&reply[16..]) {
            match (kind, value.len()) {
                (IFLA_ADDRESS, 6) => mac = value.try_into().ok(),
                (IFLA_MTU, 4) => {
                    mtu = u16::try_from(u32::from_ne_bytes(value.try_into().ok()?)).ok()
                }
                _ => {}
            }
        }
        Some((mac?, mtu?))
    }

    /// Sends one request and returns the body of the reply of type `want` (without the
    /// netlink header), or `None` on an error reply or a timeout.
    fn request(&mut self, kind: u16, body: &[u8], want: u16) -> Option<Vec<u8>> {
        self.seq = self.seq.wrapping_add(1);
        let len = 16 + body.len();
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        let fd = self.fd.as_raw_fd();
        // SAFETY: the message buffer is valid for its length; kernel address by default.
        let sent = unsafe { libc::send(fd, msg.as_ptr().cast(), msg.len(), 0) };
        if sent != msg.len() as isize {
            return None;
        }
        loop {
            // SAFETY: receiving into our own buffer of its length.
            let n = unsafe { libc::recv(fd, self.buf.as_mut_ptr().cast(), self.buf.len(), 0) };
            if n <= 0 {
                return None;
            }
            let data = &self.buf[..n as usize];
            let mut off = 0;
            while off + 16 <= data.len() {
                let mlen = u32::from_ne_bytes(data[off..off + 4].try_into().ok()?) as usize;
                let mtype = u16::from_ne_bytes([data[off + 4], data[off + 5]]);
                let seq = u32::from_ne_bytes(data[off + 8..off + 12].try_into().ok()?);
                if mlen < 16 || off + mlen > data.len() {
                    return None;
                }
                if seq == self.seq {
                    if mtype == want {
                        return Some(data[off + 16..off + mlen].to_vec());
                    }
                    if mtype == NLMSG_ERROR {
                        return None;
                    }
                }
                off += align4(mlen);
            }
            // Only replies to older requests (timed out before): read on.
        }
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn push_attr(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len() + align4(len) - len, 0);
}

/// The (type, value) attributes in `data` (rtattr / nlattr layout).
fn attrs(data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut off = 0;
    std::iter::from_fn(move || {
        if off + 4 > data.len() {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([data[off], data[off + 1]]));
        let kind = u16::from_ne_bytes([data[off + 2], data[off + 3]]) & 0x3fff;
        if len < 4 || off + len > data.len() {
            return None;
        }
        let value = &data[off + 4..off + len];
        off += align4(len);
        Some((kind, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip() {
        let mut buf = Vec::new();
        push_attr(&mut buf, RTA_DST, &[10, 2, 0, 10]);
        push_attr(&mut buf, 7, &[1, 2, 3, 4, 5, 6]);
        push_attr(&mut buf, RTA_OIF, &3u32.to_ne_bytes());
        let found: Vec<(u16, Vec<u8>)> = attrs(&buf).map(|(k, v)| (k, v.to_vec())).collect();
        assert_eq!(
            found,
            vec![
                (RTA_DST, vec![10, 2, 0, 10]),
                (7, vec![1, 2, 3, 4, 5, 6]),
                (RTA_OIF, 3u32.to_ne_bytes().to_vec()),
            ]
        );
        assert_eq!(buf.len() % 4, 0);
    }

    #[test]
    fn the_cache_asks_once_uses_answers_confirms_stale_entries_and_forgets_expired_ones() {
        let (requests, asked) = mpsc::channel();
        let (answer, answers) = mpsc::channel();
        let mut cache = NextHopCache::with_channels(requests, answers);
        let dst = Ipv4Addr::new(10, 2, 0, 10);
        let t0 = Instant::now();
        // A miss asks the resolver, once per RETRY.
        assert_eq!(cache.lookup(dst, || t0), None);
        assert_eq!(cache.lookup(dst, || t0), None);
        assert_eq!(asked.try_iter().collect::<Vec<_>>(), vec![dst]);
        let hop = NextHop {
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_mac: [2, 0, 0, 0, 0, 2],
            mtu: 1500,
            confirm: false,
        };
        answer.send(Answer::Hop(dst, hop)).unwrap();
        cache.update();
        assert_eq!(cache.lookup(dst, || t0), Some(hop));
        // A STALE entry: one packet through the kernel, then the hop again.
        let stale = NextHop {
            confirm: true,
            ..hop
        };
        answer.send(Answer::Hop(dst, stale)).unwrap();
        cache.update();
        assert_eq!(cache.lookup(dst, || t0), None);
        assert_eq!(cache.lookup(dst, || t0), Some(hop));
        // Expired: forgotten, and the next packet asks again at once.
        answer.send(Answer::Expired(dst)).unwrap();
        cache.update();
        assert_eq!(cache.lookup(dst, || t0), None);
        assert_eq!(asked.try_iter().collect::<Vec<_>>(), vec![dst]);
        // Unusable: the kernel's path, asked again only after RETRY.
        answer.send(Answer::Unusable(dst)).unwrap();
        cache.update();
        let now = Instant::now();
        assert_eq!(cache.lookup(dst, || now), None);
        assert!(asked.try_iter().next().is_none());
        assert_eq!(cache.lookup(dst, || now + RETRY), None);
        assert_eq!(asked.try_iter().collect::<Vec<_>>(), vec![dst]);
    }

    #[test]
    fn loopback_is_not_a_lan_next_hop() {
        // 127.0.0.1 is a local route: never transmitted by the worker.
        let Ok(mut netlink) = Netlink::open() else {
            return;
        };
        assert_eq!(netlink.resolve(Ipv4Addr::LOCALHOST, 1), None);
    }
}
