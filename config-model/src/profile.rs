//! Profiles: the defaults and the limits of the peers the appliance meets most.
//!
//! AWS figures: AWS Site-to-Site VPN user guide, "Tunnel options for your Site-to-Site VPN
//! connection" and the EC2 API `VpnTunnelOptionsSpecification` (phase 1 encryption AES128 |
//! AES256 | AES128-GCM-16 | AES256-GCM-16; integrity SHA1 | SHA2-256 | SHA2-384 | SHA2-512;
//! phase 1 DH groups 2, 14-24; phase 2 DH groups 2, 5, 14-24; phase 1 lifetime 900-28800 s
//! (28800); phase 2 lifetime 900-3600 s (3600) and below phase 1; rekey margin 60 s to half the
//! phase 2 lifetime (540); rekey fuzz 0-100 % (100); replay window 64-2048 (1024); DPD timeout
//! at least 30 s (30), action clear | none | restart (clear); inside CIDR a /30 in
//! 169.254.0.0/16 minus the reserved ones; PSK 8-64 characters of letters, digits, '.' and
//! '_', not starting with '0'), as summarized in shared/docs/field.md.
//! The 1399/1379 MTU/MSS pair is the one AWS's generated device configurations use.
//!
//! GCP figures: Cloud VPN "Supported IKE ciphers"
//! (<https://cloud.google.com/network-connectivity/docs/vpn/concepts/supported-ike-ciphers>):
//! IKE fragmentation (RFC 7383) supported, configure one cipher per role, same cipher and
//! phase 2 lifetime on both tunnels of an HA pair; and "MTU considerations"
//! (<https://cloud.google.com/network-connectivity/docs/vpn/concepts/mtu-considerations>):
//! "Configure your peer VPN gateway to use an MTU of no greater than 1460 bytes", prefragment
//! before encryption, and consider 1390-byte MTUs on the systems behind the gateways. GCP HA
//! VPN speaks IKEv2 only (seed 003) and authenticates with a shared secret only. The cipher
//! tables themselves were not in the excerpts the search returned; the GCP cipher check below
//! only refuses what Cloud VPN does not list (ChaCha20-Poly1305) and leaves DH groups to the
//! negotiation.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::model::{DpdAction, Profile};
use crate::proposal::{Encryption, Proposal, ProposalKind};

/// Defaults for one profile (or none).
pub(crate) struct Defaults {
    pub ike_lifetime: u64,
    pub child_lifetime: u64,
    pub rekey_margin: u64,
    pub rekey_fuzz: u32,
    pub replay_window: u32,
    pub dpd_delay: u64,
    pub dpd_timeout: u64,
    pub dpd_action: DpdAction,
    pub mtu: u32,
    pub mss: u32,
    pub outer_mtu: u32,
    pub ike_proposals: &'static [&'static str],
    pub esp_proposals: &'static [&'static str],
}

pub(crate) const PLAIN: Defaults = Defaults {
    // strongSwan's defaults, rounded: IKE 4 h, CHILD 1 h.
    ike_lifetime: 14400,
    child_lifetime: 3600,
    rekey_margin: 540,
    rekey_fuzz: 100,
    replay_window: 1024,
    // Seeds 001 and 004: dpddelay 10 s, dpdtimeout 30 s, dpdaction restart.
    dpd_delay: 10,
    dpd_timeout: 30,
    dpd_action: DpdAction::Restart,
    mtu: 1400,
    mss: 1360,
    outer_mtu: 1500,
    ike_proposals: &["aes256gcm16-prfsha256-modp2048", "aes256-sha256-modp2048"],
    esp_proposals: &["aes256gcm16-modp2048", "aes256-sha256-modp2048"],
};

pub(crate) const AWS: Defaults = Defaults {
    ike_lifetime: 28800,
    child_lifetime: 3600,
    rekey_margin: 540,
    rekey_fuzz: 100,
    replay_window: 1024,
    dpd_delay: 10,
    dpd_timeout: 30,
    dpd_action: DpdAction::Clear,
    mtu: 1399,
    mss: 1379,
    outer_mtu: 1500,
    ike_proposals: &[
        "aes256gcm16-prfsha256-modp2048",
        "aes128gcm16-prfsha256-modp2048",
        "aes256-sha256-modp2048",
        "aes128-sha256-modp2048",
    ],
    esp_proposals: &[
        "aes256gcm16-modp2048",
        "aes128gcm16-modp2048",
        "aes256-sha256-modp2048",
        "aes128-sha256-modp2048",
    ],
};

