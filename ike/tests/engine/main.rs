//! The sans-IO engine end to end: an initiator and a responder wired back to back in memory
//! with a fake clock (see `harness.rs`).

mod cookies;
mod fragments;
mod harness;
mod hostile;
mod keepalive_critical;
mod mutation;
mod rekey;
mod sigauth;

use std::net::Ipv4Addr;
use std::time::Duration;

use harness::*;
use vpn_ike::codec::{ExchangeType, Header, Message};
use vpn_ike::config::{DpdAction, DpdConfig, Identity, TrafficSelector};
use vpn_ike::events::{ChildFailure, CloseReason};
use vpn_ike::{DropReason, Event, SaState};
use vpn_ike_crypto::dh::DhGroup;
use vpn_ike_crypto::keys::EspKeys;

fn same_keys(a: &EspKeys, b: &EspKeys) -> bool {
    a.encr_key.as_bytes() == b.encr_key.as_bytes()
        && a.salt.as_bytes() == b.salt.as_bytes()
        && a.integ_key.as_bytes() == b.integ_key.as_bytes()
}

/// Runs a full exchange and checks both sides hold matching CHILD_SAs.
fn assert_child_pair(net: &Net) {
    let a = installed(&net.a_events);
    let b = installed(&net.b_events);
    assert_eq!(a.len(), 1, "A events: {:?}", net.a_events);
    assert_eq!(b.len(), 1, "B events: {:?}", net.b_events);
    let (a, b) = (a[0], b[0]);
    assert_eq!(a.spi_out, b.spi_in);
    assert_eq!(a.spi_in, b.spi_out);
    assert_ne!(a.spi_in, a.spi_out);
    assert!(same_keys(&a.keys_out, &b.keys_in));
    assert!(same_keys(&a.keys_in, &b.keys_out));
    assert!(!same_keys(&a.keys_in, &a.keys_out));
    assert_eq!(a.suite, b.suite);
    assert_eq!(a.ike_spis, b.ike_spis);
    assert_eq!(a.local_ts, b.remote_ts);
    assert_eq!(a.remote_ts, b.local_ts);
    assert!(a.rekey_at < a.expire_at);
}

#[test]
fn psk_handshake_aes_gcm_derives_matching_child_keys() {
    let mut net = Net::new(config_a(), config_b());
    net.start();
    assert_eq!(net.a.state(), SaState::Established);
    assert_eq!(established(&net.a_events), 1);
    assert_eq!(established(&net.b_events), 1);
    assert_child_pair(&net);
    let a = installed(&net.a_events)[0];
    assert_eq!(a.keys_out.encr_key.len(), 32);
    assert_eq!(a.keys_out.salt.len(), 4);
    assert!(a.udp_encap.is_none());
    assert_eq!(a.local_ts, vec![TrafficSelector::any_v4()]);
    assert_eq!(a.replay_window, 1024);
    // Four messages, all on port 500, no marker.
    assert_eq!(net.log.len(), 4);
    assert!(
        net.log
            .iter()
            .all(|f| f.to.port() == 500 && f.from.port() == 500)
    );
    assert_eq!(net.a.stats().dropped_total(), 0);
    assert_eq!(net.b.stats().dropped_total(), 0);
    // The engine's IKE SA SPIs are on the wire.
    let h = Header::peek(&net.log[3].payload).unwrap();
    assert_eq!((h.initiator_spi, h.responder_spi), net.a.spis());
}

#[test]
fn psk_handshake_aes_cbc_hmac_and_modp2048() {
    let mut a = config_a();
    let mut b = config_b();
    a.ike_proposals = vec![cbc_ike(), gcm_ike(vec![DhGroup::Modp2048])];
    b.ike_proposals = vec![gcm_ike(vec![DhGroup::Modp2048]), cbc_ike()];
    a.esp_proposals = vec![cbc_esp()];
    b.esp_proposals = vec![gcm_esp(), cbc_esp()];
    let mut net = Net::new(a, b);
    net.start();
    assert_child_pair(&net);
    let c = installed(&net.a_events)[0];
    // ESP: the only common proposal is CBC+HMAC-SHA1.
    assert_eq!(c.keys_out.encr_key.len(), 32);
    assert_eq!(c.keys_out.integ_key.len(), 20);
    assert!(c.keys_out.salt.is_empty());
    // IKE: the responder's preference (GCM, MODP-2048) wins, after an INVALID_KE_PAYLOAD
    // round trip, since A's first proposal put ECP-256 in the KE payload.
    assert_eq!(net.b.init_rejected(), 1);
    assert_eq!(net.log.len(), 6);
}

