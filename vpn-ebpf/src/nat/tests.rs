//! Every rewrite is checked against a full recomputation of every checksum it touches.

use super::{checksum::full, parse::*, *};
use vpn_common::nat::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};

const HOST: [u8; 4] = [10, 1, 0, 10];
const FAR: [u8; 4] = [10, 2, 0, 10];
const PUBLIC: [u8; 4] = [198, 51, 100, 1];
const ROUTER_B: [u8; 4] = [198, 51, 100, 2];

fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let total = (20 + l4.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    let sum = full(&[&p]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(l4);
    p
}

fn pseudo(src: &[u8], dst: &[u8], proto: u8, len: usize) -> Vec<u8> {
    let mut h = src.to_vec();
    h.extend_from_slice(dst);
    h.extend_from_slice(&[0, proto]);
    h.extend_from_slice(&(len as u16).to_be_bytes());
    h
}

fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, flags: u8) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
    t.extend_from_slice(b"hello, tcp");
    let sum = full(&[&pseudo(&src, &dst, IPPROTO_TCP, t.len()), &t]);
    t[16..18].copy_from_slice(&sum.to_be_bytes());
    ipv4(IPPROTO_TCP, src, dst, &t)
}

fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, with_checksum: bool) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&[0, 0, 0, 0]);
    u.extend_from_slice(b"hello, udp!");
    let len = u.len() as u16;
    u[4..6].copy_from_slice(&len.to_be_bytes());
    if with_checksum {
        let mut sum = full(&[&pseudo(&src, &dst, IPPROTO_UDP, u.len()), &u]);
        if sum == 0 {
            sum = 0xffff;
        }
        u[6..8].copy_from_slice(&sum.to_be_bytes());
    }
    ipv4(IPPROTO_UDP, src, dst, &u)
}

fn icmp(src: [u8; 4], dst: [u8; 4], kind: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut i = vec![kind, code, 0, 0];
    i.extend_from_slice(&rest);
    i.extend_from_slice(body);
    let sum = full(&[&i]);
    i[2..4].copy_from_slice(&sum.to_be_bytes());
    ipv4(IPPROTO_ICMP, src, dst, &i)
}

fn echo(src: [u8; 4], dst: [u8; 4], kind: u8, id: u16) -> Vec<u8> {
    let [a, b] = id.to_be_bytes();
    icmp(src, dst, kind, 0, [a, b, 0, 7], b"ping payload")
}

/// Asserts that every checksum in an IPv4 packet (and in a quoted datagram) is right.
fn assert_valid(p: &[u8]) {
    let ihl = usize::from(p[0] & 0x0f) * 4;
    assert_eq!(full(&[&p[..ihl]]), 0, "IPv4 header checksum");
    let l4 = &p[ihl..];
    match p[9] {
        IPPROTO_TCP => assert_eq!(
            full(&[&pseudo(&p[12..16], &p[16..20], 6, l4.len()), l4]),
            0,
            "TCP"
        ),
        // A zero UDP checksum means none (RFC 768): nothing to check.
        IPPROTO_UDP if l4[6..8] != [0, 0] => assert_eq!(
            full(&[&pseudo(&p[12..16], &p[16..20], 17, l4.len()), l4]),
            0,
            "UDP"
        ),
        IPPROTO_ICMP => {
            assert_eq!(full(&[l4]), 0, "ICMP checksum");
            if matches!(l4[0], ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED) {
                let quoted = &l4[8..];
                let qihl = usize::from(quoted[0] & 0x0f) * 4;
                assert_eq!(full(&[&quoted[..qihl]]), 0, "quoted IPv4 header checksum");
                let qtotal = usize::from(u16::from_be_bytes([quoted[2], quoted[3]]));
                if qtotal == quoted.len() {
                    // The whole datagram is quoted: its transport checksum can be checked too.
                    assert_valid(quoted);
                }
            }
        }
        _ => {}
    }
}

fn public(port: u16) -> Endpoint {
    Endpoint {
        addr: PUBLIC,
        port: port.to_be_bytes(),
    }
}

fn host(port: u16) -> Endpoint {
    Endpoint {
        addr: HOST,
        port: port.to_be_bytes(),
    }
}

