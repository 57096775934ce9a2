//! strongSwan (charon with kernel-libipsec) on both lab routers: a PSK tunnel between the sites
//! carries host traffic, and that traffic crosses the internet link only as ESP in UDP 4500.

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail};
use vpn_lab::{
    Lab, LabSpec, Node, addr,
    strongswan::{Charon, Connection, Psk, charon_running_in},
};

/// tcpdump writing every packet of a router's WAN to a file until stopped.
struct Capture {
    child: Child,
}

impl Capture {
    fn start(lab: &Lab, node: Node, file: &Path) -> anyhow::Result<Capture> {
        let mut child = lab
            .command(node, "tcpdump")
            // Immediate mode: without it packets wait in the capture ring for up to a second
            // and a stop in between loses them. -Z root: it may write into a root-only folder.
            .args([
                "-i",
                "wan",
                "-n",
                "--immediate-mode",
                "-U",
                "-Z",
                "root",
                "-w",
            ])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting tcpdump")?;
        // tcpdump says "listening on wan ..." once its socket is open.
        let stderr = child.stderr.take().context("tcpdump stderr")?;
        let mut line = String::new();
        BufReader::new(stderr).read_line(&mut line)?;
        if !line.contains("listening") {
            let _ = child.kill();
            bail!("tcpdump did not start: {line}");
        }
        Ok(Capture { child })
    }

    fn stop(mut self) -> anyhow::Result<()> {
        // Let the last packets reach the file, then SIGINT (tcpdump closes the file cleanly).
        std::thread::sleep(Duration::from_millis(300));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Packets in capture `file` that match the tcpdump `filter`.
fn count(file: &Path, filter: &str) -> anyhow::Result<usize> {
    let output = std::process::Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(file)
        .arg(filter)
        .stderr(Stdio::null())
        .output()?;
    Ok(String::from_utf8_lossy(&output.stdout).lines().count())
}

#[test]
fn strongswan_psk_tunnel_carries_site_traffic_as_esp_in_udp() -> anyhow::Result<()> {
    check_tunnel(false)
}

#[test]
fn strongswan_tunnel_works_through_one_to_one_nat() -> anyhow::Result<()> {
    check_tunnel(true)
}

fn check_tunnel(nat: bool) -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec {
        nat,
        ..LabSpec::default()
    })?;
    let psk = Psk::random()?;
    let (conn_a, conn_b) = Connection::lab_pair_for(&lab, &psk);
    let a = Charon::start(&lab, Node::RouterA)?;
    let b = Charon::start(&lab, Node::RouterB)?;
    a.load(&[conn_a])?;
    b.load(&[conn_b])?;
    a.initiate("net")?;
    let sa_a = a.wait_installed("net", Duration::from_secs(10))?;
    let sa_b = b.wait_installed("net", Duration::from_secs(10))?;
    assert_eq!(sa_a.spi_out, sa_b.spi_in, "SPIs of a->b differ");
    assert_eq!(sa_a.spi_in, sa_b.spi_out, "SPIs of b->a differ");
    assert!(sa_a.encap && sa_b.encap, "libipsec always encapsulates");
    if nat {
        // A real NAT this time (not libipsec's faked one): router-a sees itself behind it.
        let ike_a = a.list_sas()?.into_iter().next().context("no IKE_SA")?;
        assert_eq!(
            ike_a.fields.get("nat-local").map(String::as_str),
            Some("yes"),
            "{:?}",
            ike_a.fields
        );
    }
    assert_eq!(
        sa_a.fields.get("encr-alg").map(String::as_str),
        Some("AES_GCM_16")
    );
    assert_eq!(
        sa_a.fields.get("encr-keysize").map(String::as_str),
        Some("256")
    );
    // charon routes site B into its TUN device through table 220.
    let routes = lab.exec(Node::RouterA, "ip", &["route", "show", "table", "220"])?;
    assert!(
        routes.contains(addr::SITE_B) && routes.contains("ipsec0"),
        "no route to site B through ipsec0 in table 220: {routes}"
    );
    // The CHILD_SA keys are in the log (chd = 4), which only root can read.
    let keys_a = a.logged_child_keys();
    let keys_b = b.logged_child_keys();
    assert_eq!(keys_a.len(), 1, "CHILD_SA keys in router-a's log");
    assert_eq!(keys_a, keys_b, "both ends logged the same CHILD_SA keys");
    assert_eq!(
        keys_a[0].encryption_initiator.len(),
        36,
        "AES-256 key + salt"
    );
    use std::os::unix::fs::PermissionsExt as _;
    for path in [a.log_path(), a.swanctl_conf_path()] {
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }

    let dir = tempfile::tempdir()?;
    let pcap = dir.path().join("router-b-wan.pcap");
    let capture = Capture::start(&lab, Node::RouterB, &pcap)?;
    let ping = lab
        .command(Node::HostA, "ping")
        .args(["-c", "5", "-i", "0.2", "-W", "2", "-q"])
        .arg(addr::HOST_B.to_string())
        .output()?;
    capture.stop()?;
    assert!(
        ping.status.success(),
        "host-a cannot reach host-b through strongSwan: {}\n{}",
        String::from_utf8_lossy(&ping.stdout),
        a.log()
    );

    // 5 requests and 5 replies crossed router-b's WAN as UDP 4500, no ICMP in the clear.
    let esp_in_udp = count(&pcap, "udp port 4500 and greater 100")?;
    let clear_icmp = count(&pcap, "icmp")?;
    assert!(
        esp_in_udp >= 10,
        "{esp_in_udp} ESP-in-UDP packets on the WAN"
    );
    assert_eq!(clear_icmp, 0, "ICMP crossed the WAN in the clear");
    // And charon counted them.
    let sa_a = a.installed_child("net")?.context("CHILD_SA gone")?;
    let sa_b = b.installed_child("net")?.context("CHILD_SA gone")?;
    assert!(sa_a.packets_out >= 5 && sa_a.packets_in >= 5, "{sa_a:?}");
    assert!(sa_b.packets_out >= 5 && sa_b.packets_in >= 5, "{sa_b:?}");

    let (ns_a, dir_a) = (a.namespace().to_owned(), a.dir().to_owned());
    a.stop()?;
    drop(b);
    assert!(!charon_running_in(&ns_a)?, "charon still running");
    assert!(!dir_a.exists(), "{} left behind", dir_a.display());
    let namespaces = lab.namespaces().to_vec();
    lab.down()?;
    let left = vpn_lab::netns::list()?;
    assert!(namespaces.iter().all(|ns| !left.contains(ns)));
    Ok(())
}
