//! SK payload protection tests.
//!
//! Sources: the McGrew & Viega / NIST GCM test cases with a 16-byte ICV (via strongSwan's
//! `aes_gcm.c`, `vectors/strongswan.rs`); complete SK payload bodies for every suite built by
//! Python's `cryptography` AES-CBC/AES-GCM and stdlib HMAC (`vectors/python_generated.rs`).

#[path = "vectors/python_generated.rs"]
mod py;
#[path = "vectors/strongswan.rs"]
mod strongswan;

use vpn_ike_crypto::ike_cipher::{
    EncrAlgorithm, IkeCipherError, IntegAlgorithm, SkCipher, raw_gcm_seal,
};

fn parse_encr(s: &str) -> EncrAlgorithm {
    match s {
        "AesCbc128" => EncrAlgorithm::AesCbc128,
        "AesCbc192" => EncrAlgorithm::AesCbc192,
        "AesCbc256" => EncrAlgorithm::AesCbc256,
        "AesGcm16_128" => EncrAlgorithm::AesGcm16_128,
        "AesGcm16_192" => EncrAlgorithm::AesGcm16_192,
        "AesGcm16_256" => EncrAlgorithm::AesGcm16_256,
        o => panic!("{o}"),
    }
}

fn parse_integ(s: &str) -> Option<IntegAlgorithm> {
    match s {
        "" => None,
        "HmacSha1_96" => Some(IntegAlgorithm::HmacSha1_96),
        "HmacSha256_128" => Some(IntegAlgorithm::HmacSha256_128),
        "HmacSha384_192" => Some(IntegAlgorithm::HmacSha384_192),
        "HmacSha512_256" => Some(IntegAlgorithm::HmacSha512_256),
        o => panic!("{o}"),
    }
}

#[test]
fn gcm_known_answers() {
    let v = strongswan::aead_vectors();
    assert_eq!(v.len(), 15);
    for t in v {
        let (key, salt) = t.key.split_at(t.key.len() - 4);
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(salt);
        nonce[4..].copy_from_slice(&t.iv);
        let out = raw_gcm_seal(key, &nonce, &t.adata, &t.plain).unwrap();
        assert_eq!(out, t.cipher, "{}", t.name);
    }
}

const SK_CASES: [&py::Case; 7] = [
    &py::SK_AESCBC128_HMACSHA1_96,
    &py::SK_AESCBC256_HMACSHA256_128,
    &py::SK_AESCBC256_HMACSHA384_192,
    &py::SK_AESCBC128_HMACSHA512_256,
    &py::SK_AESGCM16_128_AEAD,
    &py::SK_AESGCM16_192_AEAD,
    &py::SK_AESGCM16_256_AEAD,
];
const SKPAD_CASES: [&py::Case; 7] = [
    &py::SKPAD_AESCBC128_HMACSHA1_96,
    &py::SKPAD_AESCBC256_HMACSHA256_128,
    &py::SKPAD_AESCBC256_HMACSHA384_192,
    &py::SKPAD_AESCBC128_HMACSHA512_256,
    &py::SKPAD_AESGCM16_128_AEAD,
    &py::SKPAD_AESGCM16_192_AEAD,
    &py::SKPAD_AESGCM16_256_AEAD,
];

fn cipher(c: &py::Case) -> SkCipher {
    SkCipher::new(
        parse_encr(c.text("encr")),
        parse_integ(c.text("integ")),
        &c.get("ke"),
        &c.get("ka"),
    )
    .unwrap()
}

#[test]
fn sk_payload_matches_python_reference() {
    for c in SK_CASES {
        let sk = cipher(c);
        let (aad, pt, iv, body) = (c.get("aad"), c.get("pt"), c.get("iv"), c.get("body"));
        assert_eq!(sk.encrypted_len(pt.len()), body.len(), "{:?}", sk);
        assert_eq!(
            sk.encrypt_with_iv(&aad, &pt, &iv).unwrap(),
            body,
            "{:?}",
            sk
        );
        assert_eq!(sk.decrypt(&aad, &body).unwrap(), pt, "{:?}", sk);
    }
}

#[test]
fn decrypt_tolerates_any_padding() {
    for c in SKPAD_CASES {
        let sk = cipher(c);
        assert_eq!(
            sk.decrypt(&c.get("aad"), &c.get("body")).unwrap(),
            c.get("pt"),
            "{:?}",
            sk
        );
    }
}

#[test]
fn every_single_bit_flip_is_rejected() {
    for c in SK_CASES {
        let sk = cipher(c);
        let (aad, body) = (c.get("aad"), c.get("body"));
        for i in 0..body.len() * 8 {
            let mut b = body.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert_eq!(
                sk.decrypt(&aad, &b).unwrap_err(),
                IkeCipherError::IntegrityCheckFailed,
                "{sk:?} bit {i}"
            );
        }
        for i in 0..aad.len() * 8 {
            let mut a = aad.clone();
            a[i / 8] ^= 1 << (i % 8);
            assert_eq!(
                sk.decrypt(&a, &body).unwrap_err(),
                IkeCipherError::IntegrityCheckFailed,
                "{sk:?} aad bit {i}"
            );
        }
    }
}

