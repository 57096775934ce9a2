//! How many receive queues an interface uses: the ethtool channel count (`ethtool -l`, the
//! `SIOCETHTOOL` ioctl on a socket of the agent's own network namespace), or, for a driver
//! without channel support, the `rx-N` folders under `/sys/class/net/IF/queues` (which show the
//! namespace that mounted `/sys`, so they come second).
//!
//! A driver's receive queues are its `rx` channels plus its `combined` ones (a combined
//! channel is one rx and one tx queue sharing an interrupt: ENA, most NICs; veth counts rx).

use std::{os::fd::AsRawFd as _, path::Path};

use anyhow::{Context as _, bail};

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// `struct ethtool_channels` of linux/ethtool.h.
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// Receive queues of interface `ifname` in the current network namespace.
pub fn rx_queues(ifname: &str) -> anyhow::Result<u32> {
    match ethtool_rx_queues(ifname) {
        Ok(n) if n > 0 => Ok(n),
        _ => sysfs_rx_queues(&Path::new("/sys/class/net").join(ifname).join("queues"))
            .with_context(|| format!("counting the receive queues of {ifname}")),
    }
}

fn ethtool_rx_queues(ifname: &str) -> anyhow::Result<u32> {
    let name = ifname.as_bytes();
    if name.len() >= libc::IFNAMSIZ {
        bail!("interface name {ifname} is too long");
    }
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").context("a socket for ethtool")?;
    let mut channels = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..EthtoolChannels::default()
    };
    // SAFETY: all-zero is a valid ifreq; the name fits (checked) with its terminating zero.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(name) {
        *dst = *src as libc::c_char;
    }
    request.ifr_ifru.ifru_data = (&mut channels as *mut EthtoolChannels).cast();
    // SAFETY: SIOCETHTOOL reads the ifreq and writes the ethtool_channels it points to, both
    // alive for the call.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCETHTOOL, &mut request) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("ethtool channels of {ifname}"));
    }
    Ok(channels.rx_count + channels.combined_count)
}

fn sysfs_rx_queues(dir: &Path) -> anyhow::Result<u32> {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        if entry?.file_name().to_string_lossy().starts_with("rx-") {
            count += 1;
        }
    }
    if count == 0 {
        bail!("{} lists no receive queue", dir.display());
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_rx_queue_directories() {
        let dir = std::env::temp_dir().join(format!("vpn-rxq-{}", std::process::id()));
        for q in ["rx-0", "rx-1", "tx-0", "tx-1", "tx-2"] {
            std::fs::create_dir_all(dir.join(q)).unwrap();
        }
        assert_eq!(sysfs_rx_queues(&dir).unwrap(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn loopback_has_at_least_one_queue() {
        assert!(rx_queues("lo").unwrap() >= 1);
    }
}
