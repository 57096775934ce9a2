//! IKE_AUTH with private keys and raw public keys (RFC 7296 section 2.15 auth method 1,
//! RFC 7427 auth method 14 with SIGNATURE_HASH_ALGORITHMS), engine against engine.

use std::sync::Arc;

use vpn_ike::codec::{Message, NotifyType, Payload};
use vpn_ike::config::{Auth, KeyAuth, SignatureMode};
use vpn_ike::events::CloseReason;
use vpn_ike::{PeerConfig, Psk, SaState};
use vpn_ike_crypto::auth::{RsaPadding, SigningKey, VerifyingKey};

use super::assert_child_pair;
use crate::harness::*;

fn key_file(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../ike-crypto/tests/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn private(name: &str) -> Arc<SigningKey> {
    Arc::new(SigningKey::from_pem(&key_file(name)).expect(name))
}

fn public_of(name: &str) -> VerifyingKey {
    private(name).verifying_key()
}

const PSS: SignatureMode = SignatureMode::DigitalSignature {
    rsa: RsaPadding::Pss,
};
const PKCS1: SignatureMode = SignatureMode::DigitalSignature {
    rsa: RsaPadding::Pkcs1v15,
};

fn key_auth(own: &str, peer: &str, mode: SignatureMode) -> Auth {
    Auth::PublicKey(Box::new(KeyAuth {
        local_key: private(own),
        peer_key: public_of(peer),
        mode,
    }))
}

/// A and B with their own keys, each knowing the other's public key.
fn configs(a_key: &str, b_key: &str, a_mode: SignatureMode, b_mode: SignatureMode) -> Net {
    let mut a = config_a();
    let mut b = config_b();
    a.auth = key_auth(a_key, b_key, a_mode);
    b.auth = key_auth(b_key, a_key, b_mode);
    Net::new(a, b)
}

fn init_notifies(net: &Net, index: usize) -> Vec<NotifyType> {
    let msg = Message::decode(&net.log[index].payload).expect("IKE_SA_INIT decodes");
    msg.payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Notify(n) => Some(n.notify_type),
            _ => None,
        })
        .collect()
}

fn assert_established(net: &Net, what: &str) {
    assert_eq!(net.a.state(), SaState::Established, "{what}: A");
    assert_eq!(established(&net.a_events), 1, "{what}: A");
    assert_eq!(established(&net.b_events), 1, "{what}: B");
    assert_child_pair(net);
    assert_eq!(net.a.stats().dropped_total(), 0, "{what}");
    assert_eq!(net.b.stats().dropped_total(), 0, "{what}");
    assert_eq!(net.a.stats().authentication_failures, 0, "{what}");
    assert_eq!(net.b.stats().authentication_failures, 0, "{what}");
}

#[test]
fn every_signature_method_authenticates_both_ways() {
    let cases = [
        (
            "rsa2048.pkcs8.pem",
            "rsa2048-b.pkcs8.pem",
            SignatureMode::RsaSha1,
            SignatureMode::RsaSha1,
        ),
        ("rsa2048.pkcs8.pem", "rsa2048-b.pkcs8.pem", PSS, PSS),
        ("rsa2048.pkcs1.pem", "rsa2048-b.pkcs8.pem", PKCS1, PKCS1),
        ("p256.pkcs8.pem", "p256-b.pkcs8.pem", PSS, PSS),
        ("p384.pkcs8.pem", "p256.sec1.pem", PSS, PSS),
        ("ed25519.pkcs8.pem", "ed25519-b.pkcs8.pem", PSS, PSS),
        // Different key types and methods on the two sides.
        (
            "ed25519.pkcs8.pem",
            "rsa2048.pkcs8.pem",
            PSS,
            SignatureMode::RsaSha1,
        ),
        (
            "rsa2048-b.pkcs8.pem",
            "p256.pkcs8.pem",
            SignatureMode::RsaSha1,
            PSS,
        ),
    ];
    for (a_key, b_key, a_mode, b_mode) in cases {
        let what = format!("{a_key} ({a_mode:?}) / {b_key} ({b_mode:?})");
        let mut net = configs(a_key, b_key, a_mode, b_mode);
        net.start();
        assert_established(&net, &what);
        // RFC 7427 section 4: both IKE_SA_INIT messages announce the hash algorithms.
        for i in [0, 1] {
            assert!(
                init_notifies(&net, i).contains(&NotifyType::SignatureHashAlgorithms),
                "{what}: message {i}"
            );
        }
        assert_eq!(net.log.len(), 4, "{what}");
    }
}

#[test]
fn psk_sas_do_not_announce_signature_hashes() {
    let mut net = Net::new(config_a(), config_b());
    net.start();
    for i in [0, 1] {
        assert!(!init_notifies(&net, i).contains(&NotifyType::SignatureHashAlgorithms));
    }
}

