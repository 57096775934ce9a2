//! Decoding of real captured messages and of hand-built ones, checked field by field.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use common::*;
use vpn_ike::codec::*;

fn notify_types(payloads: &[Payload]) -> Vec<NotifyType> {
    payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Notify(n) => Some(n.notify_type),
            _ => None,
        })
        .collect()
}

#[test]
fn wireshark_capture_ike_sa_init_request() {
    let bytes = hex(WIRESHARK_SA_INIT);
    assert_eq!(bytes.len(), 300);
    let h = Header::peek(&bytes).unwrap();
    assert_eq!(h.initiator_spi, Spi::from(0x8992_2c91_5f35_570e));
    assert!(h.responder_spi.is_zero());
    assert_eq!(h.next_payload, PayloadType::SecurityAssociation);
    assert_eq!(h.length, 300);

    let msg = Message::decode(&bytes).unwrap();
    assert_eq!(msg.exchange_type, ExchangeType::IkeSaInit);
    assert!(msg.flags.initiator() && !msg.flags.response());
    assert_eq!(msg.message_id, MessageId(0));
    let types: Vec<u8> = msg
        .payloads
        .iter()
        .map(|p| p.payload_type().value())
        .collect();
    assert_eq!(types, [33, 34, 40, 43, 43, 43, 43, 41, 41, 41]);

    let Payload::SecurityAssociation(sa) = &msg.payloads[0] else {
        panic!("not an SA")
    };
    assert_eq!(sa.proposals.len(), 1);
    let p = &sa.proposals[0];
    assert_eq!((p.number, p.protocol), (1, ProtocolId::Ike));
    assert!(p.spi.is_empty());
    assert_eq!(
        p.transforms,
        [
            Transform::with_key_length(TransformId::Encr(EncrId::AesGcm16), 256),
            Transform::new(TransformId::Prf(PrfId::HmacSha2_256)),
            Transform::new(TransformId::Dh(DhGroup::Ecp256)),
        ]
    );
    assert_eq!(p.transforms[0].key_length(), Some(256));

    let Payload::KeyExchange(ke) = &msg.payloads[1] else {
        panic!("not a KE")
    };
    assert_eq!(ke.group, DhGroup::Ecp256);
    assert_eq!(ke.data.len(), 64);
    assert_eq!(&ke.data[..4], &[0xdb, 0x25, 0x31, 0x78]);

    let Payload::Nonce(nonce) = &msg.payloads[2] else {
        panic!("not a nonce")
    };
    assert_eq!(nonce.len(), 40);

    let Payload::VendorId(vid) = &msg.payloads[3] else {
        panic!("not a VID")
    };
    assert_eq!(vid.len(), 16);

    assert_eq!(
        notify_types(&msg.payloads),
        [
            NotifyType::Ikev2FragmentationSupported,
            NotifyType::Unknown(16406),
            NotifyType::SignatureHashAlgorithms,
        ]
    );
    let Payload::Notify(sha) = &msg.payloads[9] else {
        panic!("not a notify")
    };
    assert_eq!(sha.protocol, ProtocolId::None);
    assert_eq!(sha.data, [0, 1, 0, 2, 0, 3, 0, 4]);

    assert_eq!(msg.encode().unwrap(), bytes);
}

#[test]
fn ipsec_parser_capture_ike_sa_init_over_4500() {
    let with_marker = hex(IPSEC_PARSER_SA_INIT_WITH_MARKER);
    assert_eq!(&with_marker[..4], &[0, 0, 0, 0], "non-ESP marker");
    // The marker is the transport's: with it, the SPI and version are misread.
    assert!(Message::decode(&with_marker).is_err());
    let bytes = &with_marker[4..];
    let msg = Message::decode(bytes).unwrap();
    assert_eq!(msg.initiator_spi, Spi::from(0xbca1_937a_7c2f_f5b9));
    assert_eq!(msg.exchange_type, ExchangeType::IkeSaInit);
    assert_eq!(msg.payloads.len(), 3);

    let Payload::SecurityAssociation(sa) = &msg.payloads[0] else {
        panic!("not an SA")
    };
    let counts: Vec<usize> = sa.proposals.iter().map(|p| p.transforms.len()).collect();
    assert_eq!(counts, [3, 3, 4, 4]);
    let numbers: Vec<u8> = sa.proposals.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    assert_eq!(
        sa.proposals[2].transforms,
        [
            Transform::with_key_length(TransformId::Encr(EncrId::AesCtr), 128),
            Transform::new(TransformId::Integ(IntegId::HmacSha2_256_128)),
            Transform::new(TransformId::Prf(PrfId::HmacSha2_256)),
            Transform::new(TransformId::Dh(DhGroup::Unknown(28))),
        ]
    );
    assert_eq!(
        sa.proposals[1].transforms[2],
        Transform::new(TransformId::Dh(DhGroup::Ecp256))
    );

    let Payload::KeyExchange(ke) = &msg.payloads[1] else {
        panic!("not a KE")
    };
    assert_eq!((ke.group.value(), ke.data.len()), (28, 64));
    assert!(matches!(&msg.payloads[2], Payload::Nonce(n) if n.len() == 32));
    assert_eq!(msg.encode().unwrap(), bytes);
}

