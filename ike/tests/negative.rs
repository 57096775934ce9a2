//! Hostile and malformed input: truncations, off-by-one lengths, critical payloads, caps.

mod common;

use common::*;
use vpn_ike::codec::*;

fn set_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Offsets of every top-level generic payload header of a valid message.
fn payload_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = Header::LEN;
    let mut next = bytes[16];
    while next != 0 && at < bytes.len() {
        offsets.push(at);
        if next == 46 || next == 53 {
            break;
        }
        next = bytes[at];
        at += usize::from(get_u16(bytes, at + 2));
    }
    offsets
}

#[test]
fn every_truncation_fails() {
    for (name, bytes) in valid_messages() {
        for n in 0..bytes.len() {
            let cut = &bytes[..n];
            assert!(Message::decode(cut).is_err(), "{name} cut at {n}");
            // Also with the header length patched to match: the inner checks must catch it.
            if n >= Header::LEN {
                let mut patched = cut.to_vec();
                patched[24..28].copy_from_slice(&(n as u32).to_be_bytes());
                assert!(
                    Message::decode(&patched).is_err(),
                    "{name} cut at {n} with patched length"
                );
            }
        }
    }
    for (name, first, bytes) in valid_chains() {
        for n in 0..bytes.len() {
            assert!(
                decode_payload_chain(first, &bytes[..n]).is_err(),
                "{name} cut at {n}"
            );
        }
    }
}

#[test]
fn short_inputs_give_truncated() {
    for n in 0..Header::LEN {
        let data = vec![0x20; n];
        assert!(matches!(
            Header::peek(&data),
            Err(DecodeError::Truncated { offset: 0, .. })
        ));
    }
    let bytes = hex(WIRESHARK_SA_INIT);
    let err = decode_payload_chain(PayloadType::SecurityAssociation, &bytes[28..30]).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Truncated {
            what: "generic payload header",
            offset: 0,
            needed: 4,
            available: 2
        }
    );
}

#[test]
fn header_length_off_by_one() {
    for (name, bytes) in valid_messages() {
        for delta in [-1i64, 1] {
            let mut b = bytes.clone();
            let len = (bytes.len() as i64 + delta) as u32;
            b[24..28].copy_from_slice(&len.to_be_bytes());
            assert_eq!(
                Message::decode(&b),
                Err(DecodeError::HeaderLengthMismatch {
                    header_length: len,
                    datagram_length: bytes.len()
                }),
                "{name} {delta}"
            );
        }
        // One byte more or less of datagram than the header says.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            Message::decode(&longer),
            Err(DecodeError::HeaderLengthMismatch { .. })
        ));
    }
}

#[test]
fn payload_length_off_by_one_everywhere() {
    for (name, bytes) in valid_messages() {
        for at in payload_offsets(&bytes) {
            let len = get_u16(&bytes, at + 2);
            for new_len in [len - 1, len + 1] {
                let mut b = bytes.clone();
                set_u16(&mut b, at + 2, new_len);
                assert!(
                    Message::decode(&b).is_err(),
                    "{name}: payload at {at} length {len} -> {new_len} decoded"
                );
            }
        }
    }
}

#[test]
fn payload_length_errors_are_precise() {
    let bytes = hex(WIRESHARK_SA_INIT);
    // Last payload (Notify at 284, length 16) one too long: runs past the data.
    let mut b = bytes.clone();
    set_u16(&mut b, 286, 17);
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::PayloadOverrun {
            payload_type: 41,
            offset: 284,
            length: 17,
            available: 16
        })
    );
    // One too short: a byte is left over.
    set_u16(&mut b, 286, 15);
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::TrailingData {
            offset: 299,
            count: 1
        })
    );
    // Below the generic header.
    set_u16(&mut b, 286, 3);
    assert!(matches!(
        Message::decode(&b),
        Err(DecodeError::PayloadTooShort {
            payload_type: 41,
            minimum: 4,
            ..
        })
    ));
    // Below the Notify minimum (8).
    let mut b = bytes.clone();
    set_u16(&mut b, 270, 7); // the 16430 notify at 268, length 8
    assert!(matches!(
        Message::decode(&b),
        Err(DecodeError::PayloadTooShort {
            payload_type: 41,
            offset: 268,
            length: 7,
            minimum: 8
        })
    ));
}

