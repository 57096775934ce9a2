//! Diffie-Hellman groups for IKEv2 (IANA transform type 4).
//!
//! * MODP groups 2, 5, 14-18 (RFC 2409 section 6.2, RFC 3526) and 22-24 (RFC 5114, with
//!   subgroup-order validation of the peer's value), using constant-time Montgomery
//!   exponentiation from `crypto-bigint` (`BoxedMontyForm::pow`).
//! * ECP groups 19, 20, 21 (NIST P-256/P-384/P-521) using RustCrypto `p256`/`p384`/`p521`,
//!   with the RFC 5903 section 7 encoding: the KE data is `x | y` (no point-format octet) and
//!   the shared secret is the x-coordinate of the shared point.
//! * Curve25519 (group 31, RFC 8031) using `x25519-dalek`; an all-zero result is rejected.
//!
//! Hand-written IKE glue: the wire encodings (fixed-length big-endian MODP values, `x | y`),
//! the peer value range/subgroup checks for MODP groups, and the private exponent sizes.
//! Private exponents for groups 2-18 are random 256/384/512-bit values (the sizes strongSwan
//! uses, within the RFC 3526 section 8 guidance); for groups 22-24 they are uniform in
//! `[1, q-1]`.

use crate::dh_params as params;
use crate::secret::SecretBytes;
use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, NonZero, Odd, RandomMod};
use p256::elliptic_curve::Generate;
use rand_core::CryptoRng;
use std::sync::OnceLock;
use zeroize::Zeroizing;

/// Errors of the Diffie-Hellman computations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DhError {
    /// The peer's (or a supplied) value does not have the group's fixed length.
    #[error("{group:?} value must be {expected} bytes, got {got}")]
    InvalidLength {
        /// The group.
        group: DhGroup,
        /// Required length.
        expected: usize,
        /// Supplied length.
        got: usize,
    },
    /// MODP public value outside `1 < y < p-1`.
    #[error("MODP public value out of range")]
    PublicValueOutOfRange,
    /// MODP public value not in the prime-order subgroup (`y^q != 1 mod p`, groups 22-24).
    #[error("MODP public value is not in the prime-order subgroup")]
    PublicValueNotInSubgroup,
    /// ECP public value is not a point on the curve (or is the identity).
    #[error("ECP public value is not a valid curve point")]
    InvalidPoint,
    /// The shared secret is degenerate (X25519 all-zero output, MODP result 1).
    #[error("degenerate shared secret")]
    DegenerateSharedSecret,
    /// A supplied private key is invalid for the group (zero or out of range).
    #[error("invalid private key")]
    InvalidPrivateKey,
}

/// A Diffie-Hellman group, by IANA transform ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum DhGroup {
    /// 1024-bit MODP group (RFC 2409), ID 2. Weak.
    Modp1024 = 2,
    /// 1536-bit MODP group (RFC 3526), ID 5. Weak.
    Modp1536 = 5,
    /// 2048-bit MODP group (RFC 3526), ID 14.
    Modp2048 = 14,
    /// 3072-bit MODP group (RFC 3526), ID 15.
    Modp3072 = 15,
    /// 4096-bit MODP group (RFC 3526), ID 16.
    Modp4096 = 16,
    /// 6144-bit MODP group (RFC 3526), ID 17.
    Modp6144 = 17,
    /// 8192-bit MODP group (RFC 3526), ID 18.
    Modp8192 = 18,
    /// 256-bit random ECP group (P-256, RFC 5903), ID 19.
    Ecp256 = 19,
    /// 384-bit random ECP group (P-384, RFC 5903), ID 20.
    Ecp384 = 20,
    /// 521-bit random ECP group (P-521, RFC 5903), ID 21.
    Ecp521 = 21,
    /// 1024-bit MODP group with 160-bit prime order subgroup (RFC 5114), ID 22. Weak.
    Modp1024S160 = 22,
    /// 2048-bit MODP group with 224-bit prime order subgroup (RFC 5114), ID 23.
    Modp2048S224 = 23,
    /// 2048-bit MODP group with 256-bit prime order subgroup (RFC 5114), ID 24.
    Modp2048S256 = 24,
    /// Curve25519 (RFC 8031), ID 31.
    Curve25519 = 31,
}

