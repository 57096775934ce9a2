//! AWS-style redundancy: router-a has two route-based tunnels (0.0.0.0/0 selectors) to the two
//! endpoints of site B, router-b (active, route priority 100) and router-c (standby, 200).
//! When router-b dies, DPD declares its tunnel dead and the route moves to the standby; when
//! router-b returns, it moves back. No packet crosses the internet in the clear meanwhile.

use std::{path::Path, time::Duration};

use vpn_lab::{AgentProcess, Lab, LabSpec, Node, addr, agent::StatusSnapshot};
use vpn_tests::{
    agent_bin,
    capture::{capture, stop_capture, tshark},
    poll_until,
    traffic::{numbered_stream, ping},
};

const DPD_DELAY: u64 = 1;
const DPD_TIMEOUT: u64 = 4;

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// One route-based tunnel section (AWS style: inside addresses, 0.0.0.0/0 selectors).
fn tunnel(
    name: &str,
    peer: std::net::Ipv4Addr,
    inside: (&str, &str),
    psk: &Path,
    startup: &str,
) -> String {
    format!(
        "[[tunnel]]\nname = \"{name}\"\npeer = \"{peer}\"\n\
         auth = {{ psk = {{ file = \"{psk}\" }} }}\n\
         inside = {{ local = \"{}\", remote = \"{}\" }}\n\
         ike_proposals = [\"aes256gcm16-prfsha256-ecp256\"]\n\
         esp_proposals = [\"aes256gcm16\"]\n\
         dpd = {{ delay = {DPD_DELAY}, timeout = {DPD_TIMEOUT}, action = \"restart\" }}\n\
         startup = \"{startup}\"\n\n",
        inside.0,
        inside.1,
        psk = psk.display(),
    )
}

fn router(name: &str) -> String {
    format!(
        "[router]\nname = \"{name}\"\nwan = \"wan\"\nlan = [\"lan\"]\n\n[sysctl]\nmanage = false\n\n"
    )
}

fn route(prefix: &str, tunnel: &str, priority: u32) -> String {
    format!("[[route]]\nprefix = \"{prefix}\"\ntunnel = \"{tunnel}\"\npriority = {priority}\n\n")
}

struct Configs {
    _dir: tempfile::TempDir,
    a: String,
    b: String,
    c: String,
}

fn configs() -> anyhow::Result<Configs> {
    let dir = tempfile::tempdir()?;
    let psk = dir.path().join("psk");
    write_private(&psk, "failoverLabKey.0123456789")?;
    let write = |name: &str, text: String| -> anyhow::Result<String> {
        let path = dir.path().join(name);
        write_private(&path, &text)?;
        Ok(path.to_string_lossy().into_owned())
    };
    let a = write(
        "router-a.toml",
        router("lab-a")
            + &tunnel(
                "aws-t1",
                addr::ROUTER_B_WAN,
                ("169.254.10.2/30", "169.254.10.1"),
                &psk,
                "initiate",
            )
            + &tunnel(
                "aws-t2",
                addr::ROUTER_C_WAN,
                ("169.254.11.2/30", "169.254.11.1"),
                &psk,
                "initiate",
            )
            + &route(addr::SITE_B, "aws-t1", 100)
            + &route(addr::SITE_B, "aws-t2", 200),
    )?;
    let b = write(
        "router-b.toml",
        router("lab-b")
            + &tunnel(
                "to-site-a",
                addr::ROUTER_A_WAN,
                ("169.254.10.1/30", "169.254.10.2"),
                &psk,
                "respond",
            )
            + &route(addr::SITE_A, "to-site-a", 100),
    )?;
    let c = write(
        "router-c.toml",
        router("lab-c")
            + &tunnel(
                "to-site-a",
                addr::ROUTER_A_WAN,
                ("169.254.11.1/30", "169.254.11.2"),
                &psk,
                "respond",
            )
            + &route(addr::SITE_A, "to-site-a", 100),
    )?;
    Ok(Configs { _dir: dir, a, b, c })
}

