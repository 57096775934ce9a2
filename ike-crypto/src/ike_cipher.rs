//! Protection of the IKEv2 Encrypted (SK) payload (RFC 7296 section 3.14).
//!
//! Algorithms: AES-CBC (RFC 3602) with HMAC-SHA1-96 (RFC 2404) or HMAC-SHA2-256-128 /
//! -384-192 / -512-256 (RFC 4868), and AES-GCM with a 16-octet ICV (RFC 5282: 8-octet explicit
//! IV, 4-octet salt taken from the end of SK_e, AAD = IKE header through the end of the SK
//! payload's generic header).
//!
//! AES, CBC, GCM and HMAC are RustCrypto's `aes`, `cbc`, `aes-gcm` and `hmac`. Hand-written IKE
//! glue here: the SK payload body layout `IV | ciphertext | ICV`, the RFC 7296 padding
//! (`Padding | Pad Length`, pad bytes of any value accepted), the integrity input
//! `associated data | IV | ciphertext` for the CBC suites, and input length checks. Every
//! function returns a typed error on hostile input and never panics.
//!
//! The algorithm enums are shared with [`crate::keys`] for ESP (RFC 4106 / RFC 4868) because
//! IKEv2 uses the same IANA transform IDs for both protocols.

use crate::secret::SecretBytes;
use aes_gcm::aead::{AeadInOut, KeyInit as AeadKeyInit};
use cbc::cipher::{Block, BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hmac::{Hmac, KeyInit, Mac};
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;

/// Errors of the SK payload protection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IkeCipherError {
    /// A key of the wrong length was supplied.
    #[error("{what} key is {got} bytes, expected {expected}")]
    InvalidKeyLength {
        /// Which key.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Supplied length.
        got: usize,
    },
    /// A non-AEAD cipher was configured without an integrity algorithm.
    #[error("{0:?} needs an integrity algorithm")]
    MissingIntegrity(EncrAlgorithm),
    /// An AEAD cipher was configured with an integrity algorithm (RFC 7296 section 3.3).
    #[error("{0:?} is combined-mode and must not have an integrity algorithm")]
    UnexpectedIntegrity(EncrAlgorithm),
    /// The SK payload body is shorter than IV + ICV (+ one block for CBC).
    #[error("encrypted payload too short: {0} bytes")]
    Truncated(usize),
    /// The CBC ciphertext is not a whole number of blocks.
    #[error("ciphertext length {0} is not a multiple of the block size")]
    BadCiphertextLength(usize),
    /// Integrity check (HMAC or GCM tag) failed.
    #[error("integrity check failed")]
    IntegrityCheckFailed,
    /// The pad length byte points outside the decrypted data.
    #[error("invalid padding")]
    BadPadding,
    /// The plaintext exceeds what AES-GCM can encrypt under one nonce (about 64 GiB).
    #[error("message too long")]
    MessageTooLong,
    /// The IV supplied to a deterministic encryption has the wrong length.
    #[error("IV is {got} bytes, expected {expected}")]
    InvalidIvLength {
        /// Expected length.
        expected: usize,
        /// Supplied length.
        got: usize,
    },
}

/// Encryption algorithm (IANA transform type 1) with its key length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncrAlgorithm {
    /// ENCR_AES_CBC (12), 128-bit key.
    AesCbc128,
    /// ENCR_AES_CBC (12), 192-bit key.
    AesCbc192,
    /// ENCR_AES_CBC (12), 256-bit key.
    AesCbc256,
    /// ENCR_AES_GCM_16 (20), 128-bit key.
    AesGcm16_128,
    /// ENCR_AES_GCM_16 (20), 192-bit key.
    AesGcm16_192,
    /// ENCR_AES_GCM_16 (20), 256-bit key.
    AesGcm16_256,
}

impl EncrAlgorithm {
    /// IANA transform ID ENCR_AES_CBC.
    pub const ENCR_AES_CBC: u16 = 12;
    /// IANA transform ID ENCR_AES_GCM_16.
    pub const ENCR_AES_GCM_16: u16 = 20;

