//! What NAT needs to know of an IPv4 packet: its tuple, where its checksums are, and for an ICMP
//! error the tuple of the datagram it quotes (RFC 792: the IP header and at least 64 bits).

use vpn_common::nat::{FlowKey, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};

use crate::packet::PacketBytes;

const IPV4_MIN_HLEN: usize = 20;
const TCP_MIN_HLEN: usize = 20;
const UDP_HLEN: usize = 8;
const ICMP_HLEN: usize = 8;
/// RFC 792: an ICMP error quotes the IP header and the first 64 bits of the datagram.
const QUOTED_L4_LEN: usize = 8;

pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_DEST_UNREACH: u8 = 3;
pub const ICMP_ECHO_REQUEST: u8 = 8;
pub const ICMP_TIME_EXCEEDED: u8 = 11;
pub const ICMP_PARAMETER_PROBLEM: u8 = 12;

/// The IPv4 header fields NAT reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Header {
    /// Offset of the header in the frame.
    pub l3: usize,
    /// Offset of the transport header (l3 + IHL * 4).
    pub l4: usize,
    /// Bytes from the transport header to the end of the datagram (total length - IHL * 4).
    pub l4_len: usize,
    pub proto: u8,
    pub ttl: u8,
    pub src: [u8; 4],
    pub dst: [u8; 4],
    /// Any fragment, the first included (MF set or a non-zero offset).
    pub fragment: bool,
}

/// How a packet's transport carries its tuple. Fieldless, like every part of [`Parsed`]: the
/// eBPF verifier rejects copies of enum payloads that a variant leaves uninitialised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP: ports, flags ([`Parsed::tcp_flags`]), checksum at l4 + 16.
    Tcp,
    /// UDP: ports, checksum at l4 + 6 (0: none, RFC 768).
    Udp,
    /// ICMP echo request: its identifier is the port of the sending side (RFC 5508 3.1).
    IcmpEchoRequest,
    /// ICMP echo reply: its identifier is the port of the receiving side.
    IcmpEchoReply,
    /// An ICMP error quoting a TCP, UDP or echo datagram ([`Parsed::quoted`]; RFC 792,
    /// RFC 5508 section 4).
    IcmpError,
    /// Anything else: no tuple NAT can track (the key holds the addresses and zero ports).
    Other,
    /// TCP, UDP or ICMP whose header the datagram cuts short (the key holds the addresses):
    /// malformed, never translated.
    Truncated,
}

/// The quoted datagram of an ICMP error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quoted {
    /// Offset of the quoted IPv4 header.
    pub l3: usize,
    /// Offset of its transport header.
    pub l4: usize,
    /// Its tuple, as the quoted header says (same conventions as [`Parsed::key`]).
    pub key: FlowKey,
}

/// A parsed IPv4 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub ip: Ipv4Header,
    /// The packet's tuple: for TCP and UDP its ports; for an echo request (id, 0), for an echo
    /// reply (0, id); for errors and other protocols zero ports.
    pub key: FlowKey,
    pub transport: Transport,
    /// TCP: the flags byte; 0 otherwise.
    pub tcp_flags: u8,
    /// [`Transport::IcmpError`]: the quoted datagram; all zero otherwise.
    pub quoted: Quoted,
}

impl Parsed {
    #[inline(always)]
    const fn new(ip: Ipv4Header, key: FlowKey, transport: Transport) -> Self {
        Parsed {
            ip,
            key,
            transport,
            tcp_flags: 0,
            quoted: Quoted {
                l3: 0,
                l4: 0,
                key: FlowKey::new(0, [0; 4], [0; 2], [0; 4], [0; 2]),
            },
        }
    }

    /// Whether this is an ICMP echo (request or reply).
    #[inline(always)]
    pub const fn is_echo(&self) -> bool {
        matches!(
            self.transport,
            Transport::IcmpEchoRequest | Transport::IcmpEchoReply
        )
    }
}

/// Reads the IPv4 header at `l3`; `None` if it is not a consistent IPv4 header inside the frame.
#[inline(always)]
pub fn ipv4_header<P: PacketBytes + ?Sized>(p: &P, l3: usize) -> Option<Ipv4Header> {
    let h = p.bytes::<IPV4_MIN_HLEN>(l3)?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if h[0] >> 4 != 4 || ihl < IPV4_MIN_HLEN || total_len < ihl || l3 + total_len > p.len() {
        return None;
    }
    Some(Ipv4Header {
        l3,
        l4: l3 + ihl,
        l4_len: total_len - ihl,
        proto: h[9],
        ttl: h[8],
        src: [h[12], h[13], h[14], h[15]],
        dst: [h[16], h[17], h[18], h[19]],
        fragment: u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0,
    })
}

