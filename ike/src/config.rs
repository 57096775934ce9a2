//! Typed configuration of one IKE peer (RFC 7296 sections 2.7, 2.9, 2.15, 2.23; RFC 3948).
//!
//! A [`PeerConfig`] says who we are and who the peer is (addresses and IDs), how we
//! authenticate (a pre-shared key, zeroized on drop and never printed), which algorithms we
//! offer or accept (typed [`IkeProposal`]s and [`EspProposal`]s, in preference order), what
//! traffic the CHILD_SA carries ([`TrafficSelector`], including the `0.0.0.0/0` pair of
//! route-based AWS tunnels), and the timers (lifetimes, DPD, retransmission).
//!
//! [`PeerConfig::validate`] refuses configurations the engine cannot honour (empty proposal
//! lists, AEAD mixed with integrity algorithms, ...), so the exchanges can rely on them.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use vpn_ike_crypto::PrfAlgorithm;
use vpn_ike_crypto::auth::{RsaPadding, SigningKey, VerifyingKey};
use vpn_ike_crypto::dh::DhGroup;
use vpn_ike_crypto::ike_cipher::{EncrAlgorithm, IntegAlgorithm};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::codec::{self, IdType};

/// The standard IKE port (RFC 7296 section 2).
pub const IKE_PORT: u16 = 500;
/// The NAT traversal port (RFC 3948, RFC 7296 section 2.23).
pub const NAT_T_PORT: u16 = 4500;

/// A pre-shared key: zeroized on drop, redacted in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Psk(Vec<u8>);

impl Psk {
    /// Takes the key bytes.
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The key bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Psk([REDACTED])")
    }
}

/// How our AUTH payload is computed when we authenticate with a private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureMode {
    /// Auth method 1, RSASSA-PKCS1-v1_5 with SHA-1 (RFC 7296 section 3.8), always: what
    /// strongSwan's `authby=rsasig` with raw `leftrsasigkey` keys does with peers that do not
    /// announce RFC 7427. RSA keys only.
    RsaSha1,
    /// Auth method 14 (RFC 7427) with a hash the peer announced in SIGNATURE_HASH_ALGORITHMS
    /// (RSA keys with `rsa` padding, ECDSA, Ed25519). An RSA key falls back to method 1 when
    /// the peer announced no usable hash; other keys cannot, and the SA fails.
    DigitalSignature {
        /// The RSA scheme (ignored for other keys).
        rsa: RsaPadding,
    },
}

/// Authentication with a private key of ours and the peer's raw public key (RFC 7296 section
/// 2.15 with auth methods 1 and 14; no certificates). The private key is zeroized on drop
/// (by its RustCrypto type) and never printed.
#[derive(Clone)]
pub struct KeyAuth {
    /// The key we sign our AUTH payload with.
    pub local_key: Arc<SigningKey>,
    /// The key the peer's AUTH payload must verify with.
    pub peer_key: VerifyingKey,
    /// How we sign.
    pub mode: SignatureMode,
}

impl fmt::Debug for KeyAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyAuth")
            .field(
                "local_key",
                &format_args!("{}([REDACTED])", self.local_key.kind()),
            )
            .field("peer_key", &self.peer_key.kind())
            .field("mode", &self.mode)
            .finish()
    }
}

/// How both sides authenticate (RFC 7296 section 2.15).
#[derive(Debug, Clone)]
pub enum Auth {
    /// Both sides prove knowledge of the same pre-shared key (auth method 2).
    Psk(Psk),
    /// We sign with our private key; the peer must sign with the private half of its
    /// configured public key.
    PublicKey(Box<KeyAuth>),
}

impl Auth {
    /// The pre-shared key, if this is PSK authentication.
    #[must_use]
    pub fn psk(&self) -> Option<&Psk> {
        match self {
            Self::Psk(p) => Some(p),
            Self::PublicKey(_) => None,
        }
    }

