//! Host tests of the classifier over hand-built frames.
//!
//! Frames are built layer by layer ([`udp`], [`ipv4`], [`ipv6`], [`Frame`]); every length field is
//! computed from what follows it unless a test overrides it to craft an inconsistent frame. The wire
//! constants are spelled out here rather than taken from the implementation, so a wrong constant
//! there cannot hide itself.

use vpn_common::PacketClass::{
    self, Esp, EspInUdp, Fragment, Ike, IkeNatT, Malformed, NatKeepalive, NonIp, Plain,
};

use super::classify;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_LLDP: u16 = 0x88cc;
const TPID_8021Q: u16 = 0x8100;
const TPID_8021AD: u16 = 0x88a8;

const PROTO_HOPOPTS: u8 = 0;
const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ROUTING: u8 = 43;
const PROTO_FRAGMENT: u8 = 44;
const PROTO_ESP: u8 = 50;
const PROTO_AH: u8 = 51;
const PROTO_ICMPV6: u8 = 58;
const PROTO_NONE: u8 = 59;
const PROTO_DSTOPTS: u8 = 60;

const ETH_HLEN: usize = 14;
const IPV4_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;
const UDP_HLEN: usize = 8;
const IKE_HLEN: usize = 28;
const ETH_MIN_FRAME: usize = 60;

// ---------------------------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------------------------

/// An IKE message of `len` bytes: an IKEv2 IKE_SA_INIT header (cut short if `len` < 28), then
/// filler.
fn ike(len: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(len.max(IKE_HLEN));
    m.extend_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes()); // initiator SPI
    m.extend_from_slice(&[0; 8]); // responder SPI, zero in IKE_SA_INIT
    m.extend_from_slice(&[33, 0x20, 34, 0x08]); // next payload SA, v2.0, IKE_SA_INIT, initiator
    m.extend_from_slice(&0u32.to_be_bytes()); // message ID
    m.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
    m.resize(len, 0x5a);
    m
}

/// IKE behind the four-byte non-ESP marker, as sent on port 4500.
fn natt_ike(ike_len: usize) -> Vec<u8> {
    let mut m = vec![0; 4];
    m.extend(ike(ike_len));
    m
}

/// An ESP packet of `len` bytes (cut short if `len` < 8): SPI, sequence number, "ciphertext".
fn esp_bytes(spi: u32, len: usize) -> Vec<u8> {
    let mut m = spi.to_be_bytes().to_vec();
    m.extend_from_slice(&1u32.to_be_bytes());
    m.resize(len, 0xc3);
    m
}

// ---------------------------------------------------------------------------------------------
// Transport layer
// ---------------------------------------------------------------------------------------------

/// What an IP header carries: its protocol number and bytes, transport header included.
#[derive(Clone, Debug)]
struct L4 {
    proto: u8,
    bytes: Vec<u8>,
}

/// A UDP datagram to `dst_port`; its length field counts header and payload.
fn udp(dst_port: u16, payload: &[u8]) -> L4 {
    let len = u16::try_from(UDP_HLEN + payload.len()).unwrap();
    let mut bytes = 49152u16.to_be_bytes().to_vec();
    bytes.extend_from_slice(&dst_port.to_be_bytes());
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(&[0xab, 0xcd]); // checksum: the classifier does not look at it
    bytes.extend_from_slice(payload);
    L4 {
        proto: PROTO_UDP,
        bytes,
    }
}

/// ESP as IP protocol 50.
fn esp(spi: u32, len: usize) -> L4 {
    L4 {
        proto: PROTO_ESP,
        bytes: esp_bytes(spi, len),
    }
}

/// A TCP SYN to `dst_port`.
fn tcp(dst_port: u16) -> L4 {
    let mut bytes = 49153u16.to_be_bytes().to_vec();
    bytes.extend_from_slice(&dst_port.to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]); // sequence, acknowledgement
    bytes.extend_from_slice(&[0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]); // offset 5, SYN, window
    L4 {
        proto: PROTO_TCP,
        bytes,
    }
}

/// An echo request (ICMP or ICMPv6, by `proto`) with eight bytes of data.
fn echo_request(proto: u8) -> L4 {
    let kind = if proto == PROTO_ICMPV6 { 128 } else { 8 };
    let mut bytes = vec![kind, 0, 0, 0, 0x12, 0x34, 0, 1];
    bytes.extend_from_slice(b"pingdata");
    L4 { proto, bytes }
}

/// Arbitrary bytes under any protocol number, e.g. the data of a non-first fragment.
fn raw(proto: u8, bytes: &[u8]) -> L4 {
    L4 {
        proto,
        bytes: bytes.to_vec(),
    }
}

impl L4 {
    /// Overrides the UDP length field.
    fn udp_len(mut self, len: u16) -> Self {
        assert_eq!(self.proto, PROTO_UDP, "udp_len on a non-UDP payload");
        self.bytes[4..6].copy_from_slice(&len.to_be_bytes());
        self
    }

    /// Keeps the first `len` bytes, as the first fragment of the packet carries them; length
    /// fields inside (the UDP length) still count the whole datagram.
    fn truncated(mut self, len: usize) -> Self {
        assert!(len <= self.bytes.len());
        self.bytes.truncate(len);
        self
    }
}

// ---------------------------------------------------------------------------------------------
// IPv4
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Ipv4 {
    version: u8,
    ihl: Option<u8>,
    options: Vec<u8>,
    total_len: Option<u16>,
    flags_fragment: u16,
    proto: u8,
    body: Vec<u8>,
}

/// An IPv4 packet carrying `l4`; IHL and total length follow from options and body.
fn ipv4(l4: L4) -> Ipv4 {
    Ipv4 {
        version: 4,
        ihl: None,
        options: Vec::new(),
        total_len: None,
        flags_fragment: 0,
        proto: l4.proto,
        body: l4.bytes,
    }
}

impl Ipv4 {
    /// `words` 32-bit words of options: NOPs closed by End of Option List.
    fn options(self, words: usize) -> Self {
        let mut options = vec![1; words * 4];
        if let Some(last) = options.last_mut() {
            *last = 0;
        }
        self.option_bytes(&options)
    }

    /// Raw option bytes (the classifier skips options without parsing them), e.g. a decoy put
    /// where the transport header would be if the IHL were ignored.
    fn option_bytes(mut self, bytes: &[u8]) -> Self {
        assert!(bytes.len().is_multiple_of(4) && bytes.len() <= 40);
        self.options = bytes.to_vec();
        self
    }

    /// Overrides the IHL field (32-bit words).
    fn ihl(mut self, ihl: u8) -> Self {
        assert!(ihl <= 15);
        self.ihl = Some(ihl);
        self
    }

    /// Overrides the version field.
    fn version(mut self, version: u8) -> Self {
        assert!(version <= 15);
        self.version = version;
        self
    }

    /// Overrides the total length field.
    fn total_len(mut self, len: u16) -> Self {
        self.total_len = Some(len);
        self
    }

    /// Fragment offset (in 8-byte units) and More Fragments flag; keeps Don't Fragment.
    fn fragment(mut self, offset: u16, more: bool) -> Self {
        assert!(offset <= 0x1fff);
        self.flags_fragment = (self.flags_fragment & 0x4000) | offset;
        if more {
            self.flags_fragment |= 0x2000;
        }
        self
    }

