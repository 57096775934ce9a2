//! The agent negotiates its tunnel with IKEv2 against strongSwan 5.9 on the other site, as
//! initiator and as responder, and the negotiated CHILD_SA carries the sites' traffic through
//! the XDP/AF_XDP datapath. tshark decrypts the internet link's capture with the keys strongSwan
//! derived: the same keys as ours, or the ICVs would not verify.

use std::time::Duration;

use vpn_lab::{
    AgentProcess, Lab, LabSpec, Node, addr,
    strongswan::{Charon, ChildSa, Connection, LoggedChildKeys, Psk},
    traffic,
};
use vpn_tests::{
    agent_bin,
    capture::{capture, esp_sa, stop_capture, tshark},
    poll_until,
    traffic::{Direction, iperf_tcp, ping},
};

const MARKER: &[u8] = b"PLAINTEXT-MARKER-must-never-cross-the-WAN";

/// Who sends the IKE_SA_INIT.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Initiator {
    Agent,
    StrongSwan,
}

/// router-a's configuration: one PSK tunnel to strongSwan on router-b, ESP in UDP (strongSwan's
/// kernel-libipsec does no raw ESP).
fn agent_config(
    dir: &std::path::Path,
    psk: &Psk,
    startup: &str,
) -> anyhow::Result<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let psk_file = dir.join("psk");
    std::fs::write(&psk_file, &psk.0)?;
    std::fs::set_permissions(&psk_file, std::fs::Permissions::from_mode(0o600))?;
    let config = dir.join("router-a.toml");
    std::fs::write(
        &config,
        format!(
            "[router]\nname = \"lab-a\"\nwan = \"wan\"\nlan = [\"lan\"]\n\n\
             [[tunnel]]\nname = \"to-site-b\"\npeer = \"{peer}\"\n\
             auth = {{ psk = {{ file = \"{psk}\" }} }}\n\
             selectors = {{ local = [\"{a}\"], remote = [\"{b}\"] }}\n\
             force_encap = true\n\
             ike_proposals = [\"aes256gcm16-prfsha256-modp2048\"]\n\
             esp_proposals = [\"aes256gcm16\"]\n\
             startup = \"{startup}\"\n\n[sysctl]\nmanage = false\n",
            peer = addr::ROUTER_B_WAN,
            psk = psk_file.display(),
            a = addr::SITE_A,
            b = addr::SITE_B,
        ),
    )?;
    Ok(config)
}

