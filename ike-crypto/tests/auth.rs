//! AUTH payload tests.
//!
//! Sources: PSK AUTH values, RSA PKCS#1 v1.5 (SHA-1, SHA-256), RSA-PSS, ECDSA and Ed25519
//! signatures made by Python's hmac and `cryptography` (`vectors/python_generated.rs`,
//! regenerated and re-verified by `python/crosscheck.py`).

#[path = "vectors/python_generated.rs"]
mod py;

use rsa::pkcs8::DecodePrivateKey;
use vpn_ike_crypto::PrfAlgorithm;
use vpn_ike_crypto::auth::{self, AuthError, SignatureScheme, SigningKey, VerifyingKey};

fn rng() -> impl rand_core::CryptoRng {
    rand_core::UnwrapErr(getrandom::SysRng)
}

#[test]
fn psk_auth_matches_python() {
    for (c, prf) in [
        (&py::PSK_SHA1, PrfAlgorithm::HmacSha1),
        (&py::PSK_SHA256, PrfAlgorithm::HmacSha256),
        (&py::PSK_SHA384, PrfAlgorithm::HmacSha384),
        (&py::PSK_SHA512, PrfAlgorithm::HmacSha512),
    ] {
        let octets = auth::signed_octets(
            prf,
            &c.get("msg"),
            &c.get("nonce"),
            &c.get("skp"),
            &c.get("idb"),
        );
        assert_eq!(octets, c.get("octets"), "{prf:?}");
        let mac = auth::psk_auth(prf, &c.get("psk"), &octets);
        assert_eq!(mac.as_bytes(), c.get("auth"), "{prf:?}");
        auth::verify_psk_auth(prf, &c.get("psk"), &octets, &c.get("auth")).unwrap();
    }
}

#[test]
fn psk_auth_fails_on_any_single_bit_change() {
    let c = &py::PSK_SHA256;
    let prf = PrfAlgorithm::HmacSha256;
    let (psk, octets, good) = (c.get("psk"), c.get("octets"), c.get("auth"));
    for i in 0..good.len() * 8 {
        let mut a = good.clone();
        a[i / 8] ^= 1 << (i % 8);
        assert_eq!(
            auth::verify_psk_auth(prf, &psk, &octets, &a),
            Err(AuthError::VerificationFailed)
        );
    }
    for i in 0..octets.len() * 8 {
        let mut o = octets.clone();
        o[i / 8] ^= 1 << (i % 8);
        assert!(auth::verify_psk_auth(prf, &psk, &o, &good).is_err());
    }
    for i in 0..psk.len() * 8 {
        let mut p = psk.clone();
        p[i / 8] ^= 1 << (i % 8);
        assert!(auth::verify_psk_auth(prf, &p, &octets, &good).is_err());
    }
    assert!(auth::verify_psk_auth(prf, &psk, &octets, &good[..31]).is_err());
    assert!(auth::verify_psk_auth(prf, &psk, &octets, &[]).is_err());
    // The signed octets bind the ID: a different ID payload gives different octets.
    let other = auth::signed_octets(
        prf,
        &c.get("msg"),
        &c.get("nonce"),
        &c.get("skp"),
        b"\x02\0\0\0sun",
    );
    assert!(auth::verify_psk_auth(prf, &psk, &other, &good).is_err());
}

fn rsa_key() -> rsa::PrivateKey {
    rsa::PrivateKey::from_pkcs8_der(&py::SIGS.get("rsa_pkcs8")).unwrap()
}

