//! The sysctl policy of a configuration: applied when the agent starts on a router, drift
//! reported in status, the previous values put back when it stops.

use std::time::Duration;

use vpn_lab::{AgentProcess, Lab, LabSpec, Node};
use vpn_tests::{agent_bin, poll_until};

const KEYS: &[&str] = &[
    "net.ipv4.tcp_mtu_probing",
    "net.ipv4.conf.all.send_redirects",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.accept_source_route",
];

fn read(lab: &Lab, key: &str) -> anyhow::Result<String> {
    Ok(lab
        .exec(Node::RouterA, "sysctl", &["-n", key])?
        .trim()
        .to_owned())
}

#[test]
fn sysctl_policy_is_applied_watched_and_restored() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec::default())?;
    let before: Vec<String> = KEYS
        .iter()
        .map(|k| read(&lab, k))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        before,
        ["0", "1", "0", "1"],
        "kernel defaults in a new namespace"
    );

    let dir = tempfile::tempdir()?;
    let config = dir.path().join("router-a.toml");
    std::fs::write(
        &config,
        "[router]\nname = \"lab-a\"\nwan = \"wan\"\nlan = [\"lan\"]\n\n\
         [sysctl]\nmanage = true\nip_forward = true\nrp_filter = { all = 2 }\n\
         tcp_mtu_probing = 1\nrestore_on_exit = true\n",
    )?;
    let config = config.to_string_lossy().into_owned();
    // Interfaces come from the configuration: no --wan/--lan.
    let agent =
        AgentProcess::start_bare(&lab, Node::RouterA, &agent_bin()?, &["--config", &config])?;

    let applied: Vec<String> = KEYS
        .iter()
        .map(|k| read(&lab, k))
        .collect::<Result<_, _>>()?;
    assert_eq!(applied, ["1", "0", "2", "0"], "the policy's values");
    let status = agent.status()?;
    assert!(
        status
            .interfaces
            .iter()
            .any(|i| i.role == "lan" && i.name == "lan")
    );

    // Someone changes one behind the agent's back: status says so.
    lab.exec(
        Node::RouterA,
        "sysctl",
        &["-qw", "net.ipv4.tcp_mtu_probing=0"],
    )?;
    let drifted = poll_until(
        Duration::from_secs(5),
        || agent.status(),
        |s| !s.sysctl_drift.is_empty(),
    )?;
    assert_eq!(drifted.sysctl_drift.len(), 1, "{:?}", drifted.sysctl_drift);
    assert_eq!(drifted.sysctl_drift[0].key, "net.ipv4.tcp_mtu_probing");
    assert_eq!(drifted.sysctl_drift[0].found, "0");

    agent.stop()?;
    let after: Vec<String> = KEYS
        .iter()
        .map(|k| read(&lab, k))
        .collect::<Result<_, _>>()?;
    assert_eq!(after, before, "values at start are back");
    lab.down()
}