#[test]
fn minimum_length_of_every_payload_type() {
    // (type, minimum total length): a payload one byte shorter than that is refused.
    let minimums = [
        (33u8, 12usize),
        (34, 8),
        (35, 8),
        (36, 8),
        (37, 5),
        (38, 5),
        (39, 8),
        (40, 20),
        (41, 8),
        (42, 8),
        (44, 8),
        (45, 8),
        (47, 8),
        (48, 8),
        (53, 8),
    ];
    for (t, min) in minimums {
        let mut chain = vec![0, 0];
        chain.extend_from_slice(&((min - 1) as u16).to_be_bytes());
        chain.resize(min - 1, 0);
        assert_eq!(
            decode_payload_chain(PayloadType::from(t), &chain),
            Err(DecodeError::PayloadTooShort {
                payload_type: t,
                offset: 0,
                length: min - 1,
                minimum: min
            }),
            "type {t}"
        );
    }
    // VID and SK may be empty.
    assert!(decode_payload_chain(PayloadType::VendorId, &[0, 0, 0, 4]).is_ok());
    let mut sk = hex(HAND_IKE_AUTH_SK)[..32].to_vec();
    sk[24..28].copy_from_slice(&32u32.to_be_bytes());
    set_u16(&mut sk, 30, 4);
    assert!(Message::decode(&sk).is_ok());
}

#[test]
fn nonce_bounds() {
    let chain = |n: usize| {
        let mut c = vec![0, 0];
        c.extend_from_slice(&((n + 4) as u16).to_be_bytes());
        c.resize(n + 4, 7);
        c
    };
    assert!(decode_payload_chain(PayloadType::Nonce, &chain(16)).is_ok());
    assert!(decode_payload_chain(PayloadType::Nonce, &chain(256)).is_ok());
    assert!(matches!(
        decode_payload_chain(PayloadType::Nonce, &chain(15)),
        Err(DecodeError::PayloadTooShort { .. })
    ));
    assert_eq!(
        decode_payload_chain(PayloadType::Nonce, &chain(257)),
        Err(DecodeError::NonceLength {
            offset: 0,
            length: 257
        })
    );
    for n in [15, 257] {
        let p = Payload::Nonce(vec![0; n]);
        assert!(encode_payload_chain(&[p]).is_err());
    }
}

/// The cookie message with a payload of type `t` and the given flags byte inserted first.
fn with_leading_payload(t: u8, flags: u8, body: &[u8]) -> Vec<u8> {
    let base = hex(HAND_SA_INIT_COOKIE);
    let mut b = base[..Header::LEN].to_vec();
    b[16] = t;
    b.extend_from_slice(&[41, flags]);
    b.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&base[Header::LEN..]);
    let len = b.len() as u32;
    b[24..28].copy_from_slice(&len.to_be_bytes());
    b
}

#[test]
fn critical_unknown_payload_is_a_distinct_error() {
    for t in [1u8, 13, 49, 54, 200, 255] {
        let b = with_leading_payload(t, 0x80, &[1, 2, 3]);
        assert_eq!(
            Message::decode(&b),
            Err(DecodeError::UnsupportedCriticalPayload {
                payload_type: t,
                offset: 28
            }),
            "type {t}"
        );
    }
    let err = Message::decode(&with_leading_payload(200, 0x80, &[])).unwrap_err();
    assert_eq!(err.kind(), "unsupported_critical_payload");
    assert_eq!(
        err.to_string(),
        "unsupported critical payload type 200 at offset 28"
    );
}

