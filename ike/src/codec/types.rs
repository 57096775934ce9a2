//! Numeric registries of IKEv2 (IANA "IKEv2 Parameters") as Rust types.
//!
//! Every enum keeps values it has no name for in an `Unknown` variant, so decoding never fails
//! just because a peer uses a newer code point. Equality and hashing go through the wire value:
//! `ExchangeType::Unknown(34) == ExchangeType::IkeSaInit`.

use core::fmt;

/// Defines a wire enum with named values, an `Unknown` catch-all, conversions and
/// value-based equality.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident($repr:ty) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value without a name here, kept as received.
            Unknown($repr),
        }

        impl $name {
            /// The value on the wire.
            #[must_use]
            pub const fn value(self) -> $repr {
                match self {
                    $( Self::$variant => $value, )*
                    Self::Unknown(v) => v,
                }
            }

            /// The variant for a wire value; values without a name become `Unknown`.
            #[must_use]
            pub const fn from_value(v: $repr) -> Self {
                match v {
                    $( $value => Self::$variant, )*
                    other => Self::Unknown(other),
                }
            }

            /// Whether this value has a name in this codec.
            #[must_use]
            pub const fn is_known(self) -> bool {
                !matches!(Self::from_value(self.value()), Self::Unknown(_))
            }
        }

        impl From<$repr> for $name {
            fn from(v: $repr) -> Self {
                Self::from_value(v)
            }
        }

        impl From<$name> for $repr {
            fn from(v: $name) -> Self {
                v.value()
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.value() == other.value()
            }
        }

        impl Eq for $name {}

        impl core::hash::Hash for $name {
            fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
                self.value().hash(state);
            }
        }
    };
}

wire_enum! {
    /// Exchange Type (RFC 7296 section 3.1).
    ExchangeType(u8) {
        /// IKE_SA_INIT (34).
        IkeSaInit = 34,
        /// IKE_AUTH (35).
        IkeAuth = 35,
        /// CREATE_CHILD_SA (36).
        CreateChildSa = 36,
        /// INFORMATIONAL (37).
        Informational = 37,
    }
}

wire_enum! {
    /// Payload Type (RFC 7296 section 3.2; SKF from RFC 7383).
    PayloadType(u8) {
        /// No Next Payload (0): ends a payload chain.
        NoNextPayload = 0,
        /// Security Association (SA).
        SecurityAssociation = 33,
        /// Key Exchange (KE).
        KeyExchange = 34,
        /// Identification - Initiator (IDi).
        IdInitiator = 35,
        /// Identification - Responder (IDr).
        IdResponder = 36,
        /// Certificate (CERT).
        Certificate = 37,
        /// Certificate Request (CERTREQ).
        CertificateRequest = 38,
        /// Authentication (AUTH).
        Authentication = 39,
        /// Nonce (Ni, Nr).
        Nonce = 40,
        /// Notify (N).
        Notify = 41,
        /// Delete (D).
        Delete = 42,
        /// Vendor ID (V).
        VendorId = 43,
        /// Traffic Selector - Initiator (TSi).
        TsInitiator = 44,
        /// Traffic Selector - Responder (TSr).
        TsResponder = 45,
        /// Encrypted and Authenticated (SK).
        Encrypted = 46,
        /// Configuration (CP).
        Configuration = 47,
        /// Extensible Authentication (EAP).
        Eap = 48,
        /// Encrypted and Authenticated Fragment (SKF, RFC 7383).
        EncryptedFragment = 53,
    }
}