    /// From an IANA transform ID and the Key Length attribute (bits).
    pub fn from_transform(id: u16, key_bits: u16) -> Option<Self> {
        match (id, key_bits) {
            (Self::ENCR_AES_CBC, 128) => Some(Self::AesCbc128),
            (Self::ENCR_AES_CBC, 192) => Some(Self::AesCbc192),
            (Self::ENCR_AES_CBC, 256) => Some(Self::AesCbc256),
            (Self::ENCR_AES_GCM_16, 128) => Some(Self::AesGcm16_128),
            (Self::ENCR_AES_GCM_16, 192) => Some(Self::AesGcm16_192),
            (Self::ENCR_AES_GCM_16, 256) => Some(Self::AesGcm16_256),
            _ => None,
        }
    }

    /// IANA transform ID.
    pub fn transform_id(self) -> u16 {
        if self.is_aead() {
            Self::ENCR_AES_GCM_16
        } else {
            Self::ENCR_AES_CBC
        }
    }

    /// Key Length attribute value in bits.
    pub fn key_bits(self) -> u16 {
        match self {
            Self::AesCbc128 | Self::AesGcm16_128 => 128,
            Self::AesCbc192 | Self::AesGcm16_192 => 192,
            Self::AesCbc256 | Self::AesGcm16_256 => 256,
        }
    }

    /// Whether this is a combined-mode (AEAD) cipher that needs no integrity transform.
    pub fn is_aead(self) -> bool {
        matches!(
            self,
            Self::AesGcm16_128 | Self::AesGcm16_192 | Self::AesGcm16_256
        )
    }

    /// AES key length in bytes.
    pub fn key_len(self) -> usize {
        usize::from(self.key_bits()) / 8
    }

    /// Salt length in bytes (4 for GCM: RFC 5282 section 7.1 / RFC 4106 section 8.1).
    pub fn salt_len(self) -> usize {
        if self.is_aead() { 4 } else { 0 }
    }

    /// Length of keying material taken from `prf+` for one direction: key + salt.
    pub fn key_material_len(self) -> usize {
        self.key_len() + self.salt_len()
    }

    /// Length of the IV carried in each message (16 for CBC, 8 for GCM).
    pub fn iv_len(self) -> usize {
        if self.is_aead() { 8 } else { 16 }
    }

    /// Length of the GCM tag (16), 0 for CBC (its ICV comes from the integrity algorithm).
    pub fn aead_icv_len(self) -> usize {
        if self.is_aead() { 16 } else { 0 }
    }
}

/// Integrity algorithm (IANA transform type 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum IntegAlgorithm {
    /// AUTH_HMAC_SHA1_96 (RFC 2404), transform ID 2.
    HmacSha1_96 = 2,
    /// AUTH_HMAC_SHA2_256_128 (RFC 4868), transform ID 12.
    HmacSha256_128 = 12,
    /// AUTH_HMAC_SHA2_384_192 (RFC 4868), transform ID 13.
    HmacSha384_192 = 13,
    /// AUTH_HMAC_SHA2_512_256 (RFC 4868), transform ID 14.
    HmacSha512_256 = 14,
}

impl IntegAlgorithm {
    /// All supported integrity algorithms.
    pub const ALL: [IntegAlgorithm; 4] = [
        Self::HmacSha1_96,
        Self::HmacSha256_128,
        Self::HmacSha384_192,
        Self::HmacSha512_256,
    ];

    /// From an IANA transform ID.
    pub fn from_transform_id(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|a| *a as u16 == id)
    }

    /// IANA transform ID.
    pub fn transform_id(self) -> u16 {
        self as u16
    }

    /// Key length in bytes (the hash output length, RFC 2404 / RFC 4868 section 2.1.1).
    pub fn key_len(self) -> usize {
        match self {
            Self::HmacSha1_96 => 20,
            Self::HmacSha256_128 => 32,
            Self::HmacSha384_192 => 48,
            Self::HmacSha512_256 => 64,
        }
    }

    /// Truncated ICV length in bytes.
    pub fn icv_len(self) -> usize {
        match self {
            Self::HmacSha1_96 => 12,
            Self::HmacSha256_128 => 16,
            Self::HmacSha384_192 => 24,
            Self::HmacSha512_256 => 32,
        }
    }

    /// Full (untruncated) HMAC over the concatenation of `parts`.
    pub fn mac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            let mut m = <M as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        }
        match self {
            Self::HmacSha1_96 => run::<Hmac<sha1::Sha1>>(key, parts),
            Self::HmacSha256_128 => run::<Hmac<sha2::Sha256>>(key, parts),
            Self::HmacSha384_192 => run::<Hmac<sha2::Sha384>>(key, parts),
            Self::HmacSha512_256 => run::<Hmac<sha2::Sha512>>(key, parts),
        }
    }

    /// Truncated ICV over the concatenation of `parts`.
    pub fn icv(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut full = self.mac(key, parts);
        full.truncate(self.icv_len());
        full
    }
}

