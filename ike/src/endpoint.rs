//! [`IkeSa`]: one IKE SA driven by its owner, sans-IO.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rand_core::CryptoRng;

use crate::codec::Spi;
use crate::config::{ConfigError, PeerConfig};
use crate::events::Event;
use crate::sa::{SaCore, SaState};
use crate::stats::Stats;
use crate::{Transmit, is_nat_keepalive, strip_marker};

/// One IKE SA and its CHILD_SAs, as initiator. Responders are made by [`crate::Listener`].
///
/// Feed it with [`IkeSa::initiate`], [`IkeSa::handle_datagram`], [`IkeSa::handle_timeout`],
/// [`IkeSa::close`]; after each call drain [`IkeSa::poll_transmit`] and
/// [`IkeSa::poll_event`] and sleep until [`IkeSa::poll_timeout`]. With DPD action restart, a
/// dead peer closes the SA and a new one (new SPIs) starts in the same object.
pub struct IkeSa<R> {
    core: SaCore,
    rng: R,
}

impl<R> core::fmt::Debug for IkeSa<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IkeSa")
            .field("spi_i", &self.core.spi_i)
            .field("spi_r", &self.core.spi_r)
            .field("state", &self.core.summary())
            .finish_non_exhaustive()
    }
}

impl<R: CryptoRng> IkeSa<R> {
    /// An initiator for `config`; nothing is sent before [`IkeSa::initiate`].
    pub fn initiator(config: PeerConfig, rng: R, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            core: SaCore::new(Arc::new(config), true, now),
            rng,
        })
    }

    /// Starts IKE_SA_INIT (no-op unless idle).
    pub fn initiate(&mut self, now: Instant) {
        self.core.initiate(now, &mut self.rng);
    }

    /// A UDP datagram from `from` to `to`, as received (with the non-ESP marker on the
    /// NAT-T port).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
    ) {
        if is_nat_keepalive(to, bytes, self.core.config.nat_t_port) {
            self.core.stats.nat_keepalives_received += 1;
            return;
        }
        match strip_marker(to, bytes, self.core.config.nat_t_port) {
            Ok((msg, via_nat_t)) => {
                self.core
                    .handle(now, from, to, msg, via_nat_t, &mut self.rng);
            }
            Err(reason) => self.core.drop_msg(reason, "marker"),
        }
        self.restart_if_asked(now);
    }

    /// Timers (retransmission, DPD).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now, &mut self.rng);
        self.restart_if_asked(now);
    }

    /// Deletes the IKE SA (INFORMATIONAL with Delete once established).
    pub fn close(&mut self, now: Instant) {
        self.core.request_close(now, &mut self.rng);
    }

    /// Deletes the CHILD_SA with inbound SPI `spi_in`.
    pub fn delete_child(&mut self, now: Instant, spi_in: u32) {
        self.core.request_delete_child(now, spi_in, &mut self.rng);
    }

    /// Rekeys the CHILD_SA with inbound SPI `spi_in` now (CREATE_CHILD_SA, make-before-break);
    /// it also happens by itself at the fuzzed soft lifetime.
    pub fn rekey_child(&mut self, now: Instant, spi_in: u32) {
        self.core.request_rekey_child(now, spi_in, &mut self.rng);
    }

    fn restart_if_asked(&mut self, now: Instant) {
        if !self.core.restart_requested {
            return;
        }
        let mut fresh = SaCore::new(self.core.config.clone(), true, now);
        fresh.transmits = std::mem::take(&mut self.core.transmits);
        fresh.events = std::mem::take(&mut self.core.events);
        fresh.stats = std::mem::take(&mut self.core.stats);
        self.core = fresh;
        self.core.initiate(now, &mut self.rng);
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.core.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.events.pop_front()
    }

    /// When to call [`IkeSa::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }

    /// The state.
    pub fn state(&self) -> SaState {
        self.core.summary()
    }

    /// (initiator SPI, responder SPI).
    pub fn spis(&self) -> (Spi, Spi) {
        (self.core.spi_i, self.core.spi_r)
    }

    /// Inbound SPIs of the installed CHILD_SAs.
    pub fn child_spis(&self) -> Vec<(u32, u32)> {
        self.core
            .children
            .iter()
            .map(|c| (c.spi_in, c.spi_out))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::net::SocketAddr;

    use rand_core::{TryCryptoRng, TryRng};
    use vpn_ike_crypto::dh::DhGroup;

    use super::*;
    use crate::codec::{self, ExchangeType, Flags, Message, NotifyType, Payload, PayloadType};
    use crate::config::Psk;
    use crate::events::CloseReason;
    use crate::sa::State;
    use crate::sk::{self, OutHeader};
    use crate::{Listener, SaState};

    /// splitmix64, for tests only.
    struct TestRng(u64);

    impl TryRng for TestRng {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            Ok(self.try_next_u64()? as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            Ok(z ^ (z >> 31))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            for chunk in dst.chunks_mut(8) {
                let v = self.try_next_u64()?.to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
            Ok(())
        }
    }

    impl TryCryptoRng for TestRng {}

    fn config(local: &str, remote: &str) -> PeerConfig {
        let mut c = PeerConfig::psk(
            local.parse().unwrap(),
            remote.parse().unwrap(),
            Psk::new(b"critical".to_vec()),
        );
        c.ike_proposals[0].dh = vec![DhGroup::Curve25519];
        c
    }

    fn pump(a: &mut IkeSa<TestRng>, b: &mut Listener<TestRng>, now: Instant) {
        loop {
            if let Some(t) = a.poll_transmit() {
                b.handle_datagram(now, t.from, t.to, &t.datagram());
            } else if let Some(t) = b.poll_transmit() {
                a.handle_datagram(now, t.from, t.to, &t.datagram());
            } else {
                return;
            }
        }
    }

    /// RFC 7296 section 2.5: an authenticated request with an unknown critical payload is
    /// answered with UNSUPPORTED_CRITICAL_PAYLOAD (its type as data) in the same exchange,
    /// and changes nothing else: the IKE SA and its CHILD_SA stay, the message-ID window
    /// moves on as for any answered request.
    #[test]
    fn encrypted_request_with_an_unknown_critical_payload_is_answered() {
        let now = Instant::now();
        let (a_addr, b_addr): (SocketAddr, SocketAddr) = (
            "198.51.100.1:500".parse().unwrap(),
            "198.51.100.2:500".parse().unwrap(),
        );
        let mut a = IkeSa::initiator(
            config("198.51.100.1:500", "198.51.100.2:500"),
            TestRng(1),
            now,
        )
        .unwrap();
        let mut b = Listener::new(
            vec![config("198.51.100.2:500", "198.51.100.1:500")],
            TestRng(2),
        )
        .unwrap();
        a.initiate(now);
        pump(&mut a, &mut b, now);
        assert_eq!(a.state(), SaState::Established);
        while b.poll_event().is_some() {}

        // A's next request, built by hand: INFORMATIONAL { unknown type 200, critical }.
        let id = a.core.next_request_id;
        let State::Established(keyed) = &a.core.state else {
            panic!("established")
        };
        let mut chain = codec::encode_payload_chain(&[Payload::Unknown {
            payload_type: 200,
            data: vec![9; 8],
        }])
        .unwrap();
        chain[1] |= 0x80;
        let h = OutHeader {
            spi_i: a.core.spi_i,
            spi_r: a.core.spi_r,
            exchange: ExchangeType::Informational,
            flags: Flags::new(true, false),
            message_id: id,
        };
        let request = sk::seal_chain(
            h,
            PayloadType::from_value(200),
            &chain,
            &keyed.tx,
            &mut TestRng(3),
        )
        .unwrap();
        b.handle_datagram(now, a_addr, b_addr, &request);
        let t = b.poll_transmit().expect("an answer");
        let msg = Message::decode(&t.bytes).unwrap();
        assert_eq!(msg.message_id.0, id);
        assert!(msg.flags.response());
        assert_eq!(msg.exchange_type, ExchangeType::Informational);
        let opened = sk::open(&t.bytes, &msg, &keyed.rx).unwrap();
        let [Payload::Notify(n)] = opened.payloads.as_slice() else {
            panic!("{:?}", opened.payloads)
        };
        assert_eq!(n.notify_type, NotifyType::UnsupportedCriticalPayload);
        assert_eq!(n.data, vec![200]);
        let stats = b.stats();
        assert_eq!(stats.unsupported_critical_payloads, 1);
        assert_eq!(stats.dropped_total(), 0);
        // Nothing happened to B's SAs.
        assert!(b.poll_event().is_none());
        assert_eq!(b.sa_spis().len(), 1);
        // A retransmission of it is answered from the cache.
        b.handle_datagram(now, a_addr, b_addr, &request);
        assert_eq!(b.poll_transmit().map(|t| t.bytes), Some(t.bytes.clone()));
        assert_eq!(b.stats().duplicate_requests_answered, 1);

        // A's engine did not send that request itself: move its window on, then delete the
        // IKE SA normally. B accepts the next message ID and closes on A's DELETE.
        a.core.next_request_id += 1;
        a.close(now);
        pump(&mut a, &mut b, now);
        assert_eq!(a.state(), SaState::Closed);
        let mut closed = Vec::new();
        while let Some(e) = b.poll_event() {
            if let Event::IkeSaClosed { reason } = e.event {
                closed.push(reason);
            }
        }
        assert_eq!(closed, vec![CloseReason::PeerDeleted]);
    }
}
