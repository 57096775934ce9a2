//! Static-key tunnels between two agents on the lab: traffic between the sites crosses the
//! internet link only as ESP, sealed and opened by the AF_XDP crypto workers.

use std::time::Duration;

use vpn_lab::{
    AgentProcess, Lab, LabSpec, Node, addr,
    agent::StatusSnapshot,
    static_tunnel::{Encap, StaticTunnelFiles},
};
use vpn_tests::{
    agent_bin, exclusive, poll_until,
    traffic::{Direction, iperf_tcp, numbered_stream, ping},
};

struct Tunnel {
    a: AgentProcess,
    b: AgentProcess,
    _files: StaticTunnelFiles,
}

fn start(
    lab: &Lab,
    files: StaticTunnelFiles,
    b_files: Option<&StaticTunnelFiles>,
) -> anyhow::Result<Tunnel> {
    let bin = agent_bin()?;
    let a = files.start_agent(lab, Node::RouterA, &bin)?;
    let b = b_files
        .unwrap_or(&files)
        .start_agent(lab, Node::RouterB, &bin)?;
    Ok(Tunnel {
        a,
        b,
        _files: files,
    })
}

/// Waits until the worker has published at least `encrypted` seals (it publishes every 500 ms).
fn settled(agent: &AgentProcess, encrypted: u64) -> anyhow::Result<StatusSnapshot> {
    poll_until(
        Duration::from_secs(5),
        || agent.status(),
        |s| s.worker.as_ref().is_some_and(|w| w.encrypted >= encrypted),
    )
}

fn check_tunnel(encap: Encap, nat: bool) -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec {
        nat,
        ..LabSpec::default()
    })?;
    let files = StaticTunnelFiles::write(lab.id(), encap, nat)?;
    let t = start(&lab, files, None)?;

    assert_eq!(
        ping(&lab, Node::HostA, addr::HOST_B, 5)?,
        5,
        "host-a to host-b"
    );
    assert_eq!(
        ping(&lab, Node::HostB, addr::HOST_A, 5)?,
        5,
        "host-b to host-a"
    );

    // Each side sealed 5 requests and 5 replies and opened as many.
    let a = settled(&t.a, 10)?;
    let b = settled(&t.b, 10)?;
    for (name, status) in [("router-a", &a), ("router-b", &b)] {
        let w = status.worker.as_ref().expect("worker counters");
        assert_eq!(w.encrypted, 10, "{name} sealed");
        assert_eq!(w.decrypted, 10, "{name} opened");
        assert!(w.dropped.is_empty(), "{name} dropped {:?}", w.dropped);
        let out = w
            .sas
            .iter()
            .find(|s| s.direction == "out")
            .expect("outbound SA");
        assert_eq!(out.packets, 10, "{name} outbound SA");
    }
    // On the internet link: every packet between the sites arrived as ESP, none in the clear.
    let esp_class = match encap {
        Encap::Udp => "esp_in_udp",
        Encap::Esp => "esp",
    };
    for (name, status) in [("router-a", &a), ("router-b", &b)] {
        assert_eq!(status.packets("wan", esp_class)?, 10, "{name} ESP received");
        assert_eq!(
            status.packets("wan", "plain")?,
            0,
            "{name} clear packets on its WAN"
        );
        assert_eq!(status.datapath_events.get("inbound_to_worker"), Some(&10));
        assert_eq!(status.datapath_events.get("outbound_to_worker"), Some(&10));
    }

    t.a.stop()?;
    t.b.stop()?;
    lab.down()
}

#[test]
fn esp_in_udp_tunnel_carries_traffic_and_nothing_crosses_in_clear() -> anyhow::Result<()> {
    check_tunnel(Encap::Udp, false)
}

#[test]
fn raw_esp_tunnel_carries_traffic_and_nothing_crosses_in_clear() -> anyhow::Result<()> {
    check_tunnel(Encap::Esp, false)
}

#[test]
fn esp_in_udp_tunnel_works_through_one_to_one_nat() -> anyhow::Result<()> {
    check_tunnel(Encap::Udp, true)
}

