//! Security Association parameters: the typed, validated input the IKE engine hands to the
//! datapath for one direction of one CHILD_SA.
//!
//! Hand-written newtypes; the only crate used is `zeroize` for the key material. Every type here
//! is valid by construction (validated constructors), so an [`SaParams`] cannot describe an SA
//! this crate would have to reject later.
//!
//! - [`Spi`]: non-zero 32-bit SPI (RFC 4303 section 2.1: 0 is reserved).
//! - [`SeqNum`]: 64-bit sequence number; without ESN only the low 32 bits are used
//!   (RFC 4303 sections 2.2 and 3.3.3, Appendix A).
//! - [`AeadKey`] / [`Salt`]: AES-GCM key (128/192/256) and the 4-byte salt that RFC 4106
//!   section 8.1 takes from the end of KEYMAT. Both are wiped on drop and their `Debug` output
//!   never shows the bytes. (ring's own expanded key schedule is not zeroized by ring; that is a
//!   limit of the backend, not of this type.)
//! - [`ReplayWindowSize`]: 64..=2048 packets, default 1024 (AWS Site-to-Site VPN's range and
//!   default).
//! - [`UdpEncap`]: RFC 3948 ports; [`TunnelEndpoints`]: outer addresses (IPv4 is built today;
//!   the types keep IPv6).
//! - [`OuterPolicy`]: TTL and DF of the outer header (DSCP is always copied; see `outer`).

use core::fmt;
use std::net::IpAddr;

use zeroize::Zeroize;

use crate::error::ConfigError;

/// Security Parameter Index. Never 0 (RFC 4303 section 2.1 reserves it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Spi(u32);

impl Spi {
    /// A non-zero SPI.
    pub fn new(spi: u32) -> Result<Self, ConfigError> {
        if spi == 0 {
            Err(ConfigError::ZeroSpi)
        } else {
            Ok(Spi(spi))
        }
    }

    /// The SPI value.
    pub fn get(self) -> u32 {
        self.0
    }

    /// Network-order bytes as they appear on the wire.
    pub fn to_be_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }
}

impl TryFrom<u32> for Spi {
    type Error = ConfigError;
    fn try_from(v: u32) -> Result<Self, ConfigError> {
        Spi::new(v)
    }
}

/// A 64-bit ESP sequence number. Without ESN the high half is always 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeqNum(pub u64);

impl SeqNum {
    /// Low 32 bits: the only part carried in the ESP header.
    pub fn low(self) -> u32 {
        self.0 as u32
    }

    /// High 32 bits: only authenticated (in the AAD) when ESN is on (RFC 4106 section 5).
    pub fn high(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// AES key size of an AES-GCM-16 SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySize {
    /// AES-128-GCM-16 (ring backend).
    Aes128,
    /// AES-192-GCM-16 (RustCrypto `aes-gcm` backend: ring has no 192-bit AES-GCM).
    Aes192,
    /// AES-256-GCM-16 (ring backend).
    Aes256,
}

impl KeySize {
    /// Key length in bytes.
    pub fn bytes(self) -> usize {
        match self {
            KeySize::Aes128 => 16,
            KeySize::Aes192 => 24,
            KeySize::Aes256 => 32,
        }
    }

    /// Key length in bits (as IKEv2 transform attributes name it).
    pub fn bits(self) -> u16 {
        (self.bytes() * 8) as u16
    }

    fn from_len(len: usize) -> Result<Self, ConfigError> {
        match len {
            16 => Ok(KeySize::Aes128),
            24 => Ok(KeySize::Aes192),
            32 => Ok(KeySize::Aes256),
            n => Err(ConfigError::BadKeyLength(n)),
        }
    }
}

/// AES-GCM key bytes. Zeroized on drop; `Debug` shows only the size.
#[derive(Clone)]
pub struct AeadKey {
    bytes: [u8; 32],
    size: KeySize,
}

impl AeadKey {
    /// A key of 16, 24 or 32 bytes.
    pub fn new(key: &[u8]) -> Result<Self, ConfigError> {
        let size = KeySize::from_len(key.len())?;
        let mut bytes = [0u8; 32];
        bytes[..key.len()].copy_from_slice(key);
        Ok(AeadKey { bytes, size })
    }

    /// Split RFC 4106 section 8.1 KEYMAT (key followed by a 4-byte salt) into key and salt.
    pub fn from_keymat(keymat: &[u8]) -> Result<(AeadKey, Salt), ConfigError> {
        if keymat.len() < 4 {
            return Err(ConfigError::BadKeyLength(keymat.len()));
        }
        let (k, s) = keymat.split_at(keymat.len() - 4);
        let key = AeadKey::new(k).map_err(|_| ConfigError::BadKeyLength(keymat.len()))?;
        let mut salt = [0u8; 4];
        salt.copy_from_slice(s);
        Ok((key, Salt::new(salt)))
    }

    /// Key size.
    pub fn size(&self) -> KeySize {
        self.size
    }

    /// The key bytes (for handing to an AEAD backend).
    pub fn expose(&self) -> &[u8] {
        &self.bytes[..self.size.bytes()]
    }
}

impl Drop for AeadKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AeadKey({:?}, <redacted>)", self.size)
    }
}

/// The 4-byte RFC 4106 salt (implicit nonce part). Secret like the key: zeroized, redacted.
#[derive(Clone)]
pub struct Salt([u8; 4]);

impl Salt {
    /// Wrap salt bytes.
    pub fn new(salt: [u8; 4]) -> Self {
        Salt(salt)
    }

