//! Encapsulate/decapsulate round trips and hostile-input behaviour: every key size, ESN on and
//! off, UDP encapsulation on and off; single-byte tampering; every truncation; pseudo-random
//! inputs; padding, sequence exhaustion, outer-header policy, configuration errors and
//! redaction of secrets in `Debug`.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::{XorShift, inner_ipv4_udp, params};
use vpn_esp::aead::{AeadBackend, GcmAead};
use vpn_esp::outer::{
    self, IPV4_HEADER_LEN, PROTO_ESP, PROTO_UDP, UDP_HEADER_LEN, decapsulate_packet,
    encapsulate_packet, encapsulate_packet_in_place, internet_checksum, parse_ipv4, parse_udp_esp,
};
use vpn_esp::replay::SeqCounter;
use vpn_esp::transform::{
    ICV_LEN, NH_IPV4, NH_IPV6, NH_NO_NEXT, PAYLOAD_OFFSET, SealInput, encapsulate_in_place,
    esp_len, seal_esp_in_place,
};
use vpn_esp::{
    AeadKey, ConfigError, DfPolicy, EspError, InboundSa, OutboundSa, OuterPolicy, SaParams, Salt,
    SeqNum, Spi, TunnelEndpoints, UdpEncap, decapsulate, encapsulate,
};

const KEY_LENS: [usize; 3] = [16, 24, 32];

fn pair(key_len: usize, esn: bool, udp: bool) -> (OutboundSa, InboundSa) {
    (
        OutboundSa::new(params(key_len, esn, udp, 1024)),
        InboundSa::new(params(key_len, esn, udp, 1024)),
    )
}

/// One valid ESP packet (SPI..ICV) and the inner packet it carries.
fn one_esp(key_len: usize, esn: bool, inner_len: usize) -> (Vec<u8>, Vec<u8>, InboundSa) {
    let (o, i) = pair(key_len, esn, false);
    let inner = inner_ipv4_udp(inner_len, 0, false, 0x5a);
    let mut out = vec![0u8; 2048];
    let n = encapsulate(&o, &inner, &mut out).unwrap();
    out.truncate(n);
    (out, inner, i)
}

#[test]
fn esp_round_trip_every_key_size_esn_and_length() {
    for key_len in KEY_LENS {
        for esn in [false, true] {
            let (o, i) = pair(key_len, esn, false);
            for (k, len) in (28..=1500).step_by(37).enumerate() {
                let inner = inner_ipv4_udp(len, 0, false, k as u8);
                let mut buf = vec![0u8; 1600];
                let n = encapsulate(&o, &inner, &mut buf).unwrap();
                assert_eq!(n, esp_len(len));
                assert_eq!(n % 4, 0, "RFC 4303 2.4 alignment");
                assert_eq!(&buf[..4], &0x1234_5678u32.to_be_bytes());
                let seq = (k + 1) as u64;
                assert_eq!(&buf[4..8], &(seq as u32).to_be_bytes());
                // IV = the 64-bit sequence number.
                assert_eq!(&buf[8..16], &seq.to_be_bytes());
                // The plaintext is not visible.
                assert_ne!(&buf[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 28], &inner[..28]);
                let d = decapsulate(&i, &mut buf[..n]).unwrap();
                assert_eq!(&buf[d.inner.clone()], &inner[..]);
                assert_eq!(d.next_header, NH_IPV4);
                assert_eq!(d.seq, SeqNum(seq));
            }
        }
    }
}

#[test]
fn ipv6_inner_gets_next_header_41() {
    let (o, i) = pair(32, false, false);
    let mut inner = vec![0u8; 60];
    inner[0] = 0x60;
    let mut buf = vec![0u8; 200];
    let n = encapsulate(&o, &inner, &mut buf).unwrap();
    let d = decapsulate(&i, &mut buf[..n]).unwrap();
    assert_eq!(d.next_header, NH_IPV6);
    assert_eq!(&buf[d.inner], &inner[..]);
}