/// Parses the IPv4 packet at `l3`. `None`: not a consistent IPv4 header (lengths that do not
/// fit the frame), which NAT leaves to the kernel to drop. A transport header cut short
/// parses as [`Transport::Truncated`].
#[inline(always)]
pub fn parse<P: PacketBytes + ?Sized>(p: &P, l3: usize) -> Option<Parsed> {
    let ip = ipv4_header(p, l3)?;
    let none = [0u8; 2];
    let addresses_only = FlowKey::new(ip.proto, ip.src, none, ip.dst, none);
    if ip.fragment {
        return Some(Parsed::new(ip, addresses_only, Transport::Other));
    }
    let truncated = Parsed::new(ip, addresses_only, Transport::Truncated);
    match ip.proto {
        IPPROTO_TCP => {
            let Some(t) = p
                .bytes::<TCP_MIN_HLEN>(ip.l4)
                .filter(|_| ip.l4_len >= TCP_MIN_HLEN)
            else {
                return Some(truncated);
            };
            let key = FlowKey::new(ip.proto, ip.src, [t[0], t[1]], ip.dst, [t[2], t[3]]);
            let mut parsed = Parsed::new(ip, key, Transport::Tcp);
            parsed.tcp_flags = t[13];
            Some(parsed)
        }
        IPPROTO_UDP => {
            let Some(u) = p.bytes::<UDP_HLEN>(ip.l4).filter(|_| ip.l4_len >= UDP_HLEN) else {
                return Some(truncated);
            };
            let key = FlowKey::new(ip.proto, ip.src, [u[0], u[1]], ip.dst, [u[2], u[3]]);
            Some(Parsed::new(ip, key, Transport::Udp))
        }
        IPPROTO_ICMP => {
            let Some(i) = p
                .bytes::<ICMP_HLEN>(ip.l4)
                .filter(|_| ip.l4_len >= ICMP_HLEN)
            else {
                return Some(truncated);
            };
            let id = [i[4], i[5]];
            match i[0] {
                ICMP_ECHO_REQUEST => Some(Parsed::new(
                    ip,
                    FlowKey::new(ip.proto, ip.src, id, ip.dst, none),
                    Transport::IcmpEchoRequest,
                )),
                ICMP_ECHO_REPLY => Some(Parsed::new(
                    ip,
                    FlowKey::new(ip.proto, ip.src, none, ip.dst, id),
                    Transport::IcmpEchoReply,
                )),
                ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED | ICMP_PARAMETER_PROBLEM => {
                    match quoted(p, ip.l4 + ICMP_HLEN, ip.l4 + ip.l4_len) {
                        Some(q) => {
                            let mut parsed = Parsed::new(ip, addresses_only, Transport::IcmpError);
                            parsed.quoted = q;
                            Some(parsed)
                        }
                        None => Some(Parsed::new(ip, addresses_only, Transport::Other)),
                    }
                }
                _ => Some(Parsed::new(ip, addresses_only, Transport::Other)),
            }
        }
        _ => Some(Parsed::new(ip, addresses_only, Transport::Other)),
    }
}

/// The datagram quoted at `l3` by an ICMP error that ends at `end`; `None` if it is not a
/// TCP, UDP or ICMP echo datagram with its first 64 bits present, or is a non-first fragment.
#[inline(always)]
fn quoted<P: PacketBytes + ?Sized>(p: &P, l3: usize, end: usize) -> Option<Quoted> {
    // The quoted total length is the original datagram's, longer than what is quoted: only
    // the header itself and the first 64 bits after it must lie inside the ICMP message.
    let h = p.bytes::<IPV4_MIN_HLEN>(l3)?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let l4 = l3 + ihl;
    if h[0] >> 4 != 4 || ihl < IPV4_MIN_HLEN || l4 + QUOTED_L4_LEN > end {
        return None;
    }
    if u16::from_be_bytes([h[6], h[7]]) & 0x1fff != 0 {
        return None;
    }
    let src = [h[12], h[13], h[14], h[15]];
    let dst = [h[16], h[17], h[18], h[19]];
    let t = p.bytes::<QUOTED_L4_LEN>(l4)?;
    let none = [0u8; 2];
    let key = match h[9] {
        IPPROTO_TCP | IPPROTO_UDP => FlowKey::new(h[9], src, [t[0], t[1]], dst, [t[2], t[3]]),
        IPPROTO_ICMP if t[0] == ICMP_ECHO_REQUEST => {
            FlowKey::new(h[9], src, [t[4], t[5]], dst, none)
        }
        IPPROTO_ICMP if t[0] == ICMP_ECHO_REPLY => FlowKey::new(h[9], src, none, dst, [t[4], t[5]]),
        _ => return None,
    };
    Some(Quoted { l3, l4, key })
}
