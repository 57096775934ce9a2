//! In-place AES-GCM behind one small trait, so the backend can be swapped.
//!
//! The trait [`AeadBackend`] has the shape ring and aws-lc-rs share (`seal_in_place_separate_tag`
//! / `open_in_place_separate_tag`): the caller owns the buffer, encryption happens in place, the
//! 16-byte tag travels separately, and the nonce is always 96 bits (RFC 4106 section 4 fixes the
//! nonce at salt || 8-byte IV). Nothing here is hand-written cryptography; this module only
//! adapts two crates to the trait:
//!
//! - **ring 0.17** for AES-128-GCM and AES-256-GCM. It is the fastest backend measured on the
//!   team's machines (`shared/docs/platform.md`, one core, AES-256-GCM seal of 1400-byte packets:
//!   ring about 3.2-3.8 GB/s, aws-lc-rs about 2.0 GB/s, RustCrypto `aes-gcm` about 1.4-1.7 GB/s,
//!   OpenSSL 3.0 `speed` about 1.1-1.4 GB/s).
//! - **RustCrypto `aes-gcm` 0.10** for AES-192-GCM only, because ring has no 192-bit AES-GCM.
//!   It builds on the stable 1.95 toolchain here and uses AES-NI/PCLMULQDQ when the CPU has them
//!   (runtime detection), at roughly half ring's throughput per the figures above. AES-192 is
//!   rare in practice (AWS offers AES-128/256-GCM only), so the slower path costs little.
//!
//! aws-lc-rs (the FIPS option, and faster on AVX-512 hosts) would be one more implementation of
//! the trait with the same calls.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::consts::U12;
use aes_gcm::{AesGcm, KeyInit};
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

use crate::sa::{AeadKey, KeySize};

/// AES-192-GCM with a 96-bit nonce (aes-gcm 0.10 names only the 128/256 aliases).
type Aes192Gcm = AesGcm<aes_gcm::aes::Aes192, U12>;

/// Length of the AES-GCM nonce used by ESP (salt || IV), RFC 4106 section 4.
pub const NONCE_LEN: usize = 12;
/// Length of the ICV of AES-GCM-16 (the only ICV length this crate supports).
pub const TAG_LEN: usize = 16;

/// Opaque AEAD failure: authentication failed (or, for seal, the backend refused). Carries
/// nothing, so it can never leak key or plaintext bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadError;

/// In-place AES-GCM with a detached tag and a 96-bit nonce.
pub trait AeadBackend: Send + Sync {
    /// Encrypt `in_out` in place and return the 16-byte tag over `aad` and the ciphertext.
    fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], AeadError>;

    /// Verify `tag` over `aad` and the ciphertext `in_out`, then decrypt `in_out` in place.
    /// On failure the contents of `in_out` are unspecified (but no plaintext is released as
    /// valid: the caller drops the packet).
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError>;
}

/// The default backend: ring for 128/256, RustCrypto for 192.
///
/// The ring variant is kept inline (no pointer chase on the common 128/256 path); the larger
/// RustCrypto key schedule is boxed. One value exists per SA direction, so the enum's size
/// (the ring key, about 550 bytes) does not matter.
#[allow(clippy::large_enum_variant)]
pub enum GcmAead {
    /// ring `LessSafeKey` (AES-128-GCM or AES-256-GCM).
    Ring(LessSafeKey),
    /// RustCrypto AES-192-GCM (boxed: its key schedule is the larger one).
    RustCrypto192(Box<Aes192Gcm>),
}

impl GcmAead {
    /// Build the backend for `key`, choosing the implementation by key size.
    pub fn new(key: &AeadKey) -> Self {
        match key.size() {
            KeySize::Aes128 => GcmAead::ring(&AES_128_GCM, key.expose()),
            KeySize::Aes256 => GcmAead::ring(&AES_256_GCM, key.expose()),
            KeySize::Aes192 => {
                let cipher = Aes192Gcm::new_from_slice(key.expose())
                    .expect("AeadKey guarantees a 24-byte key for Aes192");
                GcmAead::RustCrypto192(Box::new(cipher))
            }
        }
    }

    fn ring(alg: &'static ring::aead::Algorithm, key: &[u8]) -> Self {
        let unbound = UnboundKey::new(alg, key).expect("AeadKey guarantees the key length");
        GcmAead::Ring(LessSafeKey::new(unbound))
    }

    /// Which implementation is in use (for logs and benchmarks).
    pub fn backend_name(&self) -> &'static str {
        match self {
            GcmAead::Ring(_) => "ring",
            GcmAead::RustCrypto192(_) => "rustcrypto-aes-gcm",
        }
    }
}

impl core::fmt::Debug for GcmAead {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "GcmAead({}, <key redacted>)", self.backend_name())
    }
}

impl AeadBackend for GcmAead {
    fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], AeadError> {
        match self {
            GcmAead::Ring(k) => {
                let tag = k
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(*nonce),
                        Aad::from(aad),
                        in_out,
                    )
                    .map_err(|_| AeadError)?;
                let mut out = [0u8; TAG_LEN];
                out.copy_from_slice(tag.as_ref());
                Ok(out)
            }
            GcmAead::RustCrypto192(c) => {
                let tag = c
                    .encrypt_in_place_detached(nonce.into(), aad, in_out)
                    .map_err(|_| AeadError)?;
                Ok(tag.into())
            }
        }
    }

    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        match self {
            GcmAead::Ring(k) => k
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(aad),
                    Tag::from(*tag),
                    in_out,
                    0..,
                )
                .map(|_| ())
                .map_err(|_| AeadError),
            GcmAead::RustCrypto192(c) => c
                .decrypt_in_place_detached(nonce.into(), aad, in_out, tag.into())
                .map_err(|_| AeadError),
        }
    }
}