    /// The key configuration, if this is public-key authentication.
    #[must_use]
    pub fn key(&self) -> Option<&KeyAuth> {
        match self {
            Self::Psk(_) => None,
            Self::PublicKey(k) => Some(k),
        }
    }
}

/// An IKE identity (RFC 7296 section 3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// ID_IPV4_ADDR / ID_IPV6_ADDR.
    Address(IpAddr),
    /// ID_FQDN.
    Fqdn(String),
    /// ID_RFC822_ADDR.
    Email(String),
    /// ID_KEY_ID (opaque).
    KeyId(Vec<u8>),
}

impl Identity {
    /// The ID payload it is sent as.
    #[must_use]
    pub fn to_payload(&self) -> codec::Identification {
        let (id_type, data) = match self {
            Self::Address(IpAddr::V4(a)) => (IdType::Ipv4Addr, a.octets().to_vec()),
            Self::Address(IpAddr::V6(a)) => (IdType::Ipv6Addr, a.octets().to_vec()),
            Self::Fqdn(s) => (IdType::Fqdn, s.as_bytes().to_vec()),
            Self::Email(s) => (IdType::Rfc822Addr, s.as_bytes().to_vec()),
            Self::KeyId(k) => (IdType::KeyId, k.clone()),
        };
        codec::Identification { id_type, data }
    }

    /// Whether a received ID payload names this identity.
    #[must_use]
    pub fn matches(&self, id: &codec::Identification) -> bool {
        let mine = self.to_payload();
        mine.id_type == id.id_type && mine.data == id.data
    }
}

/// One IKE SA proposal (RFC 7296 section 3.3): every combination of the listed algorithms is
/// acceptable; lists are in preference order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeProposal {
    /// Encryption algorithms; all AES-GCM or all AES-CBC.
    pub encr: Vec<EncrAlgorithm>,
    /// Integrity algorithms: empty for AES-GCM, non-empty for AES-CBC.
    pub integ: Vec<IntegAlgorithm>,
    /// Pseudo-random functions.
    pub prf: Vec<PrfAlgorithm>,
    /// Diffie-Hellman groups; the first is used for the initial KE payload.
    pub dh: Vec<DhGroup>,
}

/// One ESP proposal (RFC 7296 section 3.3, RFC 4303).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspProposal {
    /// Encryption algorithms; all AES-GCM or all AES-CBC.
    pub encr: Vec<EncrAlgorithm>,
    /// Integrity algorithms: empty for AES-GCM, non-empty for AES-CBC.
    pub integ: Vec<IntegAlgorithm>,
    /// PFS groups for CREATE_CHILD_SA (not sent in IKE_AUTH, RFC 7296 section 1.2).
    pub dh: Vec<DhGroup>,
    /// Offer extended sequence numbers (ESN) in addition to 32-bit ones.
    pub esn: bool,
}

/// A traffic selector (RFC 7296 section 3.13.1): an address range, an IP protocol (0 = any)
/// and a port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// IP protocol, 0 for any.
    pub protocol: u8,
    /// First port.
    pub start_port: u16,
    /// Last port.
    pub end_port: u16,
    /// First address.
    pub start: IpAddr,
    /// Last address (same family as `start`).
    pub end: IpAddr,
}

impl TrafficSelector {
    /// `0.0.0.0/0`, all protocols and ports: the selector of route-based tunnels.
    #[must_use]
    pub const fn any_v4() -> Self {
        Self {
            protocol: 0,
            start_port: 0,
            end_port: u16::MAX,
            start: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            end: IpAddr::V4(Ipv4Addr::BROADCAST),
        }
    }

    /// An IPv4 prefix, all protocols and ports.
    #[must_use]
    pub fn v4_prefix(addr: Ipv4Addr, len: u8) -> Self {
        let len = u32::from(len.min(32));
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let base = u32::from(addr) & mask;
        Self {
            protocol: 0,
            start_port: 0,
            end_port: u16::MAX,
            start: IpAddr::V4(Ipv4Addr::from(base)),
            end: IpAddr::V4(Ipv4Addr::from(base | !mask)),
        }
    }
}

