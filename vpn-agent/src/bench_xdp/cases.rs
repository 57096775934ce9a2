//! The frames each program is measured on, and what it must do with each: the verdict, the
//! class it counts and the one datapath event (if any). A case that does not take its intended
//! path fails the benchmark instead of being timed.

use vpn_common::{PacketClass, nat::NatEvent, tunnel::DatapathEvent};

use super::{
    frames,
    nat::{INSIDE_PORT, NAT_PORT, NAT_REMOTE, REMOTE_PORT},
    netns::{PEER_ADDR, WAN_ADDR},
    tables::{LOCAL_HOST, NOT_ROUTED, REMOTE_HOST, SPI_RAW, SPI_UDP, SPI_UNKNOWN},
};

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_REDIRECT: u32 = 4;

pub fn verdict_name(v: u32) -> &'static str {
    match v {
        0 => "XDP_ABORTED",
        XDP_DROP => "XDP_DROP",
        XDP_PASS => "XDP_PASS",
        3 => "XDP_TX",
        XDP_REDIRECT => "XDP_REDIRECT",
        _ => "unknown",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    Wan,
    Lan,
}

impl Program {
    pub fn name(self) -> &'static str {
        match self {
            Program::Wan => vpn_common::names::XDP_WAN,
            Program::Lan => vpn_common::names::XDP_LAN,
        }
    }
}

pub struct Case {
    pub program: Program,
    pub name: &'static str,
    pub what: &'static str,
    pub frame: Vec<u8>,
    pub verdict: u32,
    pub class: PacketClass,
    pub event: Option<DatapathEvent>,
    pub nat_event: Option<NatEvent>,
    /// The program rewrites the frame, so a `repeat` loop would time a different path from
    /// the second repetition on (test-run does not restore the frame).
    pub modifies_frame: bool,
}

fn wan_udp_pass() -> Case {
    Case {
        program: Program::Wan,
        name: "udp-pass",
        what: "UDP to the router, no tunnel (1400-byte packet): classified plain, passed",
        frame: frames::udp_of_len(PEER_ADDR, WAN_ADDR, 40000, 9, 1400),
        verdict: XDP_PASS,
        class: PacketClass::Plain,
        event: None,
        nat_event: None,
        modifies_frame: false,
    }
}

fn wan_esp_in_udp_known() -> Case {
    Case {
        program: Program::Wan,
        name: "esp-in-udp-known-spi",
        what: "inbound ESP in UDP 4500 with a known SPI: SA lookup, metadata, redirect to the worker's socket",
        frame: frames::esp_in_udp(PEER_ADDR, WAN_ADDR, SPI_UDP),
        verdict: XDP_REDIRECT,
        class: PacketClass::EspInUdp,
        event: Some(DatapathEvent::InboundToWorker),
        nat_event: None,
        modifies_frame: false,
    }
}

fn wan_raw_esp_unknown() -> Case {
    Case {
        program: Program::Wan,
        name: "raw-esp-unknown-spi",
        what: "raw ESP (protocol 50) with an SPI no SA has: SA lookup misses, passed to the kernel",
        frame: frames::raw_esp(PEER_ADDR, WAN_ADDR, SPI_UNKNOWN),
        verdict: XDP_PASS,
        class: PacketClass::Esp,
        event: Some(DatapathEvent::UnknownSpi),
        nat_event: None,
        modifies_frame: false,
    }
}

fn lan_no_route() -> Case {
    Case {
        program: Program::Lan,
        name: "no-route",
        what: "LAN UDP to a destination no tunnel route covers: route lookup misses, passed",
        frame: frames::udp_of_len(LOCAL_HOST, NOT_ROUTED, 40000, 9, 1400),
        verdict: XDP_PASS,
        class: PacketClass::Plain,
        event: None,
        nat_event: None,
        modifies_frame: false,
    }
}

fn lan_tunnel_route() -> Case {
    Case {
        program: Program::Lan,
        name: "tunnel-route",
        what: "LAN UDP into a tunnel: route lookup, bpf_fib_lookup towards the peer, metadata, redirect to the worker's socket",
        frame: frames::udp_of_len(LOCAL_HOST, REMOTE_HOST, 40000, 9, 1400),
        verdict: XDP_REDIRECT,
        class: PacketClass::Plain,
        event: Some(DatapathEvent::OutboundToWorker),
        nat_event: None,
        modifies_frame: false,
    }
}

