//! AUTH payload computation (RFC 7296 sections 2.15 and 3.8, RFC 7427, RFC 8420).
//!
//! * Shared key MIC (auth method 2): `AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"),
//!   <SignedOctets>)`, verified in constant time.
//! * RSA digital signature (auth method 1): RSASSA-PKCS1-v1_5 with SHA-1 over the signed
//!   octets, with raw public keys in the RFC 3110 format strongSwan's `leftrsasigkey=0s...`
//!   uses.
//! * Digital signature (auth method 14, RFC 7427): `ASN.1 length | AlgorithmIdentifier |
//!   signature` for RSASSA-PSS with SHA-256/384/512 (MGF1 with the same hash, salt as long
//!   as the hash), RSASSA-PKCS1-v1_5 with SHA-256/384/512, ECDSA P-256/SHA-256 and
//!   P-384/SHA-384 (DER `Ecdsa-Sig-Value`), and Ed25519 (RFC 8420: PureEdDSA over the
//!   signed octets).
//!
//! The signature algorithms are RustCrypto `rsa`, `p256`/`p384` (`ecdsa`) and
//! `ed25519-dalek`. Hand-written IKE glue: the signed-octets concatenation, the key pad, the
//! RFC 7427 AUTH data framing, the AlgorithmIdentifier constants (RFC 7427 Appendix A, as
//! transcribed in libreswan's `ietf_constants.h`; Ed25519 from RFC 8420 section 2) and the
//! RFC 3110 public key parser.

use crate::prf::PrfAlgorithm;
use crate::secret::SecretBytes;
use base64::Engine as _;
use rand_core::CryptoRng;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer, Verifier};
use subtle::ConstantTimeEq;

/// The key pad of RFC 7296 section 2.15 (17 ASCII octets, no NUL).
pub const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// Errors of AUTH computation and verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The AUTH value does not verify.
    #[error("AUTH verification failed")]
    VerificationFailed,
    /// The AUTH data is not well-formed (RFC 7427 framing, signature encoding).
    #[error("malformed AUTH data")]
    Malformed,
    /// The AlgorithmIdentifier is not one this crate supports.
    #[error("unsupported signature algorithm")]
    UnsupportedAlgorithm,
    /// The signature algorithm does not match the peer's key type.
    #[error("signature algorithm {0:?} does not match the key")]
    KeyMismatch(SignatureScheme),
    /// A public or private key could not be parsed or is unacceptable.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// The signing operation failed.
    #[error("signing failed")]
    SigningFailed,
}

/// IKEv2 authentication methods handled here (IANA "IKEv2 Authentication Method").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AuthMethod {
    /// RSA Digital Signature (PKCS#1 v1.5 with SHA-1).
    RsaSignature = 1,
    /// Shared Key Message Integrity Code.
    SharedKeyMic = 2,
    /// Digital Signature (RFC 7427).
    DigitalSignature = 14,
}

impl AuthMethod {
    /// From the AUTH payload's Auth Method field.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::RsaSignature),
            2 => Some(Self::SharedKeyMic),
            14 => Some(Self::DigitalSignature),
            _ => None,
        }
    }
}

/// Builds the octets an AUTH payload signs or MACs (RFC 7296 section 2.15):
///
/// ```text
/// InitiatorSignedOctets = RealMessage1 | NonceRData | prf(SK_pi, RestOfInitIDPayload)
/// ResponderSignedOctets = RealMessage2 | NonceIData | prf(SK_pr, RestOfRespIDPayload)
/// ```
///
/// `own_message` is the signer's IKE_SA_INIT message exactly as sent, `peer_nonce` the
/// other side's Nonce payload data, `sk_p` SK_pi (initiator) or SK_pr (responder), and
/// `id_payload_body` the signer's ID payload from the ID Type octet to the end (without the
/// 4-byte generic payload header).
pub fn signed_octets(
    prf: PrfAlgorithm,
    own_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_payload_body: &[u8],
) -> Vec<u8> {
    let maced_id = prf.prf(sk_p, id_payload_body);
    let mut out = Vec::with_capacity(own_message.len() + peer_nonce.len() + maced_id.len());
    out.extend_from_slice(own_message);
    out.extend_from_slice(peer_nonce);
    out.extend_from_slice(maced_id.as_bytes());
    out
}