#[test]
fn esn_round_trip_across_the_32_bit_boundary() {
    for key_len in KEY_LENS {
        let (mut o, mut i) = pair(key_len, true, false);
        let start = u64::from(u32::MAX) - 3;
        o.set_seq_counter(SeqCounter::resume_after(true, start));
        i.set_window(vpn_esp::replay::ReplayWindow::resume_at(
            vpn_esp::ReplayWindowSize::DEFAULT,
            true,
            SeqNum(start),
        ));
        for k in 1..=8u64 {
            let inner = inner_ipv4_udp(100, 0, false, k as u8);
            let mut buf = vec![0u8; 300];
            let n = encapsulate(&o, &inner, &mut buf).unwrap();
            let d = decapsulate(&i, &mut buf[..n]).unwrap();
            assert_eq!(d.seq, SeqNum(start + k));
            assert_eq!(&buf[d.inner], &inner[..]);
        }
        assert_eq!(i.window().top(), SeqNum((1u64 << 32) + 4));
    }
}

#[test]
fn esn_mismatch_between_ends_fails_the_icv() {
    // Sender uses ESN, receiver does not (or vice versa): AAD differs, so BadIcv.
    for (tx, rx) in [(true, false), (false, true)] {
        let o = OutboundSa::new(params(16, tx, false, 64));
        let i = InboundSa::new(params(16, rx, false, 64));
        let inner = inner_ipv4_udp(64, 0, false, 1);
        let mut buf = vec![0u8; 200];
        let n = encapsulate(&o, &inner, &mut buf).unwrap();
        assert_eq!(decapsulate(&i, &mut buf[..n]), Err(EspError::BadIcv));
    }
}

#[test]
fn full_packet_round_trip_with_and_without_udp() {
    for key_len in KEY_LENS {
        for esn in [false, true] {
            for udp in [false, true] {
                let (o, i) = pair(key_len, esn, udp);
                for len in [28, 64, 512, 1400] {
                    let inner = inner_ipv4_udp(len, 0xb9, true, 0x33);
                    let mut pkt = vec![0u8; 1600];
                    let n = encapsulate_packet(&o, &inner, &mut pkt).unwrap();
                    let hdr = IPV4_HEADER_LEN + if udp { UDP_HEADER_LEN } else { 0 };
                    assert_eq!(n, hdr + esp_len(len));
                    let ip = parse_ipv4(&pkt[..n]).unwrap();
                    assert_eq!(ip.total_len, n);
                    assert_eq!(ip.protocol, if udp { PROTO_UDP } else { PROTO_ESP });
                    assert_eq!(ip.src, common::LOCAL);
                    assert_eq!(ip.dst, common::REMOTE);
                    assert_eq!(ip.ttl, 64);
                    assert_eq!(ip.tos, 0xb8, "DSCP copied, ECN not");
                    assert!(ip.df, "DF copied from inner");
                    if udp {
                        let u = parse_udp_esp(&pkt[IPV4_HEADER_LEN..n]).unwrap();
                        assert_eq!((u.src_port, u.dst_port), (4500, 4500));
                        assert_eq!(&pkt[IPV4_HEADER_LEN + 6..IPV4_HEADER_LEN + 8], &[0, 0]);
                    }
                    let d = decapsulate_packet(&i, &mut pkt[..n]).unwrap();
                    assert_eq!(&pkt[d.inner.clone()], &inner[..]);
                    assert_eq!(d.outer_src, common::LOCAL);
                    assert_eq!(d.src_port, if udp { Some(4500) } else { None });
                }
            }
        }
    }
}

#[test]
fn in_place_packet_encapsulation_matches_copying_one() {
    let a = OutboundSa::new(params(32, false, true, 64));
    let b = OutboundSa::new(params(32, false, true, 64));
    let inner = inner_ipv4_udp(300, 0, false, 9);
    let mut x = vec![0u8; 512];
    let n1 = encapsulate_packet(&a, &inner, &mut x).unwrap();
    let mut y = vec![0u8; 512];
    let off = outer::outer_overhead(&b) + PAYLOAD_OFFSET;
    y[off..off + inner.len()].copy_from_slice(&inner);
    let n2 = encapsulate_packet_in_place(&b, &mut y, inner.len()).unwrap();
    assert_eq!(x[..n1], y[..n2]);
}