#[test]
fn wrong_psk_fails_authentication_without_child_sa() {
    let mut b = config_b();
    b.auth = vpn_ike::Auth::Psk(vpn_ike::Psk::new(b"another secret".to_vec()));
    let mut net = Net::new(config_a(), b);
    net.start();
    assert!(installed(&net.a_events).is_empty());
    assert!(installed(&net.b_events).is_empty());
    assert_eq!(established(&net.a_events), 0);
    assert_eq!(established(&net.b_events), 0);
    assert_eq!(
        closed(&net.b_events)[0].1,
        CloseReason::AuthenticationFailed
    );
    assert_eq!(
        closed(&net.a_events)[0].1,
        CloseReason::AuthenticationFailed
    );
    assert_eq!(net.a.state(), SaState::Closed);
    assert!(net.b.sa_spis().is_empty());
}

#[test]
fn wrong_peer_id_fails_authentication() {
    let mut a = config_a();
    a.remote_id = Some(Identity::Fqdn("not-b.example".into()));
    let mut net = Net::new(a, config_b());
    net.start();
    assert!(installed(&net.a_events).is_empty());
    assert_eq!(
        closed(&net.a_events)[0].1,
        CloseReason::AuthenticationFailed
    );
}

#[test]
fn no_common_ike_proposal() {
    let mut a = config_a();
    a.ike_proposals = vec![cbc_ike()];
    let mut net = Net::new(a, config_b());
    net.start();
    assert_eq!(closed(&net.a_events)[0].1, CloseReason::NoProposalChosen);
    assert_eq!(net.b.init_rejected(), 1);
    assert!(net.b.sa_spis().is_empty());
    assert!(net.b_events.is_empty());
}

#[test]
fn no_common_esp_proposal_keeps_the_ike_sa() {
    let mut a = config_a();
    a.esp_proposals = vec![cbc_esp()];
    let mut net = Net::new(a, config_b());
    net.start();
    assert_eq!(net.a.state(), SaState::Established);
    for events in [&net.a_events, &net.b_events] {
        assert!(events.iter().any(|(_, e)| matches!(
            e,
            Event::ChildSaFailed {
                reason: ChildFailure::NoProposalChosen
            }
        )));
        assert!(installed(events).is_empty());
    }
}

#[test]
fn invalid_ke_payload_retry_with_the_requested_group() {
    let mut a = config_a();
    let mut b = config_b();
    a.ike_proposals = vec![gcm_ike(vec![DhGroup::Curve25519, DhGroup::Ecp256])];
    b.ike_proposals = vec![gcm_ike(vec![DhGroup::Ecp256])];
    let mut net = Net::new(a, b);
    net.start();
    assert_eq!(net.b.init_rejected(), 1);
    assert_child_pair(&net);
    // Request, INVALID_KE reply, request with group 19, response, IKE_AUTH pair.
    assert_eq!(net.log.len(), 6);
    let retry = Message::decode(&net.log[2].payload).unwrap();
    let ke = retry.payloads.iter().find_map(|p| match p {
        vpn_ike::codec::Payload::KeyExchange(k) => Some(k.group.value()),
        _ => None,
    });
    assert_eq!(ke, Some(19));
}

#[test]
fn ts_narrowing_and_ts_unacceptable() {
    let net_a = TrafficSelector::v4_prefix(Ipv4Addr::new(10, 1, 0, 0), 16);
    let net_b = TrafficSelector::v4_prefix(Ipv4Addr::new(10, 2, 0, 0), 16);
    // A proposes 0/0 both ways, B narrows to its subnets.
    let mut b = config_b();
    b.local_ts = vec![net_b];
    b.remote_ts = vec![net_a];
    let mut net = Net::new(config_a(), b.clone());
    net.start();
    assert_child_pair(&net);
    let c = installed(&net.a_events)[0];
    assert_eq!(c.local_ts, vec![net_a]);
    assert_eq!(c.remote_ts, vec![net_b]);

    // A wants a network B does not have.
    let mut a = config_a();
    a.remote_ts = vec![TrafficSelector::v4_prefix(Ipv4Addr::new(10, 9, 0, 0), 16)];
    let mut net = Net::new(a, b);
    net.start();
    assert_eq!(net.a.state(), SaState::Established);
    assert!(net.a_events.iter().any(|(_, e)| matches!(
        e,
        Event::ChildSaFailed {
            reason: ChildFailure::TsUnacceptable
        }
    )));
    assert!(installed(&net.b_events).is_empty());
}

