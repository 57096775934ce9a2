//! IKE_AUTH with pre-shared keys or signatures and the first CHILD_SA (RFC 7296 sections
//! 1.2, 2.15, 2.17, 2.9; RFC 7427).
//!
//! Initiator: `HDR, SK {IDi, [N(INITIAL_CONTACT)], [IDr], AUTH, SAi2, TSi, TSr}`; responder:
//! `HDR, SK {IDr, AUTH, SAr2, TSi, TSr}` or, when the CHILD_SA cannot be made,
//! `HDR, SK {IDr, AUTH, N(NO_PROPOSAL_CHOSEN | TS_UNACCEPTABLE)}` (the IKE SA stays up), or
//! `HDR, SK {N(AUTHENTICATION_FAILED)}`.
//!
//! AUTH = `prf(prf(PSK, "Key Pad for IKEv2"), <SignedOctets>)`, or a signature over the signed
//! octets (auth method 1, or 14 with the hash the peer announced), where the signed octets
//! hold the signer's IKE_SA_INIT message and ID payload body *as sent* (we verify over the
//! bytes we received, not a re-encoding); see [`super::authdata`]. A wrong AUTH closes the
//! half-open SA (the responder answers AUTHENTICATION_FAILED) and is counted in
//! `Stats::authentication_failures`. CHILD_SA keys come from `prf+(SK_d, Ni | Nr)`.

use std::time::{Duration, Instant};

use rand_core::CryptoRng;
use tracing::{info, warn};
use vpn_ike_crypto::keys::{self, ChildSaKeys};

use super::authdata::{own_auth, verify_peer_auth};
use crate::codec::{
    self, Authentication, ExchangeType, Identification, Notify, NotifyType, Payload, PayloadType,
};
use crate::config::{Identity, TrafficSelector};
use crate::events::{ChildFailure, ChildSaInstalled, CloseReason, Event, UdpEncap};
use crate::exchange::init::first_error;
use crate::proposal::{self, EspChosen};
use crate::sa::{ChildSa, Keyed, PendingKind, SaCore, State};
use crate::sk::{self, Opened};
use crate::stats::DropReason;
use crate::ts;

/// The body of an ID payload we send (ID Type, RESERVED, data), as encoded.
fn id_body(payload: &Payload) -> Vec<u8> {
    codec::encode_payload_chain(std::slice::from_ref(payload))
        .map(|b| {
            b.get(codec::GENERIC_HEADER_LEN..)
                .unwrap_or_default()
                .to_vec()
        })
        .unwrap_or_default()
}

fn id_matches(expected: Option<&Identity>, got: &Identification) -> bool {
    expected.is_none_or(|e| e.matches(got))
}

struct Parts<'a> {
    id: Option<&'a Identification>,
    auth: Option<&'a Authentication>,
    sa: Option<&'a codec::SecurityAssociation>,
    tsi: Option<&'a codec::TrafficSelectors>,
    tsr: Option<&'a codec::TrafficSelectors>,
}

fn parts(payloads: &[Payload], peer_is_initiator: bool) -> Parts<'_> {
    let mut p = Parts {
        id: None,
        auth: None,
        sa: None,
        tsi: None,
        tsr: None,
    };
    for x in payloads {
        match x {
            Payload::IdInitiator(i) if peer_is_initiator => p.id = Some(i),
            Payload::IdResponder(i) if !peer_is_initiator => p.id = Some(i),
            Payload::Authentication(a) => p.auth = Some(a),
            Payload::SecurityAssociation(s) => p.sa = Some(s),
            Payload::TsInitiator(t) => p.tsi = Some(t),
            Payload::TsResponder(t) => p.tsr = Some(t),
            _ => {}
        }
    }
    p
}

pub(crate) fn random_child_spi(rng: &mut dyn CryptoRng) -> u32 {
    loop {
        let v = rng.next_u32();
        // SPIs 1..=255 are reserved by IANA (RFC 4303 section 2.1).
        if v >= 0x100 {
            return v;
        }
    }
}