#[test]
fn outer_df_policy_and_ip_id() {
    for (policy, inner_df, expect) in [
        (DfPolicy::Copy, true, true),
        (DfPolicy::Copy, false, false),
        (DfPolicy::Set, false, true),
        (DfPolicy::Clear, true, false),
    ] {
        let mut p = params(16, false, false, 64);
        p.outer = OuterPolicy::new(33, policy).unwrap();
        let o = OutboundSa::new(p);
        let inner = inner_ipv4_udp(100, 0x03, inner_df, 0);
        let mut pkt = vec![0u8; 300];
        let n = encapsulate_packet(&o, &inner, &mut pkt).unwrap();
        let ip = parse_ipv4(&pkt[..n]).unwrap();
        assert_eq!(ip.df, expect, "{policy:?} inner_df={inner_df}");
        assert_eq!(ip.ttl, 33);
        assert_eq!(ip.tos, 0, "ECN bits are not copied");
        let id = u16::from_be_bytes([pkt[4], pkt[5]]);
        assert_eq!(id == 0, expect, "IP ID is 0 only for DF packets");
        assert_eq!(internet_checksum(&pkt[..20]), 0);
    }
}

#[test]
fn ipv6_endpoints_are_refused_for_the_outer_header() {
    let mut p = params(16, false, false, 64);
    p.tunnel = TunnelEndpoints::new(
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    )
    .unwrap();
    let o = OutboundSa::new(p);
    let inner = inner_ipv4_udp(100, 0, false, 0);
    let mut pkt = vec![0u8; 300];
    assert_eq!(
        encapsulate_packet(&o, &inner, &mut pkt),
        Err(EspError::UnsupportedFamily)
    );
    assert_eq!(o.last_seq(), SeqNum(0), "no sequence number consumed");
}

#[test]
fn tampering_any_byte_fails_and_leaves_the_window_unchanged() {
    for key_len in KEY_LENS {
        for esn in [false, true] {
            let (pkt, inner, i) = one_esp(key_len, esn, 100);
            let before = format!("{:?}", i.window());
            for pos in 0..pkt.len() {
                let mut bad = pkt.clone();
                bad[pos] ^= 0x80;
                let r = decapsulate(&i, &mut bad);
                let expect = if pos < 4 {
                    EspError::WrongSpi
                } else {
                    EspError::BadIcv
                };
                assert_eq!(r, Err(expect), "key {key_len} esn {esn} byte {pos}");
                assert_eq!(format!("{:?}", i.window()), before);
            }
            // The genuine packet still goes through afterwards.
            let mut good = pkt.clone();
            let d = decapsulate(&i, &mut good).unwrap();
            assert_eq!(&good[d.inner], &inner[..]);
        }
    }
}

#[test]
fn every_truncation_is_an_error_never_a_panic() {
    for key_len in KEY_LENS {
        let (pkt, _, i) = one_esp(key_len, false, 200);
        for len in 0..pkt.len() {
            let mut t = pkt[..len].to_vec();
            assert!(decapsulate(&i, &mut t).is_err(), "len {len}");
        }
        assert_eq!(i.window().top(), SeqNum(0));
        // Whole outer packets, raw and UDP.
        for udp in [false, true] {
            let (o, i) = pair(key_len, false, udp);
            let inner = inner_ipv4_udp(200, 0, false, 1);
            let mut full = vec![0u8; 400];
            let n = encapsulate_packet(&o, &inner, &mut full).unwrap();
            for len in 0..n {
                let mut t = full[..len].to_vec();
                assert!(
                    decapsulate_packet(&i, &mut t).is_err(),
                    "udp {udp} len {len}"
                );
            }
            assert_eq!(i.window().top(), SeqNum(0));
        }
    }
}

