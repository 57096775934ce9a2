//! Replays the `responder` fuzz corpus (fuzz/corpus/responder/) and a real handshake's
//! requests through the fuzz driver, so that crashers stay regression tests.
//! `cargo test -p vpn-ike --test responder_corpus -- --ignored` rewrites the seed.

#[path = "support/responder_driver.rs"]
mod responder_driver;

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use responder_driver::*;
use vpn_ike::config::PeerConfig;
use vpn_ike::{IkeSa, SaState};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/responder")
}

/// An initiator's IKE_SA_INIT and IKE_AUTH requests to the driver's responder, as records.
fn handshake_seed() -> Vec<u8> {
    let mut c = PeerConfig::psk(
        format!("{PEER}:500").parse().unwrap(),
        format!("{US}:500").parse().unwrap(),
        vpn_ike::Psk::new(b"fuzz".to_vec()),
    );
    c.ike_proposals[0].dh = vec![vpn_ike_crypto::dh::DhGroup::Curve25519];
    let now = Instant::now();
    let mut a = IkeSa::initiator(c, FixedRng(1), now).unwrap();
    let mut b = vpn_ike::Listener::new(vec![config()], FixedRng(7)).unwrap();
    a.initiate(now);
    let mut records_in = Vec::new();
    for _ in 0..4 {
        while let Some(t) = a.poll_transmit() {
            records_in.push((u8::from(t.non_esp_marker), t.datagram()));
            b.handle_datagram(now, t.from, t.to, &t.datagram());
        }
        while let Some(t) = b.poll_transmit() {
            a.handle_datagram(now, t.from, t.to, &t.datagram());
        }
    }
    assert_eq!(a.state(), SaState::Established);
    records(&records_in)
}

#[test]
fn handshake_seed_reaches_established() {
    // The driver's responder (same RNG seed) accepts the recorded handshake.
    assert_eq!(run(&handshake_seed()), vec![SaState::Established]);
}

#[test]
fn corpus_replays_without_panic() {
    let mut n = 0;
    for entry in fs::read_dir(corpus_dir()).expect("corpus dir") {
        let path = entry.unwrap().path();
        let _ = run(&fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n >= 1, "empty corpus");
}

#[test]
#[ignore = "rewrites the seed corpus"]
fn write_seed() {
    fs::write(corpus_dir().join("seed-handshake"), handshake_seed()).unwrap();
}
