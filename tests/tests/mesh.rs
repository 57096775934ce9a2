//! Seed 004's three-region full mesh on the lab: one inventory (RSA keys, forced UDP
//! encapsulation, IKE fragmentation), each router's configuration rendered from it by
//! `vpn-agent mesh render`, three agents, and every directed pair of sites pinging.

use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context as _, bail};
use vpn_lab::{AgentProcess, Lab, LabSpec, Node, addr, agent::StatusSnapshot};
use vpn_tests::{agent_bin, poll_until, traffic::ping};

const NODES: [(&str, Node, std::net::Ipv4Addr, &str); 3] = [
    ("site-a", Node::RouterA, addr::ROUTER_A_WAN, addr::SITE_A),
    ("site-b", Node::RouterB, addr::ROUTER_B_WAN, addr::SITE_B),
    ("site-c", Node::RouterC, addr::ROUTER_C_WAN, addr::SITE_C),
];

fn run(cmd: &mut Command) -> anyhow::Result<Vec<u8>> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(out.stdout)
}

/// An RSA key pair as the inventory names them: `NAME.key` (PKCS#8, 0600) and `NAME.pub`.
fn rsa_key_pair(dir: &Path, name: &str) -> anyhow::Result<()> {
    let key = dir.join(format!("{name}.key"));
    run(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key))?;
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(dir.join(format!("{name}.pub"))))?;
    Ok(())
}

#[test]
fn three_sites_rendered_from_one_inventory_all_ping_each_other() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec {
        third_site: true,
        ..LabSpec::default()
    })?;
    let dir = tempfile::tempdir()?;
    let mut inventory = String::from("[mesh]\nkey_type = \"rsa\"\n\n");
    for (name, _, wan, prefix) in NODES {
        rsa_key_pair(dir.path(), name)?;
        inventory += &format!(
            "[[node]]\nname = \"{name}\"\npublic_address = \"{wan}\"\nwan = \"wan\"\nlan = [\"lan\"]\n\
             prefixes = [\"{prefix}\"]\nprivate_key = \"{key}\"\npublic_key = \"{public}\"\n\n",
            key = dir.path().join(format!("{name}.key")).display(),
            public = dir.path().join(format!("{name}.pub")).display(),
        );
    }
    let inventory_file = dir.path().join("inventory.toml");
    std::fs::write(&inventory_file, inventory)?;

    let bin = agent_bin()?;
    let mut agents = Vec::new();
    for (name, node, _, _) in NODES {
        let rendered = run(Command::new(&bin)
            .args(["mesh", "render"])
            .arg(&inventory_file)
            .args(["--node", name]))?;
        let config = dir.path().join(format!("{name}.toml"));
        std::fs::write(&config, rendered)?;
        std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        let config = config.to_string_lossy().into_owned();
        agents.push(AgentProcess::start_bare(
            &lab,
            node,
            &bin,
            &["--config", &config],
        )?);
    }

    // Every router has an IKE SA with a CHILD_SA to each of the two others.
    let meshed = |s: &StatusSnapshot| {
        s.ike.as_ref().is_some_and(|i| {
            let mut peers: Vec<&str> = i
                .ike_sas
                .iter()
                .filter(|sa| sa.state == "ESTABLISHED" && !sa.child_sas.is_empty())
                .map(|sa| sa.tunnel.as_str())
                .collect();
            peers.sort_unstable();
            peers.dedup();
            peers.len() == 2
        })
    };
    for agent in &agents {
        let s = poll_until(Duration::from_secs(30), || agent.status(), meshed)?;
        assert!(
            meshed(&s),
            "{} is not meshed: {:?}\n{}",
            agent.instance(),
            s.ike,
            agent.log()
        );
    }

    // Before the pings: a router that initiated before its peers' agents listened got ICMP
    // "port unreachable" back, which the WAN counts as plain.
    let mut plain_before = Vec::new();
    for agent in &agents {
        plain_before.push(agent.status()?.packets("wan", "plain")?);
    }
    let hosts = [
        (Node::HostA, addr::HOST_A),
        (Node::HostB, addr::HOST_B),
        (Node::HostC, addr::HOST_C),
    ];
    for (from, _) in hosts {
        for (to_node, to) in hosts {
            if from == to_node {
                continue;
            }
            let replies = ping(&lab, from, to, 3)?;
            assert_eq!(replies, 3, "{from:?} -> {to_node:?}");
        }
    }
    // All of it sealed: nothing in the clear on any router's WAN, ESP in UDP (forceencaps).
    for (agent, before) in agents.iter().zip(plain_before) {
        let s = agent.status()?;
        assert_eq!(s.packets("wan", "plain")?, before, "{}", agent.instance());
        assert!(
            s.packets("wan", "esp_in_udp")? >= 12,
            "{}",
            agent.instance()
        );
    }

    for agent in agents {
        agent.stop()?;
    }
    lab.down()
}
