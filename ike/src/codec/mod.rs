//! IKEv2 message codec (RFC 7296 section 3, plus the Encrypted Fragment payload of RFC 7383).
//!
//! Hand-written. The Rust IKEv2 code we found is parse-only and aimed at traffic analysis
//! (rusticata's `ipsec-parser` behind Suricata, `sawp-ike`); none decodes *and* encodes with the
//! hostile-input guarantees below, so this module does both without a parser framework.
//!
//! # Scope
//! Bytes to typed values and back; nothing more. SK and SKF payloads stay encrypted: the engine
//! decrypts their `data` and hands the plaintext to [`decode_payload_chain`] with the SK
//! header's inner Next Payload. The 4-byte non-ESP marker of UDP port 4500 is the transport's
//! business: strip it before [`Message::decode`] or [`Header::peek`].
//!
//! # Hostile input
//! Decoding never panics, never reads out of bounds, and only allocates in proportion to the
//! input, which is itself capped:
//!
//! | cap | value | why |
//! |---|---|---|
//! | [`MAX_MESSAGE_LEN`] | 65 535 bytes | a UDP datagram cannot be larger |
//! | [`MAX_PAYLOADS`] | 64 per chain | real IKE_SA_INIT/IKE_AUTH messages carry 5-20 |
//! | [`MAX_PROPOSALS`] | 64 per SA | strongSwan's default proposals are a handful |
//! | [`MAX_TRANSFORMS_PER_PROPOSAL`] | 128 | AWS's full algorithm list is ~25, strongSwan's default ~40 |
//! | [`MAX_ATTRIBUTES_PER_TRANSFORM`] | 8 | only Key Length is defined |
//! | [`MAX_TRAFFIC_SELECTORS`] | 64 per TS payload | AWS uses one (0.0.0.0/0) per side |
//! | [`MAX_CFG_ATTRIBUTES`] | 64 | a CP carries a few addresses and servers |
//! | [`MAX_DELETE_SPIS`] | 1024 per Delete | |
//! | nonce | 16..=256 bytes | RFC 7296 section 3.9 |
//!
//! Every rejection is a [`DecodeError`] naming the structure, its byte offset and the numbers
//! involved, never payload contents. Length fields are checked against the bytes actually
//! present at every level (header vs datagram, payload vs remaining chain, proposal vs SA,
//! transform vs proposal, attribute vs transform, selector vs TS payload), and each payload
//! type has a minimum length.
//!
//! An unknown payload type with the critical bit set fails with
//! [`DecodeError::UnsupportedCriticalPayload`] (carrying the type, for the
//! UNSUPPORTED_CRITICAL_PAYLOAD notification); without it, the payload is kept as
//! [`Payload::Unknown`] and decoding goes on.
//!
//! # Fuzzing
//! `ike/fuzz` is a cargo-fuzz project outside the workspace (`cd ike/fuzz && cargo +nightly fuzz
//! run decode`); its seed corpus is replayed by `tests/corpus.rs` on every `cargo test`.
//!
//! # Canonical form
//! Decoding then encoding gives the same bytes for every message a conforming sender produces.
//! Fields RFC 7296 says to send as zero and ignore on receipt are not kept and are encoded as
//! zero: RESERVED fields, the five reserved header flag bits, the critical bit of known payloads,
//! and the minor version (always encoded as 0). Encoding refuses what decoding would reject
//! (caps, nonce length, misplaced SK, counts that do not fit their fields), so an encoded
//! message always decodes to the value it came from.

mod decode;
mod encode;
mod error;
mod payload;
mod types;
mod wire;

pub use error::{DecodeError, EncodeError};
pub use payload::{
    AddressRange, Authentication, Certificate, CfgAttribute, Configuration, Delete, Encrypted,
    EncryptedFragment, GENERIC_HEADER_LEN, Identification, KeyExchange, Notify, Payload, Proposal,
    SecurityAssociation, TrafficSelector, TrafficSelectors, Transform, TransformAttribute,
    TransformId,
};
pub use types::{
    AuthMethod, CertEncoding, CfgAttributeType, CfgType, DhGroup, EncrId, EsnId, ExchangeType,
    Flags, IdType, IntegId, MessageId, NotifyType, PayloadType, PrfId, ProtocolId, Spi,
    TransformType, TsType,
};

