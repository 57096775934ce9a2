//! INFORMATIONAL exchanges (RFC 7296 sections 1.4, 2.4): liveness checks (an empty request,
//! "DPD"), DELETE of CHILD_SAs (the responder answers with the SPIs of its own half of each
//! pair) and of the IKE SA (answered with an empty response), and error notifications.

use std::time::Instant;

use rand_core::CryptoRng;
use tracing::info;

use crate::codec::{Delete, ExchangeType, NotifyType, Payload, ProtocolId};
use crate::events::{CloseReason, Event};
use crate::sa::{PendingKind, SaCore};

impl SaCore {
    pub(crate) fn send_dpd(&mut self, now: Instant, rng: &mut dyn CryptoRng) {
        self.send_request(now, PendingKind::Dpd, ExchangeType::Informational, &[], rng);
    }

    pub(crate) fn send_delete_ike(&mut self, now: Instant, rng: &mut dyn CryptoRng) {
        let d = Payload::Delete(Delete {
            protocol: ProtocolId::Ike,
            spis: Vec::new(),
        });
        info!(spi_i = %self.spi_i, "deleting IKE SA");
        self.send_request(
            now,
            PendingKind::DeleteIke,
            ExchangeType::Informational,
            &[d],
            rng,
        );
    }

    pub(crate) fn send_delete_child(&mut self, now: Instant, spi_in: u32, rng: &mut dyn CryptoRng) {
        if !self.children.iter().any(|c| c.spi_in == spi_in) {
            return;
        }
        let d = Payload::Delete(Delete {
            protocol: ProtocolId::Esp,
            spis: vec![spi_in],
        });
        self.send_request(
            now,
            PendingKind::DeleteChild(spi_in),
            ExchangeType::Informational,
            &[d],
            rng,
        );
    }

    pub(crate) fn remove_child_by(&mut self, pred: impl Fn(u32, u32) -> bool) -> Vec<u32> {
        let mut removed = Vec::new();
        let mut i = 0;
        while i < self.children.len() {
            let c = &self.children[i];
            if pred(c.spi_in, c.spi_out) {
                let c = self.children.remove(i);
                info!(
                    spi_in = format_args!("{:08x}", c.spi_in),
                    "CHILD_SA deleted"
                );
                self.events.push_back(Event::ChildSaDeleted {
                    spi_in: c.spi_in,
                    spi_out: c.spi_out,
                });
                removed.push(c.spi_in);
            } else {
                i += 1;
            }
        }
        removed
    }

    /// The peer's INFORMATIONAL request (decrypted, state Established).
    pub(crate) fn informational_request(
        &mut self,
        request: &[u8],
        payloads: &[Payload],
        rng: &mut dyn CryptoRng,
    ) {
        let mut delete_ike = false;
        let mut auth_failed = false;
        let mut peer_spis: Vec<u32> = Vec::new();
        for p in payloads {
            match p {
                Payload::Delete(d) if d.protocol == ProtocolId::Ike => delete_ike = true,
                Payload::Delete(d) if d.protocol == ProtocolId::Esp => {
                    peer_spis.extend(&d.spis);
                }
                Payload::Notify(n) if n.notify_type == NotifyType::AuthenticationFailed => {
                    auth_failed = true;
                }
                _ => {}
            }
        }
        if delete_ike || auth_failed {
            self.send_response(ExchangeType::Informational, request, &[], rng);
            self.close(if delete_ike {
                CloseReason::PeerDeleted
            } else {
                CloseReason::AuthenticationFailed
            });
            return;
        }
        // The peer names its inbound SPIs, which are our outbound ones.
        let ours = self.remove_child_by(|_, out| peer_spis.contains(&out));
        let inner = if ours.is_empty() {
            Vec::new()
        } else {
            vec![Payload::Delete(Delete {
                protocol: ProtocolId::Esp,
                spis: ours,
            })]
        };
        self.send_response(ExchangeType::Informational, request, &inner, rng);
    }

    /// The response to our INFORMATIONAL request.
    pub(crate) fn informational_response(&mut self, kind: PendingKind, _payloads: &[Payload]) {
        self.pending = None;
        self.next_request_id = self.next_request_id.wrapping_add(1);
        match kind {
            PendingKind::DeleteIke => self.close(CloseReason::LocalClose),
            PendingKind::DeleteChild(spi_in) => {
                self.remove_child_by(|inb, _| inb == spi_in);
            }
            _ => {}
        }
    }
}