impl SaCore {
    /// Sends the IKE_AUTH request (state AuthSent).
    pub(crate) fn send_auth_request(&mut self, now: Instant, rng: &mut dyn CryptoRng) {
        let State::AuthSent(a) = &self.state else {
            return;
        };
        let id = Payload::IdInitiator(self.config.local_id.to_payload());
        let auth = match own_auth(
            &a.keyed,
            &self.config.auth,
            &a.init.request,
            true,
            &id_body(&id),
            &a.peer_hashes,
            rng,
        ) {
            Ok(auth) => auth,
            Err(e) => {
                warn!(spi_i = %self.spi_i, error = %e, "cannot compute our AUTH payload");
                self.close(CloseReason::AuthenticationFailed);
                return;
            }
        };
        let mut inner = vec![id];
        if self.config.initial_contact {
            inner.push(Payload::Notify(Notify::new(
                NotifyType::InitialContact,
                Vec::new(),
            )));
        }
        if let Some(r) = &self.config.remote_id {
            inner.push(Payload::IdResponder(r.to_payload()));
        }
        inner.push(Payload::Authentication(auth));
        inner.push(Payload::SecurityAssociation(proposal::esp_sa_payload(
            &self.config.esp_proposals,
            a.child_spi_in,
            false,
        )));
        inner.push(Payload::TsInitiator(ts::to_payload(&self.config.local_ts)));
        inner.push(Payload::TsResponder(ts::to_payload(&self.config.remote_ts)));
        self.send_request(now, PendingKind::Auth, ExchangeType::IkeAuth, &inner, rng);
    }

    /// The responder's handling of the IKE_AUTH request (state InitReplied, decrypted).
    pub(crate) fn auth_request(
        &mut self,
        now: Instant,
        request: &[u8],
        opened: Opened,
        rng: &mut dyn CryptoRng,
    ) {
        let State::InitReplied(r) = &self.state else {
            return;
        };
        let p = parts(&opened.payloads, true);
        let (Some(id), Some(auth_payload)) = (p.id, p.auth) else {
            self.drop_msg(DropReason::InvalidContent, "missing IDi or AUTH");
            return;
        };
        let raw_id = sk::raw_body(opened.first, &opened.plaintext, PayloadType::IdInitiator)
            .unwrap_or_default();
        let checked = if id_matches(self.config.remote_id.as_ref(), id) {
            verify_peer_auth(
                &r.keyed,
                &self.config.auth,
                &r.init.request,
                true,
                raw_id,
                auth_payload,
            )
            .map_err(|e| e.to_string())
        } else {
            Err("unexpected identity".to_owned())
        };
        let idr = Payload::IdResponder(self.config.local_id.to_payload());
        let own = checked.and_then(|()| {
            own_auth(
                &r.keyed,
                &self.config.auth,
                &r.init.response,
                false,
                &id_body(&idr),
                &r.peer_hashes,
                rng,
            )
            .map_err(|e| format!("cannot compute our AUTH payload: {e}"))
        });
        let own: Authentication = match own {
            Ok(a) => a,
            Err(why) => {
                self.stats.authentication_failures += 1;
                warn!(spi_i = %self.spi_i, remote = %self.remote, reason = %why,
                    "initiator authentication failed");
                let n = Payload::Notify(Notify::new(NotifyType::AuthenticationFailed, Vec::new()));
                self.send_response(ExchangeType::IkeAuth, request, &[n], rng);
                self.close(CloseReason::AuthenticationFailed);
                return;
            }
        };
        info!(spi_i = %self.spi_i, auth_method = auth_payload.method.value(),
            "initiator authenticated");
        let mut inner = vec![idr, Payload::Authentication(own)];
        // The first CHILD_SA.
        let spi_in = random_child_spi(rng);
        let child = match (p.sa, p.tsi, p.tsr) {
            (Some(sa), Some(tsi), Some(tsr)) => {
                match proposal::select_esp(&self.config.esp_proposals, sa, spi_in, false) {
                    None => Err(ChildFailure::NoProposalChosen),
                    Some((prop, chosen, spi_out)) => {
                        let tsi = ts::narrow(&ts::from_payload(tsi), &self.config.remote_ts);
                        let tsr = ts::narrow(&ts::from_payload(tsr), &self.config.local_ts);
                        if tsi.is_empty() || tsr.is_empty() {
                            Err(ChildFailure::TsUnacceptable)
                        } else {
                            Ok((prop, chosen, spi_out, tsi, tsr))
                        }
                    }
                }
            }
            _ => Err(ChildFailure::Invalid),
        };
        match &child {
            Ok((prop, _, _, tsi, tsr)) => {
                inner.push(Payload::SecurityAssociation(codec::SecurityAssociation {
                    proposals: vec![prop.clone()],
                }));
                inner.push(Payload::TsInitiator(ts::to_payload(tsi)));
                inner.push(Payload::TsResponder(ts::to_payload(tsr)));
            }
            Err(ChildFailure::NoProposalChosen) => inner.push(Payload::Notify(Notify::new(
                NotifyType::NoProposalChosen,
                Vec::new(),
            ))),
            Err(ChildFailure::TsUnacceptable) => inner.push(Payload::Notify(Notify::new(
                NotifyType::TsUnacceptable,
                Vec::new(),
            ))),
            Err(ChildFailure::Invalid) => {}
        }
        self.send_response(ExchangeType::IkeAuth, request, &inner, rng);
        let State::InitReplied(r) = std::mem::replace(&mut self.state, State::Closed) else {
            return;
        };
        let keyed = r.keyed;
        let keys = child
            .as_ref()
            .ok()
            .and_then(|(_, chosen, ..)| child_keys(&keyed, chosen));
        self.state = State::Established(Box::new(keyed));
        self.initial_contact = opened.payloads.iter().any(
            |x| matches!(x, Payload::Notify(n) if n.notify_type == NotifyType::InitialContact),
        );
        self.established(now);
        match (child, keys) {
            (Ok((_, chosen, spi_out, tsi, tsr)), Some(k)) => {
                // Responder: inbound traffic is initiator-to-responder.
                self.install_child(
                    now,
                    spi_in,
                    spi_out,
                    chosen,
                    (
                        k.initiator_to_responder.clone(),
                        k.responder_to_initiator.clone(),
                    ),
                    tsr,
                    tsi,
                    None,
                    rng,
                );
            }
            (Err(reason), _) => self.events.push_back(Event::ChildSaFailed { reason }),
            (Ok(_), None) => self.events.push_back(Event::ChildSaFailed {
                reason: ChildFailure::Invalid,
            }),
        }
    }