#[test]
fn tcp_source_and_back() {
    let mut p = tcp(HOST, 40000, FAR, 7, 0x02);
    assert_valid(&p);
    let parsed = parse(&p[..], 0).unwrap();
    assert_eq!(parsed.transport, Transport::Tcp);
    assert_eq!(parsed.tcp_flags, 0x02);
    assert_eq!(parsed.key.src_port, 40000u16.to_be_bytes());
    rewrite(&mut p[..], &parsed, Side::Source, public(61000)).unwrap();
    assert_valid(&p);
    assert_eq!(p[12..16], PUBLIC);
    assert_eq!(p[20..22], 61000u16.to_be_bytes());

    let mut reply = tcp(FAR, 7, PUBLIC, 61000, 0x12);
    let parsed = parse(&reply[..], 0).unwrap();
    assert_eq!(
        parsed.key,
        translated_key(
            &FlowKey::new(
                IPPROTO_TCP,
                HOST,
                40000u16.to_be_bytes(),
                FAR,
                7u16.to_be_bytes()
            ),
            public(61000)
        )
        .reversed()
    );
    rewrite(&mut reply[..], &parsed, Side::Destination, host(40000)).unwrap();
    assert_valid(&reply);
    assert_eq!(reply[16..20], HOST);
    assert_eq!(reply[22..24], 40000u16.to_be_bytes());
}

#[test]
fn udp_checksums_including_the_zero_rule() {
    let mut p = udp(HOST, 40000, FAR, 53, true);
    let parsed = parse(&p[..], 0).unwrap();
    rewrite(&mut p[..], &parsed, Side::Source, public(62000)).unwrap();
    assert_valid(&p);

    // RFC 768: no checksum stays no checksum.
    let mut none = udp(HOST, 40000, FAR, 53, false);
    let parsed = parse(&none[..], 0).unwrap();
    rewrite(&mut none[..], &parsed, Side::Source, public(62000)).unwrap();
    assert_eq!(none[26..28], [0, 0]);
    assert_eq!(full(&[&none[..20]]), 0);

    // Whatever the new port, a computed checksum is never sent as zero, and stays right.
    let original = udp(HOST, 40000, FAR, 53, true);
    let parsed = parse(&original[..], 0).unwrap();
    let mut saw_all_ones = false;
    for port in 1..=u16::MAX {
        let mut q = original.clone();
        rewrite(&mut q[..], &parsed, Side::Source, public(port)).unwrap();
        assert_ne!(q[26..28], [0, 0], "port {port}");
        saw_all_ones |= q[26..28] == [0xff, 0xff];
        assert_valid(&q);
    }
    assert!(
        saw_all_ones,
        "some port must make the sum zero, sent as 0xffff"
    );
}

#[test]
fn icmp_echo_identifier_is_the_port() {
    let mut req = echo(HOST, FAR, ICMP_ECHO_REQUEST, 0x1234);
    let parsed = parse(&req[..], 0).unwrap();
    assert_eq!(parsed.transport, Transport::IcmpEchoRequest);
    assert_eq!(parsed.key.src_port, [0x12, 0x34]);
    assert_eq!(parsed.key.dst_port, [0, 0]);
    rewrite(&mut req[..], &parsed, Side::Source, public(63001)).unwrap();
    assert_valid(&req);
    assert_eq!(req[24..26], 63001u16.to_be_bytes());

    let mut reply = echo(FAR, PUBLIC, ICMP_ECHO_REPLY, 63001);
    let parsed = parse(&reply[..], 0).unwrap();
    assert_eq!(parsed.transport, Transport::IcmpEchoReply);
    let original = FlowKey::new(IPPROTO_ICMP, HOST, [0x12, 0x34], FAR, [0, 0]);
    assert_eq!(
        parsed.key,
        translated_key(&original, public(63001)).reversed()
    );
    rewrite(&mut reply[..], &parsed, Side::Destination, host(0x1234)).unwrap();
    assert_valid(&reply);
    assert_eq!(reply[16..20], HOST);
    assert_eq!(reply[24..26], [0x12, 0x34]);
}

/// A port unreachable from the far host about a translated UDP datagram, quoted whole.
#[test]
fn inbound_port_unreachable_quoting_udp() {
    let sent = udp(PUBLIC, 61000, FAR, 9, true);
    let mut err = icmp(FAR, PUBLIC, ICMP_DEST_UNREACH, 3, [0; 4], &sent);
    assert_valid(&err);
    let parsed = parse(&err[..], 0).unwrap();
    assert_eq!(parsed.transport, Transport::IcmpError, "{parsed:?}");
    let q = parsed.quoted;
    assert_eq!(
        q.key,
        FlowKey::new(
            IPPROTO_UDP,
            PUBLIC,
            61000u16.to_be_bytes(),
            FAR,
            9u16.to_be_bytes()
        )
    );
    rewrite_icmp_error(&mut err[..], &parsed, Side::Destination, host(40000)).unwrap();
    assert_valid(&err);
    assert_eq!(err[16..20], HOST, "outer destination");
    let quoted = &err[28..];
    assert_eq!(quoted[12..16], HOST, "quoted source");
    assert_eq!(quoted[20..22], 40000u16.to_be_bytes(), "quoted source port");
    // What the originator's kernel matches the error against: its own datagram.
    let original = udp(HOST, 40000, FAR, 9, true);
    assert_eq!(quoted, &original[..]);
}

