//! Classification of received frames into IKE, ESP, NAT-T keepalives and the rest.
//!
//! Lengths are taken from the headers (IPv4 total length, IPv6 payload length, UDP length), not
//! from the frame size, because Ethernet pads short frames: a one-byte NAT-keepalive arrives in a
//! 60-byte frame. Every header length is first checked to fit inside the frame; one that does not
//! makes the frame [`PacketClass::Malformed`].

use vpn_common::PacketClass;

use crate::packet::PacketBytes;

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
/// Tags we look through: 802.1ad outer plus 802.1Q inner ("QinQ").
const MAX_VLAN_TAGS: usize = 2;

const IPV4_MIN_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;
const IPV6_FRAG_HLEN: usize = 8;
const UDP_HLEN: usize = 8;

const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_ESP: u8 = 50;
const IPPROTO_AH: u8 = 51;
const IPPROTO_DSTOPTS: u8 = 60;
/// IPv6 extension headers we walk before giving up and calling the packet plain.
const MAX_IPV6_EXT_HEADERS: usize = 6;

const IKE_PORT: u16 = 500;
const IKE_NATT_PORT: u16 = 4500;
/// IKE header length (RFC 7296 section 3.1); nothing shorter is an IKE message.
const IKE_HLEN: usize = 28;
/// The non-ESP marker in front of IKE on port 4500 (RFC 3948 section 2.2).
const NON_ESP_MARKER_LEN: usize = 4;
/// SPI and sequence number: the least an ESP packet carries (RFC 4303 section 2).
const ESP_MIN_LEN: usize = 8;
/// RFC 3948 section 2.3.
const NAT_KEEPALIVE: u8 = 0xff;

/// Classifies one frame that starts with an Ethernet header.
#[inline(always)]
pub fn classify<P: PacketBytes + ?Sized>(p: &P) -> PacketClass {
    let Some(mut ethertype) = p.be16_at(12) else {
        return PacketClass::Malformed;
    };
    let mut l3 = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        // The tag's TCI is followed by the encapsulated ethertype.
        let Some(inner) = p.be16_at(l3 + 2) else {
            return PacketClass::Malformed;
        };
        ethertype = inner;
        l3 += VLAN_HLEN;
    }
    match ethertype {
        ETH_P_IPV4 => ipv4(p, l3),
        ETH_P_IPV6 => ipv6(p, l3),
        _ => PacketClass::NonIp,
    }
}

#[inline(always)]
fn ipv4<P: PacketBytes + ?Sized>(p: &P, l3: usize) -> PacketClass {
    // Fixed-offset reads first, the IHL-dependent ones after (see platform notes on the verifier).
    let Some(hdr) = p.bytes::<IPV4_MIN_HLEN>(l3) else {
        return PacketClass::Malformed;
    };
    if hdr[0] >> 4 != 4 {
        return PacketClass::Malformed;
    }
    let hlen = usize::from(hdr[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
    if hlen < IPV4_MIN_HLEN || total_len < hlen || l3 + total_len > p.len() {
        return PacketClass::Malformed;
    }
    // Any fragment, the first included: its transport header (if any) describes a datagram that
    // only reassembly in the kernel can check, so nothing downstream may act on it alone.
    let more_fragments_and_offset = u16::from_be_bytes([hdr[6], hdr[7]]) & 0x3fff;
    if more_fragments_and_offset != 0 {
        return PacketClass::Fragment;
    }
    transport(p, hdr[9], l3 + hlen, total_len - hlen)
}

#[inline(always)]
fn ipv6<P: PacketBytes + ?Sized>(p: &P, l3: usize) -> PacketClass {
    let Some(hdr) = p.bytes::<8>(l3) else {
        return PacketClass::Malformed;
    };
    if hdr[0] >> 4 != 6 {
        return PacketClass::Malformed;
    }
    let payload_len = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
    let mut next = hdr[6];
    let mut off = l3 + IPV6_HLEN;
    if off + payload_len > p.len() {
        return PacketClass::Malformed;
    }
    let end = off + payload_len;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        let ext_len = match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                let Some(ext) = p.bytes::<2>(off) else {
                    return PacketClass::Malformed;
                };
                next = ext[0];
                (usize::from(ext[1]) + 1) * 8
            }
            IPPROTO_AH => {
                let Some(ext) = p.bytes::<2>(off) else {
                    return PacketClass::Malformed;
                };
                next = ext[0];
                (usize::from(ext[1]) + 2) * 4
            }
            IPPROTO_FRAGMENT => {
                let Some(ext) = p.bytes::<4>(off) else {
                    return PacketClass::Malformed;
                };
                // Length before offset, as for IPv4: a fragment header cut off by the payload
                // length is malformed, whatever the padding after it says.
                if off + IPV6_FRAG_HLEN > end {
                    return PacketClass::Malformed;
                }
                // Offset or M flag: a fragment. Neither: an atomic fragment (RFC 6946), which is
                // processed as a whole packet.
                if u16::from_be_bytes([ext[2], ext[3]]) & 0xfff9 != 0 {
                    return PacketClass::Fragment;
                }
                next = ext[0];
                IPV6_FRAG_HLEN
            }
            proto => {
                return transport(p, proto, off, end - off);
            }
        };
        if off + ext_len > end {
            return PacketClass::Malformed;
        }
        off += ext_len;
    }
    // All the extension headers we walk are behind us: classify by what follows, unless it is
    // yet another one.
    match next {
        IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_FRAGMENT | IPPROTO_AH | IPPROTO_DSTOPTS => {
            PacketClass::Plain
        }
        proto => transport(p, proto, off, end - off),
    }
}