#[test]
fn pseudo_random_inputs_never_panic() {
    let mut rng = XorShift(0x0dd_ba11_cafe_f00d);
    for key_len in KEY_LENS {
        let (o, i) = pair(key_len, true, false);
        let (ou, iu) = pair(key_len, false, true);
        let mut buf = vec![0u8; 2048];
        for round in 0..3000 {
            // 1. Pure noise, sometimes with our SPI and a small sequence number in front.
            let len = rng.below(300) as usize;
            let mut noise = vec![0u8; len];
            rng.fill(&mut noise);
            if round % 2 == 0 && len >= 8 {
                noise[..4].copy_from_slice(&0x1234_5678u32.to_be_bytes());
                noise[4..8].copy_from_slice(&(rng.below(5000) as u32).to_be_bytes());
            }
            assert!(decapsulate(&i, &mut noise.clone()).is_err());
            // As an outer packet: make the IPv4 header plausible half the time.
            if round % 2 == 1 && len >= 20 {
                noise[0] = 0x45;
                noise[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                noise[6..8].copy_from_slice(&[0, 0]);
                noise[9] = if rng.below(2) == 0 { 17 } else { 50 };
                noise[10..12].copy_from_slice(&[0, 0]);
                let c = internet_checksum(&noise[..20]);
                noise[10..12].copy_from_slice(&c.to_be_bytes());
            }
            assert!(decapsulate_packet(&i, &mut noise.clone()).is_err());
            assert!(decapsulate_packet(&iu, &mut noise.clone()).is_err());
            // 2. A valid packet with random damage: flips, truncation or extension.
            let inner = inner_ipv4_udp(28 + rng.below(400) as usize, 0, false, round as u8);
            let n = encapsulate_packet(&ou, &inner, &mut buf).unwrap();
            let mut pkt = buf[..n].to_vec();
            let esp_start = IPV4_HEADER_LEN + UDP_HEADER_LEN;
            match rng.below(4) {
                0 => {
                    // Flips inside the ESP packet: always an error.
                    for _ in 0..1 + rng.below(4) {
                        let p = esp_start + rng.below((n - esp_start) as u64) as usize;
                        pkt[p] ^= 1 << rng.below(8);
                    }
                }
                1 => {
                    // Flips anywhere: the UDP ports and checksum are not integrity-protected
                    // (RFC 3948), so this may legitimately succeed; it must not panic.
                    for _ in 0..1 + rng.below(4) {
                        let p = rng.below(n as u64) as usize;
                        pkt[p] ^= 1 << rng.below(8);
                    }
                    let _ = decapsulate_packet(&iu, &mut pkt);
                    continue;
                }
                2 => pkt.truncate(rng.below(n as u64) as usize),
                _ => {
                    let extra = 1 + rng.below(16) as usize;
                    pkt.extend((0..extra).map(|_| rng.next_u64() as u8));
                    // Keep the IP total length consistent so the ESP layer sees the extension.
                    let tl = pkt.len() as u16;
                    pkt[2..4].copy_from_slice(&tl.to_be_bytes());
                    pkt[10..12].copy_from_slice(&[0, 0]);
                    let c = internet_checksum(&pkt[..20]);
                    pkt[10..12].copy_from_slice(&c.to_be_bytes());
                    let ul = (pkt.len() - 20) as u16;
                    pkt[24..26].copy_from_slice(&ul.to_be_bytes());
                }
            }
            assert!(decapsulate_packet(&iu, &mut pkt).is_err(), "round {round}");
            // 3. The undamaged stream still works (the window was never disturbed).
            let n = encapsulate(&o, &inner, &mut buf).unwrap();
            assert!(decapsulate(&i, &mut buf[..n]).is_ok());
        }
    }
}

/// Build an ESP packet whose plaintext trailer we choose (valid ICV, arbitrary padding).
fn esp_with_trailer(key_len: usize, seq: u32, plaintext: &[u8]) -> Vec<u8> {
    let p = params(key_len, false, false, 64);
    let aead = GcmAead::new(&p.key);
    let mut pkt = Vec::new();
    pkt.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    pkt.extend_from_slice(&seq.to_be_bytes());
    let iv = u64::from(seq).to_be_bytes();
    pkt.extend_from_slice(&iv);
    let mut nonce = [0u8; 12];
    nonce[..4].copy_from_slice(p.salt.expose());
    nonce[4..].copy_from_slice(&iv);
    let mut aad = [0u8; 8];
    aad[..4].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    aad[4..].copy_from_slice(&seq.to_be_bytes());
    let mut ct = plaintext.to_vec();
    let tag = aead.seal_in_place(&nonce, &aad, &mut ct).unwrap();
    pkt.extend_from_slice(&ct);
    pkt.extend_from_slice(&tag);
    pkt
}

#[test]
fn bad_padding_is_rejected_after_the_icv_and_not_committed() {
    for key_len in KEY_LENS {
        let i = InboundSa::new(params(key_len, false, false, 64));
        let inner = inner_ipv4_udp(28, 0, false, 0);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                [&inner[..], &[1, 3, 2, 4]].concat(),
                "non-monotonic padding",
            ),
            ([&inner[..], &[0, 0, 2, 4]].concat(), "zero padding bytes"),
            ([&inner[..], &[2, 1, 2, 4]].concat(), "reversed padding"),
            (
                [&inner[..], &[0xaa, 0xbb, 250, 4]].concat(),
                "pad length beyond payload",
            ),
        ];
        for (pt, what) in cases {
            assert_eq!(pt.len() % 4, 0);
            let mut pkt = esp_with_trailer(key_len, 7, &pt);
            assert_eq!(
                decapsulate(&i, &mut pkt),
                Err(EspError::BadPadding),
                "{what}"
            );
            assert_eq!(i.window().top(), SeqNum(0), "{what}: window must not move");
        }
        // The same number with correct padding is then accepted.
        let pt = [&inner[..], &[1, 2, 2, 4]].concat();
        let mut pkt = esp_with_trailer(key_len, 7, &pt);
        let d = decapsulate(&i, &mut pkt).unwrap();
        assert_eq!(&pkt[d.inner], &inner[..]);
        assert_eq!(i.window().top(), SeqNum(7));
    }
}

