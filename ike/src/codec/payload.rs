//! The payloads of RFC 7296 section 3 (and SKF of RFC 7383) as types; `decode` and `encode`
//! hold the wire logic.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::types::{
    AuthMethod, CertEncoding, CfgAttributeType, CfgType, DhGroup, EncrId, EsnId, IdType, IntegId,
    NotifyType, PayloadType, PrfId, ProtocolId, TransformType, TsType,
};

/// Length of the generic payload header (RFC 7296 section 3.2).
pub const GENERIC_HEADER_LEN: usize = 4;
pub(super) const CRITICAL: u8 = 0x80;

/// One payload of a message or of a decrypted payload chain.
///
/// The critical bit is not kept: RFC 7296 says it is zero for all its payload types and is
/// ignored on receipt for understood types, so known payloads are encoded with it clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Security Association (33).
    SecurityAssociation(SecurityAssociation),
    /// Key Exchange (34).
    KeyExchange(KeyExchange),
    /// Identification - Initiator (35).
    IdInitiator(Identification),
    /// Identification - Responder (36).
    IdResponder(Identification),
    /// Certificate (37).
    Certificate(Certificate),
    /// Certificate Request (38); `data` is the Certification Authority field.
    CertificateRequest(Certificate),
    /// Authentication (39).
    Authentication(Authentication),
    /// Nonce (40), 16..=256 bytes.
    Nonce(Vec<u8>),
    /// Notify (41).
    Notify(Notify),
    /// Delete (42).
    Delete(Delete),
    /// Vendor ID (43).
    VendorId(Vec<u8>),
    /// Traffic Selector - Initiator (44).
    TsInitiator(TrafficSelectors),
    /// Traffic Selector - Responder (45).
    TsResponder(TrafficSelectors),
    /// Encrypted and Authenticated (46), kept encrypted. Always the last payload.
    Encrypted(Encrypted),
    /// Configuration (47).
    Configuration(Configuration),
    /// Extensible Authentication (48): the EAP message, opaque.
    Eap(Vec<u8>),
    /// Encrypted and Authenticated Fragment (53, RFC 7383), kept encrypted. Always the last
    /// payload.
    EncryptedFragment(EncryptedFragment),
    /// A payload type this codec does not know, received without the critical bit.
    Unknown {
        /// Its payload type (never 0 nor a type this codec knows).
        payload_type: u8,
        /// Its body.
        data: Vec<u8>,
    },
}

/// Security Association payload (RFC 7296 section 3.3): at least one proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityAssociation {
    /// The proposals, in order.
    pub proposals: Vec<Proposal>,
}

/// A Proposal substructure (RFC 7296 section 3.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Proposal Num.
    pub number: u8,
    /// Protocol ID.
    pub protocol: ProtocolId,
    /// SPI (empty in an initial IKE_SA_INIT, 4 bytes for ESP/AH, 8 for IKE rekeying).
    pub spi: Vec<u8>,
    /// The transforms, in order.
    pub transforms: Vec<Transform>,
}

/// A Transform substructure (RFC 7296 section 3.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    /// Transform Type and Transform ID.
    pub id: TransformId,
    /// Transform attributes (RFC 7296 section 3.3.5).
    pub attributes: Vec<TransformAttribute>,
}

impl Transform {
    /// A transform without attributes.
    #[must_use]
    pub fn new(id: TransformId) -> Self {
        Self {
            id,
            attributes: Vec::new(),
        }
    }

    /// A transform with a Key Length attribute (in bits), as AES-CBC and AES-GCM need.
    #[must_use]
    pub fn with_key_length(id: TransformId, bits: u16) -> Self {
        Self {
            id,
            attributes: vec![TransformAttribute::KeyLength(bits)],
        }
    }

    /// The Key Length attribute, if present.
    #[must_use]
    pub fn key_length(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a {
            TransformAttribute::KeyLength(bits) => Some(*bits),
            _ => None,
        })
    }
}

/// Transform Type and Transform ID together, typed per transform type.
#[derive(Debug, Clone, Copy)]
pub enum TransformId {
    /// Type 1.
    Encr(EncrId),
    /// Type 2.
    Prf(PrfId),
    /// Type 3.
    Integ(IntegId),
    /// Type 4.
    Dh(DhGroup),
    /// Type 5.
    Esn(EsnId),
    /// A transform type this codec does not know (for example RFC 9370's additional key
    /// exchanges, 6..=12).
    Other {
        /// Transform Type.
        transform_type: u8,
        /// Transform ID.
        id: u16,
    },
}