#[test]
fn noncritical_unknown_payload_is_skipped_and_kept() {
    let b = with_leading_payload(200, 0x00, &[9, 9]);
    let msg = Message::decode(&b).unwrap();
    assert_eq!(
        msg.payloads[0],
        Payload::Unknown {
            payload_type: 200,
            data: vec![9, 9]
        }
    );
    assert!(matches!(&msg.payloads[1], Payload::Notify(n) if n.notify_type == NotifyType::Cookie));
    assert_eq!(msg.encode().unwrap(), b);
    // Reserved bits other than the critical bit do not make it critical.
    assert!(Message::decode(&with_leading_payload(200, 0x7f, &[])).is_ok());
    // A known payload with the critical bit set is understood, so the bit is ignored.
    let b = with_leading_payload(43, 0x80, &[1, 2]);
    assert_eq!(
        Message::decode(&b).unwrap().payloads[0],
        Payload::VendorId(vec![1, 2])
    );
}

#[test]
fn wrong_major_version() {
    for version in [0x00u8, 0x10, 0x30, 0xf0] {
        let mut b = hex(HAND_SA_INIT_COOKIE);
        b[17] = version;
        let err = DecodeError::InvalidMajorVersion {
            major: version >> 4,
        };
        assert_eq!(Header::peek(&b), Err(err.clone()));
        assert_eq!(Message::decode(&b), Err(err));
    }
}

#[test]
fn encrypted_must_be_last_and_not_nested() {
    let mut b = hex(HAND_IKE_AUTH_SK);
    b.extend_from_slice(&[0, 0, 0, 4]);
    let len = b.len() as u32;
    b[24..28].copy_from_slice(&len.to_be_bytes());
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::EncryptedNotLast { offset: 28 })
    );
    // SK inside a decrypted chain.
    let inner = &hex(HAND_IKE_AUTH_SK)[28..];
    assert_eq!(
        decode_payload_chain(PayloadType::Encrypted, inner),
        Err(DecodeError::NestedEncrypted { offset: 0 })
    );
    // Encoding refuses the same.
    let vid = Payload::VendorId(vec![1]);
    assert_eq!(
        message(ExchangeType::IkeAuth, vec![sk(), vid.clone()]).encode(),
        Err(EncodeError::MisplacedEncrypted { index: 0 })
    );
    assert_eq!(
        encode_payload_chain(&[vid, skf()]),
        Err(EncodeError::MisplacedEncrypted { index: 1 })
    );
}

#[test]
fn fragment_numbers() {
    for (number, total) in [(0u16, 3u16), (4, 3), (0, 0), (2, 1)] {
        let mut b = hex(HAND_INFORMATIONAL_SKF);
        set_u16(&mut b, 32, number);
        set_u16(&mut b, 34, total);
        assert_eq!(
            Message::decode(&b),
            Err(DecodeError::InvalidFragmentNumber {
                offset: 28,
                number,
                total
            })
        );
    }
}