impl DhGroup {
    /// All supported groups.
    pub const ALL: [DhGroup; 14] = [
        DhGroup::Modp1024,
        DhGroup::Modp1536,
        DhGroup::Modp2048,
        DhGroup::Modp3072,
        DhGroup::Modp4096,
        DhGroup::Modp6144,
        DhGroup::Modp8192,
        DhGroup::Ecp256,
        DhGroup::Ecp384,
        DhGroup::Ecp521,
        DhGroup::Modp1024S160,
        DhGroup::Modp2048S224,
        DhGroup::Modp2048S256,
        DhGroup::Curve25519,
    ];

    /// From an IANA transform ID.
    pub fn from_transform_id(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|g| *g as u16 == id)
    }

    /// IANA transform ID.
    pub fn transform_id(self) -> u16 {
        self as u16
    }

    /// Whether the group is too weak for new deployments and the engine should warn: the
    /// groups with a modulus below 2048 bits (2, 5, 22). RFC 8247 section 2.4 also says
    /// SHOULD NOT for 23 and 24 (unverifiable generation); those are not flagged here.
    pub fn is_weak(self) -> bool {
        matches!(
            self,
            DhGroup::Modp1024 | DhGroup::Modp1536 | DhGroup::Modp1024S160
        )
    }

    /// Whether this is a MODP group.
    pub fn is_modp(self) -> bool {
        !matches!(
            self,
            DhGroup::Ecp256 | DhGroup::Ecp384 | DhGroup::Ecp521 | DhGroup::Curve25519
        )
    }

    /// Length of the KE payload's key exchange data in bytes.
    pub fn public_value_len(self) -> usize {
        match self {
            DhGroup::Modp1024 | DhGroup::Modp1024S160 => 128,
            DhGroup::Modp1536 => 192,
            DhGroup::Modp2048 | DhGroup::Modp2048S224 | DhGroup::Modp2048S256 => 256,
            DhGroup::Modp3072 => 384,
            DhGroup::Modp4096 => 512,
            DhGroup::Modp6144 => 768,
            DhGroup::Modp8192 => 1024,
            DhGroup::Ecp256 => 64,
            DhGroup::Ecp384 => 96,
            DhGroup::Ecp521 => 132,
            DhGroup::Curve25519 => 32,
        }
    }

    /// Length of the shared secret g^ir in bytes.
    pub fn shared_secret_len(self) -> usize {
        match self {
            DhGroup::Ecp256 | DhGroup::Ecp384 | DhGroup::Ecp521 => self.public_value_len() / 2,
            _ => self.public_value_len(),
        }
    }

    /// Length of a private key accepted by [`DhPrivateKey::from_private_bytes`].
    pub fn private_key_len(self) -> usize {
        match self {
            DhGroup::Ecp256 | DhGroup::Curve25519 => 32,
            DhGroup::Ecp384 => 48,
            DhGroup::Ecp521 => 66,
            // MODP: big-endian exponent of any length up to the modulus length.
            _ => self.public_value_len(),
        }
    }
}

/// Decodes the RFC-layout hex constants (whitespace ignored).
fn decode_hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => unreachable!("non-hex character in a MODP constant"),
        })
        .collect();
    digits.chunks(2).map(|c| (c[0] << 4) | c[1]).collect()
}

struct ModpParams {
    p: BoxedUint,
    p_minus_1: BoxedUint,
    g: BoxedUint,
    q: Option<BoxedUint>,
    monty: BoxedMontyParams,
    bits: u32,
    exp_bits: u32,
}