/// Shared key MIC: `prf(prf(psk, "Key Pad for IKEv2"), signed_octets)`.
pub fn psk_auth(prf: PrfAlgorithm, psk: &[u8], signed_octets: &[u8]) -> SecretBytes {
    let padded = prf.prf(psk, KEY_PAD);
    prf.prf(padded.as_bytes(), signed_octets)
}

/// Verifies a received shared key MIC in constant time.
pub fn verify_psk_auth(
    prf: PrfAlgorithm,
    psk: &[u8],
    signed_octets: &[u8],
    received: &[u8],
) -> Result<(), AuthError> {
    let expected = psk_auth(prf, psk, signed_octets);
    let same = expected.len() == received.len() && bool::from(expected.as_bytes().ct_eq(received));
    if same {
        Ok(())
    } else {
        Err(AuthError::VerificationFailed)
    }
}

/// Parses an RSA public key in RFC 3110 format (exponent length, exponent, modulus), the
/// binary form of strongSwan's / libreswan's `rsasigkey`.
pub fn rsa_public_key_from_rfc3110(bytes: &[u8]) -> Result<rsa::PublicKey, AuthError> {
    let bad = AuthError::InvalidKey("RFC 3110 RSA key");
    let (&first, rest) = bytes.split_first().ok_or(bad.clone())?;
    let (e_len, rest) = if first == 0 {
        if rest.len() < 2 {
            return Err(bad);
        }
        (
            usize::from(u16::from_be_bytes([rest[0], rest[1]])),
            &rest[2..],
        )
    } else {
        (usize::from(first), rest)
    };
    if e_len == 0 || rest.len() <= e_len {
        return Err(bad);
    }
    let (e, n) = rest.split_at(e_len);
    rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(n),
        rsa::BoxedUint::from_be_slice_vartime(e),
    )
    .map_err(|_| AuthError::InvalidKey("RSA public key parameters"))
}

/// Parses a `rsasigkey` value: `0s` followed by base64 of the RFC 3110 key, or `0x`
/// followed by hex.
pub fn rsa_public_key_from_rsasigkey(text: &str) -> Result<rsa::PublicKey, AuthError> {
    let text = text.trim();
    let bytes = if let Some(b64) = text.strip_prefix("0s") {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| AuthError::InvalidKey("rsasigkey base64"))?
    } else if let Some(hex) = text.strip_prefix("0x") {
        decode_hex(hex).ok_or(AuthError::InvalidKey("rsasigkey hex"))?
    } else {
        return Err(AuthError::InvalidKey("rsasigkey prefix (0s or 0x)"));
    };
    rsa_public_key_from_rfc3110(&bytes)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|c| {
            let h = (c[0] as char).to_digit(16)?;
            let l = (c[1] as char).to_digit(16)?;
            Some((h * 16 + l) as u8)
        })
        .collect()
}

/// Auth method 1: RSASSA-PKCS1-v1_5 with SHA-1 over the signed octets.
pub fn rsa_sha1_sign(key: &rsa::PrivateKey, signed_octets: &[u8]) -> Result<Vec<u8>, AuthError> {
    let sk = rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(key.clone());
    let sig = sk
        .try_sign(signed_octets)
        .map_err(|_| AuthError::SigningFailed)?;
    Ok(sig.to_vec())
}

/// Verifies an auth method 1 signature.
pub fn rsa_sha1_verify(
    key: &rsa::PublicKey,
    signed_octets: &[u8],
    signature: &[u8],
) -> Result<(), AuthError> {
    let vk = rsa::pkcs1v15::VerifyingKey::<sha1::Sha1>::new(key.clone());
    let sig =
        rsa::pkcs1v15::Signature::try_from(signature).map_err(|_| AuthError::VerificationFailed)?;
    vk.verify(signed_octets, &sig)
        .map_err(|_| AuthError::VerificationFailed)
}