#[test]
fn lost_packets_are_retransmitted_then_given_up() {
    let mut net = Net::new(config_a(), config_b());
    net.hook = Box::new(|f| {
        if f.dir == Dir::AtoB {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    net.start();
    net.run_until(1000);
    assert_eq!(net.log.len(), 6, "1 request + 5 retransmissions");
    assert_eq!(net.a.stats().retransmissions, 5);
    // All copies are the same request.
    assert!(net.log.iter().all(|f| f.payload == net.log[0].payload));
    let c = closed(&net.a_events);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].1, CloseReason::Timeout);
    let at = net.secs(c[0].0);
    assert!((at - 165.06).abs() < 0.1, "gave up at {at}");
    assert_eq!(net.a.poll_timeout(), None);
}

#[test]
fn retransmission_timestamps_follow_the_backoff() {
    let mut net = Net::new(config_a(), config_b());
    net.hook = Box::new(|_| Fate::Drop);
    net.start();
    let mut deadlines = Vec::new();
    while let Some(d) = net.a.poll_timeout() {
        deadlines.push(net.secs(d));
        net.now = d;
        net.a.handle_timeout(d);
        net.pump();
    }
    let expect = [4.0, 11.2, 24.16, 47.488, 89.4784, 165.06112];
    assert_eq!(deadlines.len(), expect.len());
    for (a, b) in deadlines.iter().zip(expect) {
        assert!((a - b).abs() < 1e-3, "{a} vs {b}");
    }
    assert_eq!(net.log.len(), 6);
}

#[test]
fn lost_response_is_answered_from_the_cache() {
    let mut net = Net::new(config_a(), config_b());
    let mut dropped = false;
    net.hook = Box::new(move |f| {
        // Lose B's first IKE_AUTH response.
        let h = Header::peek(&f.payload).unwrap();
        if f.dir == Dir::BtoA && h.exchange_type == ExchangeType::IkeAuth && !dropped {
            dropped = true;
            return Fate::Drop;
        }
        Fate::Deliver
    });
    net.start();
    assert_eq!(net.a.state(), SaState::Auth);
    assert_eq!(established(&net.b_events), 1);
    net.run_until(5);
    assert_eq!(net.a.stats().retransmissions, 1);
    assert_eq!(net.b.stats().duplicate_requests_answered, 1);
    assert_eq!(net.a.state(), SaState::Established);
    // B did not process the request twice.
    assert_eq!(installed(&net.b_events).len(), 1);
    assert_eq!(established(&net.b_events), 1);
    assert_child_pair(&net);
}

#[test]
fn duplicate_requests_are_answered_from_the_cache_without_state_change() {
    let mut net = Net::new(config_a(), config_b());
    net.hook = Box::new(|f| {
        if f.dir == Dir::AtoB {
            // Every request arrives twice.
            Fate::Before(vec![f.payload.clone()])
        } else {
            Fate::Deliver
        }
    });
    net.start();
    // The duplicate IKE_SA_INIT creates no second SA; the duplicate IKE_AUTH no second CHILD.
    assert_eq!(net.b.sa_spis().len(), 1);
    assert_eq!(net.b.stats().duplicate_requests_answered, 2);
    assert_eq!(installed(&net.b_events).len(), 1);
    // A got each response twice and dropped the second as unexpected.
    assert_eq!(
        net.a.stats().dropped(DropReason::UnexpectedResponse),
        2,
        "{:?}",
        net.a.stats()
    );
    assert_child_pair(&net);
}

#[test]
fn nat_detected_moves_to_port_4500_with_marker() {
    let mut b = config_b();
    b.remote_addr = harness::sock(A_IP, 500);
    let mut net = Net::with_nat(config_a(), b);
    net.start();
    assert_child_pair(&net);
    // IKE_SA_INIT on 500 without marker, IKE_AUTH on 4500 with it.
    assert_eq!(net.log[0].to.port(), 500);
    assert_ne!(&net.log[0].payload[..4], &[0, 0, 0, 0]);
    for f in &net.log[2..] {
        assert_eq!(f.to.port(), 4500);
        assert_eq!(f.from.port(), 4500);
        assert_eq!(&f.payload[..4], &[0, 0, 0, 0]);
    }
    for events in [&net.a_events, &net.b_events] {
        let c = installed(events)[0];
        let encap = c.udp_encap.expect("UDP encapsulation");
        assert_eq!((encap.local_port, encap.remote_port), (4500, 4500));
        assert!(events.iter().any(|(_, e)| matches!(
            e,
            Event::IkeSaEstablished {
                nat_detected: true,
                ..
            }
        )));
    }
    // A sees its private address, B the public one.
    assert_eq!(
        installed(&net.a_events)[0].local_addr.ip(),
        std::net::IpAddr::V4(A_PRIVATE_IP)
    );
    assert_eq!(
        installed(&net.b_events)[0].remote_addr.ip(),
        std::net::IpAddr::V4(A_IP)
    );
}

#[test]
fn force_encap_without_nat() {
    let mut a = config_a();
    a.force_encap = true;
    let mut net = Net::new(a, config_b());
    net.start();
    assert_child_pair(&net);
    for events in [&net.a_events, &net.b_events] {
        assert!(installed(events)[0].udp_encap.is_some());
    }
}

#[test]
fn no_nat_no_encap_and_esp_on_the_nat_t_port_is_dropped() {
    let mut net = Net::new(config_a(), config_b());
    net.start();
    // An ESP packet (non-zero SPI) arriving on 4500 is not IKE.
    let esp = [0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1, 0xaa, 0xbb];
    net.b
        .handle_datagram(net.now, sock(A_IP, 4500), sock(B_IP, 4500), &esp);
    assert_eq!(net.b.stats().dropped(DropReason::NoNonEspMarker), 1);
}

fn dpd_config(action: DpdAction) -> DpdConfig {
    DpdConfig {
        delay: Duration::from_secs(10),
        timeout: Duration::from_secs(30),
        action,
    }
}

#[test]
fn dpd_keeps_a_live_sa_up() {
    let mut net = Net::new(config_a(), config_b());
    net.start();
    net.run_until(100);
    assert_eq!(net.a.state(), SaState::Established);
    assert!(closed(&net.a_events).is_empty());
    assert!(closed(&net.b_events).is_empty());
    // Both sides sent liveness checks (A and B each every 10 s or so).
    let infos = net
        .log
        .iter()
        .filter(|f| Header::peek(&f.payload).unwrap().exchange_type == ExchangeType::Informational)
        .count();
    assert!(infos >= 10, "{infos} INFORMATIONAL messages");
}

#[test]
fn dpd_timeout_clears_the_sa() {
    let mut net = Net::new(config_a(), config_b());
    net.start();
    let up = net.now;
    net.hook = Box::new(|_| Fate::Drop);
    net.run_until(200);
    let c = closed(&net.a_events);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].1, CloseReason::DeadPeer);
    let after = (c[0].0 - up).as_secs_f64();
    assert!(
        (after - 40.0).abs() < 0.5,
        "closed {after} s after establishment"
    );
    assert!(
        net.a_events
            .iter()
            .any(|(_, e)| matches!(e, Event::ChildSaDeleted { .. }))
    );
    // B notices too.
    assert_eq!(closed(&net.b_events)[0].1, CloseReason::DeadPeer);
    assert!(net.b.sa_spis().is_empty());
}

