//! Diffie-Hellman known-answer and validation tests.
//!
//! Sources: RFC 5114 Appendix A (groups 22-24 and the P-256/384/521 curves of groups
//! 19-21, `vectors/rfc5114.rs`, extracted by script from the RFC text); RFC 5903 section 8
//! and RFC 7748 section 5.2 (`vectors/rfc5903_rfc7748.rs`); RFC 7748 section 6.1
//! and RFC 8031 X25519 vectors and strongSwan's generated MODP vectors for groups 2, 5, 14-18
//! (`vectors/strongswan.rs`). `python/crosscheck.py` checks all of them independently.

#[path = "vectors/rfc5114.rs"]
mod rfc5114;
#[path = "vectors/strongswan.rs"]
mod strongswan;

use vpn_ike_crypto::dh::{DhError, DhGroup, DhPrivateKey};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

fn rng() -> impl rand_core::CryptoRng {
    rand_core::UnwrapErr(getrandom::SysRng)
}

fn kat(group: DhGroup, xa: &str, ya: &str, xb: &str, yb: &str, z: &str) {
    let a = DhPrivateKey::from_private_bytes(group, &h(xa)).unwrap();
    let b = DhPrivateKey::from_private_bytes(group, &h(xb)).unwrap();
    assert_eq!(a.public_value(), h(ya), "{group:?} yA");
    assert_eq!(b.public_value(), h(yb), "{group:?} yB");
    assert_eq!(
        a.compute_shared_secret(&h(yb)).unwrap().as_bytes(),
        h(z),
        "{group:?} Z"
    );
    assert_eq!(
        b.compute_shared_secret(&h(ya)).unwrap().as_bytes(),
        h(z),
        "{group:?} Z"
    );
}

#[test]
fn rfc5114_a1_a3_modp_subgroup_groups() {
    use rfc5114::*;
    kat(DhGroup::Modp1024S160, G22_XA, G22_YA, G22_XB, G22_YB, G22_Z);
    kat(DhGroup::Modp2048S224, G23_XA, G23_YA, G23_XB, G23_YB, G23_Z);
    kat(DhGroup::Modp2048S256, G24_XA, G24_YA, G24_XB, G24_YB, G24_Z);
}

#[test]
fn rfc5114_a6_a8_ecp_groups() {
    use rfc5114::*;
    let cat = |x: &str, y: &str| {
        format!(
            "{}{}",
            x.split_whitespace().collect::<String>(),
            y.split_whitespace().collect::<String>()
        )
    };
    kat(
        DhGroup::Ecp256,
        ECP256_DA,
        &cat(ECP256_X_QA, ECP256_Y_QA),
        ECP256_DB,
        &cat(ECP256_X_QB, ECP256_Y_QB),
        ECP256_X_Z,
    );
    kat(
        DhGroup::Ecp384,
        ECP384_DA,
        &cat(ECP384_X_QA, ECP384_Y_QA),
        ECP384_DB,
        &cat(ECP384_X_QB, ECP384_Y_QB),
        ECP384_X_Z,
    );
    kat(
        DhGroup::Ecp521,
        ECP521_DA,
        &cat(ECP521_X_QA, ECP521_Y_QA),
        ECP521_DB,
        &cat(ECP521_X_QB, ECP521_Y_QB),
        ECP521_X_Z,
    );
}

#[test]
fn strongswan_modp_and_rfc7748_x25519_vectors() {
    let mut seen = Vec::new();
    for v in strongswan::ke_vectors() {
        let group = match v.method {
            "MODP_1024_BIT" => DhGroup::Modp1024,
            "MODP_1536_BIT" => DhGroup::Modp1536,
            "MODP_2048_BIT" => DhGroup::Modp2048,
            "MODP_3072_BIT" => DhGroup::Modp3072,
            "MODP_4096_BIT" => DhGroup::Modp4096,
            "MODP_6144_BIT" => DhGroup::Modp6144,
            "MODP_8192_BIT" => DhGroup::Modp8192,
            "CURVE_25519" => DhGroup::Curve25519,
            _ => continue, // MODP 768 (group 1) is not supported
        };
        let (xi, xr) = v.seed.split_at(v.seed.len() / 2);
        let a = DhPrivateKey::from_private_bytes(group, xi).unwrap();
        let b = DhPrivateKey::from_private_bytes(group, xr).unwrap();
        assert_eq!(a.public_value(), v.pub_i.as_slice(), "{}", v.name);
        assert_eq!(b.public_value(), v.pub_r.as_slice(), "{}", v.name);
        assert_eq!(
            a.compute_shared_secret(&v.pub_r).unwrap().as_bytes(),
            v.shared.as_slice(),
            "{}",
            v.name
        );
        assert_eq!(
            b.compute_shared_secret(&v.pub_i).unwrap().as_bytes(),
            v.shared.as_slice(),
            "{}",
            v.name
        );
        seen.push(group);
    }
    assert_eq!(seen.len(), 9);
}