#[test]
fn truncated_and_hostile_inputs_never_panic() {
    let mut seed = 0x1234_5678_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for c in SK_CASES {
        let sk = cipher(c);
        let (aad, body) = (c.get("aad"), c.get("body"));
        for n in 0..body.len() {
            assert!(sk.decrypt(&aad, &body[..n]).is_err());
        }
        for _ in 0..200 {
            let len = (next() % 128) as usize;
            let junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            assert!(sk.decrypt(&aad, &junk).is_err());
        }
    }
}

#[test]
fn bad_pad_length_is_typed_error() {
    // A correctly authenticated GCM payload whose last plaintext octet claims more padding
    // than there is data: raw GCM over [0xaa, 0x05] (pad length 5, only 1 byte before it).
    let ke: Vec<u8> = (0..20).collect();
    let sk = SkCipher::new(EncrAlgorithm::AesGcm16_128, None, &ke, &[]).unwrap();
    let iv = [7u8; 8];
    let mut nonce = [0u8; 12];
    nonce[..4].copy_from_slice(&ke[16..]);
    nonce[4..].copy_from_slice(&iv);
    for (plain, expect) in [
        (vec![0xaa, 0x05], Err(IkeCipherError::BadPadding)),
        (vec![0xaa, 0x01], Ok(vec![])),
        (vec![0xaa, 0x00], Ok(vec![0xaa])),
        (vec![0x02, 0xaa, 0xbb, 0x02], Ok(vec![0x02])),
        (vec![0x04], Err(IkeCipherError::BadPadding)),
    ] {
        let mut body = iv.to_vec();
        body.extend(raw_gcm_seal(&ke[..16], &nonce, b"hdr", &plain).unwrap());
        assert_eq!(sk.decrypt(b"hdr", &body), expect, "{plain:?}");
    }
}

#[test]
fn random_iv_round_trip_and_key_checks() {
    let mut r = rand_core::UnwrapErr(getrandom::SysRng);
    for (encr, integ) in [
        (EncrAlgorithm::AesCbc128, Some(IntegAlgorithm::HmacSha1_96)),
        (
            EncrAlgorithm::AesCbc256,
            Some(IntegAlgorithm::HmacSha512_256),
        ),
        (EncrAlgorithm::AesGcm16_256, None),
    ] {
        let ke = vec![9u8; encr.key_material_len()];
        let ka = vec![8u8; integ.map_or(0, |i| i.key_len())];
        let sk = SkCipher::new(encr, integ, &ke, &ka).unwrap();
        for len in [0usize, 1, 15, 16, 17, 100] {
            let pt = vec![0x42u8; len];
            let a = sk.encrypt(b"aad", &pt, &mut r).unwrap();
            let b = sk.encrypt(b"aad", &pt, &mut r).unwrap();
            assert_ne!(a, b, "fresh IV each time");
            assert_eq!(a.len(), sk.encrypted_len(len));
            assert_eq!(sk.decrypt(b"aad", &a).unwrap(), pt);
        }
        assert!(matches!(
            SkCipher::new(encr, integ, &ke[1..], &ka),
            Err(IkeCipherError::InvalidKeyLength { .. })
        ));
        assert!(sk.encrypt_with_iv(b"", b"", &[0; 3]).is_err());
    }
    assert!(matches!(
        SkCipher::new(
            EncrAlgorithm::AesGcm16_128,
            Some(IntegAlgorithm::HmacSha1_96),
            &[0; 20],
            &[0; 20]
        ),
        Err(IkeCipherError::UnexpectedIntegrity(_))
    ));
    assert!(matches!(
        SkCipher::new(EncrAlgorithm::AesCbc128, None, &[0; 16], &[]),
        Err(IkeCipherError::MissingIntegrity(_))
    ));
}

#[test]
fn transform_ids() {
    assert_eq!(
        EncrAlgorithm::from_transform(12, 256),
        Some(EncrAlgorithm::AesCbc256)
    );
    assert_eq!(
        EncrAlgorithm::from_transform(20, 128),
        Some(EncrAlgorithm::AesGcm16_128)
    );
    assert_eq!(EncrAlgorithm::from_transform(20, 64), None);
    assert_eq!(EncrAlgorithm::AesGcm16_192.transform_id(), 20);
    assert_eq!(
        IntegAlgorithm::from_transform_id(12),
        Some(IntegAlgorithm::HmacSha256_128)
    );
    assert_eq!(IntegAlgorithm::HmacSha512_256.transform_id(), 14);
}
