//! Hostile input at every step of the handshake and afterwards: truncated, tampered,
//! wrong-SPI, out-of-window and replayed datagrams are dropped and counted, and the exchange
//! ends exactly as without them.

use std::cell::RefCell;
use std::rc::Rc;

use crate::harness::*;
use vpn_ike::codec::{ExchangeType, Header};
use vpn_ike::{DropReason, Event, SaState};

/// Variants of an unencrypted IKE_SA_INIT message that must all be rejected.
fn init_variants(p: &[u8], to_initiator: bool) -> Vec<Vec<u8>> {
    let mut v = vec![
        Vec::new(),
        p[..10].to_vec(),
        p[..p.len() - 1].to_vec(),
        [p, &[0u8][..]].concat(),
    ];
    let mut major = p.to_vec();
    major[17] = 0x30;
    v.push(major);
    let mut mid = p.to_vec();
    mid[23] ^= 1;
    v.push(mid);
    if to_initiator {
        let mut spi = p.to_vec();
        spi[0] ^= 0xff;
        v.push(spi);
        // A request (R flag clear) where a response is due.
        let mut flags = p.to_vec();
        flags[19] &= !0x20;
        v.push(flags);
    }
    v
}

/// Variants of an encrypted message that must all be rejected.
fn encrypted_variants(p: &[u8]) -> Vec<Vec<u8>> {
    let n = p.len();
    let mut icv = p.to_vec();
    icv[n - 1] ^= 1;
    let mut ct = p.to_vec();
    ct[n - 20] ^= 0x80;
    let mut iv = p.to_vec();
    iv[33] ^= 4;
    let mut aad = p.to_vec();
    aad[18] ^= 1; // exchange type: authenticated as associated data
    let mut spi = p.to_vec();
    spi[0] ^= 0xff;
    spi[8] ^= 0xff;
    let mut future = p.to_vec();
    future[23] = future[23].wrapping_add(7);
    vec![
        p[..n - 1].to_vec(),
        p[..28].to_vec(),
        icv,
        ct,
        iv,
        aad,
        spi,
        future,
    ]
}

#[test]
fn hostile_datagrams_at_every_step_change_nothing() {
    let mut net = Net::new(config_a(), config_b());
    let injected = Rc::new(RefCell::new(0usize));
    let seen = Rc::new(RefCell::new(Vec::<(Dir, Vec<u8>)>::new()));
    let (inj, log) = (injected.clone(), seen.clone());
    net.hook = Box::new(move |f| {
        // Datagrams already seen (answers from a cache) pass untouched, or the replays below
        // would feed themselves forever.
        if log.borrow().iter().any(|(_, p)| *p == f.payload) {
            return Fate::Deliver;
        }
        let h = Header::peek(&f.payload).unwrap();
        let mut variants = if h.exchange_type == ExchangeType::IkeSaInit {
            init_variants(&f.payload, f.dir == Dir::BtoA)
        } else {
            encrypted_variants(&f.payload)
        };
        // Replays of every earlier message in the same direction.
        variants.extend(
            log.borrow()
                .iter()
                .filter(|(d, _)| *d == f.dir)
                .map(|(_, p)| p.clone()),
        );
        log.borrow_mut().push((f.dir, f.payload.clone()));
        *inj.borrow_mut() += variants.len();
        Fate::Before(variants)
    });
    net.start();
    assert_eq!(net.a.state(), SaState::Established);
    let during_handshake = *injected.borrow();
    // Let DPD run a few INFORMATIONAL exchanges under the same fire.
    net.run_until(35);
    assert_eq!(net.a.state(), SaState::Established);
    let injected = *injected.borrow();
    assert!(injected > during_handshake);

    // The result is the same as without the noise.
    assert_eq!(established(&net.a_events), 1);
    assert_eq!(established(&net.b_events), 1);
    assert_eq!(installed(&net.a_events).len(), 1);
    assert_eq!(installed(&net.b_events).len(), 1);
    assert!(closed(&net.a_events).is_empty());
    assert!(closed(&net.b_events).is_empty());
    assert!(
        net.a_events
            .iter()
            .chain(&net.b_events)
            .all(|(_, e)| !matches!(e, Event::ChildSaDeleted { .. }))
    );
    assert_eq!(net.b.sa_spis().len(), 1);

    // Every variant was dropped and counted, except replays of the peer's latest request,
    // which are answered from the cache; those answers are dropped by the other side.
    let (a, b) = (net.a.stats(), net.b.stats());
    let answered = a.duplicate_requests_answered + b.duplicate_requests_answered;
    assert!(answered > 0);
    assert_eq!(
        a.dropped_total() + b.dropped_total(),
        injected as u64,
        "A {a:?} B {b:?}"
    );
    for reason in [
        DropReason::Malformed,
        DropReason::UnknownSpi,
        DropReason::IntegrityCheckFailed,
        DropReason::UnexpectedResponse,
        DropReason::OldMessageId,
        DropReason::FutureMessageId,
    ] {
        assert!(
            a.dropped(reason) + b.dropped(reason) > 0,
            "no drop counted as {reason}: A {a:?} B {b:?}"
        );
    }
}

#[test]
fn forged_delete_with_wrong_keys_is_ignored() {
    let mut net = Net::new(config_a(), config_b());
    net.start();
    // A message with the right SPIs and message ID but an SK payload not made with the keys.
    let last_from_a = net
        .log
        .iter()
        .rev()
        .find(|f| f.dir == Dir::AtoB)
        .unwrap()
        .clone();
    let mut forged = last_from_a.payload.clone();
    forged[18] = ExchangeType::Informational.value();
    forged[23] = 2;
    for b in forged.iter_mut().skip(40) {
        *b ^= 0x5a;
    }
    net.b
        .handle_datagram(net.now, last_from_a.from, last_from_a.to, &forged);
    net.pump();
    assert_eq!(net.b.stats().dropped(DropReason::IntegrityCheckFailed), 1);
    assert!(closed(&net.b_events).is_empty());
    assert_eq!(net.b.sa_spis().len(), 1);
    // The SA still works: a real close goes through.
    net.a.close(net.now);
    net.pump();
    assert_eq!(closed(&net.b_events).len(), 1);
}
