//! IKE_SA_INIT (RFC 7296 sections 1.2, 1.3, 2.6, 2.10, 2.14, 2.23).
//!
//! Initiator: `HDR, SAi1, KEi, Ni, N(NAT_DETECTION_SOURCE_IP), N(NAT_DETECTION_DESTINATION_IP)`,
//! preceded by `N(COOKIE)` when the responder asked for one. An INVALID_KE_PAYLOAD answer
//! makes us retry with the group the responder names if we offer it; NO_PROPOSAL_CHOSEN
//! or another error notification ends the SA.
//!
//! Responder: stateless error replies (NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD, with a zero
//! responder SPI), or `HDR, SAr1, KEr, Nr, N(NAT_DETECTION_*)` and a new half-open SA.
//! With key authentication both sides add `N(SIGNATURE_HASH_ALGORITHMS)` (RFC 7427 section
//! 4) and remember the peer's list for IKE_AUTH.
//! Both sides derive SKEYSEED and the seven keys, and check the NAT detection hashes; the
//! initiator moves to the NAT-T port when a NAT is seen or encapsulation is forced.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rand_core::CryptoRng;
use tracing::{debug, info};
use vpn_ike_crypto::dh::DhPrivateKey;
use vpn_ike_crypto::keys;

use super::authdata;
use crate::Transmit;
use crate::codec::{
    self, ExchangeType, Flags, KeyExchange, Message, MessageId, Notify, NotifyType, Payload, Spi,
};
use crate::config::PeerConfig;
use crate::events::CloseReason;
use crate::nat;
use crate::proposal;
use crate::sa::{AuthSent, InitMessages, InitReplied, InitSent, Keyed, PendingKind, SaCore, State};
use crate::stats::DropReason;

const NONCE_LEN: usize = 32;
const MAX_INIT_RETRIES: u8 = 3;

pub(crate) fn random_spi(rng: &mut dyn CryptoRng) -> Spi {
    loop {
        let v = rng.next_u64();
        if v != 0 {
            return Spi::from(v);
        }
    }
}

pub(crate) fn nonce(rng: &mut dyn CryptoRng) -> Vec<u8> {
    let mut n = vec![0u8; NONCE_LEN];
    rng.fill_bytes(&mut n);
    n
}

/// IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383 section 2.3) when the configuration wants it.
fn fragmentation_notify(config: &PeerConfig) -> Option<Payload> {
    config.fragmentation.map(|_| {
        Payload::Notify(Notify::new(
            NotifyType::Ikev2FragmentationSupported,
            Vec::new(),
        ))
    })
}

fn fake_nat_hash(config: &PeerConfig, rng: &mut dyn CryptoRng) -> Option<[u8; 20]> {
    config.force_encap.then(|| {
        let mut h = [0u8; 20];
        rng.fill_bytes(&mut h);
        h
    })
}

fn notify_of(payloads: &[Payload], t: NotifyType) -> Option<&Notify> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.notify_type == t => Some(n),
        _ => None,
    })
}

/// The first error notification among `payloads`, if any.
pub(crate) fn first_error(payloads: &[Payload]) -> Option<NotifyType> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.notify_type.is_error() => Some(n.notify_type),
        _ => None,
    })
}

/// What the responder does with an IKE_SA_INIT request.
pub(crate) enum InitOutcome {
    /// A new half-open SA, response queued inside.
    Created(Box<SaCore>),
    /// A stateless error reply.
    Reject(Transmit, NotifyType),
    /// Dropped.
    Drop(DropReason, &'static str),
}

impl SaCore {
    /// Starts IKE_SA_INIT as initiator.
    pub fn initiate(&mut self, now: Instant, rng: &mut dyn CryptoRng) {
        if !matches!(self.state, State::Idle) {
            return;
        }
        let Some(group) = self
            .config
            .ike_proposals
            .first()
            .and_then(|p| p.dh.first())
            .copied()
        else {
            self.close(CloseReason::Internal);
            return;
        };
        self.spi_i = random_spi(rng);
        self.spi_r = Spi::ZERO;
        info!(spi_i = %self.spi_i, remote = %self.remote, "initiating IKE SA");
        self.state = State::InitSent(Box::new(InitSent {
            dh: DhPrivateKey::generate(group, rng),
            ni: nonce(rng),
            cookie: None,
            retries: 0,
        }));
        self.send_init_request(now, rng);
    }

