//! What the test runs find in the maps: the tunnel, SAs and routes the cases probe, plus
//! synthetic SAs and routes for the scale runs, written through the agent's own
//! [`TunnelTables`] with the `vpn_common` types.

use std::{collections::HashSet, net::Ipv4Addr};

use anyhow::Context as _;
use ipnet::Ipv4Net;
use vpn_common::tunnel::{Encapsulation, InboundSa, MAX_TUNNELS, TunnelOut};

use super::netns::{LAN_ADDR, PEER_ADDR, WAN_ADDR};
use crate::datapath::tables::TunnelTables;

/// Inbound SA the known-SPI cases hit: ESP in UDP.
pub const SPI_UDP: u32 = 0xc0de_0001;
/// Inbound SA the known-SPI cases hit: raw ESP.
pub const SPI_RAW: u32 = 0xc0de_0002;
/// An SPI no SA has.
pub const SPI_UNKNOWN: u32 = 0xdead_beef;
/// The site behind the tunnel, and a host in it.
pub const REMOTE_SITE: &str = "10.2.0.0/16";
pub const REMOTE_HOST: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 10);
/// A host on the LAN, and a destination no tunnel route covers.
pub const LOCAL_HOST: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 10);
pub const NOT_ROUTED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// TCP MSS that SYNs into the tunnel are clamped to.
pub const TUNNEL_MSS: u16 = 1360;

fn tunnel() -> TunnelOut {
    TunnelOut {
        active: 1,
        sa_slot: 0,
        local_addr: WAN_ADDR.octets(),
        peer_addr: PEER_ADDR.octets(),
        local_prefix: Ipv4Net::new(LAN_ADDR, 24)
            .expect("valid prefix")
            .network()
            .octets(),
        local_prefix_len: 24,
        encapsulation: Encapsulation::EspInUdp as u8,
        mss: TUNNEL_MSS,
    }
}

fn inbound(slot: u32, encapsulation: Encapsulation) -> InboundSa {
    InboundSa {
        sa_slot: slot,
        encapsulation: encapsulation as u8,
        _pad: [0; 3],
    }
}

/// One tunnel (slot 0), the route to the remote site and the ESP-in-UDP probe SA, plus the
/// raw ESP one if `raw_sa`. Returns the number of inbound SAs installed.
pub fn install_probes(tables: &mut TunnelTables, raw_sa: bool) -> anyhow::Result<u32> {
    tables.set_tunnel(0, tunnel())?;
    tables.set_inbound(SPI_UDP, inbound(1, Encapsulation::EspInUdp))?;
    if raw_sa {
        tables.set_inbound(SPI_RAW, inbound(2, Encapsulation::Esp))?;
    }
    tables.add_route(REMOTE_SITE.parse().expect("valid prefix"), 0)?;
    Ok(if raw_sa { 2 } else { 1 })
}

/// Fills the tables up to `count` inbound SAs and `count` tunnel routes in all (the probes,
/// `sas` inbound SAs and one route, included), over min(count, MAX_TUNNELS) tunnel slots. SPIs are pseudo-random, routes are
/// distinct pseudo-random prefixes of /16 to /32 inside 10.0.0.0/8 (some of them nest, as
/// real route tables do); the same seed gives the same tables.
pub fn fill_synthetic(tables: &mut TunnelTables, count: u32, sas: u32) -> anyhow::Result<()> {
    let slots = count.clamp(1, MAX_TUNNELS);
    for slot in 1..slots {
        tables.set_tunnel(slot, tunnel())?;
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut spis: HashSet<u32> = [SPI_UDP, SPI_RAW, SPI_UNKNOWN, 0].into();
    let mut installed = sas;
    while installed < count {
        let spi = rng.next() as u32;
        if spis.insert(spi) {
            let encap = if spi & 1 == 0 {
                Encapsulation::EspInUdp
            } else {
                Encapsulation::Esp
            };
            tables
                .set_inbound(spi, inbound(installed % slots, encap))
                .context("filling INBOUND_SAS")?;
            installed += 1;
        }
    }
    let probe: Ipv4Net = REMOTE_SITE.parse().expect("valid prefix");
    let mut routes: HashSet<Ipv4Net> = [probe].into();
    let mut installed = 1u32;
    while installed < count {
        let r = rng.next();
        let len = 16 + (r % 17) as u8;
        let addr = Ipv4Addr::from(0x0a00_0000 | ((r >> 32) as u32 & 0x00ff_ffff));
        let net = Ipv4Net::new(addr, len).expect("length <= 32").trunc();
        if routes.insert(net) {
            tables
                .add_route(net, installed % slots)
                .context("filling TUNNEL_ROUTES")?;
            installed += 1;
        }
    }
    Ok(())
}

/// xorshift64: deterministic, dependency-free filler data.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