    /// Sets Don't Fragment.
    fn dont_fragment(mut self) -> Self {
        self.flags_fragment |= 0x4000;
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let hlen = IPV4_HLEN + self.options.len();
        let ihl = self.ihl.unwrap_or(u8::try_from(hlen / 4).unwrap());
        let total_len = self
            .total_len
            .unwrap_or(u16::try_from(hlen + self.body.len()).unwrap());
        let mut b = vec![(self.version << 4) | ihl, 0];
        b.extend_from_slice(&total_len.to_be_bytes());
        b.extend_from_slice(&0x1c46u16.to_be_bytes()); // identification
        b.extend_from_slice(&self.flags_fragment.to_be_bytes());
        b.extend_from_slice(&[64, self.proto, 0, 0]); // TTL, protocol, checksum (not checked)
        b.extend_from_slice(&[192, 0, 2, 1]);
        b.extend_from_slice(&[198, 51, 100, 2]);
        b.extend_from_slice(&self.options);
        b.extend_from_slice(&self.body);
        b
    }

    fn frame(self) -> Frame {
        self.into()
    }
}

// ---------------------------------------------------------------------------------------------
// IPv6
// ---------------------------------------------------------------------------------------------

/// One IPv6 extension header; its first byte (next header) is filled in when the packet is built.
#[derive(Clone, Debug)]
struct Ext {
    proto: u8,
    bytes: Vec<u8>,
}

/// Hop-by-hop options of `(units + 1) * 8` bytes (one PadN option).
fn hop_by_hop(units: u8) -> Ext {
    options_header(PROTO_HOPOPTS, units)
}

/// Destination options of `(units + 1) * 8` bytes (one PadN option).
fn dest_opts(units: u8) -> Ext {
    options_header(PROTO_DSTOPTS, units)
}

fn options_header(proto: u8, units: u8) -> Ext {
    let len = (usize::from(units) + 1) * 8;
    let mut bytes = vec![0, units, 1, u8::try_from(len - 4).unwrap()];
    bytes.resize(len, 0);
    Ext { proto, bytes }
}

/// A routing header of `(units + 1) * 8` bytes, experimental type 253 with no segments left.
fn routing(units: u8) -> Ext {
    let len = (usize::from(units) + 1) * 8;
    let mut bytes = vec![0, units, 253, 0];
    bytes.resize(len, 0);
    Ext {
        proto: PROTO_ROUTING,
        bytes,
    }
}

/// A fragment header: offset in 8-byte units, M flag.
fn frag_header(offset: u16, more: bool) -> Ext {
    assert!(offset <= 0x1fff);
    let field = (offset << 3) | u16::from(more);
    let mut bytes = vec![0, 0];
    bytes.extend_from_slice(&field.to_be_bytes());
    bytes.extend_from_slice(&0xdead_beefu32.to_be_bytes()); // identification
    Ext {
        proto: PROTO_FRAGMENT,
        bytes,
    }
}

/// An authentication header with a 12-byte ICV (24 bytes, length field 4).
fn auth_header() -> Ext {
    let mut bytes = vec![0, 4, 0, 0];
    bytes.extend_from_slice(&0x0000_1001u32.to_be_bytes()); // SPI
    bytes.extend_from_slice(&7u32.to_be_bytes()); // sequence number
    bytes.resize(24, 0x77); // ICV
    Ext {
        proto: PROTO_AH,
        bytes,
    }
}

impl Ext {
    /// Overrides the header's length field (not the bytes it actually has).
    fn claim_len(mut self, field: u8) -> Self {
        assert_ne!(
            self.proto, PROTO_FRAGMENT,
            "the fragment header has no length field"
        );
        self.bytes[1] = field;
        self
    }
}

#[derive(Clone, Debug)]
struct Ipv6 {
    version: u8,
    payload_len: Option<u16>,
    exts: Vec<Ext>,
    l4: L4,
}

/// An IPv6 packet carrying `l4`; add extension headers with [`Ipv6::ext`].
fn ipv6(l4: L4) -> Ipv6 {
    Ipv6 {
        version: 6,
        payload_len: None,
        exts: Vec::new(),
        l4,
    }
}

impl Ipv6 {
    /// Appends an extension header after those added before (and before the transport header).
    fn ext(mut self, ext: Ext) -> Self {
        self.exts.push(ext);
        self
    }

    /// Overrides the payload length field.
    fn payload_len(mut self, len: u16) -> Self {
        self.payload_len = Some(len);
        self
    }

    /// Overrides the version field.
    fn version(mut self, version: u8) -> Self {
        assert!(version <= 15);
        self.version = version;
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut payload = Vec::new();
        for (i, ext) in self.exts.iter().enumerate() {
            let next = self.exts.get(i + 1).map_or(self.l4.proto, |e| e.proto);
            payload.push(next);
            payload.extend_from_slice(&ext.bytes[1..]);
        }
        payload.extend_from_slice(&self.l4.bytes);
        let first = self.exts.first().map_or(self.l4.proto, |e| e.proto);
        let payload_len = self
            .payload_len
            .unwrap_or(u16::try_from(payload.len()).unwrap());

        let mut b = vec![self.version << 4, 0, 0, 0];
        b.extend_from_slice(&payload_len.to_be_bytes());
        b.extend_from_slice(&[first, 64]); // next header, hop limit
        b.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        b.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        b.extend_from_slice(&payload);
        b
    }

    fn frame(self) -> Frame {
        self.into()
    }
}

// ---------------------------------------------------------------------------------------------
// Ethernet
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Frame {
    /// (TPID, VLAN ID), outermost first.
    tags: Vec<(u16, u16)>,
    ethertype: u16,
    l3: Vec<u8>,
    /// Whether `l3` is an IP packet whose length fields delimit it.
    is_ip: bool,
    /// Bytes after the packet: Ethernet padding, or whatever a driver leaves there.
    trailer: Vec<u8>,
}

impl From<Ipv4> for Frame {
    fn from(ip: Ipv4) -> Self {
        Frame::new(ETHERTYPE_IPV4, ip.bytes(), true)
    }
}

impl From<Ipv6> for Frame {
    fn from(ip: Ipv6) -> Self {
        Frame::new(ETHERTYPE_IPV6, ip.bytes(), true)
    }
}

/// An ARP request (unpadded: 42 bytes).
fn arp() -> Frame {
    let mut body = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1]; // Ethernet, IPv4, request
    body.extend_from_slice(&[2, 0, 0, 0, 0, 1, 192, 0, 2, 1]);
    body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 192, 0, 2, 2]);
    Frame::new(ETHERTYPE_ARP, body, false)
}

impl Frame {
    fn new(ethertype: u16, l3: Vec<u8>, is_ip: bool) -> Self {
        Frame {
            tags: Vec::new(),
            ethertype,
            l3,
            is_ip,
            trailer: Vec::new(),
        }
    }

    /// Adds a VLAN tag inside those added before: the first call adds the outermost tag.
    fn vlan(mut self, tpid: u16, vid: u16) -> Self {
        self.tags.push((tpid, vid));
        self
    }

    /// Pads with zeros up to `len` bytes (as a NIC pads to the 60-byte minimum).
    fn pad_to(mut self, len: usize) -> Self {
        let missing = len.saturating_sub(self.len());
        self.trailer.resize(self.trailer.len() + missing, 0);
        self
    }

