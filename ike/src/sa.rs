//! One IKE SA: its state machine and the plumbing every exchange shares (RFC 7296 sections
//! 1, 2.1-2.2, 2.4).
//!
//! [`State`] makes illegal states unrepresentable: keys exist only once IKE_SA_INIT is done,
//! the IKE_SA_INIT messages (needed for AUTH) only until IKE_AUTH is done, and a closed SA
//! holds nothing. Message IDs follow RFC 7296 section 2.2 with a window of one: one
//! outstanding request of ours ([`Pending`], retransmitted on a timer), and for the peer's
//! requests the next expected ID plus the last response, resent when the identical request
//! arrives again. Everything that fails a check is dropped and counted ([`Stats`]) without
//! touching the state.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_core::CryptoRng;
use tracing::{debug, info, warn};
use vpn_ike_crypto::dh::DhPrivateKey;
use vpn_ike_crypto::ike_cipher::SkCipher;
use vpn_ike_crypto::keys::IkeSaKeys;

use crate::codec::{ExchangeType, Flags, Message, Notify, NotifyType, Payload, Spi};
use crate::config::{DpdAction, PeerConfig};
use crate::events::{CloseReason, Event};
use crate::proposal::{EspChosen, IkeChosen};
use crate::retransmit::{Retransmit, Step};
use crate::sk::{self, OutHeader};
use crate::stats::{DropReason, Stats};
use crate::{Transmit, config::TrafficSelector};

/// How long a responder keeps a half-open IKE SA (IKE_SA_INIT answered, no valid IKE_AUTH),
/// strongSwan's `half_open_timeout`.
pub(crate) const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Keys and algorithms of an IKE SA once IKE_SA_INIT is done.
pub(crate) struct Keyed {
    pub chosen: IkeChosen,
    pub keys: IkeSaKeys,
    /// Protects what we send.
    pub tx: SkCipher,
    /// Opens what we receive.
    pub rx: SkCipher,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
}

/// The IKE_SA_INIT messages exactly as sent and received, for the AUTH payloads.
pub(crate) struct InitMessages {
    pub request: Vec<u8>,
    pub response: Vec<u8>,
}

/// Initiator, IKE_SA_INIT request sent.
pub(crate) struct InitSent {
    pub dh: DhPrivateKey,
    pub ni: Vec<u8>,
    pub cookie: Option<Vec<u8>>,
    /// INVALID_KE_PAYLOAD and COOKIE round trips so far.
    pub retries: u8,
}

/// Initiator, IKE_AUTH request sent.
pub(crate) struct AuthSent {
    pub keyed: Keyed,
    pub init: InitMessages,
    pub child_spi_in: u32,
    /// The responder's SIGNATURE_HASH_ALGORITHMS (RFC 7427 section 4).
    pub peer_hashes: Vec<u16>,
}

/// Responder, IKE_SA_INIT answered, waiting for IKE_AUTH.
pub(crate) struct InitReplied {
    pub keyed: Keyed,
    pub init: InitMessages,
    /// The initiator's SIGNATURE_HASH_ALGORITHMS (RFC 7427 section 4).
    pub peer_hashes: Vec<u16>,
}

/// The state of an IKE SA.
pub(crate) enum State {
    /// Initiator before [`SaCore::initiate`].
    Idle,
    InitSent(Box<InitSent>),
    AuthSent(Box<AuthSent>),
    InitReplied(Box<InitReplied>),
    Established(Box<Keyed>),
    Closed,
}

impl State {
    pub fn keyed(&self) -> Option<&Keyed> {
        match self {
            State::AuthSent(a) => Some(&a.keyed),
            State::InitReplied(r) => Some(&r.keyed),
            State::Established(k) => Some(k),
            _ => None,
        }
    }
}

/// Public summary of the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaState {
    /// Not started.
    Idle,
    /// IKE_SA_INIT in progress.
    Init,
    /// IKE_AUTH in progress.
    Auth,
    /// Established.
    Established,
    /// Closed.
    Closed,
}

