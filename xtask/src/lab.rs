//! `cargo xtask lab up|down|status`.

use anyhow::Context as _;
use clap::Subcommand;
use vpn_lab::{Lab, LabSpec, registry::LabRecord};

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Create a lab that stays up until `lab down`; prints its id.
    Up {
        /// Put router-a behind a 1:1 NAT (EC2 Elastic IP style).
        #[arg(long)]
        nat: bool,
        /// Transmit and receive queues of every link (an agent runs one crypto worker per
        /// queue); default 1.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        queues: u16,
    },
    /// Remove a lab (all recorded labs with --all).
    Down {
        /// The lab id printed by `lab up`.
        id: Option<String>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// List recorded labs and their namespaces.
    Status,
}

pub fn run(command: LabCommand) -> anyhow::Result<()> {
    match command {
        LabCommand::Up { nat, queues } => {
            let lab = Lab::up(LabSpec {
                nat,
                queues,
                ..LabSpec::default()
            })?;
            print_lab(&lab);
            let id = lab.keep();
            println!("\nlab {id} is up; remove it with: cargo xtask lab down {id}");
            Ok(())
        }
        LabCommand::Down { id: Some(id), .. } => {
            Lab::attach(&id)?.down()?;
            println!("lab {id} removed");
            Ok(())
        }
        LabCommand::Down { id: None, all } => {
            let labs = LabRecord::all()?;
            if !all && labs.len() > 1 {
                anyhow::bail!("several labs are up; name one or use --all");
            }
            for record in labs {
                let id = record.id.clone();
                Lab::attach(&id)?
                    .down()
                    .with_context(|| format!("removing lab {id}"))?;
                println!("lab {id} removed");
            }
            Ok(())
        }
        LabCommand::Status => {
            let existing = vpn_lab::netns::list()?;
            let labs = LabRecord::all()?;
            if labs.is_empty() {
                println!("no lab is up");
            }
            for record in labs {
                let owner = match &record.owner {
                    Some(o) if o.alive() => format!("owned by pid {}", o.pid),
                    Some(o) => format!("orphaned (pid {} is gone)", o.pid),
                    None => "kept (lab up)".to_owned(),
                };
                println!(
                    "lab {} ({}, NAT {}):",
                    record.id,
                    owner,
                    if record.nat { "on" } else { "off" }
                );
                for ns in &record.namespaces {
                    let state = if existing.contains(ns) {
                        "present"
                    } else {
                        "missing"
                    };
                    println!("  {ns:<24} {state}");
                }
            }
            Ok(())
        }
    }
}

pub fn print_lab(lab: &Lab) {
    use vpn_lab::{Node, addr};
    println!("lab {}:", lab.id());
    println!("  {:<24} {} (eth0)", lab.ns(Node::HostA), addr::HOST_A);
    println!(
        "  {:<24} lan {} / wan {}",
        lab.ns(Node::RouterA),
        addr::ROUTER_A_LAN,
        if lab.has_nat() {
            addr::ROUTER_A_WAN_PRIVATE
        } else {
            addr::ROUTER_A_WAN
        }
    );
    if lab.has_nat() {
        println!(
            "  {:<24} inside {} / outside {} (1:1 NAT of {})",
            lab.ns(Node::NatA),
            addr::NAT_A_INSIDE,
            addr::ROUTER_A_WAN,
            addr::ROUTER_A_WAN_PRIVATE
        );
    }
    println!(
        "  {:<24} wan {} / lan {}",
        lab.ns(Node::RouterB),
        addr::ROUTER_B_WAN,
        addr::ROUTER_B_LAN
    );
    println!("  {:<24} {} (eth0)", lab.ns(Node::HostB), addr::HOST_B);
    println!(
        "  enter a node with: ip netns exec {} bash",
        lab.ns(Node::HostA)
    );
}
