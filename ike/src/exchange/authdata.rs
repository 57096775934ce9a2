//! The AUTH payload of either side (RFC 7296 section 2.15, RFC 7427): computing ours with
//! the configured PSK or private key, and checking the peer's against the PSK or the peer's
//! configured public key. Also the SIGNATURE_HASH_ALGORITHMS notification of IKE_SA_INIT
//! (RFC 7427 section 4) that decides which hash our signature may use.
//!
//! Signed octets (section 2.15): `RealMessage | NonceData of the other side | prf(SK_p,
//! RestOfIDPayload)`, where the message and ID payload are the signer's *as sent*; for the
//! peer's AUTH we use the bytes we received, never a re-encoding.

use rand_core::CryptoRng;
use tracing::info;
use vpn_ike_crypto::auth::{self, AuthError, SUPPORTED_HASH_ALGORITHMS, SigningKey, VerifyingKey};

use crate::codec::{AuthMethod, Authentication, Notify, NotifyType, Payload};
use crate::config::{Auth, KeyAuth, SignatureMode};
use crate::sa::Keyed;

/// Most hash algorithm IDs kept from a peer's SIGNATURE_HASH_ALGORITHMS (IANA has 8).
const MAX_PEER_HASHES: usize = 16;

/// The SIGNATURE_HASH_ALGORITHMS notification we send in IKE_SA_INIT when we authenticate
/// with a key (RFC 7427 section 4): the hashes our verifiers accept.
pub(crate) fn hash_notify(auth: &Auth) -> Option<Payload> {
    auth.key()?;
    let data = SUPPORTED_HASH_ALGORITHMS
        .iter()
        .flat_map(|h| h.to_be_bytes())
        .collect();
    Some(Payload::Notify(Notify::new(
        NotifyType::SignatureHashAlgorithms,
        data,
    )))
}

/// The hash algorithm IDs the peer announced (RFC 7427 section 4: a list of 16-bit IDs).
/// A malformed notification (odd length) counts as none; at most [`MAX_PEER_HASHES`] kept.
pub(crate) fn peer_hashes(payloads: &[Payload]) -> Vec<u16> {
    payloads
        .iter()
        .find_map(|p| match p {
            Payload::Notify(n) if n.notify_type == NotifyType::SignatureHashAlgorithms => Some(n),
            _ => None,
        })
        .filter(|n| n.data.len().is_multiple_of(2))
        .map(|n| {
            n.data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .take(MAX_PEER_HASHES)
                .collect()
        })
        .unwrap_or_default()
}

/// The signed octets of the signer's AUTH. `signer_init` is the signer's IKE_SA_INIT
/// message, `signer_is_initiator` picks the other side's nonce and SK_pi / SK_pr.
fn signed_octets(
    keyed: &Keyed,
    signer_init: &[u8],
    signer_is_initiator: bool,
    id_body: &[u8],
) -> Vec<u8> {
    let (other_nonce, sk_p) = if signer_is_initiator {
        (&keyed.nr, &keyed.keys.sk_pi)
    } else {
        (&keyed.ni, &keyed.keys.sk_pr)
    };
    auth::signed_octets(
        keyed.chosen.suite.prf,
        signer_init,
        other_nonce,
        sk_p.as_bytes(),
        id_body,
    )
}

/// Why we cannot produce our AUTH payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OwnAuthError {
    /// Our key needs RFC 7427 and the peer announced no hash it can sign with.
    #[error("the peer announced no signature hash algorithm our {0} key can use (RFC 7427)")]
    NoCommonHash(vpn_ike_crypto::keyfile::KeyKind),
    /// The signing primitive failed.
    #[error("signing failed")]
    Signing,
}