#[test]
fn round_trip_every_group() {
    let mut r = rng();
    for g in DhGroup::ALL {
        let a = DhPrivateKey::generate(g, &mut r);
        let b = DhPrivateKey::generate(g, &mut r);
        assert_eq!(a.public_value().len(), g.public_value_len(), "{g:?}");
        let za = a.compute_shared_secret(b.public_value()).unwrap();
        let zb = b.compute_shared_secret(a.public_value()).unwrap();
        assert_eq!(za.as_bytes(), zb.as_bytes(), "{g:?}");
        assert_eq!(za.len(), g.shared_secret_len(), "{g:?}");
        assert_ne!(a.public_value(), b.public_value());
        assert!(format!("{a:?}").contains("DhPrivateKey"));
        assert_eq!(DhGroup::from_transform_id(g.transform_id()), Some(g));
    }
}

fn be(len: usize, tail: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; len];
    v[len - tail.len()..].copy_from_slice(tail);
    v
}

#[test]
fn invalid_modp_values_rejected() {
    let mut r = rng();
    for g in DhGroup::ALL.into_iter().filter(|g| g.is_modp()) {
        let k = DhPrivateKey::generate(g, &mut r);
        let len = g.public_value_len();
        let p = vpn_ike_crypto::dh::modp_prime(g).unwrap();
        assert_eq!(p.len(), len);
        let mut p_minus_1 = p.clone();
        *p_minus_1.last_mut().unwrap() -= 1; // p is odd
        for bad in [
            be(len, &[0]),
            be(len, &[1]),
            p_minus_1,
            p.clone(),
            vec![0xff; len],
        ] {
            assert_eq!(
                k.compute_shared_secret(&bad).unwrap_err(),
                DhError::PublicValueOutOfRange,
                "{g:?}"
            );
        }
        if *p.last().unwrap() != 0xff {
            let mut p_plus_1 = p.clone();
            *p_plus_1.last_mut().unwrap() += 1;
            assert_eq!(
                k.compute_shared_secret(&p_plus_1).unwrap_err(),
                DhError::PublicValueOutOfRange
            );
        }
        assert!(matches!(
            k.compute_shared_secret(&vec![5; len - 1]),
            Err(DhError::InvalidLength { .. })
        ));
        assert!(matches!(
            k.compute_shared_secret(&vec![5; len + 1]),
            Err(DhError::InvalidLength { .. })
        ));
        assert!(matches!(
            k.compute_shared_secret(&[]),
            Err(DhError::InvalidLength { .. })
        ));
        // 2 is in range; for the RFC 5114 groups it is (overwhelmingly likely) outside the
        // order-q subgroup and must be rejected.
        let two = be(len, &[2]);
        match g {
            DhGroup::Modp1024S160 | DhGroup::Modp2048S224 | DhGroup::Modp2048S256 => {
                assert_eq!(
                    k.compute_shared_secret(&two).unwrap_err(),
                    DhError::PublicValueNotInSubgroup,
                    "{g:?}"
                );
            }
            _ => assert!(k.compute_shared_secret(&two).is_ok()),
        }
    }
}

#[test]
fn invalid_ecp_points_rejected() {
    let mut r = rng();
    for g in [DhGroup::Ecp256, DhGroup::Ecp384, DhGroup::Ecp521] {
        let k = DhPrivateKey::generate(g, &mut r);
        let other = DhPrivateKey::generate(g, &mut r);
        let len = g.public_value_len();
        // Not on the curve: flip a bit of y.
        let mut off = other.public_value().to_vec();
        off[len - 1] ^= 1;
        assert_eq!(
            k.compute_shared_secret(&off).unwrap_err(),
            DhError::InvalidPoint,
            "{g:?}"
        );
        // All-zero (would be the identity/encoding of (0,0), not on the curve).
        assert_eq!(
            k.compute_shared_secret(&vec![0; len]).unwrap_err(),
            DhError::InvalidPoint
        );
        assert_eq!(
            k.compute_shared_secret(&vec![0xff; len]).unwrap_err(),
            DhError::InvalidPoint
        );
        // SEC1 encodings are not accepted: IKE sends x | y only.
        let mut sec1 = vec![4u8];
        sec1.extend_from_slice(other.public_value());
        assert!(matches!(
            k.compute_shared_secret(&sec1),
            Err(DhError::InvalidLength { .. })
        ));
    }
}

