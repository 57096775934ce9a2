//! Outer headers: IPv4 (RFC 791) and the RFC 3948 UDP encapsulation header, plus whole-packet
//! encapsulation/decapsulation on top of `transform`.
//!
//! Hand-written: a 20-byte header and an 8-byte header, built and parsed in place with explicit
//! bounds checks; a general packet crate would add dependencies without removing any logic.
//!
//! **Outer header policy** (tunnel mode, RFC 4301 section 5.1.2.1):
//! - DSCP is copied from the inner header (IPv4 TOS or IPv6 traffic class), so QoS marking
//!   survives the tunnel.
//! - ECN is not copied: the outer ECN field is Not-ECT (00), the RFC 6040 "compatibility mode",
//!   which needs no ECN logic at decapsulation.
//! - TTL is the SA's [`OuterPolicy`](crate::sa::OuterPolicy) TTL (64 by default); the inner
//!   TTL is not touched here (decrementing it is the forwarding path's job).
//! - DF follows [`DfPolicy`]: copied from an inner IPv4 header by default (set for inner IPv6),
//!   or forced on/off. IP ID is 0 when DF is set (RFC 6864 atomic datagrams), otherwise a
//!   per-SA counter.
//! - Options are never emitted (IHL 5); received options are skipped.
//!
//! **UDP encapsulation** (RFC 3948): checksum 0 on send (section 2.1 allows it for IPv4, since
//! ESP's ICV protects the payload), and the receive checksum is not verified (section 3.1.2
//! permits that). On receive, a payload starting with four zero bytes is the non-ESP marker (an
//! IKE message, section 2.2) and a single 0xFF byte is a NAT-keepalive (section 2.3); both are
//! reported as their own errors so the caller can route or count them. The peer's UDP source
//! port is returned, not checked: behind NAT it may change (section 3.1.1 NAT mapping).

use core::ops::Range;
use std::net::{IpAddr, Ipv4Addr};

use crate::aead::AeadBackend;
use crate::error::EspError;
use crate::sa::{DfPolicy, SeqNum};
use crate::transform::{self, InboundSa, OutboundSa, PAYLOAD_OFFSET};

/// IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// UDP header.
pub const UDP_HEADER_LEN: usize = 8;
/// IP protocol number of ESP.
pub const PROTO_ESP: u8 = 50;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// RFC 1071 Internet checksum of `data` (even length not required).
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Fields of a parsed IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Info {
    /// Header length in bytes (IHL * 4).
    pub header_len: usize,
    /// Total length field (header + payload); trailing bytes past it are link padding.
    pub total_len: usize,
    /// Protocol field.
    pub protocol: u8,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// TOS byte (DSCP << 2 | ECN).
    pub tos: u8,
    /// TTL.
    pub ttl: u8,
    /// Don't Fragment flag.
    pub df: bool,
}

/// Parse and validate an IPv4 header at the start of `buf`: version, IHL, total length,
/// header checksum; fragments are refused (`Fragmented`).
pub fn parse_ipv4(buf: &[u8]) -> Result<Ipv4Info, EspError> {
    if buf.len() < IPV4_HEADER_LEN {
        return Err(EspError::Truncated);
    }
    if buf[0] >> 4 != 4 {
        return Err(EspError::BadIpHeader);
    }
    let header_len = usize::from(buf[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    if header_len < IPV4_HEADER_LEN || total_len < header_len {
        return Err(EspError::BadIpHeader);
    }
    if buf.len() < total_len {
        return Err(EspError::Truncated);
    }
    if internet_checksum(&buf[..header_len]) != 0 {
        return Err(EspError::BadIpChecksum);
    }
    let flags_frag = u16::from_be_bytes([buf[6], buf[7]]);
    if flags_frag & 0x3fff != 0 {
        return Err(EspError::Fragmented);
    }
    Ok(Ipv4Info {
        header_len,
        total_len,
        protocol: buf[9],
        src: Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]),
        dst: Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]),
        tos: buf[1],
        ttl: buf[8],
        df: flags_frag & 0x4000 != 0,
    })
}

/// What to put in an outer IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Fields {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol (50 or 17).
    pub protocol: u8,
    /// TOS byte.
    pub tos: u8,
    /// TTL.
    pub ttl: u8,
    /// Don't Fragment.
    pub df: bool,
    /// Identification.
    pub id: u16,
    /// Bytes after the header.
    pub payload_len: usize,
}

