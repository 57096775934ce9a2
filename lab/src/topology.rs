//! Building and removing the standard lab.

use std::{
    io::Write as _,
    net::Ipv4Addr,
    process::{Command, Stdio},
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, bail};

use crate::{
    netns::{self, ip},
    registry::{LabRecord, Owner, reap_orphans},
};

/// Addresses of the standard lab.
pub mod addr {
    use std::net::Ipv4Addr;

    pub const HOST_A: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 10);
    pub const ROUTER_A_LAN: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
    /// router-a's public WAN address: its own without NAT, the NAT's (the "Elastic IP") with it.
    pub const ROUTER_A_WAN: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    /// router-a's private WAN address behind the NAT.
    pub const ROUTER_A_WAN_PRIVATE: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 10);
    pub const NAT_A_INSIDE: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
    pub const ROUTER_B_WAN: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    pub const ROUTER_B_LAN: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);
    pub const HOST_B: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 10);
    /// router-c, the standby peer of site B ([`crate::LabSpec::standby`]).
    pub const ROUTER_C_WAN: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 3);
    pub const ROUTER_C_LAN: Ipv4Addr = Ipv4Addr::new(10, 2, 1, 1);
    /// host-b's second interface, towards router-c.
    pub const HOST_B_STANDBY: Ipv4Addr = Ipv4Addr::new(10, 2, 1, 10);
    /// Site C ([`crate::LabSpec::third_site`]): router-c's LAN and host-c.
    pub const ROUTER_C_SITE_LAN: Ipv4Addr = Ipv4Addr::new(10, 3, 0, 1);
    pub const HOST_C: Ipv4Addr = Ipv4Addr::new(10, 3, 0, 10);
    pub const SITE_C: &str = "10.3.0.0/24";
    pub const SITE_A: &str = "10.1.0.0/24";
    pub const SITE_B: &str = "10.2.0.0/24";
    /// Every link in the lab is a /24.
    pub const PREFIX_LEN: u8 = 24;
}

/// Interface names inside the lab's namespaces.
pub mod ifname {
    /// A router's internet-facing interface.
    pub const WAN: &str = "wan";
    /// A router's site-facing interface.
    pub const LAN: &str = "lan";
    /// A host's only interface.
    pub const HOST: &str = "eth0";
    /// host-b's interface towards router-c.
    pub const HOST_STANDBY: &str = "eth1";
    /// The internet namespace's bridge joining the routers' WAN links.
    pub const INTERNET_BRIDGE: &str = "br0";
    pub const NAT_INSIDE: &str = "inside";
    pub const NAT_OUTSIDE: &str = "outside";
}

/// A machine of the lab; each is one network namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    HostA,
    RouterA,
    /// Only in a lab built with [`LabSpec::nat`].
    NatA,
    RouterB,
    HostB,
    /// Only in a lab built with [`LabSpec::standby`].
    RouterC,
    /// The bridge joining the routers' WAN links; only with [`LabSpec::standby`] or
    /// [`LabSpec::third_site`].
    Internet,
    /// Only in a lab built with [`LabSpec::third_site`].
    HostC,
}

impl Node {
    pub const fn name(self) -> &'static str {
        match self {
            Node::HostA => "host-a",
            Node::RouterA => "router-a",
            Node::NatA => "nat-a",
            Node::RouterB => "router-b",
            Node::HostB => "host-b",
            Node::RouterC => "router-c",
            Node::Internet => "internet",
            Node::HostC => "host-c",
        }
    }
}

