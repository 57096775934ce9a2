//! Shared fixtures: real captured messages, hand-built messages, one payload of every kind.
#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};

use vpn_ike::codec::*;

/// Hex to bytes; whitespace is ignored. Panics on bad hex (fixtures only).
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex length");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// A real IKE_SA_INIT request (300 bytes): the first IKE packet of the Wireshark sample capture
/// "Dissection of encrypted (and UDP-encapsulated) IKEv2 and ESP messages"
/// (wiki.wireshark.org/SampleCaptures), as quoted byte for byte in the test suite of
/// CybercentreCanada/sawp (sawp-ike/tests/ikev2_parse.rs). SA (AES-GCM-16/256, PRF-HMAC-SHA2-256,
/// ECP-256), KE, Ni, four Vendor IDs, and Notify 16430, 16406 (REDIRECT_SUPPORTED), 16431.
pub const WIRESHARK_SA_INIT: &str = "
    89922c915f35570e000000000000000021202208000000000000012c22000028
    00000024010100030300000c01000014800e0100030000080200000500000008
    040000132800004800130000db253178440ce776a794133cb8b69e5eb0747335
    36570c64d7b630549c899c0712d828b37168500885e051024578afc75c101f73
    b8943cad62d74a30f2be1fca2b00002c09cb538b2c3dbd4d0bb0eec8d318cb80
    1a9b4715b207828d9b5ff1f4ec64ed58863707bcf14ccf052b000014eb4c1b78
    8afd4a9cb7730a68d56c53212b000014c61baca1f1a60cc10800000000000000
    2b0000184048b7d56ebce88525e7de7f00d6c2d3c0000000290000144048b7d5
    6ebce88525e7de7f00d6c2d3290000080000402e290000080000401600000010
    0000402f0001000200030004";

/// A real IKE_SA_INIT request captured on UDP 4500, non-ESP marker (4 zero bytes) included:
/// the `IKEV2_MSG` test vector of rusticata/ipsec-parser (tests/ikev2.rs); the implementation
/// that sent it is not stated there. Four proposals (AES-GCM-16/128 and AES-CTR/128 with
/// HMAC-SHA2-256-128, PRF-HMAC-SHA2-256, groups 28 and 19), KE (group 28), Ni.
pub const IPSEC_PARSER_SA_INIT_WITH_MARKER: &str = "
    00000000bca1937a7c2ff5b9000000000000000021202208000000000000012c
    220000a402000024010100030300000c01000014800e00800300000802000005
    000000080400001c02000024020100030300000c01000014800e008003000008
    0200000500000008040000130200002c030100040300000c0100000d800e0080
    030000080300000c0300000802000005000000080400001c0000002c04010004
    0300000c0100000d800e0080030000080300000c030000080200000500000008
    0400001328000048001c00004d23b8f22c03ae3ab40af9fa76c23c7ba6c56981
    e13c32fbc36954c87a96cbfa34637c6f31b650ce5d8717005ce793c2eeaff1c5
    66280811d942d1b8e80268bb0000002499e2a373cc44ad10fb78dda25206a4a9
    b7558e0d8269799c6800362c46a0bf7b";

/// Hand-built from the RFC 7296 layout (not a capture): IKE_AUTH request, message ID 1,
/// one SK payload (inner Next Payload IDi) of 64 opaque bytes.
pub const HAND_IKE_AUTH_SK: &str = "
    0102030405060708 1112131415161718 2e202308 00000001 00000060
    23000044
    a0a1a2a3a4a5a6a7a8a9aaabacadaeaf b0b1b2b3b4b5b6b7b8b9babbbcbdbebf
    c0c1c2c3c4c5c6c7c8c9cacbcccdcecf d0d1d2d3d4d5d6d7d8d9dadbdcdddedf";

/// Hand-built from the RFC 7383 layout (not a capture): INFORMATIONAL response, message ID 7,
/// one SKF payload, fragment 2 of 3, 20 opaque bytes.
pub const HAND_INFORMATIONAL_SKF: &str = "
    0102030405060708 1112131415161718 35202520 00000007 00000038
    0000001c 00020003
    e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3";

/// Hand-built (not a capture): IKE_SA_INIT response asking for a cookie: N(COOKIE).
pub const HAND_SA_INIT_COOKIE: &str = "
    0102030405060708 0000000000000000 29202220 00000000 00000034
    00000018 00004006 000102030405060708090a0b0c0d0e0f";

/// Hand-built (not a capture): the decrypted SK content of a CREATE_CHILD_SA request that
/// rekeys an ESP SA. First payload: Notify (41).
/// N(REKEY_SA, ESP, SPI 11223344), SA(ESP, SPI aabbccdd, AES-GCM-16/256, no ESN), Ni(32),
/// TSi(10.1.0.0-10.1.255.255), TSr(0.0.0.0-255.255.255.255).
pub const HAND_CHILD_REKEY_INNER: &str = "
    2100000c 03044009 11223344
    28000024 00000020 01030402 aabbccdd 0300000c 01000014 800e0100 00000008 05000000
    2c000024 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
    2d000018 01000000 07000010 0000ffff 0a010000 0a01ffff
    00000018 01000000 07000010 0000ffff 00000000 ffffffff";

