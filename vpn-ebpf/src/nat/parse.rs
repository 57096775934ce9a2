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

/// How a packet's transport carries its tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP: ports, flags, checksum at l4 + 16.
    Tcp { flags: u8 },
    /// UDP: ports, checksum at l4 + 6 (0: none, RFC 768).
    Udp,
    /// ICMP echo request or reply: the identifier is the port of the side that sent the
    /// request (RFC 5508 section 3.1).
    IcmpEcho { request: bool },
    /// An ICMP error quoting a datagram (RFC 792; RFC 5508 section 4).
    IcmpError(Quoted),
    /// Anything else: no tuple NAT can track (the key holds the addresses and zero ports).
    Other,
}

/// The quoted datagram of an ICMP error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// Parses the IPv4 packet at `l3`. `None`: malformed (a length that does not fit, a transport
/// header cut short), which NAT leaves to the kernel to drop.
#[inline(always)]
pub fn parse<P: PacketBytes + ?Sized>(p: &P, l3: usize) -> Option<Parsed> {
    let ip = ipv4_header(p, l3)?;
    let none = [0u8; 2];
    let addresses_only = FlowKey::new(ip.proto, ip.src, none, ip.dst, none);
    if ip.fragment {
        return Some(Parsed {
            ip,
            key: addresses_only,
            transport: Transport::Other,
        });
    }
    match ip.proto {
        IPPROTO_TCP => {
            if ip.l4_len < TCP_MIN_HLEN {
                return None;
            }
            let t = p.bytes::<TCP_MIN_HLEN>(ip.l4)?;
            Some(Parsed {
                ip,
                key: FlowKey::new(ip.proto, ip.src, [t[0], t[1]], ip.dst, [t[2], t[3]]),
                transport: Transport::Tcp { flags: t[13] },
            })
        }
        IPPROTO_UDP => {
            if ip.l4_len < UDP_HLEN {
                return None;
            }
            let u = p.bytes::<UDP_HLEN>(ip.l4)?;
            Some(Parsed {
                ip,
                key: FlowKey::new(ip.proto, ip.src, [u[0], u[1]], ip.dst, [u[2], u[3]]),
                transport: Transport::Udp,
            })
        }
        IPPROTO_ICMP => {
            if ip.l4_len < ICMP_HLEN {
                return None;
            }
            let i = p.bytes::<ICMP_HLEN>(ip.l4)?;
            let id = [i[4], i[5]];
            match i[0] {
                ICMP_ECHO_REQUEST => Some(Parsed {
                    ip,
                    key: FlowKey::new(ip.proto, ip.src, id, ip.dst, none),
                    transport: Transport::IcmpEcho { request: true },
                }),
                ICMP_ECHO_REPLY => Some(Parsed {
                    ip,
                    key: FlowKey::new(ip.proto, ip.src, none, ip.dst, id),
                    transport: Transport::IcmpEcho { request: false },
                }),
                ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED | ICMP_PARAMETER_PROBLEM => {
                    let transport = match quoted(p, ip.l4 + ICMP_HLEN, ip.l4 + ip.l4_len) {
                        Some(q) => Transport::IcmpError(q),
                        None => Transport::Other,
                    };
                    Some(Parsed {
                        ip,
                        key: addresses_only,
                        transport,
                    })
                }
                _ => Some(Parsed {
                    ip,
                    key: addresses_only,
                    transport: Transport::Other,
                }),
            }
        }
        _ => Some(Parsed {
            ip,
            key: addresses_only,
            transport: Transport::Other,
        }),
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