/// Options of the lab.
#[derive(Clone, Copy, Debug, Default)]
pub struct LabSpec {
    /// Put router-a behind a 1:1 NAT (EC2 Elastic IP style).
    pub nat: bool,
    /// Give site B a second router, router-c (198.51.100.3, LAN 10.2.1.0/24 to host-b's
    /// eth1), on an internet bridge, like the second endpoint of an AWS VPN connection:
    ///
    /// ```text
    ///                                      ┌ wan 198.51.100.2 router-b lan 10.2.0.1 ┐
    ///  host-a ── router-a wan 198.51.100.1 ┤ (bridge in "internet")                 ├ host-b
    ///                                      └ wan 198.51.100.3 router-c lan 10.2.1.1 ┘
    /// ```
    ///
    /// host-b reaches site A through router-b (metric 100) or router-c (metric 200), and ignores
    /// routes over a link that is down, so taking router-b's links down moves it to router-c.
    /// Not combined with `nat`.
    pub standby: bool,
    /// A third site for a full mesh: router-c (198.51.100.3 on the internet bridge) and host-c
    /// (10.3.0.10) behind it. Not combined with `nat` or `standby`.
    pub third_site: bool,
    /// Transmit and receive queues of every veth link (0 or 1: the usual single queue). With
    /// more, a router's agent runs one crypto worker per queue. A veth delivers a frame to the
    /// peer's receive queue with the number of the transmit queue it was sent on, which the
    /// sender picks by flow hash, so different flows land on different queues (and so do the
    /// frames an AF_XDP socket bound to queue q transmits: on the peer's queue q).
    pub queues: u16,
}

impl LabSpec {
    fn nodes(self) -> Vec<Node> {
        let mut nodes = vec![Node::HostA, Node::RouterA, Node::RouterB, Node::HostB];
        if self.nat {
            nodes.insert(2, Node::NatA);
        }
        if self.standby {
            nodes.extend([Node::RouterC, Node::Internet]);
        }
        if self.third_site {
            nodes.extend([Node::RouterC, Node::HostC, Node::Internet]);
        }
        nodes
    }
}

/// A running lab. Dropping it tears it down unless [`Lab::keep`] was called.
#[derive(Debug)]
pub struct Lab {
    record: LabRecord,
    torn_down: bool,
    /// Queues of the veth links made by this value (see [`LabSpec::queues`]).
    queues: u16,
}

impl Lab {
    /// Builds a lab with a fresh id; removes orphaned labs of dead owners first.
    pub fn up(spec: LabSpec) -> anyhow::Result<Lab> {
        check_root()?;
        for id in reap_orphans()? {
            eprintln!("vpn-lab: removed lab {id}, left behind by a process that no longer runs");
        }
        let id = fresh_id();
        let record = LabRecord {
            namespaces: spec
                .nodes()
                .iter()
                .map(|n| format!("{id}-{}", n.name()))
                .collect(),
            id,
            owner: Some(Owner::current()?),
            nat: spec.nat,
        };
        // Recorded before anything exists, so a failure half-way is still cleaned up.
        record.store()?;
        let mut lab = Lab {
            record,
            torn_down: false,
            queues: spec.queues.max(1),
        };
        if let Err(err) = lab.build(spec) {
            let id = lab.id().to_owned();
            return Err(match lab.down() {
                Ok(()) => err,
                Err(down_err) => {
                    err.context(format!("and tearing lab {id} down failed: {down_err:#}"))
                }
            })
            .with_context(|| format!("building lab {id}"));
        }
        Ok(lab)
    }

