//! `vpn-agent status`: the datapath counters of a running instance, as a table or JSON.

use std::fmt::Write as _;

use anyhow::{Context as _, bail};
use serde::Serialize;
use vpn_common::{InterfaceRole, PacketClass, TrafficCounter};

use crate::{
    cli::StatusArgs,
    control::ike_report::IkeReport,
    datapath::{
        counters::{ClassCounters, NatCounters, read_pinned_events, read_pinned_nat},
        worker::WorkerReport,
    },
    instance::{AttachedInterface, RuntimeState},
};

#[derive(Debug, Serialize)]
struct StatusReport {
    instance: String,
    pid: u32,
    pin_dir: String,
    interfaces: Vec<InterfaceReport>,
    /// XDP tunnel events: frames handed to workers, and drops by reason.
    datapath_events: std::collections::BTreeMap<&'static str, u64>,
    /// The crypto worker's counters and SAs (absent when no tunnel runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<WorkerReport>,
    /// Managed sysctls that no longer have the value the agent set.
    sysctl_drift: Vec<crate::system::sysctl::Drift>,
    /// NAT masquerade: flows tracked and what XDP did (all zero without rules).
    nat: NatCounters,
    /// IKE and CHILD SAs (absent when no tunnel is negotiated).
    #[serde(skip_serializing_if = "Option::is_none")]
    ike: Option<IkeReport>,
}

#[derive(Debug, Serialize)]
struct InterfaceReport {
    #[serde(flatten)]
    interface: AttachedInterface,
    /// Frames received on this interface, by class (XDP sees ingress only).
    received: std::collections::BTreeMap<&'static str, CounterReport>,
}

#[derive(Debug, Serialize)]
struct CounterReport {
    packets: u64,
    bytes: u64,
}

impl From<TrafficCounter> for CounterReport {
    fn from(c: TrafficCounter) -> Self {
        CounterReport {
            packets: c.packets,
            bytes: c.bytes,
        }
    }
}

pub fn show(args: &StatusArgs) -> anyhow::Result<()> {
    let name = &args.instance.instance;
    let Some(state) = RuntimeState::load(name)? else {
        bail!(
            "instance {name} is not running (no {})",
            name.state_file().display()
        );
    };
    if !state.owner_alive() {
        bail!(
            "instance {name} is not running (pid {} has exited)",
            state.pid
        );
    }
    let counters = ClassCounters::read_pinned(&state.pin_dir)
        .with_context(|| format!("reading the counters of instance {name}"))?;
    let mut report = build_report(&state, &counters)?;
    report.datapath_events = read_pinned_events(&state.pin_dir)?.into_iter().collect();
    report.worker = read_json::<WorkerReport>(&name.worker_file())?;
    report.ike = read_json::<IkeReport>(&name.ike_file())?;
    report.nat = read_pinned_nat(&state.pin_dir)?;
    report.sysctl_drift = read_json::<crate::run::SystemReport>(&name.system_file())?
        .map(|s| s.sysctl_drift)
        .unwrap_or_default();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_table(&report));
    }
    Ok(())
}

