//! Kernel routes for the traffic the router itself originates.
//!
//! Forwarded traffic is steered into tunnels by XDP (the LPM route map), but XDP never sees
//! packets the host sends. For those, every tunnel has a TUN device ([`super::tun`]) and each
//! remote prefix gets a route through the device of the tunnel that carries it, in a table of
//! our own ([`TABLE`], consulted by a policy rule before `main`, like strongSwan's table 220)
//! and tagged with our protocol number ([`PROTOCOL`]), so `ip route show table 201` or
//! `ip route show proto 249` lists exactly what the agent installed:
//! - a tunnel that comes up (or takes over as the standby) gets the prefix pointed at its
//!   device, replaced in place, so the prefix is never without a route;
//! - a prefix whose tunnels are all down becomes `unreachable` (fail closed: without it the
//!   lookup would fall through to `main`, which may send the packets in the clear);
//! - a prefix that contains a tunnel peer's address gets no route: IKE and ESP to that peer
//!   would otherwise be routed into the tunnel itself.
//!
//! Routes and the rule are removed on a clean stop; a crashed agent's TUN devices vanish with
//! it, and the next start removes what is left in the table.

use std::{collections::BTreeMap, net::Ipv4Addr, os::fd::OwnedFd, sync::Arc};

use anyhow::Context as _;
use ipnet::Ipv4Net;

use super::{
    rtnl::{OwnedRoute, RouteTarget, Rtnl},
    tun::{TunDevice, device_name},
};

/// The routing table holding the agent's routes.
pub const TABLE: u32 = 201;
/// Priority of the rule "lookup [`TABLE`]": after `local` (0), before `main` (32766).
pub const RULE_PRIORITY: u32 = 201;
/// The routes' protocol number (`proto 249` in `ip route`); unassigned in iproute2's rt_protos.
pub const PROTOCOL: u8 = 249;

/// A tunnel's device as the crypto worker needs it.
#[derive(Clone, Debug)]
pub struct TunnelDevice {
    pub name: String,
    pub ifindex: u32,
    pub fd: Arc<OwnedFd>,
}

pub struct KernelRoutes {
    rtnl: Rtnl,
    /// By tunnel name.
    devices: BTreeMap<String, TunnelDevice>,
    installed: BTreeMap<Ipv4Net, RouteTarget>,
    /// Tunnels whose device could not be created (warned about once).
    failed: std::collections::BTreeSet<String>,
    /// Preferred source of the router's packets into tunnels: its LAN address, which the
    /// tunnels' local selectors cover (and where replies come back to).
    source: Option<Ipv4Addr>,
}

impl KernelRoutes {
    pub fn start(source: Option<Ipv4Addr>) -> anyhow::Result<Self> {
        let mut rtnl = Rtnl::open()?;
        // Left by an agent that did not stop cleanly.
        for prefix in rtnl.routes(TABLE, PROTOCOL)? {
            tracing::info!(%prefix, table = TABLE, "removing a kernel route left by an earlier run");
            rtnl.delete_route(&owned(prefix, RouteTarget::Unreachable))?;
        }
        rtnl.add_rule(TABLE, RULE_PRIORITY, PROTOCOL)?;
        tracing::info!(table = TABLE, priority = RULE_PRIORITY, source = ?source, "kernel routes for the router's own traffic");
        Ok(KernelRoutes {
            rtnl,
            devices: BTreeMap::new(),
            installed: BTreeMap::new(),
            failed: Default::default(),
            source,
        })
    }

    /// The tunnel's device, created (up, with the tunnel's MTU) if it has none yet; a failure
    /// is logged as a warning the first time, then quietly retried on later calls.
    pub fn ensure_device(&mut self, tunnel: &str, mtu: u16) {
        if self.devices.contains_key(tunnel) {
            return;
        }
        match self.create_device(tunnel, mtu) {
            Ok(()) => {
                self.failed.remove(tunnel);
            }
            Err(err) if self.failed.insert(tunnel.to_owned()) => {
                tracing::warn!(error = %format!("{err:#}"), %tunnel, "no tunnel device: the router's own traffic will not use this tunnel until it has one");
            }
            Err(err) => {
                tracing::debug!(error = %format!("{err:#}"), %tunnel, "still no tunnel device")
            }
        }
    }

    fn create_device(&mut self, tunnel: &str, mtu: u16) -> anyhow::Result<()> {
        let name = device_name(tunnel);
        let device = TunDevice::create(&name)?;
        // Only IPv4 is routed here; keep the kernel from sending IPv6 neighbour discovery
        // into the tunnel. Best effort: the file is absent when IPv6 is off.
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1");
        self.rtnl
            .set_up(device.ifindex, u32::from(mtu))
            .with_context(|| format!("tunnel {tunnel}"))?;
        tracing::info!(%tunnel, device = %name, ifindex = device.ifindex, mtu, "tunnel device created");
        self.devices.insert(
            tunnel.to_owned(),
            TunnelDevice {
                name: device.name,
                ifindex: device.ifindex,
                fd: Arc::new(device.fd),
            },
        );
        Ok(())
    }

