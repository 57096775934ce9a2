//! Typed errors: one variant per drop reason, so the datapath can keep a counter per reason.
//!
//! Hand-written (no crate involved beyond `thiserror`): the set of reasons is ours. Every variant
//! is field-less on purpose, which gives two properties the workers rely on: an error is `Copy`
//! and maps to a dense counter index ([`EspError::index`]), and no error can carry packet bytes,
//! key bytes or a salt into a log line.

use thiserror::Error;

/// Why a packet was dropped (or could not be built). Field-less by design: see the module doc.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EspError {
    /// The input is shorter than the smallest valid packet at the layer being parsed.
    #[error("packet truncated")]
    Truncated,
    /// ESP ciphertext length is not a multiple of 4 (RFC 4303 section 2.4).
    #[error("ESP payload length not 4-byte aligned")]
    BadLength,
    /// The caller's output buffer cannot hold the result.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// The packet's SPI is not this SA's. (Looking the SPI up is the caller's job, so an unknown
    /// SPI is counted there; this is the defensive check that the lookup was right.)
    #[error("SPI does not match the SA")]
    WrongSpi,
    /// The integrity check value did not verify (wrong key, tampering, or a wrong ESN guess).
    #[error("ICV verification failed")]
    BadIcv,
    /// The sequence number was already received (RFC 4303 section 3.4.3).
    #[error("replayed sequence number")]
    Replayed,
    /// The sequence number is left of the replay window (RFC 4303 section 3.4.3).
    #[error("sequence number too old for the replay window")]
    TooOld,
    /// The sequence number can never be valid: 0, or an ESN inference outside the 64-bit space.
    #[error("invalid sequence number")]
    InvalidSeq,
    /// The padding is not 1, 2, 3, ... or the pad length exceeds the payload
    /// (RFC 4303 section 2.4).
    #[error("bad ESP padding")]
    BadPadding,
    /// The outbound sequence number space is used up; the SA must be rekeyed (RFC 4303 3.3.3).
    #[error("outbound sequence number exhausted, rekey required")]
    SeqExhausted,
    /// The inner packet is neither IPv4 nor IPv6 (or is empty).
    #[error("inner packet is not IPv4 or IPv6")]
    InvalidInner,
    /// The outer header is not a well-formed IPv4 header (version, IHL, total length).
    #[error("malformed outer IPv4 header")]
    BadIpHeader,
    /// The outer IPv4 header checksum is wrong.
    #[error("outer IPv4 header checksum mismatch")]
    BadIpChecksum,
    /// The outer IPv4 packet is a fragment; reassembly happens before this crate.
    #[error("outer IPv4 packet is a fragment")]
    Fragmented,
    /// The outer protocol is neither ESP (50) nor UDP (17), or UDP encapsulation does not match
    /// the SA's configuration.
    #[error("not an ESP packet for this SA")]
    NotEsp,
    /// The UDP length field disagrees with the packet (RFC 768).
    #[error("bad UDP length")]
    BadUdpLength,
    /// UDP port 4500 payload starting with the 4-byte non-ESP marker: IKE, not ESP (RFC 3948 2.2).
    #[error("non-ESP marker: IKE packet on the NAT-T port")]
    NonEspMarker,
    /// A NAT-keepalive (one 0xFF byte, RFC 3948 section 2.3).
    #[error("NAT keepalive")]
    NatKeepalive,
    /// The SA's tunnel endpoints are IPv6; only IPv4 outer headers are built today.
    #[error("address family not supported for the outer header")]
    UnsupportedFamily,
    /// The encapsulated packet would exceed the 65535-byte IPv4 total length.
    #[error("packet too big for an IPv4 datagram")]
    TooBig,
}

impl EspError {
    /// Every variant, in [`EspError::index`] order (for sizing and labelling counter arrays).
    pub const ALL: [EspError; 20] = [
        EspError::Truncated,
        EspError::BadLength,
        EspError::BufferTooSmall,
        EspError::WrongSpi,
        EspError::BadIcv,
        EspError::Replayed,
        EspError::TooOld,
        EspError::InvalidSeq,
        EspError::BadPadding,
        EspError::SeqExhausted,
        EspError::InvalidInner,
        EspError::BadIpHeader,
        EspError::BadIpChecksum,
        EspError::Fragmented,
        EspError::NotEsp,
        EspError::BadUdpLength,
        EspError::NonEspMarker,
        EspError::NatKeepalive,
        EspError::UnsupportedFamily,
        EspError::TooBig,
    ];

    /// Dense index in `0..EspError::ALL.len()`, for a per-reason counter array.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Short stable name for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            EspError::Truncated => "truncated",
            EspError::BadLength => "bad_length",
            EspError::BufferTooSmall => "buffer_too_small",
            EspError::WrongSpi => "wrong_spi",
            EspError::BadIcv => "bad_icv",
            EspError::Replayed => "replayed",
            EspError::TooOld => "too_old",
            EspError::InvalidSeq => "invalid_seq",
            EspError::BadPadding => "bad_padding",
            EspError::SeqExhausted => "seq_exhausted",
            EspError::InvalidInner => "invalid_inner",
            EspError::BadIpHeader => "bad_ip_header",
            EspError::BadIpChecksum => "bad_ip_checksum",
            EspError::Fragmented => "fragmented",
            EspError::NotEsp => "not_esp",
            EspError::BadUdpLength => "bad_udp_length",
            EspError::NonEspMarker => "non_esp_marker",
            EspError::NatKeepalive => "nat_keepalive",
            EspError::UnsupportedFamily => "unsupported_family",
            EspError::TooBig => "too_big",
        }
    }
}

/// Why SA parameters were rejected (control plane, not per packet). No key bytes inside.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// SPI 0 is reserved (RFC 4303 section 2.1).
    #[error("SPI 0 is reserved")]
    ZeroSpi,
    /// AES-GCM keys are 16, 24 or 32 bytes (plus a 4-byte salt in KEYMAT, RFC 4106 section 8.1).
    #[error("invalid AES-GCM key length {0} bytes")]
    BadKeyLength(usize),
    /// Replay window outside 64..=2048 packets (the range AWS Site-to-Site VPN accepts).
    #[error("replay window {0} outside 64..=2048")]
    BadReplayWindow(u32),
    /// Tunnel endpoints of different address families.
    #[error("tunnel endpoints mix IPv4 and IPv6")]
    MixedFamilies,
    /// A UDP encapsulation port of 0.
    #[error("UDP encapsulation port 0")]
    ZeroPort,
    /// Outer TTL of 0 would never leave the host.
    #[error("outer TTL 0")]
    ZeroTtl,
}