fn build_report(state: &RuntimeState, counters: &ClassCounters) -> anyhow::Result<StatusReport> {
    let mut interfaces = Vec::new();
    for interface in &state.interfaces {
        let role = InterfaceRole::ALL
            .into_iter()
            .find(|r| r.name() == interface.role)
            .with_context(|| format!("unknown interface role {:?}", interface.role))?;
        let received = PacketClass::ALL
            .into_iter()
            .map(|class| (class.name(), counters.get(role, class).into()))
            .collect();
        interfaces.push(InterfaceReport {
            interface: interface.clone(),
            received,
        });
    }
    Ok(StatusReport {
        instance: state.instance.clone(),
        pid: state.pid,
        pin_dir: state.pin_dir.display().to_string(),
        interfaces,
        datapath_events: Default::default(),
        worker: None,
        sysctl_drift: Vec::new(),
        nat: NatCounters::default(),
        ike: None,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> anyhow::Result<Option<T>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("parsing {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn render_table(report: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "instance {} (pid {}), maps pinned in {}",
        report.instance, report.pid, report.pin_dir
    );
    if let Some(ike) = &report.ike {
        ike.render(&mut out);
    }
    for interface in &report.interfaces {
        let i = &interface.interface;
        let _ = writeln!(
            out,
            "\n{} {} (ifindex {}, XDP {:?}) received:",
            i.role.to_uppercase(),
            i.name,
            i.ifindex,
            i.mode
        );
        let _ = writeln!(out, "  {:<14} {:>12} {:>14}", "class", "packets", "bytes");
        for class in PacketClass::ALL {
            if let Some(c) = interface.received.get(class.name()) {
                let _ = writeln!(
                    out,
                    "  {:<14} {:>12} {:>14}",
                    class.name(),
                    c.packets,
                    c.bytes
                );
            }
        }
    }
    let events: Vec<String> = report
        .datapath_events
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    if !events.is_empty() {
        let _ = writeln!(out, "\nXDP tunnel events: {}", events.join(", "));
    }
    let nat: Vec<String> = report
        .nat
        .events
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    if report.nat.rules > 0 || report.nat.flows > 0 || !nat.is_empty() {
        let _ = writeln!(
            out,
            "\nNAT: {} rule entries, {} flows tracked; {}",
            report.nat.rules,
            report.nat.flows,
            nat.join(", ")
        );
    }
    for d in &report.sysctl_drift {
        let _ = writeln!(
            out,
            "\nsysctl drift: {} is {}, the policy wants {}",
            d.key, d.found, d.wanted
        );
    }
    if let Some(w) = &report.worker {
        let _ = writeln!(
            out,
            "\ncrypto workers ({}): {} encrypted, {} decrypted, sent {} via AF_XDP and {} via the kernel",
            w.workers.len().max(1),
            w.encrypted,
            w.decrypted,
            w.sent_xsk,
            w.sent_kernel
        );
        for each in w.workers.iter().filter(|_| w.workers.len() > 1) {
            let _ = writeln!(
                out,
                "  queue {}: {} encrypted, {} decrypted, {} dropped",
                each.queue.unwrap_or_default(),
                each.encrypted,
                each.decrypted,
                each.dropped.values().sum::<u64>()
            );
        }
        let nat: Vec<String> = w
            .nat
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        if !nat.is_empty() {
            let _ = writeln!(out, "  NAT of decrypted traffic: {}", nat.join(", "));
        }
        let l = &w.loop_stats;
        if l.rx_batches > 0 {
            let _ = writeln!(
                out,
                "  loop: {} frames in {} batches, {} sleeps in poll, {} transmit kicks, {} sendmmsg calls",
                l.rx_frames, l.rx_batches, l.polls, l.tx_kicks, l.sendmmsg_calls
            );
        }
        for (reason, n) in &w.dropped {
            let _ = writeln!(out, "  dropped {reason}: {n}");
        }
        for (kind, n) in &w.lifetime_events {
            let _ = writeln!(out, "  SAs at their {kind} lifetime: {n}");
        }
        for (side, s) in &w.sockets {
            let lost = s.rx_ring_full + s.rx_fill_ring_empty + s.rx_dropped;
            if lost > 0 {
                let _ = writeln!(
                    out,
                    "  {side} socket lost {lost} frames (receive ring full {}, no free frame {}, other {})",
                    s.rx_ring_full, s.rx_fill_ring_empty, s.rx_dropped
                );
            }
        }
        let _ = writeln!(
            out,
            "  {:<16} {:<4} {:>10} {:>12} {:>14}",
            "tunnel", "dir", "spi", "packets", "bytes"
        );
        for sa in &w.sas {
            let _ = writeln!(
                out,
                "  {:<16} {:<4} {:>#10x} {:>12} {:>14}",
                sa.tunnel, sa.direction, sa.spi, sa.packets, sa.bytes
            );
        }
    }
    out
}