/// Hand-built (not a capture): the decrypted SK content of an IKE_AUTH request. First
/// payload: IDi (35). IDi(FQDN left.example), AUTH(PSK, 32 bytes), CP(request: IP4 address,
/// IP4 DNS), SA(ESP, SPI 01020304, AES-CBC/128, HMAC-SHA2-256-128, no ESN), TSi(IPv4),
/// TSr(IPv6 TCP ::-ffff..), N(INITIAL_CONTACT).
pub const HAND_IKE_AUTH_INNER: &str = "
    27000014 02000000 6c6566742e6578616d706c65
    2f000028 02000000 202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f
    21000010 01000000 00010000 00030000
    2c00002c 00000028 01030403 01020304 0300000c 0100000c 800e0080 03000008 0300000c
             00000008 05000000
    2d000018 01000000 07000010 0000ffff 0a010000 0a01ffff
    29000030 01000000 08060028 0000ffff 00000000000000000000000000000000
             ffffffffffffffffffffffffffffffff
    00000008 00004000";

/// Hand-built (not a capture): the decrypted SK content of an INFORMATIONAL request deleting
/// two ESP SAs and the IKE SA. First payload: Delete (42).
pub const HAND_DELETE_INNER: &str = "
    2a000010 03040002 01020304 05060708
    00000008 01000000";

/// Every whole message fixture, as bytes ready for [`Message::decode`].
pub fn valid_messages() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("wireshark_sa_init", hex(WIRESHARK_SA_INIT)),
        (
            "ipsec_parser_sa_init",
            hex(IPSEC_PARSER_SA_INIT_WITH_MARKER)[4..].to_vec(),
        ),
        ("hand_ike_auth_sk", hex(HAND_IKE_AUTH_SK)),
        ("hand_informational_skf", hex(HAND_INFORMATIONAL_SKF)),
        ("hand_sa_init_cookie", hex(HAND_SA_INIT_COOKIE)),
    ]
}

/// Every inner chain fixture with its first payload type.
pub fn valid_chains() -> Vec<(&'static str, PayloadType, Vec<u8>)> {
    vec![
        (
            "child_rekey",
            PayloadType::Notify,
            hex(HAND_CHILD_REKEY_INNER),
        ),
        (
            "ike_auth",
            PayloadType::IdInitiator,
            hex(HAND_IKE_AUTH_INNER),
        ),
        ("delete", PayloadType::Delete, hex(HAND_DELETE_INNER)),
    ]
}

/// A message carrying `payloads`.
pub fn message(exchange_type: ExchangeType, payloads: Vec<Payload>) -> Message {
    Message {
        initiator_spi: Spi::from(0x0102_0304_0506_0708),
        responder_spi: Spi::from(0x1112_1314_1516_1718),
        exchange_type,
        flags: Flags::new(true, false),
        message_id: MessageId(5),
        payloads,
    }
}

fn bytes(start: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| start.wrapping_add(i as u8)).collect()
}

/// An IKE SA payload offering two proposals with every kind of attribute.
pub fn ike_sa() -> SecurityAssociation {
    SecurityAssociation {
        proposals: vec![
            Proposal {
                number: 1,
                protocol: ProtocolId::Ike,
                spi: Vec::new(),
                transforms: vec![
                    Transform::with_key_length(TransformId::Encr(EncrId::AesGcm16), 256),
                    Transform::new(TransformId::Prf(PrfId::HmacSha2_256)),
                    Transform::new(TransformId::Dh(DhGroup::Ecp256)),
                    Transform::new(TransformId::Dh(DhGroup::Modp2048)),
                ],
            },
            Proposal {
                number: 2,
                protocol: ProtocolId::Ike,
                spi: bytes(0x40, 8),
                transforms: vec![
                    Transform::with_key_length(TransformId::Encr(EncrId::AesCbc), 128),
                    Transform::new(TransformId::Integ(IntegId::HmacSha2_256_128)),
                    Transform::new(TransformId::Prf(PrfId::HmacSha1)),
                    Transform::new(TransformId::Dh(DhGroup::Curve25519)),
                    Transform {
                        id: TransformId::Other {
                            transform_type: 6,
                            id: 35,
                        },
                        attributes: vec![
                            TransformAttribute::Tv {
                                attr_type: 99,
                                value: 7,
                            },
                            TransformAttribute::Tlv {
                                attr_type: 100,
                                value: vec![1, 2, 3],
                            },
                        ],
                    },
                ],
            },
        ],
    }
}

/// An ESP SA payload.
pub fn esp_sa() -> SecurityAssociation {
    SecurityAssociation {
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::Esp,
            spi: vec![0xaa, 0xbb, 0xcc, 0xdd],
            transforms: vec![
                Transform::with_key_length(TransformId::Encr(EncrId::AesGcm16), 128),
                Transform::new(TransformId::Esn(EsnId::NoEsn)),
                Transform::new(TransformId::Esn(EsnId::Esn)),
            ],
        }],
    }
}

