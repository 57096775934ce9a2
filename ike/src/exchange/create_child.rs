//! CREATE_CHILD_SA for CHILD_SAs (RFC 7296 sections 1.3.1, 1.3.3, 2.8, 2.17): new and
//! rekeyed CHILD_SAs, with or without PFS.
//!
//! Request: `HDR, SK {[N(REKEY_SA)], SA, Ni, [KEi], TSi, TSr}`; response:
//! `HDR, SK {SA, Nr, [KEr], TSi, TSr}` or an error notification. KEMAT is
//! `prf+(SK_d, [g^ir (new) |] Ni | Nr)` with this exchange's nonces. Rekeying is
//! make-before-break: the new pair is installed (its event names the old inbound SPI), then
//! the rekey initiator deletes the old pair with an INFORMATIONAL DELETE.
//!
//! A request with an IKE proposal rekeys the IKE SA ([`super::rekey_ike`]).
//!
//! Simultaneous rekeys of one CHILD_SA (section 2.8.1) both complete; the pair made with the
//! lowest of the four nonces is then deleted by its maker, the old pair by the other side.
//!
//! Not yet: retrying our rekey after INVALID_KE_PAYLOAD (the old CHILD_SA is then left to
//! expire, and renegotiated).

use std::time::{Duration, Instant};

use rand_core::CryptoRng;
use tracing::{info, warn};
use vpn_ike_crypto::dh::DhPrivateKey;
use vpn_ike_crypto::keys;

use crate::codec::{
    self, DhGroup as WireDh, ExchangeType, KeyExchange, Notify, NotifyType, Payload, ProtocolId,
};
use crate::exchange::auth::random_child_spi;
use crate::exchange::init::{first_error, nonce};
use crate::proposal;
use crate::sa::{ChildRekey, Op, PendingKind, RekeyCollision, SaCore, State};
use crate::stats::DropReason;
use crate::ts;

/// How long to wait before trying a failed rekey again.
const REKEY_RETRY: Duration = Duration::from_secs(30);

fn notify(t: NotifyType, data: Vec<u8>) -> Payload {
    Payload::Notify(Notify::new(t, data))
}

impl SaCore {
    /// Starts rekeying the CHILD_SA with inbound SPI `old_spi_in`.
    pub(crate) fn send_rekey_child(
        &mut self,
        now: Instant,
        old_spi_in: u32,
        rng: &mut dyn CryptoRng,
    ) {
        let Some(child) = self.children.iter_mut().find(|c| c.spi_in == old_spi_in) else {
            return;
        };
        child.rekeying = true;
        let (local_ts, remote_ts) = (child.local_ts.clone(), child.remote_ts.clone());
        let new_spi_in = random_child_spi(rng);
        let ni = nonce(rng);
        let pfs = self
            .config
            .esp_proposals
            .first()
            .and_then(|p| p.dh.first())
            .copied();
        let dh = pfs.map(|g| DhPrivateKey::generate(g, rng));
        let mut inner = vec![Payload::Notify(Notify {
            protocol: ProtocolId::Esp,
            spi: old_spi_in.to_be_bytes().to_vec(),
            notify_type: NotifyType::RekeySa,
            data: Vec::new(),
        })];
        inner.push(Payload::SecurityAssociation(proposal::esp_sa_payload(
            &self.config.esp_proposals,
            new_spi_in,
            true,
        )));
        inner.push(Payload::Nonce(ni.clone()));
        if let Some(dh) = &dh {
            inner.push(Payload::KeyExchange(KeyExchange {
                group: WireDh::from_value(dh.group().transform_id()),
                data: dh.public_value().to_vec(),
            }));
        }
        // TSi is the side of the exchange's initiator (RFC 7296 section 2.9): ours.
        inner.push(Payload::TsInitiator(ts::to_payload(&local_ts)));
        inner.push(Payload::TsResponder(ts::to_payload(&remote_ts)));
        info!(spi_in = format_args!("{old_spi_in:08x}"), pfs = ?pfs, "rekeying CHILD_SA");
        self.rekey = Some(ChildRekey {
            old_spi_in,
            new_spi_in,
            ni,
            dh,
        });
        self.send_request(
            now,
            PendingKind::RekeyChild(old_spi_in),
            ExchangeType::CreateChildSa,
            &inner,
            rng,
        );
    }

    fn rekey_failed(&mut self, now: Instant, old_spi_in: u32, why: &str) {
        warn!(
            spi_in = format_args!("{old_spi_in:08x}"),
            why, "CHILD_SA rekey failed"
        );
        if let Some(c) = self.children.iter_mut().find(|c| c.spi_in == old_spi_in) {
            c.rekeying = false;
            c.rekey_at = (now + REKEY_RETRY).min(c.expire_at);
        }
    }