    /// Appends `bytes` after the packet.
    fn trailer(mut self, bytes: &[u8]) -> Self {
        self.trailer.extend_from_slice(bytes);
        self
    }

    fn l2_len(&self) -> usize {
        ETH_HLEN + 4 * self.tags.len()
    }

    fn len(&self) -> usize {
        self.l2_len() + self.l3.len() + self.trailer.len()
    }

    /// How much of a well-formed frame the classifier must see to decide: everything up to the
    /// end of the IP packet, or the Ethernet header alone for other protocols. What follows is
    /// padding, which no header counts.
    fn needed_len(&self) -> usize {
        if self.is_ip {
            self.l2_len() + self.l3.len()
        } else {
            self.l2_len()
        }
    }

    fn build(&self) -> Vec<u8> {
        let mut b = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02];
        for &(tpid, vid) in &self.tags {
            b.extend_from_slice(&tpid.to_be_bytes());
            b.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
        }
        b.extend_from_slice(&self.ethertype.to_be_bytes());
        b.extend_from_slice(&self.l3);
        b.extend_from_slice(&self.trailer);
        assert_eq!(b.len(), self.len());
        b
    }
}

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

fn class_of(bytes: &[u8]) -> PacketClass {
    classify(bytes)
}

/// The frame in hex for failure messages, cut after 160 bytes.
fn hex(bytes: &[u8]) -> String {
    let mut s: String = bytes.iter().take(160).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > 160 {
        s.push_str("...");
    }
    s
}

#[track_caller]
fn assert_class(frame: impl Into<Frame>, want: PacketClass) {
    let bytes = frame.into().build();
    assert_bytes_class(&bytes, want);
}

#[track_caller]
fn assert_bytes_class(bytes: &[u8], want: PacketClass) {
    let got = class_of(bytes);
    assert_eq!(got, want, "{} byte frame: {}", bytes.len(), hex(bytes));
}

/// A small xorshift64 generator: deterministic, no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform enough in `0..n` for fuzzing; `n` > 0.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The builder itself
// ---------------------------------------------------------------------------------------------

#[test]
fn builder_lays_out_headers_and_lengths() {
    let frame = ipv4(udp(4500, &[0xff]))
        .frame()
        .vlan(TPID_8021Q, 7)
        .pad_to(60);
    let b = frame.build();
    assert_eq!(b.len(), 60);
    assert_eq!(b[12..14], [0x81, 0x00]);
    assert_eq!(b[14..16], [0x00, 0x07]);
    assert_eq!(b[16..18], [0x08, 0x00]);
    assert_eq!(b[18], 0x45);
    assert_eq!(b[20..22], 29u16.to_be_bytes()); // 20 + 8 + 1
    assert_eq!(b[18 + 9], PROTO_UDP);
    assert_eq!(b[38..40], 49152u16.to_be_bytes());
    assert_eq!(b[40..42], 4500u16.to_be_bytes());
    assert_eq!(b[42..44], 9u16.to_be_bytes());
    assert_eq!(b[46], 0xff);
    assert!(b[47..].iter().all(|&x| x == 0));
    assert_eq!(frame.needed_len(), 47);

    let b = ipv6(udp(500, &ike(28)))
        .ext(hop_by_hop(1))
        .ext(frag_header(3, true))
        .frame()
        .build();
    assert_eq!(b[14] >> 4, 6);
    assert_eq!(b[18..20], (16u16 + 8 + 8 + 28).to_be_bytes());
    assert_eq!(b[20], PROTO_HOPOPTS);
    assert_eq!(b[54..56], [PROTO_FRAGMENT, 1]);
    assert_eq!(b[70..72], [PROTO_UDP, 0]);
    assert_eq!(b[72..74], [0, (3 << 3) | 1]);
    assert_eq!(b[78..80], 49152u16.to_be_bytes());
    assert_eq!(b[80..82], 500u16.to_be_bytes());
    assert_eq!(b[82..84], 36u16.to_be_bytes());
    assert_eq!(b.len(), ETH_HLEN + IPV6_HLEN + 16 + 8 + UDP_HLEN + 28);
}

// ---------------------------------------------------------------------------------------------
// IKE, NAT-T and ESP over IPv4
// ---------------------------------------------------------------------------------------------

#[test]
fn ike_on_port_500_needs_a_full_ike_header() {
    assert_class(ipv4(udp(500, &ike(IKE_HLEN))), Ike);
    assert_class(ipv4(udp(500, &ike(1200))), Ike);
    for len in [0, 1, 4, 8, IKE_HLEN - 1] {
        assert_class(ipv4(udp(500, &ike(len))), Malformed);
        // Padding must not count as IKE bytes.
        assert_class(ipv4(udp(500, &ike(len))).frame().pad_to(100), Malformed);
    }
}

#[test]
fn ike_behind_the_non_esp_marker_on_port_4500() {
    assert_class(ipv4(udp(4500, &natt_ike(IKE_HLEN))), IkeNatT);
    assert_class(ipv4(udp(4500, &natt_ike(800))), IkeNatT);
    for len in [0, 1, 4, IKE_HLEN - 1] {
        assert_class(ipv4(udp(4500, &natt_ike(len))), Malformed);
        assert_class(
            ipv4(udp(4500, &natt_ike(len))).frame().pad_to(100),
            Malformed,
        );
    }
}

#[test]
fn esp_in_udp_on_port_4500_needs_spi_and_sequence_number() {
    for len in [8, 9, 16, 100, 1400] {
        assert_class(ipv4(udp(4500, &esp_bytes(0x0000_0100, len))), EspInUdp);
    }
    // Any non-zero first word is an SPI, including ones that start with a zero byte or 0xff.
    for spi in [1, 0x00ff_ffff, 0xff00_0000, 0xffff_ffff] {
        assert_class(ipv4(udp(4500, &esp_bytes(spi, 8))), EspInUdp);
    }
    for len in 4..8 {
        assert_class(ipv4(udp(4500, &esp_bytes(0x0000_0100, len))), Malformed);
        assert_class(
            ipv4(udp(4500, &esp_bytes(0x0000_0100, len)))
                .frame()
                .pad_to(100),
            Malformed,
        );
    }
    // Two or three bytes are neither a keepalive nor a marker nor an SPI.
    for len in [2, 3] {
        assert_class(ipv4(udp(4500, &[0xff; 3][..len])), Malformed);
        assert_class(
            ipv4(udp(4500, &[0xff; 3][..len])).frame().pad_to(100),
            Malformed,
        );
    }
}

#[test]
fn zero_first_word_on_port_4500_is_ike_or_nothing() {
    // SPI 0 is reserved, so a zero first word is the marker; with less than an IKE header behind
    // it the datagram is neither IKE nor ESP.
    for len in [4, 8, 12, 31] {
        assert_class(ipv4(udp(4500, &vec![0; len])), Malformed);
    }
    assert_class(ipv4(udp(4500, &[0; 32])), IkeNatT);
}

