//! What the tunnel puts on the wire, checked by tools that share no code with us: tshark
//! decrypts the WAN capture with the configured keys (every ICV good, no plaintext), and the
//! TCP MSS clamp is seen in captures on both sites.

use std::{path::Path, process::Stdio, time::Duration};

use vpn_lab::{
    Lab, LabSpec, Node, addr,
    static_tunnel::{Encap, StaticTunnelFiles},
    traffic,
};
use vpn_tests::{
    agent_bin,
    capture::{capture, esp_sa, stop_capture, tshark},
};

const MARKER: &[u8] = b"PLAINTEXT-MARKER-must-never-cross-the-WAN";

#[test]
fn wan_capture_decrypts_with_tshark_and_carries_no_plaintext() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec {
        nat: true,
        ..LabSpec::default()
    })?;
    let files = StaticTunnelFiles::write(lab.id(), Encap::Udp, true)?;
    let (a, b) = files.start_agents(&lab, &agent_bin()?)?;
    let dir = tempfile::tempdir()?;
    let pcap = dir.path().join("internet.pcap");

    // The internet side of the NAT: what an observer between the sites sees.
    // Everything but ARP: a leak could be any protocol.
    let tcpdump = capture(&lab, Node::NatA, "outside", &pcap, "not arp")?;
    lab.exec(
        Node::HostA,
        "ping",
        &["-c", "5", "-i", "0.2", "-q", &addr::HOST_B.to_string()],
    )?;
    lab.run_in(Node::HostA, || {
        let dst = std::net::SocketAddrV4::new(addr::HOST_B, 9);
        traffic::send_udp(0, dst, &vec![MARKER.to_vec(); 5])
    })?;
    stop_capture(tcpdump)?;

    let raw = std::fs::read(&pcap)?;
    assert!(
        !raw.windows(MARKER.len()).any(|w| w == MARKER),
        "plaintext from host-a crossed the internet link"
    );
    let public_a = addr::ROUTER_A_WAN.to_string();
    let b_wan = addr::ROUTER_B_WAN.to_string();
    let fields = tshark(
        &pcap,
        &[
            "-o",
            "esp.enable_encryption_decode:TRUE",
            "-o",
            "esp.enable_authentication_check:TRUE",
            "-o",
            &esp_sa(&public_a, &b_wan, files.spi_a_to_b, &files.key_a_to_b),
            "-o",
            &esp_sa(&b_wan, &public_a, files.spi_b_to_a, &files.key_b_to_a),
            "-Y",
            "esp",
            "-T",
            "fields",
            "-e",
            "esp.spi",
            "-e",
            "esp.icv_good",
            "-e",
            "udp.dstport",
            "-e",
            "ip.dst",
        ],
    )?;
    let lines: Vec<&str> = fields.lines().collect();
    // 5 echo requests and their replies; 5 UDP datagrams to a closed port and host-b's ICMP
    // "port unreachable" for each.
    assert_eq!(lines.len(), 20, "ESP packets on the wire:\n{fields}");
    let non_esp = tshark(
        &pcap,
        &["-Y", "not esp", "-T", "fields", "-e", "frame.protocols"],
    )?;
    assert!(
        non_esp.trim().is_empty(),
        "not ESP on the internet link:\n{non_esp}"
    );
    for line in &lines {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            f.get(1),
            Some(&"1"),
            "ICV not verified good by tshark: {line}"
        );
        assert!(f[2].contains("4500"), "not UDP-encapsulated: {line}");
        // The inner destination decrypts to a site host.
        assert!(
            f[3].contains(&addr::HOST_B.to_string()) || f[3].contains(&addr::HOST_A.to_string()),
            "inner packet not decrypted: {line}"
        );
    }

    a.stop()?;
    b.stop()?;
    lab.down()
}

#[test]
fn tcp_syns_carry_the_clamped_mss_on_both_sites() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec::default())?;
    let files = StaticTunnelFiles::write(lab.id(), Encap::Esp, false)?;
    let (a, b) = files.start_agents(&lab, &agent_bin()?)?;
    let dir = tempfile::tempdir()?;
    let (at_a, at_b) = (
        dir.path().join("site-a.pcap"),
        dir.path().join("site-b.pcap"),
    );

    // SYNs only: the bulk transfer would make a large capture for nothing.
    let syns_only = "tcp[tcpflags] & tcp-syn != 0";
    let cap_a = capture(&lab, Node::HostA, "eth0", &at_a, syns_only)?;
    let cap_b = capture(&lab, Node::HostB, "eth0", &at_b, syns_only)?;
    let mut server = lab
        .command(Node::HostB, "iperf3")
        .args(["-s", "-1", "-B", &addr::HOST_B.to_string()])
        .stdout(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    let run = lab.exec(
        Node::HostA,
        "iperf3",
        &["-c", &addr::HOST_B.to_string(), "-t", "1"],
    );
    let _ = server.kill();
    let _ = server.wait();
    run?;
    stop_capture(cap_a)?;
    stop_capture(cap_b)?;

    let syns = |file: &Path, filter: &str| -> anyhow::Result<Vec<u32>> {
        Ok(tshark(
            file,
            &["-Y", filter, "-T", "fields", "-e", "tcp.options.mss_val"],
        )?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect())
    };
    // host-a sent SYNs with its own MSS (1460); host-b receives them clamped to 1360.
    let sent = syns(&at_a, "tcp.flags.syn == 1 && tcp.flags.ack == 0")?;
    let arrived = syns(&at_b, "tcp.flags.syn == 1 && tcp.flags.ack == 0")?;
    assert!(
        !sent.is_empty() && sent.iter().all(|m| *m == 1460),
        "{sent:?}"
    );
    assert!(
        !arrived.is_empty() && arrived.iter().all(|m| *m == 1360),
        "{arrived:?}"
    );
    // And the SYN-ACKs the other way, clamped by router-b.
    let answered = syns(&at_b, "tcp.flags.syn == 1 && tcp.flags.ack == 1")?;
    let got = syns(&at_a, "tcp.flags.syn == 1 && tcp.flags.ack == 1")?;
    assert!(
        !answered.is_empty() && answered.iter().all(|m| *m == 1460),
        "{answered:?}"
    );
    assert!(!got.is_empty() && got.iter().all(|m| *m == 1360), "{got:?}");

    a.stop()?;
    b.stop()?;
    lab.down()
}