/// A time exceeded from a router on the way, quoting only the first 64 bits of a TCP segment:
/// the ports change, the (unquoted) TCP checksum is not touched.
#[test]
fn inbound_time_exceeded_quoting_eight_bytes_of_tcp() {
    let sent = tcp(PUBLIC, 61000, FAR, 7, 0x02);
    let mut err = icmp(ROUTER_B, PUBLIC, ICMP_TIME_EXCEEDED, 0, [0; 4], &sent[..28]);
    let parsed = parse(&err[..], 0).unwrap();
    assert_eq!(parsed.transport, Transport::IcmpError);
    rewrite_icmp_error(&mut err[..], &parsed, Side::Destination, host(40000)).unwrap();
    assert_valid(&err);
    assert_eq!(err.len(), 20 + 8 + 28);
    let quoted = &err[28..];
    assert_eq!(quoted[12..16], HOST);
    assert_eq!(quoted[20..22], 40000u16.to_be_bytes());
    assert_eq!(quoted[22..24], 7u16.to_be_bytes());
}

/// traceroute with ping: the time exceeded quotes the translated echo request.
#[test]
fn inbound_time_exceeded_quoting_an_echo_request() {
    let sent = echo(PUBLIC, FAR, ICMP_ECHO_REQUEST, 63001);
    let mut err = icmp(ROUTER_B, PUBLIC, ICMP_TIME_EXCEEDED, 0, [0; 4], &sent);
    let parsed = parse(&err[..], 0).unwrap();
    assert_eq!(parsed.transport, Transport::IcmpError);
    let q = parsed.quoted;
    assert_eq!(q.key.src_port, 63001u16.to_be_bytes());
    rewrite_icmp_error(&mut err[..], &parsed, Side::Destination, host(0x1234)).unwrap();
    assert_valid(&err);
    assert_eq!(&err[28..], &echo(HOST, FAR, ICMP_ECHO_REQUEST, 0x1234)[..]);
}

/// The inside host answers a reverse-translated datagram with an error: it leaves with the
/// public address outside and in the quote.
#[test]
fn outbound_error_about_a_reply() {
    let delivered = udp(FAR, 53, HOST, 40000, true);
    let mut err = icmp(HOST, FAR, ICMP_DEST_UNREACH, 3, [0; 4], &delivered);
    let parsed = parse(&err[..], 0).unwrap();
    assert_eq!(parsed.transport, Transport::IcmpError);
    let q = parsed.quoted;
    let original = q.key.reversed();
    assert_eq!(
        original,
        FlowKey::new(
            IPPROTO_UDP,
            HOST,
            40000u16.to_be_bytes(),
            FAR,
            53u16.to_be_bytes()
        )
    );
    rewrite_icmp_error(&mut err[..], &parsed, Side::Source, public(61000)).unwrap();
    assert_valid(&err);
    assert_eq!(err[12..16], PUBLIC);
    assert_eq!(&err[28..], &udp(FAR, 53, PUBLIC, 61000, true)[..]);
}

#[test]
fn what_cannot_be_tracked_is_reported_not_rewritten() {
    // A non-first fragment: addresses only.
    let mut frag = udp(HOST, 40000, FAR, 53, true);
    frag[6] = 0x00;
    frag[7] = 0x10;
    let parsed = parse(&frag[..], 0).unwrap();
    assert!(parsed.ip.fragment);
    assert_eq!(parsed.transport, Transport::Other);
    let before = frag.clone();
    assert_eq!(
        rewrite(&mut frag[..], &parsed, Side::Source, public(1)),
        Err(RewriteError::Unsupported)
    );
    assert_eq!(frag, before);

    // GRE: no ports.
    let gre = ipv4(47, HOST, FAR, &[0; 8]);
    assert_eq!(parse(&gre[..], 0).unwrap().transport, Transport::Other);

    // An ICMP error quoting something other than TCP, UDP or echo.
    let mut err = icmp(FAR, PUBLIC, ICMP_DEST_UNREACH, 2, [0; 4], &gre);
    let parsed = parse(&err[..], 0).unwrap();
    assert_eq!(parsed.transport, Transport::Other);
    assert_eq!(
        rewrite_icmp_error(&mut err[..], &parsed, Side::Destination, host(1)),
        Err(RewriteError::Unsupported)
    );
}