/// What our outstanding request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PendingKind {
    Init,
    Auth,
    Dpd,
    DeleteIke,
    DeleteChild(u32),
    /// Rekeying the CHILD_SA with this inbound SPI (CREATE_CHILD_SA).
    RekeyChild(u32),
    /// Rekeying the IKE SA (CREATE_CHILD_SA, RFC 7296 section 2.18).
    RekeyIke,
}

/// Our CHILD_SA rekey in flight (RFC 7296 section 2.8).
pub(crate) struct ChildRekey {
    pub old_spi_in: u32,
    pub new_spi_in: u32,
    pub ni: Vec<u8>,
    pub dh: Option<DhPrivateKey>,
}

/// The peer rekeyed a CHILD_SA while our own rekey of it was in flight (RFC 7296 section
/// 2.8.1): its new pair, and the lowest nonce of its exchange, to compare with ours.
pub(crate) struct RekeyCollision {
    pub old_spi_in: u32,
    pub lowest_nonce: Vec<u8>,
}

/// Our IKE SA rekey in flight (RFC 7296 section 2.18): the new SA's SPI (ours), nonce and
/// DH key.
pub(crate) struct IkeRekey {
    pub spi: Spi,
    pub ni: Vec<u8>,
    pub dh: DhPrivateKey,
}

/// Our outstanding request.
pub(crate) struct Pending {
    pub message_id: u32,
    /// Its datagrams: one, or its RFC 7383 fragments.
    pub datagrams: Vec<Vec<u8>>,
    pub kind: PendingKind,
    pub retransmit: Retransmit,
}

/// The last response we sent, with the request it answered.
pub(crate) struct CachedResponse {
    pub message_id: u32,
    pub request: Vec<u8>,
    /// One datagram, or its RFC 7383 fragments.
    pub response: Vec<Vec<u8>>,
}

/// Work waiting for the request window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Close,
    DeleteChild(u32),
    RekeyChild(u32),
}

/// A CHILD_SA pair we installed.
#[derive(Debug, Clone)]
pub(crate) struct ChildSa {
    pub spi_in: u32,
    pub spi_out: u32,
    pub chosen: EspChosen,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    pub rekey_at: Instant,
    pub expire_at: Instant,
    /// Being rekeyed (by either side), or replaced: no timer-driven rekey.
    pub rekeying: bool,
}

/// One IKE SA without its RNG (which the owner passes in), shared by [`crate::IkeSa`] and
/// [`crate::Listener`].
pub(crate) struct SaCore {
    pub config: Arc<PeerConfig>,
    pub initiator: bool,
    pub spi_i: Spi,
    pub spi_r: Spi,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Sending on the NAT-T port with the non-ESP marker.
    pub encap: bool,
    pub nat_detected: bool,
    /// NAT detection found a NAT in front of us (RFC 7296 2.23): we send NAT-keepalives.
    pub behind_nat: bool,
    /// When the next NAT-keepalive is due (RFC 3948 section 2.3).
    pub keepalive_at: Option<Instant>,
    pub state: State,
    /// ID of our next request.
    pub next_request_id: u32,
    /// ID of the peer's next request.
    pub peer_request_id: u32,
    pub pending: Option<Pending>,
    pub rekey: Option<ChildRekey>,
    pub cached: Option<CachedResponse>,
    pub ops: VecDeque<Op>,
    pub children: Vec<ChildSa>,
    pub last_heard: Instant,
    /// When the SA was created (for the half-open timeout).
    pub created: Instant,
    pub transmits: VecDeque<Transmit>,
    pub events: VecDeque<Event>,
    pub stats: Stats,
    /// Set when DPD wants a fresh IKE SA (action restart).
    pub restart_requested: bool,
    /// Set when the peer's IKE_AUTH carried INITIAL_CONTACT; the listener then drops the
    /// peer's older IKE SAs.
    pub initial_contact: bool,
    /// The IKE SA that replaces this one after a rekey, for the listener to take over.
    pub successor: Option<Box<SaCore>>,
    /// Our IKE SA rekey in flight, and when the next one is due (set once established).
    pub ike_rekey: Option<IkeRekey>,
    pub ike_rekey_at: Option<Instant>,
    /// Replaced by a rekey: its CHILD_SAs moved on, and its end is no outage.
    pub rekeyed: bool,
    /// A colliding CHILD_SA rekey by the peer, until ours completes.
    pub rekey_collision: Option<RekeyCollision>,
    /// Both sides announced IKE fragmentation (RFC 7383 section 2.3).
    pub fragmentation_agreed: bool,
    /// An encrypted message arriving in fragments.
    pub reassembly: Option<crate::fragment::Reassembly>,
}

