//! IKE SA rekeying (RFC 7296 sections 1.3.2 and 2.18): CREATE_CHILD_SA
//! `HDR, SK {SA, Ni, KEi}` with an IKE proposal carrying the rekey initiator's new SPI, answered
//! with `HDR, SK {SA, Nr, KEr}`. The new IKE SA (whose initiator is the rekey's initiator) has
//! keys from `SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)` and inherits every CHILD_SA,
//! which stay in the datapath untouched; the rekey's initiator then deletes the old IKE SA,
//! whose end is quiet ([`crate::CloseReason::Rekeyed`]). We rekey at the IKE lifetime (minus
//! the fuzzed margin). A rekey request while ours is in flight gets TEMPORARY_FAILURE
//! (section 2.25); the side that gets it tries again later, so with fuzzed lifetimes one of
//! the two goes through.

use std::time::{Duration, Instant};

use rand_core::CryptoRng;
use tracing::info;
use vpn_ike_crypto::{dh::DhGroup, dh::DhPrivateKey, keys};

use crate::codec::{
    DhGroup as WireDh, ExchangeType, KeyExchange, Notify, NotifyType, Payload, SecurityAssociation,
};
use crate::events::Event;
use crate::exchange::init::{first_error, nonce, random_spi};
use crate::proposal;
use crate::sa::{IkeRekey, Keyed, PendingKind, SaCore, State};

/// How long after a failed IKE SA rekey we try again, at least; a random part up to as much
/// again keeps two colliding peers (TEMPORARY_FAILURE both ways) from colliding again.
const IKE_REKEY_RETRY: Duration = Duration::from_secs(30);

fn notify(t: NotifyType, data: Vec<u8>) -> Payload {
    Payload::Notify(Notify::new(t, data))
}

impl SaCore {
    /// The peer's CREATE_CHILD_SA request that rekeys this IKE SA.
    pub(crate) fn rekey_ike_request(
        &mut self,
        now: Instant,
        request: &[u8],
        sa: &SecurityAssociation,
        ni: Option<&Vec<u8>>,
        ke: Option<&KeyExchange>,
        rng: &mut dyn CryptoRng,
    ) {
        let respond = |s: &mut Self, inner: Vec<Payload>, rng: &mut dyn CryptoRng| {
            s.send_response(ExchangeType::CreateChildSa, request, &inner, rng);
        };
        // Section 2.18: SA, Ni and KEi are all required.
        let (Some(ni), Some(ke)) = (ni, ke) else {
            return respond(self, vec![notify(NotifyType::InvalidSyntax, vec![])], rng);
        };
        if self.successor.is_some() || self.rekeyed {
            return respond(self, vec![notify(NotifyType::NoAdditionalSas, vec![])], rng);
        }
        if self.ike_rekey.is_some() {
            info!("IKE SA rekey collision: ours is in flight, the peer's is refused for now");
            return respond(
                self,
                vec![notify(NotifyType::TemporaryFailure, vec![])],
                rng,
            );
        }
        let peer_group = DhGroup::from_transform_id(ke.group.value());
        let Some((mut prop, chosen, peer_spi)) =
            proposal::select_ike_rekey(&self.config.ike_proposals, sa, peer_group)
        else {
            info!("IKE SA rekey: no acceptable proposal");
            return respond(
                self,
                vec![notify(NotifyType::NoProposalChosen, vec![])],
                rng,
            );
        };
        if Some(chosen.dh) != peer_group {
            let data = chosen.dh.transform_id().to_be_bytes().to_vec();
            return respond(self, vec![notify(NotifyType::InvalidKePayload, data)], rng);
        }
        let State::Established(old) = &self.state else {
            return;
        };
        let dh = DhPrivateKey::generate(chosen.dh, rng);
        let Ok(g_ir) = dh.compute_shared_secret(&ke.data) else {
            return respond(self, vec![notify(NotifyType::InvalidSyntax, vec![])], rng);
        };
        let our_spi = random_spi(rng);
        let nr = nonce(rng);
        let skeyseed = keys::rekey_skeyseed(
            old.chosen.suite.prf,
            old.keys.sk_d.as_bytes(),
            g_ir.as_bytes(),
            ni,
            &nr,
        );
        // The peer started the rekey: it is the new IKE SA's initiator.
        let derived = keys::derive_ike_sa_keys(
            &chosen.suite,
            skeyseed.as_bytes(),
            ni,
            &nr,
            &peer_spi,
            &our_spi.0,
        );
        let Ok(new_keys) = derived else {
            return respond(
                self,
                vec![notify(NotifyType::NoProposalChosen, vec![])],
                rng,
            );
        };
        let (Ok(tx), Ok(rx)) = (
            new_keys.responder_cipher(&chosen.suite),
            new_keys.initiator_cipher(&chosen.suite),
        ) else {
            return respond(
                self,
                vec![notify(NotifyType::NoProposalChosen, vec![])],
                rng,
            );
        };
        prop.spi = our_spi.0.to_vec();
        let ker = KeyExchange {
            group: WireDh::from_value(chosen.dh.transform_id()),
            data: dh.public_value().to_vec(),
        };
        respond(
            self,
            vec![
                Payload::SecurityAssociation(SecurityAssociation {
                    proposals: vec![prop],
                }),
                Payload::Nonce(nr.clone()),
                Payload::KeyExchange(ker),
            ],
            rng,
        );

        let keyed = Keyed {
            chosen,
            keys: new_keys,
            tx,
            rx,
            ni: ni.clone(),
            nr,
        };
        self.hand_over(now, false, (crate::codec::Spi(peer_spi), our_spi), keyed);
    }

