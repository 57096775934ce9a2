//! NAT masquerade in XDP against the kernel's own MASQUERADE (issue 5, seed 002).
//!
//! The same flows run twice, each time in a fresh lab: once with `nft ... masquerade` on
//! router-a, once with the agent's XDP NAT (a `[[nat]]` rule in its configuration) and no
//! netfilter at all. host-b plays the peered VPC; router-b has no route back to site A, so a
//! reply can only come back to host-a if router-a translated the flow and translates the reply
//! back. What is compared is what the hosts see:
//! - the source address host-b sees for TCP, UDP and ping (router-a's WAN address);
//! - that the TCP echo, the UDP reply and the ping reply reach host-a;
//! - that ICMP errors about translated flows reach the originator with the right embedded
//!   header: host-a's connected UDP socket gets ECONNREFUSED from host-b's port unreachable
//!   (the kernel matches the quoted header against the socket), `ping -t 2` reports
//!   router-b's time exceeded (matched by the quoted echo identifier), and host-a's own port
//!   unreachable about a reply reaches host-b's socket (quote translated outbound);
//! - that a TTL-1 packet is answered by router-a itself, untranslated.
//!
//! The counters the XDP run leaves are checked in `vpn-agent status` and in the Prometheus
//! metrics.
//!
//! Source ports differ on purpose: the kernel keeps the host's port when it is free, the XDP
//! NAT allocates from above `ip_local_port_range` (61000-65535 here) so that it never takes a
//! port the router's own stack could pick. The test checks each side's choice separately.

use std::{
    io::{ErrorKind, Read as _, Write as _},
    mem::MaybeUninit,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use socket2::{Domain, Protocol, Socket, Type};
use vpn_lab::{
    AgentProcess, Lab, LabSpec, Node, addr, netns,
    static_tunnel::{Encap, StaticTunnelFiles},
};
use vpn_tests::{agent_bin, poll_until};

const TCP_PORT: u16 = 7007;
const UDP_PORT: u16 = 7008;
/// Nothing listens here on host-b.
const CLOSED_PORT: u16 = 7009;
/// Bounds every wait for a packet; nothing is asserted about how long anything takes.
const WAIT: Duration = Duration::from_secs(5);
/// Where the agent serves Prometheus metrics, inside router-a.
const METRICS: &str = "127.0.0.1:9469";
/// The XDP NAT's range with the kernel's default ip_local_port_range (32768-60999).
const XDP_PORTS: std::ops::RangeInclusive<u16> = 61000..=65535;

/// What the hosts saw for one run of the flows.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Observed {
    tcp_source_seen_by_far_host: Option<Ipv4Addr>,
    tcp_echo_returned: bool,
    udp_source_seen_by_far_host: Option<Ipv4Addr>,
    udp_reply_returned: bool,
    /// host-a's port unreachable about a reply (its socket closed) reached host-b's socket.
    inside_error_reached_far_host: bool,
    ping_source_seen_by_far_host: Option<Ipv4Addr>,
    ping_reply_returned: bool,
    /// host-a's connected UDP socket got ECONNREFUSED (port unreachable, quote matched).
    port_unreachable_reached_originator: bool,
    /// `ping -t 2`: who reported time exceeded to host-a's ping (quote matched by its id).
    ttl_exceeded_on_the_way_from: Option<Ipv4Addr>,
    /// `ping -t 1`: router-a answers itself, before any translation.
    ttl_exceeded_at_router_from: Option<Ipv4Addr>,
}

/// Source ports host-b saw, and host-a's own, per protocol (not compared between runs).
#[derive(Debug, Default)]
struct Ports {
    tcp_inside: u16,
    tcp_seen: u16,
    udp_inside: u16,
    udp_seen: u16,
}

fn expected() -> Observed {
    Observed {
        tcp_source_seen_by_far_host: Some(addr::ROUTER_A_WAN),
        tcp_echo_returned: true,
        udp_source_seen_by_far_host: Some(addr::ROUTER_A_WAN),
        udp_reply_returned: true,
        inside_error_reached_far_host: true,
        ping_source_seen_by_far_host: Some(addr::ROUTER_A_WAN),
        ping_reply_returned: true,
        port_unreachable_reached_originator: true,
        ttl_exceeded_on_the_way_from: Some(addr::ROUTER_B_WAN),
        ttl_exceeded_at_router_from: Some(addr::ROUTER_A_LAN),
    }
}

/// A lab where host-b can answer router-a's WAN address but not site A.
fn peered_lab() -> anyhow::Result<Lab> {
    let lab = Lab::up(LabSpec::default())?;
    netns::ip(&["-n", &lab.ns(Node::RouterB), "route", "del", addr::SITE_A])?;
    Ok(lab)
}