    fn send_init_request(&mut self, now: Instant, rng: &mut dyn CryptoRng) {
        let fake = fake_nat_hash(&self.config, rng);
        let State::InitSent(s) = &self.state else {
            return;
        };
        let mut payloads = Vec::new();
        if let Some(c) = &s.cookie {
            payloads.push(Payload::Notify(Notify::new(NotifyType::Cookie, c.clone())));
        }
        payloads.push(Payload::SecurityAssociation(proposal::ike_sa_payload(
            &self.config.ike_proposals,
        )));
        payloads.push(Payload::KeyExchange(KeyExchange {
            group: codec::DhGroup::from_value(s.dh.group().transform_id()),
            data: s.dh.public_value().to_vec(),
        }));
        payloads.push(Payload::Nonce(s.ni.clone()));
        payloads.extend(nat::notifies(
            self.spi_i,
            Spi::ZERO,
            self.local,
            self.remote,
            fake,
        ));
        payloads.extend(authdata::hash_notify(&self.config.auth));
        payloads.extend(fragmentation_notify(&self.config));
        let msg = Message {
            initiator_spi: self.spi_i,
            responder_spi: Spi::ZERO,
            exchange_type: ExchangeType::IkeSaInit,
            flags: Flags::new(true, false),
            message_id: MessageId(0),
            payloads,
        };
        match msg.encode() {
            Ok(bytes) => self.start_request(now, PendingKind::Init, vec![bytes]),
            Err(_) => self.close(CloseReason::Internal),
        }
    }

    /// The initiator's handling of the IKE_SA_INIT response.
    pub(crate) fn init_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
        msg: &Message,
        rng: &mut dyn CryptoRng,
    ) {
        let State::InitSent(s) = &mut self.state else {
            self.drop_msg(DropReason::WrongState, "IKE_SA_INIT response");
            return;
        };
        // Error notifications (RFC 7296 sections 1.3, 2.6).
        if let Some(n) = notify_of(&msg.payloads, NotifyType::Cookie) {
            if s.retries >= MAX_INIT_RETRIES || n.data.is_empty() || n.data.len() > 64 {
                self.drop_msg(DropReason::InvalidContent, "COOKIE");
                return;
            }
            s.retries += 1;
            s.cookie = Some(n.data.clone());
            debug!("responder asked for a cookie");
            self.pending = None;
            self.send_init_request(now, rng);
            return;
        }
        if let Some(n) = notify_of(&msg.payloads, NotifyType::InvalidKePayload) {
            let Ok(raw) = <[u8; 2]>::try_from(n.data.as_slice()) else {
                self.drop_msg(DropReason::InvalidContent, "INVALID_KE_PAYLOAD data");
                return;
            };
            let wanted = vpn_ike_crypto::dh::DhGroup::from_transform_id(u16::from_be_bytes(raw))
                .filter(|g| self.config.ike_proposals.iter().any(|p| p.dh.contains(g)));
            match wanted {
                Some(g) if g != s.dh.group() && s.retries < MAX_INIT_RETRIES => {
                    info!(group = ?g, "responder wants another DH group, retrying");
                    s.retries += 1;
                    s.dh = DhPrivateKey::generate(g, rng);
                    self.pending = None;
                    self.send_init_request(now, rng);
                }
                _ => self.close(CloseReason::PeerError(NotifyType::InvalidKePayload.value())),
            }
            return;
        }
        if let Some(t) = first_error(&msg.payloads) {
            let reason = if t == NotifyType::NoProposalChosen {
                CloseReason::NoProposalChosen
            } else {
                CloseReason::PeerError(t.value())
            };
            self.close(reason);
            return;
        }
        if msg.responder_spi.is_zero() {
            self.drop_msg(DropReason::InvalidContent, "zero responder SPI");
            return;
        }
        let mut sa = None;
        let mut ke = None;
        let mut nr = None;
        for p in &msg.payloads {
            match p {
                Payload::SecurityAssociation(x) => sa = Some(x),
                Payload::KeyExchange(x) => ke = Some(x),
                Payload::Nonce(x) => nr = Some(x),
                _ => {}
            }
        }
        let (Some(sa), Some(ke), Some(nr)) = (sa, ke, nr) else {
            self.drop_msg(DropReason::InvalidContent, "missing SA, KE or Nr");
            return;
        };
        let Some(chosen) = proposal::accept_ike(&self.config.ike_proposals, sa) else {
            self.drop_msg(DropReason::InvalidContent, "proposal not offered");
            return;
        };
        if chosen.dh != s.dh.group() || ke.group.value() != chosen.dh.transform_id() {
            self.drop_msg(DropReason::InvalidContent, "KE group");
            return;
        }
        let Ok(g_ir) = s.dh.compute_shared_secret(&ke.data) else {
            self.drop_msg(DropReason::InvalidContent, "KE value");
            return;
        };
        let spi_r = msg.responder_spi;
        let Some(keyed) = derive(&chosen, g_ir.as_bytes(), &s.ni, nr, self.spi_i, spi_r) else {
            self.close(CloseReason::Internal);
            return;
        };
        let found = nat::detect(&msg.payloads, self.spi_i, spi_r, from, to);
        let request = self
            .pending
            .take()
            .and_then(|p| p.datagrams.into_iter().next())
            .unwrap_or_default();
        self.next_request_id = 1;
        self.spi_r = spi_r;
        self.last_heard = now;
        self.nat_detected = found.any() || self.config.force_encap;
        self.behind_nat = found.local_behind;
        self.fragmentation_agreed = self.config.fragmentation.is_some()
            && notify_of(&msg.payloads, NotifyType::Ikev2FragmentationSupported).is_some();
        if self.nat_detected && found.supported {
            self.local.set_port(self.config.nat_t_port);
            self.remote.set_port(self.config.nat_t_port);
            self.encap = true;
            info!(
                local_behind = found.local_behind,
                remote_behind = found.remote_behind,
                "NAT detected, moving to the NAT-T port"
            );
        }
        let mut spi_in = 0;
        while spi_in < 0x100 {
            spi_in = rng.next_u32();
        }
        self.state = State::AuthSent(Box::new(AuthSent {
            keyed,
            init: InitMessages {
                request,
                response: bytes.to_vec(),
            },
            child_spi_in: spi_in,
            peer_hashes: authdata::peer_hashes(&msg.payloads),
        }));
        self.send_auth_request(now, rng);
    }
}