impl ModpParams {
    fn new(p_hex: &str, g_hex: Option<&str>, q_hex: Option<&str>, exp_bits: u32) -> Self {
        let p_bytes = decode_hex(p_hex);
        let bits = (p_bytes.len() * 8) as u32;
        let p = BoxedUint::from_be_slice(&p_bytes, bits).unwrap_or_else(|_| unreachable!());
        let g = match g_hex {
            Some(h) => BoxedUint::from_be_slice(&decode_hex(h), bits),
            None => BoxedUint::from_be_slice(&[2], bits),
        }
        .unwrap_or_else(|_| unreachable!());
        let q = q_hex.map(|h| {
            let b = decode_hex(h);
            BoxedUint::from_be_slice(&b, (b.len() * 8).next_multiple_of(64) as u32)
                .unwrap_or_else(|_| unreachable!())
        });
        let odd = Odd::new(p.clone()).expect("MODP primes are odd");
        let p_minus_1 = p.wrapping_sub(BoxedUint::one_with_precision(bits));
        Self {
            monty: BoxedMontyParams::new_vartime(odd),
            p,
            p_minus_1,
            g,
            q,
            bits,
            exp_bits,
        }
    }

    fn pow(&self, base: &BoxedUint, exp: &BoxedUint) -> BoxedUint {
        BoxedMontyForm::new(base.clone(), &self.monty)
            .pow(exp)
            .retrieve()
    }

    fn len(&self) -> usize {
        (self.bits / 8) as usize
    }
}

fn modp_params(group: DhGroup) -> Option<&'static ModpParams> {
    macro_rules! cached {
        ($p:expr, $g:expr, $q:expr, $exp:expr) => {{
            static CELL: OnceLock<ModpParams> = OnceLock::new();
            Some(CELL.get_or_init(|| ModpParams::new($p, $g, $q, $exp)))
        }};
    }
    match group {
        DhGroup::Modp1024 => cached!(params::MODP_1024_P, None, None, 256),
        DhGroup::Modp1536 => cached!(params::MODP_1536_P, None, None, 256),
        DhGroup::Modp2048 => cached!(params::MODP_2048_P, None, None, 384),
        DhGroup::Modp3072 => cached!(params::MODP_3072_P, None, None, 384),
        DhGroup::Modp4096 => cached!(params::MODP_4096_P, None, None, 512),
        DhGroup::Modp6144 => cached!(params::MODP_6144_P, None, None, 512),
        DhGroup::Modp8192 => cached!(params::MODP_8192_P, None, None, 512),
        DhGroup::Modp1024S160 => cached!(
            params::MODP_1024_160_P,
            Some(params::MODP_1024_160_G),
            Some(params::MODP_1024_160_Q),
            160
        ),
        DhGroup::Modp2048S224 => cached!(
            params::MODP_2048_224_P,
            Some(params::MODP_2048_224_G),
            Some(params::MODP_2048_224_Q),
            224
        ),
        DhGroup::Modp2048S256 => cached!(
            params::MODP_2048_256_P,
            Some(params::MODP_2048_256_G),
            Some(params::MODP_2048_256_Q),
            256
        ),
        _ => None,
    }
}

/// The group's prime `p` as big-endian bytes (MODP groups only), for tests and diagnostics.
pub fn modp_prime(group: DhGroup) -> Option<Vec<u8>> {
    modp_params(group).map(|m| m.p.to_be_bytes().to_vec())
}

/// Left-pads a big-endian value to `len` bytes.
fn to_fixed_be(v: &BoxedUint, len: usize) -> Zeroizing<Vec<u8>> {
    let raw = Zeroizing::new(v.to_be_bytes().to_vec());
    let mut out = Zeroizing::new(vec![0u8; len]);
    if raw.len() >= len {
        out.copy_from_slice(&raw[raw.len() - len..]);
    } else {
        out[len - raw.len()..].copy_from_slice(&raw);
    }
    out
}

