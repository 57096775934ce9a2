//! Counters of what the engine did and, above all, what it dropped and why.
//!
//! Every datagram the engine discards increments exactly one [`DropReason`] counter (and is
//! logged at `debug` without payload bytes), so that hostile input is visible in
//! `vpn-agent status` without being able to change an SA.

use core::fmt;

/// Why a received datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// It does not decode (see [`crate::codec::DecodeError`]).
    Malformed,
    /// On the NAT-T port without the non-ESP marker (an ESP packet), or too short.
    NoNonEspMarker,
    /// Its SPIs name no IKE SA of ours.
    UnknownSpi,
    /// A request with a message ID below the window, not a retransmission of the last one.
    OldMessageId,
    /// A request with a message ID above the window.
    FutureMessageId,
    /// A response that answers no outstanding request.
    UnexpectedResponse,
    /// The SK payload failed its integrity check or did not decrypt.
    IntegrityCheckFailed,
    /// Missing or unusable payloads for the exchange and state.
    InvalidContent,
    /// An exchange type not allowed in the current state.
    WrongState,
    /// No configuration for the peer's address.
    NoConfig,
    /// Flags that do not fit (I/R bits).
    BadFlags,
}

impl DropReason {
    /// All reasons, in display order.
    pub const ALL: [DropReason; 11] = [
        Self::Malformed,
        Self::NoNonEspMarker,
        Self::UnknownSpi,
        Self::OldMessageId,
        Self::FutureMessageId,
        Self::UnexpectedResponse,
        Self::IntegrityCheckFailed,
        Self::InvalidContent,
        Self::WrongState,
        Self::NoConfig,
        Self::BadFlags,
    ];

    /// A stable label.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::NoNonEspMarker => "no_non_esp_marker",
            Self::UnknownSpi => "unknown_spi",
            Self::OldMessageId => "old_message_id",
            Self::FutureMessageId => "future_message_id",
            Self::UnexpectedResponse => "unexpected_response",
            Self::IntegrityCheckFailed => "integrity_check_failed",
            Self::InvalidContent => "invalid_content",
            Self::WrongState => "wrong_state",
            Self::NoConfig => "no_config",
            Self::BadFlags => "bad_flags",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Malformed => 0,
            Self::NoNonEspMarker => 1,
            Self::UnknownSpi => 2,
            Self::OldMessageId => 3,
            Self::FutureMessageId => 4,
            Self::UnexpectedResponse => 5,
            Self::IntegrityCheckFailed => 6,
            Self::InvalidContent => 7,
            Self::WrongState => 8,
            Self::NoConfig => 9,
            Self::BadFlags => 10,
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Counters of one IKE SA or of a [`crate::Listener`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    drops: [u64; 11],
    /// Datagrams accepted and processed.
    pub received: u64,
    /// Datagrams queued for sending (retransmissions included).
    pub sent: u64,
    /// Requests retransmitted after a timeout.
    pub retransmissions: u64,
    /// Retransmitted requests answered from the cached response.
    pub duplicate_requests_answered: u64,
    /// IKE_AUTH exchanges whose peer AUTH payload or identity did not check out (the SA was
    /// closed, RFC 7296 section 2.21.2).
    pub authentication_failures: u64,
    /// NAT-keepalive packets sent (RFC 3948 section 2.3).
    pub nat_keepalives_sent: u64,
    /// NAT-keepalive packets received (ignored, not counted as drops).
    pub nat_keepalives_received: u64,
    /// Requests refused with UNSUPPORTED_CRITICAL_PAYLOAD (RFC 7296 section 2.5).
    pub unsupported_critical_payloads: u64,
    /// IKE_SA_INIT requests answered with a COOKIE only (RFC 7296 section 2.6).
    pub cookies_sent: u64,
    /// IKE_SA_INIT requests dropped above the half-open limit.
    pub half_open_refused: u64,
}

impl Stats {
    /// The drop counter for `reason`.
    #[must_use]
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// All drops.
    #[must_use]
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().sum()
    }

    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }

    /// Adds `other`'s counters to these.
    pub fn add(&mut self, other: &Stats) {
        for (a, b) in self.drops.iter_mut().zip(other.drops) {
            *a += b;
        }
        self.received += other.received;
        self.sent += other.sent;
        self.retransmissions += other.retransmissions;
        self.cookies_sent += other.cookies_sent;
        self.half_open_refused += other.half_open_refused;
        self.duplicate_requests_answered += other.duplicate_requests_answered;
        self.authentication_failures += other.authentication_failures;
        self.nat_keepalives_sent += other.nat_keepalives_sent;
        self.nat_keepalives_received += other.nat_keepalives_received;
        self.unsupported_critical_payloads += other.unsupported_critical_payloads;
    }
}