/// SKEYSEED and the IKE SA keys, with the ciphers of one side.
fn derive(
    chosen: &proposal::IkeChosen,
    g_ir: &[u8],
    ni: &[u8],
    nr: &[u8],
    spi_i: Spi,
    spi_r: Spi,
) -> Option<Keyed> {
    let seed = keys::skeyseed(chosen.suite.prf, ni, nr, g_ir);
    let k = keys::derive_ike_sa_keys(&chosen.suite, seed.as_bytes(), ni, nr, &spi_i.0, &spi_r.0)
        .ok()?;
    let i = k.initiator_cipher(&chosen.suite).ok()?;
    let r = k.responder_cipher(&chosen.suite).ok()?;
    Some(Keyed {
        chosen: *chosen,
        keys: k,
        tx: i,
        rx: r,
        ni: ni.to_vec(),
        nr: nr.to_vec(),
    })
}

fn error_reply(
    msg: &Message,
    from: SocketAddr,
    to: SocketAddr,
    marker: bool,
    n: Notify,
) -> Transmit {
    let reply = Message {
        initiator_spi: msg.initiator_spi,
        responder_spi: Spi::ZERO,
        exchange_type: ExchangeType::IkeSaInit,
        flags: Flags::new(false, true),
        message_id: MessageId(0),
        payloads: vec![Payload::Notify(n)],
    };
    Transmit {
        from: to,
        to: from,
        bytes: reply.encode().unwrap_or_default(),
        non_esp_marker: marker,
    }
}

/// The stateless answer to an IKE_SA_INIT request with an unknown critical payload of type
/// `payload_type` (RFC 7296 section 2.5): `N(UNSUPPORTED_CRITICAL_PAYLOAD)` with the type as
/// data, zero responder SPI.
pub(crate) fn critical_reply(
    header: &codec::Header,
    from: SocketAddr,
    to: SocketAddr,
    marker: bool,
    payload_type: u8,
) -> Transmit {
    let reply = Message {
        initiator_spi: header.initiator_spi,
        responder_spi: Spi::ZERO,
        exchange_type: ExchangeType::IkeSaInit,
        flags: Flags::new(false, true),
        message_id: MessageId(0),
        payloads: vec![Payload::Notify(Notify::new(
            NotifyType::UnsupportedCriticalPayload,
            vec![payload_type],
        ))],
    };
    Transmit {
        from: to,
        to: from,
        bytes: reply.encode().unwrap_or_default(),
        non_esp_marker: marker,
    }
}

/// The stateless `N(COOKIE)` answer to an IKE_SA_INIT request (RFC 7296 section 2.6).
pub(crate) fn cookie_reply(
    request: &Message,
    from: SocketAddr,
    to: SocketAddr,
    marker: bool,
    cookie: Vec<u8>,
) -> Transmit {
    let reply = Message {
        initiator_spi: request.initiator_spi,
        responder_spi: Spi::ZERO,
        exchange_type: ExchangeType::IkeSaInit,
        flags: Flags::new(false, true),
        message_id: MessageId(0),
        payloads: vec![Payload::Notify(Notify::new(NotifyType::Cookie, cookie))],
    };
    Transmit {
        from: to,
        to: from,
        bytes: reply.encode().unwrap_or_default(),
        non_esp_marker: marker,
    }
}