#[test]
fn nat_keepalive_is_a_single_ff_byte_whatever_the_frame_size() {
    assert_class(ipv4(udp(4500, &[0xff])), NatKeepalive);
    // On the wire the 43-byte frame is padded to 60 bytes; lengths come from the headers.
    let padded = ipv4(udp(4500, &[0xff])).frame().pad_to(ETH_MIN_FRAME);
    assert_eq!(padded.build().len(), ETH_MIN_FRAME);
    assert_class(padded, NatKeepalive);
    // Padding that is not zero must not be read as payload either.
    assert_class(
        ipv4(udp(4500, &[0xff])).frame().trailer(&[0xff; 17]),
        NatKeepalive,
    );
    assert_class(
        ipv4(udp(4500, &[0xff])).frame().trailer(&esp_bytes(7, 64)),
        NatKeepalive,
    );
}

#[test]
fn single_byte_other_than_ff_on_port_4500_is_malformed() {
    for byte in [0x00, 0x01, 0x7f, 0xfe] {
        assert_class(ipv4(udp(4500, &[byte])), Malformed);
        assert_class(ipv4(udp(4500, &[byte])).frame().pad_to(60), Malformed);
    }
}

#[test]
fn empty_udp_on_port_4500_is_malformed() {
    assert_class(ipv4(udp(4500, &[])), Malformed);
    // Even when the padding after it looks like a keepalive, an ESP header or a marker.
    for trailer in [&[0xff][..], &[0xff; 16], &esp_bytes(9, 16), &natt_ike(40)] {
        assert_class(ipv4(udp(4500, &[])).frame().trailer(trailer), Malformed);
    }
}

#[test]
fn raw_esp_needs_a_non_zero_spi_and_eight_bytes() {
    assert_class(ipv4(esp(0x0000_1234, 8)), Esp);
    assert_class(ipv4(esp(0xffff_ffff, 1400)), Esp);
    assert_class(ipv4(esp(1, 8)).frame().pad_to(60), Esp);
    assert_class(ipv4(esp(0, 8)), Malformed);
    assert_class(ipv4(esp(0, 100)), Malformed);
    for len in 0..8 {
        assert_class(ipv4(esp(0x0000_1234, len)), Malformed);
        // The SPI may be readable from the padding; the IP length still says there is none.
        assert_class(
            ipv4(esp(0x0000_1234, len)).frame().trailer(&[0x11; 20]),
            Malformed,
        );
    }
}

#[test]
fn other_ip_traffic_is_plain() {
    assert_class(ipv4(udp(53, b"\x12\x34\x01\x00\x00\x01")), Plain);
    assert_class(ipv4(udp(501, &ike(100))), Plain);
    assert_class(ipv4(udp(4501, &[0xff])), Plain);
    // Port 4500 and 500 only mean IKE/NAT-T on UDP.
    assert_class(ipv4(tcp(500)), Plain);
    assert_class(ipv4(tcp(4500)), Plain);
    assert_class(ipv4(tcp(443)), Plain);
    assert_class(ipv4(echo_request(PROTO_ICMP)), Plain);
    assert_class(ipv4(raw(PROTO_AH, &[0; 24])), Plain);
    assert_class(ipv4(raw(PROTO_NONE, &[])), Plain);
    // Empty UDP to other ports is fine.
    assert_class(ipv4(udp(53, &[])), Plain);
}

#[test]
fn non_ip_ethertypes_are_non_ip() {
    assert_class(arp(), NonIp);
    assert_class(arp().pad_to(60), NonIp);
    assert_class(
        Frame::new(ETHERTYPE_LLDP, vec![0x02, 0x07, 0x04], false),
        NonIp,
    );
    // The Ethernet header alone is enough to tell.
    assert_bytes_class(&arp().build()[..ETH_HLEN], NonIp);
}

#[test]
fn frames_shorter_than_an_ethernet_header_are_malformed() {
    let frame = ipv4(udp(500, &ike(28))).frame().build();
    for len in 0..ETH_HLEN {
        assert_bytes_class(&frame[..len], Malformed);
        assert_bytes_class(&arp().build()[..len], Malformed);
    }
    // An IP ethertype with no IP header after it.
    assert_bytes_class(&frame[..ETH_HLEN], Malformed);
}

// ---------------------------------------------------------------------------------------------
// IPv4 header fields
// ---------------------------------------------------------------------------------------------

#[test]
fn ipv4_options_shift_the_transport_header() {
    for ihl in 6..=15u8 {
        let words = usize::from(ihl) - 5;
        let cases = [
            (udp(500, &ike(28)), Ike),
            (udp(4500, &natt_ike(60)), IkeNatT),
            (udp(4500, &esp_bytes(0x200, 64)), EspInUdp),
            (udp(4500, &[0xff]), NatKeepalive),
            (esp(0x300, 32), Esp),
            (udp(53, &[1, 2, 3]), Plain),
            (tcp(443), Plain),
            (udp(500, &ike(27)), Malformed),
        ];
        for (l4, want) in cases {
            let packet = ipv4(l4).options(words);
            assert_eq!(packet.bytes()[0], 0x40 | ihl);
            assert_class(packet.clone(), want);
            assert_class(packet.frame().pad_to(60), want);
        }
    }
}

#[test]
fn ipv4_options_are_not_read_as_the_transport_header() {
    // A keepalive-shaped UDP header where the transport header would be without options.
    let mut decoy = udp(4500, &[0xff]).bytes;
    decoy.resize(12, 0);
    assert_class(ipv4(udp(53, &[0; 12])).option_bytes(&decoy), Plain);
    let mut decoy = udp(500, &[]).bytes;
    decoy.resize(8, 0);
    assert_class(ipv4(udp(4500, &[0xff])).option_bytes(&decoy), NatKeepalive);
    assert_class(ipv4(esp(0x44, 16)).option_bytes(&decoy), Esp);
}

#[test]
fn ipv4_header_length_below_five_words_is_malformed() {
    for ihl in 0..5 {
        assert_class(ipv4(udp(500, &ike(28))).ihl(ihl), Malformed);
        assert_class(
            ipv4(udp(4500, &[0xff])).ihl(ihl).frame().pad_to(60),
            Malformed,
        );
    }
}

#[test]
fn ip_version_must_match_the_ethertype() {
    for version in [0, 1, 5, 6, 7, 15] {
        assert_class(ipv4(udp(500, &ike(28))).version(version), Malformed);
    }
    for version in [0, 4, 5, 7, 15] {
        assert_class(ipv6(udp(500, &ike(28))).version(version), Malformed);
    }
    // A well-formed packet of the other version under the wrong ethertype.
    let mut frame = ipv6(udp(500, &ike(28))).frame();
    frame.ethertype = ETHERTYPE_IPV4;
    assert_class(frame, Malformed);
    let mut frame = ipv4(udp(500, &ike(28))).frame();
    frame.ethertype = ETHERTYPE_IPV6;
    assert_class(frame, Malformed);
}

#[test]
fn ipv4_total_length_past_the_frame_is_malformed() {
    let packet = ipv4(udp(500, &ike(28)));
    let actual = u16::try_from(packet.bytes().len()).unwrap();
    assert_class(packet.clone().total_len(actual), Ike);
    assert_class(packet.clone().total_len(actual + 1), Malformed);
    assert_class(packet.clone().total_len(u16::MAX), Malformed);
    // Padding up to the claimed length makes it fit; what the UDP header claims still decides.
    assert_class(packet.total_len(actual + 4).frame().pad_to(100), Ike);
}