/// Signature schemes of RFC 7427 supported here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    /// sha256WithRSAEncryption (RFC 7427 A.1.2).
    RsaPkcs1Sha256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, salt length 32 (RFC 7427 A.4.3).
    RsaPssSha256,
    /// sha384WithRSAEncryption (RFC 7427 A.1.3): what strongSwan signs with for RSA keys
    /// above 3072 bits (seed 004's 4096-bit keys) when the peer announces SHA2-384.
    RsaPkcs1Sha384,
    /// sha512WithRSAEncryption (RFC 7427 A.1.4).
    RsaPkcs1Sha512,
    /// RSASSA-PSS with SHA-384, MGF1-SHA-384, salt length 48 (RFC 8017 A.2.3; the
    /// parameters encoded like RFC 7427 A.4.3, as strongSwan does).
    RsaPssSha384,
    /// RSASSA-PSS with SHA-512, MGF1-SHA-512, salt length 64.
    RsaPssSha512,
    /// ecdsa-with-SHA256 on P-256 (RFC 7427 A.3.2).
    EcdsaP256Sha256,
    /// ecdsa-with-SHA384 on P-384 (RFC 7427 A.3.3).
    EcdsaP384Sha384,
    /// Ed25519 (RFC 8420).
    Ed25519,
}

const ALG_RSA_PKCS1_SHA256: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];
const ALG_RSA_PSS_SHA256: &[u8] = &[
    0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34, 0xa0,
    0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30,
    0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03,
    0x02, 0x01, 0x20,
];
const ALG_RSA_PKCS1_SHA384: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00,
];
const ALG_RSA_PKCS1_SHA512: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05, 0x00,
];
// ALG_RSA_PSS_SHA256 with the two hash OIDs 2.16.840.1.101.3.4.2.{2,3} and the salt
// length 48 / 64 (checked with `openssl asn1parse`).
const ALG_RSA_PSS_SHA384: &[u8] = &[
    0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34, 0xa0,
    0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00,
    0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30,
    0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0xa2, 0x03,
    0x02, 0x01, 0x30,
];
const ALG_RSA_PSS_SHA512: &[u8] = &[
    0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34, 0xa0,
    0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00,
    0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30,
    0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0xa2, 0x03,
    0x02, 0x01, 0x40,
];
const ALG_ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
const ALG_ECDSA_SHA384: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
];
const ALG_ED25519: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

impl SignatureScheme {
    /// All supported schemes.
    pub const ALL: [SignatureScheme; 9] = [
        Self::RsaPkcs1Sha256,
        Self::RsaPssSha256,
        Self::RsaPkcs1Sha384,
        Self::RsaPkcs1Sha512,
        Self::RsaPssSha384,
        Self::RsaPssSha512,
        Self::EcdsaP256Sha256,
        Self::EcdsaP384Sha384,
        Self::Ed25519,
    ];

    /// DER AlgorithmIdentifier of the scheme.
    pub fn algorithm_identifier(self) -> &'static [u8] {
        match self {
            Self::RsaPkcs1Sha256 => ALG_RSA_PKCS1_SHA256,
            Self::RsaPssSha256 => ALG_RSA_PSS_SHA256,
            Self::RsaPkcs1Sha384 => ALG_RSA_PKCS1_SHA384,
            Self::RsaPkcs1Sha512 => ALG_RSA_PKCS1_SHA512,
            Self::RsaPssSha384 => ALG_RSA_PSS_SHA384,
            Self::RsaPssSha512 => ALG_RSA_PSS_SHA512,
            Self::EcdsaP256Sha256 => ALG_ECDSA_SHA256,
            Self::EcdsaP384Sha384 => ALG_ECDSA_SHA384,
            Self::Ed25519 => ALG_ED25519,
        }
    }

    /// Looks up a DER AlgorithmIdentifier (exact byte match).
    pub fn from_algorithm_identifier(der: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.algorithm_identifier() == der)
    }

    /// Hash algorithm number for SIGNATURE_HASH_ALGORITHMS (RFC 7427 section 4), or 5
    /// ("Identity", RFC 8420) for Ed25519.
    pub fn hash_algorithm_id(self) -> u16 {
        match self {
            Self::RsaPkcs1Sha256 | Self::RsaPssSha256 | Self::EcdsaP256Sha256 => 2,
            Self::RsaPkcs1Sha384 | Self::RsaPssSha384 | Self::EcdsaP384Sha384 => 3,
            Self::RsaPkcs1Sha512 | Self::RsaPssSha512 => 4,
            Self::Ed25519 => 5,
        }
    }
}

