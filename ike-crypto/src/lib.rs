//! Cryptography for the IKEv2 engine (RFC 7296): PRFs and `prf+`, IKE and CHILD SA key
//! derivation, Diffie-Hellman groups, SK payload protection and AUTH payload computation.
//!
//! All primitives (HMAC, SHA-1/2, AES, CBC, GCM, big-integer and elliptic-curve arithmetic,
//! RSA, ECDSA, Ed25519) come from maintained RustCrypto / dalek crates; this crate only
//! hand-writes the IKE-specific glue (formats, concatenations, key splitting, padding), as each
//! module's documentation says. The crate is sans-IO: callers pass the random number generator
//! (`&mut impl rand_core::CryptoRng`).
//!
//! Key material lives in [`SecretBytes`] and key structs that zeroize on drop and redact their
//! `Debug` output.
//!
//! | module | RFC | what |
//! |---|---|---|
//! | [`prf`] | 7296 2.13, 3.3.2 | [`PrfAlgorithm`] (IDs 2, 5, 6, 7): `prf`, `prf+` |
//! | [`keys`] | 7296 2.14, 2.17, 2.18; 4106 8.1; 5282 7.1 | SKEYSEED, the seven IKE SA keys, rekey SKEYSEED, CHILD SA KEYMAT |
//! | [`dh`] | 2409, 3526, 5114, 5903, 8031 | [`dh::DhGroup`] 2, 5, 14-24, 31; key pairs, validated shared secrets |
//! | [`ike_cipher`] | 7296 3.14; 4868; 5282 | [`ike_cipher::SkCipher`]: SK payload encrypt / verify+decrypt |
//! | [`auth`] | 7296 2.15; 7427; 8420 | signed octets, PSK MIC, RSA (method 1), RFC 7427 signatures |
//! | [`keyfile`] | 5208, 8017, 5915, 5280, 3110 | PEM private keys (PKCS#8, PKCS#1, SEC1), public keys (SPKI, PKCS#1, `rsasigkey`) |
//!
//! # Example: the IKE_SA_INIT keying of one side
//!
//! ```
//! use vpn_ike_crypto::dh::{DhGroup, DhPrivateKey};
//! use vpn_ike_crypto::ike_cipher::EncrAlgorithm;
//! use vpn_ike_crypto::keys::{self, IkeSuite};
//! use vpn_ike_crypto::{auth, PrfAlgorithm};
//!
//! let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
//! let suite = IkeSuite { encr: EncrAlgorithm::AesGcm16_256, integ: None, prf: PrfAlgorithm::HmacSha256 };
//! let (ni, nr) = ([1u8; 32], [2u8; 32]);
//! let (spi_i, spi_r) = ([0x11u8; 8], [0x22u8; 8]);
//!
//! let mine = DhPrivateKey::generate(DhGroup::Curve25519, &mut rng);
//! let peer = DhPrivateKey::generate(DhGroup::Curve25519, &mut rng); // stands in for the KE payload
//! let g_ir = mine.compute_shared_secret(peer.public_value()).unwrap();
//!
//! let skeyseed = keys::skeyseed(suite.prf, &ni, &nr, g_ir.as_bytes());
//! let sa = keys::derive_ike_sa_keys(&suite, skeyseed.as_bytes(), &ni, &nr, &spi_i, &spi_r).unwrap();
//!
//! // Protect an IKE_AUTH message: `header` = IKE header + SK payload header, lengths final.
//! let tx = sa.initiator_cipher(&suite).unwrap();
//! let inner = b"...IDi, AUTH, SA, TSi, TSr payloads...";
//! let header = [0u8; 32];
//! let body = tx.encrypt(&header, inner, &mut rng).unwrap();
//! assert_eq!(body.len(), tx.encrypted_len(inner.len()));
//! assert_eq!(tx.decrypt(&header, &body).unwrap(), inner);
//!
//! // PSK AUTH over InitiatorSignedOctets.
//! let octets = auth::signed_octets(suite.prf, b"IKE_SA_INIT request", &nr, sa.sk_pi.as_bytes(), b"\x02\0\0\0moon");
//! let mac = auth::psk_auth(suite.prf, b"secret", &octets);
//! auth::verify_psk_auth(suite.prf, b"secret", &octets, mac.as_bytes()).unwrap();
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod dh;
mod dh_params;
pub mod ike_cipher;
pub mod keyfile;
pub mod keys;
pub mod prf;
pub mod secret;

pub use prf::{PrfAlgorithm, PrfError};
pub use secret::SecretBytes;
