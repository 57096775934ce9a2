//! IKE SA and CHILD SA key derivation (RFC 7296 sections 2.14, 2.17 and 2.18; RFC 4106
//! section 8.1 and RFC 5282 section 7.1 for the AES-GCM salt).
//!
//! Hand-written IKE glue on top of [`crate::prf`]: the seed concatenations and the order and
//! lengths in which `prf+` output is cut into keys.
//!
//! ```text
//! SKEYSEED = prf(Ni | Nr, g^ir)
//! {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
//! SKEYSEED (IKE SA rekey) = prf(SK_d (old), g^ir (new) | Ni | Nr)
//! KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr)
//! ```
//!
//! Nonces are used in full (the HMAC PRFs accept variable-length keys), so the RFC 7296
//! section 2.14 truncation rule for fixed-key-size PRFs does not apply. Nonce length policy
//! (16..=256 octets) is the engine's job; known-answer vectors use shorter nonces.

use crate::ike_cipher::{EncrAlgorithm, IkeCipherError, IntegAlgorithm, SkCipher};
use crate::prf::{PrfAlgorithm, PrfError};
use crate::secret::SecretBytes;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Errors of the key derivation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The PRF could not produce that much key material.
    #[error(transparent)]
    Prf(#[from] PrfError),
    /// An AEAD suite with an integrity algorithm, or a non-AEAD suite without one.
    #[error(transparent)]
    Suite(#[from] IkeCipherError),
}

/// The algorithms of an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IkeSuite {
    /// Encryption algorithm.
    pub encr: EncrAlgorithm,
    /// Integrity algorithm; `None` for AES-GCM.
    pub integ: Option<IntegAlgorithm>,
    /// Pseudo-random function.
    pub prf: PrfAlgorithm,
}

impl IkeSuite {
    fn check(&self) -> Result<(), KeyError> {
        match (self.encr.is_aead(), self.integ) {
            (true, Some(_)) => Err(IkeCipherError::UnexpectedIntegrity(self.encr).into()),
            (false, None) => Err(IkeCipherError::MissingIntegrity(self.encr).into()),
            _ => Ok(()),
        }
    }

    /// Total `prf+` output needed for the seven IKE SA keys.
    pub fn key_material_len(&self) -> usize {
        3 * self.prf.key_len()
            + 2 * self.integ.map_or(0, IntegAlgorithm::key_len)
            + 2 * self.encr.key_material_len()
    }
}

/// The seven keys of an IKE SA (RFC 7296 section 2.14). For AES-GCM `sk_ei`/`sk_er` are
/// key | 4-byte salt and `sk_ai`/`sk_ar` are empty.
#[derive(Debug, Clone, Zeroize, ZeroizeOnDrop)]
pub struct IkeSaKeys {
    /// Key for deriving CHILD SA keys and the rekeyed IKE SA's SKEYSEED.
    pub sk_d: SecretBytes,
    /// Integrity key, initiator to responder.
    pub sk_ai: SecretBytes,
    /// Integrity key, responder to initiator.
    pub sk_ar: SecretBytes,
    /// Encryption key (| salt), initiator to responder.
    pub sk_ei: SecretBytes,
    /// Encryption key (| salt), responder to initiator.
    pub sk_er: SecretBytes,
    /// Key for the initiator's AUTH payload.
    pub sk_pi: SecretBytes,
    /// Key for the responder's AUTH payload.
    pub sk_pr: SecretBytes,
}

/// Takes `n` bytes from the front of `rest`.
fn take(rest: &mut &[u8], n: usize) -> SecretBytes {
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    SecretBytes::from_slice(head)
}

/// `SKEYSEED = prf(Ni | Nr, g^ir)` (RFC 7296 section 2.14).
pub fn skeyseed(prf: PrfAlgorithm, ni: &[u8], nr: &[u8], g_ir: &[u8]) -> SecretBytes {
    let mut key = Vec::with_capacity(ni.len() + nr.len());
    key.extend_from_slice(ni);
    key.extend_from_slice(nr);
    let key = SecretBytes::new(key);
    prf.prf(key.as_bytes(), g_ir)
}

/// `SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)` for a rekeyed IKE SA (RFC 7296
/// section 2.18), with `prf` the PRF of the *old* IKE SA, and Ni/Nr the nonces of the
/// CREATE_CHILD_SA exchange.
pub fn rekey_skeyseed(
    prf: PrfAlgorithm,
    old_sk_d: &[u8],
    g_ir_new: &[u8],
    ni: &[u8],
    nr: &[u8],
) -> SecretBytes {
    prf.prf_parts(old_sk_d, &[g_ir_new, ni, nr])
}