/// One payload of every kind, named. SK and SKF are last-only, so they are listed apart.
pub fn every_payload() -> Vec<(&'static str, Payload)> {
    vec![
        ("sa_ike", Payload::SecurityAssociation(ike_sa())),
        ("sa_esp", Payload::SecurityAssociation(esp_sa())),
        (
            "ke",
            Payload::KeyExchange(KeyExchange {
                group: DhGroup::Modp2048,
                data: bytes(1, 256),
            }),
        ),
        (
            "idi",
            Payload::IdInitiator(Identification {
                id_type: IdType::Ipv4Addr,
                data: vec![198, 51, 100, 1],
            }),
        ),
        (
            "idr",
            Payload::IdResponder(Identification {
                id_type: IdType::Fqdn,
                data: b"vpn.example.net".to_vec(),
            }),
        ),
        (
            "cert",
            Payload::Certificate(Certificate {
                encoding: CertEncoding::X509Signature,
                data: bytes(0x30, 300),
            }),
        ),
        (
            "certreq",
            Payload::CertificateRequest(Certificate {
                encoding: CertEncoding::X509Signature,
                data: bytes(0x55, 40),
            }),
        ),
        (
            "auth",
            Payload::Authentication(Authentication {
                method: AuthMethod::DigitalSignature,
                data: bytes(9, 80),
            }),
        ),
        ("nonce_min", Payload::Nonce(bytes(0, 16))),
        ("nonce_max", Payload::Nonce(bytes(0, 256))),
        (
            "notify_nat_src",
            Payload::Notify(Notify::new(
                NotifyType::NatDetectionSourceIp,
                bytes(0x70, 20),
            )),
        ),
        (
            "notify_rekey_sa",
            Payload::Notify(Notify {
                protocol: ProtocolId::Esp,
                spi: vec![1, 2, 3, 4],
                notify_type: NotifyType::RekeySa,
                data: Vec::new(),
            }),
        ),
        (
            "notify_unknown_type",
            Payload::Notify(Notify::new(NotifyType::Unknown(40000), vec![1])),
        ),
        (
            "delete_esp",
            Payload::Delete(Delete {
                protocol: ProtocolId::Esp,
                spis: vec![0x0102_0304, 0xdead_beef],
            }),
        ),
        (
            "delete_ike",
            Payload::Delete(Delete {
                protocol: ProtocolId::Ike,
                spis: Vec::new(),
            }),
        ),
        ("vendor_id", Payload::VendorId(bytes(0x88, 16))),
        (
            "tsi_v4",
            Payload::TsInitiator(TrafficSelectors {
                selectors: vec![TrafficSelector {
                    ip_protocol: 0,
                    start_port: 0,
                    end_port: 65535,
                    range: AddressRange::V4 {
                        start: Ipv4Addr::new(10, 1, 0, 0),
                        end: Ipv4Addr::new(10, 1, 255, 255),
                    },
                }],
            }),
        ),
        (
            "tsr_mixed",
            Payload::TsResponder(TrafficSelectors {
                selectors: vec![
                    TrafficSelector {
                        ip_protocol: 6,
                        start_port: 443,
                        end_port: 443,
                        range: AddressRange::V6 {
                            start: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1),
                            end: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0xff),
                        },
                    },
                    TrafficSelector {
                        ip_protocol: 0,
                        start_port: 0,
                        end_port: 0,
                        range: AddressRange::Other {
                            ts_type: 10,
                            data: vec![0, 4, 1, 2],
                        },
                    },
                ],
            }),
        ),
        (
            "cp",
            Payload::Configuration(Configuration {
                cfg_type: CfgType::Reply,
                attributes: vec![
                    CfgAttribute {
                        attr_type: CfgAttributeType::InternalIp4Address,
                        value: vec![169, 254, 10, 2],
                    },
                    CfgAttribute {
                        attr_type: CfgAttributeType::InternalIp4Dns,
                        value: vec![10, 0, 0, 2],
                    },
                    CfgAttribute {
                        attr_type: CfgAttributeType::Unknown(0x7fff),
                        value: Vec::new(),
                    },
                ],
            }),
        ),
        ("eap", Payload::Eap(vec![1, 7, 0, 5, 1])),
        (
            "unknown_noncritical",
            Payload::Unknown {
                payload_type: 200,
                data: vec![1, 2, 3],
            },
        ),
    ]
}

/// The SK payload fixture.
pub fn sk() -> Payload {
    Payload::Encrypted(Encrypted {
        inner_next: PayloadType::IdInitiator,
        data: bytes(0xa0, 64),
    })
}

/// The SKF payload fixture.
pub fn skf() -> Payload {
    Payload::EncryptedFragment(EncryptedFragment {
        inner_next: PayloadType::IdInitiator,
        fragment_number: 1,
        total_fragments: 3,
        data: bytes(0xe0, 40),
    })
}
