//! `vpn-esp`: the userspace ESP transform used by the AF_XDP crypto workers.
//!
//! Tunnel-mode ESP (RFC 4303) with AES-GCM-16 (RFC 4106), optionally inside UDP (RFC 3948).
//! Everything works in place on caller-provided buffers: no allocation per packet.
//!
//! | module | concern |
//! |---|---|
//! | [`sa`] | validated SA parameters: SPI, sequence numbers, key and salt (zeroized), ... |
//! | [`aead`] | the swappable in-place AES-GCM trait; ring (128/256), RustCrypto (192) |
//! | [`replay`] | RFC 4303 3.4.3 anti-replay window (RFC 6479 bitmap, ESN) and outbound counter |
//! | [`transform`] | ESP encapsulate / decapsulate (header, IV, padding, trailer, AAD, ICV) |
//! | [`outer`] | outer IPv4 and RFC 3948 UDP headers; whole-packet encap/decap |
//! | [`error`] | one error variant per drop reason |
//!
//! Cryptography comes from crates (ring, aes-gcm); the protocol framing, replay window and header
//! handling are hand-written here because they are small, specified exactly by the RFCs, and must
//! work in place on AF_XDP frames, which no existing crate does.
//!
//! A whole tunnel packet, out and back:
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use vpn_esp::outer::{decapsulate_packet, encapsulate_packet};
//! use vpn_esp::{AeadKey, InboundSa, OutboundSa, SaParams, Spi, TunnelEndpoints, UdpEncap};
//!
//! // KEYMAT from IKEv2 for AES-256-GCM-16: 32 key bytes then the 4-byte salt (RFC 4106 8.1).
//! let keymat = [0x42u8; 36];
//! let (key, salt) = AeadKey::from_keymat(&keymat).unwrap();
//! let ends = TunnelEndpoints::new(
//!     IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
//!     IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
//! )
//! .unwrap();
//! let mut params = SaParams::new(Spi::new(0xc001_d00d).unwrap(), key, salt, ends);
//! params.udp_encap = Some(UdpEncap::nat_t()); // behind NAT, as on EC2
//! let mut tx = OutboundSa::new(params.clone());
//! let mut rx = InboundSa::new(params);
//!
//! // A 28-byte inner IPv4/UDP packet (header checksum is not this crate's concern).
//! let mut inner = [0u8; 28];
//! inner[0] = 0x45;
//! inner[2..4].copy_from_slice(&28u16.to_be_bytes());
//! inner[9] = 17;
//!
//! let mut frame = [0u8; 2048];
//! let len = encapsulate_packet(&mut tx, &inner, &mut frame).unwrap();
//! let got = decapsulate_packet(&mut rx, &mut frame[..len]).unwrap();
//! assert_eq!(&frame[got.inner], &inner[..]);
//! assert_eq!(got.next_header, 4);
//! ```

pub mod aead;
pub mod error;
pub mod outer;
pub mod replay;
pub mod sa;
pub mod transform;

pub use error::{ConfigError, EspError};
pub use sa::{
    AeadKey, DfPolicy, KeySize, OuterPolicy, ReplayWindowSize, SaParams, Salt, SeqNum, Spi,
    TunnelEndpoints, UdpEncap,
};
pub use transform::{Decapsulated, InboundSa, OutboundSa, decapsulate, encapsulate};
