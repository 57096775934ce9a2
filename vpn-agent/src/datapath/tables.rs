//! The tunnel maps of the XDP programs, as the control plane writes them.
//!
//! Order matters for make-before-break (RFC 7296 2.8): install an SA in the worker before the
//! map entry that sends traffic to it, and remove map entries before the worker's SA.

use std::os::fd::AsRawFd;

use anyhow::{Context as _, anyhow};
use aya::{
    Ebpf,
    maps::{Array, HashMap, LpmTrie, MapData, XskMap, lpm_trie::Key},
};
use ipnet::Ipv4Net;
use vpn_common::{
    names,
    tunnel::{InboundSa, TunnelOut},
};

pub struct TunnelTables {
    inbound: HashMap<MapData, u32, InboundSa>,
    tunnels: Array<MapData, TunnelOut>,
    routes: LpmTrie<MapData, [u8; 4], u32>,
    xsks_wan: XskMap<MapData>,
    xsks_lan: XskMap<MapData>,
}

pub(crate) fn take<T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>>(
    ebpf: &mut Ebpf,
    name: &str,
) -> anyhow::Result<T> {
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| anyhow!("the eBPF object has no map {name}"))?;
    T::try_from(map).with_context(|| format!("map {name} has an unexpected type"))
}

impl TunnelTables {
    pub fn take_from(ebpf: &mut Ebpf) -> anyhow::Result<Self> {
        Ok(TunnelTables {
            inbound: take(ebpf, names::INBOUND_SAS)?,
            tunnels: take(ebpf, names::TUNNELS)?,
            routes: take(ebpf, names::TUNNEL_ROUTES)?,
            xsks_wan: take(ebpf, names::XSKS_WAN)?,
            xsks_lan: take(ebpf, names::XSKS_LAN)?,
        })
    }

    /// Inbound ESP with `spi` (host order) goes to the worker's `sa_slot`.
    pub fn set_inbound(&mut self, spi: u32, sa: InboundSa) -> anyhow::Result<()> {
        self.inbound
            .insert(wire_spi(spi), sa, 0)
            .with_context(|| format!("installing inbound SPI {spi:#010x}"))
    }

    pub fn remove_inbound(&mut self, spi: u32) -> anyhow::Result<()> {
        self.inbound
            .remove(&wire_spi(spi))
            .with_context(|| format!("removing inbound SPI {spi:#010x}"))
    }

    pub fn set_tunnel(&mut self, slot: u32, tunnel: TunnelOut) -> anyhow::Result<()> {
        self.tunnels
            .set(slot, tunnel, 0)
            .with_context(|| format!("writing tunnel slot {slot}"))
    }

    pub fn add_route(&mut self, prefix: Ipv4Net, slot: u32) -> anyhow::Result<()> {
        let key = Key::new(u32::from(prefix.prefix_len()), prefix.network().octets());
        self.routes
            .insert(&key, slot, 0)
            .with_context(|| format!("routing {prefix} into tunnel slot {slot}"))
    }

    pub fn remove_route(&mut self, prefix: Ipv4Net) -> anyhow::Result<()> {
        let key = Key::new(u32::from(prefix.prefix_len()), prefix.network().octets());
        self.routes
            .remove(&key)
            .with_context(|| format!("removing route {prefix}"))
    }

    /// Registers a worker's sockets for receive queue `queue`.
    pub fn register_sockets(
        &mut self,
        queue: u32,
        wan: &impl AsRawFd,
        lan: &impl AsRawFd,
    ) -> anyhow::Result<()> {
        self.xsks_wan
            .set(queue, wan.as_raw_fd(), 0)
            .context("registering the WAN AF_XDP socket")?;
        self.xsks_lan
            .set(queue, lan.as_raw_fd(), 0)
            .context("registering the LAN AF_XDP socket")
    }
}

/// The SPI as the XDP program reads it: the four wire (big-endian) bytes as a native u32.
fn wire_spi(spi: u32) -> u32 {
    u32::from_ne_bytes(spi.to_be_bytes())
}
