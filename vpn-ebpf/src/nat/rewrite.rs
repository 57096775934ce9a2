//! Header rewrites of the masquerade, with every checksum they touch fixed incrementally
//! (RFC 1624): the IPv4 header checksum, the TCP and UDP checksums (their pseudo-header holds
//! the addresses), the ICMP checksum (an echo identifier), and for an ICMP error the quoted
//! datagram as well (RFC 5508 section 4.2: the embedded header is translated too, and the
//! ICMP checksum covers it).

use super::{
    checksum::ChecksumDelta,
    parse::{Parsed, Quoted, Transport},
};
use crate::packet::PacketBytesMut;
use vpn_common::nat::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};

const IP_CSUM: usize = 10;
const IP_SRC: usize = 12;
const IP_DST: usize = 16;
const TCP_CSUM: usize = 16;
const UDP_CSUM: usize = 6;
const ICMP_CSUM: usize = 2;
const ICMP_ID: usize = 4;

/// Which end of a packet a rewrite changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Source,
    Destination,
}

impl Side {
    const fn opposite(self) -> Side {
        match self {
            Side::Source => Side::Destination,
            Side::Destination => Side::Source,
        }
    }

    const fn addr_offset(self) -> usize {
        match self {
            Side::Source => IP_SRC,
            Side::Destination => IP_DST,
        }
    }

    const fn port_offset(self) -> usize {
        match self {
            Side::Source => 0,
            Side::Destination => 2,
        }
    }
}

/// An address and port (for ICMP echo: identifier), network order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: [u8; 4],
    pub port: [u8; 2],
}

/// Why a rewrite was not done; the packet is unchanged in every case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RewriteError {
    /// Not TCP, UDP or ICMP echo (or an ICMP error without a quoted tuple).
    Unsupported,
    /// A field lies outside the frame (cannot happen for a packet `parse` accepted).
    OutOfFrame,
}

/// Sets the `side` address and port of a TCP, UDP or ICMP echo packet to `to`.
#[inline(always)]
pub fn rewrite<P: PacketBytesMut + ?Sized>(
    p: &mut P,
    parsed: &Parsed,
    side: Side,
    to: Endpoint,
) -> Result<(), RewriteError> {
    let ip = &parsed.ip;
    let (old_addr, old_port) = match side {
        Side::Source => (parsed.key.src_addr, parsed.key.src_port),
        Side::Destination => (parsed.key.dst_addr, parsed.key.dst_port),
    };
    let (port_at, csum_at, pseudo_header) = match parsed.transport {
        Transport::Tcp => (ip.l4 + side.port_offset(), ip.l4 + TCP_CSUM, true),
        Transport::Udp => (ip.l4 + side.port_offset(), ip.l4 + UDP_CSUM, true),
        Transport::IcmpEchoRequest | Transport::IcmpEchoReply => {
            (ip.l4 + ICMP_ID, ip.l4 + ICMP_CSUM, false)
        }
        _ => return Err(RewriteError::Unsupported),
    };
    let ip_csum = p
        .bytes::<2>(ip.l3 + IP_CSUM)
        .ok_or(RewriteError::OutOfFrame)?;
    let l4_csum = p.bytes::<2>(csum_at).ok_or(RewriteError::OutOfFrame)?;

    let mut addr_delta = ChecksumDelta::new();
    addr_delta.addr(old_addr, to.addr);
    let mut l4_delta = ChecksumDelta::new();
    if pseudo_header {
        l4_delta.merge(addr_delta);
    }
    l4_delta.word(old_port, to.port);
    let new_ip_csum = addr_delta.apply(ip_csum);
    let new_l4_csum = transport_checksum(parsed.ip.proto, l4_csum, l4_delta);

    write_all(
        p,
        &[
            (ip.l3 + side.addr_offset(), Field::Addr(to.addr)),
            (ip.l3 + IP_CSUM, Field::Word(new_ip_csum)),
            (port_at, Field::Word(to.port)),
            (csum_at, Field::Word(new_l4_csum)),
        ],
    )
}