/// Checks that nothing got established and why each side closed.
fn assert_refused(net: &Net, a_reason: CloseReason, b_reason: Option<CloseReason>) {
    assert!(installed(&net.a_events).is_empty(), "{:?}", net.a_events);
    assert_eq!(established(&net.a_events), 0);
    assert_eq!(net.a.state(), SaState::Closed);
    assert_eq!(closed(&net.a_events).first().map(|c| c.1), Some(a_reason));
    if let Some(r) = b_reason {
        assert!(installed(&net.b_events).is_empty(), "{:?}", net.b_events);
        assert_eq!(established(&net.b_events), 0);
        assert_eq!(closed(&net.b_events).first().map(|c| c.1), Some(r));
        assert!(net.b.sa_spis().is_empty());
    }
}

#[test]
fn responder_refuses_an_initiator_signing_with_another_key() {
    for (signer, mode) in [
        ("rsa2048-b.pkcs8.pem", SignatureMode::RsaSha1),
        ("rsa2048-b.pkcs8.pem", PSS),
        ("ed25519-b.pkcs8.pem", PSS),
        ("p256-b.pkcs8.pem", PSS),
    ] {
        let mut a = config_a();
        let mut b = config_b();
        // B expects A to hold the key of `rsa2048.pkcs8.pem`; A signs with `signer`.
        a.auth = key_auth(signer, "p384.pkcs8.pem", mode);
        b.auth = key_auth("p384.pkcs8.pem", "rsa2048.pkcs8.pem", PSS);
        let mut net = Net::new(a, b);
        net.start();
        assert_refused(
            &net,
            CloseReason::AuthenticationFailed,
            Some(CloseReason::AuthenticationFailed),
        );
        assert_eq!(net.b.stats().authentication_failures, 1, "{signer}");
        // The refusal is the AUTHENTICATION_FAILED answer (4 messages, no retransmission).
        assert_eq!(net.log.len(), 4, "{signer}");
    }
}

#[test]
fn initiator_refuses_a_responder_signing_with_another_key() {
    let mut a = config_a();
    let mut b = config_b();
    a.auth = key_auth("rsa2048.pkcs8.pem", "ed25519-b.pkcs8.pem", PSS);
    b.auth = key_auth("ed25519.pkcs8.pem", "rsa2048.pkcs8.pem", PSS);
    let mut net = Net::new(a, b);
    net.start();
    // B accepted A and sent its AUTH; A finds it wrong and closes without a CHILD_SA.
    assert_refused(&net, CloseReason::AuthenticationFailed, None);
    assert_eq!(net.a.stats().authentication_failures, 1);
}

#[test]
fn a_key_of_the_wrong_type_or_a_psk_for_a_key_is_refused() {
    // B is configured with a PSK: A's signature (RSA falls back to method 1, as B announces
    // no hashes) is not acceptable, and B's PSK MIC is not acceptable to A either.
    let mut a = config_a();
    a.auth = key_auth("rsa2048.pkcs8.pem", "rsa2048-b.pkcs8.pem", PSS);
    let mut net = Net::new(a, config_b());
    net.start();
    assert_refused(
        &net,
        CloseReason::AuthenticationFailed,
        Some(CloseReason::AuthenticationFailed),
    );
    // And the other way: a PSK initiator against a key responder.
    let mut b = config_b();
    b.auth = key_auth("rsa2048-b.pkcs8.pem", "rsa2048.pkcs8.pem", PSS);
    let mut net = Net::new(config_a(), b);
    net.start();
    assert_refused(
        &net,
        CloseReason::AuthenticationFailed,
        Some(CloseReason::AuthenticationFailed),
    );
}

#[test]
fn an_ed25519_key_needs_the_peers_rfc7427_announcement() {
    // B (PSK) announces no hash algorithms: A's Ed25519 key cannot sign with method 1, so A
    // gives up before sending IKE_AUTH.
    let mut a = config_a();
    a.auth = key_auth("ed25519.pkcs8.pem", "rsa2048.pkcs8.pem", PSS);
    let mut net = Net::new(a, config_b());
    net.start();
    assert_refused(&net, CloseReason::AuthenticationFailed, None);
    assert_eq!(net.log.len(), 2, "IKE_SA_INIT only");
}

#[test]
fn key_configurations_do_not_print_private_keys() {
    let mut a = config_a();
    a.auth = key_auth("ed25519.pkcs8.pem", "rsa2048.pkcs8.pem", PSS);
    let text = format!("{a:?}");
    assert!(text.contains("Ed25519([REDACTED])"), "{text}");
    // The private scalar of the Ed25519 key (bytes 16.. of the PKCS#8 DER) is not shown in
    // any form.
    let pem = String::from_utf8(key_file("ed25519.pkcs8.pem")).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!text.contains(&b64[20..]), "{text}");
    // A PSK-only mode with an Ed25519 key is a configuration error.
    let mut c: PeerConfig = config_a();
    c.auth = key_auth(
        "ed25519.pkcs8.pem",
        "rsa2048.pkcs8.pem",
        SignatureMode::RsaSha1,
    );
    assert!(c.validate().is_err());
    c.auth = Auth::Psk(Psk::new(Vec::new()));
    assert!(c.validate().is_err());
}