/// Derives the seven IKE SA keys from SKEYSEED (RFC 7296 section 2.14); `spi_i`/`spi_r`
/// are the IKE SPIs of the new SA in header order (initiator first).
pub fn derive_ike_sa_keys(
    suite: &IkeSuite,
    skeyseed: &[u8],
    ni: &[u8],
    nr: &[u8],
    spi_i: &[u8; 8],
    spi_r: &[u8; 8],
) -> Result<IkeSaKeys, KeyError> {
    suite.check()?;
    let km =
        suite
            .prf
            .prf_plus_parts(skeyseed, &[ni, nr, spi_i, spi_r], suite.key_material_len())?;
    let mut rest = km.as_bytes();
    let prf_len = suite.prf.key_len();
    let a_len = suite.integ.map_or(0, IntegAlgorithm::key_len);
    let e_len = suite.encr.key_material_len();
    Ok(IkeSaKeys {
        sk_d: take(&mut rest, prf_len),
        sk_ai: take(&mut rest, a_len),
        sk_ar: take(&mut rest, a_len),
        sk_ei: take(&mut rest, e_len),
        sk_er: take(&mut rest, e_len),
        sk_pi: take(&mut rest, prf_len),
        sk_pr: take(&mut rest, prf_len),
    })
}

impl IkeSaKeys {
    /// SK payload protection for messages sent by the initiator (SK_ei, SK_ai).
    pub fn initiator_cipher(&self, suite: &IkeSuite) -> Result<SkCipher, IkeCipherError> {
        SkCipher::new(
            suite.encr,
            suite.integ,
            self.sk_ei.as_bytes(),
            self.sk_ai.as_bytes(),
        )
    }

    /// SK payload protection for messages sent by the responder (SK_er, SK_ar).
    pub fn responder_cipher(&self, suite: &IkeSuite) -> Result<SkCipher, IkeCipherError> {
        SkCipher::new(
            suite.encr,
            suite.integ,
            self.sk_er.as_bytes(),
            self.sk_ar.as_bytes(),
        )
    }
}

/// The algorithms of an ESP CHILD SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EspSuite {
    /// Encryption algorithm.
    pub encr: EncrAlgorithm,
    /// Integrity algorithm; `None` for AES-GCM.
    pub integ: Option<IntegAlgorithm>,
}

impl EspSuite {
    /// KEYMAT needed for one direction.
    pub fn key_material_len_per_direction(&self) -> usize {
        self.encr.key_material_len() + self.integ.map_or(0, IntegAlgorithm::key_len)
    }
}

/// Keys of one ESP SA (one direction).
#[derive(Debug, Clone, Zeroize, ZeroizeOnDrop)]
pub struct EspKeys {
    /// AES key (without salt).
    pub encr_key: SecretBytes,
    /// AES-GCM salt: the last 4 octets of this direction's encryption KEYMAT (RFC 4106
    /// section 8.1); empty for CBC.
    pub salt: SecretBytes,
    /// Integrity key; empty for AES-GCM.
    pub integ_key: SecretBytes,
}

/// Keys of a CHILD SA pair (RFC 7296 section 2.17).
#[derive(Debug, Clone, Zeroize, ZeroizeOnDrop)]
pub struct ChildSaKeys {
    /// Keys of the SA carrying traffic from the IKE initiator to the responder.
    pub initiator_to_responder: EspKeys,
    /// Keys of the SA carrying traffic from the IKE responder to the initiator.
    pub responder_to_initiator: EspKeys,
}

fn split_esp(rest: &mut &[u8], suite: &EspSuite) -> EspKeys {
    EspKeys {
        encr_key: take(rest, suite.encr.key_len()),
        salt: take(rest, suite.encr.salt_len()),
        integ_key: take(rest, suite.integ.map_or(0, IntegAlgorithm::key_len)),
    }
}

/// `KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr)` (RFC 7296 section 2.17), as raw bytes of
/// length `len`.
pub fn child_keymat(
    prf: PrfAlgorithm,
    sk_d: &[u8],
    g_ir_new: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    len: usize,
) -> Result<SecretBytes, PrfError> {
    let gir = g_ir_new.unwrap_or(&[]);
    prf.prf_plus_parts(sk_d, &[gir, ni, nr], len)
}

/// Derives the keys of a CHILD SA pair: KEYMAT is cut into the initiator-to-responder
/// keys first (encryption key [| salt], then integrity key), then the responder-to-initiator
/// keys, as RFC 7296 section 2.17 requires. `ni`/`nr` are the nonces of the exchange that
/// created the CHILD SA (IKE_SA_INIT's for the first one); `g_ir_new` is the shared secret of
/// the optional CREATE_CHILD_SA Diffie-Hellman exchange (PFS).
pub fn derive_child_sa_keys(
    prf: PrfAlgorithm,
    sk_d: &[u8],
    g_ir_new: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    suite: &EspSuite,
) -> Result<ChildSaKeys, KeyError> {
    match (suite.encr.is_aead(), suite.integ) {
        (true, Some(_)) => return Err(IkeCipherError::UnexpectedIntegrity(suite.encr).into()),
        (false, None) => return Err(IkeCipherError::MissingIntegrity(suite.encr).into()),
        _ => {}
    }
    let per = suite.key_material_len_per_direction();
    let km = child_keymat(prf, sk_d, g_ir_new, ni, nr, 2 * per)?;
    let mut rest = km.as_bytes();
    Ok(ChildSaKeys {
        initiator_to_responder: split_esp(&mut rest, suite),
        responder_to_initiator: split_esp(&mut rest, suite),
    })
}
