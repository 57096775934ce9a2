//! `cargo xtask demo`: the appliance on the standard lab, end to end, for a first look.

use std::{net::SocketAddrV4, time::Duration};

use anyhow::{Context as _, bail};
use vpn_lab::{
    Lab, LabSpec, Node, addr,
    registry::teardown_owned_by_current,
    static_tunnel::{Encap, StaticTunnelFiles},
    traffic::{self, IKE_NATT_PORT, IKE_PORT},
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
    let lab = Lab::up(LabSpec { nat: args.nat })?;
    print_lab(&lab);

    step("demo: agents on router-a and router-b, with a static-key ESP-in-UDP tunnel");
    // Static keys until the IKE control plane drives the datapath; fresh random keys per run.
    let tunnel = StaticTunnelFiles::write(lab.id(), Encap::Udp, args.nat)?;
    let (agent_a, agent_b) = tunnel.start_agents(&lab, &agent_bin)?;
    println!(
        "agents running: {} and {}",
        agent_a.instance(),
        agent_b.instance()
    );

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

    step("demo: IKE- and ESP-shaped probes for the classifier (unknown SPIs: passed on)");
    send_ipsec_like_traffic(&lab)?;
    println!(
        "router-b -> router-a: 3 IKE (udp/500), 3 IKE NAT-T, 10 ESP-in-UDP, 10 raw ESP, 2 NAT-T keepalives"
    );
    std::thread::sleep(Duration::from_millis(300));

    step("demo: vpn-agent status on router-a");
    print!("{}", agent_a.status_table()?);
    step("demo: vpn-agent status on router-b");
    print!("{}", agent_b.status_table()?);

    let status_a = agent_a.status()?;
    for class in [
        "ike",
        "ike_natt",
        "esp_in_udp",
        "esp",
        "nat_keepalive",
        "plain",
    ] {
        if status_a.packets("wan", class)? == 0 {
            bail!("router-a counted no {class} packets on its WAN interface");
        }
    }

    if args.keep {
        // The key files stay for the agents left running (an operator may restart one).
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

/// IKE, NAT-T and ESP shaped traffic from router-b to router-a's public WAN address (the 1:1 NAT,
/// when present, forwards every protocol, raw ESP included).
fn send_ipsec_like_traffic(lab: &Lab) -> anyhow::Result<()> {
    lab.run_in(Node::RouterB, || {
        let peer = addr::ROUTER_A_WAN;
        let ike: Vec<_> = (1..=3).map(traffic::ike_header).collect();
        traffic::send_udp(IKE_PORT, SocketAddrV4::new(peer, IKE_PORT), &ike)?;
        let ike_natt: Vec<_> = (1..=3).map(traffic::ike_natt).collect();
        let esp_udp: Vec<_> = (1..=10)
            .map(|seq| traffic::esp(0xc0ffee, seq, 64))
            .collect();
        let keepalives = vec![traffic::nat_keepalive(); 2];
        let natt = SocketAddrV4::new(peer, IKE_NATT_PORT);
        traffic::send_udp(IKE_NATT_PORT, natt, &ike_natt)?;
        traffic::send_udp(IKE_NATT_PORT, natt, &esp_udp)?;
        traffic::send_udp(IKE_NATT_PORT, natt, &keepalives)?;
        let esp: Vec<_> = (1..=10).map(|seq| traffic::esp(0xbeef, seq, 64)).collect();
        traffic::send_raw_esp(peer, &esp)
    })
}