/// The responder's handling of an IKE_SA_INIT request (already checked to be one: request,
/// I flag, message ID 0, zero responder SPI).
#[allow(clippy::too_many_arguments)]
pub(crate) fn respond_init(
    config: Arc<PeerConfig>,
    now: Instant,
    from: SocketAddr,
    to: SocketAddr,
    bytes: &[u8],
    msg: &Message,
    via_nat_t: bool,
    rng: &mut dyn CryptoRng,
) -> InitOutcome {
    let mut sa = None;
    let mut ke = None;
    let mut ni = None;
    for p in &msg.payloads {
        match p {
            Payload::SecurityAssociation(x) => sa = Some(x),
            Payload::KeyExchange(x) => ke = Some(x),
            Payload::Nonce(x) => ni = Some(x),
            _ => {}
        }
    }
    let (Some(sa), Some(ke), Some(ni)) = (sa, ke, ni) else {
        return InitOutcome::Drop(DropReason::InvalidContent, "missing SA, KE or Ni");
    };
    let peer_group = vpn_ike_crypto::dh::DhGroup::from_transform_id(ke.group.value());
    let Some((prop, chosen)) = proposal::select_ike(&config.ike_proposals, sa, peer_group) else {
        info!(%from, "no acceptable IKE proposal");
        let n = Notify::new(NotifyType::NoProposalChosen, Vec::new());
        return InitOutcome::Reject(
            error_reply(msg, from, to, via_nat_t, n),
            NotifyType::NoProposalChosen,
        );
    };
    if peer_group != Some(chosen.dh) {
        debug!(%from, group = ?chosen.dh, "asking for another DH group");
        let data = chosen.dh.transform_id().to_be_bytes().to_vec();
        let n = Notify::new(NotifyType::InvalidKePayload, data);
        return InitOutcome::Reject(
            error_reply(msg, from, to, via_nat_t, n),
            NotifyType::InvalidKePayload,
        );
    }
    let dh = DhPrivateKey::generate(chosen.dh, rng);
    let Ok(g_ir) = dh.compute_shared_secret(&ke.data) else {
        return InitOutcome::Drop(DropReason::InvalidContent, "KE value");
    };
    let spi_r = random_spi(rng);
    let nr = nonce(rng);
    let Some(mut keyed) = derive(&chosen, g_ir.as_bytes(), ni, &nr, msg.initiator_spi, spi_r)
    else {
        return InitOutcome::Drop(DropReason::InvalidContent, "key derivation");
    };
    std::mem::swap(&mut keyed.tx, &mut keyed.rx);
    let found = nat::detect(&msg.payloads, msg.initiator_spi, Spi::ZERO, from, to);
    let fake = fake_nat_hash(&config, rng);
    let mut payloads = vec![
        Payload::SecurityAssociation(codec::SecurityAssociation {
            proposals: vec![prop],
        }),
        Payload::KeyExchange(KeyExchange {
            group: codec::DhGroup::from_value(chosen.dh.transform_id()),
            data: dh.public_value().to_vec(),
        }),
        Payload::Nonce(nr),
    ];
    if found.supported {
        payloads.extend(nat::notifies(msg.initiator_spi, spi_r, to, from, fake));
    }
    payloads.extend(authdata::hash_notify(&config.auth));
    let fragmentation = config.fragmentation.is_some()
        && notify_of(&msg.payloads, NotifyType::Ikev2FragmentationSupported).is_some();
    if fragmentation {
        payloads.extend(fragmentation_notify(&config));
    }
    let reply = Message {
        initiator_spi: msg.initiator_spi,
        responder_spi: spi_r,
        exchange_type: ExchangeType::IkeSaInit,
        flags: Flags::new(false, true),
        message_id: MessageId(0),
        payloads,
    };
    let Ok(response) = reply.encode() else {
        return InitOutcome::Drop(DropReason::InvalidContent, "encode");
    };
    let mut core = SaCore::new(config, false, now);
    core.spi_i = msg.initiator_spi;
    core.spi_r = spi_r;
    core.local = to;
    core.remote = from;
    core.encap = via_nat_t;
    core.nat_detected = found.any() || core.config.force_encap;
    core.behind_nat = found.local_behind;
    core.fragmentation_agreed = fragmentation;
    info!(spi_i = %core.spi_i, spi_r = %spi_r, %from, nat = core.nat_detected,
        "answered IKE_SA_INIT");
    core.state = State::InitReplied(Box::new(InitReplied {
        keyed,
        init: InitMessages {
            request: bytes.to_vec(),
            response: response.clone(),
        },
        peer_hashes: authdata::peer_hashes(&msg.payloads),
    }));
    core.cache_and_send(bytes, vec![response]);
    InitOutcome::Created(Box::new(core))
}
