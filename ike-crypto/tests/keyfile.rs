//! Key files: every PEM form OpenSSL writes loads, private and public halves match, and
//! OpenSSL's own signatures verify (an independent oracle for the RFC 7427 verifiers).

use vpn_ike_crypto::auth::{
    self, AuthError, RsaPadding, SUPPORTED_HASH_ALGORITHMS, SignatureScheme, SigningKey,
    VerifyingKey,
};
use vpn_ike_crypto::keyfile::KeyKind;

fn file(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn private(name: &str) -> SigningKey {
    SigningKey::from_pem(&file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn public(name: &str) -> VerifyingKey {
    VerifyingKey::from_pem(&file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn rng() -> impl rand_core::CryptoRng {
    rand_core::UnwrapErr(getrandom::SysRng)
}

/// RFC 7427 AUTH data around a bare signature.
fn framed(scheme: SignatureScheme, sig: &[u8]) -> Vec<u8> {
    let alg = scheme.algorithm_identifier();
    let mut v = vec![alg.len() as u8];
    v.extend_from_slice(alg);
    v.extend_from_slice(sig);
    v
}

#[test]
fn private_and_public_forms_load_and_match() {
    let cases = [
        ("rsa2048.pkcs8.pem", "rsa2048.spki.pem", KeyKind::Rsa(2048)),
        (
            "rsa2048.pkcs1.pem",
            "rsa2048.pkcs1pub.pem",
            KeyKind::Rsa(2048),
        ),
        ("p256.pkcs8.pem", "p256.spki.pem", KeyKind::EcdsaP256),
        ("p256.sec1.pem", "p256.spki.pem", KeyKind::EcdsaP256),
        ("p384.pkcs8.pem", "p384.spki.pem", KeyKind::EcdsaP384),
        ("ed25519.pkcs8.pem", "ed25519.spki.pem", KeyKind::Ed25519),
    ];
    for (sk, pk, kind) in cases {
        let sk = private(sk);
        let pk = public(pk);
        assert_eq!(sk.kind(), kind);
        assert_eq!(pk.kind(), kind);
        assert!(sk.verifying_key().same_key(&pk), "{kind}");
    }
    // Different keys of one kind, and different kinds, are told apart.
    assert!(!public("rsa2048.spki.pem").same_key(&public("p256.spki.pem")));
    assert!(!public("p256.spki.pem").same_key(&private("p384.pkcs8.pem").verifying_key()));
}

#[test]
fn debug_of_a_private_key_shows_no_key_material() {
    for name in ["rsa2048.pkcs8.pem", "p256.pkcs8.pem", "ed25519.pkcs8.pem"] {
        let d = format!("{:?}", private(name));
        assert!(d.contains("REDACTED"), "{d}");
        assert!(d.len() < 40, "{d}");
    }
}

#[test]
fn rsasigkey_text_loads_the_same_key() {
    use base64::Engine as _;
    let VerifyingKey::Rsa(k) = public("rsa2048.spki.pem") else {
        panic!("not RSA")
    };
    use rsa::traits::PublicKeyParts;
    let e = k.e().to_be_bytes_trimmed_vartime();
    let n = k.n().to_be_bytes_trimmed_vartime();
    let mut rfc3110 = vec![e.len() as u8];
    rfc3110.extend_from_slice(&e);
    rfc3110.extend_from_slice(&n);
    let text = format!(
        "0s{}\n",
        base64::engine::general_purpose::STANDARD.encode(&rfc3110)
    );
    let parsed = VerifyingKey::from_pem(text.as_bytes()).unwrap();
    assert!(parsed.same_key(&public("rsa2048.spki.pem")));
}

#[test]
fn unusable_key_files_are_refused_without_echoing_them() {
    let cases: [(&[u8], &str); 7] = [
        (b"", "empty"),
        (b"not a key", "garbage"),
        (&file("rsa1024.pkcs8.pem"), "RSA-1024"),
        (&file("p521.pkcs8.pem"), "P-521"),
        (&file("p256.encrypted.pem"), "encrypted"),
        (&file("p256.spki.pem"), "a public key as private key"),
        (&[0xff, 0xfe, 0x00], "binary"),
    ];
    for (bytes, what) in cases {
        let err = SigningKey::from_pem(bytes).expect_err(what);
        assert!(matches!(err, AuthError::InvalidKey(_)), "{what}: {err:?}");
        assert!(!err.to_string().contains("MII"), "{what}: {err}");
    }
    for (bytes, what) in [
        (&file("p256.pkcs8.pem")[..], "a private key as public key"),
        (b"0sAAAA", "short rsasigkey"),
        (
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "bad SPKI",
        ),
    ] {
        let err = VerifyingKey::from_pem(bytes).expect_err(what);
        assert!(matches!(err, AuthError::InvalidKey(_)), "{what}: {err:?}");
    }
}

#[test]
fn openssl_signatures_verify_and_tampered_ones_do_not() {
    let msg = file("message.bin");
    let cases = [
        (
            "rsa2048.spki.pem",
            SignatureScheme::RsaPssSha256,
            "rsa2048.pss-sha256.sig",
        ),
        (
            "rsa2048.spki.pem",
            SignatureScheme::RsaPkcs1Sha256,
            "rsa2048.pkcs1-sha256.sig",
        ),
        (
            "rsa2048.spki.pem",
            SignatureScheme::RsaPssSha384,
            "rsa2048.pss-sha384.sig",
        ),
        (
            "rsa2048.spki.pem",
            SignatureScheme::RsaPssSha512,
            "rsa2048.pss-sha512.sig",
        ),
        (
            "rsa2048.spki.pem",
            SignatureScheme::RsaPkcs1Sha384,
            "rsa2048.pkcs1-sha384.sig",
        ),
        (
            "rsa2048.spki.pem",
            SignatureScheme::RsaPkcs1Sha512,
            "rsa2048.pkcs1-sha512.sig",
        ),
        (
            "p256.spki.pem",
            SignatureScheme::EcdsaP256Sha256,
            "p256.sha256.sig",
        ),
        (
            "p384.spki.pem",
            SignatureScheme::EcdsaP384Sha384,
            "p384.sha384.sig",
        ),
        ("ed25519.spki.pem", SignatureScheme::Ed25519, "ed25519.sig"),
    ];
    for (pk, scheme, sig) in cases {
        let pk = public(pk);
        let data = framed(scheme, &file(sig));
        assert_eq!(
            auth::verify_digital_signature_auth(&pk, &msg, &data),
            Ok(scheme),
            "{scheme:?}"
        );
        let mut other = msg.clone();
        other[0] ^= 1;
        assert_eq!(
            auth::verify_digital_signature_auth(&pk, &other, &data),
            Err(AuthError::VerificationFailed),
            "{scheme:?}"
        );
    }
    let VerifyingKey::Rsa(k) = public("rsa2048.spki.pem") else {
        panic!("not RSA")
    };
    auth::rsa_sha1_verify(&k, &msg, &file("rsa2048.pkcs1-sha1.sig")).unwrap();
    assert!(auth::rsa_sha1_verify(&k, b"other", &file("rsa2048.pkcs1-sha1.sig")).is_err());
}

#[test]
fn loaded_keys_sign_what_their_public_halves_verify() {
    let msg = b"InitiatorSignedOctets";
    for (sk, pk) in [
        ("rsa2048.pkcs1.pem", "rsa2048.spki.pem"),
        ("p256.sec1.pem", "p256.spki.pem"),
        ("p384.pkcs8.pem", "p384.spki.pem"),
        ("ed25519.pkcs8.pem", "ed25519.spki.pem"),
    ] {
        let sk = private(sk);
        let pk = public(pk);
        for padding in [RsaPadding::Pss, RsaPadding::Pkcs1v15] {
            let scheme = auth::choose_scheme(&sk, padding, &SUPPORTED_HASH_ALGORITHMS)
                .expect("a scheme for every supported key");
            let data = auth::digital_signature_auth(&sk, scheme, msg, &mut rng()).unwrap();
            assert_eq!(
                auth::verify_digital_signature_auth(&pk, msg, &data),
                Ok(scheme)
            );
        }
    }
}

#[test]
fn every_rsa_scheme_round_trips_and_a_pss_signature_is_no_pkcs1_one() {
    let sk = private("rsa2048.pkcs8.pem");
    let pk = public("rsa2048.spki.pem");
    let msg = b"ResponderSignedOctets";
    for scheme in SignatureScheme::ALL {
        let data = auth::digital_signature_auth(&sk, scheme, msg, &mut rng());
        if scheme.algorithm_identifier().starts_with(&[0x30, 0x0a])
            || scheme == SignatureScheme::Ed25519
        {
            assert_eq!(data, Err(AuthError::KeyMismatch(scheme)), "{scheme:?}");
            continue;
        }
        let data = data.unwrap();
        assert_eq!(
            auth::verify_digital_signature_auth(&pk, msg, &data),
            Ok(scheme)
        );
        // The same signature under another scheme's AlgorithmIdentifier does not verify.
        let alg_len = usize::from(data[0]);
        let other = match scheme {
            SignatureScheme::RsaPssSha384 => SignatureScheme::RsaPkcs1Sha384,
            _ => SignatureScheme::RsaPssSha384,
        };
        let relabelled = framed(other, &data[1 + alg_len..]);
        assert_eq!(
            auth::verify_digital_signature_auth(&pk, msg, &relabelled),
            Err(AuthError::VerificationFailed),
            "{scheme:?} as {other:?}"
        );
    }
}

#[test]
fn scheme_choice_follows_the_peers_hash_algorithms() {
    let rsa = private("rsa2048.pkcs8.pem");
    let ed = private("ed25519.pkcs8.pem");
    let p384 = private("p384.pkcs8.pem");
    assert_eq!(
        auth::choose_scheme(&rsa, RsaPadding::Pss, &[2]),
        Some(SignatureScheme::RsaPssSha256)
    );
    assert_eq!(
        auth::choose_scheme(&rsa, RsaPadding::Pkcs1v15, &[4, 2]),
        Some(SignatureScheme::RsaPkcs1Sha256)
    );
    // RFC 7427 section 4: never a hash the peer did not announce.
    assert_eq!(
        auth::choose_scheme(&rsa, RsaPadding::Pss, &[4, 3]),
        Some(SignatureScheme::RsaPssSha384)
    );
    assert_eq!(
        auth::choose_scheme(&rsa, RsaPadding::Pkcs1v15, &[4]),
        Some(SignatureScheme::RsaPkcs1Sha512)
    );
    assert_eq!(auth::choose_scheme(&rsa, RsaPadding::Pss, &[1, 5]), None);
    assert_eq!(auth::choose_scheme(&rsa, RsaPadding::Pss, &[]), None);
    assert_eq!(auth::choose_scheme(&ed, RsaPadding::Pss, &[2, 3, 4]), None);
    assert_eq!(
        auth::choose_scheme(&ed, RsaPadding::Pss, &[5]),
        Some(SignatureScheme::Ed25519)
    );
    assert_eq!(
        auth::choose_scheme(&p384, RsaPadding::Pss, &[2, 3]),
        Some(SignatureScheme::EcdsaP384Sha384)
    );
}

/// Every private key type a [`SigningKey`] holds wipes itself on drop (a compile-time check:
/// this stops building if a dependency drops the guarantee).
#[test]
fn private_key_types_zeroize_on_drop() {
    fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroized_on_drop::<rsa::PrivateKey>();
    zeroized_on_drop::<p256::ecdsa::SigningKey>();
    zeroized_on_drop::<p384::ecdsa::SigningKey>();
    zeroized_on_drop::<ed25519_dalek::SigningKey>();
}
