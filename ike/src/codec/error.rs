//! Decode and encode errors.
//!
//! Errors carry only types, counts and byte offsets (from the start of the buffer handed to the
//! decoder), never payload bytes, so they can be logged as they are. [`DecodeError::kind`] gives
//! a stable label per variant for counters.

/// Why a datagram or payload chain was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends inside a fixed-size field or declared structure.
    #[error("truncated {what} at offset {offset}: {needed} bytes needed, {available} available")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// The datagram is larger than [`MAX_MESSAGE_LEN`](super::MAX_MESSAGE_LEN).
    #[error("message of {length} bytes exceeds the cap of {limit}")]
    MessageTooLarge {
        /// The datagram length (or the header's length field, whichever is larger).
        length: usize,
        /// The cap.
        limit: usize,
    },
    /// The header's major version is not 2 (answer INVALID_MAJOR_VERSION).
    #[error("unsupported IKE major version {major}")]
    InvalidMajorVersion {
        /// The major version received.
        major: u8,
    },
    /// The header's Length field differs from the datagram length.
    #[error("header length {header_length} differs from the datagram length {datagram_length}")]
    HeaderLengthMismatch {
        /// The Length field.
        header_length: u32,
        /// The bytes received.
        datagram_length: usize,
    },
    /// A payload's Payload Length is below the minimum for its type.
    #[error(
        "payload type {payload_type} at offset {offset}: length {length} below the minimum {minimum}"
    )]
    PayloadTooShort {
        /// The payload type.
        payload_type: u8,
        /// Offset of its generic header.
        offset: usize,
        /// Its Payload Length field.
        length: usize,
        /// The minimum for the type (generic header included).
        minimum: usize,
    },
    /// A payload's Payload Length runs past the end of the data.
    #[error(
        "payload type {payload_type} at offset {offset}: length {length} exceeds the {available} bytes left"
    )]
    PayloadOverrun {
        /// The payload type.
        payload_type: u8,
        /// Offset of its generic header.
        offset: usize,
        /// Its Payload Length field.
        length: usize,
        /// Bytes left from its generic header on.
        available: usize,
    },
    /// An unknown payload type with the critical bit set (answer UNSUPPORTED_CRITICAL_PAYLOAD
    /// with this type as notification data).
    #[error("unsupported critical payload type {payload_type} at offset {offset}")]
    UnsupportedCriticalPayload {
        /// The payload type.
        payload_type: u8,
        /// Offset of its generic header.
        offset: usize,
    },
    /// A cap on the number of structures was exceeded (see the `MAX_*` constants).
    #[error("more than {limit} {what}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The cap.
        limit: usize,
    },
    /// A Nonce payload's data is not 16..=256 bytes long.
    #[error("nonce of {length} bytes at offset {offset}, must be 16..=256")]
    NonceLength {
        /// Offset of the payload's generic header.
        offset: usize,
        /// The nonce length.
        length: usize,
    },
    /// A substructure (proposal, transform, attribute, traffic selector) has a length that is
    /// too small, too large for its container, or wrong for its type.
    #[error("{what} at offset {offset}: invalid length {length}")]
    BadLength {
        /// The substructure.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// Its length field.
        length: usize,
    },
    /// A proposal or transform has a "last substructure" value that is not allowed there.
    #[error("{what} at offset {offset}: invalid last-substructure value {value}")]
    BadLastSubstructure {
        /// The substructure.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// The value received.
        value: u8,
    },
    /// A declared count (transforms, selectors, SPIs) disagrees with the bytes present.
    #[error("{what} at offset {offset}: {declared} declared, {found} present")]
    CountMismatch {
        /// What was counted.
        what: &'static str,
        /// Offset of the structure holding the count.
        offset: usize,
        /// The count field.
        declared: usize,
        /// What the bytes held.
        found: usize,
    },
    /// An SPI Size not allowed for the protocol (Delete payloads).
    #[error("{what} at offset {offset}: SPI size {size} invalid for protocol {protocol}")]
    InvalidSpiSize {
        /// The structure.
        what: &'static str,
        /// Offset of the payload's generic header.
        offset: usize,
        /// The Protocol ID.
        protocol: u8,
        /// The SPI Size.
        size: u8,
    },
    /// Bytes left after the payload whose Next Payload is zero.
    #[error("{count} bytes after the last payload, at offset {offset}")]
    TrailingData {
        /// Where they start.
        offset: usize,
        /// How many.
        count: usize,
    },
    /// Data after an SK or SKF payload, which must be the last payload.
    #[error("data after the encrypted payload at offset {offset}")]
    EncryptedNotLast {
        /// Offset of the encrypted payload's generic header.
        offset: usize,
    },
    /// An SK or SKF payload inside a decrypted payload chain.
    #[error("encrypted payload nested in an encrypted payload chain at offset {offset}")]
    NestedEncrypted {
        /// Offset of its generic header.
        offset: usize,
    },
    /// An SKF payload whose Fragment Number is 0 or above Total Fragments.
    #[error("encrypted fragment {number} of {total} at offset {offset}")]
    InvalidFragmentNumber {
        /// Offset of the payload's generic header.
        offset: usize,
        /// Fragment Number.
        number: u16,
        /// Total Fragments.
        total: u16,
    },
}

impl DecodeError {
    /// A stable, low-cardinality label for counters.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Truncated { .. } => "truncated",
            Self::MessageTooLarge { .. } => "message_too_large",
            Self::InvalidMajorVersion { .. } => "invalid_major_version",
            Self::HeaderLengthMismatch { .. } => "header_length_mismatch",
            Self::PayloadTooShort { .. } => "payload_too_short",
            Self::PayloadOverrun { .. } => "payload_overrun",
            Self::UnsupportedCriticalPayload { .. } => "unsupported_critical_payload",
            Self::TooMany { .. } => "too_many",
            Self::NonceLength { .. } => "nonce_length",
            Self::BadLength { .. } => "bad_length",
            Self::BadLastSubstructure { .. } => "bad_last_substructure",
            Self::CountMismatch { .. } => "count_mismatch",
            Self::InvalidSpiSize { .. } => "invalid_spi_size",
            Self::TrailingData { .. } => "trailing_data",
            Self::EncryptedNotLast { .. } => "encrypted_not_last",
            Self::NestedEncrypted { .. } => "nested_encrypted",
            Self::InvalidFragmentNumber { .. } => "invalid_fragment_number",
        }
    }
}

/// Why a message or payload chain could not be encoded. Encoding refuses exactly what decoding
/// would reject, so whatever encodes also decodes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A field or structure does not fit its length or count field.
    #[error("{what} of {length} does not fit (at most {limit})")]
    TooLong {
        /// The field.
        what: &'static str,
        /// Its size or count.
        length: usize,
        /// The largest allowed.
        limit: usize,
    },
    /// A structure has fewer elements or bytes than the wire format requires.
    #[error("{what} of {length} is below the minimum {minimum}")]
    TooShort {
        /// The field.
        what: &'static str,
        /// Its size or count.
        length: usize,
        /// The smallest allowed.
        minimum: usize,
    },
    /// A value that the wire field cannot carry or that would decode as something else
    /// (an `Unknown` payload with a known or zero type, a 16-bit attribute type, ...).
    #[error("invalid {what} value {value}")]
    InvalidValue {
        /// The field.
        what: &'static str,
        /// The value.
        value: u32,
    },
    /// An SK or SKF payload that is not the last one, or that is inside an inner chain.
    #[error("encrypted payload not allowed at position {index}")]
    MisplacedEncrypted {
        /// Its index in the payload list.
        index: usize,
    },
}