    /// The salt bytes (for nonce construction).
    pub fn expose(&self) -> &[u8; 4] {
        &self.0
    }
}

impl Drop for Salt {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Salt(<redacted>)")
    }
}

/// Anti-replay window size in packets: 64..=2048, default 1024.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplayWindowSize(u32);

impl ReplayWindowSize {
    /// Smallest accepted window.
    pub const MIN: u32 = 64;
    /// Largest accepted window.
    pub const MAX: u32 = 2048;
    /// Default window (AWS Site-to-Site VPN's default).
    pub const DEFAULT: ReplayWindowSize = ReplayWindowSize(1024);

    /// A window of `packets`, rejected outside 64..=2048.
    pub fn new(packets: u32) -> Result<Self, ConfigError> {
        if (Self::MIN..=Self::MAX).contains(&packets) {
            Ok(ReplayWindowSize(packets))
        } else {
            Err(ConfigError::BadReplayWindow(packets))
        }
    }

    /// Window size in packets.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for ReplayWindowSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// RFC 3948 UDP encapsulation ports (normally 4500 both ways; the peer's port changes behind NAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpEncap {
    src_port: u16,
    dst_port: u16,
}

impl UdpEncap {
    /// Ports for the outer UDP header we send; neither may be 0.
    pub fn new(src_port: u16, dst_port: u16) -> Result<Self, ConfigError> {
        if src_port == 0 || dst_port == 0 {
            return Err(ConfigError::ZeroPort);
        }
        Ok(UdpEncap { src_port, dst_port })
    }

    /// The usual NAT-T ports, 4500 -> 4500.
    pub fn nat_t() -> Self {
        UdpEncap {
            src_port: 4500,
            dst_port: 4500,
        }
    }

    /// Source port of packets we send.
    pub fn src_port(self) -> u16 {
        self.src_port
    }

    /// Destination port of packets we send.
    pub fn dst_port(self) -> u16 {
        self.dst_port
    }
}

/// Outer tunnel addresses: `local` is the source of what we send, `remote` its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TunnelEndpoints {
    local: IpAddr,
    remote: IpAddr,
}

impl TunnelEndpoints {
    /// Both endpoints must be of one address family.
    pub fn new(local: IpAddr, remote: IpAddr) -> Result<Self, ConfigError> {
        if local.is_ipv4() != remote.is_ipv4() {
            return Err(ConfigError::MixedFamilies);
        }
        Ok(TunnelEndpoints { local, remote })
    }

    /// Our address.
    pub fn local(self) -> IpAddr {
        self.local
    }

    /// The peer's address.
    pub fn remote(self) -> IpAddr {
        self.remote
    }
}

/// What the outer IPv4 header's DF bit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DfPolicy {
    /// Copy DF from the inner IPv4 header; set it for inner IPv6 (which never fragments en
    /// route). RFC 4301 section 8.1 default behaviour.
    #[default]
    Copy,
    /// Always set DF.
    Set,
    /// Always clear DF (let the path fragment the ESP packet).
    Clear,
}

/// Outer header policy: TTL and DF. DSCP is always copied from the inner header and ECN is
/// never copied (outer ECN = Not-ECT, the RFC 6040 compatibility mode), see the `outer` module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OuterPolicy {
    ttl: u8,
    df: DfPolicy,
}

impl OuterPolicy {
    /// A policy with outer TTL `ttl` (not 0) and DF behaviour `df`.
    pub fn new(ttl: u8, df: DfPolicy) -> Result<Self, ConfigError> {
        if ttl == 0 {
            return Err(ConfigError::ZeroTtl);
        }
        Ok(OuterPolicy { ttl, df })
    }

    /// Outer TTL.
    pub fn ttl(self) -> u8 {
        self.ttl
    }

    /// DF policy.
    pub fn df(self) -> DfPolicy {
        self.df
    }
}

impl Default for OuterPolicy {
    /// TTL 64, DF copied from the inner packet.
    fn default() -> Self {
        OuterPolicy {
            ttl: 64,
            df: DfPolicy::Copy,
        }
    }
}

/// Everything one direction of an AES-GCM-16 tunnel-mode ESP SA needs.
#[derive(Debug, Clone)]
pub struct SaParams {
    /// SPI (chosen by the receiver of this direction).
    pub spi: Spi,
    /// AES-GCM key.
    pub key: AeadKey,
    /// RFC 4106 salt.
    pub salt: Salt,
    /// Extended sequence numbers (RFC 4303 section 2.2.1; negotiated by IKEv2 transform type 5).
    pub esn: bool,
    /// Anti-replay window (inbound only; ignored outbound).
    pub replay_window: ReplayWindowSize,
    /// RFC 3948 UDP encapsulation, when NAT-T is in use.
    pub udp_encap: Option<UdpEncap>,
    /// Outer addresses.
    pub tunnel: TunnelEndpoints,
    /// Outer TTL/DF policy.
    pub outer: OuterPolicy,
}

impl SaParams {
    /// Parameters with the defaults: no ESN, 1024-packet window, no UDP encapsulation, outer TTL
    /// 64, DF copied.
    pub fn new(spi: Spi, key: AeadKey, salt: Salt, tunnel: TunnelEndpoints) -> Self {
        SaParams {
            spi,
            key,
            salt,
            esn: false,
            replay_window: ReplayWindowSize::DEFAULT,
            udp_encap: None,
            tunnel,
            outer: OuterPolicy::default(),
        }
    }
}