#[test]
fn xdp_masquerade_matches_the_kernels() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;

    // 1. The kernel's MASQUERADE (seed 002's iptables rule, as nftables).
    let lab = peered_lab()?;
    // Without NAT nothing comes back: the test can tell translated from untranslated.
    let (before, _) = run_flows(&lab)?;
    assert!(
        !before.tcp_echo_returned && !before.udp_reply_returned && !before.ping_reply_returned,
        "replies came back without NAT: {before:?}"
    );
    let ruleset = dir.path().join("masquerade.nft");
    std::fs::write(
        &ruleset,
        format!(
            "table ip masq_test {{\n\
             \tchain postrouting {{ type nat hook postrouting priority srcnat; \
             ip saddr {} ip daddr {} oifname \"wan\" masquerade; }}\n}}\n",
            addr::SITE_A,
            addr::SITE_B
        ),
    )?;
    lab.exec(Node::RouterA, "nft", &["-f", &ruleset.to_string_lossy()])?;
    let (kernel, kernel_ports) = run_flows(&lab)?;
    lab.down()?;
    assert_eq!(
        kernel,
        expected(),
        "the kernel's MASQUERADE as the reference"
    );
    // The kernel keeps a free source port (nf_nat's get_unique_tuple).
    assert_eq!(
        kernel_ports.tcp_seen, kernel_ports.tcp_inside,
        "{kernel_ports:?}"
    );
    assert_eq!(
        kernel_ports.udp_seen, kernel_ports.udp_inside,
        "{kernel_ports:?}"
    );

    // 2. The agent's XDP NAT, no netfilter rules at all.
    let lab = peered_lab()?;
    let config = dir.path().join("router-a.toml");
    std::fs::write(
        &config,
        format!(
            "[router]\nname = \"lab-a\"\nwan = \"wan\"\nlan = [\"lan\"]\n\n\
             [[nat]]\naction = \"masquerade\"\nfrom = \"{}\"\nto = [\"{}\"]\nout = \"wan\"\n\n\
             [sysctl]\nmanage = false\n",
            addr::SITE_A,
            addr::SITE_B
        ),
    )?;
    let agent = AgentProcess::start_bare(
        &lab,
        Node::RouterA,
        &agent_bin()?,
        &["--config", &config.to_string_lossy(), "--metrics", METRICS],
    )?;
    let nft = lab.exec(Node::RouterA, "nft", &["list", "ruleset"])?;
    assert!(
        !nft.contains("masquerade"),
        "no kernel NAT in this run: {nft}"
    );
    // Status is readable a moment before the NAT rules are in.
    wait_for_rules(&agent)?;
    let accept_local = |lab: &Lab| -> anyhow::Result<String> {
        Ok(lab
            .exec(
                Node::RouterA,
                "sysctl",
                &["-n", "net.ipv4.conf.lan.accept_local"],
            )?
            .trim()
            .to_owned())
    };
    assert_eq!(
        accept_local(&lab)?,
        "1",
        "masqueraded packets carry the router's own source"
    );
    let (xdp, xdp_ports) = run_flows(&lab)?;
    // Hostile input: a TCP header cut to 8 bytes (the kernel's conntrack calls it invalid and
    // forwards it with the inside source); the XDP NAT drops and counts it.
    lab.run_in(Node::HostA, move || {
        let raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP))?;
        raw.send_to(
            &[0x9c, 0x40, 0x1b, 0x5f, 0, 0, 0, 1],
            &SocketAddrV4::new(addr::HOST_B, TCP_PORT).into(),
        )?;
        Ok(())
    })?;
    poll_until(WAIT, || agent.status(), |s| s.nat.event("malformed") > 0)?;
    let status = agent.status()?;
    let table = agent.status_table()?;
    assert_eq!(
        xdp, kernel,
        "XDP NAT and the kernel's MASQUERADE differ; status:\n{table}"
    );
    assert!(XDP_PORTS.contains(&xdp_ports.tcp_seen), "{xdp_ports:?}");
    assert!(XDP_PORTS.contains(&xdp_ports.udp_seen), "{xdp_ports:?}");

    // It was XDP: flows were created and translated both ways, errors included.
    let nat = &status.nat;
    assert!(
        nat.event("new_flows") >= 4,
        "TCP, UDP, port-unreachable UDP, ping: {table}"
    );
    assert!(
        nat.event("translated") > 0 && nat.event("reverse_translated") > 0,
        "{table}"
    );
    assert!(
        nat.event("icmp_error_translated") >= 3,
        "port unreachable both ways and time exceeded: {table}"
    );
    assert!(nat.event("untranslated") >= 1, "the TTL-1 ping: {table}");
    assert_eq!(nat.event("allocation_failed"), 0, "{table}");
    assert_eq!(
        nat.event("malformed"),
        1,
        "the truncated TCP header: {table}"
    );
    assert!(nat.flows >= 4, "{table}");
    assert!(table.contains("NAT:"), "{table}");
    // Prometheus sees the table size and the events too.
    let metrics = scrape_metrics(&lab)?;
    let sample = |prefix: &str| -> Option<f64> {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    assert!(
        sample("vpn_nat_flows").is_some_and(|v| v >= 4.0),
        "{metrics}"
    );
    assert!(
        sample("vpn_nat_events_total{event=\"new_flows\"}").is_some_and(|v| v >= 4.0),
        "{metrics}"
    );

    // The WAN address goes away: the agent's sweep forgets every flow translated to it (as
    // MASQUERADE does), and the rule waits for an address.
    let wan_addr = format!("{}/{}", addr::ROUTER_A_WAN, addr::PREFIX_LEN);
    let router_a = lab.ns(Node::RouterA);
    netns::ip(&["-n", &router_a, "addr", "del", &wan_addr, "dev", "wan"])?;
    let swept = poll_until(
        WAIT,
        || agent.status(),
        |s| s.nat.flows == 0 && s.nat.rules == 0,
    )?;
    assert_eq!(
        (swept.nat.flows, swept.nat.rules),
        (0, 0),
        "{}",
        agent.status_table()?
    );
    assert!(
        swept.nat.event("expired") >= nat.flows,
        "{}",
        agent.status_table()?
    );
    // It comes back: so do the rule and the masquerade.
    netns::ip(&["-n", &router_a, "addr", "add", &wan_addr, "dev", "wan"])?;
    let via = addr::ROUTER_B_WAN.to_string();
    netns::ip(&["-n", &router_a, "route", "add", addr::SITE_B, "via", &via])?;
    wait_for_rules(&agent)?;
    let watch = lab.run_in(Node::HostB, || {
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
        s.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(s)
    })?;
    assert!(
        ping(&lab, addr::HOST_B, None)?.replied,
        "{}",
        agent.status_table()?
    );
    assert_eq!(echo_request_source(&watch)?, Some(addr::ROUTER_A_WAN));

    agent.stop()?;
    let accept_local = accept_local(&lab)?;
    assert_eq!(accept_local, "0", "restored on stop");
    lab.down()
}