#[test]
fn ipv4_total_length_below_the_header_length_is_malformed() {
    for total in [0, 1, 19] {
        assert_class(ipv4(udp(4500, &[0xff])).total_len(total), Malformed);
    }
    // With options: 24-byte header, total length 20..23.
    for total in 20..24 {
        assert_class(
            ipv4(udp(4500, &[0xff])).options(1).total_len(total),
            Malformed,
        );
    }
    // Exactly the header and nothing else: no room for a UDP header.
    assert_class(ipv4(udp(4500, &[0xff])).total_len(20), Malformed);
    assert_class(ipv4(raw(PROTO_TCP, &[])), Plain);
}

#[test]
fn udp_length_must_fit_between_eight_and_the_ip_payload() {
    for len in 0..8 {
        assert_class(ipv4(udp(500, &ike(28)).udp_len(len)), Malformed);
        assert_class(ipv4(udp(53, &[0; 4]).udp_len(len)), Malformed);
        assert_class(ipv6(udp(4500, &[0xff]).udp_len(len)), Malformed);
    }
    // One byte more than the IP payload, even though the frame has the bytes.
    assert_class(ipv4(udp(500, &ike(28)).udp_len(37)), Malformed);
    assert_class(
        ipv4(udp(500, &ike(28)).udp_len(37)).frame().pad_to(100),
        Malformed,
    );
    assert_class(ipv4(udp(53, &[]).udp_len(9)), Malformed);
    assert_class(ipv6(udp(4500, &[0xff]).udp_len(10)), Malformed);
    // An IP payload too short for a UDP header.
    assert_class(ipv4(raw(PROTO_UDP, &udp(53, &[]).bytes[..7])), Malformed);
    assert_class(
        ipv4(raw(PROTO_UDP, &udp(53, &[]).bytes[..4]))
            .frame()
            .pad_to(60),
        Malformed,
    );
}

#[test]
fn udp_length_below_the_ip_payload_is_what_counts() {
    // Bytes after the UDP datagram inside the IP packet belong to neither.
    let mut body = udp(4500, &[0xff]).bytes;
    body.extend_from_slice(&[0xff; 11]);
    assert_class(ipv4(raw(PROTO_UDP, &body)), NatKeepalive);
    let mut body = udp(500, &ike(27)).bytes;
    body.extend_from_slice(&[0; 8]);
    assert_class(ipv4(raw(PROTO_UDP, &body)), Malformed);
}

#[test]
fn non_first_ipv4_fragments_are_fragments() {
    // The data of a later fragment can look like anything, including a UDP header to port 500.
    let looks_like_ike = udp(500, &ike(28));
    for (offset, more) in [
        (1, true),
        (1, false),
        (185, true),
        (185, false),
        (0x1fff, false),
    ] {
        assert_class(
            ipv4(looks_like_ike.clone()).fragment(offset, more),
            Fragment,
        );
        assert_class(
            ipv4(looks_like_ike.clone())
                .fragment(offset, more)
                .dont_fragment(),
            Fragment,
        );
        assert_class(
            ipv4(esp(0, 4)).fragment(offset, more).frame().pad_to(60),
            Fragment,
        );
        assert_class(ipv4(raw(PROTO_UDP, &[])).fragment(offset, more), Fragment);
    }
}

#[test]
fn length_checks_come_before_the_fragment_check() {
    let fragment = ipv4(udp(500, &ike(28))).fragment(185, false);
    let actual = u16::try_from(fragment.bytes().len()).unwrap();
    assert_class(fragment.clone().total_len(actual + 1), Malformed);
    assert_class(fragment.clone().total_len(19), Malformed);
    assert_class(fragment.clone().ihl(4), Malformed);
    assert_class(fragment.version(6), Malformed);
}

#[test]
fn dont_fragment_does_not_matter() {
    assert_class(ipv4(udp(500, &ike(28))).dont_fragment(), Ike);
    assert_class(
        ipv4(udp(4500, &[0xff])).dont_fragment().frame().pad_to(60),
        NatKeepalive,
    );
}

#[test]
fn first_ipv4_fragment_is_a_fragment_whatever_it_carries() {
    // MF set, offset 0: even when the transport header looks complete, what the datagram is
    // is known only after reassembly, so the first fragment is counted with the others.
    for l4 in [
        udp(500, &ike(28)),
        udp(500, &ike(27)),
        udp(4500, &natt_ike(28)),
        udp(53, &[1]),
        esp(0x99, 1480),
        esp(0, 1480),
    ] {
        assert_class(ipv4(l4).fragment(0, true), Fragment);
    }
    assert_class(
        ipv4(udp(4500, &[0xff]))
            .fragment(0, true)
            .frame()
            .pad_to(60),
        Fragment,
    );
}

#[test]
fn first_ipv4_fragment_of_a_longer_udp_datagram_is_a_fragment() {
    // A real first fragment: the UDP length counts the whole datagram, of which this packet
    // carries the first multiple of 8 bytes. Only reassembly can tell what the datagram is.
    let datagrams = [
        udp(500, &ike(2000)),
        udp(4500, &natt_ike(2000)),
        udp(4500, &esp_bytes(0x1234_5678, 2000)),
        udp(4500, &[0xff; 2000]),
        udp(9, &[0x5a; 2000]),
    ];
    for datagram in datagrams {
        for carried in [8, 16, 48, 1480] {
            let first = ipv4(datagram.clone().truncated(carried));
            assert_class(first.clone().fragment(0, true), Fragment);
            assert_class(first.clone().fragment(0, true).dont_fragment(), Fragment);
            // Without MF the same packet claims more UDP than it has.
            assert_class(first, Malformed);
        }
    }
    // A fragment is a fragment before its transport header is looked at at all.
    assert_class(
        ipv4(udp(500, &ike(2000)).udp_len(7).truncated(1480)).fragment(0, true),
        Fragment,
    );
    assert_class(
        ipv4(raw(PROTO_UDP, &[]))
            .fragment(0, true)
            .frame()
            .trailer(&udp(500, &ike(28)).bytes),
        Fragment,
    );
}

/// Splits `l4` into IPv4 fragments for a link of `mtu` bytes, as the sending host would.
fn ipv4_fragments(l4: &L4, mtu: usize) -> Vec<Ipv4> {
    let chunk = (mtu - IPV4_HLEN) / 8 * 8;
    let chunks: Vec<_> = l4.bytes.chunks(chunk).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, data)| {
            let offset = u16::try_from(i * chunk / 8).unwrap();
            ipv4(raw(l4.proto, data)).fragment(offset, i + 1 < chunks.len())
        })
        .collect()
}

#[test]
fn every_fragment_of_a_big_udp_datagram_is_a_fragment() {
    // The lab test sends 3000 bytes to the discard port over a 1500-byte MTU and counts three
    // fragments; the same for the big IKE and ESP-in-UDP datagrams that get fragmented.
    for datagram in [
        udp(9, &[0x5a; 3000]),
        udp(500, &ike(3000)),
        udp(4500, &natt_ike(3000)),
        udp(4500, &esp_bytes(0x77, 3000)),
    ] {
        let fragments = ipv4_fragments(&datagram, 1500);
        assert_eq!(fragments.len(), 3);
        assert_eq!(fragments[0].body.len(), 1480);
        for fragment in fragments {
            assert_class(fragment, Fragment);
        }
    }
    // Raw ESP too: its first fragment shows an SPI, but the ICV is in the last one.
    let classes: Vec<_> = ipv4_fragments(&esp(0x77, 3000), 1500)
        .into_iter()
        .map(|f| class_of(&f.frame().build()))
        .collect();
    assert_eq!(classes, [Fragment, Fragment, Fragment]);
}

