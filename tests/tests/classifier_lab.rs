//! The XDP classifier on real veth links: every class of traffic, sent from the lab's
//! namespaces, must move its own counter by exactly the number of packets sent.

use std::{
    collections::BTreeMap,
    net::{SocketAddrV4, UdpSocket},
    os::unix::fs::PermissionsExt as _,
    time::Duration,
};

use anyhow::Context as _;
use vpn_lab::{
    AgentProcess, Lab, LabSpec, Node, addr,
    agent::StatusSnapshot,
    netns,
    traffic::{self, IKE_NATT_PORT, IKE_PORT},
};
use vpn_tests::{agent_bin, poll_until};

const DISCARD_PORT: u16 = 9;
/// ARP frames are counted as non-IP; how many the kernel sends is not ours to fix.
const CLASSES_COMPARED: &[&str] = &[
    "ike",
    "ike_natt",
    "esp_in_udp",
    "esp",
    "nat_keepalive",
    "fragment",
    "plain",
    "malformed",
];

type Expected = BTreeMap<(&'static str, &'static str), u64>;

fn counts(status: &StatusSnapshot) -> anyhow::Result<Expected> {
    let mut out = Expected::new();
    for role in ["wan", "lan"] {
        for class in CLASSES_COMPARED {
            out.insert((role, class), status.packets(role, class)?);
        }
    }
    Ok(out)
}

/// Waits until the counters reach `expected`, lets stragglers arrive, then compares exactly.
fn assert_counts(agent: &AgentProcess, expected: &Expected) -> anyhow::Result<()> {
    let total: u64 = expected.values().sum();
    poll_until(
        Duration::from_secs(5),
        || counts(&agent.status()?),
        |c| c.values().sum::<u64>() >= total,
    )?;
    std::thread::sleep(Duration::from_millis(300));
    let actual = counts(&agent.status()?)?;
    assert_eq!(
        &actual,
        expected,
        "counters differ from what was sent; status table:\n{}",
        agent.status_table()?
    );
    Ok(())
}

fn expected(entries: &[(&'static str, &'static str, u64)]) -> Expected {
    let mut e = Expected::new();
    for role in ["wan", "lan"] {
        for class in CLASSES_COMPARED {
            e.insert((role, class), 0);
        }
    }
    for (role, class, n) in entries {
        e.insert((role, class), *n);
    }
    e
}

fn xdp_attached(lab: &Lab, node: Node, dev: &str) -> anyhow::Result<bool> {
    let out = netns::ip(&["-n", &lab.ns(node), "-d", "link", "show", dev])?;
    Ok(String::from_utf8_lossy(&out.stdout).contains("prog/xdp"))
}

#[test]
fn each_class_moves_its_counter_by_exactly_what_was_sent() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec::default())?;
    let agent = AgentProcess::start(&lab, Node::RouterA, &agent_bin()?)?;
    assert!(xdp_attached(&lab, Node::RouterA, "wan")?);
    assert!(xdp_attached(&lab, Node::RouterA, "lan")?);

    // Maps are pinned root-only.
    let status = agent.status()?;
    let dir_mode = std::fs::metadata(&status.pin_dir)?.permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700, "pin folder {}", status.pin_dir.display());
    for entry in std::fs::read_dir(&status.pin_dir)? {
        let entry = entry?;
        let mode = entry.metadata()?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "pinned map {}", entry.path().display());
    }

    lab.run_in(Node::RouterB, || {
        let peer = addr::ROUTER_A_WAN;
        let ike = SocketAddrV4::new(peer, IKE_PORT);
        let natt = SocketAddrV4::new(peer, IKE_NATT_PORT);
        let discard = SocketAddrV4::new(peer, DISCARD_PORT);
        traffic::send_udp(
            IKE_PORT,
            ike,
            &(1..=3).map(traffic::ike_header).collect::<Vec<_>>(),
        )?;
        // IPv4 options move the UDP header: three NOPs and an end-of-list byte (IHL 6).
        traffic::send_udp_with_ip_options(ike, &[1, 1, 1], &vec![traffic::ike_header(9); 2])?;
        traffic::send_udp(
            IKE_NATT_PORT,
            natt,
            &(1..=4).map(traffic::ike_natt).collect::<Vec<_>>(),
        )?;
        let esp_udp: Vec<_> = (1..=5).map(|s| traffic::esp(0x1000, s, 48)).collect();
        traffic::send_udp(IKE_NATT_PORT, natt, &esp_udp)?;
        traffic::send_udp(IKE_NATT_PORT, natt, &vec![traffic::nat_keepalive(); 6])?;
        let esp: Vec<_> = (1..=7).map(|s| traffic::esp(0x2000, s, 48)).collect();
        traffic::send_raw_esp(peer, &esp)?;
        traffic::send_udp(0, discard, &vec![b"plain".to_vec(); 8])?;
        // Malformed: 2 bytes on 4500 is neither keepalive, marker nor ESP; 10 bytes is no IKE header.
        traffic::send_udp(0, natt, &[vec![1, 2], vec![0, 0]])?;
        traffic::send_udp(0, ike, &[vec![0; 10]])?;
        // 3000 bytes over a 1500-byte MTU: three fragments, the first included (its UDP length
        // covers the whole datagram, so only reassembly can tell what it is).
        traffic::send_udp(0, discard, &[vec![0x5a; 3000]])?;
        Ok(())
    })?;
    lab.run_in(Node::HostA, || {
        let lan = SocketAddrV4::new(addr::ROUTER_A_LAN, DISCARD_PORT);
        traffic::send_udp(0, lan, &vec![b"plain".to_vec(); 9])
    })?;

    assert_counts(
        &agent,
        &expected(&[
            ("wan", "ike", 5),
            ("wan", "ike_natt", 4),
            ("wan", "esp_in_udp", 5),
            ("wan", "esp", 7),
            ("wan", "nat_keepalive", 6),
            ("wan", "plain", 8),
            ("wan", "fragment", 3),
            ("wan", "malformed", 3),
            ("lan", "plain", 9),
        ]),
    )?;

    let pin_dir = status.pin_dir.clone();
    agent.stop()?;
    assert!(!pin_dir.exists(), "pins left after a clean stop");
    assert!(!xdp_attached(&lab, Node::RouterA, "wan")?);
    assert!(!xdp_attached(&lab, Node::RouterA, "lan")?);

    let namespaces = lab.namespaces().to_vec();
    lab.down()?;
    let left = netns::list()?;
    assert!(
        namespaces.iter().all(|ns| !left.contains(ns)),
        "lab left namespaces"
    );
    Ok(())
}