#[test]
fn substructure_lengths_off_by_one() {
    let bytes = hex(WIRESHARK_SA_INIT);
    // SA at 28: proposal header at 32 (length 36), transforms at 40 (12), 52 (8), 60 (8).
    for (at, what) in [
        (34, "proposal"),
        (42, "transform"),
        (54, "transform"),
        (62, "transform"),
    ] {
        let len = get_u16(&bytes, at);
        for new_len in [len - 1, len + 1] {
            let mut b = bytes.clone();
            set_u16(&mut b, at, new_len);
            assert!(
                Message::decode(&b).is_err(),
                "{what} at {at}: {len} -> {new_len}"
            );
        }
    }
    let mut b = bytes.clone();
    set_u16(&mut b, 34, 37);
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::BadLength {
            what: "proposal",
            offset: 32,
            length: 37
        })
    );
    // Transform count one off.
    for n in [2u8, 4] {
        let mut b = bytes.clone();
        b[39] = n;
        assert!(Message::decode(&b).is_err(), "{n} transforms");
    }
    // Wrong last-substructure values.
    let mut b = bytes.clone();
    b[32] = 2; // "more proposals" on the only one
    assert!(matches!(
        Message::decode(&b),
        Err(DecodeError::BadLastSubstructure {
            what: "proposal",
            ..
        })
    ));
    let mut b = bytes.clone();
    b[60] = 3; // "more transforms" on the last one
    assert!(matches!(
        Message::decode(&b),
        Err(DecodeError::BadLastSubstructure {
            what: "transform",
            offset: 60,
            value: 3
        })
    ));
    // Key length attribute cut in half: TLV with a length past the transform.
    let mut b = bytes.clone();
    b[48] = 0x00; // AF bit cleared: TLV type 14, length 0x0100
    assert!(matches!(
        Message::decode(&b),
        Err(DecodeError::Truncated {
            what: "transform attribute value",
            ..
        })
    ));
}

#[test]
fn traffic_selector_errors() {
    let chain = hex(HAND_CHILD_REKEY_INNER);
    // N 0..12, SA 12..48, Ni 48..84, TSi at 84: count at 88, selector at 92 (length at 94).
    let tsi = 84;
    for new_len in [15u16, 17, 40] {
        let mut b = chain.clone();
        set_u16(&mut b, tsi + 10, new_len);
        assert_eq!(
            decode_payload_chain(PayloadType::Notify, &b),
            Err(DecodeError::BadLength {
                what: "traffic selector",
                offset: tsi + 8,
                length: usize::from(new_len)
            })
        );
    }
    let mut b = chain.clone();
    b[tsi + 4] = 2; // two selectors declared, one present
    assert_eq!(
        decode_payload_chain(PayloadType::Notify, &b),
        Err(DecodeError::CountMismatch {
            what: "traffic selectors",
            offset: tsi,
            declared: 2,
            found: 1
        })
    );
    let mut b = chain.clone();
    b[tsi + 4] = 0; // zero declared, one present
    assert!(matches!(
        decode_payload_chain(PayloadType::Notify, &b),
        Err(DecodeError::TrailingData { .. })
    ));
}

#[test]
fn delete_errors() {
    let chain = hex(HAND_DELETE_INNER);
    let mut b = chain.clone();
    b[5] = 8; // ESP with SPI size 8
    assert!(matches!(
        decode_payload_chain(PayloadType::Delete, &b),
        Err(DecodeError::InvalidSpiSize {
            size: 8,
            protocol: 3,
            ..
        })
    ));
    let mut b = chain.clone();
    set_u16(&mut b, 6, 3); // 3 SPIs declared, 2 present
    assert!(matches!(
        decode_payload_chain(PayloadType::Delete, &b),
        Err(DecodeError::CountMismatch {
            declared: 3,
            found: 2,
            ..
        })
    ));
    let mut b = chain.clone();
    set_u16(&mut b, 22, 1); // IKE delete with a count
    assert!(matches!(
        decode_payload_chain(PayloadType::Delete, &b),
        Err(DecodeError::CountMismatch { .. })
    ));
    let mut b = chain.clone();
    b[20] = 9; // unknown protocol
    assert!(matches!(
        decode_payload_chain(PayloadType::Delete, &b),
        Err(DecodeError::InvalidSpiSize { protocol: 9, .. })
    ));
}

// ---- caps ----

fn vid_chain(n: usize) -> Vec<u8> {
    let mut c = Vec::new();
    for i in 0..n {
        c.extend_from_slice(&[if i + 1 == n { 0 } else { 43 }, 0, 0, 5, 0xee]);
    }
    c
}

