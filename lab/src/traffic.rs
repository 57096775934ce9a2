//! Test traffic of each class the datapath tells apart, sent from inside a lab namespace.
//!
//! The payloads are shaped like the real thing (an IKE header, an ESP header) but carry no
//! valid cryptography: they exercise classification, not the protocols.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use anyhow::Context as _;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

pub const IKE_PORT: u16 = 500;
pub const IKE_NATT_PORT: u16 = 4500;
const IPPROTO_ESP: i32 = 50;
/// Send-only raw socket whose packets carry their own IPv4 header.
const IPPROTO_RAW: i32 = 255;

/// An IKE_SA_INIT request header (RFC 7296 section 3.1) with no payloads: 28 bytes.
pub fn ike_header(initiator_spi: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(28);
    h.extend_from_slice(&initiator_spi.to_be_bytes());
    h.extend_from_slice(&0u64.to_be_bytes()); // responder SPI: zero in IKE_SA_INIT
    h.push(0); // next payload: none
    h.push(0x20); // version 2.0
    h.push(34); // exchange type IKE_SA_INIT
    h.push(0x08); // flags: initiator
    h.extend_from_slice(&0u32.to_be_bytes()); // message ID
    h.extend_from_slice(&28u32.to_be_bytes()); // length
    h
}

/// IKE on port 4500: the non-ESP marker (four zero bytes) and an IKE header (RFC 3948 2.2).
pub fn ike_natt(initiator_spi: u64) -> Vec<u8> {
    let mut p = vec![0; 4];
    p.extend(ike_header(initiator_spi));
    p
}

/// An ESP packet: SPI, sequence number and `body_len` opaque bytes (IV, ciphertext, ICV).
pub fn esp(spi: u32, seq: u32, body_len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + body_len);
    p.extend_from_slice(&spi.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend((0..body_len).map(|i| i as u8));
    p
}

/// A NAT-keepalive: one 0xFF byte (RFC 3948 section 2.3).
pub fn nat_keepalive() -> Vec<u8> {
    vec![0xff]
}

/// Sends `payloads` as UDP datagrams from `src_port` (0 for any) to `dst`.
/// Call it inside a namespace (`Lab::run_in`).
pub fn send_udp(src_port: u16, dst: SocketAddrV4, payloads: &[Vec<u8>]) -> anyhow::Result<()> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    let src = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, src_port));
    socket
        .bind(&src.into())
        .with_context(|| format!("binding UDP port {src_port}"))?;
    let dst = SockAddr::from(dst);
    for payload in payloads {
        socket
            .send_to(payload, &dst)
            .with_context(|| format!("sending UDP to {dst:?}"))?;
    }
    Ok(())
}

/// Like [`send_udp`], with IPv4 options on every packet (so the UDP header sits at a
/// variable offset): `options` is padded with end-of-list bytes to a multiple of four.
pub fn send_udp_with_ip_options(
    dst: SocketAddrV4,
    options: &[u8],
    payloads: &[Vec<u8>],
) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd as _;
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    let mut padded = options.to_vec();
    padded.resize(options.len().div_ceil(4) * 4, 0);
    // SAFETY: valid socket fd, and a buffer of the length passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_OPTIONS,
            padded.as_ptr().cast(),
            padded.len() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("setting IP_OPTIONS");
    }
    let dst = SockAddr::from(dst);
    for payload in payloads {
        socket
            .send_to(payload, &dst)
            .with_context(|| format!("sending UDP with IP options to {dst:?}"))?;
    }
    Ok(())
}

/// Sends `payloads` as raw IP protocol 50 (ESP) packets to `dst`; the kernel adds the IPv4 header.
pub fn send_raw_esp(dst: Ipv4Addr, payloads: &[Vec<u8>]) -> anyhow::Result<()> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_ESP)))
        .context("opening a raw ESP socket")?;
    let dst = SockAddr::from(SocketAddrV4::new(dst, 0));
    for payload in payloads {
        socket.send_to(payload, &dst).context("sending raw ESP")?;
    }
    Ok(())
}

/// Sends complete IPv4 packets as they are (header included: IPPROTO_RAW), each to the
/// destination in its header; for re-sending captured packets (replays).
pub fn send_raw_ipv4(packets: &[Vec<u8>]) -> anyhow::Result<()> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_RAW)))
        .context("opening a raw IP socket")?;
    for packet in packets {
        anyhow::ensure!(
            packet.len() >= 20 && packet[0] >> 4 == 4,
            "not an IPv4 packet"
        );
        let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
        let dst = SockAddr::from(SocketAddrV4::new(dst, 0));
        socket
            .send_to(packet, &dst)
            .context("sending a raw IPv4 packet")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ike_header_is_28_bytes_and_says_so() {
        let h = ike_header(0x0102_0304_0506_0708);
        assert_eq!(h.len(), 28);
        assert_eq!(u32::from_be_bytes(h[24..28].try_into().unwrap()), 28);
        assert_eq!(h[17], 0x20);
    }

    #[test]
    fn natt_ike_starts_with_the_non_esp_marker() {
        let p = ike_natt(1);
        assert_eq!(&p[..4], &[0, 0, 0, 0]);
        assert_eq!(p.len(), 32);
    }

    #[test]
    fn esp_carries_spi_and_sequence() {
        let p = esp(0x1234, 7, 16);
        assert_eq!(&p[..4], &0x1234u32.to_be_bytes());
        assert_eq!(&p[4..8], &7u32.to_be_bytes());
        assert_eq!(p.len(), 24);
    }
}
