//! The agent negotiates its tunnel with IKEv2 against strongSwan 5.9 on the other site, and the
//! negotiated CHILD_SA carries the sites' traffic through the XDP/AF_XDP datapath.

use std::time::Duration;

use vpn_lab::{
    AgentProcess, Lab, LabSpec, Node, addr,
    strongswan::{Charon, Connection, Psk},
};
use vpn_tests::{agent_bin, poll_until};

#[test]
fn agent_negotiates_with_strongswan_and_carries_traffic() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec::default())?;
    // strongSwan (kernel-libipsec: ESP always in UDP 4500) answers on router-b.
    let psk = Psk(format!("lab-psk-{}", lab.id()).into_bytes());
    let charon = Charon::start(&lab, Node::RouterB)?;
    let (_, responder) = Connection::lab_pair(&psk);
    charon.load(&[responder])?;

    let dir = tempfile::tempdir()?;
    let psk_file = dir.path().join("psk");
    std::fs::write(&psk_file, &psk.0)?;
    std::fs::set_permissions(
        &psk_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )?;
    let config = dir.path().join("router-a.toml");
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
             startup = \"initiate\"\n\n[sysctl]\nmanage = false\n",
            peer = addr::ROUTER_B_WAN,
            psk = psk_file.display(),
            a = addr::SITE_A,
            b = addr::SITE_B,
        ),
    )?;
    let config = config.to_string_lossy().into_owned();
    let agent =
        AgentProcess::start_bare(&lab, Node::RouterA, &agent_bin()?, &["--config", &config])?;

    // The CHILD_SA on strongSwan's side, and ours in the datapath, with matching SPIs.
    let theirs = charon.wait_installed("net", Duration::from_secs(20))?;
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

    let out = lab
        .command(Node::HostA, "ping")
        .args([
            "-c",
            "5",
            "-i",
            "0.2",
            "-W",
            "2",
            "-q",
            &addr::HOST_B.to_string(),
        ])
        .output()?;
    assert!(
        out.status.success(),
        "ping through the negotiated tunnel: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        agent.log()
    );
    let status = poll_until(
        Duration::from_secs(5),
        || agent.status(),
        |s| s.worker.as_ref().is_some_and(|w| w.decrypted >= 5),
    )?;
    let w = status.worker.as_ref().expect("worker counters");
    assert!(w.encrypted >= 5 && w.decrypted >= 5, "{w:?}");
    assert_eq!(
        status.packets("wan", "plain")?,
        0,
        "clear packets on router-a's WAN"
    );

    agent.stop()?;
    charon.stop()?;
    lab.down()
}