#[test]
fn nat_lab_maps_router_a_like_an_elastic_ip() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec {
        nat: true,
        ..LabSpec::default()
    })?;
    let agent = AgentProcess::start(&lab, Node::RouterA, &agent_bin()?)?;

    // router-a's traffic leaves from the public address, source port preserved (1:1 NAT).
    let receiver = lab.run_in(Node::RouterB, || {
        let socket = UdpSocket::bind(SocketAddrV4::new(addr::ROUTER_B_WAN, IKE_NATT_PORT))?;
        socket.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(socket)
    })?;
    lab.run_in(Node::RouterA, || {
        let dst = SocketAddrV4::new(addr::ROUTER_B_WAN, IKE_NATT_PORT);
        traffic::send_udp(IKE_NATT_PORT, dst, &[traffic::nat_keepalive()])
    })?;
    let mut buf = [0u8; 16];
    let (len, from) = receiver
        .recv_from(&mut buf)
        .context("nothing arrived through the NAT")?;
    drop(receiver);
    assert_eq!(&buf[..len], &[0xff]);
    assert_eq!(
        from,
        SocketAddrV4::new(addr::ROUTER_A_WAN, IKE_NATT_PORT).into()
    );

    // Traffic to the public address reaches router-a's private one and is classified there.
    lab.run_in(Node::RouterB, || {
        let natt = SocketAddrV4::new(addr::ROUTER_A_WAN, IKE_NATT_PORT);
        let esp_udp: Vec<_> = (1..=5).map(|s| traffic::esp(0x3000, s, 48)).collect();
        traffic::send_udp(IKE_NATT_PORT, natt, &esp_udp)
    })?;
    assert_counts(&agent, &expected(&[("wan", "esp_in_udp", 5)]))?;

    agent.stop()?;
    lab.down()
}

#[test]
fn agent_killed_hard_leaves_nothing_attached_and_restarts() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec::default())?;
    let bin = agent_bin()?;
    let agent = AgentProcess::start(&lab, Node::RouterA, &bin)?;
    let instance = agent.instance().to_owned();

    // A second agent with the same instance name must refuse to start.
    let second = lab
        .command(Node::RouterA, &bin.to_string_lossy())
        .args(["run", "--wan", "wan", "--instance", &instance])
        .output()?;
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("already running"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );

    agent.kill()?;
    // The XDP links die with the process's file descriptors.
    let detached = poll_until(
        Duration::from_secs(5),
        || Ok(!xdp_attached(&lab, Node::RouterA, "wan")?),
        |d| *d,
    )?;
    assert!(detached, "XDP still attached after the agent was killed");
    let status = std::process::Command::new(&bin)
        .args(["status", "--instance", &instance])
        .output()?;
    assert!(!status.status.success());
    assert!(String::from_utf8_lossy(&status.stderr).contains("not running"));

    // A new agent cleans up the stale state and counts from zero.
    let agent = AgentProcess::start(&lab, Node::RouterA, &bin)?;
    lab.run_in(Node::RouterB, || {
        let ike = SocketAddrV4::new(addr::ROUTER_A_WAN, IKE_PORT);
        traffic::send_udp(IKE_PORT, ike, &[traffic::ike_header(1)])
    })?;
    assert_counts(&agent, &expected(&[("wan", "ike", 1)]))?;
    agent.stop()?;
    lab.down()
}