pub(crate) const GCP: Defaults = Defaults {
    // Cloud VPN's own lifetimes are 10 h (IKE) and 3 h (CHILD); it accepts rekeys from the
    // peer at any time, so the peer may use these or shorter ones.
    ike_lifetime: 36000,
    child_lifetime: 10800,
    rekey_margin: 540,
    rekey_fuzz: 100,
    replay_window: 1024,
    dpd_delay: 10,
    dpd_timeout: 30,
    dpd_action: DpdAction::Restart,
    mtu: 1390,
    mss: 1350,
    outer_mtu: 1460,
    // One cipher per role, as the GCP page asks.
    ike_proposals: &["aes256gcm16-prfsha256-modp2048"],
    esp_proposals: &["aes256gcm16-modp2048"],
};

pub(crate) fn defaults(p: Option<Profile>) -> &'static Defaults {
    match p {
        Some(Profile::Aws) => &AWS,
        Some(Profile::Gcp) => &GCP,
        _ => &PLAIN,
    }
}

pub(crate) const AWS_IKE_LIFETIME: (u64, u64) = (900, 28800);
pub(crate) const AWS_CHILD_LIFETIME: (u64, u64) = (900, 3600);
pub(crate) const AWS_MIN_REKEY_MARGIN: u64 = 60;
pub(crate) const AWS_REPLAY_WINDOW: (u32, u32) = (64, 2048);
pub(crate) const AWS_MIN_DPD_TIMEOUT: u64 = 30;
pub(crate) const GCP_MAX_OUTER_MTU: u32 = 1460;

/// The /30s AWS refuses as tunnel inside CIDRs.
pub(crate) fn aws_reserved_inside() -> [Ipv4Net; 7] {
    let n = |a, b, c, d| Ipv4Net::new(Ipv4Addr::new(a, b, c, d), 30).expect("/30");
    [
        n(169, 254, 0, 0),
        n(169, 254, 1, 0),
        n(169, 254, 2, 0),
        n(169, 254, 3, 0),
        n(169, 254, 4, 0),
        n(169, 254, 5, 0),
        n(169, 254, 169, 252),
    ]
}

/// Why AWS would refuse this proposal, if it would.
pub(crate) fn aws_refuses(kind: ProposalKind, p: &Proposal) -> Option<String> {
    for e in &p.encryption {
        if !matches!(
            e,
            Encryption::AesCbc128
                | Encryption::AesCbc256
                | Encryption::AesGcm16_128
                | Encryption::AesGcm16_256
        ) {
            return Some(format!(
                "`{}` is not accepted by AWS (AES128, AES256, AES128-GCM-16, AES256-GCM-16)",
                e.keyword()
            ));
        }
    }
    // Integrity and PRF: SHA1, SHA2-256/384/512, which is every one this crate knows.
    for g in &p.dh {
        let n = g.number();
        let ok = match kind {
            ProposalKind::Ike => n == 2 || (14..=24).contains(&n),
            ProposalKind::Esp => n == 2 || n == 5 || (14..=24).contains(&n),
        };
        if !ok {
            let (phase, list) = match kind {
                ProposalKind::Ike => ("phase 1", "2, 14-24"),
                ProposalKind::Esp => ("phase 2", "2, 5, 14-24"),
            };
            return Some(format!(
                "`{}` (group {n}) is not accepted by AWS in {phase} (groups {list})",
                g.keyword()
            ));
        }
    }
    None
}

/// Why GCP would refuse this proposal, if it would (see the module comment for the limits).
pub(crate) fn gcp_refuses(p: &Proposal) -> Option<String> {
    for e in &p.encryption {
        if *e == Encryption::ChaCha20Poly1305 {
            return Some(format!(
                "`{}` is not among Cloud VPN's supported ciphers (AES-CBC, AES-GCM)",
                e.keyword()
            ));
        }
    }
    // DH groups are left to the negotiation.
    None
}

/// AWS's PSK rule; the error describes the rule and never the key.
pub(crate) fn aws_psk_problem(psk: &[u8]) -> Option<&'static str> {
    if psk.len() < 8 || psk.len() > 64 {
        return Some("it must be 8 to 64 characters long");
    }
    if !psk
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'_')
    {
        return Some("it may only contain letters, digits, '.' and '_'");
    }
    if psk[0] == b'0' {
        return Some("it must not start with '0'");
    }
    None
}