use wire::Reader;

/// Largest datagram decoded or encoded.
pub const MAX_MESSAGE_LEN: usize = 65_535;
/// Most payloads in one chain (the message, or one decrypted SK/SKF).
pub const MAX_PAYLOADS: usize = 64;
/// Most proposals in one SA payload.
pub const MAX_PROPOSALS: usize = 64;
/// Most transforms in one proposal.
pub const MAX_TRANSFORMS_PER_PROPOSAL: usize = 128;
/// Most attributes in one transform.
pub const MAX_ATTRIBUTES_PER_TRANSFORM: usize = 8;
/// Most traffic selectors in one TSi/TSr payload.
pub const MAX_TRAFFIC_SELECTORS: usize = 64;
/// Most attributes in one Configuration payload.
pub const MAX_CFG_ATTRIBUTES: usize = 64;
/// Most SPIs in one Delete payload.
pub const MAX_DELETE_SPIS: usize = 1024;
/// Shortest nonce (RFC 7296 section 3.9).
pub const NONCE_MIN_LEN: usize = 16;
/// Longest nonce (RFC 7296 section 3.9).
pub const NONCE_MAX_LEN: usize = 256;

/// The IKE header (RFC 7296 section 3.1) as it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// IKE SA Initiator's SPI.
    pub initiator_spi: Spi,
    /// IKE SA Responder's SPI.
    pub responder_spi: Spi,
    /// Type of the first payload.
    pub next_payload: PayloadType,
    /// Minor version (the major version is always 2 in a decoded header).
    pub minor_version: u8,
    /// Exchange Type.
    pub exchange_type: ExchangeType,
    /// Flags.
    pub flags: Flags,
    /// Message ID.
    pub message_id: MessageId,
    /// Length of the whole message, header included.
    pub length: u32,
}

impl Header {
    /// Length of the IKE header.
    pub const LEN: usize = 28;
    /// The only major version spoken.
    pub const MAJOR_VERSION: u8 = 2;

    /// Reads the 28-byte header without touching the payloads, for routing a datagram by SPI
    /// before a full decode. Checks only that 28 bytes are there and the major version is 2;
    /// [`Message::decode`] also checks `length` against the datagram.
    pub fn peek(data: &[u8]) -> Result<Self, DecodeError> {
        if data.len() < Self::LEN {
            return Err(DecodeError::Truncated {
                what: "IKE header",
                offset: 0,
                needed: Self::LEN,
                available: data.len(),
            });
        }
        let mut r = Reader::new(data, 0);
        let initiator_spi = Spi(r.array("IKE header")?);
        let responder_spi = Spi(r.array("IKE header")?);
        let [next_payload, version, exchange_type, flags] = r.array::<4>("IKE header")?;
        let message_id = MessageId(r.u32("IKE header")?);
        let length = r.u32("IKE header")?;
        let major = version >> 4;
        if major != Self::MAJOR_VERSION {
            return Err(DecodeError::InvalidMajorVersion { major });
        }
        Ok(Self {
            initiator_spi,
            responder_spi,
            next_payload: next_payload.into(),
            minor_version: version & 0x0f,
            exchange_type: exchange_type.into(),
            flags: Flags::from_bits(flags),
            message_id,
            length,
        })
    }
}