/// Seed 002 itself: the office (site A) reaches the peered VPC (host-b) through the tunnel,
/// and router-b masquerades the decrypted traffic to its LAN address. Replies are translated
/// back by XDP on router-b's LAN and go into the tunnel. (The kernel's MASQUERADE is no
/// reference here: it would translate the replies back after XDP, and the kernel would then
/// route them outside the tunnel.)
#[test]
fn decrypted_tunnel_traffic_is_masqueraded_into_the_peered_vpc() -> anyhow::Result<()> {
    let lab = peered_lab()?;
    let bin = agent_bin()?;
    let files = StaticTunnelFiles::write(lab.id(), Encap::Udp, false)?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("router-b.toml");
    std::fs::write(
        &config,
        format!(
            "[router]\nname = \"lab-b\"\nwan = \"wan\"\nlan = [\"lan\"]\n\n\
             [[nat]]\naction = \"masquerade\"\nfrom = \"{}\"\nto = [\"{}\"]\nout = \"lan\"\n\n\
             [sysctl]\nmanage = false\n",
            addr::SITE_A,
            addr::SITE_B
        ),
    )?;
    let _a = files.start_agent(&lab, Node::RouterA, &bin)?;
    let b = AgentProcess::start_with(
        &lab,
        Node::RouterB,
        &bin,
        &[
            "--static-tunnels",
            &files.router_b.to_string_lossy(),
            "--config",
            &config.to_string_lossy(),
        ],
    )?;
    wait_for_rules(&b)?;
    let (seen, ports) = run_flows(&lab)?;
    let table = b.status_table()?;
    let lan = Some(addr::ROUTER_B_LAN);
    assert_eq!(seen.tcp_source_seen_by_far_host, lan, "{table}");
    assert_eq!(seen.udp_source_seen_by_far_host, lan, "{table}");
    assert_eq!(seen.ping_source_seen_by_far_host, lan, "{table}");
    assert!(
        seen.tcp_echo_returned && seen.udp_reply_returned && seen.ping_reply_returned,
        "{seen:?}\n{table}"
    );
    assert!(
        seen.port_unreachable_reached_originator,
        "{seen:?}\n{table}"
    );
    assert!(seen.inside_error_reached_far_host, "{seen:?}\n{table}");
    assert!(
        XDP_PORTS.contains(&ports.tcp_seen) && XDP_PORTS.contains(&ports.udp_seen),
        "{ports:?}"
    );
    // The worker publishes its counters twice a second.
    let status = poll_until(
        WAIT,
        || b.status(),
        |s| {
            s.worker
                .as_ref()
                .is_some_and(|w| w.nat.get("new_flows").copied().unwrap_or(0) >= 4)
        },
    )?;
    let worker = status.worker.context("router-b runs a worker")?;
    assert!(
        worker.nat.get("new_flows").copied().unwrap_or(0) >= 4,
        "{:?}",
        worker.nat
    );
    assert!(status.nat.event("reverse_translated") > 0, "{table}");
    assert!(status.nat.event("icmp_error_translated") > 0, "{table}");
    lab.down()
}