    pub fn devices(&self) -> impl Iterator<Item = (&String, &TunnelDevice)> {
        self.devices.iter()
    }

    /// Brings the table to `plan`: each prefix through the device of the tunnel that carries
    /// it now, or unreachable when none does. Prefixes containing a peer get no route.
    pub fn sync(&mut self, plan: &BTreeMap<Ipv4Net, Option<String>>, peers: &[Ipv4Addr]) {
        let mut wanted = BTreeMap::new();
        for (prefix, tunnel) in plan {
            if let Some(peer) = peers.iter().find(|p| prefix.contains(*p)) {
                tracing::warn!(%prefix, %peer, "no kernel route: the prefix contains a tunnel peer, whose IKE and ESP must not enter a tunnel");
                continue;
            }
            let target = match tunnel.as_ref().and_then(|t| self.devices.get(t)) {
                Some(device) => RouteTarget::Device {
                    ifindex: device.ifindex,
                    source: self.source,
                },
                None => RouteTarget::Unreachable,
            };
            wanted.insert(*prefix, target);
        }
        for (prefix, target) in &wanted {
            if self.installed.get(prefix) == Some(target) {
                continue;
            }
            match self.rtnl.replace_route(&owned(*prefix, *target)) {
                Ok(()) => {
                    tracing::info!(%prefix, target = ?target, "kernel route set");
                    self.installed.insert(*prefix, *target);
                }
                Err(err) => tracing::warn!(error = %format!("{err:#}"), "kernel route not set"),
            }
        }
        let stale: Vec<Ipv4Net> = self
            .installed
            .keys()
            .filter(|p| !wanted.contains_key(*p))
            .copied()
            .collect();
        for prefix in stale {
            self.remove(prefix);
        }
    }

    /// Puts back routes someone removed from the table behind our back (the kernel also
    /// removes routes through a device that went down).
    pub fn repair(&mut self) {
        let present = match self.rtnl.routes(TABLE, PROTOCOL) {
            Ok(present) => present,
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "reading the kernel routes");
                return;
            }
        };
        let missing: Vec<(Ipv4Net, RouteTarget)> = self
            .installed
            .iter()
            .filter(|(prefix, _)| !present.contains(prefix))
            .map(|(p, t)| (*p, *t))
            .collect();
        for (prefix, target) in missing {
            match self.rtnl.replace_route(&owned(prefix, target)) {
                Ok(()) => {
                    tracing::warn!(%prefix, table = TABLE, "kernel route removed behind our back: put back")
                }
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), %prefix, "kernel route removed behind our back, and not put back")
                }
            }
        }
    }

    /// The LAN address changed: the routes' preferred source follows it.
    pub fn set_source(&mut self, source: Option<Ipv4Addr>) {
        if source == self.source {
            return;
        }
        tracing::info!(from = ?self.source, to = ?source, "LAN address changed: the kernel routes' source follows");
        self.source = source;
        let through_devices: Vec<(Ipv4Net, u32)> = self
            .installed
            .iter()
            .filter_map(|(prefix, target)| match target {
                RouteTarget::Device { ifindex, .. } => Some((*prefix, *ifindex)),
                RouteTarget::Unreachable => None,
            })
            .collect();
        for (prefix, ifindex) in through_devices {
            let target = RouteTarget::Device { ifindex, source };
            match self.rtnl.replace_route(&owned(prefix, target)) {
                Ok(()) => {
                    self.installed.insert(prefix, target);
                }
                Err(err) => tracing::warn!(error = %format!("{err:#}"), "kernel route not updated"),
            }
        }
    }

    /// Closes the devices of tunnels not in `configured` (after [`Self::sync`] moved their
    /// routes). The device goes once the worker lets go of it too.
    pub fn keep_devices(&mut self, configured: &[String]) {
        self.devices.retain(|tunnel, device| {
            let keep = configured.contains(tunnel);
            if !keep {
                tracing::info!(%tunnel, device = %device.name, "tunnel device closed");
            }
            keep
        });
    }

    fn remove(&mut self, prefix: Ipv4Net) {
        match self
            .rtnl
            .delete_route(&owned(prefix, RouteTarget::Unreachable))
        {
            Ok(()) => tracing::info!(%prefix, "kernel route removed"),
            Err(err) => tracing::warn!(error = %format!("{err:#}"), "kernel route not removed"),
        }
        self.installed.remove(&prefix);
    }

    /// Removes every route and the rule; the devices close as this is dropped.
    pub fn stop(mut self) {
        let prefixes: Vec<Ipv4Net> = self.installed.keys().copied().collect();
        for prefix in prefixes {
            self.remove(prefix);
        }
        if let Err(err) = self.rtnl.delete_rule(TABLE, RULE_PRIORITY, PROTOCOL) {
            tracing::warn!(error = %format!("{err:#}"), "policy rule not removed");
        }
    }
}

fn owned(prefix: Ipv4Net, target: RouteTarget) -> OwnedRoute {
    OwnedRoute {
        table: TABLE,
        protocol: PROTOCOL,
        prefix,
        target,
    }
}
