//! COOKIE challenges and the half-open limit (RFC 7296 section 2.6), from the responder's
//! listener.

use vpn_ike::codec::{ExchangeType, Header, Message, Notify, NotifyType, Payload};
use vpn_ike::cookie::HalfOpenLimits;
use vpn_ike::{SaState, Transmit};

use crate::harness::*;

/// Whether a flight is an IKE_SA_INIT response carrying only a COOKIE.
fn is_cookie_reply(f: &Flight) -> bool {
    f.dir == Dir::BtoA
        && Message::decode(&f.payload).is_ok_and(|m| {
            m.exchange_type == ExchangeType::IkeSaInit
                && matches!(m.payloads.as_slice(), [Payload::Notify(n)] if n.notify_type == NotifyType::Cookie)
        })
}

#[test]
fn above_the_threshold_the_initiator_proves_its_address_with_a_cookie() {
    let mut net = Net::new(config_a(), config_b());
    net.b.set_half_open_limits(HalfOpenLimits {
        cookie_threshold: 0,
        max_half_open: 10,
    });
    net.start();
    // INIT -> COOKIE, INIT with the cookie -> the handshake goes on and completes.
    assert_eq!(net.log.iter().filter(|f| is_cookie_reply(f)).count(), 1);
    assert_eq!(net.b.stats().cookies_sent, 1);
    assert_eq!(net.a.state(), SaState::Established);
    assert_eq!(established(&net.b_events), 1);
}

#[test]
fn a_forged_or_stale_cookie_creates_no_state() {
    let mut net = Net::new(config_a(), config_b());
    net.b.set_half_open_limits(HalfOpenLimits {
        cookie_threshold: 0,
        max_half_open: 10,
    });
    // B answers A's first request with a COOKIE; A's retry is held back.
    let mut requests = 0;
    net.hook = Box::new(move |f| {
        if f.dir == Dir::AtoB {
            requests += 1;
        }
        if requests > 1 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    net.start();
    let first = net.log[0].clone();
    let mut msg = Message::decode(&first.payload).expect("A's IKE_SA_INIT");
    msg.payloads.insert(
        0,
        Payload::Notify(Notify::new(NotifyType::Cookie, vec![0; 33])),
    );
    let forged = msg.encode().expect("encode");
    net.b
        .handle_datagram(net.now, first.from, first.to, &forged);
    assert!(net.b.sa_spis().is_empty(), "a forged cookie made state");
    // It only gets another COOKIE.
    let reply: Transmit = net.b.poll_transmit().expect("a reply");
    let reply = Message::decode(&reply.datagram()).expect("B's reply");
    assert!(
        matches!(reply.payloads.as_slice(), [Payload::Notify(n)] if n.notify_type == NotifyType::Cookie),
        "{reply:?}"
    );
    assert_eq!(net.b.stats().cookies_sent, 2);
    // The same request with the cookie B made is accepted.
    let cookie = net
        .log
        .iter()
        .filter_map(|f| Message::decode(&f.payload).ok())
        .find_map(|m| {
            m.payloads.into_iter().find_map(|p| match p {
                Payload::Notify(n) if n.notify_type == NotifyType::Cookie => Some(n.data),
                _ => None,
            })
        });
    let mut msg = Message::decode(&first.payload).expect("A's IKE_SA_INIT");
    msg.payloads.insert(
        0,
        Payload::Notify(Notify::new(NotifyType::Cookie, cookie.expect("B's cookie"))),
    );
    net.b.handle_datagram(
        net.now,
        first.from,
        first.to,
        &msg.encode().expect("encode"),
    );
    assert_eq!(net.b.sa_spis().len(), 1, "the real cookie was refused");
}

#[test]
fn above_the_maximum_new_initiators_are_dropped() {
    let mut net = Net::new(config_a(), config_b());
    net.b.set_half_open_limits(HalfOpenLimits {
        cookie_threshold: 100,
        max_half_open: 0,
    });
    net.hook = Box::new(|f| {
        if Header::peek(&f.payload).unwrap().exchange_type == ExchangeType::IkeAuth {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    net.start();
    assert!(net.b.sa_spis().is_empty());
    assert_eq!(net.b.stats().half_open_refused, 1);
    assert!(net.log.iter().all(|f| f.dir == Dir::AtoB), "B answered");
}