#[test]
fn dpd_restart_starts_a_new_ike_sa() {
    let mut a = config_a();
    a.dpd = Some(dpd_config(DpdAction::Restart));
    let mut net = Net::new(a, config_b());
    net.start();
    let first = net.a.spis();
    let blackout = std::rc::Rc::new(std::cell::Cell::new(true));
    let b2 = blackout.clone();
    net.hook = Box::new(move |_| if b2.get() { Fate::Drop } else { Fate::Deliver });
    net.run_until(45);
    assert_eq!(closed(&net.a_events)[0].1, CloseReason::DeadPeer);
    assert_eq!(net.a.state(), SaState::Init);
    assert_ne!(net.a.spis().0, first.0);
    // The peer comes back: the new SA is established (B's old one died of DPD as well).
    blackout.set(false);
    net.run_until(60);
    assert_eq!(net.a.state(), SaState::Established);
    assert_eq!(established(&net.a_events), 2);
}

#[test]
fn dpd_action_none_reports_and_keeps_the_sa() {
    let mut a = config_a();
    a.dpd = Some(dpd_config(DpdAction::None));
    let mut b = config_b();
    b.dpd = None;
    let mut net = Net::new(a, b);
    net.start();
    net.hook = Box::new(|_| Fate::Drop);
    net.run_until(45);
    assert!(
        net.a_events
            .iter()
            .any(|(_, e)| matches!(e, Event::PeerUnresponsive))
    );
    assert_eq!(net.a.state(), SaState::Established);
    assert!(closed(&net.a_events).is_empty());
}

