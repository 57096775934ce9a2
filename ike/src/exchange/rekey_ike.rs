//! IKE SA rekeying answered (RFC 7296 sections 1.3.2 and 2.18): the peer's CREATE_CHILD_SA
//! `HDR, SK {SA, Ni, KEi}` with an IKE proposal carrying its new SPI gets
//! `HDR, SK {SA, Nr, KEr}`; the new IKE SA (the peer is its initiator) has keys from
//! `SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)` and inherits every CHILD_SA, which stay
//! in the datapath untouched. The old IKE SA ends when the peer deletes it, quietly
//! ([`CloseReason::Rekeyed`]). Starting an IKE SA rekey ourselves is not done yet.

use std::time::Instant;

use rand_core::CryptoRng;
use tracing::info;
use vpn_ike_crypto::{dh::DhGroup, dh::DhPrivateKey, keys};

use crate::codec::{
    DhGroup as WireDh, ExchangeType, KeyExchange, Notify, NotifyType, Payload, SecurityAssociation,
};
use crate::events::Event;
use crate::exchange::init::{nonce, random_spi};
use crate::proposal;
use crate::sa::{Keyed, SaCore, State};

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

        let mut new = SaCore::new(self.config.clone(), false, now);
        new.spi_i = crate::codec::Spi(peer_spi);
        new.spi_r = our_spi;
        new.local = self.local;
        new.remote = self.remote;
        new.encap = self.encap;
        new.nat_detected = self.nat_detected;
        new.children = std::mem::take(&mut self.children);
        new.state = State::Established(Box::new(Keyed {
            chosen,
            keys: new_keys,
            tx,
            rx,
            ni: ni.clone(),
            nr,
        }));
        new.events.push_back(Event::IkeSaEstablished {
            spis: (new.spi_i, new.spi_r),
            initiator: false,
            local_addr: new.local,
            remote_addr: new.remote,
            nat_detected: new.nat_detected,
            lifetime: new.config.lifetimes.ike,
        });
        info!(
            old_spi_i = %self.spi_i, old_spi_r = %self.spi_r,
            new_spi_i = %new.spi_i, new_spi_r = %new.spi_r,
            children = new.children.len(),
            "IKE SA rekeyed by the peer"
        );
        self.rekeyed = true;
        self.successor = Some(Box::new(new));
    }
}
