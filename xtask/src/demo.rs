//! `cargo xtask demo`: the appliance on the standard lab, end to end, for a first look.

use std::time::Duration;

use anyhow::{Context as _, bail};
use vpn_lab::{
    Lab, LabSpec, Node, addr,
    agent::StatusSnapshot,
    ike_tunnel::{IkeOptions, IkeTunnelFiles},
    registry::teardown_owned_by_current,
};

use crate::{compile, lab::print_lab, step};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Leave the lab and the agents running afterwards (remove with `cargo xtask lab down`).
    #[arg(long)]
    keep: bool,
    /// Put router-a behind the 1:1 NAT namespace.
    #[arg(long)]
    nat: bool,
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let agent_bin = compile::build()?;

    step("demo: lab up");
    // Ctrl-C: remove what this run created (agents are stopped with their namespaces).
    ctrlc::set_handler(|| {
        eprintln!("\ninterrupted: tearing the lab down");
        if let Err(err) = teardown_owned_by_current() {
            eprintln!("teardown failed: {err:#}");
        }
        std::process::exit(130);
    })
    .context("installing the Ctrl-C handler")?;
    let lab = Lab::up(LabSpec {
        nat: args.nat,
        ..LabSpec::default()
    })?;
    print_lab(&lab);

    step("demo: agents on router-a and router-b negotiate their tunnel with IKEv2");
    // The lab's built-in configuration, with a fresh random pre-shared key per run.
    let tunnel = IkeTunnelFiles::write(
        lab.id(),
        &IkeOptions {
            nat: args.nat,
            ..IkeOptions::default()
        },
    )?;
    let config = std::fs::read_to_string(&tunnel.router_a)?;
    println!(
        "router-a's configuration ({}):\n{config}",
        tunnel.router_a.display()
    );
    let (agent_a, agent_b) = tunnel.start_agents(&lab, &agent_bin)?;
    println!(
        "agents running: {} and {}",
        agent_a.instance(),
        agent_b.instance()
    );
    let negotiated = |s: &StatusSnapshot| {
        s.worker.as_ref().is_some_and(|w| w.sas.len() == 2)
            && s.ike.as_ref().is_some_and(|i| {
                i.ike_sas
                    .iter()
                    .any(|sa| sa.state == "ESTABLISHED" && !sa.child_sas.is_empty())
            })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !negotiated(&agent_a.status()?) {
        if std::time::Instant::now() > deadline {
            bail!("the tunnel was not negotiated in 20 s:\n{}", agent_a.log());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    step("demo: vpn-agent status on router-a after the negotiation");
    print!("{}", agent_a.status_table()?);

    step("demo: traffic through the tunnel");
    let ping = lab.exec(
        Node::HostA,
        "ping",
        &["-c", "5", "-i", "0.2", "-q", &addr::HOST_B.to_string()],
    )?;
    println!("host-a -> host-b:\n{}", ping.trim());
    let mut server = lab
        .command(Node::HostB, "iperf3")
        .args(["-s", "-1", "-B", &addr::HOST_B.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("starting iperf3 on host-b")?;
    std::thread::sleep(Duration::from_millis(300));
    let iperf = lab.exec(
        Node::HostA,
        "iperf3",
        &["-c", &addr::HOST_B.to_string(), "-t", "3", "-f", "m"],
    );
    let _ = server.kill();
    let _ = server.wait();
    let iperf = iperf?;
    let summary: Vec<&str> = iperf
        .lines()
        .filter(|l| l.contains("sender") || l.contains("receiver"))
        .collect();
    println!(
        "iperf3 TCP host-a -> host-b through the tunnel:\n{}",
        summary.join("\n")
    );

    // Let the workers publish their counters (twice a second).
    std::thread::sleep(Duration::from_millis(600));
    step("demo: vpn-agent status on router-a");
    print!("{}", agent_a.status_table()?);
    step("demo: vpn-agent status on router-b");
    print!("{}", agent_b.status_table()?);

    let status_a = agent_a.status()?;
    let worker = status_a.worker.clone().unwrap_or_default();
    if worker.encrypted == 0 || worker.decrypted == 0 {
        bail!("router-a's tunnel carried nothing: {worker:?}");
    }
    println!(
        "\nrouter-a's tunnel: {} packets sealed, {} opened",
        worker.encrypted, worker.decrypted
    );
    // IKE and ESP (raw, or in UDP through the NAT) crossed the WAN; nothing in the clear.
    let esp = status_a.packets("wan", "esp")? + status_a.packets("wan", "esp_in_udp")?;
    let (ike, plain) = (
        status_a.packets("wan", "ike")? + status_a.packets("wan", "ike_natt")?,
        status_a.packets("wan", "plain")?,
    );
    if ike == 0 || esp == 0 || plain != 0 {
        bail!("router-a's WAN saw {ike} IKE, {esp} ESP and {plain} clear packets");
    }

    if args.keep {
        // The configuration and key stay for the agents left running (an operator may
        // restart one).
        std::mem::forget(tunnel);
        println!("\nkeeping lab {} and its agents up", lab.id());
        println!(
            "  status: {} status --instance {}",
            agent_bin.display(),
            agent_a.instance()
        );
        let id = lab.id().to_owned();
        agent_a.leave_running();
        agent_b.leave_running();
        lab.keep();
        println!("  remove: cargo xtask lab down {id}");
        return Ok(());
    }

    step("demo: stop agents and tear down");
    agent_a.stop()?;
    agent_b.stop()?;
    let id = lab.id().to_owned();
    lab.down()?;
    println!("agents detached cleanly; lab {id} removed");
    Ok(())
}