#[test]
fn hand_built_sk_and_skf_messages() {
    let msg = Message::decode(&hex(HAND_IKE_AUTH_SK)).unwrap();
    assert_eq!(msg.exchange_type, ExchangeType::IkeAuth);
    assert_eq!(msg.message_id, MessageId(1));
    let [Payload::Encrypted(sk)] = msg.payloads.as_slice() else {
        panic!("not one SK")
    };
    assert_eq!(sk.inner_next, PayloadType::IdInitiator);
    assert_eq!(sk.data.len(), 64);
    assert_eq!((sk.data[0], sk.data[63]), (0xa0, 0xdf));

    let msg = Message::decode(&hex(HAND_INFORMATIONAL_SKF)).unwrap();
    assert_eq!(msg.exchange_type, ExchangeType::Informational);
    assert!(msg.flags.response() && !msg.flags.initiator());
    let [Payload::EncryptedFragment(f)] = msg.payloads.as_slice() else {
        panic!("not one SKF")
    };
    assert_eq!(f.inner_next, PayloadType::NoNextPayload);
    assert_eq!((f.fragment_number, f.total_fragments), (2, 3));
    assert_eq!(f.data.len(), 20);

    let msg = Message::decode(&hex(HAND_SA_INIT_COOKIE)).unwrap();
    assert_eq!(
        msg.payloads,
        [Payload::Notify(Notify::new(
            NotifyType::Cookie,
            (0..16).collect()
        ))]
    );
}

#[test]
fn hand_built_create_child_sa_inner_chain() {
    let payloads = decode_payload_chain(PayloadType::Notify, &hex(HAND_CHILD_REKEY_INNER)).unwrap();
    let v4 = |a: [u8; 4], b: [u8; 4]| TrafficSelectors {
        selectors: vec![TrafficSelector {
            ip_protocol: 0,
            start_port: 0,
            end_port: 65535,
            range: AddressRange::V4 {
                start: Ipv4Addr::from(a),
                end: Ipv4Addr::from(b),
            },
        }],
    };
    let expected = vec![
        Payload::Notify(Notify {
            protocol: ProtocolId::Esp,
            spi: vec![0x11, 0x22, 0x33, 0x44],
            notify_type: NotifyType::RekeySa,
            data: vec![],
        }),
        Payload::SecurityAssociation(SecurityAssociation {
            proposals: vec![Proposal {
                number: 1,
                protocol: ProtocolId::Esp,
                spi: vec![0xaa, 0xbb, 0xcc, 0xdd],
                transforms: vec![
                    Transform::with_key_length(TransformId::Encr(EncrId::AesGcm16), 256),
                    Transform::new(TransformId::Esn(EsnId::NoEsn)),
                ],
            }],
        }),
        Payload::Nonce((0..32).collect()),
        Payload::TsInitiator(v4([10, 1, 0, 0], [10, 1, 255, 255])),
        Payload::TsResponder(v4([0, 0, 0, 0], [255, 255, 255, 255])),
    ];
    assert_eq!(payloads, expected);
}

#[test]
fn hand_built_ike_auth_inner_chain() {
    let payloads =
        decode_payload_chain(PayloadType::IdInitiator, &hex(HAND_IKE_AUTH_INNER)).unwrap();
    assert_eq!(payloads.len(), 7);
    assert_eq!(
        payloads[0],
        Payload::IdInitiator(Identification {
            id_type: IdType::Fqdn,
            data: b"left.example".to_vec()
        })
    );
    assert!(matches!(&payloads[1], Payload::Authentication(a)
        if a.method == AuthMethod::SharedKeyMic && a.data.len() == 32 && a.data[0] == 0x20));
    assert_eq!(
        payloads[2],
        Payload::Configuration(Configuration {
            cfg_type: CfgType::Request,
            attributes: vec![
                CfgAttribute {
                    attr_type: CfgAttributeType::InternalIp4Address,
                    value: vec![]
                },
                CfgAttribute {
                    attr_type: CfgAttributeType::InternalIp4Dns,
                    value: vec![]
                },
            ]
        })
    );
    let Payload::SecurityAssociation(sa) = &payloads[3] else {
        panic!("not an SA")
    };
    assert_eq!(
        sa.proposals[0].transforms,
        [
            Transform::with_key_length(TransformId::Encr(EncrId::AesCbc), 128),
            Transform::new(TransformId::Integ(IntegId::HmacSha2_256_128)),
            Transform::new(TransformId::Esn(EsnId::NoEsn)),
        ]
    );
    assert_eq!(
        payloads[5],
        Payload::TsResponder(TrafficSelectors {
            selectors: vec![TrafficSelector {
                ip_protocol: 6,
                start_port: 0,
                end_port: 65535,
                range: AddressRange::V6 {
                    start: Ipv6Addr::UNSPECIFIED,
                    end: Ipv6Addr::from([0xff; 16]),
                },
            }]
        })
    );
    assert_eq!(
        payloads[6],
        Payload::Notify(Notify::new(NotifyType::InitialContact, vec![]))
    );
}

#[test]
fn hand_built_delete_inner_chain() {
    let payloads = decode_payload_chain(PayloadType::Delete, &hex(HAND_DELETE_INNER)).unwrap();
    assert_eq!(
        payloads,
        [
            Payload::Delete(Delete {
                protocol: ProtocolId::Esp,
                spis: vec![0x0102_0304, 0x0506_0708]
            }),
            Payload::Delete(Delete {
                protocol: ProtocolId::Ike,
                spis: vec![]
            }),
        ]
    );
}
