//! The tunnel datapath at run time: the crypto workers (one per receive queue of the WAN and
//! LAN interfaces, see `workers`), their SAs, and the BPF map entries that steer traffic to
//! them.
//!
//! Changes are applied make-before-break (RFC 7296 2.8): a new inbound SA is in every worker
//! and in the inbound map before the outbound side switches to a new SA; SAs taken out of the
//! maps linger in the workers for [`LINGER`] so frames already on their way still pass. An
//! inbound SA a tunnel no longer wants (a rekeyed or rolled-over one) also stays in the inbound
//! map for that long: the peer may be a few milliseconds behind in switching away from it.
//!
//! The router's own traffic takes the same routes through the kernel: each tunnel has a TUN
//! device the first worker reads from, and [`KernelRoutes`] keeps a kernel route per prefix pointed
//! at the device of the tunnel XDP steers that prefix to (or unreachable when there is none).

use std::{
    collections::BTreeMap,
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::anyhow;
use ipnet::Ipv4Net;
use vpn_common::tunnel::{Encapsulation, InboundSa, MAX_INBOUND_SAS, MAX_TUNNELS, TunnelOut};
use vpn_esp::{InboundSa as EspInbound, OutboundSa as EspOutbound, SaParams};

use super::{
    esp_sa::{Open, Seal},
    loader::Datapath,
    local_tx::LocalPort,
    rx_queues::rx_queues,
    sa_table::{Expiry, InboundEntry, Lifetime, OutboundEntry, SaEntry, Selectors, Usage},
    static_tunnels::{EncapsulationSpec, StaticTunnel},
    tables::TunnelTables,
    worker::{LifetimeEvent, WorkerReport},
    workers::{WorkerPool, worker_count},
};
use crate::system::{interface_ipv4, kernel_routes::KernelRoutes};

/// Where routes whose tunnel is down point: a tunnel slot that is never handed out, so it
/// stays inactive and XDP drops what it routes there (fail closed, never in the clear).
const BLACKHOLE: u32 = MAX_TUNNELS - 1;

/// Routes into tunnels: the tunnel each prefix goes to, or `None` to drop its traffic (the
/// configured tunnels for it are all down).
pub type RoutePlan = BTreeMap<Ipv4Net, Option<String>>;

/// How long an SA taken out of the maps stays in the worker.
pub const LINGER: Duration = Duration::from_secs(2);

/// An SA on its way out of the worker.
struct Lingering {
    until: Instant,
    slot: u32,
    /// Still in the inbound map under this SPI until then.
    accepting: Option<u32>,
}

/// What decides where a tunnel's packets go; changing any of it reinstalls the tunnel.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shape {
    local_address: std::net::Ipv4Addr,
    peer_address: std::net::Ipv4Addr,
    encapsulation: EncapsulationSpec,
    local_prefixes: Vec<Ipv4Net>,
    remote_prefixes: Vec<Ipv4Net>,
    route_based: bool,
    mtu: u16,
    mss: u16,
    lifetime: Lifetime,
}

impl Shape {
    fn of(t: &StaticTunnel) -> Self {
        Shape {
            local_address: t.local_address,
            peer_address: t.peer_address,
            encapsulation: t.encapsulation,
            local_prefixes: t.local_prefixes.clone(),
            remote_prefixes: t.remote_prefixes.clone(),
            route_based: t.route_based,
            mtu: t.mtu,
            mss: t.mss,
            lifetime: t.lifetime,
        }
    }

    /// The SA's traffic selectors: the prefixes, or 0.0.0.0/0 both ways for a route-based
    /// tunnel (RFC 7296 2.9; what AWS negotiates), where routing alone picks the tunnel.
    fn selectors(&self) -> Selectors {
        if self.route_based {
            Selectors::default()
        } else {
            Selectors {
                local: self.local_prefixes.clone(),
                remote: self.remote_prefixes.clone(),
            }
        }
    }

    fn encapsulation(&self) -> Encapsulation {
        match self.encapsulation {
            EncapsulationSpec::Udp => Encapsulation::EspInUdp,
            EncapsulationSpec::Esp => Encapsulation::Esp,
        }
    }
}