/// Write a 20-byte IPv4 header (with checksum) at the start of `out`.
pub fn write_ipv4_header(out: &mut [u8], f: &Ipv4Fields) -> Result<usize, EspError> {
    let total = IPV4_HEADER_LEN + f.payload_len;
    let total = u16::try_from(total).map_err(|_| EspError::TooBig)?;
    let h = out
        .get_mut(..IPV4_HEADER_LEN)
        .ok_or(EspError::BufferTooSmall)?;
    h[0] = 0x45;
    h[1] = f.tos;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&f.id.to_be_bytes());
    h[6..8].copy_from_slice(&(if f.df { 0x4000u16 } else { 0 }).to_be_bytes());
    h[8] = f.ttl;
    h[9] = f.protocol;
    h[10..12].copy_from_slice(&[0, 0]);
    h[12..16].copy_from_slice(&f.src.octets());
    h[16..20].copy_from_slice(&f.dst.octets());
    let csum = internet_checksum(h);
    h[10..12].copy_from_slice(&csum.to_be_bytes());
    Ok(IPV4_HEADER_LEN)
}

/// Write an RFC 3948 UDP header (checksum 0) for `payload_len` bytes of ESP.
pub fn write_udp_header(
    out: &mut [u8],
    src_port: u16,
    dst_port: u16,
    payload_len: usize,
) -> Result<usize, EspError> {
    let len = u16::try_from(UDP_HEADER_LEN + payload_len).map_err(|_| EspError::TooBig)?;
    let h = out
        .get_mut(..UDP_HEADER_LEN)
        .ok_or(EspError::BufferTooSmall)?;
    h[0..2].copy_from_slice(&src_port.to_be_bytes());
    h[2..4].copy_from_slice(&dst_port.to_be_bytes());
    h[4..6].copy_from_slice(&len.to_be_bytes());
    h[6..8].copy_from_slice(&[0, 0]);
    Ok(UDP_HEADER_LEN)
}

/// A parsed RFC 3948 UDP-encapsulated ESP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpEsp {
    /// Sender's port (may change behind NAT).
    pub src_port: u16,
    /// Our port.
    pub dst_port: u16,
    /// The ESP packet within the buffer given to [`parse_udp_esp`].
    pub esp: Range<usize>,
}

/// Parse a UDP header at the start of `buf` and classify its payload (RFC 3948 section 2).
pub fn parse_udp_esp(buf: &[u8]) -> Result<UdpEsp, EspError> {
    if buf.len() < UDP_HEADER_LEN {
        return Err(EspError::Truncated);
    }
    let udp_len = usize::from(u16::from_be_bytes([buf[4], buf[5]]));
    if udp_len < UDP_HEADER_LEN || udp_len > buf.len() {
        return Err(EspError::BadUdpLength);
    }
    let payload = &buf[UDP_HEADER_LEN..udp_len];
    if payload == [0xff] {
        return Err(EspError::NatKeepalive);
    }
    if payload.len() >= 4 && payload[..4] == [0, 0, 0, 0] {
        return Err(EspError::NonEspMarker);
    }
    Ok(UdpEsp {
        src_port: u16::from_be_bytes([buf[0], buf[1]]),
        dst_port: u16::from_be_bytes([buf[2], buf[3]]),
        esp: UDP_HEADER_LEN..udp_len,
    })
}

/// DSCP (TOS with ECN cleared) and DF of an inner IPv4/IPv6 packet (already validated).
fn inner_dscp_df(inner: &[u8]) -> (u8, bool) {
    if inner[0] >> 4 == 4 {
        (inner[1] & 0xfc, inner[6] & 0x40 != 0)
    } else {
        let tc = (inner[0] << 4) | (inner[1] >> 4);
        (tc & 0xfc, true)
    }
}

/// Bytes of outer headers (IPv4, plus UDP if encapsulated) before the SPI.
pub fn outer_overhead<A: AeadBackend>(sa: &OutboundSa<A>) -> usize {
    IPV4_HEADER_LEN
        + if sa.udp_encap.is_some() {
            UDP_HEADER_LEN
        } else {
            0
        }
}