#[test]
fn payload_count_cap() {
    assert_eq!(
        decode_payload_chain(PayloadType::VendorId, &vid_chain(MAX_PAYLOADS))
            .unwrap()
            .len(),
        MAX_PAYLOADS
    );
    assert_eq!(
        decode_payload_chain(PayloadType::VendorId, &vid_chain(MAX_PAYLOADS + 1)),
        Err(DecodeError::TooMany {
            what: "payloads",
            limit: MAX_PAYLOADS
        })
    );
    let many = vec![Payload::VendorId(vec![1]); MAX_PAYLOADS + 1];
    assert!(encode_payload_chain(&many).is_err());
    assert!(message(ExchangeType::Informational, many).encode().is_err());
}

fn sa_with(proposals: usize, transforms: usize) -> Payload {
    let proposal = Proposal {
        number: 1,
        protocol: ProtocolId::Ike,
        spi: vec![],
        transforms: vec![Transform::new(TransformId::Dh(DhGroup::Modp2048)); transforms],
    };
    Payload::SecurityAssociation(SecurityAssociation {
        proposals: vec![proposal; proposals],
    })
}

/// Encodes a payload that exceeds a cap by hand-lifting the encoder's cap check: we build it
/// within the cap and then splice in one more substructure.
fn sa_over_cap(proposals: usize, transforms: usize) -> Vec<u8> {
    // Proposal with `transforms` 8-byte transforms.
    let mut proposal = vec![2, 0, 0, 0, 1, 1, 0, transforms as u8];
    for j in 0..transforms {
        proposal.extend_from_slice(&[
            if j + 1 == transforms { 0 } else { 3 },
            0,
            0,
            8,
            4,
            0,
            0,
            14,
        ]);
    }
    let plen = proposal.len() as u16;
    proposal[2..4].copy_from_slice(&plen.to_be_bytes());
    let mut body = Vec::new();
    for i in 0..proposals {
        let mut p = proposal.clone();
        if i + 1 == proposals {
            p[0] = 0;
        }
        body.extend_from_slice(&p);
    }
    let mut chain = vec![0, 0];
    chain.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    chain.extend_from_slice(&body);
    chain
}

#[test]
fn proposal_and_transform_caps() {
    // At the caps: decodes, and equals what the encoder produces.
    let at_cap = sa_over_cap(MAX_PROPOSALS, 2);
    let decoded = decode_payload_chain(PayloadType::SecurityAssociation, &at_cap).unwrap();
    assert_eq!(encode_payload_chain(&decoded).unwrap(), at_cap);
    assert!(
        decode_payload_chain(
            PayloadType::SecurityAssociation,
            &sa_over_cap(1, MAX_TRANSFORMS_PER_PROPOSAL)
        )
        .is_ok()
    );
    // Over the caps.
    assert_eq!(
        decode_payload_chain(
            PayloadType::SecurityAssociation,
            &sa_over_cap(MAX_PROPOSALS + 1, 1)
        ),
        Err(DecodeError::TooMany {
            what: "proposals",
            limit: MAX_PROPOSALS
        })
    );
    assert_eq!(
        decode_payload_chain(
            PayloadType::SecurityAssociation,
            &sa_over_cap(1, MAX_TRANSFORMS_PER_PROPOSAL + 1)
        ),
        Err(DecodeError::TooMany {
            what: "transforms in a proposal",
            limit: MAX_TRANSFORMS_PER_PROPOSAL
        })
    );
    assert!(encode_payload_chain(&[sa_with(MAX_PROPOSALS + 1, 1)]).is_err());
    assert!(encode_payload_chain(&[sa_with(1, MAX_TRANSFORMS_PER_PROPOSAL + 1)]).is_err());
    assert!(encode_payload_chain(&[sa_with(0, 0)]).is_err());
}