wire_enum! {
    /// Notify Message Type (RFC 7296 section 3.10.1, plus RFC 7383 and RFC 7427 types).
    NotifyType(u16) {
        /// UNSUPPORTED_CRITICAL_PAYLOAD (1).
        UnsupportedCriticalPayload = 1,
        /// INVALID_IKE_SPI (4).
        InvalidIkeSpi = 4,
        /// INVALID_MAJOR_VERSION (5).
        InvalidMajorVersion = 5,
        /// INVALID_SYNTAX (7).
        InvalidSyntax = 7,
        /// INVALID_MESSAGE_ID (9).
        InvalidMessageId = 9,
        /// INVALID_SPI (11).
        InvalidSpi = 11,
        /// NO_PROPOSAL_CHOSEN (14).
        NoProposalChosen = 14,
        /// INVALID_KE_PAYLOAD (17).
        InvalidKePayload = 17,
        /// AUTHENTICATION_FAILED (24).
        AuthenticationFailed = 24,
        /// SINGLE_PAIR_REQUIRED (34).
        SinglePairRequired = 34,
        /// NO_ADDITIONAL_SAS (35).
        NoAdditionalSas = 35,
        /// INTERNAL_ADDRESS_FAILURE (36).
        InternalAddressFailure = 36,
        /// FAILED_CP_REQUIRED (37).
        FailedCpRequired = 37,
        /// TS_UNACCEPTABLE (38).
        TsUnacceptable = 38,
        /// INVALID_SELECTORS (39).
        InvalidSelectors = 39,
        /// TEMPORARY_FAILURE (43).
        TemporaryFailure = 43,
        /// CHILD_SA_NOT_FOUND (44).
        ChildSaNotFound = 44,
        /// INITIAL_CONTACT (16384).
        InitialContact = 16384,
        /// SET_WINDOW_SIZE (16385).
        SetWindowSize = 16385,
        /// ADDITIONAL_TS_POSSIBLE (16386).
        AdditionalTsPossible = 16386,
        /// IPCOMP_SUPPORTED (16387).
        IpcompSupported = 16387,
        /// NAT_DETECTION_SOURCE_IP (16388).
        NatDetectionSourceIp = 16388,
        /// NAT_DETECTION_DESTINATION_IP (16389).
        NatDetectionDestinationIp = 16389,
        /// COOKIE (16390).
        Cookie = 16390,
        /// USE_TRANSPORT_MODE (16391).
        UseTransportMode = 16391,
        /// HTTP_CERT_LOOKUP_SUPPORTED (16392).
        HttpCertLookupSupported = 16392,
        /// REKEY_SA (16393).
        RekeySa = 16393,
        /// ESP_TFC_PADDING_NOT_SUPPORTED (16394).
        EspTfcPaddingNotSupported = 16394,
        /// NON_FIRST_FRAGMENTS_ALSO (16395).
        NonFirstFragmentsAlso = 16395,
        /// IKEV2_FRAGMENTATION_SUPPORTED (16430, RFC 7383).
        Ikev2FragmentationSupported = 16430,
        /// SIGNATURE_HASH_ALGORITHMS (16431, RFC 7427).
        SignatureHashAlgorithms = 16431,
    }
}

impl NotifyType {
    /// Error types are below 16384 (RFC 7296 section 3.10.1); the rest are status types.
    #[must_use]
    pub const fn is_error(self) -> bool {
        self.value() < 16384
    }
}

wire_enum! {
    /// Transform Type (RFC 7296 section 3.3.2).
    TransformType(u8) {
        /// Encryption Algorithm (ENCR).
        Encryption = 1,
        /// Pseudorandom Function (PRF).
        Prf = 2,
        /// Integrity Algorithm (INTEG).
        Integrity = 3,
        /// Diffie-Hellman group (D-H, "Key Exchange Method" since RFC 9370).
        DhGroup = 4,
        /// Extended Sequence Numbers (ESN).
        Esn = 5,
    }
}

wire_enum! {
    /// Transform IDs for Transform Type 1 (ENCR).
    EncrId(u16) {
        /// ENCR_3DES (3).
        TripleDes = 3,
        /// ENCR_NULL (11).
        Null = 11,
        /// ENCR_AES_CBC (12); needs a key length attribute.
        AesCbc = 12,
        /// ENCR_AES_CTR (13).
        AesCtr = 13,
        /// ENCR_AES_CCM_8 (14).
        AesCcm8 = 14,
        /// ENCR_AES_CCM_12 (15).
        AesCcm12 = 15,
        /// ENCR_AES_CCM_16 (16).
        AesCcm16 = 16,
        /// ENCR_AES_GCM_8 (18).
        AesGcm8 = 18,
        /// ENCR_AES_GCM_12 (19).
        AesGcm12 = 19,
        /// ENCR_AES_GCM_16 (20); needs a key length attribute.
        AesGcm16 = 20,
        /// ENCR_NULL_AUTH_AES_GMAC (21).
        NullAuthAesGmac = 21,
        /// ENCR_CHACHA20_POLY1305 (28).
        Chacha20Poly1305 = 28,
    }
}

wire_enum! {
    /// Transform IDs for Transform Type 2 (PRF).
    PrfId(u16) {
        /// PRF_HMAC_MD5 (1).
        HmacMd5 = 1,
        /// PRF_HMAC_SHA1 (2).
        HmacSha1 = 2,
        /// PRF_AES128_XCBC (4).
        Aes128Xcbc = 4,
        /// PRF_HMAC_SHA2_256 (5).
        HmacSha2_256 = 5,
        /// PRF_HMAC_SHA2_384 (6).
        HmacSha2_384 = 6,
        /// PRF_HMAC_SHA2_512 (7).
        HmacSha2_512 = 7,
        /// PRF_AES128_CMAC (8).
        Aes128Cmac = 8,
    }
}

