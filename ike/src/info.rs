//! Snapshots of IKE SAs and their CHILD_SAs for status displays, in the vocabulary of
//! `swanctl --list-sas` (algorithm names as strongSwan prints them).

use std::{net::SocketAddr, time::Instant};

use vpn_ike_crypto::{
    dh::DhGroup,
    ike_cipher::{EncrAlgorithm, IntegAlgorithm},
    prf::PrfAlgorithm,
};

use crate::{
    SaState,
    codec::Spi,
    config::TrafficSelector,
    sa::{ChildSa, SaCore},
};

/// One IKE SA as a status display shows it.
#[derive(Debug, Clone)]
pub struct IkeSaInfo {
    /// Initiator's SPI.
    pub spi_i: Spi,
    /// Responder's SPI.
    pub spi_r: Spi,
    /// We sent its IKE_SA_INIT.
    pub initiator: bool,
    /// Where it stands.
    pub state: SaState,
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// A NAT was detected between the peers (RFC 7296 2.23).
    pub nat_detected: bool,
    /// IKE on the NAT-T port and ESP in UDP (RFC 3948).
    pub udp_encap: bool,
    /// Negotiated algorithms, e.g. `AES_GCM_16-256/PRF_HMAC_SHA2_256/MODP_2048`.
    pub algorithms: Option<String>,
    /// Its CHILD_SAs.
    pub children: Vec<ChildSaInfo>,
}

/// One CHILD_SA as a status display shows it.
#[derive(Debug, Clone)]
pub struct ChildSaInfo {
    /// SPI of inbound packets.
    pub spi_in: u32,
    /// SPI of outbound packets.
    pub spi_out: u32,
    /// ESP algorithms, e.g. `AES_GCM_16-256` (with `/ESN` when negotiated).
    pub algorithms: String,
    /// Our side's selectors.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's side's selectors.
    pub remote_ts: Vec<TrafficSelector>,
    /// When it is due for a rekey.
    pub rekey_at: Instant,
    /// When it expires.
    pub expire_at: Instant,
    /// A rekey of it is in progress, or it was replaced.
    pub rekeying: bool,
}

impl SaCore {
    pub(crate) fn info(&self) -> IkeSaInfo {
        IkeSaInfo {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            initiator: self.initiator,
            state: self.summary(),
            local: self.local,
            remote: self.remote,
            nat_detected: self.nat_detected,
            udp_encap: self.encap,
            algorithms: self.state.keyed().map(|k| {
                let s = &k.chosen.suite;
                let mut parts = vec![encr_name(s.encr).to_owned()];
                parts.extend(s.integ.map(|i| integ_name(i).to_owned()));
                parts.push(prf_name(s.prf).to_owned());
                parts.push(dh_name(k.chosen.dh).to_owned());
                parts.join("/")
            }),
            children: self.children.iter().map(ChildSa::info).collect(),
        }
    }
}

impl ChildSa {
    fn info(&self) -> ChildSaInfo {
        let s = &self.chosen.suite;
        let mut parts = vec![encr_name(s.encr).to_owned()];
        parts.extend(s.integ.map(|i| integ_name(i).to_owned()));
        parts.extend(self.chosen.dh.map(|d| dh_name(d).to_owned()));
        if self.chosen.esn {
            parts.push("ESN".to_owned());
        }
        ChildSaInfo {
            spi_in: self.spi_in,
            spi_out: self.spi_out,
            algorithms: parts.join("/"),
            local_ts: self.local_ts.clone(),
            remote_ts: self.remote_ts.clone(),
            rekey_at: self.rekey_at,
            expire_at: self.expire_at,
            rekeying: self.rekeying,
        }
    }
}

fn encr_name(e: EncrAlgorithm) -> &'static str {
    match e {
        EncrAlgorithm::AesCbc128 => "AES_CBC-128",
        EncrAlgorithm::AesCbc192 => "AES_CBC-192",
        EncrAlgorithm::AesCbc256 => "AES_CBC-256",
        EncrAlgorithm::AesGcm16_128 => "AES_GCM_16-128",
        EncrAlgorithm::AesGcm16_192 => "AES_GCM_16-192",
        EncrAlgorithm::AesGcm16_256 => "AES_GCM_16-256",
    }
}

fn integ_name(i: IntegAlgorithm) -> &'static str {
    match i {
        IntegAlgorithm::HmacSha1_96 => "HMAC_SHA1_96",
        IntegAlgorithm::HmacSha256_128 => "HMAC_SHA2_256_128",
        IntegAlgorithm::HmacSha384_192 => "HMAC_SHA2_384_192",
        IntegAlgorithm::HmacSha512_256 => "HMAC_SHA2_512_256",
    }
}

fn prf_name(p: PrfAlgorithm) -> &'static str {
    match p {
        PrfAlgorithm::HmacSha1 => "PRF_HMAC_SHA1",
        PrfAlgorithm::HmacSha256 => "PRF_HMAC_SHA2_256",
        PrfAlgorithm::HmacSha384 => "PRF_HMAC_SHA2_384",
        PrfAlgorithm::HmacSha512 => "PRF_HMAC_SHA2_512",
    }
}

fn dh_name(d: DhGroup) -> &'static str {
    match d {
        DhGroup::Modp1024 => "MODP_1024",
        DhGroup::Modp1536 => "MODP_1536",
        DhGroup::Modp2048 => "MODP_2048",
        DhGroup::Modp3072 => "MODP_3072",
        DhGroup::Modp4096 => "MODP_4096",
        DhGroup::Modp6144 => "MODP_6144",
        DhGroup::Modp8192 => "MODP_8192",
        DhGroup::Ecp256 => "ECP_256",
        DhGroup::Ecp384 => "ECP_384",
        DhGroup::Ecp521 => "ECP_521",
        DhGroup::Modp1024S160 => "MODP_1024_160",
        DhGroup::Modp2048S224 => "MODP_2048_224",
        DhGroup::Modp2048S256 => "MODP_2048_256",
        DhGroup::Curve25519 => "CURVE_25519",
    }
}