#[test]
fn unaligned_ciphertext_is_bad_length() {
    let (pkt, _, i) = one_esp(16, false, 100);
    let mut longer = pkt.clone();
    longer.push(0);
    assert_eq!(decapsulate(&i, &mut longer), Err(EspError::BadLength));
    assert_eq!(
        decapsulate(&i, &mut pkt[..pkt.len() - 1].to_vec()),
        Err(EspError::BadLength)
    );
}

#[test]
fn dummy_packets_report_next_header_59() {
    let p = params(32, false, false, 64);
    let aead = GcmAead::new(&p.key);
    let mut buf = vec![0u8; 64];
    let input = SealInput {
        spi: p.spi,
        seq: SeqNum(1),
        esn: false,
        iv: 1u64.to_be_bytes(),
        next_header: NH_NO_NEXT,
    };
    let n = seal_esp_in_place(&aead, &p.salt, &input, &mut buf, 0).unwrap();
    let i = InboundSa::new(params(32, false, false, 64));
    let d = decapsulate(&i, &mut buf[..n]).unwrap();
    assert_eq!(d.next_header, NH_NO_NEXT);
    assert!(d.inner.is_empty());
}

#[test]
fn replayed_and_old_packets_are_dropped_by_decapsulate() {
    let (o, _) = pair(16, false, false);
    let i = InboundSa::new(params(16, false, false, 64));
    let inner = inner_ipv4_udp(40, 0, false, 0);
    let mut pkts = Vec::new();
    for _ in 0..100 {
        let mut b = vec![0u8; 200];
        let n = encapsulate(&o, &inner, &mut b).unwrap();
        b.truncate(n);
        pkts.push(b);
    }
    assert!(decapsulate(&i, &mut pkts[99].clone()).is_ok());
    assert_eq!(
        decapsulate(&i, &mut pkts[99].clone()),
        Err(EspError::Replayed)
    );
    assert!(decapsulate(&i, &mut pkts[50].clone()).is_ok());
    assert_eq!(
        decapsulate(&i, &mut pkts[10].clone()),
        Err(EspError::TooOld)
    );
}

#[test]
fn encapsulate_errors() {
    let (o, _) = pair(16, false, false);
    let inner = inner_ipv4_udp(100, 0, false, 0);
    let mut small = vec![0u8; esp_len(100) - 1];
    assert_eq!(
        encapsulate(&o, &inner, &mut small),
        Err(EspError::BufferTooSmall)
    );
    assert_eq!(
        o.last_seq(),
        SeqNum(0),
        "a failed encapsulation consumes no number"
    );
    let mut out = vec![0u8; 300];
    assert_eq!(encapsulate(&o, &[], &mut out), Err(EspError::InvalidInner));
    assert_eq!(
        encapsulate(&o, &[0x45; 10], &mut out),
        Err(EspError::InvalidInner)
    );
    assert_eq!(
        encapsulate(&o, &[0x15; 60], &mut out),
        Err(EspError::InvalidInner)
    );
    let mut small = vec![0u8; 40];
    assert_eq!(
        encapsulate_in_place(&o, &mut small, 100),
        Err(EspError::BufferTooSmall)
    );
    assert_eq!(
        encapsulate_packet(&o, &inner, &mut out[..100]),
        Err(EspError::BufferTooSmall)
    );
    let big = inner_ipv4_udp(65535, 0, false, 0);
    let mut huge = vec![0u8; 70_000];
    assert_eq!(
        encapsulate_packet(&o, &big, &mut huge),
        Err(EspError::TooBig)
    );
    assert_eq!(o.last_seq(), SeqNum(0));
}