/// Our AUTH payload over our IKE_SA_INIT message `own_init` and our ID payload body.
pub(crate) fn own_auth(
    keyed: &Keyed,
    auth: &Auth,
    own_init: &[u8],
    initiator: bool,
    id_body: &[u8],
    peer_hashes: &[u16],
    rng: &mut dyn CryptoRng,
) -> Result<Authentication, OwnAuthError> {
    let octets = signed_octets(keyed, own_init, initiator, id_body);
    match auth {
        Auth::Psk(psk) => Ok(Authentication {
            method: AuthMethod::SharedKeyMic,
            data: auth::psk_auth(keyed.chosen.suite.prf, psk.as_bytes(), &octets)
                .as_bytes()
                .to_vec(),
        }),
        Auth::PublicKey(k) => sign(k, &octets, peer_hashes, rng),
    }
}

fn sign(
    k: &KeyAuth,
    octets: &[u8],
    peer_hashes: &[u16],
    rng: &mut dyn CryptoRng,
) -> Result<Authentication, OwnAuthError> {
    let scheme = match k.mode {
        SignatureMode::RsaSha1 => None,
        SignatureMode::DigitalSignature { rsa } => {
            auth::choose_scheme(&k.local_key, rsa, peer_hashes)
        }
    };
    match (scheme, k.local_key.as_ref()) {
        (Some(scheme), key) => Ok(Authentication {
            method: AuthMethod::DigitalSignature,
            data: auth::digital_signature_auth(key, scheme, octets, rng)
                .map_err(|_| OwnAuthError::Signing)?,
        }),
        // Method 1: configured, or the fallback of an RSA key for a peer without RFC 7427.
        (None, SigningKey::Rsa(key)) => {
            if k.mode != SignatureMode::RsaSha1 {
                // Visible: a peer (or whoever rewrote its IKE_SA_INIT) that announces no
                // SIGNATURE_HASH_ALGORITHMS gets SHA-1 signatures.
                info!(
                    "peer announced no usable RFC 7427 hash: signing with auth method 1 (RSA, SHA-1)"
                );
            }
            Ok(Authentication {
                method: AuthMethod::RsaSig,
                data: auth::rsa_sha1_sign(key, octets).map_err(|_| OwnAuthError::Signing)?,
            })
        }
        (None, key) => Err(OwnAuthError::NoCommonHash(key.kind())),
    }
}

/// Why the peer's AUTH payload was refused (logged; never contains key material).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PeerAuthError {
    /// An auth method that does not fit the configuration (e.g. PSK where a key is
    /// configured, or RSA method 1 with a non-RSA peer key).
    #[error("auth method {0} not acceptable for this peer")]
    Method(u8),
    /// The MIC or signature is wrong, malformed or of an unsupported algorithm.
    #[error("{0}")]
    Check(AuthError),
}

/// Checks the peer's AUTH payload. `peer_init` is the peer's IKE_SA_INIT message as
/// received, `raw_id_body` its ID payload body as received.
pub(crate) fn verify_peer_auth(
    keyed: &Keyed,
    auth: &Auth,
    peer_init: &[u8],
    peer_is_initiator: bool,
    raw_id_body: &[u8],
    payload: &Authentication,
) -> Result<(), PeerAuthError> {
    let octets = signed_octets(keyed, peer_init, peer_is_initiator, raw_id_body);
    let method = payload.method;
    let check = PeerAuthError::Check;
    match (auth, method) {
        (Auth::Psk(psk), AuthMethod::SharedKeyMic) => auth::verify_psk_auth(
            keyed.chosen.suite.prf,
            psk.as_bytes(),
            &octets,
            &payload.data,
        )
        .map_err(check),
        (Auth::PublicKey(k), AuthMethod::DigitalSignature) => {
            auth::verify_digital_signature_auth(&k.peer_key, &octets, &payload.data)
                .map(|_| ())
                .map_err(check)
        }
        (Auth::PublicKey(k), AuthMethod::RsaSig) => match &k.peer_key {
            VerifyingKey::Rsa(pk) => {
                auth::rsa_sha1_verify(pk, &octets, &payload.data).map_err(check)
            }
            _ => Err(PeerAuthError::Method(method.value())),
        },
        _ => Err(PeerAuthError::Method(method.value())),
    }
}
