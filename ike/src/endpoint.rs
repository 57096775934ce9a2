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

    fn key(name: &str) -> vpn_ike_crypto::auth::SigningKey {
        let path = format!(
            "{}/../ike-crypto/tests/keys/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        vpn_ike_crypto::auth::SigningKey::from_pem(&std::fs::read(path).unwrap()).unwrap()
    }

    /// A signs with an RSA key, B with an Ed25519 key; each knows the other's public key.
    fn key_configs() -> (PeerConfig, PeerConfig) {
        use crate::config::{Auth, KeyAuth, SignatureMode};
        let mode = SignatureMode::DigitalSignature {
            rsa: vpn_ike_crypto::auth::RsaPadding::Pss,
        };
        let auth = |own: &str, peer: &str| {
            Auth::PublicKey(Box::new(KeyAuth {
                local_key: Arc::new(key(own)),
                peer_key: key(peer).verifying_key(),
                mode,
            }))
        };
        let mut a = config("198.51.100.1:500", "198.51.100.2:500");
        a.auth = auth("rsa2048.pkcs8.pem", "ed25519.pkcs8.pem");
        let mut b = config("198.51.100.2:500", "198.51.100.1:500");
        b.auth = auth("ed25519.pkcs8.pem", "rsa2048.pkcs8.pem");
        (a, b)
    }

    /// IKE_SA_INIT done; A's IKE_AUTH request is returned, not delivered.
    fn until_auth(now: Instant) -> (IkeSa<TestRng>, Listener<TestRng>, Transmit) {
        let (ac, bc) = key_configs();
        let mut a = IkeSa::initiator(ac, TestRng(1), now).unwrap();
        let mut b = Listener::new(vec![bc], TestRng(2)).unwrap();
        a.initiate(now);
        let init = a.poll_transmit().unwrap();
        b.handle_datagram(now, init.from, init.to, &init.datagram());
        let reply = b.poll_transmit().unwrap();
        a.handle_datagram(now, reply.from, reply.to, &reply.datagram());
        let auth = a.poll_transmit().unwrap();
        assert!(matches!(a.core.state, State::AuthSent(_)));
        (a, b, auth)
    }

    /// Replaces the AUTH payload of an encrypted IKE_AUTH message, keeping everything else.
    fn with_auth(
        bytes: &[u8],
        cipher: &vpn_ike_crypto::ike_cipher::SkCipher,
        auth: &codec::Authentication,
    ) -> Vec<u8> {
        let msg = Message::decode(bytes).unwrap();
        let opened = sk::open(bytes, &msg, cipher).unwrap();
        let payloads: Vec<Payload> = opened
            .payloads
            .into_iter()
            .map(|p| match p {
                Payload::Authentication(_) => Payload::Authentication(auth.clone()),
                other => other,
            })
            .collect();
        let h = OutHeader {
            spi_i: msg.initiator_spi,
            spi_r: msg.responder_spi,
            exchange: msg.exchange_type,
            flags: msg.flags,
            message_id: msg.message_id.0,
        };
        sk::seal(h, &payloads, cipher, &mut TestRng(5)).unwrap()
    }

    fn genuine_auth(
        bytes: &[u8],
        cipher: &vpn_ike_crypto::ike_cipher::SkCipher,
    ) -> codec::Authentication {
        let msg = Message::decode(bytes).unwrap();
        sk::open(bytes, &msg, cipher)
            .unwrap()
            .payloads
            .into_iter()
            .find_map(|p| match p {
                Payload::Authentication(a) => Some(a),
                _ => None,
            })
            .unwrap()
    }

    /// AUTH payloads that must all be refused: malformed RFC 7427 framing, unknown or
    /// mismatched algorithms, a wrong method, and a genuine signature with one bit flipped.
    fn bad_auths(genuine: &codec::Authentication) -> Vec<(&'static str, codec::Authentication)> {
        use crate::codec::AuthMethod as M;
        let ds = |data: Vec<u8>| codec::Authentication {
            method: M::DigitalSignature,
            data,
        };
        let alg_len = usize::from(genuine.data[0]);
        let mut flipped = genuine.clone();
        *flipped.data.last_mut().unwrap() ^= 1;
        let mut truncated = genuine.clone();
        truncated.data.truncate(1 + alg_len + 10);
        // sha1WithRSAEncryption: not accepted.
        let sha1_rsa = [
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05,
            0x00,
        ];
        let mut unknown_alg = vec![sha1_rsa.len() as u8];
        unknown_alg.extend_from_slice(&sha1_rsa);
        unknown_alg.extend_from_slice(&genuine.data[1 + alg_len..]);
        // Another key type's AlgorithmIdentifier in front of the signature.
        use vpn_ike_crypto::auth::SignatureScheme;
        let other =
            if genuine.data[1..=alg_len] == *SignatureScheme::Ed25519.algorithm_identifier() {
                SignatureScheme::RsaPssSha256
            } else {
                SignatureScheme::Ed25519
            }
            .algorithm_identifier();
        let mut mismatched = vec![other.len() as u8];
        mismatched.extend_from_slice(other);
        mismatched.extend_from_slice(&genuine.data[1 + alg_len..]);
        vec![
            ("tampered signature", flipped),
            ("truncated signature", truncated),
            ("empty", ds(Vec::new())),
            ("length beyond the data", ds(vec![0xff, 0x30, 0x00])),
            (
                "only an AlgorithmIdentifier",
                ds(genuine.data[..=alg_len].to_vec()),
            ),
            ("unsupported algorithm", ds(unknown_alg)),
            ("algorithm of another key type", ds(mismatched)),
            (
                "method 1 garbage",
                codec::Authentication {
                    method: M::RsaSig,
                    data: vec![0xff; 4096],
                },
            ),
            (
                "a PSK MIC",
                codec::Authentication {
                    method: M::SharedKeyMic,
                    data: vec![7; 32],
                },
            ),
            (
                "RFC 4754 ECDSA method",
                codec::Authentication {
                    method: M::EcdsaSha256P256,
                    data: vec![1; 64],
                },
            ),
        ]
    }

    #[test]
    fn key_handshake_completes_when_untouched() {
        let now = Instant::now();
        let (mut a, mut b, auth) = until_auth(now);
        b.handle_datagram(now, auth.from, auth.to, &auth.datagram());
        pump(&mut a, &mut b, now);
        assert_eq!(a.state(), SaState::Established);
    }

    /// The responder refuses every bad AUTH of the initiator with AUTHENTICATION_FAILED,
    /// counts it, keeps nothing, and never panics.
    #[test]
    fn responder_refuses_bad_signatures() {
        let now = Instant::now();
        let (a, _, auth) = until_auth(now);
        let State::AuthSent(s) = &a.core.state else {
            unreachable!()
        };
        let genuine = genuine_auth(&auth.bytes, &s.keyed.tx);
        for (what, bad) in bad_auths(&genuine) {
            let (a, mut b, auth) = until_auth(now);
            let State::AuthSent(s) = &a.core.state else {
                unreachable!()
            };
            let forged = with_auth(&auth.bytes, &s.keyed.tx, &bad);
            b.handle_datagram(now, auth.from, auth.to, &forged);
            let t = b
                .poll_transmit()
                .unwrap_or_else(|| panic!("{what}: no answer"));
            let msg = Message::decode(&t.bytes).unwrap();
            let opened = sk::open(&t.bytes, &msg, &s.keyed.rx).unwrap();
            assert!(
                matches!(opened.payloads.as_slice(),
                    [Payload::Notify(n)] if n.notify_type == NotifyType::AuthenticationFailed),
                "{what}: {:?}",
                opened.payloads
            );
            assert_eq!(b.stats().authentication_failures, 1, "{what}");
            let mut events = Vec::new();
            while let Some(e) = b.poll_event() {
                events.push(e.event);
            }
            assert!(
                !events.iter().any(|e| matches!(
                    e,
                    Event::IkeSaEstablished { .. } | Event::ChildSaInstalled(_)
                )),
                "{what}: {events:?}"
            );
            assert!(b.sa_spis().is_empty(), "{what}");
        }
    }

    /// The initiator refuses every bad AUTH of the responder: closed, counted, no CHILD_SA.
    #[test]
    fn initiator_refuses_bad_signatures() {
        let now = Instant::now();
        for index in 0.. {
            let (mut a, mut b, auth) = until_auth(now);
            b.handle_datagram(now, auth.from, auth.to, &auth.datagram());
            let reply = b.poll_transmit().unwrap();
            let State::AuthSent(s) = &a.core.state else {
                unreachable!()
            };
            let genuine = genuine_auth(&reply.bytes, &s.keyed.rx);
            let bads = bad_auths(&genuine);
            let Some((what, bad)) = bads.get(index) else {
                break;
            };
            let forged = with_auth(&reply.bytes, &s.keyed.rx, bad);
            a.handle_datagram(now, reply.from, reply.to, &forged);
            assert_eq!(a.state(), SaState::Closed, "{what}");
            assert_eq!(a.stats().authentication_failures, 1, "{what}");
            let mut events = Vec::new();
            while let Some(e) = a.poll_event() {
                events.push(e);
            }
            assert!(
                events.iter().any(|e| matches!(
                    e,
                    Event::IkeSaClosed {
                        reason: CloseReason::AuthenticationFailed
                    }
                )),
                "{what}: {events:?}"
            );
            assert!(
                !events.iter().any(|e| matches!(
                    e,
                    Event::IkeSaEstablished { .. } | Event::ChildSaInstalled(_)
                )),
                "{what}: {events:?}"
            );
        }
    }
}