/// Encapsulate into a complete outer packet, with the inner packet already in place at
/// `buf[outer_overhead(sa) + PAYLOAD_OFFSET..][..inner_len]` (zero-copy path). Returns the
/// outer packet length.
pub fn encapsulate_packet_in_place<A: AeadBackend>(
    sa: &OutboundSa<A>,
    buf: &mut [u8],
    inner_len: usize,
) -> Result<usize, EspError> {
    let (src, dst) = match (sa.tunnel.local(), sa.tunnel.remote()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (s, d),
        _ => return Err(EspError::UnsupportedFamily),
    };
    let hdr = outer_overhead(sa);
    let start = hdr + PAYLOAD_OFFSET;
    let inner = buf
        .get(start..start + inner_len)
        .ok_or(EspError::BufferTooSmall)?;
    transform::next_header_for(inner)?;
    let (dscp, inner_df) = inner_dscp_df(inner);
    let esp_len = transform::esp_len(inner_len);
    let total = hdr + esp_len;
    if total > usize::from(u16::MAX) {
        return Err(EspError::TooBig);
    }
    if buf.len() < total {
        return Err(EspError::BufferTooSmall);
    }
    let n = transform::encapsulate_in_place(sa, &mut buf[hdr..], inner_len)?;
    debug_assert_eq!(n, esp_len);
    let protocol = match sa.udp_encap {
        Some(u) => {
            write_udp_header(
                &mut buf[IPV4_HEADER_LEN..],
                u.src_port(),
                u.dst_port(),
                esp_len,
            )?;
            PROTO_UDP
        }
        None => PROTO_ESP,
    };
    let df = match sa.outer.df() {
        DfPolicy::Copy => inner_df,
        DfPolicy::Set => true,
        DfPolicy::Clear => false,
    };
    let id = if df {
        0
    } else {
        sa.ip_id
            .fetch_add(1, core::sync::atomic::Ordering::Relaxed)
            .wrapping_add(1)
    };
    let fields = Ipv4Fields {
        src,
        dst,
        protocol,
        tos: dscp,
        ttl: sa.outer.ttl(),
        df,
        id,
        payload_len: total - IPV4_HEADER_LEN,
    };
    write_ipv4_header(buf, &fields)?;
    Ok(total)
}

/// Encapsulate `inner` into a complete outer IPv4 (+ UDP) packet in `out`. Returns its length.
pub fn encapsulate_packet<A: AeadBackend>(
    sa: &OutboundSa<A>,
    inner: &[u8],
    out: &mut [u8],
) -> Result<usize, EspError> {
    transform::next_header_for(inner)?;
    let start = outer_overhead(sa) + PAYLOAD_OFFSET;
    let dst = out
        .get_mut(start..start + inner.len())
        .ok_or(EspError::BufferTooSmall)?;
    dst.copy_from_slice(inner);
    encapsulate_packet_in_place(sa, out, inner.len())
}

/// Result of [`decapsulate_packet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecapsulatedPacket {
    /// The decrypted inner packet, within the buffer given to `decapsulate_packet`.
    pub inner: Range<usize>,
    /// ESP next header (4, 41, or 59 for a dummy packet).
    pub next_header: u8,
    /// Full sequence number.
    pub seq: SeqNum,
    /// Outer source address (the peer, or its NAT).
    pub outer_src: Ipv4Addr,
    /// Peer's UDP source port when UDP-encapsulated (for NAT mapping updates).
    pub src_port: Option<u16>,
}

/// Decapsulate a complete outer IPv4 packet (raw ESP, or UDP-encapsulated ESP if the SA uses
/// NAT-T) in place.
pub fn decapsulate_packet<A: AeadBackend>(
    sa: &InboundSa<A>,
    pkt: &mut [u8],
) -> Result<DecapsulatedPacket, EspError> {
    let ip = parse_ipv4(pkt)?;
    let l4 = ip.header_len..ip.total_len;
    let (esp, src_port) = match (ip.protocol, sa.udp_encap.is_some()) {
        (PROTO_ESP, false) => (l4, None),
        (PROTO_UDP, true) => {
            let u = parse_udp_esp(&pkt[l4.clone()])?;
            (
                l4.start + u.esp.start..l4.start + u.esp.end,
                Some(u.src_port),
            )
        }
        _ => return Err(EspError::NotEsp),
    };
    let d = transform::decapsulate(sa, &mut pkt[esp.clone()])?;
    Ok(DecapsulatedPacket {
        inner: esp.start + d.inner.start..esp.start + d.inner.end,
        next_header: d.next_header,
        seq: d.seq,
        outer_src: ip.src,
        src_port,
    })
}