#[test]
fn attribute_cap() {
    let mut t = Transform::new(TransformId::Encr(EncrId::AesCbc));
    t.attributes = vec![TransformAttribute::KeyLength(128); MAX_ATTRIBUTES_PER_TRANSFORM + 1];
    let sa = |t: Transform| {
        Payload::SecurityAssociation(SecurityAssociation {
            proposals: vec![Proposal {
                number: 1,
                protocol: ProtocolId::Ike,
                spi: vec![],
                transforms: vec![t],
            }],
        })
    };
    assert!(encode_payload_chain(&[sa(t.clone())]).is_err());
    // Build one at the cap and add one attribute by hand.
    t.attributes.pop();
    let mut b = encode_payload_chain(&[sa(t)]).unwrap();
    b.extend_from_slice(&[0x80, 14, 0, 128]);
    for (at, extra) in [(2usize, 4u16), (6, 4), (14, 4)] {
        let v = get_u16(&b, at) + extra;
        set_u16(&mut b, at, v);
    }
    assert_eq!(
        decode_payload_chain(PayloadType::SecurityAssociation, &b),
        Err(DecodeError::TooMany {
            what: "attributes in a transform",
            limit: MAX_ATTRIBUTES_PER_TRANSFORM
        })
    );
}

#[test]
fn traffic_selector_cap() {
    let ts = |n: usize| {
        let mut c = vec![0, 0, 0, 0, n as u8, 0, 0, 0];
        for _ in 0..n {
            c.extend_from_slice(&[7, 0, 0, 16, 0, 0, 255, 255, 10, 0, 0, 0, 10, 0, 0, 255]);
        }
        let len = c.len() as u16;
        c[2..4].copy_from_slice(&len.to_be_bytes());
        c
    };
    assert!(decode_payload_chain(PayloadType::TsInitiator, &ts(MAX_TRAFFIC_SELECTORS)).is_ok());
    assert_eq!(
        decode_payload_chain(PayloadType::TsInitiator, &ts(MAX_TRAFFIC_SELECTORS + 1)),
        Err(DecodeError::TooMany {
            what: "traffic selectors",
            limit: MAX_TRAFFIC_SELECTORS
        })
    );
}

#[test]
fn cfg_attribute_and_delete_caps() {
    let cp = |n: usize| {
        let mut c = vec![0, 0, 0, 0, 1, 0, 0, 0];
        for _ in 0..n {
            c.extend_from_slice(&[0, 1, 0, 0]);
        }
        let len = c.len() as u16;
        c[2..4].copy_from_slice(&len.to_be_bytes());
        c
    };
    assert!(decode_payload_chain(PayloadType::Configuration, &cp(MAX_CFG_ATTRIBUTES)).is_ok());
    assert!(matches!(
        decode_payload_chain(PayloadType::Configuration, &cp(MAX_CFG_ATTRIBUTES + 1)),
        Err(DecodeError::TooMany { .. })
    ));
    let del = |n: usize| {
        let mut c = vec![0, 0, 0, 0, 3, 4];
        c.extend_from_slice(&(n as u16).to_be_bytes());
        c.resize(8 + 4 * n, 0xab);
        let len = c.len() as u16;
        c[2..4].copy_from_slice(&len.to_be_bytes());
        c
    };
    assert!(decode_payload_chain(PayloadType::Delete, &del(MAX_DELETE_SPIS)).is_ok());
    assert_eq!(
        decode_payload_chain(PayloadType::Delete, &del(MAX_DELETE_SPIS + 1)),
        Err(DecodeError::TooMany {
            what: "SPIs in a Delete payload",
            limit: MAX_DELETE_SPIS
        })
    );
}

#[test]
fn message_size_cap() {
    let big = vec![0u8; MAX_MESSAGE_LEN + 1];
    assert!(matches!(
        Message::decode(&big),
        Err(DecodeError::MessageTooLarge { length, .. }) if length == MAX_MESSAGE_LEN + 1
    ));
    // A header that claims more than the cap.
    let mut b = hex(HAND_SA_INIT_COOKIE);
    b[24..28].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        Message::decode(&b),
        Err(DecodeError::MessageTooLarge { .. })
    ));
    // Encoding refuses a message over the cap (payload-length overflow or total size).
    let huge = Payload::VendorId(vec![0; 65_532]);
    assert!(
        message(ExchangeType::Informational, vec![huge])
            .encode()
            .is_err()
    );
    let two = vec![
        Payload::VendorId(vec![0; 40_000]),
        Payload::VendorId(vec![0; 40_000]),
    ];
    let mut out = vec![1, 2, 3];
    assert!(
        message(ExchangeType::Informational, two)
            .encode_into(&mut out)
            .is_err()
    );
    assert_eq!(out, [1, 2, 3], "buffer restored after a failed encode");
}