enum Secret {
    Modp(Zeroizing<BoxedUint>),
    P256(p256::SecretKey),
    P384(p384::SecretKey),
    P521(p521::SecretKey),
    X25519(x25519_dalek::StaticSecret),
}

/// A Diffie-Hellman private key with its public value. Zeroized on drop; `Debug` shows only
/// the group.
pub struct DhPrivateKey {
    group: DhGroup,
    secret: Secret,
    public: Vec<u8>,
}

impl core::fmt::Debug for DhPrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DhPrivateKey")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

macro_rules! ecp_public {
    ($sk:expr) => {{
        use p256::elliptic_curve::sec1::ToSec1Point;
        let point = $sk.public_key().to_sec1_point(false);
        // Uncompressed SEC1 encoding is 0x04 | x | y; IKE sends x | y (RFC 5903 section 7).
        point.as_bytes()[1..].to_vec()
    }};
}

macro_rules! ecp_shared {
    ($curve:ident, $sk:expr, $peer:expr) => {{
        let mut sec1 = Vec::with_capacity($peer.len() + 1);
        sec1.push(0x04);
        sec1.extend_from_slice($peer);
        let pk = $curve::PublicKey::from_sec1_bytes(&sec1).map_err(|_| DhError::InvalidPoint)?;
        let shared = $sk.diffie_hellman(&pk);
        SecretBytes::from_slice(shared.raw_secret_bytes().as_slice())
    }};
}

impl DhPrivateKey {
    /// Generates a fresh key pair for `group` with the caller's CSPRNG.
    pub fn generate(group: DhGroup, rng: &mut (impl CryptoRng + ?Sized)) -> Self {
        let secret = match group {
            DhGroup::Ecp256 => Secret::P256(p256::SecretKey::generate_from_rng(rng)),
            DhGroup::Ecp384 => Secret::P384(p384::SecretKey::generate_from_rng(rng)),
            DhGroup::Ecp521 => Secret::P521(p521::SecretKey::generate_from_rng(rng)),
            DhGroup::Curve25519 => Secret::X25519(x25519_dalek::StaticSecret::random_from_rng(rng)),
            _ => {
                // Every remaining group is MODP.
                let m = modp_params(group).unwrap_or_else(|| unreachable!());
                let x = match &m.q {
                    Some(q) => {
                        // Uniform in [1, q-1].
                        let one = BoxedUint::one_with_precision(q.bits_precision());
                        let q_minus_1 =
                            NonZero::new(q.wrapping_sub(&one)).expect("subgroup order is > 1");
                        BoxedUint::random_mod_vartime(rng, &q_minus_1).wrapping_add(&one)
                    }
                    None => {
                        let mut buf = Zeroizing::new(vec![0u8; (m.exp_bits / 8) as usize]);
                        rng.fill_bytes(&mut buf);
                        // Fixed-length exponent: top bit set.
                        buf[0] |= 0x80;
                        BoxedUint::from_be_slice(&buf, m.exp_bits)
                            .unwrap_or_else(|_| unreachable!())
                    }
                };
                Secret::Modp(Zeroizing::new(x))
            }
        };
        Self::from_secret(group, secret)
    }

