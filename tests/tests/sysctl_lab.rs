//! The sysctl policy of a configuration: applied when the agent starts on a router, drift
//! reported in status, changed by a reload (and NAT rules with it), the previous values put
//! back when it stops.

use std::time::Duration;

use vpn_lab::{AgentProcess, Lab, LabSpec, Node};
use vpn_tests::{agent_bin, agent_verb, poll_until};

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

    let lan_before = read(&lab, "net.ipv4.conf.lan.rp_filter")?;
    assert_ne!(lan_before, "2", "the test needs another value at first");
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("router-a.toml");
    let router = "[router]\nname = \"lab-a\"\nwan = \"wan\"\nlan = [\"lan\"]\n\n";
    std::fs::write(
        &config,
        format!(
            "{router}[sysctl]\nmanage = true\nip_forward = true\nrp_filter = {{ all = 2, lan = 2 }}\n\
             tcp_mtu_probing = 1\nrestore_on_exit = true\n"
        ),
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
    let lan_rp_filter = "net.ipv4.conf.lan.rp_filter";
    assert_eq!(read(&lab, lan_rp_filter)?, "2");
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

    // A reload moves to the new policy: tcp_mtu_probing 2, rp_filter 1 for all and no longer
    // set for lan (back to what it was before the agent), and a NAT rule that was not there.
    let nat = "[[nat]]\naction = \"masquerade\"\nfrom = \"10.1.0.0/24\"\nto = [\"10.2.0.0/24\"]\nout = \"wan\"\n";
    std::fs::write(
        &config,
        format!(
            "{router}[sysctl]\nmanage = true\nip_forward = true\nrp_filter = {{ all = 1 }}\n\
             tcp_mtu_probing = 2\nrestore_on_exit = true\n\n{nat}"
        ),
    )?;
    let (ok, text) = agent_verb(&agent, &["reload"])?;
    assert!(ok, "{text}");
    let reloaded = poll_until(
        Duration::from_secs(5),
        || agent.status(),
        |s| s.nat.rules == 1,
    )?;
    assert_eq!(reloaded.nat.rules, 1, "{}", agent.log());
    let now: Vec<String> = KEYS
        .iter()
        .map(|k| read(&lab, k))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        now,
        ["2", "0", "1", "0"],
        "the reloaded policy\n{}",
        agent.log()
    );
    assert_eq!(read(&lab, lan_rp_filter)?, lan_before);

    // A broken file, or one that moves the datapath to other interfaces, changes nothing.
    for (n, broken) in [
        format!("{router}[sysctl]\nmanage = true\ntcp_mtu_probing = 7\n"),
        "[router]\nname = \"lab-a\"\nwan = \"lan\"\nlan = [\"wan\"]\n\n\
         [sysctl]\nmanage = true\ntcp_mtu_probing = 1\n"
            .to_owned(),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(&config, broken)?;
        let (ok, text) = agent_verb(&agent, &["reload"])?;
        assert!(ok, "{text}");
        let refused = poll_until(
            Duration::from_secs(5),
            || Ok(agent.log()),
            |log| {
                log.matches("refused, the running configuration is kept")
                    .count()
                    > n
            },
        )?;
        assert!(
            refused
                .matches("refused, the running configuration is kept")
                .count()
                > n,
            "{refused}"
        );
        assert_eq!(read(&lab, "net.ipv4.tcp_mtu_probing")?, "2");
        assert_eq!(agent.status()?.nat.rules, 1);
    }
    assert_eq!(
        agent
            .log()
            .matches("refused, the running configuration is kept")
            .count(),
        2,
        "{}",
        agent.log()
    );

    agent.stop()?;
    let after: Vec<String> = KEYS
        .iter()
        .map(|k| read(&lab, k))
        .collect::<Result<_, _>>()?;
    assert_eq!(after, before, "values at start are back");
    lab.down()
}