// ---------------------------------------------------------------------------------------------
// IPv6
// ---------------------------------------------------------------------------------------------

/// Transport payloads and their class, for trying behind various IPv6 headers.
fn ipv6_cases() -> Vec<(L4, PacketClass)> {
    vec![
        (udp(500, &ike(28)), Ike),
        (udp(500, &ike(600)), Ike),
        (udp(500, &ike(27)), Malformed),
        (udp(4500, &natt_ike(28)), IkeNatT),
        (udp(4500, &natt_ike(27)), Malformed),
        (udp(4500, &esp_bytes(0x4242, 8)), EspInUdp),
        (udp(4500, &esp_bytes(0x4242, 7)), Malformed),
        (udp(4500, &[0xff]), NatKeepalive),
        (udp(4500, &[0xfe]), Malformed),
        (udp(4500, &[]), Malformed),
        (esp(0x4343, 8), Esp),
        (esp(0x4343, 300), Esp),
        (esp(0, 300), Malformed),
        (esp(0x4343, 7), Malformed),
        (udp(53, &[1, 2, 3]), Plain),
        (tcp(500), Plain),
        (echo_request(PROTO_ICMPV6), Plain),
        (raw(PROTO_NONE, &[]), Plain),
    ]
}

#[test]
fn ipv6_without_extension_headers() {
    for (l4, want) in ipv6_cases() {
        assert_class(ipv6(l4.clone()), want);
        // Trailing bytes after the payload are not part of it.
        assert_class(ipv6(l4).frame().trailer(&[0xff; 24]), want);
    }
}

#[test]
fn ipv6_behind_each_extension_header() {
    let exts = [
        hop_by_hop(0),
        hop_by_hop(3),
        routing(0),
        routing(2),
        dest_opts(0),
        dest_opts(1),
        frag_header(0, false), // an atomic fragment (RFC 6946): the whole datagram
        auth_header(),
    ];
    for ext in exts {
        for (l4, want) in ipv6_cases() {
            assert_class(ipv6(l4).ext(ext.clone()), want);
        }
    }
}

#[test]
fn ipv6_behind_a_chain_of_extension_headers() {
    for (l4, want) in ipv6_cases() {
        let packet = ipv6(l4)
            .ext(hop_by_hop(0))
            .ext(dest_opts(1))
            .ext(routing(0))
            .ext(frag_header(0, false))
            .ext(dest_opts(0));
        assert_class(packet, want);
    }
}

#[test]
fn ipv6_extension_headers_up_to_six_are_walked() {
    let six = |l4| {
        ipv6(l4)
            .ext(hop_by_hop(0))
            .ext(dest_opts(0))
            .ext(routing(1))
            .ext(frag_header(0, false))
            .ext(auth_header())
            .ext(dest_opts(2))
    };
    for (l4, want) in ipv6_cases() {
        assert_class(six(l4.clone()), want);
        // A seventh is one too many: the classifier gives up and calls the packet plain.
        assert_class(six(l4.clone()).ext(dest_opts(0)), Plain);
        assert_class(six(l4).ext(frag_header(0, false)).ext(dest_opts(0)), Plain);
    }
}

#[test]
fn non_first_ipv6_fragments_are_fragments() {
    let looks_like_ike = udp(500, &ike(28));
    for (offset, more) in [(1, true), (1, false), (185, true), (0x1fff, false)] {
        assert_class(
            ipv6(looks_like_ike.clone()).ext(frag_header(offset, more)),
            Fragment,
        );
        assert_class(
            ipv6(looks_like_ike.clone())
                .ext(hop_by_hop(0))
                .ext(routing(0))
                .ext(frag_header(offset, more)),
            Fragment,
        );
        assert_class(ipv6(esp(0, 3)).ext(frag_header(offset, more)), Fragment);
        assert_class(
            ipv6(raw(PROTO_UDP, &[])).ext(frag_header(offset, more)),
            Fragment,
        );
    }
}

#[test]
fn first_ipv6_fragment_is_a_fragment_and_an_atomic_fragment_is_not() {
    for (l4, want) in ipv6_cases() {
        // M set, offset 0: a first fragment, whatever it carries.
        assert_class(ipv6(l4.clone()).ext(frag_header(0, true)), Fragment);
        assert_class(
            ipv6(l4.clone())
                .ext(hop_by_hop(0))
                .ext(frag_header(0, true))
                .ext(dest_opts(0)),
            Fragment,
        );
        // Neither offset nor M: an atomic fragment (RFC 6946), classified as a whole packet.
        assert_class(ipv6(l4).ext(frag_header(0, false)), want);
    }
}

#[test]
fn first_ipv6_fragment_of_a_longer_udp_datagram_is_a_fragment() {
    let datagrams = [
        udp(500, &ike(3000)),
        udp(4500, &natt_ike(3000)),
        udp(4500, &esp_bytes(0x1234_5678, 3000)),
        udp(53, &[0x42; 3000]),
    ];
    for datagram in datagrams {
        for carried in [8, 16, 1232] {
            let first = datagram.clone().truncated(carried);
            assert_class(ipv6(first.clone()).ext(frag_header(0, true)), Fragment);
            assert_class(
                ipv6(first.clone())
                    .ext(hop_by_hop(0))
                    .ext(frag_header(0, true))
                    .ext(dest_opts(0)),
                Fragment,
            );
            // An atomic fragment (M clear) is the whole datagram: its UDP length is a lie.
            assert_class(ipv6(first.clone()).ext(frag_header(0, false)), Malformed);
            assert_class(ipv6(first), Malformed);
        }
    }
    assert_class(
        ipv6(esp(0x1234_5678, 3000).truncated(1232)).ext(frag_header(0, true)),
        Fragment,
    );
}

#[test]
fn ipv6_payload_length_past_the_frame_is_malformed() {
    let packet = ipv6(udp(500, &ike(28))).ext(hop_by_hop(0));
    let actual = u16::try_from(8 + UDP_HLEN + 28).unwrap();
    assert_class(packet.clone().payload_len(actual), Ike);
    assert_class(packet.clone().payload_len(actual + 1), Malformed);
    assert_class(packet.clone().payload_len(u16::MAX), Malformed);
    // Once the frame has the bytes, the claimed payload is what counts.
    assert_class(packet.payload_len(actual + 8).frame().trailer(&[0; 8]), Ike);
}

#[test]
fn ipv6_payload_length_shorter_than_its_headers_is_malformed() {
    let padding = [0x11; 64];
    // Cut inside the UDP header or before the end of the UDP datagram.
    assert_class(
        ipv6(udp(500, &ike(28)))
            .payload_len(35)
            .frame()
            .trailer(&padding),
        Malformed,
    );
    assert_class(
        ipv6(udp(500, &ike(28)))
            .payload_len(4)
            .frame()
            .trailer(&padding),
        Malformed,
    );
    assert_class(
        ipv6(udp(500, &ike(28)))
            .payload_len(0)
            .frame()
            .trailer(&padding),
        Malformed,
    );
    // No payload at all where an extension header or ESP is announced.
    for ext in [hop_by_hop(0), routing(0), dest_opts(0), auth_header()] {
        assert_class(
            ipv6(udp(500, &ike(28)))
                .ext(ext)
                .payload_len(0)
                .frame()
                .trailer(&padding),
            Malformed,
        );
    }
    assert_class(
        ipv6(esp(7, 8)).payload_len(0).frame().trailer(&padding),
        Malformed,
    );
    assert_class(
        ipv6(esp(7, 8)).payload_len(7).frame().trailer(&padding),
        Malformed,
    );
}

