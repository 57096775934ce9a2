//! Which ports the NAT may hand out.
//!
//! The kernel's MASQUERADE keeps the inside host's source port when it is free and tracks the
//! router's own connections in the same table, so it never collides with them. XDP sees no
//! socket table, so the NAT range is kept clear of the ports the router's own stack picks:
//! it lies outside `net.ipv4.ip_local_port_range` (32768-60999 by default, giving 61000-65535),
//! never holds 500 or 4500 (IKE, NAT-T), and ports the host has bound (read from
//! /proc/net/{tcp,udp}{,6} by the sweep) are marked reserved so that they are never allocated.

use std::{collections::BTreeSet, ops::RangeInclusive};

use anyhow::{Context as _, bail};

/// A NAT range narrower than this is refused (a few hundred concurrent flows per remote
/// endpoint is the least a site needs).
pub const MIN_RANGE: u16 = 256;
/// The lowest port ever allocated: the well-known ports stay the host's.
pub const LOWEST: u16 = 1024;

/// The port range for allocation, given the kernel's ephemeral range `local`: above it if
/// there is room for [`MIN_RANGE`] ports, else below it (down to [`LOWEST`]).
pub fn nat_range(local: RangeInclusive<u16>) -> anyhow::Result<RangeInclusive<u16>> {
    let above = u32::from(u16::MAX) - u32::from(*local.end());
    if above >= u32::from(MIN_RANGE) {
        return Ok(local.end() + 1..=u16::MAX);
    }
    let below = u32::from(*local.start()).saturating_sub(u32::from(LOWEST));
    if below >= u32::from(MIN_RANGE) {
        return Ok(LOWEST..=local.start() - 1);
    }
    bail!(
        "ip_local_port_range {}-{} leaves fewer than {MIN_RANGE} ports for NAT on either side",
        local.start(),
        local.end()
    )
}

/// Parses `net.ipv4.ip_local_port_range` ("32768\t60999").
pub fn parse_local_range(text: &str) -> anyhow::Result<RangeInclusive<u16>> {
    let mut it = text.split_whitespace().map(str::parse::<u16>);
    match (it.next(), it.next()) {
        (Some(Ok(lo)), Some(Ok(hi))) if lo <= hi => Ok(lo..=hi),
        _ => bail!("unexpected ip_local_port_range {text:?}"),
    }
}

pub fn read_local_range() -> anyhow::Result<RangeInclusive<u16>> {
    let path = "/proc/sys/net/ipv4/ip_local_port_range";
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    parse_local_range(&text)
}

/// Local ports of the sockets in a /proc/net/{tcp,udp}{,6} table.
pub fn bound_ports(table: &str) -> BTreeSet<u16> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            // "  0: 00000000:1F90 00000000:0000 0A ..." -> local_address is the 2nd field.
            let local = line.split_whitespace().nth(1)?;
            let (_, port) = local.rsplit_once(':')?;
            u16::from_str_radix(port, 16).ok()
        })
        .filter(|p| *p != 0)
        .collect()
}

/// Every port bound by a socket of this network namespace, IKE's included.
pub fn host_ports() -> BTreeSet<u16> {
    let mut ports: BTreeSet<u16> = [500, 4500].into();
    for table in ["tcp", "udp", "tcp6", "udp6"] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/net/{table}")) {
            ports.extend(bound_ports(&text));
        }
    }
    ports
}

/// The reserved-port bitmap: word `i` holds ports `64 * i .. 64 * i + 63`.
pub fn bitmap(ports: &BTreeSet<u16>) -> Vec<u64> {
    let mut words = vec![0u64; 65_536 / 64];
    for p in ports {
        words[usize::from(*p / 64)] |= 1 << (p % 64);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_stays_clear_of_the_kernels_ephemeral_ports() {
        assert_eq!(nat_range(32768..=60999).unwrap(), 61000..=65535);
        assert_eq!(nat_range(49152..=65535).unwrap(), 1024..=49151);
        assert_eq!(nat_range(40000..=65400).unwrap(), 1024..=39999);
        assert!(nat_range(1100..=65400).is_err());
    }

    #[test]
    fn parses_the_sysctl_and_the_socket_tables() {
        assert_eq!(parse_local_range("32768\t60999\n").unwrap(), 32768..=60999);
        assert!(parse_local_range("60999 32768").is_err());
        assert!(parse_local_range("").is_err());
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:EA61 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(bound_ports(tcp), [0x1f90, 0xea61].into());
        let udp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n  5: 00000000000000000000000000000000:1194 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3 2 0000000000000000 0\n";
        assert_eq!(bound_ports(udp6), [4500].into());
    }

    #[test]
    fn bitmap_marks_exactly_the_ports() {
        let words = bitmap(&[0, 63, 64, 65535].into());
        assert_eq!(words[0], 1 | 1 << 63);
        assert_eq!(words[1], 1);
        assert_eq!(words[1023], 1 << 63);
        assert_eq!(words.iter().map(|w| w.count_ones()).sum::<u32>(), 4);
    }
}
