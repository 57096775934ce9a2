//! What happens to an inner IPv4 packet larger than the tunnel MTU (RFC 4459 section 3, and
//! AWS's advice to fragment before encryption): with DF set, the sender gets ICMP
//! "fragmentation needed" carrying the tunnel MTU (RFC 1191); without DF, the packet is split
//! into fragments that each fit, and each is sealed on its own, so the outer packets are never
//! fragmented.

use std::net::Ipv4Addr;

const IPV4_HLEN: usize = 20;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;
const IPPROTO_ICMP: u8 = 1;

/// RFC 1071 checksum.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = match chunk {
            [hi, lo] => u16::from_be_bytes([*hi, *lo]),
            [hi] => u16::from_be_bytes([*hi, 0]),
            _ => 0,
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether the IPv4 packet forbids fragmentation.
pub fn dont_fragment(packet: &[u8]) -> bool {
    packet.len() >= IPV4_HLEN && u16::from_be_bytes([packet[6], packet[7]]) & FLAG_DF != 0
}

/// Splits an IPv4 packet into fragments of at most `mtu` bytes (RFC 791 section 3.2). The
/// header, options included, is repeated in every fragment. `None` for a malformed packet or
/// an MTU too small for its header plus eight bytes.
pub fn fragment_ipv4(packet: &[u8], mtu: usize) -> Option<Vec<Vec<u8>>> {
    let ihl = usize::from(*packet.first()? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
    if ihl < IPV4_HLEN || total < ihl || total > packet.len() || mtu < ihl + 8 {
        return None;
    }
    let flags_offset = u16::from_be_bytes([packet[6], packet[7]]);
    let base_offset = usize::from(flags_offset & OFFSET_MASK) * 8;
    let last_has_more = flags_offset & FLAG_MF != 0;
    let chunk = (mtu - ihl) & !7;
    let payload = &packet[ihl..total];
    let mut fragments = Vec::new();
    let mut done = 0;
    while done < payload.len() {
        let len = chunk.min(payload.len() - done);
        let last = done + len == payload.len();
        let mut f = Vec::with_capacity(ihl + len);
        f.extend_from_slice(&packet[..ihl]);
        f.extend_from_slice(&payload[done..done + len]);
        let more = !last || last_has_more;
        let offset = ((base_offset + done) / 8) as u16;
        let field = (flags_offset & FLAG_DF) | if more { FLAG_MF } else { 0 } | offset;
        f[2..4].copy_from_slice(&((ihl + len) as u16).to_be_bytes());
        f[6..8].copy_from_slice(&field.to_be_bytes());
        f[10..12].copy_from_slice(&[0, 0]);
        let sum = checksum(&f[..ihl]);
        f[10..12].copy_from_slice(&sum.to_be_bytes());
        fragments.push(f);
        done += len;
    }
    Some(fragments)
}

/// ICMP destination unreachable, "fragmentation needed and DF set" (type 3 code 4) from
/// `router` about `original`, announcing `mtu` (RFC 1191 section 4).
pub fn frag_needed(router: Ipv4Addr, original: &[u8], mtu: u16) -> Option<Vec<u8>> {
    let ihl = usize::from(*original.first()? & 0x0f) * 4;
    if ihl < IPV4_HLEN || original.len() < ihl {
        return None;
    }
    // The original header and the first 8 bytes of its payload (RFC 792).
    let quoted = &original[..(ihl + 8).min(original.len())];
    let mut icmp = vec![3, 4, 0, 0, 0, 0];
    icmp.extend_from_slice(&mtu.to_be_bytes());
    icmp.extend_from_slice(quoted);
    let sum = checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());

    let total = (IPV4_HLEN + icmp.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, 64, IPPROTO_ICMP, 0, 0]);
    ip.extend_from_slice(&router.octets());
    ip.extend_from_slice(&original[12..16]); // back to the sender
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip.extend_from_slice(&icmp);
    Some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(len: usize, df: bool) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, 17, 0, 0, 10, 1, 0, 10, 10, 2, 0, 10,
        ];
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        if df {
            p[6] = 0x40;
        }
        p.extend((0..len - 20).map(|i| i as u8));
        let sum = checksum(&p[..20]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p
    }

    #[test]
    fn fragments_fit_the_mtu_and_reassemble_to_the_original() {
        let original = packet(3000, false);
        let fragments = fragment_ipv4(&original, 1400).unwrap();
        assert_eq!(fragments.len(), 3);
        let mut payload = Vec::new();
        for (i, f) in fragments.iter().enumerate() {
            assert!(f.len() <= 1400);
            assert_eq!(checksum(&f[..20]), 0, "header checksum of fragment {i}");
            let field = u16::from_be_bytes([f[6], f[7]]);
            assert_eq!(usize::from(field & OFFSET_MASK) * 8, payload.len());
            assert_eq!(field & FLAG_MF != 0, i < 2);
            assert_eq!(&f[4..6], &[0x12, 0x34], "same identification");
            payload.extend_from_slice(&f[20..]);
        }
        assert_eq!(payload, original[20..]);
    }

    #[test]
    fn refuses_what_it_cannot_split() {
        assert!(fragment_ipv4(&packet(100, false), 27).is_none());
        let mut short = packet(100, false);
        short.truncate(60);
        assert!(fragment_ipv4(&short, 40).is_none());
        assert!(fragment_ipv4(&[0x45], 1400).is_none());
    }

    #[test]
    fn frag_needed_quotes_the_packet_and_carries_the_mtu() {
        let original = packet(1500, true);
        assert!(dont_fragment(&original));
        let icmp = frag_needed(Ipv4Addr::new(198, 51, 100, 1), &original, 1400).unwrap();
        assert_eq!(checksum(&icmp[..20]), 0);
        assert_eq!(&icmp[16..20], &[10, 1, 0, 10]);
        assert_eq!(&icmp[20..22], &[3, 4]);
        assert_eq!(u16::from_be_bytes([icmp[26], icmp[27]]), 1400);
        assert_eq!(checksum(&icmp[20..]), 0);
        assert_eq!(&icmp[28..56], &original[..28]);
    }
}
