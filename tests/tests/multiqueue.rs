//! Two receive queues per link, two crypto workers per router (one per queue), sharing the
//! SAs: both workers carry traffic both ways, sequence numbers (and so GCM IVs, RFC 4106 3.1)
//! never repeat under an SPI on the wire, and a packet replayed onto the other queue is still
//! caught by the SA's one replay window (RFC 4303 3.4.3).
//!
//! A veth delivers a frame on the peer's receive queue numbered like the transmit queue it was
//! sent on, which the sender picks by flow hash: many flows (iperf3 streams, UDP datagrams from
//! many source ports) reach both queues. A worker transmits on its own queue, and the NAT in
//! between forwards on the queue a frame arrived on, so router-a's worker q feeds router-b's.

use std::{
    collections::BTreeMap,
    net::{SocketAddrV4, UdpSocket},
    time::Duration,
};

use vpn_lab::{
    AgentProcess, Lab, LabSpec, Node, addr,
    agent::{StatusSnapshot, WorkerSnapshot},
    static_tunnel::{Encap, StaticTunnelFiles},
    traffic::send_raw_ipv4,
};
use vpn_tests::{
    agent_bin,
    capture::{capture, ipv4_packets, stop_capture, tshark},
    exclusive, poll_until,
    traffic::{Direction, iperf_tcp_streams, ping},
};

const QUEUES: u16 = 2;
/// UDP flows (one source port each) per direction: the chance that all of them hash to one of
/// two queues is 2^-15.
const FLOWS: usize = 16;
const PORT: u16 = 9998;

fn workers(status: &StatusSnapshot) -> Vec<WorkerSnapshot> {
    status
        .worker
        .as_ref()
        .map(|w| w.workers.clone())
        .unwrap_or_default()
}

/// Every worker has sealed and opened something.
fn all_busy(status: &StatusSnapshot) -> bool {
    let each = workers(status);
    each.len() == usize::from(QUEUES) && each.iter().all(|w| w.encrypted > 0 && w.decrypted > 0)
}