wire_enum! {
    /// Transform IDs for Transform Type 3 (INTEG).
    IntegId(u16) {
        /// NONE (0), used with AEAD ciphers.
        None = 0,
        /// AUTH_HMAC_MD5_96 (1).
        HmacMd5_96 = 1,
        /// AUTH_HMAC_SHA1_96 (2).
        HmacSha1_96 = 2,
        /// AUTH_AES_XCBC_96 (5).
        AesXcbc96 = 5,
        /// AUTH_AES_CMAC_96 (8).
        AesCmac96 = 8,
        /// AUTH_HMAC_SHA2_256_128 (12).
        HmacSha2_256_128 = 12,
        /// AUTH_HMAC_SHA2_384_192 (13).
        HmacSha2_384_192 = 13,
        /// AUTH_HMAC_SHA2_512_256 (14).
        HmacSha2_512_256 = 14,
    }
}

wire_enum! {
    /// Transform IDs for Transform Type 4 (Diffie-Hellman groups).
    DhGroup(u16) {
        /// NONE (0).
        None = 0,
        /// 1024-bit MODP group (2).
        Modp1024 = 2,
        /// 1536-bit MODP group (5).
        Modp1536 = 5,
        /// 2048-bit MODP group (14).
        Modp2048 = 14,
        /// 3072-bit MODP group (15).
        Modp3072 = 15,
        /// 4096-bit MODP group (16).
        Modp4096 = 16,
        /// 6144-bit MODP group (17).
        Modp6144 = 17,
        /// 8192-bit MODP group (18).
        Modp8192 = 18,
        /// 256-bit random ECP group (19).
        Ecp256 = 19,
        /// 384-bit random ECP group (20).
        Ecp384 = 20,
        /// 521-bit random ECP group (21).
        Ecp521 = 21,
        /// 1024-bit MODP group with 160-bit prime order subgroup (22).
        Modp1024S160 = 22,
        /// 2048-bit MODP group with 224-bit prime order subgroup (23).
        Modp2048S224 = 23,
        /// 2048-bit MODP group with 256-bit prime order subgroup (24).
        Modp2048S256 = 24,
        /// Curve25519 (31).
        Curve25519 = 31,
        /// Curve448 (32).
        Curve448 = 32,
    }
}

wire_enum! {
    /// Transform IDs for Transform Type 5 (Extended Sequence Numbers).
    EsnId(u16) {
        /// No Extended Sequence Numbers (0).
        NoEsn = 0,
        /// Extended Sequence Numbers (1).
        Esn = 1,
    }
}

wire_enum! {
    /// ID Type of IDi/IDr (RFC 7296 section 3.5).
    IdType(u8) {
        /// ID_IPV4_ADDR (1).
        Ipv4Addr = 1,
        /// ID_FQDN (2).
        Fqdn = 2,
        /// ID_RFC822_ADDR (3).
        Rfc822Addr = 3,
        /// ID_IPV6_ADDR (5).
        Ipv6Addr = 5,
        /// ID_DER_ASN1_DN (9).
        DerAsn1Dn = 9,
        /// ID_DER_ASN1_GN (10).
        DerAsn1Gn = 10,
        /// ID_KEY_ID (11).
        KeyId = 11,
    }
}

wire_enum! {
    /// Auth Method of the AUTH payload (RFC 7296 section 3.8, RFC 7427).
    AuthMethod(u8) {
        /// RSA Digital Signature (1).
        RsaSig = 1,
        /// Shared Key Message Integrity Code (2).
        SharedKeyMic = 2,
        /// DSS Digital Signature (3).
        DssSig = 3,
        /// ECDSA with SHA-256 on P-256 (9).
        EcdsaSha256P256 = 9,
        /// ECDSA with SHA-384 on P-384 (10).
        EcdsaSha384P384 = 10,
        /// ECDSA with SHA-512 on P-521 (11).
        EcdsaSha512P521 = 11,
        /// Digital Signature (14, RFC 7427).
        DigitalSignature = 14,
    }
}

wire_enum! {
    /// Certificate Encoding of CERT and CERTREQ (RFC 7296 section 3.6).
    CertEncoding(u8) {
        /// PKCS #7 wrapped X.509 certificate (1).
        Pkcs7X509 = 1,
        /// X.509 Certificate - Signature (4).
        X509Signature = 4,
        /// Certificate Revocation List (7).
        Crl = 7,
        /// Raw RSA Key (11).
        RawRsaKey = 11,
        /// Hash and URL of X.509 certificate (12).
        HashUrlX509Cert = 12,
        /// Hash and URL of X.509 bundle (13).
        HashUrlX509Bundle = 13,
        /// Raw Public Key (15, RFC 7670).
        RawPublicKey = 15,
    }
}

