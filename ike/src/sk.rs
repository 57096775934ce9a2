//! Encrypted messages (RFC 7296 section 3.14): building an SK payload around an inner payload
//! chain, and verifying and opening a received one.
//!
//! The associated data (AEAD) or integrity-protected octets (CBC+HMAC) are taken from the bytes
//! *as received*: everything before the SK payload body, since SK is always the last payload.

use rand_core::CryptoRng;
use vpn_ike_crypto::ike_cipher::SkCipher;

use crate::codec::{
    self, Encrypted, ExchangeType, Flags, Message, MessageId, Payload, PayloadType, Spi,
};

/// Why an encrypted message could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The inner chain or the message does not encode.
    #[error(transparent)]
    Encode(#[from] codec::EncodeError),
    /// The cipher refused.
    #[error(transparent)]
    Cipher(#[from] vpn_ike_crypto::ike_cipher::IkeCipherError),
}

/// Header fields of an outgoing message.
#[derive(Debug, Clone, Copy)]
pub struct OutHeader {
    /// Initiator SPI.
    pub spi_i: Spi,
    /// Responder SPI.
    pub spi_r: Spi,
    /// Exchange type.
    pub exchange: ExchangeType,
    /// Flags.
    pub flags: Flags,
    /// Message ID.
    pub message_id: u32,
}

/// Encodes a message whose payloads are all inside one SK payload.
pub fn seal(
    h: OutHeader,
    inner: &[Payload],
    cipher: &SkCipher,
    rng: &mut dyn CryptoRng,
) -> Result<Vec<u8>, SealError> {
    let plaintext = codec::encode_payload_chain(inner)?;
    let inner_next = inner
        .first()
        .map_or(PayloadType::NoNextPayload, Payload::payload_type);
    seal_chain(h, inner_next, &plaintext, cipher, rng)
}

/// Encodes a message around an already encoded inner chain starting with `inner_next`.
pub(crate) fn seal_chain(
    h: OutHeader,
    inner_next: PayloadType,
    plaintext: &[u8],
    cipher: &SkCipher,
    rng: &mut dyn CryptoRng,
) -> Result<Vec<u8>, SealError> {
    let body_len = cipher.encrypted_len(plaintext.len());
    let skeleton = Message {
        initiator_spi: h.spi_i,
        responder_spi: h.spi_r,
        exchange_type: h.exchange,
        flags: h.flags,
        message_id: MessageId(h.message_id),
        payloads: vec![Payload::Encrypted(Encrypted {
            inner_next,
            data: vec![0; body_len],
        })],
    };
    let mut bytes = skeleton.encode()?;
    let aad_len = bytes.len() - body_len;
    let body = cipher.encrypt(&bytes[..aad_len], plaintext, rng)?;
    bytes.truncate(aad_len);
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

/// Encodes a message for sending: one datagram, or, when it would be longer than
/// `fragment_size` bytes, RFC 7383 SKF fragments each encrypted on its own (section 2.5:
/// fragment 1 names the first inner payload, the others `NoNextPayload`).
pub(crate) fn seal_datagrams(
    h: OutHeader,
    inner: &[Payload],
    cipher: &SkCipher,
    fragment_size: Option<usize>,
    rng: &mut dyn CryptoRng,
) -> Result<Vec<Vec<u8>>, SealError> {
    let whole = seal(h, inner, cipher, rng)?;
    let Some(limit) = fragment_size.filter(|l| whole.len() > *l) else {
        return Ok(vec![whole]);
    };
    let plaintext = codec::encode_payload_chain(inner)?;
    let first = inner
        .first()
        .map_or(PayloadType::NoNextPayload, Payload::payload_type);
    // IKE header, SKF payload header and fields, and the cipher's IV, padding and ICV at most.
    let overhead = 28 + 8 + cipher.encrypted_len(0) + 16;
    let chunk = limit.saturating_sub(overhead).max(64);
    let pieces: Vec<&[u8]> = plaintext.chunks(chunk).collect();
    let total = u16::try_from(pieces.len())
        .ok()
        .filter(|t| *t <= crate::fragment::MAX_FRAGMENTS)
        .ok_or(SealError::Encode(codec::EncodeError::TooLong {
            what: "fragment count",
            length: pieces.len(),
            limit: usize::from(crate::fragment::MAX_FRAGMENTS),
        }))?;
    let mut out = Vec::with_capacity(pieces.len());
    for (i, piece) in pieces.into_iter().enumerate() {
        let number = u16::try_from(i + 1).unwrap_or(u16::MAX);
        let body_len = cipher.encrypted_len(piece.len());
        let skeleton = Message {
            initiator_spi: h.spi_i,
            responder_spi: h.spi_r,
            exchange_type: h.exchange,
            flags: h.flags,
            message_id: MessageId(h.message_id),
            payloads: vec![Payload::EncryptedFragment(codec::EncryptedFragment {
                inner_next: if number == 1 {
                    first
                } else {
                    PayloadType::NoNextPayload
                },
                fragment_number: number,
                total_fragments: total,
                data: vec![0; body_len],
            })],
        };
        let mut bytes = skeleton.encode()?;
        let aad_len = bytes.len() - body_len;
        let body = cipher.encrypt(&bytes[..aad_len], piece, rng)?;
        bytes.truncate(aad_len);
        bytes.extend_from_slice(&body);
        out.push(bytes);
    }
    Ok(out)
}

/// Why a received encrypted message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// No SK payload (or an SKF fragment, which is not supported yet).
    NotEncrypted,
    /// Integrity check or decryption failed.
    Integrity,
    /// The decrypted chain does not decode.
    Malformed,
    /// The decrypted chain holds a payload of this unknown type with the critical bit set
    /// (RFC 7296 section 2.5).
    UnsupportedCritical(u8),
}

/// The decrypted content of a received message.
pub struct Opened {
    /// The inner payloads.
    pub payloads: Vec<Payload>,
    /// The inner chain's bytes, for AUTH over the ID payload as received.
    pub plaintext: Vec<u8>,
    /// The type of the first inner payload.
    pub first: PayloadType,
}

/// Verifies and decrypts `msg`'s SK payload; `bytes` is the datagram `msg` came from.
pub fn open(bytes: &[u8], msg: &Message, cipher: &SkCipher) -> Result<Opened, OpenError> {
    let Some(Payload::Encrypted(sk)) = msg.payloads.last() else {
        return Err(OpenError::NotEncrypted);
    };
    let aad_len = bytes
        .len()
        .checked_sub(sk.data.len())
        .ok_or(OpenError::Malformed)?;
    let plaintext = cipher
        .decrypt(&bytes[..aad_len], &bytes[aad_len..])
        .map_err(|_| OpenError::Integrity)?;
    let payloads = codec::decode_payload_chain(sk.inner_next, &plaintext).map_err(|e| match e {
        codec::DecodeError::UnsupportedCriticalPayload { payload_type, .. } => {
            OpenError::UnsupportedCritical(payload_type)
        }
        _ => OpenError::Malformed,
    })?;
    Ok(Opened {
        payloads,
        plaintext,
        first: sk.inner_next,
    })
}

/// The body (after the generic header) of the first payload of type `want` in a chain that
/// already decoded, as received.
#[must_use]
pub fn raw_body(first: PayloadType, chain: &[u8], want: PayloadType) -> Option<&[u8]> {
    let mut current = first;
    let mut at = 0usize;
    while current != PayloadType::NoNextPayload {
        let hdr = chain.get(at..at + 4)?;
        let len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
        let body = chain.get(at + 4..at + len)?;
        if current == want {
            return Some(body);
        }
        current = PayloadType::from_value(hdr[0]);
        at += len;
    }
    None
}