impl SaCore {
    pub fn new(config: Arc<PeerConfig>, initiator: bool, now: Instant) -> Self {
        Self {
            local: config.local_addr,
            remote: config.remote_addr,
            config,
            initiator,
            spi_i: Spi::ZERO,
            spi_r: Spi::ZERO,
            encap: false,
            nat_detected: false,
            behind_nat: false,
            keepalive_at: None,
            state: State::Idle,
            next_request_id: 0,
            peer_request_id: 0,
            pending: None,
            rekey: None,
            cached: None,
            ops: VecDeque::new(),
            children: Vec::new(),
            last_heard: now,
            created: now,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            restart_requested: false,
            initial_contact: false,
            successor: None,
            ike_rekey: None,
            ike_rekey_at: None,
            rekeyed: false,
            fragmentation_agreed: false,
            reassembly: None,
            rekey_collision: None,
        }
    }

    /// The SPI the peer puts in our slot of the header.
    pub fn local_spi(&self) -> Spi {
        if self.initiator {
            self.spi_i
        } else {
            self.spi_r
        }
    }

    pub fn summary(&self) -> SaState {
        match self.state {
            State::Idle => SaState::Idle,
            State::InitSent(_) | State::InitReplied(_) => SaState::Init,
            State::AuthSent(_) => SaState::Auth,
            State::Established(_) => SaState::Established,
            State::Closed => SaState::Closed,
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    pub fn drop_msg(&mut self, reason: DropReason, detail: &str) {
        self.stats.drop(reason);
        debug!(
            spi_i = %self.spi_i, spi_r = %self.spi_r, reason = reason.label(), detail,
            "dropped IKE message"
        );
    }

    pub fn transmit(&mut self, bytes: Vec<u8>) {
        self.stats.sent += 1;
        self.transmits.push_back(Transmit {
            from: self.local,
            to: self.remote,
            bytes,
            non_esp_marker: self.encap,
        });
    }

    fn header(&self, exchange: ExchangeType, message_id: u32, response: bool) -> OutHeader {
        OutHeader {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            exchange,
            flags: Flags::new(self.initiator, response),
            message_id,
        }
    }

    /// Encrypts and sends a request, which becomes the outstanding one.
    pub fn send_request(
        &mut self,
        now: Instant,
        kind: PendingKind,
        exchange: ExchangeType,
        inner: &[Payload],
        rng: &mut dyn CryptoRng,
    ) {
        let id = self.next_request_id;
        let h = self.header(exchange, id, false);
        let Some(keyed) = self.state.keyed() else {
            return;
        };
        match sk::seal_datagrams(h, inner, &keyed.tx, self.fragment_size(), rng) {
            Ok(datagrams) => self.start_request(now, kind, datagrams),
            Err(e) => {
                warn!(error = %e, "cannot encode request");
                self.close(CloseReason::Internal);
            }
        }
    }

    /// The largest IKE message body a datagram may carry before it is split (RFC 7383), or
    /// `None` without agreed fragmentation.
    fn fragment_size(&self) -> Option<usize> {
        let size = self
            .config
            .fragmentation
            .filter(|_| self.fragmentation_agreed)?;
        // IPv4 and UDP headers, and the non-ESP marker on the NAT-T port.
        let overhead = 20 + 8 + if self.encap { 4 } else { 0 };
        Some(usize::from(size).saturating_sub(overhead))
    }

    /// Sends `datagrams` as our outstanding request `next_request_id` and starts
    /// retransmission.
    pub fn start_request(&mut self, now: Instant, kind: PendingKind, datagrams: Vec<Vec<u8>>) {
        let give_up = match (kind, self.config.dpd) {
            (PendingKind::Dpd, Some(d)) => Some(now + d.timeout),
            _ => None,
        };
        self.pending = Some(Pending {
            message_id: self.next_request_id,
            datagrams: datagrams.clone(),
            kind,
            retransmit: Retransmit::start(self.config.retransmit, now, give_up),
        });
        for d in datagrams {
            self.transmit(d);
        }
    }

    /// Encrypts and sends the response to the peer's request `request` and caches it.
    pub fn send_response(
        &mut self,
        exchange: ExchangeType,
        request: &[u8],
        inner: &[Payload],
        rng: &mut dyn CryptoRng,
    ) {
        let id = self.peer_request_id;
        let h = self.header(exchange, id, true);
        let Some(keyed) = self.state.keyed() else {
            return;
        };
        match sk::seal_datagrams(h, inner, &keyed.tx, self.fragment_size(), rng) {
            Ok(datagrams) => self.cache_and_send(request, datagrams),
            Err(e) => {
                warn!(error = %e, "cannot encode response");
                self.close(CloseReason::Internal);
            }
        }
    }

    pub fn cache_and_send(&mut self, request: &[u8], response: Vec<Vec<u8>>) {
        self.cached = Some(CachedResponse {
            message_id: self.peer_request_id,
            request: request.to_vec(),
            response: response.clone(),
        });
        self.peer_request_id = self.peer_request_id.wrapping_add(1);
        for d in response {
            self.transmit(d);
        }
    }

    /// Ends the SA: CHILD_SAs deleted, then the IKE SA closed. Idempotent.
    pub fn close(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        let reason = if self.rekeyed {
            CloseReason::Rekeyed
        } else {
            reason
        };
        for c in std::mem::take(&mut self.children) {
            self.events.push_back(Event::ChildSaDeleted {
                spi_in: c.spi_in,
                spi_out: c.spi_out,
            });
        }
        info!(spi_i = %self.spi_i, spi_r = %self.spi_r, ?reason, "IKE SA closed");
        self.state = State::Closed;
        self.pending = None;
        self.ops.clear();
        self.events.push_back(Event::IkeSaClosed { reason });
    }

    /// Entry point for a datagram (marker already removed). `via_nat_t` says it arrived on
    /// the NAT-T port.
    pub fn handle(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
        via_nat_t: bool,
        rng: &mut dyn CryptoRng,
    ) {
        if self.is_closed() {
            self.drop_msg(DropReason::WrongState, "SA closed");
            return;
        }
        let msg = match Message::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.drop_msg(DropReason::Malformed, e.kind());
                return;
            }
        };
        let init = msg.exchange_type == ExchangeType::IkeSaInit;
        let spi_ok = msg.initiator_spi == self.spi_i
            && (msg.responder_spi == self.spi_r
                // The first IKE_SA_INIT response teaches us the responder's SPI (zero in
                // error replies); a retransmitted IKE_SA_INIT request still has zero there.
                || init && matches!(self.state, State::InitSent(_))
                || init && !self.initiator && msg.responder_spi.is_zero());
        if !spi_ok {
            self.drop_msg(DropReason::UnknownSpi, "SPI mismatch");
            return;
        }
        // The I flag is set on messages from the original initiator.
        if msg.flags.initiator() == self.initiator {
            self.drop_msg(DropReason::BadFlags, "I flag");
            return;
        }
        if msg.flags.response() {
            self.handle_response(now, from, to, bytes, &msg, via_nat_t, rng);
        } else {
            self.handle_request(now, from, to, bytes, &msg, via_nat_t, rng);
        }
        self.drive(now, rng);
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
        msg: &Message,
        via_nat_t: bool,
        rng: &mut dyn CryptoRng,
    ) {
        let Some(pending) = &self.pending else {
            self.drop_msg(DropReason::UnexpectedResponse, "no request outstanding");
            return;
        };
        if msg.message_id.0 != pending.message_id {
            self.drop_msg(DropReason::UnexpectedResponse, "message ID");
            return;
        }
        let kind = pending.kind;
        let expected_exchange = match kind {
            PendingKind::Init => ExchangeType::IkeSaInit,
            PendingKind::Auth => ExchangeType::IkeAuth,
            PendingKind::RekeyChild(_) | PendingKind::RekeyIke => ExchangeType::CreateChildSa,
            _ => ExchangeType::Informational,
        };
        if msg.exchange_type != expected_exchange {
            self.drop_msg(DropReason::UnexpectedResponse, "exchange type");
            return;
        }
        if kind == PendingKind::Init {
            self.init_response(now, from, to, bytes, msg, rng);
            return;
        }
        let opened = match self.open(bytes, msg, rng) {
            Some(o) => o,
            None => return,
        };
        self.authenticated_from(now, from, to, via_nat_t);
        match kind {
            PendingKind::Init => {}
            PendingKind::Auth => self.auth_response(now, opened, rng),
            PendingKind::RekeyChild(old) => {
                self.rekey_child_response(now, old, &opened.payloads, rng);
            }
            PendingKind::RekeyIke => self.rekey_ike_response(now, &opened.payloads, rng),
            _ => self.informational_response(kind, &opened.payloads),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_request(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
        msg: &Message,
        via_nat_t: bool,
        rng: &mut dyn CryptoRng,
    ) {
        let id = msg.message_id.0;
        if id != self.peer_request_id {
            let is_last = self
                .cached
                .as_ref()
                .is_some_and(|c| c.message_id == id && c.request == bytes);
            if is_last {
                let response = self.cached.as_ref().map(|c| c.response.clone());
                if let Some(r) = response {
                    self.stats.duplicate_requests_answered += 1;
                    debug!(message_id = id, "retransmitted request answered from cache");
                    for d in r {
                        self.transmit(d);
                    }
                }
            } else if id < self.peer_request_id {
                self.drop_msg(DropReason::OldMessageId, "request below window");
            } else {
                self.drop_msg(DropReason::FutureMessageId, "request above window");
            }
            return;
        }
        match (&self.state, msg.exchange_type) {
            (State::InitReplied(_), ExchangeType::IkeAuth) => {
                let Some(opened) = self.open(bytes, msg, rng) else {
                    return;
                };
                self.authenticated_from(now, from, to, via_nat_t);
                self.auth_request(now, bytes, opened, rng);
            }
            (State::Established(_), ExchangeType::Informational) => {
                let Some(opened) = self.open(bytes, msg, rng) else {
                    return;
                };
                self.authenticated_from(now, from, to, via_nat_t);
                self.informational_request(bytes, &opened.payloads, rng);
            }
            (State::Established(_), ExchangeType::CreateChildSa) => {
                let Some(opened) = self.open(bytes, msg, rng) else {
                    return;
                };
                self.authenticated_from(now, from, to, via_nat_t);
                self.create_child_request(now, bytes, &opened.payloads, rng);
            }
            _ => self.drop_msg(DropReason::WrongState, "exchange not allowed in this state"),
        }
    }

    /// Verifies and decrypts; counts and returns None on failure. A request that passes the
    /// integrity check but holds an unknown critical payload is answered with
    /// UNSUPPORTED_CRITICAL_PAYLOAD (RFC 7296 section 2.5) and otherwise ignored.
    fn open(&mut self, bytes: &[u8], msg: &Message, rng: &mut dyn CryptoRng) -> Option<sk::Opened> {
        if let Some(Payload::EncryptedFragment(f)) = msg.payloads.last() {
            return self.reassemble(bytes, msg, f);
        }
        let Some(keyed) = self.state.keyed() else {
            self.drop_msg(DropReason::WrongState, "no keys");
            return None;
        };
        match sk::open(bytes, msg, &keyed.rx) {
            Ok(o) => Some(o),
            Err(sk::OpenError::Integrity) => {
                self.drop_msg(DropReason::IntegrityCheckFailed, "SK payload");
                None
            }
            Err(sk::OpenError::NotEncrypted) => {
                self.drop_msg(DropReason::InvalidContent, "no SK payload");
                None
            }
            Err(sk::OpenError::Malformed) => {
                self.drop_msg(DropReason::Malformed, "inner payloads");
                None
            }
            Err(sk::OpenError::UnsupportedCritical(payload_type)) => {
                self.stats.unsupported_critical_payloads += 1;
                if msg.flags.response() {
                    self.drop_msg(DropReason::Malformed, "unsupported critical payload");
                    return None;
                }
                info!(spi_i = %self.spi_i, payload_type, exchange = msg.exchange_type.value(),
                    "request with an unsupported critical payload refused");
                let n = Notify::new(NotifyType::UnsupportedCriticalPayload, vec![payload_type]);
                self.send_response(msg.exchange_type, bytes, &[Payload::Notify(n)], rng);
                None
            }
        }
    }

    /// After an authenticated message: liveness, and NAT-T port floating (RFC 7296 2.23).
    fn authenticated_from(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        via_nat_t: bool,
    ) {
        self.last_heard = now;
        if via_nat_t && (from != self.remote || to != self.local || !self.encap) {
            debug!(%from, %to, "peer moved to NAT-T port");
            self.remote = from;
            self.local = to;
            self.encap = true;
        }
    }

    /// Timers: retransmission, DPD, and queued work.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut dyn CryptoRng) {
        if matches!(self.state, State::InitReplied(_)) && now >= self.created + HALF_OPEN_TIMEOUT {
            debug!(spi_i = %self.spi_i, "half-open IKE SA timed out");
            self.close(CloseReason::Timeout);
            return;
        }
        if let Some(p) = &mut self.pending {
            match p.retransmit.poll(now) {
                Step::Wait => {}
                Step::Resend => {
                    let datagrams = p.datagrams.clone();
                    let kind = p.kind;
                    self.stats.retransmissions += 1;
                    debug!(?kind, "retransmitting request");
                    for d in datagrams {
                        self.transmit(d);
                    }
                }
                Step::GiveUp => {
                    let kind = p.kind;
                    self.pending = None;
                    self.give_up(now, kind);
                }
            }
        }
        self.nat_keepalive(now);
        self.drive(now, rng);
    }

    /// Starts NAT-keepalives once established, if we are behind a NAT and on the NAT-T port.
    pub fn start_keepalives(&mut self, now: Instant) {
        self.keepalive_at = match self.config.nat_keepalive {
            Some(interval) if self.behind_nat && self.encap => Some(now + interval),
            _ => None,
        };
    }

    /// Sends a NAT-keepalive when one is due (RFC 3948 section 2.3): a single 0xFF octet,
    /// without the non-ESP marker, from our NAT-T port to the peer's.
    fn nat_keepalive(&mut self, now: Instant) {
        let (Some(at), Some(interval)) = (self.keepalive_at, self.config.nat_keepalive) else {
            return;
        };
        if now < at || !matches!(self.state, State::Established(_)) || !self.encap {
            return;
        }
        self.stats.sent += 1;
        self.stats.nat_keepalives_sent += 1;
        self.transmits.push_back(Transmit {
            from: self.local,
            to: self.remote,
            bytes: crate::NAT_KEEPALIVE.to_vec(),
            non_esp_marker: false,
        });
        self.keepalive_at = Some(now + interval);
    }

    fn give_up(&mut self, now: Instant, kind: PendingKind) {
        warn!(spi_i = %self.spi_i, ?kind, "peer did not answer");
        match kind {
            PendingKind::Dpd => match self.config.dpd.map(|d| d.action) {
                Some(DpdAction::None) => {
                    self.events.push_back(Event::PeerUnresponsive);
                    self.last_heard = now;
                }
                Some(DpdAction::Restart) => {
                    self.close(CloseReason::DeadPeer);
                    self.restart_requested = self.initiator;
                }
                _ => self.close(CloseReason::DeadPeer),
            },
            PendingKind::DeleteIke => self.close(CloseReason::LocalClose),
            _ => self.close(CloseReason::Timeout),
        }
    }

    /// Starts queued work and liveness checks when the request window is free.
    pub fn drive(&mut self, now: Instant, rng: &mut dyn CryptoRng) {
        // A rekeyed IKE SA only waits for the peer's DELETE: its successor does the work.
        if self.pending.is_some() || !matches!(self.state, State::Established(_)) || self.rekeyed {
            return;
        }
        if let Some(op) = self.ops.pop_front() {
            match op {
                Op::Close => self.send_delete_ike(now, rng),
                Op::DeleteChild(spi) => self.send_delete_child(now, spi, rng),
                Op::RekeyChild(spi) => self.send_rekey_child(now, spi, rng),
            }
            if self.pending.is_some() {
                return;
            }
            return self.drive(now, rng);
        }
        // CHILD_SA lifetimes: delete at expiry, rekey at the (fuzzed) soft limit.
        if let Some(c) = self.children.iter().find(|c| now >= c.expire_at) {
            let spi = c.spi_in;
            self.send_delete_child(now, spi, rng);
            return;
        }
        if let Some(c) = self
            .children
            .iter()
            .find(|c| !c.rekeying && now >= c.rekey_at)
        {
            let spi = c.spi_in;
            self.send_rekey_child(now, spi, rng);
            return;
        }
        // The IKE SA's own lifetime (RFC 7296 2.18).
        let rekey_ike_at = match self.ike_rekey_at {
            Some(at) => at,
            None => {
                let after = self.rekey_after(self.config.lifetimes.ike, rng);
                let at = now
                    + if after.is_zero() {
                        self.config.lifetimes.ike / 2
                    } else {
                        after
                    };
                self.ike_rekey_at = Some(at);
                at
            }
        };
        if now >= rekey_ike_at {
            self.send_rekey_ike(now, rng);
            return;
        }
        if let Some(dpd) = self.config.dpd
            && now >= self.last_heard + dpd.delay
        {
            self.send_dpd(now, rng);
        }
    }

    /// The next time [`SaCore::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        if let Some(p) = &self.pending {
            return Some(p.retransmit.deadline())
                .into_iter()
                .chain(self.keepalive_at)
                .min();
        }
        if matches!(self.state, State::InitReplied(_)) {
            return Some(self.created + HALF_OPEN_TIMEOUT);
        }
        if !matches!(self.state, State::Established(_)) {
            return None;
        }
        if self.rekeyed {
            return None;
        }
        let dpd = self.config.dpd.map(|d| self.last_heard + d.delay);
        let children = self
            .children
            .iter()
            .map(|c| if c.rekeying { c.expire_at } else { c.rekey_at });
        // Unset until the first drive after establishment: due now, so that it gets set.
        let ike = Some(self.ike_rekey_at.unwrap_or(self.created));
        dpd.into_iter()
            .chain(self.keepalive_at)
            .chain(children)
            .chain(ike)
            .min()
    }

    /// Asks for the IKE SA to be deleted.
    pub fn request_close(&mut self, now: Instant, rng: &mut dyn CryptoRng) {
        match self.state {
            State::Established(_) => {
                if !self.ops.contains(&Op::Close) {
                    self.ops.push_back(Op::Close);
                }
                self.drive(now, rng);
            }
            State::Closed => {}
            _ => self.close(CloseReason::LocalClose),
        }
    }

    /// Asks for a CHILD_SA (by inbound SPI) to be deleted.
    pub fn request_delete_child(&mut self, now: Instant, spi_in: u32, rng: &mut dyn CryptoRng) {
        if self.children.iter().any(|c| c.spi_in == spi_in) {
            self.ops.push_back(Op::DeleteChild(spi_in));
            self.drive(now, rng);
        }
    }

    /// Asks for a CHILD_SA (by inbound SPI) to be rekeyed now.
    pub fn request_rekey_child(&mut self, now: Instant, spi_in: u32, rng: &mut dyn CryptoRng) {
        if self
            .children
            .iter()
            .any(|c| c.spi_in == spi_in && !c.rekeying)
        {
            self.ops.push_back(Op::RekeyChild(spi_in));
            self.drive(now, rng);
        }
    }

    /// Fuzzed lifetime: `lifetime - margin - random(0..=margin*fuzz)`.
    pub fn rekey_after(&self, lifetime: Duration, rng: &mut dyn CryptoRng) -> Duration {
        let l = &self.config.lifetimes;
        let extra = l.margin.as_secs_f64() * l.fuzz.clamp(0.0, 1.0);
        let r = f64::from(rng.next_u32()) / f64::from(u32::MAX);
        let margin = l
            .margin
            .saturating_add(Duration::try_from_secs_f64(extra * r).unwrap_or(Duration::ZERO));
        lifetime.saturating_sub(margin)
    }
}