/// Where router-a's kernel sends its own packets for site B (its table 201 line for the site).
fn kernel_route(lab: &Lab) -> anyhow::Result<String> {
    let table = lab.exec(
        Node::RouterA,
        "ip",
        &["-4", "route", "show", "table", "201"],
    )?;
    Ok(table
        .lines()
        .find(|l| l.contains(addr::SITE_B))
        .unwrap_or_default()
        .to_owned())
}

/// Waits until router-a's kernel route for site B contains `wanted`.
fn check_kernel_route(lab: &Lab, wanted: &str) -> anyhow::Result<()> {
    let route = poll_until(
        Duration::from_secs(3),
        || kernel_route(lab),
        |r| r.contains(wanted),
    )?;
    assert!(
        route.contains(wanted),
        "router-a's kernel route for site B: {route:?}, wanted {wanted:?}"
    );
    Ok(())
}

fn decrypted(agent: &AgentProcess) -> anyhow::Result<u64> {
    Ok(agent.status()?.worker.map_or(0, |w| w.decrypted))
}

/// router-b's death: its agent crashes and its links go down.
fn kill_router_b(lab: &Lab, b: AgentProcess) -> anyhow::Result<()> {
    b.kill()?;
    for dev in ["wan", "lan"] {
        lab.exec(Node::RouterB, "ip", &["link", "set", dev, "down"])?;
    }
    Ok(())
}