    /// The response to our CREATE_CHILD_SA rekey request.
    pub(crate) fn rekey_child_response(
        &mut self,
        now: Instant,
        old_spi_in: u32,
        payloads: &[Payload],
        rng: &mut dyn CryptoRng,
    ) {
        self.pending = None;
        self.next_request_id = self.next_request_id.wrapping_add(1);
        let Some(rekey) = self.rekey.take().filter(|r| r.old_spi_in == old_spi_in) else {
            return;
        };
        if let Some(t) = first_error(payloads) {
            return self.rekey_failed(now, old_spi_in, &format!("peer answered {t:?}"));
        }
        let mut sa = None;
        let mut nr = None;
        let mut ke = None;
        let mut tsi = None;
        let mut tsr = None;
        for p in payloads {
            match p {
                Payload::SecurityAssociation(x) => sa = Some(x),
                Payload::Nonce(x) => nr = Some(x),
                Payload::KeyExchange(x) => ke = Some(x),
                Payload::TsInitiator(x) => tsi = Some(ts::from_payload(x)),
                Payload::TsResponder(x) => tsr = Some(ts::from_payload(x)),
                _ => {}
            }
        }
        let (Some(sa), Some(nr), Some(tsi), Some(tsr)) = (sa, nr, tsi, tsr) else {
            return self.rekey_failed(now, old_spi_in, "missing payloads");
        };
        let Some((chosen, spi_out)) = proposal::accept_esp(&self.config.esp_proposals, sa, true)
        else {
            return self.rekey_failed(now, old_spi_in, "proposal not offered");
        };
        let g_ir = match (chosen.dh, &rekey.dh, ke) {
            (None, _, _) => None,
            (Some(g), Some(dh), Some(ke))
                if dh.group() == g && ke.group.value() == g.transform_id() =>
            {
                match dh.compute_shared_secret(&ke.data) {
                    Ok(s) => Some(s),
                    Err(_) => return self.rekey_failed(now, old_spi_in, "KE value"),
                }
            }
            _ => return self.rekey_failed(now, old_spi_in, "KE group"),
        };
        let Some(old) = self.children.iter().find(|c| c.spi_in == old_spi_in) else {
            return;
        };
        let (local, remote) = (tsi, tsr);
        if !ts::within(&local, &old.local_ts) || !ts::within(&remote, &old.remote_ts) {
            return self.rekey_failed(now, old_spi_in, "selectors");
        }
        let State::Established(keyed) = &self.state else {
            return;
        };
        let Ok(k) = keys::derive_child_sa_keys(
            keyed.chosen.suite.prf,
            keyed.keys.sk_d.as_bytes(),
            g_ir.as_ref().map(|s| s.as_bytes()),
            &rekey.ni,
            nr,
            &chosen.suite,
        ) else {
            return self.rekey_failed(now, old_spi_in, "key derivation");
        };
        // We started this exchange: our outbound traffic is "initiator to responder" of it.
        self.install_child(
            now,
            rekey.new_spi_in,
            spi_out,
            chosen,
            (
                k.responder_to_initiator.clone(),
                k.initiator_to_responder.clone(),
            ),
            local,
            remote,
            Some(old_spi_in),
            rng,
        );
        // Make-before-break: the old pair goes once the new one is installed. In a collision
        // (section 2.8.1) the pair made with the lowest of the four nonces is redundant: its
        // maker deletes it, and the maker of the other deletes the old pair.
        let ours = rekey.ni.as_slice().min(nr.as_slice());
        match self.rekey_collision.take() {
            Some(c) if c.old_spi_in == old_spi_in && ours < c.lowest_nonce.as_slice() => {
                info!(
                    spi_in = format_args!("{:08x}", rekey.new_spi_in),
                    "our rekeyed CHILD_SA is the redundant one of a collision: deleting it"
                );
                self.ops.push_back(Op::DeleteChild(rekey.new_spi_in));
            }
            _ => self.ops.push_back(Op::DeleteChild(old_spi_in)),
        }
    }