/// `l4` is the transport header's offset, `l4_len` the bytes the IP header says follow it.
#[inline(always)]
fn transport<P: PacketBytes + ?Sized>(p: &P, proto: u8, l4: usize, l4_len: usize) -> PacketClass {
    match proto {
        IPPROTO_UDP => udp(p, l4, l4_len),
        IPPROTO_ESP => {
            // SPI 0 is reserved and never sent (RFC 4303 section 2.1).
            match p.be32_at(l4) {
                Some(spi) if l4_len >= ESP_MIN_LEN && spi != 0 => PacketClass::Esp,
                _ => PacketClass::Malformed,
            }
        }
        _ => PacketClass::Plain,
    }
}

#[inline(always)]
fn udp<P: PacketBytes + ?Sized>(p: &P, l4: usize, l4_len: usize) -> PacketClass {
    let Some(hdr) = p.bytes::<UDP_HLEN>(l4) else {
        return PacketClass::Malformed;
    };
    let dst_port = u16::from_be_bytes([hdr[2], hdr[3]]);
    let udp_len = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
    if udp_len < UDP_HLEN || udp_len > l4_len {
        return PacketClass::Malformed;
    }
    let payload = l4 + UDP_HLEN;
    let payload_len = udp_len - UDP_HLEN;
    match dst_port {
        IKE_PORT if payload_len >= IKE_HLEN => PacketClass::Ike,
        IKE_PORT => PacketClass::Malformed,
        IKE_NATT_PORT => natt_port(p, payload, payload_len),
        _ => PacketClass::Plain,
    }
}

/// Demultiplexes UDP port 4500 (RFC 3948 section 2): keepalive, IKE behind the marker, or ESP.
#[inline(always)]
fn natt_port<P: PacketBytes + ?Sized>(p: &P, payload: usize, payload_len: usize) -> PacketClass {
    if payload_len == 1 {
        return match p.u8_at(payload) {
            Some(NAT_KEEPALIVE) => PacketClass::NatKeepalive,
            _ => PacketClass::Malformed,
        };
    }
    let Some(first_word) = p.be32_at(payload) else {
        return PacketClass::Malformed;
    };
    if payload_len < NON_ESP_MARKER_LEN {
        PacketClass::Malformed
    } else if first_word == 0 {
        if payload_len >= NON_ESP_MARKER_LEN + IKE_HLEN {
            PacketClass::IkeNatT
        } else {
            PacketClass::Malformed
        }
    } else if payload_len >= ESP_MIN_LEN {
        PacketClass::EspInUdp
    } else {
        PacketClass::Malformed
    }
}

#[cfg(test)]
mod tests;