fn wan_nat_reply() -> Case {
    Case {
        program: Program::Wan,
        name: "nat-reply",
        what: "UDP reply to a masqueraded flow: NAT_IN hit, destination translated back, passed",
        frame: frames::udp(
            NAT_REMOTE,
            WAN_ADDR,
            REMOTE_PORT,
            NAT_PORT,
            &[0x5a; 1400 - 28],
        ),
        verdict: XDP_PASS,
        class: PacketClass::Plain,
        event: None,
        nat_event: Some(NatEvent::ReverseTranslated),
        modifies_frame: true,
    }
}

fn lan_nat_established() -> Case {
    Case {
        program: Program::Lan,
        name: "nat-established",
        what: "LAN UDP of an established masqueraded flow: route lookup misses, NAT rule, bpf_fib_lookup, NAT_OUT hit, source translated, passed",
        frame: frames::udp(
            LOCAL_HOST,
            NAT_REMOTE,
            INSIDE_PORT,
            REMOTE_PORT,
            &[0x5a; 1400 - 28],
        ),
        verdict: XDP_PASS,
        class: PacketClass::Plain,
        event: None,
        nat_event: Some(NatEvent::Translated),
        modifies_frame: true,
    }
}

/// The NAT scale table: established flows in both directions.
pub fn nat_scale() -> Vec<Case> {
    vec![wan_nat_reply(), lan_nat_established()]
}

/// The per-program table: every class the programs tell apart on the production map sizes.
pub fn per_program() -> Vec<Case> {
    vec![
        wan_udp_pass(),
        Case {
            program: Program::Wan,
            name: "ike",
            what: "IKE_SA_INIT on UDP 500: classified IKE, passed to the kernel (the agent's socket)",
            frame: frames::ike_sa_init(PEER_ADDR, WAN_ADDR),
            verdict: XDP_PASS,
            class: PacketClass::Ike,
            event: None,
            nat_event: None,
            modifies_frame: false,
        },
        Case {
            program: Program::Wan,
            name: "esp-in-udp-unknown-spi",
            what: "ESP in UDP 4500 with an SPI no SA has: SA lookup misses, passed",
            frame: frames::esp_in_udp(PEER_ADDR, WAN_ADDR, SPI_UNKNOWN),
            verdict: XDP_PASS,
            class: PacketClass::EspInUdp,
            event: Some(DatapathEvent::UnknownSpi),
            nat_event: None,
            modifies_frame: false,
        },
        wan_raw_esp_unknown(),
        wan_esp_in_udp_known(),
        Case {
            program: Program::Wan,
            name: "raw-esp-known-spi",
            what: "inbound raw ESP with a known SPI: SA lookup, metadata, redirect to the worker's socket",
            frame: frames::raw_esp(PEER_ADDR, WAN_ADDR, SPI_RAW),
            verdict: XDP_REDIRECT,
            class: PacketClass::Esp,
            event: Some(DatapathEvent::InboundToWorker),
            nat_event: None,
            modifies_frame: false,
        },
        wan_nat_reply(),
        lan_no_route(),
        lan_tunnel_route(),
        lan_nat_established(),
        Case {
            program: Program::Lan,
            name: "tunnel-route-tcp-syn",
            what: "LAN TCP SYN into a tunnel with an MSS: as tunnel-route, plus the MSS clamp and checksum update",
            frame: frames::tcp_syn(LOCAL_HOST, REMOTE_HOST),
            verdict: XDP_REDIRECT,
            class: PacketClass::Plain,
            event: Some(DatapathEvent::OutboundToWorker),
            nat_event: None,
            modifies_frame: true,
        },
    ]
}

/// The scale table: the lookups whose cost could grow with the number of SAs and routes.
pub fn scale() -> Vec<Case> {
    vec![
        wan_esp_in_udp_known(),
        wan_raw_esp_unknown(),
        lan_tunnel_route(),
        lan_no_route(),
    ]
}

/// The reference: the empty program on the pass-through frame.
pub fn floor_frame() -> Vec<u8> {
    wan_udp_pass().frame
}
