//! CREATE_CHILD_SA rekeying of the CHILD_SA: both directions, with and without PFS,
//! make-before-break event order, and the lifetime timer.

use std::time::{Duration, Instant};

use crate::harness::*;
use vpn_ike::config::Lifetimes;
use vpn_ike::{ChildSaInstalled, Event, SaState};
use vpn_ike_crypto::dh::DhGroup;

/// (index, event) of installs and deletes, in order.
fn child_events(events: &[(Instant, Event)]) -> Vec<String> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ChildSaInstalled(c) => Some(format!(
                "install {:08x} from {:?}",
                c.spi_in,
                c.rekeyed_from.map(|s| format!("{s:08x}"))
            )),
            Event::ChildSaDeleted { spi_in, .. } => Some(format!("delete {spi_in:08x}")),
            _ => None,
        })
        .collect()
}

fn last_installed(events: &[(Instant, Event)]) -> &ChildSaInstalled {
    installed(events).into_iter().last().unwrap()
}

fn check_rekeyed(net: &Net) {
    let (a_old, b_old) = (installed(&net.a_events)[0], installed(&net.b_events)[0]);
    let (a, b) = (last_installed(&net.a_events), last_installed(&net.b_events));
    assert_eq!(a.rekeyed_from, Some(a_old.spi_in));
    assert_eq!(b.rekeyed_from, Some(b_old.spi_in));
    assert_eq!(a.spi_out, b.spi_in);
    assert_eq!(a.spi_in, b.spi_out);
    assert_eq!(
        a.keys_out.encr_key.as_bytes(),
        b.keys_in.encr_key.as_bytes()
    );
    assert_eq!(a.keys_out.salt.as_bytes(), b.keys_in.salt.as_bytes());
    assert_eq!(
        a.keys_in.encr_key.as_bytes(),
        b.keys_out.encr_key.as_bytes()
    );
    assert_ne!(
        a.keys_out.encr_key.as_bytes(),
        a_old.keys_out.encr_key.as_bytes()
    );
    assert_eq!(a.local_ts, a_old.local_ts);
    assert_eq!(b.remote_ts, b_old.remote_ts);
    // Make-before-break: install the new pair, then delete the old one, on both sides.
    for (events, old, new) in [
        (&net.a_events, a_old.spi_in, a.spi_in),
        (&net.b_events, b_old.spi_in, b.spi_in),
    ] {
        assert_eq!(
            child_events(events),
            vec![
                format!("install {old:08x} from None"),
                format!("install {new:08x} from Some(\"{old:08x}\")"),
                format!("delete {old:08x}"),
            ]
        );
    }
    assert_eq!(net.a.child_spis(), vec![(a.spi_in, a.spi_out)]);
    assert_eq!(net.a.state(), SaState::Established);
}

#[test]
fn child_rekey_without_pfs() {
    let mut net = Net::new(config_a(), config_b());
    net.start();
    let (spi_in, _) = net.a.child_spis()[0];
    net.a.rekey_child(net.now, spi_in);
    net.pump();
    check_rekeyed(&net);
}

#[test]
fn child_rekey_with_pfs() {
    let mut a = config_a();
    let mut b = config_b();
    for c in [&mut a, &mut b] {
        c.esp_proposals[0].dh = vec![DhGroup::Curve25519];
    }
    let mut net = Net::new(a, b);
    net.start();
    let (spi_in, _) = net.a.child_spis()[0];
    net.a.rekey_child(net.now, spi_in);
    net.pump();
    check_rekeyed(&net);
}

#[test]
fn pfs_mismatch_keeps_the_old_child_sa() {
    let mut a = config_a();
    a.esp_proposals[0].dh = vec![DhGroup::Curve25519];
    let mut net = Net::new(a, config_b());
    net.start();
    let old = net.a.child_spis();
    net.a.rekey_child(net.now, old[0].0);
    net.pump();
    assert_eq!(net.a.child_spis(), old);
    assert_eq!(installed(&net.a_events).len(), 1);
    assert!(
        !net.a_events
            .iter()
            .chain(&net.b_events)
            .any(|(_, e)| matches!(e, Event::ChildSaDeleted { .. }))
    );
    // It is tried again later, not in a busy loop.
    let next = net.a.poll_timeout().unwrap();
    assert!(next > net.now);
}

#[test]
fn responder_rekeys_at_its_soft_lifetime() {
    let mut b = config_b();
    b.lifetimes = Lifetimes {
        ike: Duration::from_secs(28_800),
        child: Duration::from_secs(120),
        margin: Duration::from_secs(20),
        fuzz: 0.0,
    };
    let mut net = Net::new(config_a(), b);
    net.start();
    let b_old = installed(&net.b_events)[0];
    assert_eq!(b_old.expire_at - b_old.rekey_at, Duration::from_secs(20));
    net.run_until(99);
    assert_eq!(installed(&net.b_events).len(), 1);
    net.run_until(101);
    check_rekeyed(&net);
    // The new pair gets its own timers: rekeyed again 100 s later.
    net.run_until(205);
    assert_eq!(installed(&net.b_events).len(), 3);
    assert_eq!(net.a.child_spis().len(), 1);
}

/// The CHILD_SAs alive after the events: (spi_in, spi_out) of those installed and not deleted.
fn alive(events: &[(Instant, Event)]) -> Vec<(u32, u32)> {
    let mut live = Vec::new();
    for (_, e) in events {
        match e {
            Event::ChildSaInstalled(c) => live.push((c.spi_in, c.spi_out)),
            Event::ChildSaDeleted { spi_in, .. } => live.retain(|(i, _)| i != spi_in),
            _ => {}
        }
    }
    live
}

/// Both sides rekey the same CHILD_SA at once, their requests crossing (RFC 7296 2.8.1): both
/// exchanges complete, the pair made with the lowest nonce is deleted by its maker, the old
/// pair by the other side, and one pair is left, the same on both sides.
#[test]
fn a_rekey_collision_leaves_one_pair() {
    let mut net = Net::new(config_a(), config_b());
    net.start();
    let (a_in, _) = net.a.child_spis()[0];
    let b_in = installed(&net.b_events)[0].spi_in;
    let b_sa = net.b.sa_spis()[0];
    // Both requests are queued before either is delivered.
    net.a.rekey_child(net.now, a_in);
    net.b.rekey_child(net.now, b_sa, b_in);
    net.pump();
    net.run_until(5);
    let (a, b) = (alive(&net.a_events), alive(&net.b_events));
    assert_eq!(a.len(), 1, "A: {:?}", child_events(&net.a_events));
    assert_eq!(b.len(), 1, "B: {:?}", child_events(&net.b_events));
    assert_eq!((a[0].0, a[0].1), (b[0].1, b[0].0), "not the same pair");
    assert_ne!(a[0].0, a_in, "the old pair survived");
    assert_eq!(net.a.state(), SaState::Established);
}