#[test]
fn mismatched_keys_fail_closed_with_icv_drops() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec::default())?;
    let files = StaticTunnelFiles::write(lab.id(), Encap::Udp, false)?;
    // router-b gets keys from another pair: same SPIs, different keys.
    let other = StaticTunnelFiles::write(&format!("{}-other", lab.id()), Encap::Udp, false)?;
    let t = start(&lab, files, Some(&other))?;

    assert_eq!(
        ping(&lab, Node::HostA, addr::HOST_B, 3)?,
        0,
        "ping crossed with wrong keys"
    );
    let b = poll_until(
        Duration::from_secs(5),
        || t.b.status(),
        |s| {
            s.worker
                .as_ref()
                .is_some_and(|w| w.dropped.get("bad_icv").copied().unwrap_or(0) >= 3)
        },
    )?;
    let w = b.worker.clone().expect("worker counters");
    assert_eq!(w.dropped.get("bad_icv"), Some(&3), "{:?}", w.dropped);
    assert_eq!(w.decrypted, 0);
    assert_eq!(
        b.packets("wan", "plain")?,
        0,
        "clear packets on router-b's WAN"
    );

    t.a.stop()?;
    t.b.stop()?;
    lab.down()
}

#[test]
fn tcp_bulk_transfer_both_ways_and_packets_above_the_tunnel_mtu() -> anyhow::Result<()> {
    bulk_transfer(Encap::Udp, false)
}

#[test]
fn tcp_bulk_transfer_over_raw_esp_with_extended_sequence_numbers() -> anyhow::Result<()> {
    bulk_transfer(Encap::Esp, false)
}

#[test]
fn tcp_bulk_transfer_through_one_to_one_nat() -> anyhow::Result<()> {
    bulk_transfer(Encap::Udp, true)
}

fn bulk_transfer(encap: Encap, nat: bool) -> anyhow::Result<()> {
    let _turn = exclusive();
    let lab = Lab::up(LabSpec {
        nat,
        ..LabSpec::default()
    })?;
    // Raw ESP runs with 64-bit sequence numbers (RFC 4303 2.2.1) on both routers.
    let extra = if encap == Encap::Esp {
        "esn = true"
    } else {
        ""
    };
    let files = StaticTunnelFiles::write_with(lab.id(), encap, nat, extra)?;
    let t = start(&lab, files, None)?;

    // iperf3 TCP both ways: MSS clamping keeps segments inside the tunnel MTU.
    for direction in [Direction::AToB, Direction::BToA] {
        let received = iperf_tcp(&lab, direction, 2)?;
        assert!(
            received > 1_000_000,
            "{direction:?}: only {received} bytes arrived"
        );
        eprintln!("{direction:?}: {received} bytes received in 2 s");
    }
    // Decrypted packets leave through the worker's LAN AF_XDP socket once the kernel's next hop
    // is known; only the first ones (and any the resolver cannot vouch for) through the kernel.
    for (name, agent) in [("router-a", &t.a), ("router-b", &t.b)] {
        let status = agent.status()?;
        let w = status.worker.as_ref().expect("worker counters");
        assert!(
            w.sent_kernel * 2 < w.decrypted,
            "{name}: {} of {} decrypted packets went through the kernel",
            w.sent_kernel,
            w.decrypted
        );
    }

    // Above the tunnel MTU (1400) with DF: ICMP "fragmentation needed" announcing 1400.
    let df = lab
        .command(Node::HostA, "ping")
        .args([
            "-c",
            "1",
            "-W",
            "1",
            "-M",
            "do",
            "-s",
            "1450",
            &addr::HOST_B.to_string(),
        ])
        .output()?;
    let text = String::from_utf8_lossy(&df.stdout);
    assert!(!df.status.success());
    assert!(
        text.contains("mtu = 1400"),
        "no frag-needed with the tunnel MTU: {text}"
    );
    // Without DF: fragmented before encryption, each fragment its own ESP packet; the reply
    // (as big) comes back the same way and host-a reassembles it.
    let frag = lab
        .command(Node::HostA, "ping")
        .args([
            "-c",
            "2",
            "-W",
            "1",
            "-M",
            "dont",
            "-s",
            "2000",
            &addr::HOST_B.to_string(),
        ])
        .output()?;
    assert!(
        frag.status.success(),
        "{}",
        String::from_utf8_lossy(&frag.stdout)
    );
    let a = t.a.status()?;
    let w = a.worker.as_ref().expect("worker counters");
    assert!(
        w.dropped.get("too_big").copied().unwrap_or(0) >= 1,
        "{:?}",
        w.dropped
    );
    assert_eq!(
        a.packets("wan", "plain")?,
        0,
        "clear packets on router-a's WAN"
    );

    t.a.stop()?;
    t.b.stop()?;
    lab.down()
}

