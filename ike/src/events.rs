//! What the engine tells its owner (RFC 7296 sections 1.2-1.4, 2.4): IKE SA up and down,
//! CHILD_SAs installed and deleted, with everything the ESP datapath needs.
//!
//! Keys are [`EspKeys`], which zeroize on drop and print as `[REDACTED]`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use vpn_ike_crypto::keys::{EspKeys, EspSuite};

use crate::codec::Spi;
use crate::config::TrafficSelector;

/// UDP encapsulation of ESP (RFC 3948).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpEncap {
    /// Our port (usually 4500).
    pub local_port: u16,
    /// The peer's port (4500, or what its NAT mapped it to).
    pub remote_port: u16,
}

/// A negotiated CHILD_SA pair, ready for the datapath.
#[derive(Debug)]
pub struct ChildSaInstalled {
    /// The IKE SA it belongs to (initiator SPI, responder SPI).
    pub ike_spis: (Spi, Spi),
    /// SPI of inbound ESP packets (chosen by us).
    pub spi_in: u32,
    /// SPI of outbound ESP packets (chosen by the peer).
    pub spi_out: u32,
    /// Keys for inbound packets.
    pub keys_in: EspKeys,
    /// Keys for outbound packets.
    pub keys_out: EspKeys,
    /// Encryption and integrity algorithms.
    pub suite: EspSuite,
    /// Extended sequence numbers.
    pub esn: bool,
    /// Our side's selectors (narrowed).
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's side's selectors (narrowed).
    pub remote_ts: Vec<TrafficSelector>,
    /// Our outer address.
    pub local_addr: SocketAddr,
    /// The peer's outer address.
    pub remote_addr: SocketAddr,
    /// ESP-in-UDP ports, or None for raw ESP.
    pub udp_encap: Option<UdpEncap>,
    /// Anti-replay window in packets.
    pub replay_window: u32,
    /// When to rekey (lifetime minus the fuzzed margin).
    pub rekey_at: Instant,
    /// When the SA expires.
    pub expire_at: Instant,
    /// The inbound SPI of the CHILD_SA this one replaces (rekeying, make-before-break: the
    /// old one stays installed until its [`Event::ChildSaDeleted`]).
    pub rekeyed_from: Option<u32>,
}

/// Why an IKE SA ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// We closed it ([`crate::IkeSa::close`]).
    LocalClose,
    /// The peer deleted it.
    PeerDeleted,
    /// The peer did not answer a request after all retransmissions.
    Timeout,
    /// The peer stopped answering liveness checks.
    DeadPeer,
    /// No common IKE proposal (NO_PROPOSAL_CHOSEN).
    NoProposalChosen,
    /// Authentication failed (ours or the peer's AUTH, or the peer's ID).
    AuthenticationFailed,
    /// The peer answered with another error notification (its type).
    PeerError(u16),
    /// A local error (bad configuration, key derivation failure).
    Internal,
    /// It was rekeyed (RFC 7296 section 2.18): its successor has its CHILD_SAs.
    Rekeyed,
    /// The peer authenticated a new IKE SA with INITIAL_CONTACT (it restarted), so this
    /// older one is gone on its side (RFC 7296 section 2.4).
    Superseded,
    /// Our address changed: the peer cannot reach this SA any more, and without MOBIKE
    /// (RFC 4555) there is no moving it, so it is dropped without a DELETE.
    AddressChanged,
}

/// Why a CHILD_SA could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildFailure {
    /// No common ESP proposal.
    NoProposalChosen,
    /// The selectors do not overlap.
    TsUnacceptable,
    /// The peer answered something we cannot use.
    Invalid,
}

/// An event for the engine's owner.
#[derive(Debug)]
pub enum Event {
    /// The IKE SA is authenticated and usable.
    IkeSaEstablished {
        /// Initiator SPI, responder SPI.
        spis: (Spi, Spi),
        /// Whether we are the original initiator.
        initiator: bool,
        /// Our address (port 4500 after NAT detection).
        local_addr: SocketAddr,
        /// The peer's address.
        remote_addr: SocketAddr,
        /// A NAT was detected (or encapsulation forced).
        nat_detected: bool,
        /// How long until it should be rekeyed or reauthenticated.
        lifetime: Duration,
    },
    /// A CHILD_SA pair is ready.
    ChildSaInstalled(Box<ChildSaInstalled>),
    /// A CHILD_SA could not be created (the IKE SA stays).
    ChildSaFailed {
        /// Why.
        reason: ChildFailure,
    },
    /// A CHILD_SA pair is gone (deleted by either side, or with its IKE SA).
    ChildSaDeleted {
        /// Its inbound SPI.
        spi_in: u32,
        /// Its outbound SPI.
        spi_out: u32,
    },
    /// The peer stopped answering liveness checks and the DPD action is `None`.
    PeerUnresponsive,
    /// The IKE SA is gone.
    IkeSaClosed {
        /// Why.
        reason: CloseReason,
    },
}