/// Waits for the agent's datapath to hold the CHILD_SA strongSwan installed: our outbound SA is
/// its inbound one and the other way round.
fn check_spis(agent: &AgentProcess, theirs: &ChildSa) -> anyhow::Result<()> {
    let ours = poll_until(
        Duration::from_secs(10),
        || agent.status(),
        |s| s.worker.as_ref().is_some_and(|w| w.sas.len() == 2),
    )?;
    let sas = &ours.worker.as_ref().expect("worker counters").sas;
    assert_eq!(sas.len(), 2, "{sas:?}\n{}", agent.log());
    let spi = |direction: &str| sas.iter().find(|s| s.direction == direction).map(|s| s.spi);
    assert_eq!(
        spi("out"),
        Some(theirs.spi_in),
        "our outbound SA is strongSwan's inbound"
    );
    assert_eq!(
        spi("in"),
        Some(theirs.spi_out),
        "our inbound SA is strongSwan's outbound"
    );
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Captures router-b's WAN (strongSwan's side: no XDP there, tcpdump sees both directions)
/// while host-a pings and sends marked datagrams, then has tshark decrypt every ESP packet
/// with strongSwan's logged keys.
fn capture_decrypts(
    lab: &Lab,
    theirs: &ChildSa,
    keys: &LoggedChildKeys,
    initiator: Initiator,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pcap = dir.path().join("internet.pcap");
    let tcpdump = capture(lab, Node::RouterB, "wan", &pcap, "not arp")?;
    assert_eq!(ping(lab, Node::HostA, addr::HOST_B, 5)?, 5);
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
    // Keys per direction of the CHILD_SA's exchange: "initiator" keys protect what its
    // initiator sends.
    let (a_to_b, b_to_a) = match initiator {
        Initiator::Agent => (&keys.encryption_initiator, &keys.encryption_responder),
        Initiator::StrongSwan => (&keys.encryption_responder, &keys.encryption_initiator),
    };
    let (a, b) = (
        addr::ROUTER_A_WAN.to_string(),
        addr::ROUTER_B_WAN.to_string(),
    );
    let fields = tshark(
        &pcap,
        &[
            "-o",
            "esp.enable_encryption_decode:TRUE",
            "-o",
            "esp.enable_authentication_check:TRUE",
            "-o",
            &esp_sa(&a, &b, theirs.spi_in, &hex(a_to_b)),
            "-o",
            &esp_sa(&b, &a, theirs.spi_out, &hex(b_to_a)),
            "-Y",
            "esp",
            "-T",
            "fields",
            "-e",
            "esp.spi",
            "-e",
            "esp.icv_good",
            "-e",
            "ip.dst",
        ],
    )?;
    let lines: Vec<&str> = fields.lines().collect();
    // 5 echo requests and their replies; 5 datagrams to a closed port and host-b's "port
    // unreachable" for each.
    assert_eq!(lines.len(), 20, "ESP packets on the wire:\n{fields}");
    for line in &lines {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.get(1), Some(&"1"), "ICV not verified by tshark: {line}");
        assert!(
            f[2].contains(&addr::HOST_B.to_string()) || f[2].contains(&addr::HOST_A.to_string()),
            "inner packet not decrypted: {line}"
        );
    }
    // IKE (DPD) may cross too; nothing else.
    let other = tshark(
        &pcap,
        &[
            "-Y",
            "not esp and not isakmp",
            "-T",
            "fields",
            "-e",
            "frame.protocols",
        ],
    )?;
    assert!(
        other.trim().is_empty(),
        "neither ESP nor IKE on the internet link:\n{other}"
    );
    Ok(())
}

fn negotiate(initiator: Initiator) -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec::default())?;
    let psk = Psk(format!("lab-psk-{}", lab.id()).into_bytes());
    let charon = Charon::start(&lab, Node::RouterB)?;
    let (_, mut responder) = Connection::lab_pair(&psk);
    // kernel-libipsec handles ESP in UDP only.
    responder.encap = true;
    charon.load(&[responder])?;

    let dir = tempfile::tempdir()?;
    let startup = match initiator {
        Initiator::Agent => "initiate",
        Initiator::StrongSwan => "respond",
    };
    let config = agent_config(dir.path(), &psk, startup)?;
    let config = config.to_string_lossy().into_owned();
    let agent =
        AgentProcess::start_bare(&lab, Node::RouterA, &agent_bin()?, &["--config", &config])?;
    if initiator == Initiator::StrongSwan {
        charon.initiate("net")?;
    }

    let theirs = charon.wait_installed("net", Duration::from_secs(20))?;
    check_spis(&agent, &theirs)?;
    let keys = charon
        .logged_child_keys()
        .last()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no CHILD_SA keys in charon's log"))?;
    capture_decrypts(&lab, &theirs, &keys, initiator)?;

    assert_eq!(
        ping(&lab, Node::HostB, addr::HOST_A, 5)?,
        5,
        "{}",
        agent.log()
    );
    for direction in [Direction::AToB, Direction::BToA] {
        let received = iperf_tcp(&lab, direction, 2)?;
        eprintln!("{direction:?}: {received} bytes received in 2 s");
        assert!(
            received > 1_000_000,
            "{direction:?}: only {received} bytes arrived"
        );
    }
    let status = agent.status()?;
    let w = status.worker.as_ref().expect("worker counters");
    assert!(w.encrypted >= 10 && w.decrypted >= 10, "{w:?}");
    assert_eq!(
        status.packets("wan", "plain")?,
        0,
        "clear packets on router-a's WAN"
    );

    agent.stop()?;
    charon.stop()?;
    lab.down()
}

#[test]
fn agent_initiates_to_strongswan_and_carries_traffic() -> anyhow::Result<()> {
    negotiate(Initiator::Agent)
}

#[test]
fn strongswan_initiates_to_the_agent_and_traffic_flows() -> anyhow::Result<()> {
    negotiate(Initiator::StrongSwan)
}