/// What to do when the peer stops answering liveness checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpdAction {
    /// Close the IKE SA and its CHILD SAs (AWS's default).
    Clear,
    /// Close, then initiate a new IKE SA (initiator configurations only).
    Restart,
    /// Report the dead peer and keep the SAs.
    None,
}

/// Dead peer detection (RFC 7296 section 2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpdConfig {
    /// Send a liveness check after this long without hearing from the peer.
    pub delay: Duration,
    /// Declare the peer dead when a liveness check is unanswered this long (or when the
    /// retransmission limit is reached first).
    pub timeout: Duration,
    /// The action then.
    pub action: DpdAction,
}

/// Retransmission of requests (RFC 7296 section 2.1): attempt `n` (0-based) waits
/// `initial_timeout * base^n`, capped at `max_timeout`; after `tries` retransmissions and
/// their wait, the exchange fails. The defaults are strongSwan's (4 s, 1.8, 5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetransmitConfig {
    /// Wait before the first retransmission.
    pub initial_timeout: Duration,
    /// Growth factor.
    pub base: f64,
    /// Number of retransmissions before giving up.
    pub tries: u32,
    /// Longest single wait.
    pub max_timeout: Duration,
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        Self {
            initial_timeout: Duration::from_secs(4),
            base: 1.8,
            tries: 5,
            max_timeout: Duration::from_secs(600),
        }
    }
}

/// Lifetimes of the SAs: the rekey time is `lifetime - margin - random(0..=margin*fuzz)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lifetimes {
    /// IKE SA lifetime (AWS default 28800 s).
    pub ike: Duration,
    /// CHILD SA lifetime (AWS default 3600 s).
    pub child: Duration,
    /// Rekey margin before expiry (AWS default 540 s).
    pub margin: Duration,
    /// Random extra margin, as a fraction of `margin` (AWS default 1.0 = 100 %).
    pub fuzz: f64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            ike: Duration::from_secs(28_800),
            child: Duration::from_secs(3_600),
            margin: Duration::from_secs(540),
            fuzz: 1.0,
        }
    }
}

/// Everything the engine needs to talk to one peer.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Our address (the IKE port is taken from it, usually 500).
    pub local_addr: SocketAddr,
    /// The peer's address; as responder, an unspecified IP accepts any peer.
    pub remote_addr: SocketAddr,
    /// The NAT traversal port used when NAT is detected or `force_encap` is set.
    pub nat_t_port: u16,
    /// Our identity.
    pub local_id: Identity,
    /// The identity the peer must present (None accepts any, authenticated by the PSK or
    /// the peer's key).
    pub remote_id: Option<Identity>,
    /// How both sides authenticate.
    pub auth: Auth,
    /// IKE SA proposals, in preference order.
    pub ike_proposals: Vec<IkeProposal>,
    /// ESP proposals, in preference order.
    pub esp_proposals: Vec<EspProposal>,
    /// Our side's traffic selectors.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's side's traffic selectors.
    pub remote_ts: Vec<TrafficSelector>,
    /// Lifetimes.
    pub lifetimes: Lifetimes,
    /// Dead peer detection; None disables liveness checks.
    pub dpd: Option<DpdConfig>,
    /// Retransmission schedule.
    pub retransmit: RetransmitConfig,
    /// Pretend to be behind a NAT so that ESP is always UDP-encapsulated (RFC 7296 2.23).
    pub force_encap: bool,
    /// ESP anti-replay window in packets, handed to the datapath.
    pub replay_window: u32,
    /// Send INITIAL_CONTACT in IKE_AUTH (RFC 7296 section 2.4).
    pub initial_contact: bool,
    /// Interval of NAT-keepalive packets (RFC 3948 section 2.3: one 0xFF octet on the NAT-T
    /// port) while NAT detection finds us behind a NAT, so the NAT keeps its mapping; None
    /// disables them.
    pub nat_keepalive: Option<Duration>,
    /// IKE fragmentation (RFC 7383): `Some(size)` announces it, accepts fragmented messages,
    /// and splits encrypted messages whose datagram would exceed `size` bytes of IP packet.
    pub fragmentation: Option<u16>,
}