    /// Re-attaches to a lab recorded by an earlier `lab up`.
    pub fn attach(id: &str) -> anyhow::Result<Lab> {
        Ok(Lab {
            record: LabRecord::load(id)?,
            torn_down: false,
            queues: 1,
        })
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn has_nat(&self) -> bool {
        self.record.nat
    }

    /// The namespaces this lab created.
    pub fn namespaces(&self) -> &[String] {
        &self.record.namespaces
    }

    /// The namespace name of `node`.
    pub fn ns(&self, node: Node) -> String {
        format!("{}-{}", self.record.id, node.name())
    }

    /// A command that runs `program` in `node`'s network namespace.
    pub fn command(&self, node: Node, program: &str) -> Command {
        netns::command_in(&self.ns(node), program)
    }

    /// Runs `program args...` in `node` and returns its stdout; fails if it exits non-zero.
    pub fn exec(&self, node: Node, program: &str, args: &[&str]) -> anyhow::Result<String> {
        let output = netns::run(self.command(node, program).args(args))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs `f` on a thread inside `node`'s namespace (for sockets made in Rust).
    pub fn run_in<F, R>(&self, node: Node, f: F) -> anyhow::Result<R>
    where
        F: FnOnce() -> anyhow::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        netns::run_in(&self.ns(node), f)
    }

    /// Leaves the lab up after this value is dropped (for `lab up` and `demo --keep`).
    pub fn keep(mut self) -> String {
        self.record.owner = None;
        if let Err(err) = self.record.store() {
            eprintln!(
                "vpn-lab: could not record lab {} as kept: {err:#}",
                self.id()
            );
        }
        self.torn_down = true;
        self.record.id.clone()
    }

    /// Tears the lab down and checks that none of its namespaces is left.
    pub fn down(mut self) -> anyhow::Result<()> {
        self.torn_down = true;
        self.record.teardown()?;
        let left: Vec<_> = netns::list()?
            .into_iter()
            .filter(|ns| self.record.namespaces.contains(ns))
            .collect();
        if !left.is_empty() {
            bail!("namespaces left after teardown: {}", left.join(" "));
        }
        Ok(())
    }

    fn build(&mut self, spec: LabSpec) -> anyhow::Result<()> {
        for node in spec.nodes() {
            let ns = self.ns(node);
            ip(&["netns", "add", &ns])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            // No IPv6 on the lab links: router solicitations and MLD reports would otherwise
            // show up in the datapath counters that tests compare exactly.
            let mut sysctls = vec![
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ];
            if matches!(
                node,
                Node::RouterA | Node::RouterB | Node::RouterC | Node::NatA
            ) {
                sysctls.push("net.ipv4.ip_forward=1");
            }
            netns::run(self.command(node, "sysctl").arg("-qw").args(&sysctls))?;
        }

        use addr::*;
        use ifname::*;
        self.link(Node::HostA, HOST, Node::RouterA, LAN)?;
        self.link(Node::RouterB, LAN, Node::HostB, HOST)?;
        self.address(Node::HostA, HOST, HOST_A)?;
        self.address(Node::RouterA, LAN, ROUTER_A_LAN)?;
        self.address(Node::RouterB, LAN, ROUTER_B_LAN)?;
        self.address(Node::HostB, HOST, HOST_B)?;
        if u8::from(spec.standby) + u8::from(spec.nat) + u8::from(spec.third_site) > 1 {
            bail!("nat, standby and third_site are different labs: choose one");
        }
        if spec.standby || spec.third_site {
            self.internet()?;
        }
        if spec.standby {
            self.standby_site()?;
        } else if spec.third_site {
            self.site_c()?;
        } else if spec.nat {
            self.link(Node::RouterA, WAN, Node::NatA, NAT_INSIDE)?;
            self.link(Node::NatA, NAT_OUTSIDE, Node::RouterB, WAN)?;
            self.address(Node::RouterA, WAN, ROUTER_A_WAN_PRIVATE)?;
            self.address(Node::NatA, NAT_INSIDE, NAT_A_INSIDE)?;
            self.address(Node::NatA, NAT_OUTSIDE, ROUTER_A_WAN)?;
            self.address(Node::RouterB, WAN, ROUTER_B_WAN)?;
            self.route(Node::RouterA, "default", NAT_A_INSIDE)?;
            self.route(Node::NatA, SITE_A, ROUTER_A_WAN_PRIVATE)?;
            self.route(Node::NatA, SITE_B, ROUTER_B_WAN)?;
            self.one_to_one_nat()?;
        } else {
            self.link(Node::RouterA, WAN, Node::RouterB, WAN)?;
            self.address(Node::RouterA, WAN, ROUTER_A_WAN)?;
            self.address(Node::RouterB, WAN, ROUTER_B_WAN)?;
            self.route(Node::RouterA, SITE_B, ROUTER_B_WAN)?;
        }
        self.route(Node::RouterB, SITE_A, ROUTER_A_WAN)?;
        self.route(Node::HostA, "default", ROUTER_A_LAN)?;
        self.route(Node::HostB, "default", ROUTER_B_LAN)?;
        // A veth sender leaves TCP/UDP checksums to "hardware" (CHECKSUM_PARTIAL); XDP and
        // AF_XDP on the router then see unfinished checksums and would seal them as they are.
        // Real NICs deliver finished checksums, so the hosts compute theirs in software.
        for host in [Node::HostA, Node::HostB] {
            netns::run(
                self.command(host, "ethtool")
                    .args(["-K", HOST, "tx", "off"]),
            )?;
        }
        Ok(())
    }

    /// The internet as a bridge joining router-a, router-b and router-c.
    fn internet(&self) -> anyhow::Result<()> {
        use addr::*;
        use ifname::*;
        let internet = self.ns(Node::Internet);
        ip(&[
            "-n",
            &internet,
            "link",
            "add",
            INTERNET_BRIDGE,
            "type",
            "bridge",
        ])?;
        ip(&["-n", &internet, "link", "set", INTERNET_BRIDGE, "up"])?;
        for (router, port) in [
            (Node::RouterA, "to-a"),
            (Node::RouterB, "to-b"),
            (Node::RouterC, "to-c"),
        ] {
            self.link(router, WAN, Node::Internet, port)?;
            ip(&[
                "-n",
                &internet,
                "link",
                "set",
                port,
                "master",
                INTERNET_BRIDGE,
            ])?;
        }
        self.address(Node::RouterA, WAN, ROUTER_A_WAN)?;
        self.address(Node::RouterB, WAN, ROUTER_B_WAN)?;
        self.address(Node::RouterC, WAN, ROUTER_C_WAN)?;
        self.route(Node::RouterA, SITE_B, ROUTER_B_WAN)?;
        self.route(Node::RouterC, SITE_A, ROUTER_A_WAN)?;
        Ok(())
    }

    /// Site C: router-c's LAN and host-c; the sites know each other's way (like the internet
    /// would, were the site prefixes public).
    fn site_c(&self) -> anyhow::Result<()> {
        use addr::*;
        use ifname::*;
        self.link(Node::RouterC, LAN, Node::HostC, HOST)?;
        self.address(Node::RouterC, LAN, ROUTER_C_SITE_LAN)?;
        self.address(Node::HostC, HOST, HOST_C)?;
        self.route(Node::HostC, "default", ROUTER_C_SITE_LAN)?;
        self.route(Node::RouterA, SITE_C, ROUTER_C_WAN)?;
        self.route(Node::RouterB, SITE_C, ROUTER_C_WAN)?;
        self.route(Node::RouterC, SITE_B, ROUTER_B_WAN)?;
        netns::run(
            self.command(Node::HostC, "ethtool")
                .args(["-K", HOST, "tx", "off"]),
        )?;
        Ok(())
    }

    /// router-c's link to host-b, which reaches site A through router-b or router-c.
    fn standby_site(&self) -> anyhow::Result<()> {
        use addr::*;
        use ifname::*;
        self.link(Node::RouterC, LAN, Node::HostB, HOST_STANDBY)?;
        self.address(Node::RouterC, LAN, ROUTER_C_LAN)?;
        self.address(Node::HostB, HOST_STANDBY, HOST_B_STANDBY)?;
        // host-b 10.2.0.10 is reached over router-c's link too.
        ip(&[
            "-n",
            &self.ns(Node::RouterC),
            "route",
            "add",
            &format!("{HOST_B}/32"),
            "via",
            &HOST_B_STANDBY.to_string(),
        ])?;
        let host_b = self.ns(Node::HostB);
        for (via, metric) in [(ROUTER_B_LAN, "100"), (ROUTER_C_LAN, "200")] {
            ip(&[
                "-n",
                &host_b,
                "route",
                "add",
                SITE_A,
                "via",
                &via.to_string(),
                "metric",
                metric,
            ])?;
        }
        netns::run(
            self.command(Node::HostB, "sysctl")
                .args(["-qw", "net.ipv4.conf.all.ignore_routes_with_linkdown=1"]),
        )?;
        // Replies from 10.2.0.10 leave by eth1 when router-b is gone.
        netns::run(self.command(Node::HostB, "sysctl").args([
            "-qw",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.eth1.rp_filter=0",
        ]))?;
        netns::run(
            self.command(Node::HostB, "ethtool")
                .args(["-K", HOST_STANDBY, "tx", "off"]),
        )?;
        Ok(())
    }

    /// A veth pair from `a`'s `a_if` to `b`'s `b_if`, created directly inside the namespaces so
    /// no name is ever taken in the host's namespace. Both ends are brought up.
    fn link(&self, a: Node, a_if: &str, b: Node, b_if: &str) -> anyhow::Result<()> {
        let (a_ns, b_ns) = (self.ns(a), self.ns(b));
        let n = self.queues.to_string();
        let queues = ["numtxqueues", n.as_str(), "numrxqueues", n.as_str()];
        let mut args = vec!["-n", &a_ns, "link", "add", a_if];
        args.extend(queues);
        args.extend(["type", "veth", "peer", "name", b_if]);
        args.extend(queues);
        args.extend(["netns", &b_ns]);
        ip(&args)?;
        ip(&["-n", &a_ns, "link", "set", a_if, "up"])?;
        ip(&["-n", &b_ns, "link", "set", b_if, "up"])?;
        Ok(())
    }

    fn address(&self, node: Node, dev: &str, address: Ipv4Addr) -> anyhow::Result<()> {
        let cidr = format!("{address}/{}", addr::PREFIX_LEN);
        ip(&["-n", &self.ns(node), "addr", "add", &cidr, "dev", dev])?;
        Ok(())
    }

    fn route(&self, node: Node, to: &str, via: Ipv4Addr) -> anyhow::Result<()> {
        ip(&[
            "-n",
            &self.ns(node),
            "route",
            "add",
            to,
            "via",
            &via.to_string(),
        ])?;
        Ok(())
    }

    /// 1:1 NAT of router-a's private WAN address to the public one, ports preserved, like the
    /// EC2 Elastic IP mapping.
    fn one_to_one_nat(&self) -> anyhow::Result<()> {
        let ruleset = format!(
            "table ip lab_nat {{\n\
             \tchain prerouting {{ type nat hook prerouting priority dstnat; ip daddr {public} dnat to {private}; }}\n\
             \tchain postrouting {{ type nat hook postrouting priority srcnat; ip saddr {private} snat to {public}; }}\n\
             }}\n",
            public = addr::ROUTER_A_WAN,
            private = addr::ROUTER_A_WAN_PRIVATE,
        );
        let mut child = self
            .command(Node::NatA, "nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting nft in nat-a")?;
        child
            .stdin
            .take()
            .context("nft stdin")?
            .write_all(ruleset.as_bytes())?;
        let output = child.wait_with_output()?;
        if !output.status.success() {
            bail!(
                "nft rejected the NAT ruleset: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.torn_down
            && let Err(err) = self.record.teardown()
        {
            eprintln!(
                "vpn-lab: tearing down lab {} failed: {err:#}",
                self.record.id
            );
        }
    }
}

fn check_root() -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the lab creates network namespaces and needs root");
    }
    Ok(())
}

/// "vl" and six hex digits, from the pid and the clock: unique among concurrent runs.
fn fresh_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut x = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
    // splitmix64 finaliser: spreads nearby inputs over the whole output.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let id = format!("vl{:06x}", x & 0xff_ffff);
    if LabRecord::path(&id).exists() {
        // Astronomically unlikely; try again rather than share a prefix.
        return fresh_id();
    }
    id
}
