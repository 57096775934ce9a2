//! Random mutations of real datagrams thrown at established engines: nothing panics and
//! the established SAs stay as they are.

use rand_core::Rng as _;

use crate::harness::*;
use vpn_ike::{Event, SaState};

fn mutate(rng: &mut TestRng, base: &[u8]) -> Vec<u8> {
    let mut m = base.to_vec();
    match rng.next_u32() % 6 {
        0 => {
            let n = rng.next_u32() as usize % m.len().max(1);
            m.truncate(n);
        }
        1 => {
            let extra = rng.next_u32() as usize % 64;
            for _ in 0..extra {
                m.push(rng.next_u32() as u8);
            }
        }
        2 => {
            // Header fields: SPIs, next payload, version, exchange, flags, message ID, length.
            let i = rng.next_u32() as usize % 28.min(m.len()).max(1);
            if let Some(b) = m.get_mut(i) {
                *b = rng.next_u32() as u8;
            }
        }
        3 => {
            // Length fields of the first payloads.
            for i in [24usize, 25, 26, 27, 30, 31] {
                if let Some(b) = m.get_mut(i)
                    && rng.next_u32().is_multiple_of(2)
                {
                    *b = rng.next_u32() as u8;
                }
            }
        }
        _ => {
            let flips = 1 + rng.next_u32() % 8;
            for _ in 0..flips {
                let i = rng.next_u32() as usize % m.len().max(1);
                if let Some(b) = m.get_mut(i) {
                    *b ^= 1 << (rng.next_u32() % 8);
                }
            }
        }
    }
    m
}

#[test]
fn random_mutations_never_panic_nor_change_established_sas() {
    let mut net = Net::new(config_a(), config_b());
    net.start();
    // A few INFORMATIONAL exchanges too.
    net.run_until(25);
    let a_children = net.a.child_spis();
    let b_spis = net.b.sa_spis();
    let (a_events, b_events) = (net.a_events.len(), net.b_events.len());
    let samples: Vec<Flight> = net.log.clone();
    let mut rng = TestRng(0x5eed);
    for _ in 0..3000 {
        let f = &samples[rng.next_u32() as usize % samples.len()];
        let m = mutate(&mut rng, &f.payload);
        if m == f.payload {
            continue;
        }
        // Deliver to both sides, whatever the original direction.
        net.a.handle_datagram(net.now, f.to, f.from, &m);
        net.b.handle_datagram(net.now, f.from, f.to, &m);
        while net.a.poll_transmit().is_some() {}
        while net.b.poll_transmit().is_some() {}
    }
    assert_eq!(net.a.state(), SaState::Established);
    assert_eq!(net.a.child_spis(), a_children);
    if let Some(e) = net.a.poll_event() {
        panic!("A reacted to noise: {e:?}");
    }
    while let Some(e) = net.b.poll_event() {
        assert!(
            !matches!(
                e.event,
                Event::IkeSaClosed { .. } | Event::ChildSaDeleted { .. }
            ),
            "B reacted to noise: {e:?}"
        );
    }
    assert!(b_spis.iter().all(|s| net.b.sa_spis().contains(s)));
    assert_eq!(net.a_events.len(), a_events);
    assert_eq!(net.b_events.len(), b_events);
    assert!(net.a.stats().dropped_total() > 1000);
}
