//! Round trips: value -> bytes -> value, and bytes -> value -> bytes, for every payload type.

mod common;

use std::collections::BTreeSet;

use common::*;
use vpn_ike::codec::*;

/// encode -> decode gives the value back; decode -> encode gives the bytes back.
fn assert_roundtrip(msg: &Message) -> Vec<u8> {
    let bytes = msg.encode().expect("encode");
    let decoded = Message::decode(&bytes).expect("decode");
    assert_eq!(&decoded, msg);
    assert_eq!(decoded.encode().expect("re-encode"), bytes);
    let header = Header::peek(&bytes).expect("peek");
    assert_eq!(header.length as usize, bytes.len());
    assert_eq!(header, msg.header().unwrap());
    bytes
}

#[test]
fn every_payload_alone_in_a_message() {
    for (name, payload) in every_payload() {
        let msg = message(ExchangeType::IkeAuth, vec![payload.clone()]);
        let bytes = assert_roundtrip(&msg);
        // The generic header's length covers exactly the rest of the message.
        let len = u16::from_be_bytes([bytes[30], bytes[31]]) as usize;
        assert_eq!(len, bytes.len() - Header::LEN, "{name}");
        assert_eq!(bytes[16], payload.payload_type().value(), "{name}");
    }
}

#[test]
fn every_payload_in_one_chain_then_sk() {
    let mut payloads: Vec<Payload> = every_payload().into_iter().map(|(_, p)| p).collect();
    // Inner chain (what the engine encrypts) round-trips through the chain API.
    let inner = encode_payload_chain(&payloads).unwrap();
    let first = payloads[0].payload_type();
    assert_eq!(decode_payload_chain(first, &inner).unwrap(), payloads);
    assert_eq!(
        encode_payload_chain(&decode_payload_chain(first, &inner).unwrap()).unwrap(),
        inner
    );

    payloads.push(sk());
    assert_roundtrip(&message(ExchangeType::IkeAuth, payloads.clone()));
    payloads.pop();
    payloads.push(skf());
    assert_roundtrip(&message(ExchangeType::IkeAuth, payloads));
}

#[test]
fn sk_and_skf_alone() {
    for p in [sk(), skf()] {
        let bytes = assert_roundtrip(&message(ExchangeType::Informational, vec![p.clone()]));
        // The SK/SKF generic header's Next Payload is the inner type, not 0.
        let inner = match &p {
            Payload::Encrypted(e) => e.inner_next,
            Payload::EncryptedFragment(f) => f.inner_next,
            _ => unreachable!(),
        };
        assert_eq!(bytes[28], inner.value());
    }
}

#[test]
fn empty_message_and_empty_chain() {
    let bytes = assert_roundtrip(&message(ExchangeType::Informational, Vec::new()));
    assert_eq!(bytes.len(), Header::LEN);
    assert_eq!(bytes[16], 0);
    assert_eq!(encode_payload_chain(&[]).unwrap(), Vec::<u8>::new());
    assert_eq!(
        decode_payload_chain(PayloadType::NoNextPayload, &[]).unwrap(),
        vec![]
    );
}

#[test]
fn fixtures_cover_every_payload_type() {
    let mut seen: BTreeSet<u8> = every_payload()
        .iter()
        .map(|(_, p)| p.payload_type().value())
        .collect();
    seen.insert(sk().payload_type().value());
    seen.insert(skf().payload_type().value());
    for t in (33..=48).chain([53]) {
        assert!(PayloadType::from_value(t).is_known());
        assert!(seen.contains(&t), "no fixture for payload type {t}");
    }
    assert!(seen.contains(&200), "no unknown-payload fixture");
}

#[test]
fn fixed_messages_roundtrip_byte_exact() {
    for (name, bytes) in valid_messages() {
        let msg = Message::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(msg.encode().unwrap(), bytes, "{name}");
    }
    for (name, first, bytes) in valid_chains() {
        let payloads =
            decode_payload_chain(first, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(payloads[0].payload_type(), first, "{name}");
        assert_eq!(encode_payload_chain(&payloads).unwrap(), bytes, "{name}");
    }
}

#[test]
fn header_flags_and_ids() {
    let mut msg = message(ExchangeType::CreateChildSa, vec![]);
    msg.flags = Flags::new(false, true);
    msg.message_id = MessageId(0xfedc_ba98);
    msg.exchange_type = ExchangeType::Unknown(99);
    let bytes = assert_roundtrip(&msg);
    assert_eq!(&bytes[17..20], &[0x20, 99, 0x20]);
    assert_eq!(&bytes[20..24], &[0xfe, 0xdc, 0xba, 0x98]);
    let h = Header::peek(&bytes).unwrap();
    assert!(h.flags.response() && !h.flags.initiator() && !h.flags.higher_version());
    assert_eq!(u64::from(h.initiator_spi), 0x0102_0304_0506_0708);
}

#[test]
fn reserved_bits_are_ignored_and_not_kept() {
    // Reserved flag bits, minor version, critical bit of a known payload, RESERVED bytes: all
    // ignored on receipt and encoded as zero (the canonical form).
    let canonical = hex(HAND_SA_INIT_COOKIE);
    let mut noisy = canonical.clone();
    noisy[17] = 0x2f; // minor version 15
    noisy[19] |= 0x07 | 0x40 | 0x80; // reserved flag bits
    noisy[29] = 0xff; // critical + reserved bits of the Notify generic header
    let msg = Message::decode(&noisy).unwrap();
    assert_eq!(msg, Message::decode(&canonical).unwrap());
    assert_eq!(msg.encode().unwrap(), canonical);
    assert_eq!(Header::peek(&noisy).unwrap().minor_version, 15);
}

#[test]
fn wire_enums_compare_by_value() {
    assert_eq!(ExchangeType::Unknown(34), ExchangeType::IkeSaInit);
    assert_eq!(ExchangeType::from(35), ExchangeType::IkeAuth);
    assert_eq!(u8::from(PayloadType::EncryptedFragment), 53);
    assert_eq!(
        NotifyType::from(16430),
        NotifyType::Ikev2FragmentationSupported
    );
    assert_eq!(NotifyType::from(16431), NotifyType::SignatureHashAlgorithms);
    assert!(NotifyType::NoProposalChosen.is_error());
    assert!(!NotifyType::Cookie.is_error());
    assert_eq!(EncrId::AesCbc.value(), 12);
    assert_eq!(EncrId::AesGcm16.value(), 20);
    assert_eq!(AuthMethod::SharedKeyMic.value(), 2);
    assert_eq!(AuthMethod::RsaSig.value(), 1);
    assert_eq!(AuthMethod::DigitalSignature.value(), 14);
    for g in [2u16, 5, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 31] {
        assert!(DhGroup::from(g).is_known(), "group {g}");
    }
    assert_eq!(
        TransformId::from_wire(1, 20),
        TransformId::Encr(EncrId::AesGcm16)
    );
    assert_eq!(
        TransformId::Other {
            transform_type: 3,
            id: 12
        },
        TransformId::Integ(IntegId::HmacSha2_256_128)
    );
    assert_eq!(
        TransformId::Dh(DhGroup::Ecp256).transform_type(),
        TransformType::DhGroup
    );
}