/// Translates an ICMP error about a tracked flow: the outer `outer` address becomes `to.addr`,
/// and the quoted datagram's opposite end (the quoted packet went the other way) becomes `to`.
/// - inbound (an error from outside about a translated packet): outer destination, quoted
///   source;
/// - outbound (an error from inside about a reverse-translated packet): outer source, quoted
///   destination.
#[inline(always)]
pub fn rewrite_icmp_error<P: PacketBytesMut + ?Sized>(
    p: &mut P,
    parsed: &Parsed,
    outer: Side,
    to: Endpoint,
) -> Result<(), RewriteError> {
    if parsed.transport != Transport::IcmpError {
        return Err(RewriteError::Unsupported);
    }
    let q = parsed.quoted;
    let ip = &parsed.ip;
    let icmp_end = ip.l4 + ip.l4_len;
    let inner = outer.opposite();
    let old_outer = match outer {
        Side::Source => ip.src,
        Side::Destination => ip.dst,
    };
    let (old_inner_addr, old_inner_port) = match inner {
        Side::Source => (q.key.src_addr, q.key.src_port),
        Side::Destination => (q.key.dst_addr, q.key.dst_port),
    };

    // Outer IPv4 header: one address.
    let ip_csum = p
        .bytes::<2>(ip.l3 + IP_CSUM)
        .ok_or(RewriteError::OutOfFrame)?;
    let mut outer_delta = ChecksumDelta::new();
    outer_delta.addr(old_outer, to.addr);
    let new_ip_csum = outer_delta.apply(ip_csum);

    // Every word changed inside the ICMP message, for the ICMP checksum.
    let mut icmp_delta = ChecksumDelta::new();

    // Quoted IPv4 header: one address and its header checksum.
    let mut inner_addr_delta = ChecksumDelta::new();
    inner_addr_delta.addr(old_inner_addr, to.addr);
    icmp_delta.merge(inner_addr_delta);
    let q_csum = p
        .bytes::<2>(q.l3 + IP_CSUM)
        .ok_or(RewriteError::OutOfFrame)?;
    let new_q_csum = inner_addr_delta.apply(q_csum);
    icmp_delta.word(q_csum, new_q_csum);

    // Quoted transport: the port (or echo identifier) and, where quoted, its checksum.
    let quoted_l4 = quoted_transport(p, &q, inner, icmp_end)?;
    icmp_delta.word(old_inner_port, to.port);
    let mut q_l4_delta = ChecksumDelta::new();
    if q.key.proto != IPPROTO_ICMP {
        q_l4_delta.merge(inner_addr_delta);
    }
    q_l4_delta.word(old_inner_port, to.port);
    let new_q_l4_csum = quoted_l4
        .csum
        .map(|(at, old)| (at, old, transport_checksum(q.key.proto, old, q_l4_delta)));
    if let Some((_, old, new)) = new_q_l4_csum {
        icmp_delta.word(old, new);
    }

    let icmp_csum = p
        .bytes::<2>(ip.l4 + ICMP_CSUM)
        .ok_or(RewriteError::OutOfFrame)?;
    let new_icmp_csum = icmp_delta.apply(icmp_csum);

    let (q_csum_at, q_csum_new) = match new_q_l4_csum {
        Some((at, _, new)) => (at, Field::Word(new)),
        None => (0, Field::Skip),
    };
    write_all(
        p,
        &[
            (ip.l3 + outer.addr_offset(), Field::Addr(to.addr)),
            (ip.l3 + IP_CSUM, Field::Word(new_ip_csum)),
            (q.l3 + inner.addr_offset(), Field::Addr(to.addr)),
            (q.l3 + IP_CSUM, Field::Word(new_q_csum)),
            (quoted_l4.port_at, Field::Word(to.port)),
            (q_csum_at, q_csum_new),
            (ip.l4 + ICMP_CSUM, Field::Word(new_icmp_csum)),
        ],
    )
}

/// Where the quoted transport keeps the port being rewritten and its checksum, if quoted.
struct QuotedTransport {
    port_at: usize,
    /// Offset and current value of the checksum; `None` when it is not part of the quote
    /// (TCP's lies past the first 64 bits) or is zero (UDP without checksum).
    csum: Option<(usize, [u8; 2])>,
}

#[inline(always)]
fn quoted_transport<P: PacketBytesMut + ?Sized>(
    p: &P,
    q: &Quoted,
    side: Side,
    icmp_end: usize,
) -> Result<QuotedTransport, RewriteError> {
    let (port_at, csum_at) = match q.key.proto {
        IPPROTO_TCP => (q.l4 + side.port_offset(), q.l4 + TCP_CSUM),
        IPPROTO_UDP => (q.l4 + side.port_offset(), q.l4 + UDP_CSUM),
        IPPROTO_ICMP => (q.l4 + ICMP_ID, q.l4 + ICMP_CSUM),
        _ => return Err(RewriteError::Unsupported),
    };
    let csum = if csum_at + 2 <= icmp_end {
        p.bytes::<2>(csum_at).map(|old| (csum_at, old))
    } else {
        None
    };
    // RFC 768: a zero UDP checksum means none was computed; it stays zero.
    let csum = csum.filter(|(_, old)| q.key.proto != IPPROTO_UDP || *old != [0, 0]);
    Ok(QuotedTransport { port_at, csum })
}

/// The transport checksum after `delta`. UDP: zero stays zero (no checksum, RFC 768), and a
/// computed zero is sent as all ones.
#[inline(always)]
fn transport_checksum(proto: u8, old: [u8; 2], delta: ChecksumDelta) -> [u8; 2] {
    if proto == IPPROTO_UDP {
        if old == [0, 0] {
            return old;
        }
        let new = delta.apply(old);
        return if new == [0, 0] { [0xff, 0xff] } else { new };
    }
    delta.apply(old)
}

#[derive(Clone, Copy)]
enum Field {
    Addr([u8; 4]),
    Word([u8; 2]),
    Skip,
}

/// Writes every field; all offsets were read (so lie in the frame) before any is written.
#[inline(always)]
fn write_all<P: PacketBytesMut + ?Sized>(
    p: &mut P,
    fields: &[(usize, Field)],
) -> Result<(), RewriteError> {
    for (at, field) in fields {
        let ok = match *field {
            Field::Addr(a) => p.write_bytes(*at, a),
            Field::Word(w) => p.write_bytes(*at, w),
            Field::Skip => true,
        };
        if !ok {
            return Err(RewriteError::OutOfFrame);
        }
    }
    Ok(())
}
