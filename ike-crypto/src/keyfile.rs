//! Key files for signature authentication: PEM private keys (PKCS#8, PKCS#1 `RSA PRIVATE
//! KEY`, SEC1 `EC PRIVATE KEY`) and public keys (SPKI `PUBLIC KEY`, PKCS#1 `RSA PUBLIC KEY`,
//! or strongSwan's / libreswan's `rsasigkey` text `0s...` / `0x...`, RFC 3110).
//!
//! All parsing is done by the RustCrypto crates (`pem-rfc7468` through `der`, `pkcs8`,
//! `pkcs1`, `spki`, `sec1`); this module only picks the decoder from the PEM label and the
//! key algorithm. The decoded DER of a private key lives in a zeroizing buffer, and errors
//! never contain key material (only which check failed).

use der::SecretDocument;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::traits::PublicKeyParts;

use crate::auth::{AuthError, SigningKey, VerifyingKey, rsa_public_key_from_rsasigkey};

/// Smallest RSA modulus accepted, in bits (NIST SP 800-131A: 2048 and up).
pub const MIN_RSA_BITS: usize = 2048;

/// The kind of a key, for logs and configuration checks (never the key itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RSA, with its modulus size in bits.
    Rsa(usize),
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
}

impl core::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Rsa(bits) => write!(f, "RSA-{bits}"),
            Self::EcdsaP256 => f.write_str("ECDSA P-256"),
            Self::EcdsaP384 => f.write_str("ECDSA P-384"),
            Self::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

fn rsa_bits_ok(bits: usize) -> Result<(), AuthError> {
    if bits < MIN_RSA_BITS {
        Err(AuthError::InvalidKey("RSA key shorter than 2048 bits"))
    } else {
        Ok(())
    }
}

impl SigningKey {
    /// Parses a PEM private key: `PRIVATE KEY` (PKCS#8: RSA, EC P-256/P-384, Ed25519),
    /// `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC1). Encrypted keys are refused.
    pub fn from_pem(pem: &[u8]) -> Result<Self, AuthError> {
        let text =
            core::str::from_utf8(pem).map_err(|_| AuthError::InvalidKey("PEM is not text"))?;
        let (label, doc) = SecretDocument::from_pem(text.trim())
            .map_err(|_| AuthError::InvalidKey("not a PEM document"))?;
        let der = doc.as_bytes();
        let key = match label {
            "PRIVATE KEY" => {
                if let Ok(k) = rsa::PrivateKey::from_pkcs8_der(der) {
                    Self::Rsa(Box::new(k))
                } else if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
                    Self::EcdsaP256(k)
                } else if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_der(der) {
                    Self::EcdsaP384(k)
                } else if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
                    Self::Ed25519(Box::new(k))
                } else {
                    return Err(AuthError::InvalidKey(
                        "PKCS#8 key of an unsupported algorithm (RSA, ECDSA P-256/P-384, Ed25519)",
                    ));
                }
            }
            "RSA PRIVATE KEY" => Self::Rsa(Box::new(
                rsa::PrivateKey::from_pkcs1_der(der)
                    .map_err(|_| AuthError::InvalidKey("PKCS#1 RSA private key"))?,
            )),
            "EC PRIVATE KEY" => {
                if let Ok(k) = p256::SecretKey::from_sec1_der(der) {
                    Self::EcdsaP256(k.into())
                } else if let Ok(k) = p384::SecretKey::from_sec1_der(der) {
                    Self::EcdsaP384(k.into())
                } else {
                    return Err(AuthError::InvalidKey("SEC1 EC key not on P-256 or P-384"));
                }
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(AuthError::InvalidKey(
                    "encrypted private keys are not supported (store it unencrypted, mode 0600)",
                ));
            }
            _ => return Err(AuthError::InvalidKey("unknown PEM label for a private key")),
        };
        if let KeyKind::Rsa(bits) = key.kind() {
            rsa_bits_ok(bits)?;
        }
        Ok(key)
    }

    /// What kind of key this is.
    pub fn kind(&self) -> KeyKind {
        match self {
            Self::Rsa(k) => KeyKind::Rsa(k.size() * 8),
            Self::EcdsaP256(_) => KeyKind::EcdsaP256,
            Self::EcdsaP384(_) => KeyKind::EcdsaP384,
            Self::Ed25519(_) => KeyKind::Ed25519,
        }
    }
}

impl VerifyingKey {
    /// Parses a public key file: PEM `PUBLIC KEY` (SPKI: RSA, EC P-256/P-384, Ed25519),
    /// PEM `RSA PUBLIC KEY` (PKCS#1), or a `rsasigkey` value (`0s` base64 / `0x` hex of the
    /// RFC 3110 form).
    pub fn from_pem(text: &[u8]) -> Result<Self, AuthError> {
        let text = core::str::from_utf8(text)
            .map_err(|_| AuthError::InvalidKey("public key file is not text"))?
            .trim();
        if text.starts_with("0s") || text.starts_with("0x") {
            let k = rsa_public_key_from_rsasigkey(text)?;
            rsa_bits_ok(k.size() * 8)?;
            return Ok(Self::Rsa(Box::new(k)));
        }
        let (label, doc) = der::Document::from_pem(text)
            .map_err(|_| AuthError::InvalidKey("not a PEM document"))?;
        let der = doc.as_bytes();
        let key = match label {
            "PUBLIC KEY" => {
                if let Ok(k) = rsa::PublicKey::from_public_key_der(der) {
                    Self::Rsa(Box::new(k))
                } else if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
                    Self::EcdsaP256(k)
                } else if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(der) {
                    Self::EcdsaP384(k)
                } else if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_der(der) {
                    Self::Ed25519(k)
                } else {
                    return Err(AuthError::InvalidKey(
                        "public key of an unsupported algorithm (RSA, ECDSA P-256/P-384, Ed25519)",
                    ));
                }
            }
            "RSA PUBLIC KEY" => Self::Rsa(Box::new(
                rsa::PublicKey::from_pkcs1_der(der)
                    .map_err(|_| AuthError::InvalidKey("PKCS#1 RSA public key"))?,
            )),
            _ => return Err(AuthError::InvalidKey("unknown PEM label for a public key")),
        };
        if let KeyKind::Rsa(bits) = key.kind() {
            rsa_bits_ok(bits)?;
        }
        Ok(key)
    }

    /// What kind of key this is.
    pub fn kind(&self) -> KeyKind {
        match self {
            Self::Rsa(k) => KeyKind::Rsa(k.size() * 8),
            Self::EcdsaP256(_) => KeyKind::EcdsaP256,
            Self::EcdsaP384(_) => KeyKind::EcdsaP384,
            Self::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// Whether `self` and `other` are the same public key.
    pub fn same_key(&self, other: &VerifyingKey) -> bool {
        match (self, other) {
            (Self::Rsa(a), Self::Rsa(b)) => a.n() == b.n() && a.e() == b.e(),
            (Self::EcdsaP256(a), Self::EcdsaP256(b)) => a == b,
            (Self::EcdsaP384(a), Self::EcdsaP384(b)) => a == b,
            (Self::Ed25519(a), Self::Ed25519(b)) => a == b,
            _ => false,
        }
    }
}