/// One direction of SK payload protection: (SK_ei, SK_ai) or (SK_er, SK_ar).
pub struct SkCipher {
    encr: EncrAlgorithm,
    integ: Option<IntegAlgorithm>,
    /// AES key (without the GCM salt).
    encr_key: SecretBytes,
    /// GCM salt (empty for CBC).
    salt: SecretBytes,
    /// Integrity key (empty for GCM).
    integ_key: SecretBytes,
}

impl core::fmt::Debug for SkCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SkCipher")
            .field("encr", &self.encr)
            .field("integ", &self.integ)
            .finish_non_exhaustive()
    }
}

const AES_BLOCK: usize = 16;

impl SkCipher {
    /// Builds a cipher from the raw SK_e (for GCM: key | 4-byte salt) and SK_a (CBC only).
    pub fn new(
        encr: EncrAlgorithm,
        integ: Option<IntegAlgorithm>,
        sk_e: &[u8],
        sk_a: &[u8],
    ) -> Result<Self, IkeCipherError> {
        check_suite(encr, integ)?;
        if sk_e.len() != encr.key_material_len() {
            return Err(IkeCipherError::InvalidKeyLength {
                what: "encryption",
                expected: encr.key_material_len(),
                got: sk_e.len(),
            });
        }
        let expected_a = integ.map_or(0, IntegAlgorithm::key_len);
        if sk_a.len() != expected_a {
            return Err(IkeCipherError::InvalidKeyLength {
                what: "integrity",
                expected: expected_a,
                got: sk_a.len(),
            });
        }
        let (k, s) = sk_e.split_at(encr.key_len());
        Ok(Self {
            encr,
            integ,
            encr_key: SecretBytes::from_slice(k),
            salt: SecretBytes::from_slice(s),
            integ_key: SecretBytes::from_slice(sk_a),
        })
    }

    /// The encryption algorithm.
    pub fn encr(&self) -> EncrAlgorithm {
        self.encr
    }

    /// The integrity algorithm (None for AEAD).
    pub fn integ(&self) -> Option<IntegAlgorithm> {
        self.integ
    }

    /// IV length in the SK payload.
    pub fn iv_len(&self) -> usize {
        self.encr.iv_len()
    }

    /// ICV length in the SK payload.
    pub fn icv_len(&self) -> usize {
        match self.integ {
            Some(i) => i.icv_len(),
            None => self.encr.aead_icv_len(),
        }
    }

    /// Length of the padding (excluding the pad length byte) this implementation adds to a
    /// plaintext of `plaintext_len` bytes: the minimum for CBC, none for GCM.
    pub fn pad_len(&self, plaintext_len: usize) -> usize {
        if self.encr.is_aead() {
            0
        } else {
            (AES_BLOCK - (plaintext_len + 1) % AES_BLOCK) % AES_BLOCK
        }
    }

    /// Length of the SK payload body (`IV | ciphertext | ICV`, i.e. without the 4-byte generic
    /// payload header) that [`SkCipher::encrypt`] produces for a plaintext of this length. The
    /// engine needs it to fill in the SK payload length and IKE header length, which are part
    /// of the associated data, before encrypting.
    pub fn encrypted_len(&self, plaintext_len: usize) -> usize {
        self.iv_len() + plaintext_len + self.pad_len(plaintext_len) + 1 + self.icv_len()
    }