#[test]
fn truncated_and_inconsistent_packets_never_parse_and_never_panic() {
    let packets = [
        tcp(HOST, 40000, FAR, 7, 0x10),
        udp(HOST, 40000, FAR, 53, true),
        echo(HOST, FAR, ICMP_ECHO_REQUEST, 1),
        icmp(
            FAR,
            PUBLIC,
            ICMP_DEST_UNREACH,
            3,
            [0; 4],
            &udp(PUBLIC, 1, FAR, 2, true),
        ),
    ];
    for full_packet in &packets {
        for len in 0..full_packet.len() {
            assert_eq!(parse(&full_packet[..len], 0), None, "cut to {len}");
        }
        // Every header length nibble and total length, on the whole frame.
        for ihl in 0..16u8 {
            let mut p = full_packet.clone();
            p[0] = 0x40 | ihl;
            if let Some(parsed) = parse(&p[..], 0) {
                let _ = rewrite(&mut p[..], &parsed, Side::Source, public(2));
                let _ = rewrite_icmp_error(&mut p[..], &parsed, Side::Destination, host(2));
            }
        }
        // Garbage after the IPv4 header: parse may accept it, rewriting must not panic.
        let mut x: u32 = 7;
        for _ in 0..200 {
            let mut p = full_packet.clone();
            for b in p[20..].iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            if let Some(parsed) = parse(&p[..], 0) {
                let _ = rewrite(&mut p[..], &parsed, Side::Source, public(2));
                let _ = rewrite_icmp_error(&mut p[..], &parsed, Side::Destination, host(2));
            }
        }
    }
}

#[test]
fn rules_match_source_and_destination_prefixes() {
    let rule = NatRuleEntry {
        from: [10, 1, 0, 0],
        from_len: 24,
        to: [10, 2, 0, 0],
        to_len: 16,
        valid: 1,
        ..Default::default()
    };
    assert!(rule_matches(&rule, HOST, FAR));
    assert!(rule_matches(&rule, HOST, [10, 2, 255, 1]));
    assert!(!rule_matches(&rule, [10, 1, 1, 10], FAR));
    assert!(!rule_matches(&rule, HOST, [10, 3, 0, 1]));
    assert!(!rule_matches(&NatRuleEntry { valid: 0, ..rule }, HOST, FAR));
    assert!(in_prefix([1, 2, 3, 4], [0; 4], 0));
    assert!(in_prefix([1, 2, 3, 4], [1, 2, 3, 4], 32));
    assert!(!in_prefix([1, 2, 3, 5], [1, 2, 3, 4], 32));
}

#[test]
fn port_candidates_stay_in_range_and_off_ike() {
    let key = FlowKey::new(IPPROTO_UDP, HOST, [1, 2], FAR, [0, 53]);
    let h = flow_hash(&key, 1);
    let mut seen = std::collections::BTreeSet::new();
    for attempt in 0..PORT_PROBES {
        let port = port_candidate(h, attempt, 61000, 65535).unwrap();
        assert!((61000..=65535).contains(&port));
        seen.insert(port);
    }
    assert_eq!(seen.len(), PORT_PROBES as usize, "distinct candidates");
    for attempt in 0..2000 {
        if let Some(port) = port_candidate(attempt, 0, 400, 5000) {
            assert!(port != 500 && port != 4500 && (400..=5000).contains(&port));
        }
    }
    assert_eq!(port_candidate(h, 0, 2, 1), None, "empty range");
    assert_eq!(
        port_candidate(h, 0, 0, 10),
        None,
        "port 0 is never a range start"
    );
    assert_ne!(
        flow_hash(&key, 1),
        flow_hash(
            &FlowKey {
                src_port: [1, 3],
                ..key
            },
            1
        )
    );
}

#[test]
fn a_transport_header_cut_short_is_truncated_not_translated() {
    for (proto, len) in [(IPPROTO_TCP, 19), (IPPROTO_UDP, 7), (IPPROTO_ICMP, 4)] {
        let mut p = ipv4(proto, HOST, FAR, &vec![0x11; len]);
        let parsed = parse(&p[..], 0).unwrap();
        assert_eq!(parsed.transport, Transport::Truncated, "protocol {proto}");
        assert_eq!((parsed.key.src_addr, parsed.key.dst_addr), (HOST, FAR));
        let before = p.clone();
        assert_eq!(
            rewrite(&mut p[..], &parsed, Side::Source, public(1)),
            Err(RewriteError::Unsupported)
        );
        assert_eq!(p, before);
    }
}
