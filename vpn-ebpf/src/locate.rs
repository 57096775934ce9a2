//! Offsets of the headers the tunnel datapath acts on, found after [`crate::classify`] has
//! checked the frame (IPv4 outer headers only for now; IPv6 outer traffic passes to the kernel).

use vpn_common::PacketClass;

use crate::packet::PacketBytes;

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const UDP_HLEN: usize = 8;
const IPV4_MIN_HLEN: usize = 20;

/// Offset of the IPv4 header, through up to two VLAN tags; `None` if the frame is not IPv4.
#[inline(always)]
pub fn ipv4_offset<P: PacketBytes + ?Sized>(p: &P) -> Option<usize> {
    let mut ethertype = p.be16_at(12)?;
    let mut l3 = ETH_HLEN;
    for _ in 0..2 {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        ethertype = p.be16_at(l3 + 2)?;
        l3 += VLAN_HLEN;
    }
    (ethertype == ETH_P_IPV4).then_some(l3)
}

/// Source and destination of a well-formed IPv4 header at `l3` (version 4, IHL >= 5, total
/// length inside the frame), in network byte order.
#[inline(always)]
pub fn ipv4_addresses<P: PacketBytes + ?Sized>(p: &P, l3: usize) -> Option<([u8; 4], [u8; 4])> {
    let hdr = p.bytes::<IPV4_MIN_HLEN>(l3)?;
    let ihl = usize::from(hdr[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
    if hdr[0] >> 4 != 4 || ihl < IPV4_MIN_HLEN || total_len < ihl || l3 + total_len > p.len() {
        return None;
    }
    Some((
        [hdr[12], hdr[13], hdr[14], hdr[15]],
        [hdr[16], hdr[17], hdr[18], hdr[19]],
    ))
}

/// Offset of the ESP header (its SPI) in a frame classified as [`PacketClass::Esp`] or
/// [`PacketClass::EspInUdp`] with an IPv4 outer header.
#[inline(always)]
pub fn esp_offset<P: PacketBytes + ?Sized>(p: &P, class: PacketClass) -> Option<usize> {
    let l3 = ipv4_offset(p)?;
    let ihl = usize::from(p.u8_at(l3)? & 0x0f) * 4;
    match class {
        PacketClass::Esp => Some(l3 + ihl),
        PacketClass::EspInUdp => Some(l3 + ihl + UDP_HLEN),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify;

    fn frame(ethertype: u16, ip: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(ip);
        f
    }

    fn ipv4(proto: u8, options: &[u8], l4: &[u8]) -> Vec<u8> {
        let ihl = 20 + options.len();
        let total = (ihl + l4.len()) as u16;
        let mut h = vec![0x40 | (ihl / 4) as u8, 0];
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 0, 64, proto, 0, 0]);
        h.extend_from_slice(&[198, 51, 100, 2, 198, 51, 100, 1]);
        h.extend_from_slice(options);
        h.extend_from_slice(l4);
        h
    }

    #[test]
    fn finds_raw_esp_after_ipv4_options() {
        let esp = [0, 0, 0x10, 0x01, 0, 0, 0, 1];
        let f = frame(0x0800, &ipv4(50, &[1, 1, 1, 0], &esp));
        assert_eq!(classify(&f[..]), PacketClass::Esp);
        assert_eq!(esp_offset(&f[..], PacketClass::Esp), Some(14 + 24));
        assert_eq!(f[38..42], [0, 0, 0x10, 0x01]);
    }

    #[test]
    fn finds_esp_in_udp_behind_a_vlan_tag() {
        let mut udp = vec![0x11, 0x94, 0x11, 0x94, 0, 16, 0, 0];
        udp.extend_from_slice(&[0, 0, 0x20, 0x02, 0, 0, 0, 7]);
        let ip = ipv4(17, &[], &udp);
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x08, 0x00]);
        f.extend_from_slice(&ip);
        assert_eq!(classify(&f[..]), PacketClass::EspInUdp);
        assert_eq!(ipv4_offset(&f[..]), Some(18));
        assert_eq!(esp_offset(&f[..], PacketClass::EspInUdp), Some(18 + 20 + 8));
    }

    #[test]
    fn addresses_only_from_consistent_headers() {
        let ok = frame(0x0800, &ipv4(6, &[], &[0; 20]));
        assert_eq!(
            ipv4_addresses(&ok[..], 14),
            Some(([198, 51, 100, 2], [198, 51, 100, 1]))
        );
        let mut long = ok.clone();
        long[16] = 0xff; // total length past the frame
        assert_eq!(ipv4_addresses(&long[..], 14), None);
        assert_eq!(ipv4_addresses(&ok[..30], 14), None);
        assert_eq!(ipv4_offset(&frame(0x86dd, &[0; 40])[..]), None);
    }
}