#[test]
fn traffic_fails_over_to_the_standby_tunnel_and_back() -> anyhow::Result<()> {
    const RATE: u64 = 200;
    let lab = Lab::up(LabSpec {
        standby: true,
        ..LabSpec::default()
    })?;
    let configs = configs()?;
    let bin = agent_bin()?;
    let b = AgentProcess::start_bare(&lab, Node::RouterB, &bin, &["--config", &configs.b])?;
    let c = AgentProcess::start_bare(&lab, Node::RouterC, &bin, &["--config", &configs.c])?;
    let a = AgentProcess::start_bare(&lab, Node::RouterA, &bin, &["--config", &configs.a])?;

    // Both tunnels up; traffic goes the active way.
    let both_up = |s: &StatusSnapshot| {
        s.ike.as_ref().is_some_and(|i| {
            i.ike_sas
                .iter()
                .filter(|sa| sa.state == "ESTABLISHED" && !sa.child_sas.is_empty())
                .count()
                == 2
        }) && s.worker.as_ref().is_some_and(|w| w.sas.len() == 4)
    };
    let s = poll_until(Duration::from_secs(20), || a.status(), both_up)?;
    assert!(both_up(&s), "both tunnels not up: {s:?}\n{}", a.log());
    assert_eq!(ping(&lab, Node::HostA, addr::HOST_B, 3)?, 3, "{}", a.log());
    let carried = poll_until(Duration::from_secs(3), || decrypted(&b), |n| *n >= 3)?;
    assert!(
        carried >= 3,
        "the active tunnel did not carry the pings:\n{}\n{}\n{}",
        a.status_table()?,
        b.status_table()?,
        c.status_table()?
    );
    assert_eq!(decrypted(&c)?, 0, "the standby tunnel carried traffic");
    // The router's own traffic takes the same way (and moves with it below).
    check_kernel_route(&lab, "dev vt-aws-t1 ")?;

    // Everything router-a sends to the internet from now on, to find any clear packet.
    let dir = tempfile::tempdir()?;
    let pcap = dir.path().join("router-a-wan.pcap");
    let tcpdump = capture(&lab, Node::Internet, "to-a", &pcap, "ip")?;

    let (stream, killed_at) = numbered_stream(
        &lab,
        RATE,
        Duration::from_secs(6 + DPD_DELAY + DPD_TIMEOUT + 4),
        || {
            std::thread::sleep(Duration::from_secs(2));
            kill_router_b(&lab, b)?;
            Ok(2 * RATE)
        },
    )?;
    // The outage: the longest run of missing numbers after the kill.
    let mut longest = 0u64;
    let mut run = 0u64;
    let mut last = None;
    for &m in &stream.missing {
        run = if last == Some(m.wrapping_sub(1)) {
            run + 1
        } else {
            1
        };
        longest = longest.max(run);
        last = Some(m);
    }
    let outage = longest as f64 / RATE as f64;
    eprintln!(
        "failover: traffic resumed over the standby after {outage:.2} s (DPD delay {DPD_DELAY} s, timeout {DPD_TIMEOUT} s); {} of {} packets lost",
        stream.missing.len(),
        stream.sent
    );
    // Nothing lost before the kill; the stream's last second all arrived, over router-c.
    assert!(
        stream.missing.iter().all(|&m| m >= killed_at - RATE / 10),
        "lost before the kill: {:?}",
        &stream.missing[..stream.missing.len().min(20)]
    );
    assert!(
        stream.missing.iter().all(|&m| m < stream.sent - RATE),
        "the stream did not resume: {} lost\n{}",
        stream.missing.len(),
        a.log()
    );
    let carried = poll_until(Duration::from_secs(3), || decrypted(&c), |n| *n > RATE)?;
    assert!(
        carried > RATE,
        "the standby tunnel did not carry the stream"
    );
    check_kernel_route(&lab, "dev vt-aws-t2 ")?;
    assert!(
        outage < (DPD_DELAY + DPD_TIMEOUT + 5) as f64,
        "failover took {outage:.2} s"
    );

    // router-b returns: router-a's restarted IKE SA reaches it and the route moves back.
    for dev in ["wan", "lan"] {
        lab.exec(Node::RouterB, "ip", &["link", "set", dev, "up"])?;
    }
    let b = AgentProcess::start_bare(&lab, Node::RouterB, &bin, &["--config", &configs.b])?;
    let back = poll_until(
        Duration::from_secs(45),
        || {
            ping(&lab, Node::HostA, addr::HOST_B, 1)?;
            decrypted(&b)
        },
        |n| *n > 0,
    )?;
    assert!(
        back > 0,
        "traffic did not move back to router-b:\n{}",
        a.log()
    );
    // Counters are published twice a second.
    std::thread::sleep(Duration::from_millis(700));
    let before = decrypted(&c)?;
    assert_eq!(ping(&lab, Node::HostA, addr::HOST_B, 5)?, 5);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        decrypted(&c)?,
        before,
        "the standby still carries traffic after the failback"
    );
    check_kernel_route(&lab, "dev vt-aws-t1 ")?;

    // Both endpoints die: once DPD has noticed, the site's traffic is dropped by router-a
    // (its route points at no tunnel), not sent in the clear.
    kill_router_b(&lab, b)?;
    c.kill()?;
    for dev in ["wan", "lan"] {
        lab.exec(Node::RouterC, "ip", &["link", "set", dev, "down"])?;
    }
    std::thread::sleep(Duration::from_secs(DPD_DELAY + DPD_TIMEOUT + 2));
    let dropped = |s: &StatusSnapshot| s.datapath_events.get("tunnel_down").copied().unwrap_or(0);
    let before = dropped(&a.status()?);
    assert_eq!(ping(&lab, Node::HostA, addr::HOST_B, 3)?, 0);
    let after = poll_until(
        Duration::from_secs(2),
        || a.status(),
        |s| dropped(s) >= before + 3,
    )?;
    assert!(
        dropped(&after) >= before + 3,
        "router-a did not drop the site's traffic with both tunnels down: {:?}\n{}",
        after.datapath_events,
        a.log()
    );

    check_kernel_route(&lab, "unreachable")?;

    stop_capture(tcpdump)?;
    let clear = tshark(
        &pcap,
        &[
            "-Y",
            "ip.src == 10.1.0.0/16 || ip.dst == 10.2.0.0/16",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
    )?;
    assert!(
        clear.trim().is_empty(),
        "site traffic left router-a in the clear: frames {clear}"
    );
    let esp = tshark(&pcap, &["-Y", "esp", "-T", "fields", "-e", "frame.number"])?;
    assert!(
        esp.lines().count() as u64 > stream.sent / 2,
        "the capture saw too little ESP"
    );

    a.stop()?;
    lab.down()
}