    /// The peer's CREATE_CHILD_SA request (decrypted, state Established).
    pub(crate) fn create_child_request(
        &mut self,
        now: Instant,
        request: &[u8],
        payloads: &[Payload],
        rng: &mut dyn CryptoRng,
    ) {
        let mut sa = None;
        let mut ni = None;
        let mut ke = None;
        let mut tsi = None;
        let mut tsr = None;
        let mut rekey_spi = None;
        for p in payloads {
            match p {
                Payload::SecurityAssociation(x) => sa = Some(x),
                Payload::Nonce(x) => ni = Some(x),
                Payload::KeyExchange(x) => ke = Some(x),
                Payload::TsInitiator(x) => tsi = Some(ts::from_payload(x)),
                Payload::TsResponder(x) => tsr = Some(ts::from_payload(x)),
                Payload::Notify(n) if n.notify_type == NotifyType::RekeySa => {
                    rekey_spi = Some(
                        <[u8; 4]>::try_from(n.spi.as_slice())
                            .map(u32::from_be_bytes)
                            .unwrap_or(0),
                    );
                }
                _ => {}
            }
        }
        let respond = |s: &mut Self, inner: Vec<Payload>, rng: &mut dyn CryptoRng| {
            s.send_response(ExchangeType::CreateChildSa, request, &inner, rng);
        };
        let Some(sa) = sa else {
            self.drop_msg(DropReason::InvalidContent, "CREATE_CHILD_SA without SA");
            return respond(self, vec![notify(NotifyType::InvalidSyntax, vec![])], rng);
        };
        if sa.proposals.iter().any(|p| p.protocol == ProtocolId::Ike) {
            return self.rekey_ike_request(now, request, sa, ni, ke, rng);
        }
        let (Some(ni), Some(tsi), Some(tsr)) = (ni, tsi, tsr) else {
            return respond(self, vec![notify(NotifyType::InvalidSyntax, vec![])], rng);
        };
        // The peer names its inbound SPI of the pair, which is our outbound one.
        let old = match rekey_spi {
            Some(spi) => match self.children.iter_mut().find(|c| c.spi_out == spi) {
                Some(c) => Some(c.spi_in),
                None => {
                    let n = Payload::Notify(Notify {
                        protocol: ProtocolId::Esp,
                        spi: spi.to_be_bytes().to_vec(),
                        notify_type: NotifyType::ChildSaNotFound,
                        data: Vec::new(),
                    });
                    return respond(self, vec![n], rng);
                }
            },
            None => None,
        };
        let spi_in = random_child_spi(rng);
        let Some((prop, chosen, spi_out)) =
            proposal::select_esp(&self.config.esp_proposals, sa, spi_in, true)
        else {
            return respond(
                self,
                vec![notify(NotifyType::NoProposalChosen, vec![])],
                rng,
            );
        };
        let mut ker = None;
        let g_ir = match chosen.dh {
            None => None,
            Some(g) => match ke {
                Some(ke) if ke.group.value() == g.transform_id() => {
                    let dh = DhPrivateKey::generate(g, rng);
                    let Ok(s) = dh.compute_shared_secret(&ke.data) else {
                        return respond(self, vec![notify(NotifyType::InvalidSyntax, vec![])], rng);
                    };
                    ker = Some(KeyExchange {
                        group: WireDh::from_value(g.transform_id()),
                        data: dh.public_value().to_vec(),
                    });
                    Some(s)
                }
                _ => {
                    let data = g.transform_id().to_be_bytes().to_vec();
                    return respond(self, vec![notify(NotifyType::InvalidKePayload, data)], rng);
                }
            },
        };
        // TSi is the side of the exchange's initiator: the peer's.
        let (peer_side, our_side) = (tsi, tsr);
        let (bound_remote, bound_local) = match old.and_then(|o| {
            self.children
                .iter()
                .find(|c| c.spi_in == o)
                .map(|c| (c.remote_ts.clone(), c.local_ts.clone()))
        }) {
            Some(x) => x,
            None => (self.config.remote_ts.clone(), self.config.local_ts.clone()),
        };
        let remote = ts::narrow(&peer_side, &bound_remote);
        let local = ts::narrow(&our_side, &bound_local);
        if remote.is_empty() || local.is_empty() {
            return respond(self, vec![notify(NotifyType::TsUnacceptable, vec![])], rng);
        }
        let nr = nonce(rng);
        let State::Established(keyed) = &self.state else {
            return;
        };
        let Ok(k) = keys::derive_child_sa_keys(
            keyed.chosen.suite.prf,
            keyed.keys.sk_d.as_bytes(),
            g_ir.as_ref().map(|s| s.as_bytes()),
            ni,
            &nr,
            &chosen.suite,
        ) else {
            return respond(
                self,
                vec![notify(NotifyType::NoProposalChosen, vec![])],
                rng,
            );
        };
        // Section 2.8.1: the peer rekeys what we are rekeying too; keep this exchange's lowest
        // nonce to decide, once ours completes, which of the two new pairs is redundant.
        if let Some(o) = old
            && self.rekey.as_ref().is_some_and(|r| r.old_spi_in == o)
        {
            info!(
                spi_in = format_args!("{o:08x}"),
                "simultaneous CHILD_SA rekey"
            );
            self.rekey_collision = Some(RekeyCollision {
                old_spi_in: o,
                lowest_nonce: ni.as_slice().min(nr.as_slice()).to_vec(),
            });
        }
        let mut inner = vec![
            Payload::SecurityAssociation(codec::SecurityAssociation {
                proposals: vec![prop],
            }),
            Payload::Nonce(nr),
        ];
        if let Some(ker) = ker {
            inner.push(Payload::KeyExchange(ker));
        }
        inner.push(Payload::TsInitiator(ts::to_payload(&remote)));
        inner.push(Payload::TsResponder(ts::to_payload(&local)));
        respond(self, inner, rng);
        if let Some(o) = old
            && let Some(c) = self.children.iter_mut().find(|c| c.spi_in == o)
        {
            // The peer replaces it and will delete it.
            c.rekeying = true;
        }
        // The peer started this exchange: our inbound traffic is "initiator to responder".
        self.install_child(
            now,
            spi_in,
            spi_out,
            chosen,
            (
                k.initiator_to_responder.clone(),
                k.responder_to_initiator.clone(),
            ),
            local,
            remote,
            old,
            rng,
        );
    }
}