    /// The initiator's handling of the IKE_AUTH response (state AuthSent, decrypted).
    pub(crate) fn auth_response(&mut self, now: Instant, opened: Opened, rng: &mut dyn CryptoRng) {
        let State::AuthSent(a) = &self.state else {
            return;
        };
        let p = parts(&opened.payloads, false);
        let error = first_error(&opened.payloads);
        if error == Some(NotifyType::AuthenticationFailed) {
            warn!(spi_i = %self.spi_i, "responder refused our authentication");
            self.close(CloseReason::AuthenticationFailed);
            return;
        }
        let (Some(id), Some(auth_payload)) = (p.id, p.auth) else {
            match error {
                Some(t) => self.close(CloseReason::PeerError(t.value())),
                None => self.drop_msg(DropReason::InvalidContent, "missing IDr or AUTH"),
            }
            return;
        };
        let raw_id = sk::raw_body(opened.first, &opened.plaintext, PayloadType::IdResponder)
            .unwrap_or_default();
        let checked = if id_matches(self.config.remote_id.as_ref(), id) {
            verify_peer_auth(
                &a.keyed,
                &self.config.auth,
                &a.init.response,
                false,
                raw_id,
                auth_payload,
            )
            .map_err(|e| e.to_string())
        } else {
            Err("unexpected identity".to_owned())
        };
        if let Err(why) = checked {
            self.stats.authentication_failures += 1;
            warn!(spi_i = %self.spi_i, remote = %self.remote, reason = %why,
                "responder authentication failed");
            self.close(CloseReason::AuthenticationFailed);
            return;
        }
        info!(spi_i = %self.spi_i, auth_method = auth_payload.method.value(),
            "responder authenticated");
        self.pending = None;
        self.next_request_id = 2;
        let State::AuthSent(a) = std::mem::replace(&mut self.state, State::Closed) else {
            return;
        };
        let spi_in = a.child_spi_in;
        let keyed = a.keyed;
        let child = match error {
            Some(NotifyType::NoProposalChosen) => Err(ChildFailure::NoProposalChosen),
            Some(NotifyType::TsUnacceptable) => Err(ChildFailure::TsUnacceptable),
            _ => match (p.sa, p.tsi, p.tsr) {
                (Some(sa), Some(tsi), Some(tsr)) => {
                    let tsi = ts::from_payload(tsi);
                    let tsr = ts::from_payload(tsr);
                    match proposal::accept_esp(&self.config.esp_proposals, sa, false) {
                        Some((chosen, spi_out))
                            if ts::within(&tsi, &self.config.local_ts)
                                && ts::within(&tsr, &self.config.remote_ts) =>
                        {
                            Ok((chosen, spi_out, tsi, tsr))
                        }
                        _ => Err(ChildFailure::Invalid),
                    }
                }
                _ => Err(ChildFailure::Invalid),
            },
        };
        let keys = child
            .as_ref()
            .ok()
            .and_then(|(chosen, ..)| child_keys(&keyed, chosen));
        self.state = State::Established(Box::new(keyed));
        self.established(now);
        match (child, keys) {
            (Ok((chosen, spi_out, tsi, tsr)), Some(k)) => {
                // Initiator: outbound traffic is initiator-to-responder.
                self.install_child(
                    now,
                    spi_in,
                    spi_out,
                    chosen,
                    (
                        k.responder_to_initiator.clone(),
                        k.initiator_to_responder.clone(),
                    ),
                    tsi,
                    tsr,
                    None,
                    rng,
                );
            }
            (Err(reason), _) => self.events.push_back(Event::ChildSaFailed { reason }),
            (Ok(_), None) => self.events.push_back(Event::ChildSaFailed {
                reason: ChildFailure::Invalid,
            }),
        }
    }