    /// Encrypts the inner payload chain `plaintext` with a fresh random IV.
    ///
    /// `associated` is the message from the first octet of the IKE header through the last
    /// octet of the SK payload's generic header, with lengths already final (see
    /// [`SkCipher::encrypted_len`]). Returns the SK payload body `IV | ciphertext | ICV`.
    ///
    /// For GCM the 8-byte IV is random; RFC 5282 only requires uniqueness per key, and an
    /// IKE SA sends far fewer than 2^32 messages before it is rekeyed.
    pub fn encrypt(
        &self,
        associated: &[u8],
        plaintext: &[u8],
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> Result<Vec<u8>, IkeCipherError> {
        let mut iv = vec![0u8; self.iv_len()];
        rng.fill_bytes(&mut iv);
        self.encrypt_with_iv(associated, plaintext, &iv)
    }

    /// Like [`SkCipher::encrypt`] with a caller-chosen IV (known-answer tests, or a counter
    /// IV for GCM). The IV must never repeat under one key; for CBC it must be unpredictable.
    pub fn encrypt_with_iv(
        &self,
        associated: &[u8],
        plaintext: &[u8],
        iv: &[u8],
    ) -> Result<Vec<u8>, IkeCipherError> {
        if iv.len() != self.iv_len() {
            return Err(IkeCipherError::InvalidIvLength {
                expected: self.iv_len(),
                got: iv.len(),
            });
        }
        let pad = self.pad_len(plaintext.len());
        let mut out = Vec::with_capacity(self.encrypted_len(plaintext.len()));
        out.extend_from_slice(iv);
        out.extend_from_slice(plaintext);
        out.resize(out.len() + pad, 0);
        // pad < 16 always fits in a byte.
        out.push(pad as u8);
        let iv_len = self.iv_len();
        match self.integ {
            Some(integ) => {
                cbc_encrypt(self.encr, &self.encr_key, iv, &mut out[iv_len..])?;
                let icv = integ.icv(self.integ_key.as_bytes(), &[associated, &out]);
                out.extend_from_slice(&icv);
            }
            None => {
                let tag = gcm_seal(
                    self.encr,
                    &self.encr_key,
                    &self.salt,
                    iv,
                    associated,
                    &mut out[iv_len..],
                )?;
                out.extend_from_slice(&tag);
            }
        }
        Ok(out)
    }

    /// Verifies and decrypts an SK payload body (`IV | ciphertext | ICV`).
    ///
    /// `associated` is the received message from the IKE header through the SK payload's
    /// generic header. Returns the inner payload chain with padding and pad length removed.
    pub fn decrypt(&self, associated: &[u8], body: &[u8]) -> Result<Vec<u8>, IkeCipherError> {
        let iv_len = self.iv_len();
        let icv_len = self.icv_len();
        let min_ct = if self.encr.is_aead() { 1 } else { AES_BLOCK };
        if body.len() < iv_len + icv_len + min_ct {
            return Err(IkeCipherError::Truncated(body.len()));
        }
        let (iv_ct, icv) = body.split_at(body.len() - icv_len);
        let (iv, ct) = iv_ct.split_at(iv_len);
        let mut pt = ct.to_vec();
        match self.integ {
            Some(integ) => {
                let expected = integ.icv(self.integ_key.as_bytes(), &[associated, iv_ct]);
                if !bool::from(expected.as_slice().ct_eq(icv)) {
                    return Err(IkeCipherError::IntegrityCheckFailed);
                }
                if ct.len() % AES_BLOCK != 0 {
                    return Err(IkeCipherError::BadCiphertextLength(ct.len()));
                }
                cbc_decrypt(self.encr, &self.encr_key, iv, &mut pt)?;
            }
            None => {
                gcm_open(
                    self.encr,
                    &self.encr_key,
                    &self.salt,
                    iv,
                    associated,
                    &mut pt,
                    icv,
                )?;
            }
        }
        // RFC 7296 section 3.14: the last octet is the pad length; pad bytes may be anything.
        let pad_len = usize::from(*pt.last().ok_or(IkeCipherError::BadPadding)?);
        if pad_len + 1 > pt.len() {
            return Err(IkeCipherError::BadPadding);
        }
        pt.truncate(pt.len() - pad_len - 1);
        Ok(pt)
    }
}

fn check_suite(encr: EncrAlgorithm, integ: Option<IntegAlgorithm>) -> Result<(), IkeCipherError> {
    match (encr.is_aead(), integ) {
        (true, Some(_)) => Err(IkeCipherError::UnexpectedIntegrity(encr)),
        (false, None) => Err(IkeCipherError::MissingIntegrity(encr)),
        _ => Ok(()),
    }
}

fn bad_key(encr: EncrAlgorithm, got: usize) -> IkeCipherError {
    IkeCipherError::InvalidKeyLength {
        what: "encryption",
        expected: encr.key_len(),
        got,
    }
}

fn cbc_encrypt_with<C>(mut enc: C, buf: &mut [u8])
where
    C: BlockModeEncrypt,
{
    for chunk in buf.chunks_exact_mut(AES_BLOCK) {
        let mut block = Block::<C>::default();
        block.copy_from_slice(chunk);
        enc.encrypt_block(&mut block);
        chunk.copy_from_slice(&block);
    }
}

fn cbc_decrypt_with<C>(mut dec: C, buf: &mut [u8])
where
    C: BlockModeDecrypt,
{
    for chunk in buf.chunks_exact_mut(AES_BLOCK) {
        let mut block = Block::<C>::default();
        block.copy_from_slice(chunk);
        dec.decrypt_block(&mut block);
        chunk.copy_from_slice(&block);
    }
}

/// AES-CBC without padding over whole blocks (`buf.len()` is a multiple of 16).
fn cbc_encrypt(
    encr: EncrAlgorithm,
    key: &SecretBytes,
    iv: &[u8],
    buf: &mut [u8],
) -> Result<(), IkeCipherError> {
    let k = key.as_bytes();
    let e = |_| bad_key(encr, k.len());
    match encr {
        EncrAlgorithm::AesCbc128 => cbc_encrypt_with(
            cbc::Encryptor::<aes::Aes128>::new_from_slices(k, iv).map_err(e)?,
            buf,
        ),
        EncrAlgorithm::AesCbc192 => cbc_encrypt_with(
            cbc::Encryptor::<aes::Aes192>::new_from_slices(k, iv).map_err(e)?,
            buf,
        ),
        EncrAlgorithm::AesCbc256 => cbc_encrypt_with(
            cbc::Encryptor::<aes::Aes256>::new_from_slices(k, iv).map_err(e)?,
            buf,
        ),
        _ => return Err(IkeCipherError::UnexpectedIntegrity(encr)),
    }
    Ok(())
}

fn cbc_decrypt(
    encr: EncrAlgorithm,
    key: &SecretBytes,
    iv: &[u8],
    buf: &mut [u8],
) -> Result<(), IkeCipherError> {
    let k = key.as_bytes();
    let e = |_| bad_key(encr, k.len());
    match encr {
        EncrAlgorithm::AesCbc128 => cbc_decrypt_with(
            cbc::Decryptor::<aes::Aes128>::new_from_slices(k, iv).map_err(e)?,
            buf,
        ),
        EncrAlgorithm::AesCbc192 => cbc_decrypt_with(
            cbc::Decryptor::<aes::Aes192>::new_from_slices(k, iv).map_err(e)?,
            buf,
        ),
        EncrAlgorithm::AesCbc256 => cbc_decrypt_with(
            cbc::Decryptor::<aes::Aes256>::new_from_slices(k, iv).map_err(e)?,
            buf,
        ),
        _ => return Err(IkeCipherError::UnexpectedIntegrity(encr)),
    }
    Ok(())
}

type Aes192Gcm = aes_gcm::AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>;

fn gcm_nonce(salt: &[u8], iv: &[u8]) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(salt);
    n[4..].copy_from_slice(iv);
    n
}

