//! NAT masquerade state for the test runs: one rule (the LAN's /24 to 203.0.113.0/24 out of
//! the WAN), the port range, a probe flow the NAT cases hit in both directions, and synthetic
//! established flows for the scale runs, written with the `vpn_common::nat` types.

use std::net::Ipv4Addr;

use anyhow::Context as _;
use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData},
};
use vpn_common::{
    names,
    nat::{FlowKey, IPPROTO_UDP, NatMapping, NatRuleEntry, NatSettings, flow_flags},
};

use super::{netns::WAN_ADDR, tables::LOCAL_HOST};
use crate::datapath::tables::take;

/// The remote end of the probe flow (routed out of the WAN in the benchmark's namespace).
pub const NAT_REMOTE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
pub const NAT_REMOTE_NET: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 0);
pub const REMOTE_PORT: u16 = 443;
pub const INSIDE_PORT: u16 = 40000;
/// The probe flow's translated source port.
pub const NAT_PORT: u16 = 61001;

pub struct NatTables {
    rules: Array<MapData, NatRuleEntry>,
    settings: Array<MapData, NatSettings>,
    out: HashMap<MapData, FlowKey, NatMapping>,
    inbound: HashMap<MapData, FlowKey, NatMapping>,
}

/// Both entries of one UDP flow from `inside` to `remote`, translated to WAN_ADDR:`port`.
fn flow(
    inside: Ipv4Addr,
    inside_port: u16,
    remote: Ipv4Addr,
    port: u16,
) -> ((FlowKey, NatMapping), (FlowKey, NatMapping)) {
    let original = FlowKey::new(
        IPPROTO_UDP,
        inside.octets(),
        inside_port.to_be_bytes(),
        remote.octets(),
        REMOTE_PORT.to_be_bytes(),
    );
    let reply = FlowKey::new(
        IPPROTO_UDP,
        remote.octets(),
        REMOTE_PORT.to_be_bytes(),
        WAN_ADDR.octets(),
        port.to_be_bytes(),
    );
    let mapping = |addr: Ipv4Addr, port: u16| NatMapping {
        addr: addr.octets(),
        port: port.to_be_bytes(),
        flags: flow_flags::SEEN,
        _pad: 0,
        last_seen_ns: 0,
    };
    (
        (original, mapping(WAN_ADDR, port)),
        (reply, mapping(inside, inside_port)),
    )
}

impl NatTables {
    pub fn take_from(ebpf: &mut Ebpf) -> anyhow::Result<Self> {
        Ok(NatTables {
            rules: take(ebpf, names::NAT_RULES)?,
            settings: take(ebpf, names::NAT_SETTINGS)?,
            out: take(ebpf, names::NAT_OUT)?,
            inbound: take(ebpf, names::NAT_IN)?,
        })
    }

    fn insert(&mut self, f: ((FlowKey, NatMapping), (FlowKey, NatMapping))) -> anyhow::Result<()> {
        let ((ok, ov), (ik, iv)) = f;
        self.out.insert(ok, ov, 0).context("writing NAT_OUT")?;
        self.inbound.insert(ik, iv, 0).context("writing NAT_IN")
    }

    /// `flows - 1` synthetic established UDP flows (distinct inside hosts in 10.64.0.0/10, 256
    /// remote hosts, translated ports from 1024 up), then the rule, the port range and the
    /// probe flow, last so that an LRU map near its size never evicts it.
    pub fn install(&mut self, wan_ifindex: u32, flows: u32) -> anyhow::Result<()> {
        for i in 1..flows {
            let inside = Ipv4Addr::from(0x0a40_0000 + i);
            let remote = Ipv4Addr::new(203, 0, 113, (i % 256) as u8);
            let port = 1024 + (i / 256) as u16;
            self.insert(flow(inside, INSIDE_PORT, remote, port))
                .with_context(|| format!("synthetic NAT flow {i}"))?;
        }
        self.rules.set(
            0,
            NatRuleEntry {
                from: [10, 1, 0, 0],
                to: NAT_REMOTE_NET.octets(),
                from_len: 24,
                to_len: 24,
                valid: 1,
                _pad: 0,
                out_ifindex: wan_ifindex,
                out_addr: WAN_ADDR.octets(),
            },
            0,
        )?;
        self.settings.set(
            0,
            NatSettings {
                port_first: 61000,
                port_last: 65535,
                _pad: 0,
            },
            0,
        )?;
        self.insert(flow(LOCAL_HOST, INSIDE_PORT, NAT_REMOTE, NAT_PORT))
    }
}