#[test]
fn ipv6_payload_ending_inside_the_fragment_header_is_malformed() {
    let padding = [0x11; 64];
    for payload_len in [0, 2, 4, 7] {
        for offset in [0, 1, 185] {
            for more in [false, true] {
                assert_class(
                    ipv6(udp(500, &ike(28)))
                        .ext(frag_header(offset, more))
                        .payload_len(payload_len)
                        .frame()
                        .trailer(&padding),
                    Malformed,
                );
            }
        }
    }
}

#[test]
fn ipv6_extension_header_longer_than_the_payload_is_malformed() {
    let padding = [0u8; 256];
    // Each header alone before "no next header": its own length must fit the payload exactly.
    for ext in [hop_by_hop(0), routing(0), dest_opts(0)] {
        assert_class(ipv6(raw(PROTO_NONE, &[])).ext(ext.clone()), Plain);
        for claim in [1, 2, 255] {
            assert_class(
                ipv6(raw(PROTO_NONE, &[]))
                    .ext(ext.clone().claim_len(claim))
                    .frame()
                    .trailer(&padding),
                Malformed,
            );
        }
    }
    assert_class(ipv6(raw(PROTO_NONE, &[])).ext(auth_header()), Plain);
    for claim in [5, 6, 255] {
        assert_class(
            ipv6(raw(PROTO_NONE, &[]))
                .ext(auth_header().claim_len(claim))
                .frame()
                .trailer(&padding),
            Malformed,
        );
    }
    // A header in the middle of a chain claiming past the end.
    assert_class(
        ipv6(udp(500, &ike(28)))
            .ext(hop_by_hop(0))
            .ext(dest_opts(0).claim_len(200))
            .frame()
            .trailer(&padding),
        Malformed,
    );
}

// ---------------------------------------------------------------------------------------------
// VLAN tags
// ---------------------------------------------------------------------------------------------

fn tagged_cases() -> Vec<(Frame, PacketClass)> {
    vec![
        (ipv4(udp(500, &ike(28))).frame(), Ike),
        (ipv4(udp(4500, &natt_ike(40))).frame(), IkeNatT),
        (ipv4(udp(4500, &esp_bytes(3, 64))).frame(), EspInUdp),
        (ipv4(udp(4500, &[0xff])).frame().pad_to(60), NatKeepalive),
        (ipv4(esp(3, 64)).options(2).frame(), Esp),
        (
            ipv4(udp(500, &ike(28))).fragment(9, false).frame(),
            Fragment,
        ),
        (ipv4(tcp(22)).frame(), Plain),
        (ipv4(udp(500, &ike(27))).frame(), Malformed),
        (
            ipv6(udp(4500, &esp_bytes(3, 64)))
                .ext(hop_by_hop(0))
                .frame(),
            EspInUdp,
        ),
        (ipv6(esp(3, 64)).frame(), Esp),
        (arp(), NonIp),
    ]
}

#[test]
fn classified_through_an_8021q_tag() {
    for (frame, want) in tagged_cases() {
        assert_class(frame.clone().vlan(TPID_8021Q, 100), want);
        // Padding to the minimum counts the tag the same way.
        assert_class(frame.vlan(TPID_8021Q, 4095).pad_to(64), want);
    }
}

#[test]
fn classified_through_qinq_tags() {
    for (frame, want) in tagged_cases() {
        assert_class(
            frame.clone().vlan(TPID_8021AD, 10).vlan(TPID_8021Q, 20),
            want,
        );
        // Pre-802.1ad QinQ stacks two 802.1Q tags.
        assert_class(frame.vlan(TPID_8021Q, 10).vlan(TPID_8021Q, 20), want);
    }
}

#[test]
fn a_third_tag_is_not_looked_through() {
    let frame = ipv4(udp(500, &ike(28)))
        .frame()
        .vlan(TPID_8021AD, 1)
        .vlan(TPID_8021Q, 2)
        .vlan(TPID_8021Q, 3);
    assert_class(frame, NonIp);
}

#[test]
fn truncated_tags_are_malformed() {
    let single = arp().vlan(TPID_8021Q, 5).build();
    for len in ETH_HLEN..ETH_HLEN + 4 {
        assert_bytes_class(&single[..len], Malformed);
    }
    assert_bytes_class(&single[..ETH_HLEN + 4], NonIp);

    let double = arp().vlan(TPID_8021AD, 5).vlan(TPID_8021Q, 6).build();
    for len in ETH_HLEN..ETH_HLEN + 8 {
        assert_bytes_class(&double[..len], Malformed);
    }
    assert_bytes_class(&double[..ETH_HLEN + 8], NonIp);

    // A tag followed by an IP ethertype and no IP header.
    let ip = ipv4(udp(500, &ike(28))).frame().vlan(TPID_8021Q, 5).build();
    assert_bytes_class(&ip[..ETH_HLEN + 4], Malformed);
}

// ---------------------------------------------------------------------------------------------
// Properties over many frames
// ---------------------------------------------------------------------------------------------

