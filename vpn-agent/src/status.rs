//! `vpn-agent status`: the datapath counters of a running instance, as a table or JSON.

use std::fmt::Write as _;

use anyhow::{Context as _, bail};
use serde::Serialize;
use vpn_common::{InterfaceRole, PacketClass, TrafficCounter};

use crate::{
    cli::StatusArgs,
    datapath::counters::ClassCounters,
    instance::{AttachedInterface, RuntimeState},
};

#[derive(Debug, Serialize)]
struct StatusReport {
    instance: String,
    pid: u32,
    pin_dir: String,
    interfaces: Vec<InterfaceReport>,
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
    let report = build_report(&state, &counters)?;
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
    })
}

fn render_table(report: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "instance {} (pid {}), maps pinned in {}",
        report.instance, report.pid, report.pin_dir
    );
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
    out
}