/// `GET /metrics` on the agent's metrics port inside router-a.
fn scrape_metrics(lab: &Lab) -> anyhow::Result<String> {
    lab.run_in(Node::RouterA, || {
        let mut stream = TcpStream::connect(METRICS)?;
        stream.set_read_timeout(Some(WAIT))?;
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: {METRICS}\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    })
}

fn wait_for_rules(agent: &AgentProcess) -> anyhow::Result<()> {
    let status = poll_until(WAIT, || agent.status(), |s| s.nat.rules > 0)?;
    if status.nat.rules == 0 {
        bail!("no NAT rule installed:\n{}", agent.log());
    }
    Ok(())
}

/// Runs every flow from host-a to host-b and records what both ends saw.
fn run_flows(lab: &Lab) -> anyhow::Result<(Observed, Ports)> {
    let mut ports = Ports::default();
    let far = addr::HOST_B;

    // TCP: an echo server on host-b that reports its peer.
    let listener = lab.run_in(Node::HostB, move || {
        Ok(TcpListener::bind(SocketAddrV4::new(far, TCP_PORT))?)
    })?;
    let server = std::thread::spawn(move || accept_and_echo(&listener));
    let tcp = lab.run_in(Node::HostA, move || {
        let Ok(mut stream) = TcpStream::connect_timeout(&SocketAddr::from((far, TCP_PORT)), WAIT)
        else {
            return Ok((None, false));
        };
        let local = stream.local_addr()?.port();
        stream.set_read_timeout(Some(WAIT))?;
        stream.write_all(b"masquerade me")?;
        let mut echo = [0u8; 13];
        let ok = stream.read_exact(&mut echo).is_ok() && &echo == b"masquerade me";
        Ok((Some(local), ok))
    })?;
    let seen = server
        .join()
        .map_err(|_| anyhow::anyhow!("TCP server panicked"))??;
    ports.tcp_inside = tcp.0.unwrap_or(0);
    ports.tcp_seen = seen.map_or(0, |s| s.port());

    // UDP: a reply from host-b to whoever it saw.
    let udp_server = lab.run_in(Node::HostB, move || {
        let s = UdpSocket::bind(SocketAddrV4::new(far, UDP_PORT))?;
        s.set_read_timeout(Some(WAIT))?;
        Ok(s)
    })?;
    let udp_client = lab.run_in(Node::HostA, || {
        let s = UdpSocket::bind("0.0.0.0:0")?;
        s.set_read_timeout(Some(WAIT))?;
        Ok(s)
    })?;
    udp_client.send_to(b"hello", (far, UDP_PORT))?;
    let mut buf = [0u8; 64];
    let udp_seen = match udp_server.recv_from(&mut buf) {
        Ok((_, SocketAddr::V4(peer))) => {
            udp_server.send_to(b"world", peer)?;
            Some(peer)
        }
        _ => None,
    };
    let udp_reply_returned =
        matches!(udp_client.recv_from(&mut buf), Ok((5, _)) if &buf[..5] == b"world");
    ports.udp_inside = udp_client.local_addr()?.port();
    ports.udp_seen = udp_seen.map_or(0, |p| p.port());
    // host-a closes its socket; host-b writes to the mapping again. host-a's port unreachable
    // goes out through the NAT (an error about a reverse-translated datagram) and must reach
    // host-b's socket, connected to the public address and port it saw.
    drop(udp_client);
    let inside_error_reached_far_host = match udp_seen {
        Some(peer) => {
            udp_server.connect(peer)?;
            udp_server.send(b"still there?")?;
            matches!(udp_server.recv(&mut buf), Err(e) if e.kind() == ErrorKind::ConnectionRefused)
        }
        None => false,
    };

    // Ping, with host-b watching echo requests on a raw socket.
    let icmp_watch = lab.run_in(Node::HostB, || {
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
        s.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(s)
    })?;
    let ping = ping(lab, far, None)?;
    let ping_source = echo_request_source(&icmp_watch)?;

    // A UDP datagram to a closed port: the port unreachable must reach this very socket.
    let refused = lab.run_in(Node::HostA, move || {
        let s = UdpSocket::bind("0.0.0.0:0")?;
        s.set_read_timeout(Some(WAIT))?;
        s.connect((far, CLOSED_PORT))?;
        s.send(b"anyone?")?;
        let mut buf = [0u8; 16];
        Ok(matches!(s.recv(&mut buf), Err(e) if e.kind() == ErrorKind::ConnectionRefused))
    })?;

    let observed = Observed {
        tcp_source_seen_by_far_host: seen.map(|s| *s.ip()),
        tcp_echo_returned: tcp.1,
        udp_source_seen_by_far_host: udp_seen.map(|p| *p.ip()),
        udp_reply_returned,
        inside_error_reached_far_host,
        ping_source_seen_by_far_host: ping_source,
        ping_reply_returned: ping.replied,
        port_unreachable_reached_originator: refused,
        ttl_exceeded_on_the_way_from: self::ping(lab, far, Some(2))?.ttl_exceeded_from,
        ttl_exceeded_at_router_from: self::ping(lab, far, Some(1))?.ttl_exceeded_from,
    };
    eprintln!("observed {observed:?}, ports {ports:?}");
    Ok((observed, ports))
}