    fn established(&mut self, now: Instant) {
        self.last_heard = now;
        self.start_keepalives(now);
        info!(spi_i = %self.spi_i, spi_r = %self.spi_r, local = %self.local,
            remote = %self.remote, "IKE SA established");
        self.events.push_back(Event::IkeSaEstablished {
            spis: (self.spi_i, self.spi_r),
            initiator: self.initiator,
            local_addr: self.local,
            remote_addr: self.remote,
            nat_detected: self.nat_detected,
            lifetime: self.config.lifetimes.ike,
        });
    }

    /// Records a CHILD_SA and emits its event. `keys` is (inbound, outbound).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn install_child(
        &mut self,
        now: Instant,
        spi_in: u32,
        spi_out: u32,
        chosen: EspChosen,
        keys: (keys::EspKeys, keys::EspKeys),
        local_ts: Vec<TrafficSelector>,
        remote_ts: Vec<TrafficSelector>,
        rekeyed_from: Option<u32>,
        rng: &mut dyn CryptoRng,
    ) {
        let lifetime = self.config.lifetimes.child;
        let rekey: Duration = self.rekey_after(lifetime, rng);
        info!(spi_in = format_args!("{spi_in:08x}"), spi_out = format_args!("{spi_out:08x}"),
            suite = ?chosen.suite, encap = self.encap, "CHILD_SA installed");
        self.children.push(ChildSa {
            spi_in,
            spi_out,
            chosen,
            local_ts: local_ts.clone(),
            remote_ts: remote_ts.clone(),
            rekey_at: now + rekey,
            expire_at: now + lifetime,
            rekeying: false,
        });
        let udp_encap = self.encap.then(|| UdpEncap {
            local_port: self.local.port(),
            remote_port: self.remote.port(),
        });
        self.events
            .push_back(Event::ChildSaInstalled(Box::new(ChildSaInstalled {
                ike_spis: (self.spi_i, self.spi_r),
                spi_in,
                spi_out,
                keys_in: keys.0,
                keys_out: keys.1,
                suite: chosen.suite,
                esn: chosen.esn,
                local_ts,
                remote_ts,
                local_addr: self.local,
                remote_addr: self.remote,
                udp_encap,
                replay_window: self.config.replay_window,
                rekey_at: now + rekey,
                expire_at: now + lifetime,
                rekeyed_from,
            })));
    }
}

/// KEYMAT of the first CHILD_SA (RFC 7296 section 2.17).
fn child_keys(keyed: &Keyed, chosen: &EspChosen) -> Option<ChildSaKeys> {
    keys::derive_child_sa_keys(
        keyed.chosen.suite.prf,
        keyed.keys.sk_d.as_bytes(),
        None,
        &keyed.ni,
        &keyed.nr,
        &chosen.suite,
    )
    .ok()
}
