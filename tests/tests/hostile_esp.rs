//! Hostile ESP against a running tunnel, crafted by scapy (tests/tests/inject_esp.py, which
//! shares no code with us): a replay, a too-old sequence number, a flipped ciphertext bit, an
//! inner source outside the selectors and an unknown SPI are each dropped with their own
//! counter, and the host behind the router receives only the two valid packets.

use std::{
    net::{SocketAddrV4, UdpSocket},
    time::Duration,
};

use vpn_lab::{
    Lab, LabSpec, Node, addr,
    static_tunnel::{Encap, StaticTunnelFiles},
};
use vpn_tests::{agent_bin, poll_until};

const PORT: u16 = 9999;

/// Runs the scapy injector against router-a (tunnel options `extra`) and returns what host-a
/// received and router-a's status.
fn inject(extra: &str) -> anyhow::Result<(Vec<String>, vpn_lab::agent::StatusSnapshot)> {
    let lab = Lab::up(LabSpec::default())?;
    let files = StaticTunnelFiles::write_with(lab.id(), Encap::Udp, false, extra)?;
    let a = files.start_agent(&lab, Node::RouterA, &agent_bin()?)?;

    let listener = lab.run_in(Node::HostA, || {
        let socket = UdpSocket::bind(SocketAddrV4::new(addr::HOST_A, PORT))?;
        socket.set_read_timeout(Some(Duration::from_millis(300)))?;
        Ok(socket)
    })?;

    // router-b's namespace plays the peer (no agent there): scapy seals with the b->a keys.
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/inject_esp.py");
    let out = lab
        .command(Node::RouterB, "python3")
        .arg(&script)
        .arg(&files.key_b_to_a)
        .arg(files.spi_b_to_a.to_string())
        .args([
            addr::ROUTER_B_WAN.to_string(),
            addr::ROUTER_A_WAN.to_string(),
        ])
        .args([addr::HOST_B.to_string(), addr::HOST_A.to_string()])
        .arg(PORT.to_string())
        .output()?;
    assert!(
        out.status.success(),
        "scapy: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut delivered = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok((n, _)) = listener.recv_from(&mut buf) {
        delivered.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    // The worker publishes its counters twice a second.
    let status = poll_until(
        Duration::from_secs(5),
        || a.status(),
        |s| s.worker.as_ref().is_some_and(|w| w.dropped.len() >= 3),
    )?;
    a.stop()?;
    lab.down()?;
    Ok((delivered, status))
}

#[test]
fn hostile_esp_is_dropped_by_reason_and_never_delivered() -> anyhow::Result<()> {
    let (delivered, status) = inject("")?;
    assert_eq!(delivered, ["INJECT-valid-1000", "INJECT-valid-5000"]);
    let w = status.worker.as_ref().expect("worker counters");
    assert_eq!(w.decrypted, 2);
    for reason in ["replayed", "too_old", "bad_icv", "selector_mismatch"] {
        assert_eq!(w.dropped.get(reason), Some(&1), "{reason}: {:?}", w.dropped);
    }
    assert_eq!(w.dropped.len(), 4, "{:?}", w.dropped);
    assert_eq!(status.datapath_events.get("unknown_spi"), Some(&1));
    Ok(())
}

/// A route-based tunnel (AWS style) has 0.0.0.0/0 selectors: the same foreign inner source is
/// accepted, while replays, stale numbers and bad ICVs are still dropped.
#[test]
fn route_based_tunnel_accepts_any_inner_source_but_nothing_forged() -> anyhow::Result<()> {
    let (delivered, status) = inject("route_based = true")?;
    assert_eq!(
        delivered,
        [
            "INJECT-valid-1000",
            "INJECT-valid-5000",
            "INJECT-foreign-src"
        ]
    );
    let w = status.worker.as_ref().expect("worker counters");
    assert_eq!(w.decrypted, 3);
    for reason in ["replayed", "too_old", "bad_icv"] {
        assert_eq!(w.dropped.get(reason), Some(&1), "{reason}: {:?}", w.dropped);
    }
    assert_eq!(w.dropped.get("selector_mismatch"), None);
    Ok(())
}