wire_enum! {
    /// Traffic Selector Type (RFC 7296 section 3.13.1).
    TsType(u8) {
        /// TS_IPV4_ADDR_RANGE (7).
        Ipv4AddrRange = 7,
        /// TS_IPV6_ADDR_RANGE (8).
        Ipv6AddrRange = 8,
    }
}

wire_enum! {
    /// Security Protocol ID (RFC 7296 section 3.3.1), in proposals, Notify and Delete.
    ProtocolId(u8) {
        /// No protocol (0): Notify payloads that concern no SA.
        None = 0,
        /// IKE (1).
        Ike = 1,
        /// AH (2).
        Ah = 2,
        /// ESP (3).
        Esp = 3,
    }
}

wire_enum! {
    /// CFG Type of the Configuration payload (RFC 7296 section 3.15).
    CfgType(u8) {
        /// CFG_REQUEST (1).
        Request = 1,
        /// CFG_REPLY (2).
        Reply = 2,
        /// CFG_SET (3).
        Set = 3,
        /// CFG_ACK (4).
        Ack = 4,
    }
}

wire_enum! {
    /// Configuration Attribute Type (RFC 7296 section 3.15.1); 15 bits on the wire.
    CfgAttributeType(u16) {
        /// INTERNAL_IP4_ADDRESS (1).
        InternalIp4Address = 1,
        /// INTERNAL_IP4_NETMASK (2).
        InternalIp4Netmask = 2,
        /// INTERNAL_IP4_DNS (3).
        InternalIp4Dns = 3,
        /// INTERNAL_IP4_NBNS (4).
        InternalIp4Nbns = 4,
        /// INTERNAL_IP4_DHCP (6).
        InternalIp4Dhcp = 6,
        /// APPLICATION_VERSION (7).
        ApplicationVersion = 7,
        /// INTERNAL_IP6_ADDRESS (8).
        InternalIp6Address = 8,
        /// INTERNAL_IP6_DNS (10).
        InternalIp6Dns = 10,
        /// INTERNAL_IP6_DHCP (12).
        InternalIp6Dhcp = 12,
        /// INTERNAL_IP4_SUBNET (13).
        InternalIp4Subnet = 13,
        /// SUPPORTED_ATTRIBUTES (14).
        SupportedAttributes = 14,
        /// INTERNAL_IP6_SUBNET (15).
        InternalIp6Subnet = 15,
    }
}

/// An 8-byte IKE SA SPI (RFC 7296 section 3.1). All zeros means "not yet known".
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Spi(pub [u8; 8]);

impl Spi {
    /// The zero SPI a responder's SPI has in the first IKE_SA_INIT request.
    pub const ZERO: Self = Self([0; 8]);

    /// Whether this is the zero SPI.
    #[must_use]
    pub fn is_zero(self) -> bool {
        self == Self::ZERO
    }
}

impl From<u64> for Spi {
    fn from(v: u64) -> Self {
        Self(v.to_be_bytes())
    }
}

impl From<Spi> for u64 {
    fn from(s: Spi) -> Self {
        u64::from_be_bytes(s.0)
    }
}

impl fmt::Debug for Spi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Spi({:016x})", u64::from(*self))
    }
}

impl fmt::Display for Spi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", u64::from(*self))
    }
}

/// The IKE Message ID (RFC 7296 section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MessageId(pub u32);

/// The three defined header flags (RFC 7296 section 3.1). The other five bits are reserved:
/// they are ignored when decoding (not kept) and sent as zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// I (Initiator): set by the original initiator of the IKE SA.
    pub const INITIATOR: u8 = 0x08;
    /// V (Version): the sender can speak a higher major version.
    pub const VERSION: u8 = 0x10;
    /// R (Response): this message is a response.
    pub const RESPONSE: u8 = 0x20;
    const DEFINED: u8 = Self::INITIATOR | Self::VERSION | Self::RESPONSE;

    /// Flags with I and R as given and V clear.
    #[must_use]
    pub const fn new(initiator: bool, response: bool) -> Self {
        let mut bits = 0;
        if initiator {
            bits |= Self::INITIATOR;
        }
        if response {
            bits |= Self::RESPONSE;
        }
        Self(bits)
    }

    /// Flags from a wire byte; reserved bits are dropped.
    #[must_use]
    pub const fn from_bits(bits: u8) -> Self {
        Self(bits & Self::DEFINED)
    }

    /// The wire byte.
    #[must_use]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The I flag.
    #[must_use]
    pub const fn initiator(self) -> bool {
        self.0 & Self::INITIATOR != 0
    }

    /// The R flag.
    #[must_use]
    pub const fn response(self) -> bool {
        self.0 & Self::RESPONSE != 0
    }

    /// The V flag.
    #[must_use]
    pub const fn higher_version(self) -> bool {
        self.0 & Self::VERSION != 0
    }
}
