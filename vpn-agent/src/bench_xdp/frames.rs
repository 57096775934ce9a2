//! Representative frames for the XDP test runs: Ethernet + IPv4 with valid header checksums,
//! UDP, ESP (raw and RFC 3948 UDP-encapsulated), IKE and a TCP SYN.

use std::net::Ipv4Addr;

const ETH_P_IPV4: u16 = 0x0800;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ESP: u8 = 50;
/// IP packets of the tunnel MTU: what a bulk transfer carries.
pub const INNER_PACKET_LEN: usize = 1400;
/// AES-GCM ESP: SPI, sequence number, 8-byte IV, then the sealed inner packet with its
/// trailer (pad length, next header) and a 16-byte ICV.
const ESP_OVERHEAD: usize = 8 + 8 + 2 + 16;

pub const SRC_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
pub const DST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

/// Ethernet + IPv4 (DF, TTL 64, no options) around `l4`.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let total = 20 + l4.len();
    let mut f = Vec::with_capacity(14 + total);
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&ETH_P_IPV4.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(l4);
    f
}

/// A UDP datagram (checksum 0: optional over IPv4).
pub fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut l4 = Vec::with_capacity(8 + payload.len());
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    l4.extend_from_slice(&[0, 0]);
    l4.extend_from_slice(payload);
    ipv4(src, dst, IPPROTO_UDP, &l4)
}

/// A UDP packet of `ip_len` bytes in all (IP header included).
pub fn udp_of_len(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, ip_len: usize) -> Vec<u8> {
    udp(src, dst, sport, dport, &vec![0x5a; ip_len - 28])
}

/// ESP carrying one sealed inner packet of [`INNER_PACKET_LEN`] bytes (contents arbitrary:
/// XDP reads only the SPI).
fn esp_payload(spi: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(INNER_PACKET_LEN + ESP_OVERHEAD);
    p.extend_from_slice(&spi.to_be_bytes());
    p.extend_from_slice(&1u32.to_be_bytes());
    p.resize(INNER_PACKET_LEN + ESP_OVERHEAD, 0xa5);
    p
}

/// ESP as IP protocol 50.
pub fn raw_esp(src: Ipv4Addr, dst: Ipv4Addr, spi: u32) -> Vec<u8> {
    ipv4(src, dst, IPPROTO_ESP, &esp_payload(spi))
}

/// ESP in UDP 4500 (RFC 3948 2.1).
pub fn esp_in_udp(src: Ipv4Addr, dst: Ipv4Addr, spi: u32) -> Vec<u8> {
    udp(src, dst, 4500, 4500, &esp_payload(spi))
}

/// An IKE_SA_INIT request on UDP 500 (RFC 7296 3.1 header; payloads zeroed, 300 bytes in all).
pub fn ike_sa_init(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut ike = vec![0u8; 300];
    ike[0..8].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes()); // initiator SPI
    ike[16] = 33; // next payload: SA
    ike[17] = 0x20; // version 2.0
    ike[18] = 34; // IKE_SA_INIT
    ike[19] = 0x08; // initiator
    let len = ike.len() as u32;
    ike[24..28].copy_from_slice(&len.to_be_bytes());
    udp(src, dst, 500, 500, &ike)
}

/// A TCP SYN with an MSS option of 1460 (what XDP clamps for a tunnel with an MSS).
pub fn tcp_syn(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut tcp = [0u8; 24];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&443u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&1u32.to_be_bytes());
    tcp[12] = 6 << 4; // data offset: 24 bytes
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    tcp[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
    let mut pseudo = Vec::with_capacity(12 + tcp.len());
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, IPPROTO_TCP]);
    pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(&tcp);
    let sum = checksum(&pseudo);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    ipv4(src, dst, IPPROTO_TCP, &tcp)
}

/// The Internet checksum (RFC 1071).
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    const B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

    #[test]
    fn ip_header_checksum_verifies() {
        let f = udp_of_len(A, B, 1, 2, 100);
        assert_eq!(f.len(), 14 + 100);
        assert_eq!(checksum(&f[14..34]), 0);
    }

    #[test]
    fn classifier_agrees_with_the_frames() {
        use vpn_common::PacketClass;
        use vpn_ebpf::classify;
        assert_eq!(classify(&ike_sa_init(A, B)[..]), PacketClass::Ike);
        assert_eq!(classify(&esp_in_udp(A, B, 7)[..]), PacketClass::EspInUdp);
        assert_eq!(classify(&raw_esp(A, B, 7)[..]), PacketClass::Esp);
        assert_eq!(
            classify(&udp_of_len(A, B, 40000, 9, 1400)[..]),
            PacketClass::Plain
        );
        assert_eq!(classify(&tcp_syn(A, B)[..]), PacketClass::Plain);
    }
}
