//! The maps shared with the agent (names in `vpn_common::names`, layouts in `vpn_common`).

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, XskMap},
};
use vpn_common::{
    CLASS_COUNTER_ENTRIES, TrafficCounter,
    nat::{
        FlowKey, MAX_NAT_FLOWS, MAX_NAT_RULES, NAT_RESERVED_WORDS, NatEvent, NatMapping,
        NatRuleEntry, NatSettings,
    },
    tunnel::{
        DatapathEvent, InboundSa, MAX_INBOUND_SAS, MAX_QUEUES, MAX_TUNNEL_ROUTES, MAX_TUNNELS,
        TunnelOut,
    },
};

#[map]
pub static CLASS_COUNTERS: PerCpuArray<TrafficCounter> =
    PerCpuArray::with_max_entries(CLASS_COUNTER_ENTRIES, 0);

#[map]
pub static DATAPATH_EVENTS: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(DatapathEvent::COUNT as u32, 0);

#[map]
pub static INBOUND_SAS: HashMap<u32, InboundSa> = HashMap::with_max_entries(MAX_INBOUND_SAS, 0);

#[map]
pub static TUNNELS: aya_ebpf::maps::Array<TunnelOut> =
    aya_ebpf::maps::Array::with_max_entries(MAX_TUNNELS, 0);

#[map]
pub static TUNNEL_ROUTES: LpmTrie<[u8; 4], u32> = LpmTrie::with_max_entries(MAX_TUNNEL_ROUTES, 0);

#[map]
pub static XSKS_WAN: XskMap = XskMap::with_max_entries(MAX_QUEUES, 0);

#[map]
pub static XSKS_LAN: XskMap = XskMap::with_max_entries(MAX_QUEUES, 0);

#[map]
pub static NAT_RULES: Array<NatRuleEntry> = Array::with_max_entries(MAX_NAT_RULES, 0);

#[map]
pub static NAT_SETTINGS: Array<NatSettings> = Array::with_max_entries(1, 0);

#[map]
pub static NAT_OUT: LruHashMap<FlowKey, NatMapping> =
    LruHashMap::with_max_entries(MAX_NAT_FLOWS, 0);

#[map]
pub static NAT_IN: LruHashMap<FlowKey, NatMapping> = LruHashMap::with_max_entries(MAX_NAT_FLOWS, 0);

#[map]
pub static NAT_RESERVED_PORTS: Array<u64> = Array::with_max_entries(NAT_RESERVED_WORDS, 0);

#[map]
pub static NAT_EVENTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(NatEvent::COUNT as u32, 0);

/// Counts one datapath event on this CPU.
#[inline(always)]
pub fn count(event: DatapathEvent) {
    if let Some(counter) = DATAPATH_EVENTS.get_ptr_mut(event as u32) {
        // SAFETY: per-CPU slot, written only by this CPU.
        unsafe { *counter += 1 };
    }
}