fn gcm_seal_with<A: AeadInOut + AeadKeyInit>(
    key: &[u8],
    nonce: &[u8; 12],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<Vec<u8>, IkeCipherError> {
    let cipher = A::new_from_slice(key).map_err(|_| IkeCipherError::InvalidKeyLength {
        what: "encryption",
        expected: 0,
        got: key.len(),
    })?;
    let nonce = aes_gcm::aead::Nonce::<A>::try_from(&nonce[..]).map_err(|_| {
        IkeCipherError::InvalidIvLength {
            expected: 12,
            got: nonce.len(),
        }
    })?;
    let tag = cipher
        .encrypt_inout_detached(&nonce, aad, buf.into())
        .map_err(|_| IkeCipherError::MessageTooLong)?;
    Ok(tag.to_vec())
}

fn gcm_open_with<A: AeadInOut + AeadKeyInit>(
    key: &[u8],
    nonce: &[u8; 12],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8],
) -> Result<(), IkeCipherError> {
    let cipher = A::new_from_slice(key).map_err(|_| IkeCipherError::InvalidKeyLength {
        what: "encryption",
        expected: 0,
        got: key.len(),
    })?;
    let nonce = aes_gcm::aead::Nonce::<A>::try_from(&nonce[..])
        .map_err(|_| IkeCipherError::IntegrityCheckFailed)?;
    let tag =
        aes_gcm::aead::Tag::<A>::try_from(tag).map_err(|_| IkeCipherError::IntegrityCheckFailed)?;
    cipher
        .decrypt_inout_detached(&nonce, aad, buf.into(), &tag)
        .map_err(|_| IkeCipherError::IntegrityCheckFailed)
}