#[test]
fn x25519_low_order_points_rejected() {
    let mut r = rng();
    let k = DhPrivateKey::generate(DhGroup::Curve25519, &mut r);
    // The all-zero point and the point of order 1 (u = 1) give an all-zero shared secret.
    let mut one = [0u8; 32];
    one[0] = 1;
    for bad in [[0u8; 32], one] {
        assert_eq!(
            k.compute_shared_secret(&bad).unwrap_err(),
            DhError::DegenerateSharedSecret
        );
    }
    assert!(matches!(
        k.compute_shared_secret(&[9; 31]),
        Err(DhError::InvalidLength { .. })
    ));
}

#[test]
fn weak_groups_flagged() {
    let weak: Vec<_> = DhGroup::ALL.into_iter().filter(|g| g.is_weak()).collect();
    assert_eq!(
        weak,
        vec![DhGroup::Modp1024, DhGroup::Modp1536, DhGroup::Modp1024S160]
    );
    assert!(!DhGroup::Modp2048.is_weak() && !DhGroup::Curve25519.is_weak());
}

#[test]
fn rfc3526_prime_hex_spot_checks() {
    // First and last words of the primes as printed in RFC 3526 / RFC 2409 (the full values
    // are checked against the RFC formulas by python/crosscheck.py).
    for (g, tail) in [
        (DhGroup::Modp1024, "49286651ECE65381FFFFFFFFFFFFFFFF"),
        (
            DhGroup::Modp1536,
            "670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF",
        ),
        (DhGroup::Modp2048, "15728E5A8AACAA68FFFFFFFFFFFFFFFF"),
    ] {
        let p = vpn_ike_crypto::dh::modp_prime(g).unwrap();
        assert_eq!(&p[..12], h("FFFFFFFFFFFFFFFFC90FDAA2"));
        assert!(hex::encode_upper(&p).ends_with(tail), "{g:?}");
    }
}

#[path = "vectors/rfc5903_rfc7748.rs"]
mod more;

#[test]
fn rfc5903_section8_ecp_vectors() {
    for (group, (sec, i, gix, giy, r, grx, gry, girx)) in
        [DhGroup::Ecp256, DhGroup::Ecp384, DhGroup::Ecp521]
            .into_iter()
            .zip(more::RFC5903)
    {
        let gi = format!("{gix}{giy}");
        let gr = format!("{grx}{gry}");
        let a = DhPrivateKey::from_private_bytes(group, &h(i)).unwrap();
        let b = DhPrivateKey::from_private_bytes(group, &h(r)).unwrap();
        assert_eq!(a.public_value(), h(&gi), "RFC 5903 {sec} KEi");
        assert_eq!(b.public_value(), h(&gr), "RFC 5903 {sec} KEr");
        assert_eq!(
            a.compute_shared_secret(&h(&gr)).unwrap().as_bytes(),
            h(girx),
            "RFC 5903 {sec}"
        );
        assert_eq!(
            b.compute_shared_secret(&h(&gi)).unwrap().as_bytes(),
            h(girx),
            "RFC 5903 {sec}"
        );
    }
}

#[test]
fn rfc7748_section5_2_x25519() {
    for (k, u, out) in more::RFC7748_52 {
        let key = DhPrivateKey::from_private_bytes(DhGroup::Curve25519, &h(k)).unwrap();
        assert_eq!(key.compute_shared_secret(&h(u)).unwrap().as_bytes(), h(out));
    }
    let (mut k, mut u) = (h(more::RFC7748_ITER[0].1), h(more::RFC7748_ITER[0].1));
    k.fill(0);
    k[0] = 9;
    u.copy_from_slice(&k);
    for iteration in 1..=1000 {
        let key = DhPrivateKey::from_private_bytes(DhGroup::Curve25519, &k).unwrap();
        let next = key.compute_shared_secret(&u).unwrap().as_bytes().to_vec();
        u = std::mem::replace(&mut k, next);
        for (n, expected) in more::RFC7748_ITER {
            if n == iteration {
                assert_eq!(k, h(expected), "after {n} iterations");
            }
        }
    }
}