#[test]
fn sequence_exhaustion_stops_encapsulation() {
    for esn in [false, true] {
        let (mut o, _) = pair(16, esn, false);
        let max = if esn { u64::MAX } else { u64::from(u32::MAX) };
        o.set_seq_counter(SeqCounter::resume_after(esn, max - 1));
        let inner = inner_ipv4_udp(60, 0, false, 0);
        let mut out = vec![0u8; 200];
        assert!(encapsulate(&o, &inner, &mut out).is_ok());
        assert_eq!(o.last_seq(), SeqNum(max));
        assert_eq!(o.seq_remaining(), 0);
        assert_eq!(
            encapsulate(&o, &inner, &mut out),
            Err(EspError::SeqExhausted)
        );
        assert_eq!(
            encapsulate_packet(&o, &inner, &mut out),
            Err(EspError::SeqExhausted)
        );
    }
}

#[test]
fn wrong_spi_and_wrong_key_and_wrong_salt() {
    let (pkt, _, _) = one_esp(16, false, 100);
    let mut p = params(16, false, false, 64);
    p.spi = Spi::new(0x1234_5679).unwrap();
    assert_eq!(
        decapsulate(&InboundSa::new(p), &mut pkt.clone()),
        Err(EspError::WrongSpi)
    );
    let mut p = params(16, false, false, 64);
    p.key = AeadKey::new(&[9u8; 16]).unwrap();
    assert_eq!(
        decapsulate(&InboundSa::new(p), &mut pkt.clone()),
        Err(EspError::BadIcv)
    );
    let mut p = params(16, false, false, 64);
    p.salt = Salt::new([0, 0, 0, 0]);
    assert_eq!(
        decapsulate(&InboundSa::new(p), &mut pkt.clone()),
        Err(EspError::BadIcv)
    );
}

#[test]
fn udp_classification_rfc3948() {
    let mut ka = [0u8; 9];
    ka[4..6].copy_from_slice(&9u16.to_be_bytes());
    ka[8] = 0xff;
    assert_eq!(parse_udp_esp(&ka), Err(EspError::NatKeepalive));
    let mut ike = [0u8; 40];
    ike[4..6].copy_from_slice(&40u16.to_be_bytes());
    assert_eq!(parse_udp_esp(&ike), Err(EspError::NonEspMarker));
    let mut bad = [0u8; 20];
    bad[4..6].copy_from_slice(&21u16.to_be_bytes());
    assert_eq!(parse_udp_esp(&bad), Err(EspError::BadUdpLength));
    bad[4..6].copy_from_slice(&7u16.to_be_bytes());
    assert_eq!(parse_udp_esp(&bad), Err(EspError::BadUdpLength));
    assert_eq!(parse_udp_esp(&bad[..7]), Err(EspError::Truncated));
}