/// Hash algorithm numbers of RFC 7427 section 4 (IANA "IKEv2 Hash Algorithms") that the
/// schemes here verify with: SHA2-256 (2), SHA2-384 (3), SHA2-512 (4) and Identity (5,
/// RFC 8420, for Ed25519). This is what a SIGNATURE_HASH_ALGORITHMS notification of ours
/// announces.
pub const SUPPORTED_HASH_ALGORITHMS: [u16; 4] = [2, 3, 4, 5];

/// Which RSA signature scheme to use under auth method 14.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RsaPadding {
    /// RSASSA-PSS (RFC 8017 section 8.1), the recommended one (RFC 8247 section 3.2).
    #[default]
    Pss,
    /// RSASSA-PKCS1-v1_5 (RFC 8017 section 8.2).
    Pkcs1v15,
}

/// The RFC 7427 scheme a key signs with, given the hash algorithms the peer announced
/// (RFC 7427 section 4: only a hash the peer named may be used). `None` when the peer named
/// none that fits the key.
pub fn choose_scheme(
    key: &SigningKey,
    rsa: RsaPadding,
    peer_hashes: &[u16],
) -> Option<SignatureScheme> {
    use SignatureScheme as S;
    // In order of preference: SHA2-256 first for RSA (RFC 8247 section 3.2 MUST).
    let candidates: &[SignatureScheme] = match (key, rsa) {
        (SigningKey::Rsa(_), RsaPadding::Pss) => {
            &[S::RsaPssSha256, S::RsaPssSha384, S::RsaPssSha512]
        }
        (SigningKey::Rsa(_), RsaPadding::Pkcs1v15) => {
            &[S::RsaPkcs1Sha256, S::RsaPkcs1Sha384, S::RsaPkcs1Sha512]
        }
        (SigningKey::EcdsaP256(_), _) => &[S::EcdsaP256Sha256],
        (SigningKey::EcdsaP384(_), _) => &[S::EcdsaP384Sha384],
        (SigningKey::Ed25519(_), _) => &[S::Ed25519],
    };
    candidates
        .iter()
        .copied()
        .find(|s| peer_hashes.contains(&s.hash_algorithm_id()))
}

/// A private key for RFC 7427 signatures.
pub enum SigningKey {
    /// RSA key (used with PKCS#1 v1.5 or PSS).
    Rsa(Box<rsa::PrivateKey>),
    /// ECDSA P-256 key.
    EcdsaP256(p256::ecdsa::SigningKey),
    /// ECDSA P-384 key.
    EcdsaP384(p384::ecdsa::SigningKey),
    /// Ed25519 key.
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl core::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let kind = match self {
            Self::Rsa(_) => "Rsa",
            Self::EcdsaP256(_) => "EcdsaP256",
            Self::EcdsaP384(_) => "EcdsaP384",
            Self::Ed25519(_) => "Ed25519",
        };
        write!(f, "SigningKey::{kind}([REDACTED])")
    }
}

