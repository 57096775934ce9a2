//! Traffic the routers themselves originate uses the tunnel: the agent keeps a kernel route per
//! remote prefix (table 201, proto 249) through the tunnel's TUN device while the tunnel is up,
//! makes it unreachable while it is down, puts it back if someone deletes it, and removes
//! everything when it stops.
//!
//! The lab's main tables also route the other site via the peer's WAN address (in the clear),
//! so a ping that answers proves nothing by itself: a capture on the WAN link checks that no
//! ICMP crossed it in the clear, and the worker's counters that the pings were sealed.

use std::{path::Path, time::Duration};

use vpn_lab::{
    AgentProcess, Lab, LabSpec, Node, addr,
    agent::StatusSnapshot,
    ike_tunnel::{IkeOptions, IkeTunnelFiles},
};
use vpn_tests::{
    agent_bin, agent_verb,
    capture::{capture, stop_capture, tshark},
    exclusive, poll_until,
    traffic::ping,
};

const TUNNEL: &str = "to-site-b";

fn sa_count(s: &StatusSnapshot) -> usize {
    s.worker.as_ref().map_or(0, |w| w.sas.len())
}

fn encrypted(agent: &AgentProcess) -> anyhow::Result<u64> {
    Ok(agent.status()?.worker.map_or(0, |w| w.encrypted))
}

fn table(lab: &Lab, node: Node) -> anyhow::Result<String> {
    lab.exec(node, "ip", &["-4", "route", "show", "table", "201"])
}

fn rules(lab: &Lab, node: Node) -> anyhow::Result<String> {
    lab.exec(node, "ip", &["-4", "rule", "show"])
}

/// Packets of `filter` (a tshark display filter) in a capture.
fn count(file: &Path, filter: &str) -> anyhow::Result<usize> {
    Ok(tshark(file, &["-Y", filter])?.lines().count())
}

