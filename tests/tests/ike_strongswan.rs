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
    check_spis, poll_until,
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
/// kernel-libipsec does no raw ESP), with `extra` TOML lines for the tunnel.
fn agent_config(
    dir: &std::path::Path,
    psk: &Psk,
    startup: &str,
    extra: &str,
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
             startup = \"{startup}\"\n{extra}\n\n[sysctl]\nmanage = false\n",
            peer = addr::ROUTER_B_WAN,
            psk = psk_file.display(),
            a = addr::SITE_A,
            b = addr::SITE_B,
        ),
    )?;
    Ok(config)
}

/// strongSwan on router-b answering the lab's tunnel, and the agent on router-a. Fields drop
/// in order: the agent and charon before the lab.
struct Pair {
    agent: AgentProcess,
    charon: Charon,
    /// strongSwan's connection, to load again into a restarted charon.
    responder: Connection,
    lab: Lab,
    _dir: tempfile::TempDir,
}

/// Starts a [`Pair`]: `tune` adjusts strongSwan's connection; the agent runs with `startup`
/// and `extra` TOML lines for its tunnel.
fn pair(startup: &str, extra: &str, tune: impl FnOnce(&mut Connection)) -> anyhow::Result<Pair> {
    let lab = Lab::up(LabSpec::default())?;
    let psk = Psk(format!("lab-psk-{}", lab.id()).into_bytes());
    let charon = Charon::start(&lab, Node::RouterB)?;
    let (_, mut responder) = Connection::lab_pair(&psk);
    // kernel-libipsec handles ESP in UDP only.
    responder.encap = true;
    tune(&mut responder);
    charon.load(std::slice::from_ref(&responder))?;
    let dir = tempfile::tempdir()?;
    let config = agent_config(dir.path(), &psk, startup, extra)?;
    let config = config.to_string_lossy().into_owned();
    let agent =
        AgentProcess::start_bare(&lab, Node::RouterA, &agent_bin()?, &["--config", &config])?;
    Ok(Pair {
        agent,
        charon,
        responder,
        lab,
        _dir: dir,
    })
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
    let startup = match initiator {
        Initiator::Agent => "initiate",
        Initiator::StrongSwan => "respond",
    };
    let Pair {
        agent,
        charon,
        lab,
        _dir,
        ..
    } = pair(startup, "", |_| {})?;
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

/// strongSwan rekeys the IKE SA (RFC 7296 2.18) after 5 s and the CHILD_SA after 12 s: the
/// agent answers the IKE SA rekey, its CHILD_SA carries on untouched, and the later CHILD_SA
/// rekey, whose keys come from the new IKE SA's SK_d, carries traffic too.
#[test]
fn strongswan_rekeys_the_ike_sa_and_the_tunnel_carries_on() -> anyhow::Result<()> {
    let Pair {
        agent,
        charon,
        lab,
        _dir,
        ..
    } = pair("initiate", "", |responder| {
        responder.ike_rekey_time = Some(Duration::from_secs(5));
        // Far from the hard limit, which strongSwan would otherwise hit during the rekey.
        responder.ike_over_time = Some(Duration::from_secs(120));
        responder.child_rekey_time = Some(Duration::from_secs(12));
    })?;
    let first = charon.wait_installed("net", Duration::from_secs(20))?;
    check_spis(&agent, &first)?;
    let ike_spi = |charon: &Charon| -> anyhow::Result<Option<String>> {
        Ok(charon
            .list_sas()?
            .into_iter()
            .find(|sa| sa.state == "ESTABLISHED")
            .and_then(|sa| sa.fields.get("initiator-spi").cloned()))
    };
    let original = ike_spi(&charon)?;

    // The IKE SA rekey (strongSwan starts it after 5 s, give or take its jitter).
    let rekeyed = poll_until(
        Duration::from_secs(15),
        || ike_spi(&charon),
        |spi| spi.is_some() && *spi != original,
    )?;
    assert!(
        rekeyed.is_some() && rekeyed != original,
        "strongSwan did not rekey the IKE SA:\n{}\n{}",
        charon.log(),
        agent.log()
    );
    assert_eq!(
        ping(&lab, Node::HostA, addr::HOST_B, 3)?,
        3,
        "{}",
        agent.log()
    );
    // Our side: one IKE SA (the new one) holding the CHILD_SA, which did not change.
    let s = poll_until(
        Duration::from_secs(5),
        || agent.status(),
        |s| s.ike.as_ref().is_some_and(|i| i.ike_sas.len() == 1),
    )?;
    let ike = s.ike.as_ref().expect("IKE SAs in status");
    assert_eq!(ike.ike_sas.len(), 1, "{ike:?}\n{}", agent.log());
    assert_eq!(ike.ike_sas[0].child_sas.len(), 1, "{ike:?}");
    assert_eq!(ike.ike_sas[0].child_sas[0].spi_in, first.spi_out, "{ike:?}");

    // The CHILD_SA rekey on the new IKE SA (after 12 s): new SPIs, traffic flows.
    let second = poll_until(
        Duration::from_secs(20),
        || charon.installed_child("net"),
        |c| c.as_ref().is_some_and(|c| c.spi_in != first.spi_in),
    )?
    .ok_or_else(|| anyhow::anyhow!("no CHILD_SA after the rekey:\n{}", charon.log()))?;
    assert_ne!(second.spi_in, first.spi_in, "{}", charon.log());
    poll_until(
        Duration::from_secs(5),
        || agent.status(),
        |s| {
            s.worker
                .as_ref()
                .is_some_and(|w| w.sas.iter().any(|sa| sa.spi == second.spi_in))
        },
    )?;
    assert_eq!(
        ping(&lab, Node::HostA, addr::HOST_B, 3)?,
        3,
        "{}",
        agent.log()
    );
    assert!(
        !agent.log().contains("IKE SA down"),
        "the tunnel went down:\n{}",
        agent.log()
    );

    agent.stop()?;
    charon.stop()?;
    lab.down()
}

/// The agent rekeys the IKE SA itself (its IKE lifetime is 12 s, rekeyed 4 s before) with
/// strongSwan as responder: strongSwan takes the new IKE SA, the old one is deleted, and the
/// CHILD_SA carries on.
#[test]
fn agent_rekeys_the_ike_sa_with_strongswan() -> anyhow::Result<()> {
    let Pair {
        agent,
        charon,
        lab,
        _dir,
        ..
    } = pair(
        "initiate",
        "lifetimes = { ike = 12, child = \"1h\", rekey_margin = 4, rekey_fuzz = 0 }",
        |_| {},
    )?;
    let first = charon.wait_installed("net", Duration::from_secs(20))?;
    check_spis(&agent, &first)?;
    let ike_spis = |charon: &Charon| -> anyhow::Result<Vec<String>> {
        Ok(charon
            .list_sas()?
            .into_iter()
            .filter(|sa| sa.state == "ESTABLISHED")
            .filter_map(|sa| sa.fields.get("initiator-spi").cloned())
            .collect())
    };
    let original = ike_spis(&charon)?;
    assert_eq!(original.len(), 1, "{original:?}");
    let after = poll_until(
        Duration::from_secs(20),
        || ike_spis(&charon),
        |spis| spis.len() == 1 && *spis != original,
    )?;
    assert!(
        after.len() == 1 && after != original,
        "no IKE SA rekey: {after:?}\n{}\n{}",
        agent.log(),
        charon.log()
    );
    assert!(agent.log().contains("IKE SA rekeyed"), "{}", agent.log());
    // The CHILD_SA was inherited, not renegotiated.
    let child = charon
        .installed_child("net")?
        .ok_or_else(|| anyhow::anyhow!("no CHILD_SA:\n{}", charon.log()))?;
    assert_eq!(child.spi_in, first.spi_in, "{}", charon.log());
    assert_eq!(
        ping(&lab, Node::HostA, addr::HOST_B, 3)?,
        3,
        "{}",
        agent.log()
    );

    agent.stop()?;
    charon.stop()?;
    lab.down()
}

/// An agent that stops deletes its IKE SA at strongSwan (INFORMATIONAL DELETE, RFC 7296
/// 1.4.1), so the peer does not keep a dead tunnel until its DPD notices.
#[test]
fn a_stopping_agent_deletes_its_sas_at_strongswan() -> anyhow::Result<()> {
    let Pair {
        agent,
        charon,
        lab,
        _dir,
        ..
    } = pair("initiate", "", |_| {})?;
    charon.wait_installed("net", Duration::from_secs(20))?;

    agent.stop()?;
    let left = poll_until(
        Duration::from_secs(5),
        || charon.list_sas(),
        |sas| sas.is_empty(),
    )?;
    assert!(
        left.is_empty(),
        "strongSwan still has {left:?}:\n{}",
        charon.log()
    );
    assert!(
        charon.log().contains("received DELETE for IKE_SA"),
        "{}",
        charon.log()
    );
    charon.stop()?;
    lab.down()
}

/// DPD (delay 1 s, timeout 4 s, action restart) notices a killed strongSwan within the
/// configured time, and the tunnel comes back by itself once strongSwan runs again.
#[test]
fn dpd_notices_a_killed_strongswan_and_restarts() -> anyhow::Result<()> {
    let Pair {
        agent,
        charon,
        responder,
        lab,
        _dir,
    } = pair(
        "initiate",
        "dpd = { delay = 1, timeout = 4, action = \"restart\" }",
        |_| {},
    )?;
    charon.wait_installed("net", Duration::from_secs(20))?;

    // Killed: no DELETE, no answer to anything.
    let killed = std::time::Instant::now();
    drop(charon);
    let log = poll_until(
        Duration::from_secs(15),
        || Ok(agent.log()),
        |l| l.contains("DeadPeer"),
    )?;
    let noticed = killed.elapsed();
    eprintln!("DPD declared strongSwan dead after {noticed:.1?} (delay 1 s + timeout 4 s)");
    assert!(log.contains("DeadPeer"), "{log}");
    assert!(noticed < Duration::from_secs(1 + 4 + 5), "{noticed:?}");

    let charon = Charon::start(&lab, Node::RouterB)?;
    charon.load(&[responder])?;
    charon.wait_installed("net", Duration::from_secs(60))?;
    let up = poll_until(
        Duration::from_secs(10),
        || agent.status(),
        |s| s.worker.as_ref().is_some_and(|w| w.sas.len() == 2),
    )?;
    assert!(
        up.worker.as_ref().is_some_and(|w| w.sas.len() == 2),
        "{}",
        agent.log()
    );
    assert_eq!(
        ping(&lab, Node::HostA, addr::HOST_B, 3)?,
        3,
        "{}",
        agent.log()
    );

    agent.stop()?;
    charon.stop()?;
    lab.down()
}
