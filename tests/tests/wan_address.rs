//! A WAN address change leaves no stale state: the agent hears of it from rtnetlink, drops
//! the SAs negotiated from the old address (no MOBIKE), moves IKE to the new one and
//! negotiates its tunnels again; the datapath then sends from the new address.

use std::time::Duration;

use vpn_lab::{
    Lab, LabSpec, Node, addr,
    agent::StatusSnapshot,
    ike_tunnel::{IkeOptions, IkeTunnelFiles},
};
use vpn_tests::{
    agent_bin, agent_verb,
    capture::{capture, stop_capture, tshark},
    exclusive, poll_until,
    traffic::ping,
};

const NEW_WAN: &str = "198.51.100.11";

/// The local address of router-a's established IKE SA with a CHILD_SA in the datapath.
fn established_from(s: &StatusSnapshot) -> Option<String> {
    let datapath = s.worker.as_ref().is_some_and(|w| w.sas.len() == 2);
    let ike = s.ike.as_ref()?;
    match ike.ike_sas.as_slice() {
        [sa] if datapath && sa.state == "ESTABLISHED" && !sa.child_sas.is_empty() => {
            Some(sa.local.clone())
        }
        _ => None,
    }
}

#[test]
fn tunnels_follow_a_wan_address_change() -> anyhow::Result<()> {
    let _turn = exclusive();
    let lab = Lab::up(LabSpec::default())?;
    let files = IkeTunnelFiles::write(lab.id(), &IkeOptions::default())?;
    let (a, b) = files.start_agents(&lab, &agent_bin()?)?;
    let first = poll_until(
        Duration::from_secs(20),
        || a.status(),
        |s| established_from(s).is_some(),
    )?;
    let old = format!("{}:500", addr::ROUTER_A_WAN);
    assert_eq!(established_from(&first), Some(old), "{}", a.log());
    assert_eq!(ping(&lab, Node::HostA, addr::HOST_B, 3)?, 3);

    // The peer learns router-a's new address (as an operator would tell it)...
    let config = std::fs::read_to_string(&files.router_b)?;
    let quoted = format!("\"{}\"", addr::ROUTER_A_WAN);
    assert!(config.contains(&quoted), "{config}");
    std::fs::write(
        &files.router_b,
        config.replace(&quoted, &format!("\"{NEW_WAN}\"")),
    )?;
    let (ok, text) = agent_verb(&b, &["reload"])?;
    assert!(ok, "{text}");
    // ...and router-a's address changes under its agent.
    let cidr = |a: &str| format!("{a}/{}", addr::PREFIX_LEN);
    lab.exec(
        Node::RouterA,
        "ip",
        &[
            "addr",
            "del",
            &cidr(&addr::ROUTER_A_WAN.to_string()),
            "dev",
            "wan",
        ],
    )?;
    lab.exec(
        Node::RouterA,
        "ip",
        &["addr", "add", &cidr(NEW_WAN), "dev", "wan"],
    )?;

    let moved = format!("{NEW_WAN}:500");
    let s = poll_until(
        Duration::from_secs(30),
        || a.status(),
        |s| established_from(s).as_deref() == Some(moved.as_str()),
    )?;
    assert_eq!(
        established_from(&s).as_deref(),
        Some(moved.as_str()),
        "router-a did not negotiate again from its new address: {:?}\n{}",
        s.ike,
        a.log()
    );
    assert!(a.log().contains("WAN address changed"), "{}", a.log());
    assert_eq!(ping(&lab, Node::HostA, addr::HOST_B, 3)?, 3, "{}", a.log());
    assert_eq!(ping(&lab, Node::HostB, addr::HOST_A, 3)?, 3, "{}", b.log());

    // The datapath's outer source moved too: router-a's own pings leave through the kernel,
    // where a capture sees them, as ESP from the new address only.
    let dir = tempfile::tempdir()?;
    let pcap = dir.path().join("wan.pcap");
    let tcpdump = capture(&lab, Node::RouterA, "wan", &pcap, "esp")?;
    assert_eq!(
        ping(&lab, Node::RouterA, addr::HOST_B, 3)?,
        3,
        "{}",
        a.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    stop_capture(tcpdump)?;
    let sources = tshark(&pcap, &["-T", "fields", "-e", "ip.src"])?;
    let sources: Vec<&str> = sources.lines().collect();
    assert!(sources.len() >= 3, "{sources:?}");
    assert!(sources.iter().all(|s| *s == NEW_WAN), "{sources:?}");

    a.stop()?;
    b.stop()?;
    lab.down()
}