/// A public key for RFC 7427 signatures.
#[derive(Debug, Clone)]
pub enum VerifyingKey {
    /// RSA public key.
    Rsa(Box<rsa::PublicKey>),
    /// ECDSA P-256 public key.
    EcdsaP256(p256::ecdsa::VerifyingKey),
    /// ECDSA P-384 public key.
    EcdsaP384(p384::ecdsa::VerifyingKey),
    /// Ed25519 public key.
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl SigningKey {
    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        match self {
            Self::Rsa(k) => VerifyingKey::Rsa(Box::new(rsa::PublicKey::from(k.as_ref()))),
            Self::EcdsaP256(k) => VerifyingKey::EcdsaP256(*k.verifying_key()),
            Self::EcdsaP384(k) => VerifyingKey::EcdsaP384(*k.verifying_key()),
            Self::Ed25519(k) => VerifyingKey::Ed25519(k.verifying_key()),
        }
    }
}

fn key_accepts(key_is: &VerifyingKey, scheme: SignatureScheme) -> bool {
    matches!(
        (key_is, scheme),
        (
            VerifyingKey::Rsa(_),
            SignatureScheme::RsaPkcs1Sha256
                | SignatureScheme::RsaPssSha256
                | SignatureScheme::RsaPkcs1Sha384
                | SignatureScheme::RsaPkcs1Sha512
                | SignatureScheme::RsaPssSha384
                | SignatureScheme::RsaPssSha512
        ) | (VerifyingKey::EcdsaP256(_), SignatureScheme::EcdsaP256Sha256)
            | (VerifyingKey::EcdsaP384(_), SignatureScheme::EcdsaP384Sha384)
            | (VerifyingKey::Ed25519(_), SignatureScheme::Ed25519)
    )
}

