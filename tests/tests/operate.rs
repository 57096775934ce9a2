//! The operator's verbs on a running agent: `list-sas`, `terminate NAME`, `initiate NAME`
//! over the root-only control socket, and a malformed request that changes nothing.

use std::{
    io::{Read as _, Write as _},
    os::unix::fs::PermissionsExt as _,
    process::Command,
    time::Duration,
};

use vpn_lab::{
    AgentProcess, Lab, LabSpec, Node, addr,
    agent::StatusSnapshot,
    ike_tunnel::{IkeOptions, IkeTunnelFiles},
};
use vpn_tests::{agent_bin, poll_until, traffic::ping};

fn verb(agent: &AgentProcess, args: &[&str]) -> anyhow::Result<(bool, String)> {
    let out = Command::new(agent_bin()?)
        .args(args)
        .args(["--instance", agent.instance()])
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

fn sa_count(s: &StatusSnapshot) -> usize {
    s.worker.as_ref().map_or(0, |w| w.sas.len())
}

#[test]
fn terminate_and_initiate_a_tunnel_by_name() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec::default())?;
    let files = IkeTunnelFiles::write(lab.id(), &IkeOptions::default())?;
    let (a, b) = files.start_agents(&lab, &agent_bin()?)?;
    let up = |s: &StatusSnapshot| sa_count(s) == 2;
    poll_until(Duration::from_secs(20), || a.status(), up)?;

    let (ok, listed) = verb(&a, &["list-sas"])?;
    assert!(ok, "{listed}");
    assert!(listed.contains("to-site-b[1]: ESTABLISHED"), "{listed}");
    assert!(listed.contains("INSTALLED, TUNNEL, ESP SPIs:"), "{listed}");
    assert!(listed.contains("10.1.0.0/24 === 10.2.0.0/24"), "{listed}");

    // The socket is root's only.
    let socket = format!("/run/vpn-appliance/{}.sock", a.instance());
    let mode = std::fs::metadata(&socket)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{socket}");

    // A malformed request is refused and changes nothing.
    let mut stream = std::os::unix::net::UnixStream::connect(&socket)?;
    stream.write_all(b"{\"reboot\": true}\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    assert!(answer.contains("\"ok\":false"), "{answer}");
    assert_eq!(sa_count(&a.status()?), 2);

    let (ok, text) = verb(&a, &["terminate", "no-such-tunnel"])?;
    assert!(!ok && text.contains("no tunnel named"), "{text}");

    // terminate: both sides lose the SAs; the site's traffic is dropped, and the tunnel
    // stays down (no retry) until initiated again.
    let (ok, text) = verb(&a, &["terminate", "to-site-b"])?;
    assert!(ok, "{text}");
    let down = |s: &StatusSnapshot| sa_count(s) == 0;
    let sa = poll_until(Duration::from_secs(10), || a.status(), down)?;
    assert!(down(&sa), "router-a kept its SAs:\n{}", a.log());
    let sb = poll_until(Duration::from_secs(10), || b.status(), down)?;
    assert!(down(&sb), "router-b kept its SAs:\n{}", b.log());
    assert_eq!(ping(&lab, Node::HostA, addr::HOST_B, 3)?, 0);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        sa_count(&a.status()?),
        0,
        "it came back by itself:\n{}",
        a.log()
    );

    let (ok, text) = verb(&a, &["initiate", "to-site-b"])?;
    assert!(ok, "{text}");
    let s = poll_until(Duration::from_secs(20), || a.status(), up)?;
    assert!(up(&s), "not up again:\n{}", a.log());
    assert_eq!(ping(&lab, Node::HostA, addr::HOST_B, 3)?, 3);

    a.stop()?;
    b.stop()?;
    lab.down()
}