/// A whole IKE message: header fields and the top-level payload chain.
///
/// The header's Next Payload and Length are not stored: they follow from `payloads` when
/// encoding, and are checked against the data when decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// IKE SA Initiator's SPI.
    pub initiator_spi: Spi,
    /// IKE SA Responder's SPI (zero in the first IKE_SA_INIT request).
    pub responder_spi: Spi,
    /// Exchange Type.
    pub exchange_type: ExchangeType,
    /// Flags.
    pub flags: Flags,
    /// Message ID.
    pub message_id: MessageId,
    /// The payloads; an SK or SKF payload, if any, is last.
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Decodes one IKE message (a UDP datagram without any non-ESP marker).
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        if data.len() > MAX_MESSAGE_LEN {
            return Err(DecodeError::MessageTooLarge {
                length: data.len(),
                limit: MAX_MESSAGE_LEN,
            });
        }
        let header = Header::peek(data)?;
        let header_length = usize::try_from(header.length).unwrap_or(usize::MAX);
        if header_length > MAX_MESSAGE_LEN {
            return Err(DecodeError::MessageTooLarge {
                length: header_length,
                limit: MAX_MESSAGE_LEN,
            });
        }
        if header_length != data.len() {
            return Err(DecodeError::HeaderLengthMismatch {
                header_length: header.length,
                datagram_length: data.len(),
            });
        }
        let payloads =
            decode::decode_chain(header.next_payload, &data[Header::LEN..], Header::LEN, true)?;
        Ok(Self {
            initiator_spi: header.initiator_spi,
            responder_spi: header.responder_spi,
            exchange_type: header.exchange_type,
            flags: header.flags,
            message_id: header.message_id,
            payloads,
        })
    }

    /// Encodes the message into a new buffer.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(256);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the encoded message to `out`. On error `out` is left as it was.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let result = self.encode_unchecked(out, start);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_unchecked(&self, out: &mut Vec<u8>, start: usize) -> Result<(), EncodeError> {
        let first = self
            .payloads
            .first()
            .map_or(0, |p| p.payload_type().value());
        out.extend_from_slice(&self.initiator_spi.0);
        out.extend_from_slice(&self.responder_spi.0);
        out.extend_from_slice(&[
            first,
            Header::MAJOR_VERSION << 4,
            self.exchange_type.value(),
            self.flags.bits(),
        ]);
        out.extend_from_slice(&self.message_id.0.to_be_bytes());
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        encode::encode_chain(&self.payloads, out, true)?;
        let len = out.len() - start;
        if len > MAX_MESSAGE_LEN {
            return Err(EncodeError::TooLong {
                what: "message length",
                length: len,
                limit: MAX_MESSAGE_LEN,
            });
        }
        // len <= MAX_MESSAGE_LEN, so it fits.
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// The header this message encodes to. It encodes the message to learn the length, so
    /// use [`Header::peek`] on the output of [`Message::encode`] when the bytes are needed too.
    pub fn header(&self) -> Result<Header, EncodeError> {
        let len = self.encode()?.len();
        Ok(Header {
            initiator_spi: self.initiator_spi,
            responder_spi: self.responder_spi,
            next_payload: self
                .payloads
                .first()
                .map_or(PayloadType::NoNextPayload, Payload::payload_type),
            minor_version: 0,
            exchange_type: self.exchange_type,
            flags: self.flags,
            message_id: self.message_id,
            length: u32::try_from(len).unwrap_or(u32::MAX),
        })
    }
}

/// Decodes a payload chain that starts with type `first`: the decrypted content of an SK
/// payload (or of reassembled SKF fragments), whose first type is the SK header's Next Payload.
/// The chain must end exactly at the end of `bytes`, and may not contain SK or SKF. Error
/// offsets are relative to `bytes`.
pub fn decode_payload_chain(first: PayloadType, bytes: &[u8]) -> Result<Vec<Payload>, DecodeError> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(DecodeError::MessageTooLarge {
            length: bytes.len(),
            limit: MAX_MESSAGE_LEN,
        });
    }
    decode::decode_chain(first, bytes, 0, false)
}

/// Encodes a payload chain for encryption into an SK payload, whose inner Next Payload is then
/// the type of `payloads[0]` (or [`PayloadType::NoNextPayload`] for an empty chain). SK and SKF
/// are refused.
pub fn encode_payload_chain(payloads: &[Payload]) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode::encode_chain(payloads, &mut out, false)?;
    check_len(out.len())?;
    Ok(out)
}

fn check_len(len: usize) -> Result<(), EncodeError> {
    wire::check_cap(len, MAX_MESSAGE_LEN, "payload chain length")
}
