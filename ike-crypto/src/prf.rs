//! IKEv2 pseudo-random functions (RFC 7296 section 3.3.2, transform type 2) and `prf+`
//! (RFC 7296 section 2.13).
//!
//! HMAC and the hash functions come from RustCrypto (`hmac`, `sha1`, `sha2`); the `prf+`
//! iteration (`T1 = prf(K, S | 0x01)`, `Tn = prf(K, Tn-1 | S | n)`) is hand-written IKE glue.

use crate::secret::SecretBytes;
use hmac::{Hmac, KeyInit, Mac};
use zeroize::Zeroizing;

/// Errors of [`PrfAlgorithm::prf_plus`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrfError {
    /// `prf+` is defined for at most 255 iterations (RFC 7296 section 2.13).
    #[error("prf+ output of {requested} bytes needs more than 255 iterations of {algorithm:?}")]
    OutputTooLong {
        /// The PRF.
        algorithm: PrfAlgorithm,
        /// The requested length in bytes.
        requested: usize,
    },
}

/// A negotiated IKEv2 PRF (IANA "Transform Type 2 - Pseudorandom Function Transform IDs").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum PrfAlgorithm {
    /// PRF_HMAC_SHA1 (RFC 2104), transform ID 2.
    HmacSha1 = 2,
    /// PRF_HMAC_SHA2_256 (RFC 4868), transform ID 5.
    HmacSha256 = 5,
    /// PRF_HMAC_SHA2_384 (RFC 4868), transform ID 6.
    HmacSha384 = 6,
    /// PRF_HMAC_SHA2_512 (RFC 4868), transform ID 7.
    HmacSha512 = 7,
}

fn hmac_parts<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <M as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(p);
    }
    Zeroizing::new(mac.finalize().into_bytes().to_vec())
}

impl PrfAlgorithm {
    /// All supported PRFs.
    pub const ALL: [PrfAlgorithm; 4] = [
        PrfAlgorithm::HmacSha1,
        PrfAlgorithm::HmacSha256,
        PrfAlgorithm::HmacSha384,
        PrfAlgorithm::HmacSha512,
    ];

    /// Maps an IANA transform ID to a supported PRF.
    pub fn from_transform_id(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|a| *a as u16 == id)
    }

    /// The IANA transform ID.
    pub fn transform_id(self) -> u16 {
        self as u16
    }

    /// Output length of the PRF in bytes (20, 32, 48, 64).
    pub fn output_len(self) -> usize {
        match self {
            PrfAlgorithm::HmacSha1 => 20,
            PrfAlgorithm::HmacSha256 => 32,
            PrfAlgorithm::HmacSha384 => 48,
            PrfAlgorithm::HmacSha512 => 64,
        }
    }

    /// Preferred key length: the length of SK_d, SK_pi and SK_pr (RFC 7296 section 2.14).
    /// For the HMAC PRFs this is the output length (RFC 4868 section 2.1.2).
    pub fn key_len(self) -> usize {
        self.output_len()
    }

    /// `prf(key, data)`.
    pub fn prf(self, key: &[u8], data: &[u8]) -> SecretBytes {
        self.prf_parts(key, &[data])
    }

    /// `prf(key, parts[0] | parts[1] | ...)` without building the concatenation.
    pub fn prf_parts(self, key: &[u8], parts: &[&[u8]]) -> SecretBytes {
        SecretBytes::from_zeroizing(self.raw(key, parts))
    }

    fn raw(self, key: &[u8], parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
        match self {
            PrfAlgorithm::HmacSha1 => hmac_parts::<Hmac<sha1::Sha1>>(key, parts),
            PrfAlgorithm::HmacSha256 => hmac_parts::<Hmac<sha2::Sha256>>(key, parts),
            PrfAlgorithm::HmacSha384 => hmac_parts::<Hmac<sha2::Sha384>>(key, parts),
            PrfAlgorithm::HmacSha512 => hmac_parts::<Hmac<sha2::Sha512>>(key, parts),
        }
    }

    /// `prf+(key, seed)` truncated to `len` bytes (RFC 7296 section 2.13).
    ///
    /// Fails when `len` needs more than 255 PRF iterations.
    pub fn prf_plus(self, key: &[u8], seed: &[u8], len: usize) -> Result<SecretBytes, PrfError> {
        self.prf_plus_parts(key, &[seed], len)
    }

    /// `prf+(key, seed_parts[0] | seed_parts[1] | ...)` truncated to `len` bytes.
    pub fn prf_plus_parts(
        self,
        key: &[u8],
        seed_parts: &[&[u8]],
        len: usize,
    ) -> Result<SecretBytes, PrfError> {
        let out_len = self.output_len();
        let iterations = len.div_ceil(out_len);
        if iterations > 255 {
            return Err(PrfError::OutputTooLong {
                algorithm: self,
                requested: len,
            });
        }
        let mut out = Zeroizing::new(Vec::with_capacity(iterations * out_len));
        let mut prev: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
        for n in 1..=iterations {
            // n <= 255 was checked above.
            let counter = [n as u8];
            let mut parts: Vec<&[u8]> = Vec::with_capacity(seed_parts.len() + 2);
            parts.push(&prev);
            parts.extend_from_slice(seed_parts);
            parts.push(&counter);
            let t = self.raw(key, &parts);
            out.extend_from_slice(&t);
            prev = t;
        }
        out.truncate(len);
        Ok(SecretBytes::from_zeroizing(out))
    }
}
