//! Types shared by the XDP programs (`vpn-ebpf`) and the agent (`vpn-agent`).
//!
//! Everything here is `no_std` and `#[repr(C)]` so both sides agree on the layout of BPF map keys
//! and values byte for byte. The `user` feature adds `aya::Pod` impls for the agent.
#![cfg_attr(not(test), no_std)]

pub mod class;
pub mod counters;
pub mod nat;
pub mod tunnel;

pub use class::{InterfaceRole, PacketClass};
pub use counters::{CLASS_COUNTER_ENTRIES, TrafficCounter, class_counter_index};

/// Names of the maps and programs in the eBPF object, used by the loader and the status reader.
pub mod names {
    /// Per-CPU array of [`crate::TrafficCounter`], indexed by [`crate::class_counter_index`].
    pub const CLASS_COUNTERS: &str = "CLASS_COUNTERS";
    /// Hash map: SPI (network order u32) -> [`crate::tunnel::InboundSa`].
    pub const INBOUND_SAS: &str = "INBOUND_SAS";
    /// Array: tunnel slot -> [`crate::tunnel::TunnelOut`].
    pub const TUNNELS: &str = "TUNNELS";
    /// LPM trie: [`crate::tunnel::RouteKey`] -> tunnel slot.
    pub const TUNNEL_ROUTES: &str = "TUNNEL_ROUTES";
    /// XSKMAP of the workers' sockets on the WAN interface, by receive queue.
    pub const XSKS_WAN: &str = "XSKS_WAN";
    /// XSKMAP of the workers' sockets on the LAN interface, by receive queue.
    pub const XSKS_LAN: &str = "XSKS_LAN";
    /// Per-CPU array of u64, indexed by [`crate::tunnel::DatapathEvent`].
    pub const DATAPATH_EVENTS: &str = "DATAPATH_EVENTS";
    /// Array of [`crate::nat::NatRuleEntry`]: the masquerade rules, first invalid entry ends them.
    pub const NAT_RULES: &str = "NAT_RULES";
    /// One-entry array of [`crate::nat::NatSettings`].
    pub const NAT_SETTINGS: &str = "NAT_SETTINGS";
    /// LRU hash: original [`crate::nat::FlowKey`] -> translated source [`crate::nat::NatMapping`].
    pub const NAT_OUT: &str = "NAT_OUT";
    /// LRU hash: reply [`crate::nat::FlowKey`] -> original source [`crate::nat::NatMapping`].
    pub const NAT_IN: &str = "NAT_IN";
    /// Array of u64 bit words: ports the NAT must not allocate.
    pub const NAT_RESERVED_PORTS: &str = "NAT_RESERVED_PORTS";
    /// Per-CPU array of u64, indexed by [`crate::nat::NatEvent`].
    pub const NAT_EVENTS: &str = "NAT_EVENTS";
    /// XDP entry point attached to WAN (internet-facing) interfaces.
    pub const XDP_WAN: &str = "xdp_wan";
    /// XDP entry point attached to LAN (site-facing) interfaces.
    pub const XDP_LAN: &str = "xdp_lan";
}