#[test]
fn rsa_method1_pkcs1_sha1() {
    let s = &py::SIGS;
    let msg = s.get("msg");
    let key = rsa_key();
    // PKCS#1 v1.5 is deterministic: the same signature as Python's cryptography.
    let sig = auth::rsa_sha1_sign(&key, &msg).unwrap();
    assert_eq!(sig, s.get("rsa_pkcs1_sha1"));
    // Raw public key as in strongSwan's leftrsasigkey (RFC 3110, base64 with 0s prefix).
    let pk = auth::rsa_public_key_from_rfc3110(&s.get("rsa_rfc3110")).unwrap();
    let rsasigkey = String::from_utf8(s.get("rsa_rsasigkey")).unwrap();
    let pk2 = auth::rsa_public_key_from_rsasigkey(&rsasigkey).unwrap();
    assert_eq!(pk, pk2);
    assert_eq!(pk, rsa::PublicKey::from(&key));
    auth::rsa_sha1_verify(&pk, &msg, &sig).unwrap();
    for i in [0usize, 7, 100, 255] {
        let mut bad = sig.clone();
        bad[i] ^= 0x10;
        assert_eq!(
            auth::rsa_sha1_verify(&pk, &msg, &bad),
            Err(AuthError::VerificationFailed)
        );
        let mut m = msg.clone();
        m[i % msg.len()] ^= 1;
        assert!(auth::rsa_sha1_verify(&pk, &m, &sig).is_err());
    }
    assert!(auth::rsa_sha1_verify(&pk, &msg, &sig[1..]).is_err());
    assert!(auth::rsa_public_key_from_rfc3110(&[]).is_err());
    assert!(auth::rsa_public_key_from_rfc3110(&[3, 1, 0, 1]).is_err());
    assert!(auth::rsa_public_key_from_rsasigkey("AwEAAQ==").is_err());
}

fn auth_data(scheme: SignatureScheme, sig: &[u8]) -> Vec<u8> {
    let alg = scheme.algorithm_identifier();
    let mut v = vec![alg.len() as u8];
    v.extend_from_slice(alg);
    v.extend_from_slice(sig);
    v
}

fn keys() -> Vec<(SigningKey, Vec<SignatureScheme>)> {
    let s = &py::SIGS;
    vec![
        (
            SigningKey::Rsa(Box::new(rsa_key())),
            vec![
                SignatureScheme::RsaPkcs1Sha256,
                SignatureScheme::RsaPssSha256,
            ],
        ),
        (
            SigningKey::EcdsaP256(p256::ecdsa::SigningKey::from_slice(&s.get("p256_d")).unwrap()),
            vec![SignatureScheme::EcdsaP256Sha256],
        ),
        (
            SigningKey::EcdsaP384(p384::ecdsa::SigningKey::from_slice(&s.get("p384_d")).unwrap()),
            vec![SignatureScheme::EcdsaP384Sha384],
        ),
        (
            SigningKey::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(
                &s.get("ed25519_seed").try_into().unwrap(),
            ))),
            vec![SignatureScheme::Ed25519],
        ),
    ]
}

#[test]
fn rfc7427_verifies_python_signatures() {
    let s = &py::SIGS;
    let msg = s.get("msg");
    let rsa_pk = VerifyingKey::Rsa(Box::new(rsa::PublicKey::from(&rsa_key())));
    let mut p256_sec1 = vec![4u8];
    p256_sec1.extend(s.get("p256_pub"));
    let mut p384_sec1 = vec![4u8];
    p384_sec1.extend(s.get("p384_pub"));
    let cases = [
        (
            rsa_pk.clone(),
            SignatureScheme::RsaPkcs1Sha256,
            s.get("rsa_pkcs1_sha256"),
        ),
        (
            rsa_pk,
            SignatureScheme::RsaPssSha256,
            s.get("rsa_pss_sha256"),
        ),
        (
            VerifyingKey::EcdsaP256(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&p256_sec1).unwrap(),
            ),
            SignatureScheme::EcdsaP256Sha256,
            s.get("p256_sig_der"),
        ),
        (
            VerifyingKey::EcdsaP384(
                p384::ecdsa::VerifyingKey::from_sec1_bytes(&p384_sec1).unwrap(),
            ),
            SignatureScheme::EcdsaP384Sha384,
            s.get("p384_sig_der"),
        ),
        (
            VerifyingKey::Ed25519(
                ed25519_dalek::VerifyingKey::from_bytes(&s.get("ed25519_pub").try_into().unwrap())
                    .unwrap(),
            ),
            SignatureScheme::Ed25519,
            s.get("ed25519_sig"),
        ),
    ];
    for (vk, scheme, sig) in cases {
        let data = auth_data(scheme, &sig);
        assert_eq!(
            auth::verify_digital_signature_auth(&vk, &msg, &data),
            Ok(scheme)
        );
        // Tampered signature or message fails.
        for i in [0usize, sig.len() / 2, sig.len() - 1] {
            let mut bad = sig.clone();
            bad[i] ^= 0x01;
            assert!(
                auth::verify_digital_signature_auth(&vk, &msg, &auth_data(scheme, &bad)).is_err(),
                "{scheme:?} sig byte {i}"
            );
        }
        let mut m = msg.clone();
        m[10] ^= 0x80;
        assert_eq!(
            auth::verify_digital_signature_auth(&vk, &m, &data),
            Err(AuthError::VerificationFailed),
            "{scheme:?}"
        );
    }
}