fn gcm_seal(
    encr: EncrAlgorithm,
    key: &SecretBytes,
    salt: &SecretBytes,
    iv: &[u8],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<Vec<u8>, IkeCipherError> {
    let nonce = gcm_nonce(salt.as_bytes(), iv);
    let k = key.as_bytes();
    match encr {
        EncrAlgorithm::AesGcm16_128 => gcm_seal_with::<aes_gcm::Aes128Gcm>(k, &nonce, aad, buf),
        EncrAlgorithm::AesGcm16_192 => gcm_seal_with::<Aes192Gcm>(k, &nonce, aad, buf),
        EncrAlgorithm::AesGcm16_256 => gcm_seal_with::<aes_gcm::Aes256Gcm>(k, &nonce, aad, buf),
        _ => Err(IkeCipherError::MissingIntegrity(encr)),
    }
}

fn gcm_open(
    encr: EncrAlgorithm,
    key: &SecretBytes,
    salt: &SecretBytes,
    iv: &[u8],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8],
) -> Result<(), IkeCipherError> {
    let nonce = gcm_nonce(salt.as_bytes(), iv);
    let k = key.as_bytes();
    match encr {
        EncrAlgorithm::AesGcm16_128 => {
            gcm_open_with::<aes_gcm::Aes128Gcm>(k, &nonce, aad, buf, tag)
        }
        EncrAlgorithm::AesGcm16_192 => gcm_open_with::<Aes192Gcm>(k, &nonce, aad, buf, tag),
        EncrAlgorithm::AesGcm16_256 => {
            gcm_open_with::<aes_gcm::Aes256Gcm>(k, &nonce, aad, buf, tag)
        }
        _ => Err(IkeCipherError::MissingIntegrity(encr)),
    }
}

#[doc(hidden)]
/// Raw AES-GCM seal with a 12-byte nonce, for known-answer tests against NIST/GCM-spec
/// vectors (which use the full 96-bit IV rather than salt | IV). Returns `ciphertext | tag`.
pub fn raw_gcm_seal(
    key: &[u8],
    nonce: &[u8; 12],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, IkeCipherError> {
    let encr = match key.len() {
        16 => EncrAlgorithm::AesGcm16_128,
        24 => EncrAlgorithm::AesGcm16_192,
        32 => EncrAlgorithm::AesGcm16_256,
        n => return Err(bad_key(EncrAlgorithm::AesGcm16_128, n)),
    };
    let mut buf = plaintext.to_vec();
    let tag = gcm_seal(
        encr,
        &SecretBytes::from_slice(key),
        &SecretBytes::from_slice(&nonce[..4]),
        &nonce[4..],
        aad,
        &mut buf,
    )?;
    buf.extend_from_slice(&tag);
    Ok(buf)
}
