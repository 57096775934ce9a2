//! NAT-keepalives (RFC 3948 section 2.3) and UNSUPPORTED_CRITICAL_PAYLOAD (RFC 7296 section
//! 2.5) for IKE_SA_INIT. The encrypted-request case is a unit test in `src/endpoint.rs`, where
//! the IKE SA keys are at hand.

use std::time::Duration;

use vpn_ike::codec::{ExchangeType, Flags, Message, MessageId, NotifyType, Payload, Spi};
use vpn_ike::{DropReason, Listener, NAT_KEEPALIVE, SaState};

use crate::harness::*;

/// The NAT-keepalives in the log.
fn keepalives(net: &Net) -> Vec<&Flight> {
    net.log
        .iter()
        .filter(|f| f.payload == NAT_KEEPALIVE)
        .collect()
}

#[test]
fn the_side_behind_a_nat_sends_keepalives_every_20_seconds() {
    let mut net = Net::with_nat(config_a(), config_b());
    net.start();
    assert_eq!(net.a.state(), SaState::Established);
    net.run_until(70);
    let sent = keepalives(&net);
    // At 20, 40 and 60 s, from A (behind the NAT) on 4500 to B's 4500, no marker.
    assert_eq!(sent.len(), 3, "{:?}", net.log.len());
    for f in &sent {
        assert_eq!(f.dir, Dir::AtoB);
        assert_eq!((f.from.port(), f.to.port()), (4500, 4500));
        assert_eq!(f.payload, vec![0xff]);
    }
    assert_eq!(net.a.stats().nat_keepalives_sent, 3);
    // B takes them as keepalives, not as malformed datagrams, and the SA lives on.
    assert_eq!(net.b.stats().nat_keepalives_received, 3);
    assert_eq!(net.b.stats().dropped(DropReason::NoNonEspMarker), 0);
    assert_eq!(net.b.stats().dropped_total(), 0);
    assert_eq!(net.a.state(), SaState::Established);
    assert_eq!(established(&net.b_events), 1);
}

#[test]
fn no_keepalives_without_a_nat_in_front_of_us_or_when_disabled() {
    // No NAT at all.
    let mut net = Net::new(config_a(), config_b());
    net.start();
    net.run_until(70);
    assert!(keepalives(&net).is_empty());
    assert_eq!(net.a.stats().nat_keepalives_sent, 0);
    // Behind a NAT, but keepalives disabled.
    let mut a = config_a();
    a.nat_keepalive = None;
    let mut net = Net::with_nat(a, config_b());
    net.start();
    net.run_until(70);
    assert!(keepalives(&net).is_empty());
    // A shorter interval is honoured.
    let mut a = config_a();
    a.nat_keepalive = Some(Duration::from_secs(5));
    a.dpd = None;
    let mut net = Net::with_nat(a, config_b());
    net.start();
    net.run_until(31);
    assert_eq!(keepalives(&net).len(), 6);
}

/// An IKE_SA_INIT request whose only payload is of unknown type 200 with the critical bit.
fn init_with_critical_payload(spi_i: Spi) -> Vec<u8> {
    let msg = Message {
        initiator_spi: spi_i,
        responder_spi: Spi::ZERO,
        exchange_type: ExchangeType::IkeSaInit,
        flags: Flags::new(true, false),
        message_id: MessageId(0),
        payloads: vec![Payload::Unknown {
            payload_type: 200,
            data: vec![1, 2, 3, 4],
        }],
    };
    let mut bytes = msg.encode().unwrap();
    // The generic payload header follows the 28-byte IKE header; octet 1 holds the C bit.
    bytes[29] |= 0x80;
    bytes
}

#[test]
fn ike_sa_init_with_an_unknown_critical_payload_is_answered() {
    let mut b = Listener::new(vec![config_b()], TestRng(9)).unwrap();
    let now = std::time::Instant::now();
    let spi = Spi::from(0x1122_3344_5566_7788);
    let (from, to) = (sock(A_IP, 500), sock(B_IP, 500));
    b.handle_datagram(now, from, to, &init_with_critical_payload(spi));
    let t = b.poll_transmit().expect("an answer");
    assert_eq!((t.from, t.to), (to, from));
    let reply = Message::decode(&t.bytes).unwrap();
    assert_eq!(reply.initiator_spi, spi);
    assert!(reply.responder_spi.is_zero());
    assert!(reply.flags.response());
    let [Payload::Notify(n)] = reply.payloads.as_slice() else {
        panic!("{:?}", reply.payloads)
    };
    assert_eq!(n.notify_type, NotifyType::UnsupportedCriticalPayload);
    assert_eq!(n.data, vec![200]);
    assert!(b.sa_spis().is_empty(), "no state kept");
    assert_eq!(b.stats().unsupported_critical_payloads, 1);
    assert!(b.poll_transmit().is_none());

    // Without the critical bit the unknown payload is skipped (RFC 7296 section 2.5): the
    // request then lacks SA, KE and Ni and is dropped, unanswered.
    let mut bytes = init_with_critical_payload(spi);
    bytes[29] &= 0x7f;
    b.handle_datagram(now, from, to, &bytes);
    assert!(b.poll_transmit().is_none());
    assert_eq!(b.stats().dropped(DropReason::InvalidContent), 1);
    // A response with an unknown critical payload is never answered.
    let mut bytes = init_with_critical_payload(spi);
    bytes[19] = Flags::new(false, true).bits();
    b.handle_datagram(now, from, to, &bytes);
    assert!(b.poll_transmit().is_none());
}
