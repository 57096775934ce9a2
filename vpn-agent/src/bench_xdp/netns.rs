//! A private network namespace for the test runs, so that bpf_fib_lookup, the AF_XDP sockets
//! and the interface indexes are the benchmark's own and nothing on the host is touched.
//!
//! The namespace is anonymous (unshare(2), no name under /run/netns): it disappears with this
//! process, however the process ends, so there is nothing to clean up.
//!
//! Inside: a WAN veth pair (198.51.100.1/24, the peer 198.51.100.2 as a permanent neighbour) and
//! a LAN veth pair (10.1.0.1/24), both up, with IPv4 forwarding on (bpf_fib_lookup answers
//! "forwarding disabled" otherwise).

use std::{net::Ipv4Addr, process::Command};

use anyhow::{Context as _, bail};

pub const WAN_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const PEER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const PEER_MAC: &str = "02:00:00:00:00:aa";
pub const LAN_ADDR: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
pub const WAN_IF: &str = "bxdp-wan";
pub const LAN_IF: &str = "bxdp-lan";

/// The interfaces the test runs take as ingress.
pub struct BenchNet {
    pub wan_ifindex: u32,
    pub lan_ifindex: u32,
}

/// Moves this thread (the only one: call it first) into a new network namespace and sets it up.
pub fn enter_private() -> anyhow::Result<BenchNet> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .context("creating a private network namespace (needs root)")?;
    ip(&["link", "set", "lo", "up"])?;
    for (name, addr) in [(WAN_IF, WAN_ADDR), (LAN_IF, LAN_ADDR)] {
        let peer = format!("{name}-p");
        ip(&["link", "add", name, "type", "veth", "peer", "name", &peer])?;
        ip(&["addr", "add", &format!("{addr}/24"), "dev", name])?;
        ip(&["link", "set", name, "up"])?;
        ip(&["link", "set", &peer, "up"])?;
    }
    ip(&[
        "neigh",
        "replace",
        &PEER_ADDR.to_string(),
        "lladdr",
        PEER_MAC,
        "dev",
        WAN_IF,
        "nud",
        "permanent",
    ])?;
    // The NAT rule's destinations (203.0.113.0/24) leave through the WAN, towards the peer.
    let peer = PEER_ADDR.to_string();
    ip(&[
        "route",
        "add",
        "203.0.113.0/24",
        "via",
        &peer,
        "dev",
        WAN_IF,
    ])?;
    // /proc/sys/net is the writing thread's namespace's.
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").context("enabling IPv4 forwarding")?;
    let index = |name: &str| {
        nix::net::if_::if_nametoindex(name).with_context(|| format!("no interface {name}"))
    };
    Ok(BenchNet {
        wan_ifindex: index(WAN_IF)?,
        lan_ifindex: index(LAN_IF)?,
    })
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