#[test]
fn outer_packet_mismatches() {
    // Raw ESP to an SA that expects UDP, and the reverse, are NotEsp.
    for udp in [false, true] {
        let (o, _) = pair(16, false, udp);
        let i = InboundSa::new(params(16, false, !udp, 64));
        let inner = inner_ipv4_udp(60, 0, false, 0);
        let mut pkt = vec![0u8; 200];
        let n = encapsulate_packet(&o, &inner, &mut pkt).unwrap();
        assert_eq!(decapsulate_packet(&i, &mut pkt[..n]), Err(EspError::NotEsp));
    }
    let (o, i) = pair(16, false, false);
    let inner = inner_ipv4_udp(60, 0, false, 0);
    let mut pkt = vec![0u8; 200];
    let n = encapsulate_packet(&o, &inner, &mut pkt).unwrap();
    let mut bad = pkt[..n].to_vec();
    bad[8] ^= 1; // TTL changed without fixing the checksum
    assert_eq!(
        decapsulate_packet(&i, &mut bad),
        Err(EspError::BadIpChecksum)
    );
    let mut frag = pkt[..n].to_vec();
    frag[6] |= 0x20; // MF
    frag[10..12].copy_from_slice(&[0, 0]);
    let c = internet_checksum(&frag[..20]);
    frag[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(decapsulate_packet(&i, &mut frag), Err(EspError::Fragmented));
    let mut v6 = pkt[..n].to_vec();
    v6[0] = 0x65;
    assert_eq!(decapsulate_packet(&i, &mut v6), Err(EspError::BadIpHeader));
    // Link-layer padding after the IP total length is ignored.
    let mut padded = pkt[..n].to_vec();
    padded.extend_from_slice(&[0xee; 6]);
    let d = decapsulate_packet(&i, &mut padded).unwrap();
    assert_eq!(&padded[d.inner], &inner[..]);
}

#[test]
fn config_errors_are_typed() {
    assert_eq!(Spi::new(0), Err(ConfigError::ZeroSpi));
    assert_eq!(Spi::new(1).unwrap().get(), 1);
    for bad in [0usize, 8, 15, 17, 31, 33, 64] {
        assert_eq!(
            AeadKey::new(&vec![0u8; bad]).unwrap_err(),
            ConfigError::BadKeyLength(bad)
        );
    }
    let (k, s) = AeadKey::from_keymat(&[7u8; 36]).unwrap();
    assert_eq!(k.size(), vpn_esp::KeySize::Aes256);
    assert_eq!(s.expose(), &[7, 7, 7, 7]);
    assert!(AeadKey::from_keymat(&[0u8; 3]).is_err());
    assert!(AeadKey::from_keymat(&[0u8; 16]).is_err());
    assert_eq!(
        TunnelEndpoints::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        ),
        Err(ConfigError::MixedFamilies)
    );
    assert_eq!(UdpEncap::new(0, 4500), Err(ConfigError::ZeroPort));
    assert_eq!(UdpEncap::new(4500, 0), Err(ConfigError::ZeroPort));
    assert_eq!(
        OuterPolicy::new(0, DfPolicy::Copy),
        Err(ConfigError::ZeroTtl)
    );
    assert_eq!(
        vpn_esp::ReplayWindowSize::new(4096),
        Err(ConfigError::BadReplayWindow(4096))
    );
}

#[test]
fn debug_output_never_shows_key_or_salt() {
    let key_bytes: Vec<u8> = (0xa0..0xc0).collect();
    let salt = [0xf1, 0xf2, 0xf3, 0xf4];
    let p = SaParams::new(
        Spi::new(42).unwrap(),
        AeadKey::new(&key_bytes).unwrap(),
        Salt::new(salt),
        TunnelEndpoints::new(
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        )
        .unwrap(),
    );
    let texts = [
        format!("{p:?}"),
        format!("{p:#?}"),
        format!("{:?}", p.key),
        format!("{:?}", p.salt),
        format!("{:?}", GcmAead::new(&p.key)),
        format!("{:?}", OutboundSa::new(p.clone())),
        format!("{:?}", InboundSa::new(p.clone())),
    ];
    for t in &texts {
        assert!(t.contains("redacted") || !t.contains("Key"), "{t}");
        for needle in ["a0", "A0", "160", "f1", "241", "0xa0"] {
            // 160 = 0xa0 (first key byte), 241 = 0xf1 (first salt byte).
            assert!(!t.to_lowercase().contains(&format!("{needle}, ")), "{t}");
        }
        assert!(!t.contains("160, 161"), "{t}");
        assert!(!t.contains("241, 242"), "{t}");
        assert!(!t.contains("a0a1"), "{t}");
    }
    assert!(texts[0].contains("redacted"));
    // Errors carry no data at all.
    for e in EspError::ALL {
        assert_eq!(EspError::ALL[e.index()], e);
        assert!(!e.to_string().is_empty());
        assert!(!e.as_str().is_empty());
    }
}

#[test]
fn icv_len_is_16() {
    assert_eq!(ICV_LEN, 16);
    assert_eq!(esp_len(0), 8 + 8 + 2 + 2 + 16);
    assert_eq!(esp_len(2), 8 + 8 + 2 + 2 + 16);
    assert_eq!(esp_len(3), 8 + 8 + 3 + 3 + 2 + 16);
    assert_eq!(esp_len(4), 8 + 8 + 4 + 2 + 2 + 16);
}
