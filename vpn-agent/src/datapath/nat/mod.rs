//! NAT masquerade, the agent's side (issue 5, seed 002): the configuration's rules into the
//! XDP rule array (re-resolved as interface addresses change), the port range and the ports
//! the host has bound, the garbage collection of idle flows, and the counters for `status`.
//! The per-packet work (tracking, allocation, rewriting) is in XDP (`vpn-ebpf`'s `bpf/nat.rs`).

pub mod ports;
pub mod rules;
pub mod sweep;
pub mod timeouts;
pub mod worker_path;

use std::{collections::HashMap as StdHashMap, net::Ipv4Addr};

use anyhow::{Context as _, bail};
use aya::maps::{Array, HashMap, MapData, PerCpuArray, PerCpuValues};
use vpn_common::{
    InterfaceRole, names,
    nat::{FlowKey, MAX_NAT_RULES, NatEvent, NatMapping, NatRuleEntry, NatSettings},
};
use vpn_config::NatRule;

use super::tables::take;
use crate::system::sysctl::{AppliedSysctls, Setting};
use rules::{OutInterface, RuleProblem};

/// The sweep and the reserved-port refresh run every this many agent ticks (500 ms each).
const SWEEP_EVERY_TICKS: u32 = 4;

/// The NAT maps of the loaded eBPF object.
pub struct NatMaps {
    rules: Array<MapData, NatRuleEntry>,
    settings: Array<MapData, NatSettings>,
    out: HashMap<MapData, FlowKey, NatMapping>,
    inbound: HashMap<MapData, FlowKey, NatMapping>,
    reserved: Array<MapData, u64>,
    events: PerCpuArray<MapData, u64>,
}

impl NatMaps {
    pub fn take_from(ebpf: &mut aya::Ebpf) -> anyhow::Result<Self> {
        Ok(NatMaps {
            rules: take(ebpf, names::NAT_RULES)?,
            settings: take(ebpf, names::NAT_SETTINGS)?,
            out: take(ebpf, names::NAT_OUT)?,
            inbound: take(ebpf, names::NAT_IN)?,
            reserved: take(ebpf, names::NAT_RESERVED_PORTS)?,
            events: take(ebpf, names::NAT_EVENTS)?,
        })
    }
}

/// The running NAT: rules installed, sweeping on every few ticks.
pub struct NatRuntime {
    maps: NatMaps,
    rules: Vec<NatRule>,
    installed: Vec<NatRuleEntry>,
    reported: Vec<String>,
    reserved_words: Vec<u64>,
    expired: u64,
    ticks: u32,
    sysctls: Option<AppliedSysctls>,
}

impl NatRuntime {
    /// Starts NAT for `rules` on a datapath attached to `attached` interfaces; `None` if there
    /// are no rules.
    pub fn start(
        datapath: &mut super::loader::Datapath,
        rules: &[NatRule],
    ) -> anyhow::Result<Option<Self>> {
        if rules.is_empty() {
            return Ok(None);
        }
        check_out_interfaces(datapath.attached(), rules)?;
        let maps = datapath.nat_maps()?;
        let local = ports::read_local_range()?;
        let range = ports::nat_range(local.clone())?;
        tracing::info!(
            ports = %format!("{}-{}", range.start(), range.end()),
            ip_local_port_range = %format!("{}-{}", local.start(), local.end()),
            "NAT port range (clear of the kernel's ephemeral ports)"
        );

        // The translated source is the router's own address; the kernel must accept such
        // packets where they arrive: every served LAN interface that is no rule's out
        // interface. Never the WAN: there it would let the internet send packets that claim
        // the router's own address. (Decrypted tunnel traffic needs nothing: the worker
        // sends it as the router's own.)
        let inside: Vec<&String> = datapath
            .attached()
            .iter()
            .filter(|a| a.role == InterfaceRole::Lan.name())
            .map(|a| &a.name)
            .filter(|name| !rules.iter().any(|r| &r.out == *name))
            .collect();
        for name in &inside {
            warn_strict_rp_filter(name);
        }
        let settings = inside
            .iter()
            .map(|name| Setting {
                key: format!("net.ipv4.conf.{name}.accept_local"),
                value: "1".into(),
            })
            .collect();
        let sysctls = AppliedSysctls::apply(settings, true).context("setting accept_local")?;

        let mut runtime = NatRuntime {
            maps,
            rules: rules.to_vec(),
            installed: Vec::new(),
            reported: Vec::new(),
            reserved_words: vec![0; vpn_common::nat::NAT_RESERVED_WORDS as usize],
            expired: 0,
            ticks: 0,
            sysctls: Some(sysctls),
        };
        // Port range and reserved ports first, rules last: from the first matching packet on,
        // XDP has everything it needs to allocate.
        let settings = NatSettings {
            port_first: *range.start(),
            port_last: *range.end(),
            _pad: 0,
        };
        let started = runtime
            .maps
            .settings
            .set(0, settings, 0)
            .context("writing the NAT settings")
            .and_then(|()| runtime.refresh_reserved_ports())
            .and_then(|()| runtime.refresh_rules());
        if let Err(err) = started {
            runtime.stop();
            return Err(err);
        }
        Ok(Some(runtime))
    }

    /// Replaces the rules (a reload); flows already translated keep their mappings until
    /// they idle out.
    pub fn set_rules(
        &mut self,
        attached: &[crate::instance::AttachedInterface],
        rules: &[NatRule],
    ) -> anyhow::Result<()> {
        check_out_interfaces(attached, rules)?;
        self.rules = rules.to_vec();
        self.refresh_rules()
    }

