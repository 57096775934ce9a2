//! Helpers shared by the integration tests (no new dependencies).
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use vpn_esp::sa::{AeadKey, ReplayWindowSize, SaParams, Salt, Spi, TunnelEndpoints, UdpEncap};

/// Decode hex, ignoring whitespace. Panics on bad input (test data only).
pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// Lower-case hex.
pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// xorshift64* pseudo-random generator (deterministic, no dependency).
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next_u64() as u8;
        }
    }
}

pub const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

/// Parameters for one direction; both ends use the same parameters for a given direction.
pub fn params(key_len: usize, esn: bool, udp: bool, window: u32) -> SaParams {
    let key: Vec<u8> = (0..key_len as u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(3))
        .collect();
    let mut p = SaParams::new(
        Spi::new(0x1234_5678).unwrap(),
        AeadKey::new(&key).unwrap(),
        Salt::new([0xde, 0xad, 0xbe, 0xef]),
        TunnelEndpoints::new(IpAddr::V4(LOCAL), IpAddr::V4(REMOTE)).unwrap(),
    );
    p.esn = esn;
    p.replay_window = ReplayWindowSize::new(window).unwrap();
    if udp {
        p.udp_encap = Some(UdpEncap::nat_t());
    }
    p
}

/// A minimal inner IPv4/UDP packet of `total` bytes (>= 28) with a valid header checksum.
pub fn inner_ipv4_udp(total: usize, tos: u8, df: bool, fill: u8) -> Vec<u8> {
    assert!((28..=65535).contains(&total));
    let mut p = vec![fill; total];
    p[0] = 0x45;
    p[1] = tos;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&0x1c46u16.to_be_bytes());
    p[6..8].copy_from_slice(&(if df { 0x4000u16 } else { 0 }).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[10..12].copy_from_slice(&[0, 0]);
    p[12..16].copy_from_slice(&[10, 1, 0, 10]);
    p[16..20].copy_from_slice(&[10, 2, 0, 10]);
    let c = vpn_esp::outer::internet_checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&5000u16.to_be_bytes());
    p[22..24].copy_from_slice(&6000u16.to_be_bytes());
    p[24..26].copy_from_slice(&((total - 20) as u16).to_be_bytes());
    p[26..28].copy_from_slice(&[0, 0]);
    p
}