/// Computes RFC 7427 AUTH data (`len | AlgorithmIdentifier | signature`) over the signed
/// octets. `rng` is used by RSA-PSS (salt) and RSA blinding; ECDSA is deterministic
/// (RFC 6979) and Ed25519 is deterministic by definition.
pub fn digital_signature_auth(
    key: &SigningKey,
    scheme: SignatureScheme,
    signed_octets: &[u8],
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<Vec<u8>, AuthError> {
    if !key_accepts(&key.verifying_key(), scheme) {
        return Err(AuthError::KeyMismatch(scheme));
    }
    // PSS salt length = hash length (rsa's default), as the AlgorithmIdentifiers say.
    macro_rules! rsa_sign {
        ($k:expr, $scheme:ident, $hash:ty) => {
            rsa::$scheme::SigningKey::<$hash>::new($k.as_ref().clone())
                .try_sign_with_rng(rng, signed_octets)
                .map_err(|_| AuthError::SigningFailed)?
                .to_vec()
        };
    }
    let sig: Vec<u8> = match (key, scheme) {
        (SigningKey::Rsa(k), SignatureScheme::RsaPkcs1Sha256) => {
            rsa_sign!(k, pkcs1v15, sha2::Sha256)
        }
        (SigningKey::Rsa(k), SignatureScheme::RsaPkcs1Sha384) => {
            rsa_sign!(k, pkcs1v15, sha2::Sha384)
        }
        (SigningKey::Rsa(k), SignatureScheme::RsaPkcs1Sha512) => {
            rsa_sign!(k, pkcs1v15, sha2::Sha512)
        }
        (SigningKey::Rsa(k), SignatureScheme::RsaPssSha256) => rsa_sign!(k, pss, sha2::Sha256),
        (SigningKey::Rsa(k), SignatureScheme::RsaPssSha384) => rsa_sign!(k, pss, sha2::Sha384),
        (SigningKey::Rsa(k), SignatureScheme::RsaPssSha512) => rsa_sign!(k, pss, sha2::Sha512),
        (SigningKey::EcdsaP256(k), _) => {
            let s: p256::ecdsa::Signature = k
                .try_sign(signed_octets)
                .map_err(|_| AuthError::SigningFailed)?;
            s.to_der().to_bytes().to_vec()
        }
        (SigningKey::EcdsaP384(k), _) => {
            let s: p384::ecdsa::Signature = k
                .try_sign(signed_octets)
                .map_err(|_| AuthError::SigningFailed)?;
            s.to_der().to_bytes().to_vec()
        }
        (SigningKey::Ed25519(k), _) => k.sign(signed_octets).to_bytes().to_vec(),
        _ => return Err(AuthError::KeyMismatch(scheme)),
    };
    let alg = scheme.algorithm_identifier();
    let mut out = Vec::with_capacity(1 + alg.len() + sig.len());
    // Every supported AlgorithmIdentifier is shorter than 256 bytes.
    out.push(alg.len() as u8);
    out.extend_from_slice(alg);
    out.extend_from_slice(&sig);
    Ok(out)
}

/// Splits RFC 7427 AUTH data into its scheme and signature.
pub fn parse_digital_signature_auth(
    auth_data: &[u8],
) -> Result<(SignatureScheme, &[u8]), AuthError> {
    let (&len, rest) = auth_data.split_first().ok_or(AuthError::Malformed)?;
    let len = usize::from(len);
    if rest.len() <= len {
        return Err(AuthError::Malformed);
    }
    let (alg, sig) = rest.split_at(len);
    let scheme =
        SignatureScheme::from_algorithm_identifier(alg).ok_or(AuthError::UnsupportedAlgorithm)?;
    Ok((scheme, sig))
}

/// Verifies RFC 7427 AUTH data against the peer's key; returns the scheme used.
pub fn verify_digital_signature_auth(
    key: &VerifyingKey,
    signed_octets: &[u8],
    auth_data: &[u8],
) -> Result<SignatureScheme, AuthError> {
    let (scheme, sig) = parse_digital_signature_auth(auth_data)?;
    if !key_accepts(key, scheme) {
        return Err(AuthError::KeyMismatch(scheme));
    }
    let fail = |_| AuthError::VerificationFailed;
    macro_rules! pkcs1 {
        ($k:expr, $hash:ty) => {{
            let s = rsa::pkcs1v15::Signature::try_from(sig).map_err(fail)?;
            rsa::pkcs1v15::VerifyingKey::<$hash>::new($k.as_ref().clone())
                .verify(signed_octets, &s)
                .map_err(fail)?;
        }};
    }
    // The salt length is fixed by the AlgorithmIdentifier (hash length).
    macro_rules! pss {
        ($k:expr, $hash:ty, $salt:expr) => {{
            let s = rsa::pss::Signature::try_from(sig).map_err(fail)?;
            rsa::pss::VerifyingKey::<$hash>::new_with_salt_len($k.as_ref().clone(), $salt)
                .verify(signed_octets, &s)
                .map_err(fail)?;
        }};
    }
    match (key, scheme) {
        (VerifyingKey::Rsa(k), SignatureScheme::RsaPkcs1Sha256) => pkcs1!(k, sha2::Sha256),
        (VerifyingKey::Rsa(k), SignatureScheme::RsaPkcs1Sha384) => pkcs1!(k, sha2::Sha384),
        (VerifyingKey::Rsa(k), SignatureScheme::RsaPkcs1Sha512) => pkcs1!(k, sha2::Sha512),
        (VerifyingKey::Rsa(k), SignatureScheme::RsaPssSha256) => pss!(k, sha2::Sha256, 32),
        (VerifyingKey::Rsa(k), SignatureScheme::RsaPssSha384) => pss!(k, sha2::Sha384, 48),
        (VerifyingKey::Rsa(k), SignatureScheme::RsaPssSha512) => pss!(k, sha2::Sha512, 64),
        (VerifyingKey::EcdsaP256(k), _) => {
            let s = p256::ecdsa::Signature::from_der(sig).map_err(fail)?;
            k.verify(signed_octets, &s).map_err(fail)?;
        }
        (VerifyingKey::EcdsaP384(k), _) => {
            let s = p384::ecdsa::Signature::from_der(sig).map_err(fail)?;
            k.verify(signed_octets, &s).map_err(fail)?;
        }
        (VerifyingKey::Ed25519(k), _) => {
            let arr: [u8; 64] = sig.try_into().map_err(|_| AuthError::VerificationFailed)?;
            let s = ed25519_dalek::Signature::from_bytes(&arr);
            k.verify_strict(signed_octets, &s).map_err(fail)?;
        }
        _ => return Err(AuthError::KeyMismatch(scheme)),
    }
    Ok(scheme)
}