#[test]
fn close_deletes_the_ike_sa_on_both_sides() {
    let mut net = Net::new(config_a(), config_b());
    net.start();
    net.a.close(net.now);
    net.pump();
    assert_eq!(closed(&net.a_events)[0].1, CloseReason::LocalClose);
    assert_eq!(closed(&net.b_events)[0].1, CloseReason::PeerDeleted);
    for events in [&net.a_events, &net.b_events] {
        assert_eq!(
            events
                .iter()
                .filter(|(_, e)| matches!(e, Event::ChildSaDeleted { .. }))
                .count(),
            1
        );
    }
    assert!(net.b.sa_spis().is_empty());
}

#[test]
fn responder_close_and_child_delete() {
    let mut net = Net::new(config_a(), config_b());
    net.start();
    let (spi_in, spi_out) = net.a.child_spis()[0];
    net.a.delete_child(net.now, spi_in);
    net.pump();
    assert!(net.a_events.iter().any(|(_, e)| matches!(
        e,
        Event::ChildSaDeleted { spi_in: i, spi_out: o } if *i == spi_in && *o == spi_out
    )));
    assert!(net.b_events.iter().any(|(_, e)| matches!(
        e,
        Event::ChildSaDeleted { spi_in: i, .. } if *i == spi_out
    )));
    assert_eq!(net.a.state(), SaState::Established);
    assert!(net.a.child_spis().is_empty());
    // Now B closes the IKE SA.
    let spi = net.b.sa_spis()[0];
    net.b.close(net.now, spi);
    net.pump();
    assert_eq!(closed(&net.a_events)[0].1, CloseReason::PeerDeleted);
    assert_eq!(closed(&net.b_events)[0].1, CloseReason::LocalClose);
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let mut net = Net::new(config_a(), config_b());
    net.start();
    let c = installed(&net.a_events)[0];
    let text = format!("{:?} {:?} {:?}", net.a_events, net.b_events, config_a());
    for key in [&c.keys_in.encr_key, &c.keys_out.encr_key, &c.keys_out.salt] {
        let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert!(!text.contains(&hex));
        assert!(!text.contains(&format!("{:?}", key.as_bytes())));
    }
    assert!(!text.contains("correct horse"));
    assert!(text.contains("REDACTED"));
}

#[test]
fn half_open_responder_sas_time_out() {
    let mut net = Net::new(config_a(), config_b());
    // IKE_AUTH never arrives.
    net.hook = Box::new(|f| {
        if Header::peek(&f.payload).unwrap().exchange_type == ExchangeType::IkeAuth {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    net.start();
    assert_eq!(net.b.sa_spis().len(), 1);
    net.run_until(29);
    assert_eq!(net.b.sa_spis().len(), 1);
    net.run_until(31);
    assert!(net.b.sa_spis().is_empty());
    assert_eq!(closed(&net.b_events)[0].1, CloseReason::Timeout);
}

#[test]
fn initial_contact_from_a_restarted_peer_replaces_its_old_sa() {
    let mut net = Net::new(config_a(), config_b());
    net.start();
    let old_b = installed(&net.b_events)[0].spi_in;
    // A restarts: a new engine, same configuration (INITIAL_CONTACT is on by default).
    net.a = vpn_ike::IkeSa::initiator(config_a(), TestRng(77), net.now).unwrap();
    net.start();
    assert_eq!(installed(&net.b_events).len(), 2);
    assert_eq!(closed(&net.b_events)[0].1, CloseReason::Superseded);
    assert!(
        net.b_events
            .iter()
            .any(|(_, e)| matches!(e, Event::ChildSaDeleted { spi_in, .. } if *spi_in == old_b))
    );
    assert_eq!(net.b.sa_spis().len(), 1);

    // Without INITIAL_CONTACT both stay.
    let mut a = config_a();
    a.initial_contact = false;
    net.a = vpn_ike::IkeSa::initiator(a, TestRng(78), net.now).unwrap();
    net.start();
    assert_eq!(net.b.sa_spis().len(), 2);
}
