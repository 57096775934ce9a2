//! `vpn-ike`: the sans-IO IKEv2 engine of the appliance (RFC 7296).
//!
//! Like quinn-proto or boringtun's `noise::Tunn`, the engine has no sockets, clocks or
//! threads: the owner feeds it datagrams ([`IkeSa::handle_datagram`]) and the time
//! ([`IkeSa::handle_timeout`]), and polls what to send ([`IkeSa::poll_transmit`]), when to
//! wake it next ([`IkeSa::poll_timeout`]) and what happened ([`IkeSa::poll_event`]). The
//! caller supplies the random number generator (`rand_core::CryptoRng`).
//!
//! * [`IkeSa`]: one IKE SA, as initiator (from a [`PeerConfig`]).
//! * [`Listener`]: a dispatcher that routes datagrams by SPI to many IKE SAs, creates
//!   responders on IKE_SA_INIT, and can also start initiators.
//!
//! | module | RFC 7296 | what |
//! |---|---|---|
//! | [`codec`] | 3 | messages and payloads to typed values and back |
//! | [`config`] | 2.7, 2.9, 2.15 | typed peer configuration, proposals, selectors, timers |
//! | [`proposal`] | 2.7, 3.3.6 | proposal selection and checking |
//! | [`ts`] | 2.9 | traffic selector narrowing |
//! | [`nat`] | 2.23 | NAT detection hashes |
//! | [`retransmit`] | 2.1 | exponential back-off |
//! | `sa` | 2.1, 2.2, 2.4 | the state machine, message IDs, response cache, DPD |
//! | `exchange` | 1.2-1.4, 2.8 | IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA (CHILD_SAs), INFORMATIONAL |
//! | [`events`] | | what the owner is told |
//! | [`stats`] | | counters, drops by reason |
//!
//! Implemented: IKE_SA_INIT and IKE_AUTH with PSK or raw public keys (RSA method 1, RFC 7427
//! RSA-PSS / PKCS#1, ECDSA and Ed25519 with SIGNATURE_HASH_ALGORITHMS; both roles) creating
//! the first CHILD_SA,
//! INVALID_KE_PAYLOAD retry, COOKIE echo (initiator side), NO_PROPOSAL_CHOSEN,
//! AUTHENTICATION_FAILED, TS narrowing and TS_UNACCEPTABLE, NAT detection with the move to
//! port 4500 and the non-ESP marker, NAT keepalives (RFC 3948 2.3), UNSUPPORTED_CRITICAL_PAYLOAD
//! answers (RFC 7296 2.5), retransmission and the response cache, DPD with its
//! actions, DELETE of CHILD and IKE SAs, CREATE_CHILD_SA for new and rekeyed CHILD_SAs (with
//! or without PFS, make-before-break, both sides, at the fuzzed soft lifetime or on demand),
//! deletion at the hard lifetime. Not yet: IKE SA rekeying (answered with NO_ADDITIONAL_SAS),
//! simultaneous-rekey collisions (RFC 7296 2.8.1), certificates, RFC 7383
//! fragmentation, the responder's COOKIE challenge, MOBIKE.
//!
//! Tests: `tests/engine/` wires an initiator and a responder back to back with a fake clock;
//! `tests/strongswan_interop.rs` runs the engine over UDP in the namespace lab against
//! strongSwan's charon (root only, like the other lab tests).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod config;
pub mod cookie;
mod endpoint;
pub mod events;
mod exchange;
pub mod fragment;
pub mod info;
mod listener;
pub mod nat;
pub mod proposal;
pub mod retransmit;
mod sa;
mod sk;
pub mod stats;
pub mod ts;

use std::net::SocketAddr;

pub use config::{Auth, KeyAuth, PeerConfig, Psk, SignatureMode};
pub use endpoint::IkeSa;
pub use events::{ChildSaInstalled, CloseReason, Event};
pub use listener::{Listener, ListenerEvent};
pub use sa::SaState;
pub use stats::{DropReason, Stats};

/// The 4 zero bytes that precede IKE messages on the NAT-T port (RFC 3948 section 2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Our address to send from (port 500, or the NAT-T port).
    pub from: SocketAddr,
    /// The peer's address.
    pub to: SocketAddr,
    /// The IKE message, *without* the non-ESP marker.
    pub bytes: Vec<u8>,
    /// Whether the non-ESP marker must precede `bytes` (sending on the NAT-T port).
    pub non_esp_marker: bool,
}

impl Transmit {
    /// The UDP payload to send: the marker (if any) and the message.
    #[must_use]
    pub fn datagram(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes.len() + 4);
        if self.non_esp_marker {
            out.extend_from_slice(&NON_ESP_MARKER);
        }
        out.extend_from_slice(&self.bytes);
        out
    }
}

/// The NAT-keepalive packet (RFC 3948 section 2.3): one 0xFF octet on the NAT-T port.
pub const NAT_KEEPALIVE: [u8; 1] = [0xff];

/// Whether a datagram received on `to` is a NAT-keepalive (to be ignored, not dropped).
pub(crate) fn is_nat_keepalive(to: SocketAddr, bytes: &[u8], nat_t_port: u16) -> bool {
    to.port() == nat_t_port && bytes == NAT_KEEPALIVE
}

/// Takes a received UDP payload apart: on the NAT-T port it must start with the non-ESP
/// marker, which is removed. Returns the IKE message and whether it came via NAT-T.
pub(crate) fn strip_marker(
    to: SocketAddr,
    bytes: &[u8],
    nat_t_port: u16,
) -> Result<(&[u8], bool), DropReason> {
    if to.port() != nat_t_port {
        return Ok((bytes, false));
    }
    match bytes.split_first_chunk::<4>() {
        Some((m, rest)) if *m == NON_ESP_MARKER => Ok((rest, true)),
        _ => Err(DropReason::NoNonEspMarker),
    }
}
