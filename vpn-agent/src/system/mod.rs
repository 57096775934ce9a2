//! What the agent changes on the host besides BPF: kernel parameters (sysctls), and routes and
//! TUN devices for the router's own traffic into tunnels (rtnetlink).

pub mod kernel_routes;
pub mod link_watch;
pub mod rtnl;
pub mod sysctl;
pub mod tun;

use anyhow::Context as _;

/// The first IPv4 address of interface `ifname`, if it has one.
pub fn interface_ipv4(ifname: &str) -> anyhow::Result<Option<std::net::Ipv4Addr>> {
    let addrs = nix::ifaddrs::getifaddrs().context("listing interface addresses")?;
    Ok(addrs
        .filter(|ifa| ifa.interface_name == ifname)
        .find_map(|ifa| ifa.address.as_ref()?.as_sockaddr_in().map(|sin| sin.ip())))
}