    /// Starts rekeying this IKE SA: a new SPI, nonce and DH value in the current SA's group.
    pub(crate) fn send_rekey_ike(&mut self, now: Instant, rng: &mut dyn CryptoRng) {
        let State::Established(keyed) = &self.state else {
            return;
        };
        let group = keyed.chosen.dh;
        let spi = random_spi(rng);
        let ni = nonce(rng);
        let dh = DhPrivateKey::generate(group, rng);
        let mut sa = proposal::ike_sa_payload(&self.config.ike_proposals);
        for p in &mut sa.proposals {
            p.spi = spi.0.to_vec();
        }
        let inner = vec![
            Payload::SecurityAssociation(sa),
            Payload::Nonce(ni.clone()),
            Payload::KeyExchange(KeyExchange {
                group: WireDh::from_value(group.transform_id()),
                data: dh.public_value().to_vec(),
            }),
        ];
        info!(spi_i = %self.spi_i, spi_r = %self.spi_r, new_spi = %spi, "rekeying the IKE SA");
        self.ike_rekey = Some(IkeRekey { spi, ni, dh });
        self.send_request(
            now,
            PendingKind::RekeyIke,
            ExchangeType::CreateChildSa,
            &inner,
            rng,
        );
    }

    /// The response to our IKE SA rekey: on success the new IKE SA takes the CHILD_SAs and
    /// this one is deleted.
    pub(crate) fn rekey_ike_response(
        &mut self,
        now: Instant,
        payloads: &[Payload],
        rng: &mut dyn CryptoRng,
    ) {
        self.pending = None;
        self.next_request_id = self.next_request_id.wrapping_add(1);
        let Some(rekey) = self.ike_rekey.take() else {
            return;
        };
        let jitter = IKE_REKEY_RETRY.mul_f64(f64::from(rng.next_u32()) / f64::from(u32::MAX));
        let failed = |s: &mut Self, why: &str| {
            tracing::warn!(why, "IKE SA rekey failed; trying again later");
            s.ike_rekey_at = Some(now + IKE_REKEY_RETRY + jitter);
        };
        if let Some(t) = first_error(payloads) {
            return failed(self, &format!("peer answered {t:?}"));
        }
        let (mut sa, mut nr, mut ke) = (None, None, None);
        for p in payloads {
            match p {
                Payload::SecurityAssociation(x) => sa = Some(x),
                Payload::Nonce(x) => nr = Some(x),
                Payload::KeyExchange(x) => ke = Some(x),
                _ => {}
            }
        }
        let (Some(sa), Some(nr), Some(ke)) = (sa, nr, ke) else {
            return failed(self, "SA, Nr or KEr missing");
        };
        let [p] = sa.proposals.as_slice() else {
            return failed(self, "not one proposal");
        };
        let Ok(peer_spi) = <[u8; 8]>::try_from(p.spi.as_slice()) else {
            return failed(self, "the peer's SPI is not 8 bytes");
        };
        let mut plain = sa.clone();
        plain.proposals[0].spi.clear();
        let Some(chosen) = proposal::accept_ike(&self.config.ike_proposals, &plain) else {
            return failed(self, "the peer chose what we did not propose");
        };
        if chosen.dh != rekey.dh.group() || ke.group.value() != chosen.dh.transform_id() {
            return failed(self, "KE group");
        }
        let State::Established(old) = &self.state else {
            return;
        };
        let Ok(g_ir) = rekey.dh.compute_shared_secret(&ke.data) else {
            return failed(self, "KE value");
        };
        let skeyseed = keys::rekey_skeyseed(
            old.chosen.suite.prf,
            old.keys.sk_d.as_bytes(),
            g_ir.as_bytes(),
            &rekey.ni,
            nr,
        );
        let Ok(new_keys) = keys::derive_ike_sa_keys(
            &chosen.suite,
            skeyseed.as_bytes(),
            &rekey.ni,
            nr,
            &rekey.spi.0,
            &peer_spi,
        ) else {
            return failed(self, "key derivation");
        };
        let (Ok(tx), Ok(rx)) = (
            new_keys.initiator_cipher(&chosen.suite),
            new_keys.responder_cipher(&chosen.suite),
        ) else {
            return failed(self, "SK ciphers");
        };
        let keyed = Keyed {
            chosen,
            keys: new_keys,
            tx,
            rx,
            ni: rekey.ni,
            nr: nr.clone(),
        };
        self.hand_over(now, true, (rekey.spi, crate::codec::Spi(peer_spi)), keyed);
        // Section 2.18: the rekey's initiator deletes the old IKE SA.
        self.send_delete_ike(now, rng);
    }