impl TransformId {
    /// From the wire fields.
    #[must_use]
    pub fn from_wire(transform_type: u8, id: u16) -> Self {
        match TransformType::from_value(transform_type) {
            TransformType::Encryption => Self::Encr(id.into()),
            TransformType::Prf => Self::Prf(id.into()),
            TransformType::Integrity => Self::Integ(id.into()),
            TransformType::DhGroup => Self::Dh(id.into()),
            TransformType::Esn => Self::Esn(id.into()),
            TransformType::Unknown(_) => Self::Other { transform_type, id },
        }
    }

    /// The Transform Type.
    #[must_use]
    pub fn transform_type(self) -> TransformType {
        self.wire().0.into()
    }

    /// The wire fields (Transform Type, Transform ID).
    #[must_use]
    pub fn wire(self) -> (u8, u16) {
        match self {
            Self::Encr(v) => (1, v.value()),
            Self::Prf(v) => (2, v.value()),
            Self::Integ(v) => (3, v.value()),
            Self::Dh(v) => (4, v.value()),
            Self::Esn(v) => (5, v.value()),
            Self::Other { transform_type, id } => (transform_type, id),
        }
    }
}

impl PartialEq for TransformId {
    fn eq(&self, other: &Self) -> bool {
        self.wire() == other.wire()
    }
}

impl Eq for TransformId {}

/// A transform attribute (RFC 7296 section 3.3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransformAttribute {
    /// Key Length (type 14, TV format), in bits.
    KeyLength(u16),
    /// Another attribute in TV (type/value) format. `attr_type` is 15 bits and not 14.
    Tv {
        /// Attribute Type.
        attr_type: u16,
        /// Attribute Value.
        value: u16,
    },
    /// An attribute in TLV (type/length/value) format. `attr_type` is 15 bits.
    Tlv {
        /// Attribute Type.
        attr_type: u16,
        /// Attribute Value.
        value: Vec<u8>,
    },
}

pub(super) const ATTR_TV: u16 = 0x8000;
pub(super) const ATTR_KEY_LENGTH: u16 = 14;

/// Key Exchange payload (RFC 7296 section 3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyExchange {
    /// Diffie-Hellman Group Num.
    pub group: DhGroup,
    /// Key Exchange Data.
    pub data: Vec<u8>,
}

/// IDi/IDr payload (RFC 7296 section 3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identification {
    /// ID Type.
    pub id_type: IdType,
    /// Identification Data.
    pub data: Vec<u8>,
}

/// CERT or CERTREQ payload (RFC 7296 sections 3.6 and 3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// Cert Encoding.
    pub encoding: CertEncoding,
    /// Certificate Data (CERT) or Certification Authority (CERTREQ).
    pub data: Vec<u8>,
}

/// AUTH payload (RFC 7296 section 3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    /// Auth Method.
    pub method: AuthMethod,
    /// Authentication Data.
    pub data: Vec<u8>,
}

/// Notify payload (RFC 7296 section 3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// Protocol ID ([`ProtocolId::None`] when no SA is concerned).
    pub protocol: ProtocolId,
    /// SPI (empty when the notification concerns the IKE SA or no SA).
    pub spi: Vec<u8>,
    /// Notify Message Type.
    pub notify_type: NotifyType,
    /// Notification Data.
    pub data: Vec<u8>,
}

impl Notify {
    /// A notification without SPI.
    #[must_use]
    pub fn new(notify_type: NotifyType, data: Vec<u8>) -> Self {
        Self {
            protocol: ProtocolId::None,
            spi: Vec::new(),
            notify_type,
            data,
        }
    }
}

/// Delete payload (RFC 7296 section 3.11). For IKE the SPI Size and count are zero; for AH and
/// ESP the SPI Size is four; other protocols are rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    /// Protocol ID: IKE, AH or ESP.
    pub protocol: ProtocolId,
    /// The inbound SPIs of the CHILD SAs to delete (empty for IKE).
    pub spis: Vec<u32>,
}

/// TSi/TSr payload (RFC 7296 section 3.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficSelectors {
    /// The selectors, in order.
    pub selectors: Vec<TrafficSelector>,
}

/// A Traffic Selector (RFC 7296 section 3.13.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficSelector {
    /// IP Protocol ID (0 = any).
    pub ip_protocol: u8,
    /// Start Port.
    pub start_port: u16,
    /// End Port.
    pub end_port: u16,
    /// The TS Type and its address range.
    pub range: AddressRange,
}

impl TrafficSelector {
    /// The TS Type.
    #[must_use]
    pub fn ts_type(&self) -> TsType {
        match &self.range {
            AddressRange::V4 { .. } => TsType::Ipv4AddrRange,
            AddressRange::V6 { .. } => TsType::Ipv6AddrRange,
            AddressRange::Other { ts_type, .. } => TsType::from_value(*ts_type),
        }
    }
}