/// A tunnel as installed: its slot, and its SAs by SPI with their worker slots.
struct Installed {
    index: u32,
    shape: Shape,
    outbound: (u32, u32),
    inbound: BTreeMap<u32, u32>,
    /// False once the outbound SA reached its hard limit: the tunnel carries nothing.
    active: bool,
}

/// Slot numbers handed out and taken back.
struct Slots {
    next: u32,
    free: Vec<u32>,
    limit: u32,
}

impl Slots {
    fn new(limit: u32) -> Self {
        Slots {
            next: 0,
            free: Vec::new(),
            limit,
        }
    }

    fn take(&mut self) -> anyhow::Result<u32> {
        if let Some(slot) = self.free.pop() {
            return Ok(slot);
        }
        if self.next >= self.limit {
            anyhow::bail!("all {} slots are in use", self.limit);
        }
        self.next += 1;
        Ok(self.next - 1)
    }

    fn give(&mut self, slot: u32) {
        self.free.push(slot);
    }
}

pub struct TunnelRuntime {
    tables: TunnelTables,
    tunnels: BTreeMap<String, Installed>,
    tunnel_slots: Slots,
    sa_slots: Slots,
    lingering: Vec<Lingering>,
    /// The LPM route table as written: prefix -> tunnel slot (or [`BLACKHOLE`]).
    routes: BTreeMap<Ipv4Net, u32>,
    /// Tunnel slots freed during an [`TunnelRuntime::apply`], reusable after its routes moved.
    freed: Vec<u32>,
    workers: WorkerPool,
    events: mpsc::Receiver<LifetimeEvent>,
    lifetime_events: BTreeMap<String, u64>,
    /// Kernel routes and tunnel devices for the router's own traffic (`None` if they could
    /// not be set up: forwarding still works).
    kernel: Option<KernelRoutes>,
    /// What the worker was last told about the tunnel devices: (tunnel, outbound slot).
    local_told: Vec<(String, Option<u32>)>,
}

