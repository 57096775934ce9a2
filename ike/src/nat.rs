//! NAT detection (RFC 7296 section 2.23).
//!
//! `NAT_DETECTION_*_IP` data is `SHA-1(SPIi | SPIr | IP address | port)`; in the IKE_SA_INIT
//! request SPIr is zero. A SOURCE hash that does not match the address the datagram came from
//! means the peer is behind a NAT; a DESTINATION hash that does not match the address it
//! arrived at means we are. With `force_encap` we send a random SOURCE hash, as strongSwan
//! does, so that the peer sees a NAT too.

use std::net::{IpAddr, SocketAddr};

use sha1::{Digest, Sha1};

use crate::codec::{Notify, NotifyType, Payload, Spi};

/// `SHA-1(SPIi | SPIr | IP | port)`.
#[must_use]
pub fn nat_hash(spi_i: Spi, spi_r: Spi, addr: SocketAddr) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(spi_i.0);
    h.update(spi_r.0);
    match addr.ip() {
        IpAddr::V4(a) => h.update(a.octets()),
        IpAddr::V6(a) => h.update(a.octets()),
    }
    h.update(addr.port().to_be_bytes());
    h.finalize().into()
}

/// The two NAT detection notifies for a message sent from `local` to `remote`.
/// `fake_source` replaces the source hash (force_encap).
#[must_use]
pub fn notifies(
    spi_i: Spi,
    spi_r: Spi,
    local: SocketAddr,
    remote: SocketAddr,
    fake_source: Option<[u8; 20]>,
) -> [Payload; 2] {
    let src = fake_source.unwrap_or_else(|| nat_hash(spi_i, spi_r, local));
    [
        Payload::Notify(Notify::new(NotifyType::NatDetectionSourceIp, src.to_vec())),
        Payload::Notify(Notify::new(
            NotifyType::NatDetectionDestinationIp,
            nat_hash(spi_i, spi_r, remote).to_vec(),
        )),
    ]
}

/// What the NAT detection notifies of a received message say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NatResult {
    /// The peer supports NAT traversal (sent the notifies).
    pub supported: bool,
    /// We are behind a NAT.
    pub local_behind: bool,
    /// The peer is behind a NAT.
    pub remote_behind: bool,
}

impl NatResult {
    /// Whether any NAT was detected.
    #[must_use]
    pub fn any(self) -> bool {
        self.local_behind || self.remote_behind
    }
}

/// Checks the notifies of a message that came from `from` to `to`.
#[must_use]
pub fn detect(
    payloads: &[Payload],
    spi_i: Spi,
    spi_r: Spi,
    from: SocketAddr,
    to: SocketAddr,
) -> NatResult {
    let mut sources = Vec::new();
    let mut dest = None;
    for p in payloads {
        if let Payload::Notify(n) = p {
            match n.notify_type {
                NotifyType::NatDetectionSourceIp => sources.push(n.data.as_slice()),
                NotifyType::NatDetectionDestinationIp => dest = Some(n.data.as_slice()),
                _ => {}
            }
        }
    }
    let Some(dest) = dest else {
        return NatResult::default();
    };
    if sources.is_empty() {
        return NatResult::default();
    }
    let expect_src = nat_hash(spi_i, spi_r, from);
    let expect_dst = nat_hash(spi_i, spi_r, to);
    NatResult {
        supported: true,
        remote_behind: !sources.contains(&expect_src.as_slice()),
        local_behind: dest != expect_dst.as_slice(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_addresses_no_nat_and_rewritten_source_is_detected() {
        let (i, r) = (Spi::from(1), Spi::ZERO);
        let a: SocketAddr = "10.0.0.1:500".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:500".parse().unwrap();
        let sent = notifies(i, r, a, b, None);
        assert!(!detect(&sent, i, r, a, b).any());
        let nat: SocketAddr = "203.0.113.9:61000".parse().unwrap();
        let res = detect(&sent, i, r, nat, b);
        assert!(res.remote_behind && !res.local_behind);
        let fake = notifies(i, r, a, b, Some([7; 20]));
        assert!(detect(&fake, i, r, a, b).remote_behind);
    }
}