/// Accepts one connection (or gives up after [`WAIT`]), echoes what it reads, returns the peer.
fn accept_and_echo(listener: &TcpListener) -> anyhow::Result<Option<SocketAddrV4>> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + WAIT;
    let (mut stream, peer) = loop {
        match listener.accept() {
            Ok(accepted) => break accepted,
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => return Ok(None),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(WAIT))?;
    let mut buf = [0u8; 13];
    if stream.read_exact(&mut buf).is_ok() {
        stream.write_all(&buf)?;
    }
    match peer {
        SocketAddr::V4(peer) => Ok(Some(peer)),
        SocketAddr::V6(_) => bail!("IPv6 peer in an IPv4 lab"),
    }
}

/// The source address of the first ICMP echo request the raw socket saw, if any.
fn echo_request_source(socket: &Socket) -> anyhow::Result<Option<Ipv4Addr>> {
    let deadline = Instant::now() + WAIT;
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    while Instant::now() < deadline {
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e).context("reading the raw ICMP socket"),
        };
        // SAFETY: recv initialised the first n bytes.
        let packet: Vec<u8> = buf[..n]
            .iter()
            .map(|b| unsafe { b.assume_init() })
            .collect();
        let ihl = usize::from(packet.first().copied().unwrap_or(0) & 0x0f) * 4;
        if packet.len() > ihl && ihl >= 20 && packet[ihl] == 8 {
            return Ok(Some(Ipv4Addr::new(
                packet[12], packet[13], packet[14], packet[15],
            )));
        }
    }
    Ok(None)
}

struct PingResult {
    replied: bool,
    ttl_exceeded_from: Option<Ipv4Addr>,
}

/// One `ping` from host-a, optionally with a TTL.
fn ping(lab: &Lab, to: Ipv4Addr, ttl: Option<u8>) -> anyhow::Result<PingResult> {
    let mut cmd = lab.command(Node::HostA, "ping");
    cmd.args(["-n", "-c", "1", "-W", "3"]);
    if let Some(ttl) = ttl {
        cmd.args(["-t", &ttl.to_string()]);
    }
    let out = cmd.arg(to.to_string()).output().context("running ping")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "64 bytes from 10.2.0.10: icmp_seq=1 ttl=62 time=0.1 ms"
    // "From 198.51.100.2 icmp_seq=1 Time to live exceeded"
    let replied = text
        .lines()
        .any(|l| l.contains(&format!("bytes from {to}")));
    let ttl_exceeded_from = text
        .lines()
        .filter(|l| l.contains("Time to live exceeded"))
        .find_map(|l| l.split_whitespace().nth(1)?.parse().ok());
    Ok(PingResult {
        replied,
        ttl_exceeded_from,
    })
}