    /// Makes the IKE SA that replaces this one, with the keys of the rekey exchange and every
    /// CHILD_SA, for the listener to take over; this one is then only waiting to be deleted.
    /// `initiator`: whether we started the rekey (and so are the new SA's initiator).
    fn hand_over(
        &mut self,
        now: Instant,
        initiator: bool,
        (spi_i, spi_r): (crate::codec::Spi, crate::codec::Spi),
        keyed: Keyed,
    ) {
        let mut new = SaCore::new(self.config.clone(), initiator, now);
        new.spi_i = spi_i;
        new.spi_r = spi_r;
        new.local = self.local;
        new.remote = self.remote;
        new.encap = self.encap;
        new.nat_detected = self.nat_detected;
        new.children = std::mem::take(&mut self.children);
        new.state = State::Established(Box::new(keyed));
        new.events.push_back(Event::IkeSaEstablished {
            spis: (new.spi_i, new.spi_r),
            initiator,
            local_addr: new.local,
            remote_addr: new.remote,
            nat_detected: new.nat_detected,
            lifetime: new.config.lifetimes.ike,
        });
        info!(
            old_spi_i = %self.spi_i, old_spi_r = %self.spi_r,
            new_spi_i = %new.spi_i, new_spi_r = %new.spi_r,
            children = new.children.len(),
            by_us = initiator,
            "IKE SA rekeyed"
        );
        self.rekeyed = true;
        self.successor = Some(Box::new(new));
    }
}