impl TunnelRuntime {
    /// Starts one worker per receive queue both interfaces have (at most `max_workers`), then
    /// installs `tunnels`.
    pub fn start(
        datapath: &mut Datapath,
        tunnels: Vec<StaticTunnel>,
        max_workers: Option<u32>,
    ) -> anyhow::Result<Self> {
        let interface = |role: &str| {
            datapath
                .attached()
                .iter()
                .find(|i| i.role == role)
                .map(|i| (i.ifindex, i.name.clone()))
                .ok_or_else(|| anyhow!("tunnels need a {role} interface"))
        };
        let ((wan, wan_name), (lan, lan_name)) = (interface("wan")?, interface("lan")?);
        let (wan_queues, lan_queues) = (rx_queues(&wan_name)?, rx_queues(&lan_name)?);
        let count = worker_count(wan_queues, lan_queues, max_workers);
        if count < wan_queues.max(lan_queues) {
            tracing::warn!(
                workers = count,
                wan = %wan_name, wan_queues,
                lan = %lan_name, lan_queues,
                "fewer crypto workers than receive queues: tunnel traffic arriving on a queue \
                 without one is dropped (no_worker); lower the queue count (ethtool -L) to match"
            );
        }
        let lan_address = datapath
            .attached()
            .iter()
            .find(|i| i.role == "lan")
            .map(|i| interface_ipv4(&i.name))
            .transpose()?
            .flatten();
        let kernel = match KernelRoutes::start(lan_address) {
            Ok(kernel) => Some(kernel),
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "no kernel routes: the router's own traffic will not use the tunnels");
                None
            }
        };
        let mut tables = datapath.tunnel_tables()?;
        let (event_sender, events) = mpsc::channel();
        let workers = WorkerPool::start(&mut tables, (wan, lan), count, &event_sender)?;
        tracing::info!(
            workers = workers.len(),
            wan_queues,
            lan_queues,
            "crypto workers started"
        );
        let mut runtime = TunnelRuntime {
            tables,
            tunnels: BTreeMap::new(),
            tunnel_slots: Slots::new(BLACKHOLE),
            sa_slots: Slots::new(MAX_INBOUND_SAS),
            lingering: Vec::new(),
            routes: BTreeMap::new(),
            freed: Vec::new(),
            workers,
            events,
            lifetime_events: BTreeMap::new(),
            kernel,
            local_told: Vec::new(),
        };
        let routes = static_routes(&tunnels);
        runtime.apply(tunnels, &routes, Instant::now())?;
        Ok(runtime)
    }

    /// Brings the datapath to `wanted` and its routes to `routes`: new tunnels are installed,
    /// the SAs of the others updated make-before-break, and a tunnel whose addresses,
    /// selectors or MTU changed is reinstalled; then every route is pointed at its tunnel (an
    /// LPM entry is overwritten in place, so a route moving to another tunnel never lets a
    /// packet pass in the clear); tunnels no longer wanted go last.
    pub fn apply(
        &mut self,
        wanted: Vec<StaticTunnel>,
        routes: &RoutePlan,
        now: Instant,
    ) -> anyhow::Result<()> {
        let gone: Vec<String> = self
            .tunnels
            .keys()
            .filter(|name| !wanted.iter().any(|t| &t.name == *name))
            .cloned()
            .collect();
        for tunnel in wanted {
            match self.tunnels.get(&tunnel.name) {
                Some(installed) if installed.shape == Shape::of(&tunnel) => {
                    self.update(tunnel, now)?
                }
                Some(_) => {
                    tracing::info!(tunnel = %tunnel.name, "addresses, selectors or MTU changed: reinstalling");
                    self.uninstall(&tunnel.name, now)?;
                    self.install(tunnel, now)?;
                }
                None => self.install(tunnel, now)?,
            }
        }
        self.route(routes, &gone)?;
        for name in &gone {
            self.uninstall(name, now)?;
        }
        self.tell_local_ports();
        // Only now may another tunnel take a freed slot: no route points there any more.
        for index in self.freed.drain(..) {
            self.tunnel_slots.give(index);
        }
        Ok(())
    }

    /// Points every prefix of `plan` at its tunnel's slot (or the black hole, also for the
    /// tunnels about to go) and removes the prefixes it no longer has.
    fn route(&mut self, plan: &RoutePlan, going: &[String]) -> anyhow::Result<()> {
        for (prefix, tunnel) in plan {
            let target = tunnel
                .as_ref()
                .filter(|name| !going.contains(name))
                .and_then(|name| self.tunnels.get(name))
                .map_or(BLACKHOLE, |t| t.index);
            if self.routes.get(prefix) != Some(&target) {
                self.tables.add_route(*prefix, target)?;
                self.routes.insert(*prefix, target);
                match tunnel.as_ref().filter(|_| target != BLACKHOLE) {
                    Some(name) => tracing::info!(%prefix, tunnel = %name, "route into the tunnel"),
                    None => {
                        tracing::warn!(%prefix, "no tunnel up for this route: its traffic is dropped")
                    }
                }
            }
        }
        let stale: Vec<Ipv4Net> = self
            .routes
            .keys()
            .filter(|p| !plan.contains_key(*p))
            .copied()
            .collect();
        for prefix in stale {
            self.tables.remove_route(prefix)?;
            self.routes.remove(&prefix);
            tracing::info!(%prefix, "route removed");
        }
        self.sync_kernel_routes(plan, going);
        Ok(())
    }

    /// The kernel's routes follow XDP's: a prefix goes to the device of the tunnel it is
    /// steered to, or nowhere.
    fn sync_kernel_routes(&mut self, plan: &RoutePlan, going: &[String]) {
        let Some(kernel) = self.kernel.as_mut() else {
            return;
        };
        // A tunnel keeps its device while it is down (routes move away from it, not with it);
        // one that could not get its device yet tries again here.
        for (name, t) in &self.tunnels {
            kernel.ensure_device(name, t.shape.mtu);
        }
        let carried: RoutePlan = plan
            .iter()
            .map(|(prefix, tunnel)| {
                let live = tunnel
                    .clone()
                    .filter(|name| !going.contains(name) && self.tunnels.contains_key(name));
                (*prefix, live)
            })
            .collect();
        let peers: Vec<std::net::Ipv4Addr> = self
            .tunnels
            .values()
            .map(|t| t.shape.peer_address)
            .collect();
        kernel.sync(&carried, &peers);
    }

    /// Closes the devices of tunnels that are no longer configured (their routes are gone).
    pub fn keep_devices(&mut self, configured: &[String]) {
        if let Some(kernel) = self.kernel.as_mut() {
            kernel.keep_devices(configured);
        }
        self.tell_local_ports();
    }

    /// Puts back kernel routes removed behind the agent's back.
    pub fn repair_kernel_routes(&mut self) {
        if let Some(kernel) = self.kernel.as_mut() {
            kernel.repair();
        }
    }

    /// The LAN address the router's own packets into tunnels come from changed.
    pub fn set_route_source(&mut self, source: Option<std::net::Ipv4Addr>) {
        if let Some(kernel) = self.kernel.as_mut() {
            kernel.set_source(source);
        }
    }

    /// Sends the first worker the tunnel devices with their current outbound SAs, if that changed.
    fn tell_local_ports(&mut self) {
        let Some(kernel) = self.kernel.as_ref() else {
            return;
        };
        let ports: Vec<LocalPort> = kernel
            .devices()
            .map(|(tunnel, device)| LocalPort {
                tunnel: tunnel.clone(),
                device: device.clone(),
                out_slot: self
                    .tunnels
                    .get(tunnel)
                    .filter(|t| t.active)
                    .map(|t| t.outbound.1),
            })
            .collect();
        let told: Vec<(String, Option<u32>)> = ports
            .iter()
            .map(|p| (p.tunnel.clone(), p.out_slot))
            .collect();
        // One worker reads the tunnel devices: the router's own traffic is little.
        if told != self.local_told && self.workers.local_ports(ports).is_ok() {
            self.local_told = told;
        }
    }

    /// Has the workers translate decrypted traffic that matches a NAT rule; `open` gives each
    /// its own handles on the NAT maps.
    pub fn enable_nat(
        &self,
        open: impl Fn() -> anyhow::Result<super::nat::worker_path::WorkerNat>,
    ) -> anyhow::Result<()> {
        self.workers.enable_nat(open)
    }

    fn add_inbound(
        &mut self,
        name: &str,
        shape: &Shape,
        params: SaParams,
    ) -> anyhow::Result<(u32, u32)> {
        let spi = params.spi.get();
        let slot = self.sa_slots.take()?;
        self.workers.install(
            slot,
            SaEntry::Inbound(InboundEntry {
                name: name.to_owned(),
                spi,
                esp: Box::new(Open(EspInbound::new(params))),
                selectors: shape.selectors(),
                mss: shape.mss,
                usage: Usage::new(shape.lifetime, Instant::now()),
            }),
        )?;
        self.tables.set_inbound(
            spi,
            InboundSa {
                sa_slot: slot,
                encapsulation: shape.encapsulation() as u8,
                _pad: [0; 3],
            },
        )?;
        Ok((spi, slot))
    }

    fn add_outbound(
        &mut self,
        name: &str,
        shape: &Shape,
        params: SaParams,
    ) -> anyhow::Result<(u32, u32)> {
        let spi = params.spi.get();
        let slot = self.sa_slots.take()?;
        self.workers.install(
            slot,
            SaEntry::Outbound(OutboundEntry {
                name: name.to_owned(),
                spi,
                esp: Box::new(Seal(EspOutbound::new(params))),
                local_address: shape.local_address,
                mtu: shape.mtu,
                usage: Usage::new(shape.lifetime, Instant::now()),
            }),
        )?;
        Ok((spi, slot))
    }

    fn write_tunnel(
        &mut self,
        index: u32,
        shape: &Shape,
        out_slot: u32,
        active: bool,
    ) -> anyhow::Result<()> {
        // XDP checks one local prefix; with several, the worker's selectors still apply on the
        // way in, and the LAN side accepts any source for this tunnel's routes.
        let (local_prefix, local_prefix_len) = match shape.selectors().local.as_slice() {
            [one] => (one.network().octets(), one.prefix_len()),
            _ => ([0; 4], 0),
        };
        self.tables.set_tunnel(
            index,
            TunnelOut {
                active: u32::from(active),
                sa_slot: out_slot,
                local_addr: shape.local_address.octets(),
                peer_addr: shape.peer_address.octets(),
                local_prefix,
                local_prefix_len,
                encapsulation: shape.encapsulation() as u8,
                mss: shape.mss,
            },
        )
    }

    fn install(&mut self, tunnel: StaticTunnel, now: Instant) -> anyhow::Result<()> {
        let shape = Shape::of(&tunnel);
        let index = self.tunnel_slots.take()?;
        let mut inbound = BTreeMap::new();
        for params in tunnel.inbound {
            let (spi, slot) = self.add_inbound(&tunnel.name, &shape, params)?;
            inbound.insert(spi, slot);
        }
        let outbound = self.add_outbound(&tunnel.name, &shape, tunnel.outbound)?;
        self.write_tunnel(index, &shape, outbound.1, true)?;
        tracing::info!(
            tunnel = %tunnel.name,
            peer = %shape.peer_address,
            spi_out = format_args!("{:#010x}", outbound.0),
            spis_in = ?inbound.keys().map(|s| format!("{s:#010x}")).collect::<Vec<_>>(),
            encapsulation = ?shape.encapsulation(),
            "tunnel installed"
        );
        self.tunnels.insert(
            tunnel.name,
            Installed {
                index,
                shape,
                outbound,
                inbound,
                active: true,
            },
        );
        self.expire(now);
        Ok(())
    }

    /// Same tunnel, possibly other SAs: add new inbound SAs, switch outbound, retire the rest.
    fn update(&mut self, tunnel: StaticTunnel, now: Instant) -> anyhow::Result<()> {
        let name = tunnel.name.clone();
        let (index, shape, old_out, old_in) = {
            let t = &self.tunnels[&name];
            (t.index, t.shape.clone(), t.outbound, t.inbound.clone())
        };
        let wanted_in: Vec<u32> = tunnel.inbound.iter().map(|p| p.spi.get()).collect();
        let mut inbound = old_in.clone();
        for params in tunnel.inbound {
            if !old_in.contains_key(&params.spi.get()) {
                let (spi, slot) = self.add_inbound(&name, &shape, params)?;
                tracing::info!(tunnel = %name, spi = format_args!("{spi:#010x}"), "inbound SA added");
                inbound.insert(spi, slot);
            }
        }
        let mut outbound = old_out;
        if tunnel.outbound.spi.get() != old_out.0 {
            outbound = self.add_outbound(&name, &shape, tunnel.outbound)?;
            self.write_tunnel(index, &shape, outbound.1, true)?;
            self.retire(old_out.1, now);
            tracing::info!(
                tunnel = %name,
                from = format_args!("{:#010x}", old_out.0),
                to = format_args!("{:#010x}", outbound.0),
                "outbound switched to the new SA"
            );
        }
        for (spi, slot) in old_in {
            if !wanted_in.contains(&spi) {
                self.lingering.push(Lingering {
                    until: now + LINGER,
                    slot,
                    accepting: Some(spi),
                });
                inbound.remove(&spi);
                tracing::info!(tunnel = %name, spi = format_args!("{spi:#010x}"), "inbound SA retired");
            }
        }
        if let Some(t) = self.tunnels.get_mut(&name) {
            if t.outbound != outbound {
                t.active = true;
            }
            t.outbound = outbound;
            t.inbound = inbound;
        }
        self.expire(now);
        Ok(())
    }

    /// The tunnel and inbound entries (routes still pointing here drop what they steer); the
    /// worker's SAs linger, then go, their keys zeroized as they are dropped.
    fn uninstall(&mut self, name: &str, now: Instant) -> anyhow::Result<()> {
        let Some(t) = self.tunnels.remove(name) else {
            return Ok(());
        };
        self.write_tunnel(t.index, &t.shape, t.outbound.1, false)?;
        for (spi, slot) in &t.inbound {
            self.tables.remove_inbound(*spi)?;
            self.retire(*slot, now);
        }
        self.retire(t.outbound.1, now);
        self.freed.push(t.index);
        tracing::info!(tunnel = %name, "tunnel removed");
        Ok(())
    }

    fn retire(&mut self, slot: u32, now: Instant) {
        self.lingering.push(Lingering {
            until: now + LINGER,
            slot,
            accepting: None,
        });
    }

    /// Acts on the lifetime limits the worker reported: a soft limit is logged (the keys
    /// should be rotated); at a hard limit the SA leaves the maps: an outbound one takes its
    /// tunnel down (traffic is dropped, never sent in the clear), an inbound one stops being
    /// accepted.
    fn handle_lifetime_events(&mut self, now: Instant) {
        while let Ok(event) = self.events.try_recv() {
            let name = match event.expiry {
                Expiry::Soft => "soft",
                Expiry::Hard => "hard",
            };
            *self.lifetime_events.entry(name.to_owned()).or_default() += 1;
            let Some((tunnel, outbound)) = self.tunnels.iter().find_map(|(n, t)| {
                if t.outbound.1 == event.slot {
                    Some((n.clone(), true))
                } else if t.inbound.values().any(|s| *s == event.slot) {
                    Some((n.clone(), false))
                } else {
                    None
                }
            }) else {
                continue;
            };
            let direction = if outbound { "outbound" } else { "inbound" };
            match event.expiry {
                Expiry::Soft => {
                    tracing::warn!(%tunnel, direction, "SA reached its soft lifetime: rotate the keys")
                }
                Expiry::Hard => {
                    tracing::error!(%tunnel, direction, "SA reached its hard lifetime: it carries nothing more");
                    if let Err(err) = self.end_sa(&tunnel, event.slot, outbound, now) {
                        tracing::warn!(error = %format!("{err:#}"), %tunnel, "taking an expired SA out");
                    }
                }
            }
        }
    }

    fn end_sa(
        &mut self,
        tunnel: &str,
        slot: u32,
        outbound: bool,
        now: Instant,
    ) -> anyhow::Result<()> {
        let Some(t) = self.tunnels.get(tunnel) else {
            return Ok(());
        };
        let (index, shape) = (t.index, t.shape.clone());
        if outbound {
            self.write_tunnel(index, &shape, slot, false)?;
            if let Some(t) = self.tunnels.get_mut(tunnel) {
                t.active = false;
            }
            self.tell_local_ports();
        } else {
            let spi = t
                .inbound
                .iter()
                .find(|(_, s)| **s == slot)
                .map(|(spi, _)| *spi);
            if let Some(spi) = spi {
                self.tables.remove_inbound(spi)?;
                self.retire(slot, now);
                if let Some(t) = self.tunnels.get_mut(tunnel) {
                    t.inbound.remove(&spi);
                }
            }
        }
        Ok(())
    }

    /// Removes lingering SAs whose time is up and handles lifetime events; call it
    /// periodically.
    pub fn expire(&mut self, now: Instant) {
        self.handle_lifetime_events(now);
        let (due, keep): (Vec<_>, Vec<_>) = self.lingering.drain(..).partition(|l| l.until <= now);
        self.lingering = keep;
        for Lingering {
            slot, accepting, ..
        } in due
        {
            // Unless a tunnel took the SPI up again meanwhile.
            if let Some(spi) = accepting
                && !self.tunnels.values().any(|t| t.inbound.contains_key(&spi))
                && let Err(err) = self.tables.remove_inbound(spi)
            {
                tracing::warn!(error = %format!("{err:#}"), "removing a retired inbound SA");
            }
            if self.workers.remove(slot).is_ok() {
                self.sa_slots.give(slot);
            }
        }
    }

    pub fn report(&self) -> WorkerReport {
        let mut report = self.workers.report();
        report.lifetime_events = self.lifetime_events.clone();
        report
    }

    pub fn stop(mut self) {
        let now = Instant::now();
        if let Err(err) = self.route(&RoutePlan::new(), &[]) {
            tracing::warn!(error = %format!("{err:#}"), "removing the tunnel routes");
        }
        let names: Vec<String> = self.tunnels.keys().cloned().collect();
        for name in names {
            if let Err(err) = self.uninstall(&name, now) {
                tracing::warn!(error = %format!("{err:#}"), tunnel = %name, "removing a tunnel");
            }
        }
        if let Some(kernel) = self.kernel.take() {
            kernel.stop();
        }
        // Stopping: no frame is in flight any more, so nothing needs to linger.
        self.expire(now + LINGER);
        self.workers.stop();
    }
}

/// The routes of static tunnels: each one's remote prefixes.
pub fn static_routes(tunnels: &[StaticTunnel]) -> RoutePlan {
    tunnels
        .iter()
        .flat_map(|t| t.remote_prefixes.iter().map(|p| (*p, Some(t.name.clone()))))
        .collect()
}