#[test]
fn encode_refuses_what_decode_would_reject() {
    let bad = [
        Payload::Unknown {
            payload_type: 0,
            data: vec![],
        },
        Payload::Unknown {
            payload_type: 40,
            data: vec![0; 20],
        },
        Payload::Eap(vec![1, 2, 3]),
        Payload::Delete(Delete {
            protocol: ProtocolId::Ike,
            spis: vec![1],
        }),
        Payload::Delete(Delete {
            protocol: ProtocolId::None,
            spis: vec![],
        }),
        Payload::Notify(Notify {
            protocol: ProtocolId::Esp,
            spi: vec![0; 256],
            notify_type: NotifyType::RekeySa,
            data: vec![],
        }),
        Payload::TsInitiator(TrafficSelectors {
            selectors: vec![
                TrafficSelector {
                    ip_protocol: 0,
                    start_port: 0,
                    end_port: 0,
                    range: AddressRange::Other {
                        ts_type: 7,
                        data: vec![],
                    },
                };
                1
            ],
        }),
        Payload::Configuration(Configuration {
            cfg_type: CfgType::Request,
            attributes: vec![CfgAttribute {
                attr_type: CfgAttributeType::Unknown(0x8001),
                value: vec![],
            }],
        }),
    ];
    for p in bad {
        assert!(
            encode_payload_chain(std::slice::from_ref(&p)).is_err(),
            "{p:?}"
        );
    }
    let tv14 = Transform {
        id: TransformId::Encr(EncrId::AesCbc),
        attributes: vec![TransformAttribute::Tv {
            attr_type: 14,
            value: 128,
        }],
    };
    let sa = Payload::SecurityAssociation(SecurityAssociation {
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::Ike,
            spi: vec![],
            transforms: vec![tv14],
        }],
    });
    assert!(encode_payload_chain(&[sa]).is_err());
    let skf0 = Payload::EncryptedFragment(EncryptedFragment {
        inner_next: PayloadType::NoNextPayload,
        fragment_number: 0,
        total_fragments: 1,
        data: vec![],
    });
    assert!(message(ExchangeType::IkeAuth, vec![skf0]).encode().is_err());
}