/// A numbered UDP stream at a steady rate from host-a to host-b, while both routers roll their
/// keys over in the three make-before-break steps: the receiver must see every number.
#[test]
fn key_rollover_under_load_loses_no_packet() -> anyhow::Result<()> {
    let _turn = exclusive();
    use vpn_lab::static_tunnel::Rollover;

    const RATE_PER_SECOND: u64 = 500;

    let lab = Lab::up(LabSpec::default())?;
    let files = StaticTunnelFiles::write(lab.id(), Encap::Udp, false)?;
    let (new_ab, new_ba) = files.rolled_spis();
    let t = start(&lab, files, None)?;

    let (stream, ()) = numbered_stream(&lab, RATE_PER_SECOND, Duration::from_secs(8), || {
        for step in [Rollover::AcceptNew, Rollover::SendNew, Rollover::DropOld] {
            std::thread::sleep(Duration::from_millis(1500));
            t._files.rollover(step)?;
            t.b.reload()?;
            t.a.reload()?;
        }
        Ok(())
    })?;
    eprintln!("{stream:?}");
    assert!(
        stream.sent > RATE_PER_SECOND * 5,
        "the sender fell behind: {}",
        stream.sent
    );
    assert!(
        stream.missing.is_empty(),
        "lost during the rollover: {:?}",
        stream.missing
    );

    // The new SAs carry the traffic now; the old inbound SAs are gone after lingering.
    let a = poll_until(
        Duration::from_secs(5),
        || t.a.status(),
        |s| s.worker.as_ref().is_some_and(|w| w.sas.len() == 2),
    )?;
    let w = a.worker.expect("worker counters");
    let out = w
        .sas
        .iter()
        .find(|s| s.direction == "out")
        .expect("outbound SA");
    assert_eq!(out.spi, new_ab, "router-a sends with the new SA");
    assert!(out.packets > 0);
    let inbound: Vec<u32> = w
        .sas
        .iter()
        .filter(|s| s.direction == "in")
        .map(|s| s.spi)
        .collect();
    assert_eq!(inbound, vec![new_ba], "router-a accepts only the new SA");

    t.a.stop()?;
    t.b.stop()?;
    lab.down()
}

/// At a hard lifetime limit an SA carries nothing more: the tunnel's traffic is dropped, not
/// sent in the clear; the soft limit is reported first.
#[test]
fn hard_lifetime_ends_the_sa_without_leaking() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec::default())?;
    let files = StaticTunnelFiles::write_with(
        lab.id(),
        Encap::Udp,
        false,
        "lifetime = { soft_packets = 3, hard_packets = 5 }",
    )?;
    let t = start(&lab, files, None)?;

    // Requests 1-5 use up router-a's outbound SA; their replies router-a's inbound one.
    assert_eq!(ping(&lab, Node::HostA, addr::HOST_B, 10)?, 5);
    let a = poll_until(
        Duration::from_secs(5),
        || t.a.status(),
        |s| {
            s.worker
                .as_ref()
                .is_some_and(|w| w.lifetime_events.contains_key("hard"))
        },
    )?;
    let w = a.worker.clone().expect("worker counters");
    assert_eq!(w.encrypted, 5, "router-a sealed past the hard limit");
    assert!(
        w.lifetime_events.get("soft").copied().unwrap_or(0) >= 1,
        "{w:?}"
    );
    assert!(
        a.datapath_events.get("tunnel_down").copied().unwrap_or(0) >= 1,
        "{:?}",
        a.datapath_events
    );
    let b = t.b.status()?;
    assert_eq!(
        b.packets("wan", "plain")?,
        0,
        "clear packets on router-b's WAN"
    );
    assert_eq!(
        b.packets("lan", "plain")?,
        5,
        "router-b answered only what arrived sealed"
    );

    t.a.stop()?;
    t.b.stop()?;
    lab.down()
}