    /// Housekeeping on each agent tick: rules follow address changes; every few ticks the
    /// reserved ports are refreshed and idle flows removed.
    pub fn tick(&mut self) {
        if let Err(err) = self.refresh_rules() {
            tracing::warn!(error = %format!("{err:#}"), "updating NAT rules");
        }
        self.ticks = self.ticks.wrapping_add(1);
        if !self.ticks.is_multiple_of(SWEEP_EVERY_TICKS) {
            return;
        }
        if let Err(err) = self.refresh_reserved_ports() {
            tracing::warn!(error = %format!("{err:#}"), "updating the NAT's reserved ports");
        }
        if let Err(err) = self.sweep() {
            tracing::warn!(error = %format!("{err:#}"), "sweeping NAT flows");
        }
    }

    /// Puts the sysctls back. The maps go with the datapath.
    pub fn stop(mut self) {
        if let Some(sysctls) = self.sysctls.take() {
            sysctls.restore();
        }
    }

    fn refresh_rules(&mut self) -> anyhow::Result<()> {
        let (entries, problems) = rules::entries(&self.rules, resolve_interface);
        let messages: Vec<String> = problems.iter().map(RuleProblem::to_string).collect();
        for m in messages.iter().filter(|m| !self.reported.contains(m)) {
            tracing::warn!("{m}");
        }
        self.reported = messages;
        if entries == self.installed {
            return Ok(());
        }
        // Entries first, then the terminator: XDP stops at the first invalid entry.
        for (i, entry) in entries.iter().enumerate() {
            self.maps
                .rules
                .set(i as u32, *entry, 0)
                .with_context(|| format!("writing NAT rule entry {i}"))?;
        }
        for i in entries.len()..self.installed.len().min(MAX_NAT_RULES as usize) {
            self.maps
                .rules
                .set(i as u32, NatRuleEntry::default(), 0)
                .with_context(|| format!("clearing NAT rule entry {i}"))?;
        }
        tracing::info!(entries = entries.len(), "NAT rules installed");
        self.installed = entries;
        Ok(())
    }

    fn refresh_reserved_ports(&mut self) -> anyhow::Result<()> {
        let words = ports::bitmap(&ports::host_ports());
        for (i, (new, old)) in words.iter().zip(self.reserved_words.iter_mut()).enumerate() {
            if new != old {
                self.maps
                    .reserved
                    .set(i as u32, *new, 0)
                    .with_context(|| format!("writing reserved port word {i}"))?;
                *old = *new;
            }
        }
        Ok(())
    }

    fn sweep(&mut self) -> anyhow::Result<()> {
        let out: Vec<(FlowKey, NatMapping)> = self.maps.out.iter().filter_map(Result::ok).collect();
        let inbound: StdHashMap<FlowKey, NatMapping> =
            self.maps.inbound.iter().filter_map(Result::ok).collect();
        let live: Vec<[u8; 4]> = self.installed.iter().map(|e| e.out_addr).collect();
        let decided = sweep::sweep(&out, &inbound, monotonic_ns(), &live);
        // Forward entries first: a packet racing the sweep then starts a new flow (on another
        // port, the old reverse entry still holding this one) rather than use a half-removed one.
        for key in &decided.out {
            let _ = self.maps.out.remove(key);
        }
        for key in &decided.inbound {
            let _ = self.maps.inbound.remove(key);
        }
        if decided.expired > 0 {
            self.expired += decided.expired;
            tracing::debug!(expired = decided.expired, "NAT flows expired");
            let mut values = vec![0u64; aya::util::nr_cpus().map_err(|(_, e)| e)?];
            values[0] = self.expired;
            self.maps
                .events
                .set(NatEvent::Expired as u32, PerCpuValues::try_from(values)?, 0)
                .context("publishing the expired-flow count")?;
        }
        Ok(())
    }
}

/// The interface's index and first IPv4 address.
fn resolve_interface(name: &str) -> Option<OutInterface> {
    let ifindex = nix::net::if_::if_nametoindex(name).ok()?;
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    let addr: Ipv4Addr = addrs
        .filter(|ifa| ifa.interface_name == name)
        .find_map(|ifa| ifa.address.as_ref()?.as_sockaddr_in().map(|s| s.ip()))?;
    Some(OutInterface { ifindex, addr })
}

/// Strict reverse-path filtering drops packets whose source is the router's own address.
fn warn_strict_rp_filter(ifname: &str) {
    let read = |scope: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{scope}/rp_filter"))
            .ok()
            .and_then(|v| v.trim().parse::<u8>().ok())
            .unwrap_or(0)
    };
    if read("all").max(read(ifname)) == 1 {
        tracing::warn!(
            interface = ifname,
            "strict rp_filter drops masqueraded packets arriving here: use rp_filter 0 or 2"
        );
    }
}

/// CLOCK_MONOTONIC in nanoseconds, the clock of bpf_ktime_get_ns.
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Every rule's out interface must run our XDP program, or replies could not be translated back.
pub fn check_out_interfaces(
    attached: &[crate::instance::AttachedInterface],
    rules: &[NatRule],
) -> anyhow::Result<()> {
    let names: Vec<&str> = attached.iter().map(|a| a.name.as_str()).collect();
    for rule in rules {
        if !names.contains(&rule.out.as_str()) {
            bail!(
                "NAT out interface {} has no XDP program (attached: {}): replies could not be translated back",
                rule.out,
                names.join(", ")
            );
        }
    }
    Ok(())
}