/// One datagram from each of `FLOWS` fresh sockets (fresh source ports) of `from` to `to`.
fn udp_flows(lab: &Lab, from: Node, to: std::net::Ipv4Addr, tag: &str) -> anyhow::Result<()> {
    let (local, tag) = (
        match from {
            Node::HostA => addr::HOST_A,
            _ => addr::HOST_B,
        },
        tag.to_owned(),
    );
    lab.run_in(from, move || {
        for i in 0..FLOWS {
            let socket = UdpSocket::bind(SocketAddrV4::new(local, 0))?;
            socket.send_to(format!("{tag}-{i}").as_bytes(), SocketAddrV4::new(to, PORT))?;
            // One at a time: the replay check needs every original to have been opened.
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    })
}

fn decrypted_by_queue(status: &StatusSnapshot) -> BTreeMap<u32, u64> {
    workers(status)
        .iter()
        .map(|w| (w.queue.unwrap_or_default(), w.decrypted))
        .collect()
}

#[test]
fn two_workers_carry_traffic_without_repeating_a_sequence_number_or_missing_a_replay()
-> anyhow::Result<()> {
    let _turn = exclusive();
    let lab = Lab::up(LabSpec {
        nat: true,
        queues: QUEUES,
        ..LabSpec::default()
    })?;
    let files = StaticTunnelFiles::write(lab.id(), Encap::Udp, true)?;
    let bin = agent_bin()?;
    // No --workers: one per queue, found by the agent.
    let a = files.start_agent(&lab, Node::RouterA, &bin)?;
    let b = files.start_agent(&lab, Node::RouterB, &bin)?;
    let dir = tempfile::tempdir()?;
    let pcap = dir.path().join("internet.pcap");
    // The internet side of router-a's NAT: every ESP packet between the sites passes here.
    let tcpdump = capture(&lab, Node::NatA, "outside", &pcap, "udp port 4500")?;

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
    for direction in [Direction::AToB, Direction::BToA] {
        let received = iperf_tcp_streams(&lab, direction, 2, 4)?;
        assert!(
            received > 1_000_000,
            "{direction:?}: only {received} bytes arrived over 4 streams"
        );
        eprintln!("{direction:?}: {received} bytes received in 2 s over 4 streams");
    }
    udp_flows(&lab, Node::HostA, addr::HOST_B, "a")?;
    udp_flows(&lab, Node::HostB, addr::HOST_A, "b")?;
    stop_capture(tcpdump)?;

    for (name, agent) in [("router-a", &a), ("router-b", &b)] {
        let status = poll_until(Duration::from_secs(5), || agent.status(), all_busy)?;
        let each = workers(&status);
        assert_eq!(
            each.len(),
            usize::from(QUEUES),
            "{name}: one worker per queue"
        );
        for w in &each {
            eprintln!(
                "{name} queue {:?}: {} encrypted, {} decrypted, dropped {:?}",
                w.queue, w.encrypted, w.decrypted, w.dropped
            );
            assert!(
                w.encrypted > 0 && w.decrypted > 0,
                "{name}: worker of queue {:?} carried nothing one way: {w:?}",
                w.queue
            );
        }
        let total = status.worker.as_ref().expect("worker counters");
        assert_eq!(
            total.encrypted,
            each.iter().map(|w| w.encrypted).sum::<u64>(),
            "{name}: the sum is over the workers"
        );
        let out = total
            .sas
            .iter()
            .find(|s| s.direction == "out")
            .expect("outbound SA");
        assert!(
            out.packets >= total.encrypted,
            "{name}: SA counters summed: {out:?}"
        );
        assert_eq!(
            status.packets("wan", "plain")?,
            0,
            "{name}: clear packets on its WAN"
        );
    }

    // Sequence numbers on the wire, by SPI, read by tshark: none twice.
    let fields = tshark(
        &pcap,
        &[
            "-Y",
            "esp",
            "-T",
            "fields",
            "-e",
            "esp.spi",
            "-e",
            "esp.sequence",
        ],
    )?;
    let mut seen: BTreeMap<String, BTreeMap<u64, usize>> = BTreeMap::new();
    for line in fields.lines() {
        let mut cols = line.split('\t');
        let (Some(spi), Some(seq)) = (cols.next(), cols.next()) else {
            continue;
        };
        *seen
            .entry(spi.to_owned())
            .or_default()
            .entry(seq.parse()?)
            .or_default() += 1;
    }
    assert_eq!(seen.len(), 2, "one SPI each way: {:?}", seen.keys());
    for (spi, seqs) in &seen {
        let repeated: Vec<_> = seqs.iter().filter(|(_, n)| **n > 1).collect();
        eprintln!("SPI {spi}: {} packets captured", seqs.len());
        assert!(
            seqs.len() > 1000,
            "SPI {spi}: too few packets captured to judge"
        );
        assert!(
            repeated.is_empty(),
            "SPI {spi}: sequence numbers sent more than once: {:?}",
            &repeated[..repeated.len().min(10)]
        );
    }

    replay_onto_another_queue(&lab, &files, &a, dir.path())?;

    a.stop()?;
    b.stop()?;
    lab.down()
}

/// Sends datagrams from host-b on many flows (so their ESP reaches both of router-a's queues),
/// captures their ESP, and re-sends all of it from router-b through one raw socket (so it
/// arrives on one queue): every replay is dropped, also those first opened on the other queue.
fn replay_onto_another_queue(
    lab: &Lab,
    files: &StaticTunnelFiles,
    a: &AgentProcess,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let listener = lab.run_in(Node::HostA, || {
        let socket = UdpSocket::bind(SocketAddrV4::new(addr::HOST_A, PORT))?;
        socket.set_read_timeout(Some(Duration::from_millis(500)))?;
        Ok(socket)
    })?;
    let before = a.status()?;
    let pcap = dir.join("replay.pcap");
    let tcpdump = capture(lab, Node::NatA, "outside", &pcap, "udp port 4500")?;
    udp_flows(lab, Node::HostB, addr::HOST_A, "original")?;
    let mut delivered = Vec::new();
    let mut buf = [0u8; 256];
    while delivered.len() < FLOWS {
        let Ok((n, _)) = listener.recv_from(&mut buf) else {
            break;
        };
        delivered.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    stop_capture(tcpdump)?;
    assert_eq!(delivered.len(), FLOWS, "originals delivered: {delivered:?}");

    let spi = files.spi_b_to_a.to_be_bytes();
    let captured = ipv4_packets(&pcap)?;
    let originals: Vec<Vec<u8>> = captured
        .iter()
        .filter(|p| {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            p.get(ihl + 8..ihl + 12) == Some(&spi[..])
        })
        .cloned()
        .collect();
    assert_eq!(
        originals.len(),
        FLOWS,
        "ESP packets captured for the originals, of {} IPv4 packets: {:02x?}",
        captured.len(),
        captured.first().map(|p| &p[..p.len().min(40)])
    );

    let opened = poll_until(
        Duration::from_secs(5),
        || a.status(),
        |s| {
            s.worker.as_ref().map_or(0, |w| w.decrypted)
                >= before.worker.as_ref().map_or(0, |w| w.decrypted) + FLOWS as u64
        },
    )?;
    let (was, now) = (decrypted_by_queue(&before), decrypted_by_queue(&opened));
    let by_queue: BTreeMap<u32, u64> = now
        .iter()
        .map(|(q, n)| (*q, n - was.get(q).copied().unwrap_or(0)))
        .collect();
    eprintln!("originals opened by queue: {by_queue:?}");
    assert!(
        by_queue.len() == usize::from(QUEUES) && by_queue.values().all(|n| *n > 0),
        "the originals did not reach both queues: {by_queue:?}"
    );

    let replayed_before = opened
        .worker
        .as_ref()
        .and_then(|w| w.dropped.get("replayed").copied())
        .unwrap_or(0);
    lab.run_in(Node::RouterB, move || send_raw_ipv4(&originals))?;
    let after = poll_until(
        Duration::from_secs(5),
        || a.status(),
        |s| {
            s.worker
                .as_ref()
                .and_then(|w| w.dropped.get("replayed").copied())
                .unwrap_or(0)
                >= replayed_before + FLOWS as u64
        },
    )?;
    let w = after.worker.as_ref().expect("worker counters");
    let replays_by_queue: BTreeMap<u32, u64> = w
        .workers
        .iter()
        .map(|each| {
            let was = opened
                .worker
                .iter()
                .flat_map(|o| &o.workers)
                .find(|o| o.queue == each.queue)
                .and_then(|o| o.dropped.get("replayed").copied())
                .unwrap_or(0);
            let now = each.dropped.get("replayed").copied().unwrap_or(0);
            (each.queue.unwrap_or_default(), now - was)
        })
        .collect();
    eprintln!("replays dropped by queue: {replays_by_queue:?}");
    // The replays share one 5-tuple, so one flow hash and one queue; the originals were opened
    // on both, so those opened on the other queue were replayed across queues.
    let hit: Vec<u32> = replays_by_queue
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(q, _)| *q)
        .collect();
    assert!(
        hit.len() == 1
            && by_queue
                .iter()
                .any(|(q, opened)| *q != hit[0] && *opened > 0),
        "no replay crossed queues: originals {by_queue:?}, replays {replays_by_queue:?}"
    );
    assert_eq!(
        w.dropped.get("replayed").copied().unwrap_or(0),
        replayed_before + FLOWS as u64,
        "every replay dropped as one: {:?}",
        w.dropped
    );
    assert_eq!(
        w.decrypted,
        opened.worker.as_ref().map_or(0, |w| w.decrypted),
        "a replay was opened"
    );
    if let Ok((n, _)) = listener.recv_from(&mut buf) {
        panic!(
            "a replay was delivered: {}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    Ok(())
}