#[test]
fn rfc7427_sign_and_verify_round_trip() {
    let s = &py::SIGS;
    let msg = s.get("msg");
    let mut r = rng();
    for (sk, schemes) in keys() {
        let vk = sk.verifying_key();
        for scheme in schemes {
            let data = auth::digital_signature_auth(&sk, scheme, &msg, &mut r).unwrap();
            let (parsed, _) = auth::parse_digital_signature_auth(&data).unwrap();
            assert_eq!(parsed, scheme);
            assert_eq!(
                auth::verify_digital_signature_auth(&vk, &msg, &data),
                Ok(scheme)
            );
            // Flip one bit in every byte of the AUTH data (the bit position rotates): it must
            // never verify, and never panic.
            for i in 0..data.len() {
                let mut d = data.clone();
                d[i] ^= 1 << (i % 8);
                assert!(
                    auth::verify_digital_signature_auth(&vk, &msg, &d).is_err(),
                    "{scheme:?} byte {i}"
                );
            }
            for n in 0..data.len() {
                assert!(auth::verify_digital_signature_auth(&vk, &msg, &data[..n]).is_err());
            }
        }
        assert!(!format!("{sk:?}").contains(&format!("{:?}", s.get("ed25519_seed"))));
    }
    // Ed25519 and RSA PKCS#1 v1.5 are deterministic: same bytes as Python.
    let ed = &keys()[3].0;
    let data = auth::digital_signature_auth(ed, SignatureScheme::Ed25519, &msg, &mut r).unwrap();
    assert_eq!(
        data,
        auth_data(SignatureScheme::Ed25519, &s.get("ed25519_sig"))
    );
    let rsa = &keys()[0].0;
    let data =
        auth::digital_signature_auth(rsa, SignatureScheme::RsaPkcs1Sha256, &msg, &mut r).unwrap();
    assert_eq!(
        data,
        auth_data(SignatureScheme::RsaPkcs1Sha256, &s.get("rsa_pkcs1_sha256"))
    );
}

#[test]
fn rfc7427_key_and_algorithm_must_match() {
    let msg = b"octets";
    let mut r = rng();
    let ks = keys();
    let ed_vk = ks[3].0.verifying_key();
    let p256_data =
        auth::digital_signature_auth(&ks[1].0, SignatureScheme::EcdsaP256Sha256, msg, &mut r)
            .unwrap();
    assert_eq!(
        auth::verify_digital_signature_auth(&ed_vk, msg, &p256_data),
        Err(AuthError::KeyMismatch(SignatureScheme::EcdsaP256Sha256))
    );
    assert_eq!(
        auth::digital_signature_auth(&ks[1].0, SignatureScheme::EcdsaP384Sha384, msg, &mut r),
        Err(AuthError::KeyMismatch(SignatureScheme::EcdsaP384Sha384))
    );
    // Unknown AlgorithmIdentifier (ecdsa-with-SHA512) and malformed framing.
    let sha512 = [
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04,
    ];
    let mut d = vec![12u8];
    d.extend_from_slice(&sha512);
    d.extend_from_slice(&[0; 64]);
    assert_eq!(
        auth::verify_digital_signature_auth(&ed_vk, msg, &d),
        Err(AuthError::UnsupportedAlgorithm)
    );
    assert_eq!(
        auth::verify_digital_signature_auth(&ed_vk, msg, &[]),
        Err(AuthError::Malformed)
    );
    assert_eq!(
        auth::verify_digital_signature_auth(&ed_vk, msg, &[200, 1, 2]),
        Err(AuthError::Malformed)
    );
}

#[test]
fn algorithm_identifiers_are_well_formed_der() {
    // Each constant is one DER SEQUENCE whose length octet covers the rest exactly.
    for s in SignatureScheme::ALL {
        let a = s.algorithm_identifier();
        assert_eq!(a[0], 0x30, "{s:?}");
        assert_eq!(usize::from(a[1]) + 2, a.len(), "{s:?}");
        assert_eq!(SignatureScheme::from_algorithm_identifier(a), Some(s));
    }
    assert_eq!(auth::KEY_PAD.len(), 17);
    assert_eq!(
        auth::AuthMethod::from_u8(14),
        Some(auth::AuthMethod::DigitalSignature)
    );
}
