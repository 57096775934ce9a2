//! Traffic between the lab's hosts, as the tunnel tests send and count it.

use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use vpn_lab::{Lab, Node, addr};

/// Pings `count` times (0.2 s apart) and returns how many replies came back.
pub fn ping(lab: &Lab, from: Node, to: Ipv4Addr, count: u32) -> anyhow::Result<u32> {
    let out = lab
        .command(from, "ping")
        .args(["-c", &count.to_string(), "-i", "0.2", "-W", "1", "-q"])
        .arg(to.to_string())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(',')
        .find_map(|part| part.trim().strip_suffix(" received"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "unexpected ping output from {from:?} to {to}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// Which way an iperf3 transfer between host-a (client) and host-b (server) goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    AToB,
    BToA,
}

/// An iperf3 TCP transfer of `seconds` between the hosts; returns the bytes the receiver got.
pub fn iperf_tcp(lab: &Lab, direction: Direction, seconds: u32) -> anyhow::Result<u64> {
    iperf_tcp_streams(lab, direction, seconds, 1)
}

/// Like [`iperf_tcp`] with `streams` parallel TCP connections (`-P`), which a multi-queue link
/// spreads over its queues by flow hash.
pub fn iperf_tcp_streams(
    lab: &Lab,
    direction: Direction,
    seconds: u32,
    streams: u32,
) -> anyhow::Result<u64> {
    let server = lab
        .command(Node::HostB, "iperf3")
        .args(["-s", "-1", "-B", &addr::HOST_B.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    let (host_b, seconds) = (addr::HOST_B.to_string(), seconds.to_string());
    let streams = streams.to_string();
    let mut args = vec![
        "-c",
        host_b.as_str(),
        "-t",
        seconds.as_str(),
        "-P",
        streams.as_str(),
        "-J",
    ];
    if direction == Direction::BToA {
        args.push("-R");
    }
    let json = lab.exec(Node::HostA, "iperf3", &args);
    wait_child(server)?;
    received_bytes(&json?)
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

/// What a numbered stream's receiver saw.
#[derive(Debug)]
pub struct StreamReport {
    pub sent: u64,
    /// Sequence numbers that never arrived, in order.
    pub missing: Vec<u64>,
}

/// Sends a numbered UDP stream from host-a to host-b at `rate` packets per second for
/// `duration`, running `during` meanwhile (from the calling thread); the receiver counts every
/// number. Returns `during`'s error if it fails.
pub fn numbered_stream<T>(
    lab: &Lab,
    rate: u64,
    duration: Duration,
    during: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<(StreamReport, T)> {
    const PORT: u16 = 9000;
    let receiver = lab.run_in(Node::HostB, || {
        let socket = UdpSocket::bind(SocketAddrV4::new(addr::HOST_B, PORT))?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(socket)
    })?;
    let sender = lab.run_in(Node::HostA, || Ok(UdpSocket::bind("0.0.0.0:0")?))?;
    let done = AtomicBool::new(false);
    let (sent, received, value) = std::thread::scope(|scope| {
        let receiving = scope.spawn(|| {
            let mut seen = Vec::new();
            let mut buf = [0u8; 64];
            loop {
                match receiver.recv(&mut buf) {
                    Ok(8) => seen.extend(buf[..8].try_into().ok().map(u64::from_be_bytes)),
                    Ok(_) => {}
                    Err(_) if done.load(Ordering::Relaxed) => break,
                    Err(_) => {}
                }
            }
            seen
        });
        let sending = scope.spawn(|| -> anyhow::Result<u64> {
            let start = Instant::now();
            let mut seq = 0u64;
            while start.elapsed() < duration {
                let due = start + Duration::from_micros(seq * 1_000_000 / rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                sender.send_to(&seq.to_be_bytes(), SocketAddrV4::new(addr::HOST_B, PORT))?;
                seq += 1;
            }
            Ok(seq)
        });
        let value = during();
        let sent = sending
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the sender thread panicked")));
        std::thread::sleep(Duration::from_millis(500));
        done.store(true, Ordering::Relaxed);
        let received = receiving.join().unwrap_or_default();
        (sent, received, value)
    });
    let (sent, value) = (sent?, value?);
    let mut received = received;
    received.sort_unstable();
    received.dedup();
    let missing = (0..sent)
        .filter(|s| received.binary_search(s).is_err())
        .collect();
    Ok((StreamReport { sent, missing }, value))
}