/// Well-formed frames of every class, in the shapes the tests above build one by one.
fn valid_frames() -> Vec<(&'static str, Frame, PacketClass)> {
    vec![
        ("v4 ike", ipv4(udp(500, &ike(28))).frame(), Ike),
        ("v4 ike big", ipv4(udp(500, &ike(400))).frame(), Ike),
        (
            "v4 ike-natt",
            ipv4(udp(4500, &natt_ike(80))).frame(),
            IkeNatT,
        ),
        (
            "v4 esp-in-udp",
            ipv4(udp(4500, &esp_bytes(9, 8))).frame(),
            EspInUdp,
        ),
        (
            "v4 keepalive padded",
            ipv4(udp(4500, &[0xff])).frame().pad_to(60),
            NatKeepalive,
        ),
        (
            "v4 keepalive unpadded",
            ipv4(udp(4500, &[0xff])).frame(),
            NatKeepalive,
        ),
        ("v4 esp padded", ipv4(esp(9, 8)).frame().pad_to(60), Esp),
        ("v4 esp", ipv4(esp(9, 200)).frame(), Esp),
        (
            "v4 options ike",
            ipv4(udp(500, &ike(40))).options(10).frame(),
            Ike,
        ),
        ("v4 options esp", ipv4(esp(9, 16)).options(3).frame(), Esp),
        ("v4 tcp", ipv4(tcp(443)).frame(), Plain),
        (
            "v4 icmp",
            ipv4(echo_request(PROTO_ICMP)).frame().pad_to(60),
            Plain,
        ),
        ("v4 dns", ipv4(udp(53, &[7; 30])).frame(), Plain),
        (
            "v4 later fragment",
            ipv4(udp(500, &ike(28))).fragment(185, true).frame(),
            Fragment,
        ),
        (
            "v4 first fragment",
            ipv4(udp(4500, &esp_bytes(9, 1400)).truncated(1200))
                .fragment(0, true)
                .frame(),
            Fragment,
        ),
        (
            "v4 first fragment, whole datagram",
            ipv4(udp(500, &ike(28))).fragment(0, true).frame(),
            Fragment,
        ),
        ("arp", arp(), NonIp),
        ("arp padded", arp().pad_to(60), NonIp),
        (
            "qinq arp",
            arp().vlan(TPID_8021AD, 1).vlan(TPID_8021Q, 2),
            NonIp,
        ),
        (
            "lldp",
            Frame::new(ETHERTYPE_LLDP, vec![2, 7, 4], false).pad_to(60),
            NonIp,
        ),
        (
            "dot1q ike",
            ipv4(udp(500, &ike(28))).frame().vlan(TPID_8021Q, 3),
            Ike,
        ),
        (
            "qinq keepalive padded",
            ipv4(udp(4500, &[0xff]))
                .frame()
                .vlan(TPID_8021AD, 1)
                .vlan(TPID_8021Q, 2)
                .pad_to(64),
            NatKeepalive,
        ),
        ("v6 ike", ipv6(udp(500, &ike(28))).frame(), Ike),
        (
            "v6 keepalive",
            ipv6(udp(4500, &[0xff])).frame(),
            NatKeepalive,
        ),
        (
            "v6 keepalive trailer",
            ipv6(udp(4500, &[0xff])).frame().trailer(&[0xff; 9]),
            NatKeepalive,
        ),
        ("v6 esp", ipv6(esp(5, 8)).frame(), Esp),
        ("v6 tcp", ipv6(tcp(80)).frame(), Plain),
        (
            "v6 ike-natt behind hbh+dst",
            ipv6(udp(4500, &natt_ike(28)))
                .ext(hop_by_hop(0))
                .ext(dest_opts(1))
                .frame(),
            IkeNatT,
        ),
        (
            "v6 esp behind routing+ah",
            ipv6(esp(5, 40)).ext(routing(1)).ext(auth_header()).frame(),
            Esp,
        ),
        (
            "v6 six headers",
            ipv6(udp(4500, &esp_bytes(5, 8)))
                .ext(hop_by_hop(0))
                .ext(dest_opts(0))
                .ext(routing(0))
                .ext(frag_header(0, false))
                .ext(auth_header())
                .ext(dest_opts(0))
                .frame(),
            EspInUdp,
        ),
        (
            "v6 seven headers",
            ipv6(udp(4500, &esp_bytes(5, 8)))
                .ext(hop_by_hop(0))
                .ext(dest_opts(0))
                .ext(routing(0))
                .ext(frag_header(0, false))
                .ext(auth_header())
                .ext(dest_opts(0))
                .ext(dest_opts(0))
                .frame(),
            Plain,
        ),
        (
            "v6 later fragment",
            ipv6(raw(PROTO_UDP, &[3; 64]))
                .ext(frag_header(8, false))
                .frame(),
            Fragment,
        ),
        (
            "v6 first fragment",
            ipv6(udp(500, &ike(2000)).truncated(1232))
                .ext(frag_header(0, true))
                .frame(),
            Fragment,
        ),
        (
            "v6 first fragment of esp",
            ipv6(esp(3, 2000).truncated(1232))
                .ext(frag_header(0, true))
                .frame(),
            Fragment,
        ),
        (
            "qinq v6 esp-in-udp",
            ipv6(udp(4500, &esp_bytes(5, 8)))
                .ext(hop_by_hop(0))
                .frame()
                .vlan(TPID_8021AD, 1)
                .vlan(TPID_8021Q, 2),
            EspInUdp,
        ),
    ]
}

#[test]
fn valid_frames_classify_as_built() {
    for (name, frame, want) in valid_frames() {
        let bytes = frame.build();
        assert_eq!(class_of(&bytes), want, "{name}: {}", hex(&bytes));
    }
}

#[test]
fn every_truncation_is_malformed_until_the_headers_are_complete() {
    // Cutting a frame anywhere before the end of its IP packet (or, for other protocols, its
    // Ethernet header) loses bytes some header counts: malformed. Cutting only into the padding
    // after it loses nothing the classifier may look at: same class as the whole frame.
    for (name, frame, want) in valid_frames() {
        let bytes = frame.build();
        let needed = frame.needed_len();
        assert!(needed <= bytes.len());
        for len in 0..bytes.len() {
            let expected = if len < needed { Malformed } else { want };
            assert_eq!(
                class_of(&bytes[..len]),
                expected,
                "{name} cut to {len} of {} bytes (headers end at {needed}): {}",
                bytes.len(),
                hex(&bytes[..len])
            );
        }
    }
}

#[test]
fn trailing_bytes_never_change_the_class() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    for (name, frame, want) in valid_frames() {
        for fill in [0x00, 0xff] {
            let bytes = frame.clone().trailer(&[fill; 64]).build();
            assert_eq!(class_of(&bytes), want, "{name} + 64 x {fill:#x}");
        }
        for _ in 0..64 {
            let len = rng.below(80);
            let trailer = rng.bytes(len);
            let bytes = frame.clone().trailer(&trailer).build();
            assert_eq!(class_of(&bytes), want, "{name}: {}", hex(&bytes));
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let steer = [ETHERTYPE_IPV4, ETHERTYPE_IPV6, TPID_8021Q, TPID_8021AD];
    let mut seen = [false; PacketClass::COUNT];
    for i in 0..5000 {
        let len = rng.below(160);
        let mut frame = rng.bytes(len);
        // Random ethertypes are rarely IP: steer half of the frames into the IP parsers.
        if i % 2 == 1 && len > ETH_HLEN + 4 {
            let ethertype = steer[rng.below(steer.len())];
            frame[12..14].copy_from_slice(&ethertype.to_be_bytes());
            let mut l3 = ETH_HLEN;
            if matches!(ethertype, TPID_8021Q | TPID_8021AD) {
                frame[16..18].copy_from_slice(&steer[rng.below(2)].to_be_bytes());
                l3 += 4;
            }
            let version = if rng.below(2) == 0 { 0x40 } else { 0x60 };
            frame[l3] = version | (frame[l3] & 0x0f);
        }
        seen[classify(frame.as_slice()) as usize] = true;
    }
    assert!(seen[NonIp as usize] && seen[Malformed as usize]);
}

#[test]
fn mutated_valid_frames_never_panic() {
    let corpus = valid_frames();
    let mut rng = XorShift(0xd1b5_4a32_d192_ed03);
    let mut seen = [false; PacketClass::COUNT];
    for _ in 0..5000 {
        let (_, frame, _) = &corpus[rng.below(corpus.len())];
        let mut bytes = frame.build();
        for _ in 0..=rng.below(4) {
            let i = rng.below(bytes.len());
            bytes[i] = rng.byte();
        }
        match rng.below(4) {
            0 => bytes.truncate(rng.below(bytes.len() + 1)),
            1 => {
                let len = rng.below(40);
                bytes.extend(rng.bytes(len));
            }
            _ => {}
        }
        seen[classify(bytes.as_slice()) as usize] = true;
    }
    // A deterministic run; every class turning up shows the mutations reach every branch kind.
    for class in PacketClass::ALL {
        assert!(
            seen[class as usize],
            "no mutated frame classified as {class:?}"
        );
    }
}