#[test]
fn error_labels_are_distinct_and_texts_hold_no_payload_bytes() {
    let errors = [
        DecodeError::Truncated {
            what: "x",
            offset: 1,
            needed: 2,
            available: 1,
        },
        DecodeError::MessageTooLarge {
            length: 70_000,
            limit: MAX_MESSAGE_LEN,
        },
        DecodeError::InvalidMajorVersion { major: 1 },
        DecodeError::HeaderLengthMismatch {
            header_length: 1,
            datagram_length: 2,
        },
        DecodeError::PayloadTooShort {
            payload_type: 1,
            offset: 2,
            length: 3,
            minimum: 4,
        },
        DecodeError::PayloadOverrun {
            payload_type: 1,
            offset: 2,
            length: 3,
            available: 2,
        },
        DecodeError::UnsupportedCriticalPayload {
            payload_type: 1,
            offset: 2,
        },
        DecodeError::TooMany {
            what: "x",
            limit: 1,
        },
        DecodeError::NonceLength {
            offset: 1,
            length: 2,
        },
        DecodeError::BadLength {
            what: "x",
            offset: 1,
            length: 2,
        },
        DecodeError::BadLastSubstructure {
            what: "x",
            offset: 1,
            value: 2,
        },
        DecodeError::CountMismatch {
            what: "x",
            offset: 1,
            declared: 2,
            found: 3,
        },
        DecodeError::InvalidSpiSize {
            what: "x",
            offset: 1,
            protocol: 2,
            size: 3,
        },
        DecodeError::TrailingData {
            offset: 1,
            count: 2,
        },
        DecodeError::EncryptedNotLast { offset: 1 },
        DecodeError::NestedEncrypted { offset: 1 },
        DecodeError::InvalidFragmentNumber {
            offset: 1,
            number: 2,
            total: 1,
        },
    ];
    let kinds: std::collections::BTreeSet<_> = errors.iter().map(DecodeError::kind).collect();
    assert_eq!(kinds.len(), errors.len());
    for e in &errors {
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn transform_count_and_proposal_leftovers_are_precise() {
    let bytes = hex(WIRESHARK_SA_INIT);
    // Four transforms declared, three present, last one flagged "more": count mismatch.
    let mut b = bytes.clone();
    b[39] = 4;
    b[60] = 3;
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::CountMismatch {
            what: "transforms",
            offset: 32,
            declared: 4,
            found: 3
        })
    );
    // Two transforms declared, the second flagged last, a third left over in the proposal.
    let mut b = bytes.clone();
    b[39] = 2;
    b[52] = 0;
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::BadLength {
            what: "proposal",
            offset: 32,
            length: 36
        })
    );
    // A last-substructure value that is neither 0 nor 2.
    let mut b = bytes.clone();
    b[32] = 1;
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::BadLastSubstructure {
            what: "proposal",
            offset: 32,
            value: 1
        })
    );
}

#[test]
fn ike_delete_with_trailing_bytes() {
    // Delete(IKE, size 0, count 0) followed by 4 stray bytes inside the payload.
    let chain = [0, 0, 0, 12, 1, 0, 0, 0, 9, 9, 9, 9];
    assert_eq!(
        decode_payload_chain(PayloadType::Delete, &chain),
        Err(DecodeError::TrailingData {
            offset: 8,
            count: 4
        })
    );
}

#[test]
fn oversized_chain_is_refused() {
    let chain = vec![0u8; MAX_MESSAGE_LEN + 1];
    assert!(matches!(
        decode_payload_chain(PayloadType::VendorId, &chain),
        Err(DecodeError::MessageTooLarge { .. })
    ));
    let tlv = Transform {
        id: TransformId::Encr(EncrId::AesCbc),
        attributes: vec![TransformAttribute::Tlv {
            attr_type: 0x8001,
            value: vec![],
        }],
    };
    let sa = Payload::SecurityAssociation(SecurityAssociation {
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::Ike,
            spi: vec![],
            transforms: vec![tlv],
        }],
    });
    assert!(matches!(
        encode_payload_chain(&[sa]),
        Err(EncodeError::InvalidValue { .. })
    ));
}

#[test]
fn single_byte_mutations_never_panic_and_roundtrip_when_accepted() {
    let mut accepted = 0;
    let mut rejected = 0;
    for (_, bytes) in valid_messages() {
        for at in 0..bytes.len() {
            let orig = bytes[at];
            for v in [0, 0xff, orig ^ 0x01, orig ^ 0x80, orig.wrapping_add(1)] {
                let mut b = bytes.clone();
                b[at] = v;
                match Message::decode(&b) {
                    Ok(msg) => {
                        accepted += 1;
                        let enc = msg.encode().expect("accepted input encodes");
                        assert_eq!(Message::decode(&enc).as_ref(), Ok(&msg));
                    }
                    Err(e) => {
                        rejected += 1;
                        assert!(!e.kind().is_empty());
                    }
                }
            }
        }
    }
    assert!(
        accepted > 0 && rejected > 0,
        "{accepted} accepted, {rejected} rejected"
    );
}