#[test]
fn router_traffic_takes_the_tunnel_and_follows_its_state() -> anyhow::Result<()> {
    let _turn = exclusive();
    let lab = Lab::up(LabSpec::default())?;
    let files = IkeTunnelFiles::write(lab.id(), &IkeOptions::default())?;
    let (a, b) = files.start_agents(&lab, &agent_bin()?)?;
    let up = |s: &StatusSnapshot| sa_count(s) == 2;
    poll_until(Duration::from_secs(20), || a.status(), up)?;
    poll_until(Duration::from_secs(5), || b.status(), up)?;

    // The route through the tunnel's device, from the LAN address the selectors cover.
    let routes = table(&lab, Node::RouterA)?;
    let expected = format!(
        "{} dev vt-{TUNNEL} proto 249 scope link src {}",
        addr::SITE_B,
        addr::ROUTER_A_LAN
    );
    assert!(routes.contains(&expected), "router-a table 201:\n{routes}");
    let rule = rules(&lab, Node::RouterA)?;
    assert!(
        rule.lines()
            .any(|l| l.starts_with("201:") && l.contains("lookup 201")),
        "{rule}"
    );
    let link = lab.exec(
        Node::RouterA,
        "ip",
        &["link", "show", &format!("vt-{TUNNEL}")],
    )?;
    assert!(link.contains("mtu 1400") && link.contains(",UP"), "{link}");

    // Router to router, router to host and host to router, both ways, with a capture of
    // router-a's WAN link.
    let dir = tempfile::tempdir()?;
    let pcap = dir.path().join("wan.pcap");
    let tcpdump = capture(&lab, Node::RouterA, "wan", &pcap, "icmp or esp")?;
    let (sealed_a, sealed_b) = (encrypted(&a)?, encrypted(&b)?);
    assert_eq!(
        ping(&lab, Node::RouterA, addr::HOST_B, 5)?,
        5,
        "{}",
        a.log()
    );
    assert_eq!(ping(&lab, Node::RouterA, addr::ROUTER_B_LAN, 3)?, 3);
    assert_eq!(
        ping(&lab, Node::RouterB, addr::HOST_A, 3)?,
        3,
        "{}",
        b.log()
    );
    assert_eq!(ping(&lab, Node::HostB, addr::ROUTER_A_LAN, 3)?, 3);
    std::thread::sleep(Duration::from_millis(300));
    stop_capture(tcpdump)?;
    let (clear, esp) = (count(&pcap, "icmp")?, count(&pcap, "esp")?);
    assert_eq!(clear, 0, "ICMP crossed the WAN in the clear");
    // tcpdump sees what router-a's kernel sends (the raw socket's ESP: its 8 echo requests
    // among them), not what XDP redirects on arrival nor AF_XDP transmissions.
    assert!(esp >= 8, "only {esp} ESP packets on the WAN");
    // router-a sealed its 8 requests and 3 replies; router-b its 3 requests and 8 replies
    // (and the hosts' traffic through XDP adds to neither of these paths here).
    let (now_a, now_b) = (encrypted(&a)?, encrypted(&b)?);
    assert!(
        now_a - sealed_a >= 11,
        "router-a sealed {}",
        now_a - sealed_a
    );
    assert!(
        now_b - sealed_b >= 11,
        "router-b sealed {}",
        now_b - sealed_b
    );

    // Someone deletes the route: the agent hears of it and puts it back.
    lab.exec(
        Node::RouterA,
        "ip",
        &["route", "del", addr::SITE_B, "table", "201"],
    )?;
    let routes = poll_until(
        Duration::from_secs(5),
        || table(&lab, Node::RouterA),
        |t| t.contains(&expected),
    )?;
    assert!(
        routes.contains(&expected),
        "not put back:\n{routes}\n{}",
        a.log()
    );

    // Tunnel down: the route fails closed (unreachable), never falls back to the clear.
    let (ok, text) = agent_verb(&a, &["terminate", TUNNEL])?;
    assert!(ok, "{text}");
    poll_until(Duration::from_secs(10), || a.status(), |s| sa_count(s) == 0)?;
    let routes = poll_until(
        Duration::from_secs(5),
        || table(&lab, Node::RouterA),
        |t| t.contains("unreachable"),
    )?;
    assert!(
        routes.contains(&format!("unreachable {} proto 249", addr::SITE_B)),
        "router-a table 201 with the tunnel down:\n{routes}"
    );
    let pcap_down = dir.path().join("wan-down.pcap");
    let tcpdump = capture(&lab, Node::RouterA, "wan", &pcap_down, "icmp")?;
    let refused = lab
        .command(Node::RouterA, "ping")
        .args(["-c", "2", "-i", "0.2", "-W", "1"])
        .arg(addr::HOST_B.to_string())
        .output()?;
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("No route to host"),
        "ping with the tunnel down: {refused:?}"
    );
    stop_capture(tcpdump)?;
    assert_eq!(count(&pcap_down, "icmp")?, 0, "ICMP left in the clear");

    // Up again: back through the device.
    let (ok, text) = agent_verb(&a, &["initiate", TUNNEL])?;
    assert!(ok, "{text}");
    poll_until(Duration::from_secs(20), || a.status(), up)?;
    let routes = poll_until(
        Duration::from_secs(5),
        || table(&lab, Node::RouterA),
        |t| t.contains(&expected),
    )?;
    assert!(routes.contains(&expected), "{routes}");
    assert_eq!(
        ping(&lab, Node::RouterA, addr::HOST_B, 3)?,
        3,
        "{}",
        a.log()
    );

    // A clean stop leaves no route, rule or device behind.
    a.stop()?;
    b.stop()?;
    for node in [Node::RouterA, Node::RouterB] {
        assert_eq!(table(&lab, node)?.trim(), "", "{node:?} kept routes");
        let rule = rules(&lab, node)?;
        assert!(
            !rule.contains("lookup 201"),
            "{node:?} kept the rule:\n{rule}"
        );
        let links = lab.exec(node, "ip", &["-o", "link", "show"])?;
        assert!(!links.contains("vt-"), "{node:?} kept a device:\n{links}");
    }
    lab.down()
}
