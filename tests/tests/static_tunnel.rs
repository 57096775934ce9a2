//! Static-key tunnels between two agents on the lab: traffic between the sites crosses the
//! internet link only as ESP, sealed and opened by the AF_XDP crypto workers.

use std::time::Duration;

use vpn_lab::{
    AgentProcess, Lab, LabSpec, Node, addr,
    agent::StatusSnapshot,
    static_tunnel::{Encap, StaticTunnelFiles},
};
use vpn_tests::{agent_bin, poll_until};

/// The bulk-transfer test saturates both cores; the rollover test counts every packet of a
/// steady stream. They take turns, so that one's load cannot make the other drop packets.
static LOAD_SENSITIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    LOAD_SENSITIVE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

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

/// Pings `count` times (0.2 s apart) and returns how many replies came back.
fn ping(lab: &Lab, from: Node, to: std::net::Ipv4Addr, count: u32) -> anyhow::Result<u32> {
    let out = lab
        .command(from, "ping")
        .args(["-c", &count.to_string(), "-i", "0.2", "-W", "1", "-q"])
        .arg(to.to_string())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(',')
        .find_map(|part| part.trim().strip_suffix(" received"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("unexpected ping output: {text}"))
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
    let lab = Lab::up(LabSpec { nat })?;
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
    let lab = Lab::up(LabSpec { nat })?;
    // Raw ESP runs with 64-bit sequence numbers (RFC 4303 2.2.1) on both routers.
    let extra = if encap == Encap::Esp {
        "esn = true"
    } else {
        ""
    };
    let files = StaticTunnelFiles::write_with(lab.id(), encap, nat, extra)?;
    let t = start(&lab, files, None)?;

    // iperf3 TCP both ways: MSS clamping keeps segments inside the tunnel MTU.
    let server = lab
        .command(Node::HostB, "iperf3")
        .args(["-s", "-1", "-B", &addr::HOST_B.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    let forward = lab.exec(
        Node::HostA,
        "iperf3",
        &["-c", &addr::HOST_B.to_string(), "-t", "2", "-J"],
    )?;
    wait_child(server)?;
    let server = lab
        .command(Node::HostB, "iperf3")
        .args(["-s", "-1", "-B", &addr::HOST_B.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    let reverse = lab.exec(
        Node::HostA,
        "iperf3",
        &["-c", &addr::HOST_B.to_string(), "-t", "2", "-R", "-J"],
    )?;
    wait_child(server)?;
    for (name, json) in [
        ("host-a -> host-b", &forward),
        ("host-b -> host-a", &reverse),
    ] {
        let received = received_bytes(json)?;
        assert!(
            received > 1_000_000,
            "{name}: only {received} bytes arrived"
        );
        eprintln!("{name}: {} bytes received in 2 s", received);
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

fn wait_child(mut child: std::process::Child) -> anyhow::Result<()> {
    for _ in 0..50 {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill()?;
    child.wait()?;
    Ok(())
}

/// Bytes the receiving end counted, from `iperf3 -J`.
fn received_bytes(json: &str) -> anyhow::Result<u64> {
    let v: serde_json::Value = serde_json::from_str(json)?;
    v["end"]["sum_received"]["bytes"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no end.sum_received.bytes in iperf3 output"))
}

/// A numbered UDP stream at a steady rate from host-a to host-b, while both routers roll their
/// keys over in the three make-before-break steps: the receiver must see every number.
#[test]
fn key_rollover_under_load_loses_no_packet() -> anyhow::Result<()> {
    let _turn = exclusive();
    use std::{
        net::{SocketAddrV4, UdpSocket},
        sync::atomic::{AtomicBool, Ordering},
    };
    use vpn_lab::static_tunnel::Rollover;

    const PORT: u16 = 9000;
    const RATE_PER_SECOND: u64 = 500;
    const DURATION: Duration = Duration::from_secs(8);

    let lab = Lab::up(LabSpec::default())?;
    let files = StaticTunnelFiles::write(lab.id(), Encap::Udp, false)?;
    let (new_ab, new_ba) = files.rolled_spis();
    let t = start(&lab, files, None)?;

    let receiver = lab.run_in(Node::HostB, || {
        let socket = UdpSocket::bind(SocketAddrV4::new(addr::HOST_B, PORT))?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(socket)
    })?;
    let sender = lab.run_in(Node::HostA, || Ok(UdpSocket::bind("0.0.0.0:0")?))?;
    let done = AtomicBool::new(false);
    let (sent, received) = std::thread::scope(|scope| {
        let receiving = scope.spawn(|| {
            let mut seen = Vec::new();
            let mut buf = [0u8; 64];
            loop {
                match receiver.recv(&mut buf) {
                    Ok(8) => seen.push(u64::from_be_bytes(buf[..8].try_into().unwrap())),
                    Ok(_) => {}
                    Err(_) if done.load(Ordering::Relaxed) => break,
                    Err(_) => {}
                }
            }
            seen
        });
        let sending = scope.spawn(|| -> anyhow::Result<u64> {
            let start = std::time::Instant::now();
            let mut seq = 0u64;
            while start.elapsed() < DURATION {
                let due = start + Duration::from_micros(seq * 1_000_000 / RATE_PER_SECOND);
                if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                    std::thread::sleep(wait);
                }
                sender.send_to(&seq.to_be_bytes(), SocketAddrV4::new(addr::HOST_B, PORT))?;
                seq += 1;
            }
            Ok(seq)
        });
        let rollover = || -> anyhow::Result<()> {
            for step in [Rollover::AcceptNew, Rollover::SendNew, Rollover::DropOld] {
                std::thread::sleep(Duration::from_millis(1500));
                t._files.rollover(step)?;
                t.b.reload()?;
                t.a.reload()?;
            }
            Ok(())
        };
        let rolled = rollover();
        let sent = sending.join().expect("sender thread");
        std::thread::sleep(Duration::from_millis(500));
        done.store(true, Ordering::Relaxed);
        let received = receiving.join().expect("receiver thread");
        rolled.map(|()| (sent, received))
    })?;
    let sent = sent?;

    let mut received = received;
    received.sort_unstable();
    received.dedup();
    let missing: Vec<u64> = (0..sent)
        .filter(|s| received.binary_search(s).is_err())
        .collect();
    eprintln!(
        "sent {sent}, received {}, missing {}",
        received.len(),
        missing.len()
    );
    assert!(sent > RATE_PER_SECOND * 5, "the sender fell behind: {sent}");
    assert!(missing.is_empty(), "lost during the rollover: {missing:?}");

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
