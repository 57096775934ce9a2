//! The operator's verbs on a running agent: `list-sas`, `terminate NAME`, `initiate NAME`
//! over the root-only control socket, and a malformed request that changes nothing.

use std::{
    io::{Read as _, Write as _},
    os::unix::fs::PermissionsExt as _,
    time::Duration,
};

use vpn_lab::{
    Lab, LabSpec, Node, addr,
    agent::StatusSnapshot,
    ike_tunnel::{IkeOptions, IkeTunnelFiles},
};
use vpn_tests::{agent_bin, agent_verb as verb, poll_until, traffic::ping};

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

/// `vpn-agent reload` (SIGHUP) with `--config`: a broken file changes nothing, an edit that
/// leaves the tunnel as it was keeps its SAs, and a changed tunnel is negotiated again.
#[test]
fn reload_keeps_unchanged_tunnels_and_refuses_broken_files() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec::default())?;
    let files = IkeTunnelFiles::write(lab.id(), &IkeOptions::default())?;
    let (a, b) = files.start_agents(&lab, &agent_bin()?)?;
    let up = |s: &StatusSnapshot| sa_count(s) == 2;
    poll_until(Duration::from_secs(20), || a.status(), up)?;
    let spis = |s: &StatusSnapshot| -> Vec<u32> {
        let mut v: Vec<u32> = s
            .worker
            .as_ref()
            .map(|w| w.sas.iter().map(|sa| sa.spi).collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    };
    let first = spis(&a.status()?);
    let good = std::fs::read_to_string(&files.router_a)?;
    let write = |text: &str| -> anyhow::Result<()> {
        std::fs::write(&files.router_a, text)?;
        Ok(())
    };

    // Broken: refused, the tunnel runs on.
    write(&format!("{good}mtu = \"not a number\"\n"))?;
    let (ok, text) = verb(&a, &["reload"])?;
    assert!(ok, "{text}");
    let log = poll_until(
        Duration::from_secs(5),
        || Ok(a.log()),
        |l| l.contains("refused, the running configuration is kept"),
    )?;
    assert!(
        log.contains("refused, the running configuration is kept"),
        "{log}"
    );
    assert_eq!(spis(&a.status()?), first);
    assert_eq!(ping(&lab, Node::HostA, addr::HOST_B, 2)?, 2);

    // The same tunnel (a comment added): its SAs stay.
    write(&format!("{good}# reviewed\n"))?;
    verb(&a, &["reload"])?;
    let log = poll_until(
        Duration::from_secs(5),
        || Ok(a.log()),
        |l| l.contains("1 tunnel(s) unchanged"),
    )?;
    assert!(log.contains("1 tunnel(s) unchanged"), "{log}");
    assert_eq!(spis(&a.status()?), first);

    // A changed tunnel (its MSS clamp): negotiated again, traffic flows.
    write(&format!("{good}mss = 1300\n"))?;
    verb(&a, &["reload"])?;
    let changed = |s: &StatusSnapshot| up(s) && spis(s) != first;
    let s = poll_until(Duration::from_secs(20), || a.status(), changed)?;
    assert!(changed(&s), "not renegotiated:\n{}", a.log());
    assert_eq!(ping(&lab, Node::HostA, addr::HOST_B, 3)?, 3, "{}", a.log());

    a.stop()?;
    b.stop()?;
    lab.down()
}