/// The address part of a traffic selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressRange {
    /// TS_IPV4_ADDR_RANGE.
    V4 {
        /// Starting Address.
        start: Ipv4Addr,
        /// Ending Address.
        end: Ipv4Addr,
    },
    /// TS_IPV6_ADDR_RANGE.
    V6 {
        /// Starting Address.
        start: Ipv6Addr,
        /// Ending Address.
        end: Ipv6Addr,
    },
    /// Another TS Type (not 7 or 8), kept opaque: everything after the ports.
    Other {
        /// TS Type.
        ts_type: u8,
        /// The bytes after End Port.
        data: Vec<u8>,
    },
}

/// SK payload (RFC 7296 section 3.14), still encrypted.
///
/// SK is always last, so `data` is the last `data.len()` bytes of the datagram, and everything
/// before it (IKE header and SK generic header) is the associated data of an AEAD cipher
/// (RFC 5282) or the start of the integrity-protected octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted {
    /// The type of the first payload inside (the SK header's Next Payload).
    pub inner_next: PayloadType,
    /// IV, ciphertext, padding and ICV, as received.
    pub data: Vec<u8>,
}

/// SKF payload (RFC 7383 section 2.5), still encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedFragment {
    /// The type of the first inner payload in fragment 1, zero in the others.
    pub inner_next: PayloadType,
    /// Fragment Number, 1..=`total_fragments`.
    pub fragment_number: u16,
    /// Total Fragments.
    pub total_fragments: u16,
    /// IV, ciphertext, padding and ICV, as received.
    pub data: Vec<u8>,
}

/// Configuration payload (RFC 7296 section 3.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configuration {
    /// CFG Type.
    pub cfg_type: CfgType,
    /// Configuration attributes, in order.
    pub attributes: Vec<CfgAttribute>,
}

/// A configuration attribute (RFC 7296 section 3.15.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfgAttribute {
    /// Attribute Type (15 bits; the reserved bit is dropped on decode).
    pub attr_type: CfgAttributeType,
    /// Value (may be empty, as in a CFG_REQUEST).
    pub value: Vec<u8>,
}

impl Payload {
    /// Its Payload Type.
    #[must_use]
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Self::SecurityAssociation(_) => PayloadType::SecurityAssociation,
            Self::KeyExchange(_) => PayloadType::KeyExchange,
            Self::IdInitiator(_) => PayloadType::IdInitiator,
            Self::IdResponder(_) => PayloadType::IdResponder,
            Self::Certificate(_) => PayloadType::Certificate,
            Self::CertificateRequest(_) => PayloadType::CertificateRequest,
            Self::Authentication(_) => PayloadType::Authentication,
            Self::Nonce(_) => PayloadType::Nonce,
            Self::Notify(_) => PayloadType::Notify,
            Self::Delete(_) => PayloadType::Delete,
            Self::VendorId(_) => PayloadType::VendorId,
            Self::TsInitiator(_) => PayloadType::TsInitiator,
            Self::TsResponder(_) => PayloadType::TsResponder,
            Self::Encrypted(_) => PayloadType::Encrypted,
            Self::Configuration(_) => PayloadType::Configuration,
            Self::Eap(_) => PayloadType::Eap,
            Self::EncryptedFragment(_) => PayloadType::EncryptedFragment,
            Self::Unknown { payload_type, .. } => PayloadType::Unknown(*payload_type),
        }
    }

    pub(super) fn is_encrypted(&self) -> bool {
        matches!(self, Self::Encrypted(_) | Self::EncryptedFragment(_))
    }
}

// Wire constants shared by `decode` and `encode`.

pub(super) const PROPOSAL_HEADER_LEN: usize = 8;
pub(super) const TRANSFORM_HEADER_LEN: usize = 8;
pub(super) const LAST: u8 = 0;
pub(super) const MORE_PROPOSALS: u8 = 2;
pub(super) const MORE_TRANSFORMS: u8 = 3;
pub(super) const TS_HEADER_LEN: usize = 8;
pub(super) const TS_V4_LEN: usize = TS_HEADER_LEN + 8;
pub(super) const TS_V6_LEN: usize = TS_HEADER_LEN + 32;
pub(super) const CFG_ATTR_RESERVED: u16 = 0x8000;

/// The only SPI Size a Delete payload may carry for a protocol.
pub(super) fn delete_spi_size(protocol: ProtocolId) -> Option<u8> {
    match protocol {
        ProtocolId::Ike => Some(0),
        ProtocolId::Ah | ProtocolId::Esp => Some(4),
        _ => None,
    }
}