/// The NAT-keepalive interval strongSwan and most implementations use (RFC 3948 section 4
/// suggests 20 seconds).
pub const NAT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);

/// The largest IP packet an IKE fragment makes by default: strongSwan's default, safe on any
/// IPv4 path that carries IKE at all (RFC 7383 section 2.5.1).
pub const DEFAULT_FRAGMENT_SIZE: u16 = 1280;

/// A configuration the engine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required list is empty.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// AES-GCM and AES-CBC in the same proposal, or integrity algorithms with AES-GCM, or
    /// none with AES-CBC.
    #[error("{0}: AEAD and non-AEAD algorithms mixed, or integrity does not fit the cipher")]
    MixedAead(&'static str),
    /// A traffic selector whose start and end differ in family or are out of order.
    #[error("invalid traffic selector")]
    InvalidSelector,
    /// A key that cannot be used as configured (RSA-only mode with a non-RSA key).
    #[error("{0}")]
    Key(&'static str),
    /// A duration or factor out of its sane range (lifetimes up to a year, timers up to a
    /// day, margin below the CHILD lifetime, fuzz 0..=1, back-off base 1..=10).
    #[error("{0} out of range")]
    OutOfRange(&'static str),
}

const YEAR: Duration = Duration::from_secs(365 * 86_400);
const DAY: Duration = Duration::from_secs(86_400);

fn check_encr(
    what: &'static str,
    encr: &[EncrAlgorithm],
    integ: &[IntegAlgorithm],
) -> Result<(), ConfigError> {
    let Some(first) = encr.first() else {
        return Err(ConfigError::Empty(what));
    };
    let aead = first.is_aead();
    if encr.iter().any(|e| e.is_aead() != aead) || aead != integ.is_empty() {
        return Err(ConfigError::MixedAead(what));
    }
    Ok(())
}

impl PeerConfig {
    /// A PSK configuration with AWS-like defaults: AES-256-GCM / PRF-SHA-256 / MODP-2048 for
    /// IKE, AES-256-GCM for ESP, 0.0.0.0/0 selectors, DPD 10 s / 30 s clear.
    #[must_use]
    pub fn psk(local_addr: SocketAddr, remote_addr: SocketAddr, psk: Psk) -> Self {
        Self {
            local_addr,
            remote_addr,
            nat_t_port: NAT_T_PORT,
            local_id: Identity::Address(local_addr.ip()),
            remote_id: None,
            auth: Auth::Psk(psk),
            ike_proposals: vec![IkeProposal {
                encr: vec![EncrAlgorithm::AesGcm16_256],
                integ: vec![],
                prf: vec![PrfAlgorithm::HmacSha256],
                dh: vec![DhGroup::Modp2048],
            }],
            esp_proposals: vec![EspProposal {
                encr: vec![EncrAlgorithm::AesGcm16_256],
                integ: vec![],
                dh: vec![],
                esn: false,
            }],
            local_ts: vec![TrafficSelector::any_v4()],
            remote_ts: vec![TrafficSelector::any_v4()],
            lifetimes: Lifetimes::default(),
            dpd: Some(DpdConfig {
                delay: Duration::from_secs(10),
                timeout: Duration::from_secs(30),
                action: DpdAction::Clear,
            }),
            retransmit: RetransmitConfig::default(),
            force_encap: false,
            replay_window: 1024,
            initial_contact: true,
            nat_keepalive: Some(NAT_KEEPALIVE_INTERVAL),
            fragmentation: Some(DEFAULT_FRAGMENT_SIZE),
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Auth::Psk(p) = &self.auth
            && p.as_bytes().is_empty()
        {
            return Err(ConfigError::Empty("psk"));
        }
        if let Auth::PublicKey(k) = &self.auth
            && k.mode == SignatureMode::RsaSha1
            && !matches!(*k.local_key, SigningKey::Rsa(_))
        {
            return Err(ConfigError::Key(
                "auth method 1 (RSA signature) needs an RSA private key",
            ));
        }
        if self.ike_proposals.is_empty() {
            return Err(ConfigError::Empty("ike_proposals"));
        }
        if self.esp_proposals.is_empty() {
            return Err(ConfigError::Empty("esp_proposals"));
        }
        for p in &self.ike_proposals {
            check_encr("ike proposal", &p.encr, &p.integ)?;
            if p.prf.is_empty() {
                return Err(ConfigError::Empty("ike proposal prf"));
            }
            if p.dh.is_empty() {
                return Err(ConfigError::Empty("ike proposal dh"));
            }
        }
        for p in &self.esp_proposals {
            check_encr("esp proposal", &p.encr, &p.integ)?;
        }
        if self.local_ts.is_empty() {
            return Err(ConfigError::Empty("local_ts"));
        }
        if self.remote_ts.is_empty() {
            return Err(ConfigError::Empty("remote_ts"));
        }
        let l = &self.lifetimes;
        let r = &self.retransmit;
        let checks = [
            (l.ike <= YEAR && !l.ike.is_zero(), "lifetimes.ike"),
            (l.child <= YEAR && !l.child.is_zero(), "lifetimes.child"),
            (l.margin < l.child, "lifetimes.margin"),
            ((0.0..=1.0).contains(&l.fuzz), "lifetimes.fuzz"),
            (
                r.initial_timeout <= DAY && !r.initial_timeout.is_zero(),
                "retransmit.initial_timeout",
            ),
            (r.max_timeout <= DAY, "retransmit.max_timeout"),
            ((1.0..=10.0).contains(&r.base), "retransmit.base"),
            (r.tries <= 100, "retransmit.tries"),
            (
                self.dpd
                    .is_none_or(|d| d.delay <= DAY && d.timeout <= DAY && !d.delay.is_zero()),
                "dpd",
            ),
            (
                self.nat_keepalive.is_none_or(|k| k <= DAY && !k.is_zero()),
                "nat_keepalive",
            ),
        ];
        if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(ConfigError::OutOfRange(what));
        }
        for ts in self.local_ts.iter().chain(&self.remote_ts) {
            let ok = match (ts.start, ts.end) {
                (IpAddr::V4(a), IpAddr::V4(b)) => a <= b,
                (IpAddr::V6(a), IpAddr::V6(b)) => a <= b,
                _ => false,
            } && ts.start_port <= ts.end_port;
            if !ok {
                return Err(ConfigError::InvalidSelector);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let base = PeerConfig::psk(
            "10.0.0.1:500".parse().unwrap(),
            "10.0.0.2:500".parse().unwrap(),
            Psk::new(b"k".to_vec()),
        );
        assert_eq!(base.validate(), Ok(()));
        let mut c = base.clone();
        c.lifetimes.margin = c.lifetimes.child;
        assert_eq!(
            c.validate(),
            Err(ConfigError::OutOfRange("lifetimes.margin"))
        );
        let mut c = base.clone();
        c.ike_proposals[0].integ = vec![IntegAlgorithm::HmacSha1_96];
        assert!(matches!(c.validate(), Err(ConfigError::MixedAead(_))));
        let mut c = base.clone();
        c.local_ts[0].end = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
        assert_eq!(c.validate(), Err(ConfigError::InvalidSelector));
        let mut c = base;
        c.retransmit.base = f64::NAN;
        assert!(c.validate().is_err());
        assert_eq!(format!("{:?}", c.auth), "Psk(Psk([REDACTED]))");
    }
}