    /// Builds a key from fixed private bytes: the big-endian exponent for MODP groups, the
    /// big-endian scalar for ECP groups, the 32-byte scalar for Curve25519. Meant for
    /// known-answer tests; never use a fixed private key on the wire.
    pub fn from_private_bytes(group: DhGroup, bytes: &[u8]) -> Result<Self, DhError> {
        let len_err = || DhError::InvalidLength {
            group,
            expected: group.private_key_len(),
            got: bytes.len(),
        };
        let secret = match group {
            DhGroup::Ecp256 => Secret::P256(
                p256::SecretKey::from_slice(bytes).map_err(|_| DhError::InvalidPrivateKey)?,
            ),
            DhGroup::Ecp384 => Secret::P384(
                p384::SecretKey::from_slice(bytes).map_err(|_| DhError::InvalidPrivateKey)?,
            ),
            DhGroup::Ecp521 => {
                if bytes.len() != 66 {
                    return Err(len_err());
                }
                Secret::P521(
                    p521::SecretKey::from_slice(bytes).map_err(|_| DhError::InvalidPrivateKey)?,
                )
            }
            DhGroup::Curve25519 => {
                let arr: [u8; 32] = bytes.try_into().map_err(|_| len_err())?;
                Secret::X25519(x25519_dalek::StaticSecret::from(arr))
            }
            _ => {
                let m = modp_params(group).unwrap_or_else(|| unreachable!());
                if bytes.is_empty() || bytes.len() > m.len() {
                    return Err(len_err());
                }
                let prec = ((bytes.len() * 8) as u32).next_multiple_of(64);
                let x = BoxedUint::from_be_slice(bytes, prec)
                    .map_err(|_| DhError::InvalidPrivateKey)?;
                if bool::from(x.is_zero()) {
                    return Err(DhError::InvalidPrivateKey);
                }
                Secret::Modp(Zeroizing::new(x))
            }
        };
        Ok(Self::from_secret(group, secret))
    }

    fn from_secret(group: DhGroup, secret: Secret) -> Self {
        let public = match &secret {
            Secret::Modp(x) => {
                let m = modp_params(group).unwrap_or_else(|| unreachable!());
                to_fixed_be(&m.pow(&m.g, x), m.len()).to_vec()
            }
            Secret::P256(sk) => ecp_public!(sk),
            Secret::P384(sk) => ecp_public!(sk),
            Secret::P521(sk) => ecp_public!(sk),
            Secret::X25519(sk) => x25519_dalek::PublicKey::from(sk).as_bytes().to_vec(),
        };
        Self {
            group,
            secret,
            public,
        }
    }

    /// The group.
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// The public value as sent in the KE payload.
    pub fn public_value(&self) -> &[u8] {
        &self.public
    }

    /// Validates the peer's KE data and computes g^ir (big-endian, padded to the modulus
    /// length for MODP; the x-coordinate for ECP; 32 bytes for Curve25519).
    pub fn compute_shared_secret(&self, peer: &[u8]) -> Result<SecretBytes, DhError> {
        if peer.len() != self.group.public_value_len() {
            return Err(DhError::InvalidLength {
                group: self.group,
                expected: self.group.public_value_len(),
                got: peer.len(),
            });
        }
        Ok(match &self.secret {
            Secret::Modp(x) => {
                let m = modp_params(self.group).unwrap_or_else(|| unreachable!());
                let y = BoxedUint::from_be_slice(peer, m.bits)
                    .map_err(|_| DhError::PublicValueOutOfRange)?;
                let one = BoxedUint::one_with_precision(m.bits);
                // Public values are not secret: variable-time comparisons are fine.
                if y <= one || y >= m.p_minus_1 || y >= m.p {
                    return Err(DhError::PublicValueOutOfRange);
                }
                if let Some(q) = &m.q
                    && m.pow(&y, q) != one
                {
                    return Err(DhError::PublicValueNotInSubgroup);
                }
                let z = Zeroizing::new(m.pow(&y, x));
                if *z == one {
                    return Err(DhError::DegenerateSharedSecret);
                }
                SecretBytes::from_zeroizing(to_fixed_be(&z, m.len()))
            }
            Secret::P256(sk) => ecp_shared!(p256, sk, peer),
            Secret::P384(sk) => ecp_shared!(p384, sk, peer),
            Secret::P521(sk) => ecp_shared!(p521, sk, peer),
            Secret::X25519(sk) => {
                let arr: [u8; 32] = peer.try_into().map_err(|_| DhError::InvalidPoint)?;
                let shared = sk.diffie_hellman(&x25519_dalek::PublicKey::from(arr));
                if !shared.was_contributory() {
                    return Err(DhError::DegenerateSharedSecret);
                }
                SecretBytes::from_slice(shared.as_bytes())
            }
        })
    }
}
