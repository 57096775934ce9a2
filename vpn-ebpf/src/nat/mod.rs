//! NAT masquerade (issue 5, seed 002), the packet side: parsing a packet into the tuple the
//! connection tracking is keyed by, matching rules, choosing port candidates, and rewriting
//! headers with incremental checksum updates. The XDP glue (map lookups, allocation) is in the
//! eBPF binary's `bpf/nat.rs`; everything here runs on the host in unit tests as well.
//!
//! Behaviour follows the kernel's MASQUERADE and the NAT behavioural RFCs where they agree:
//! one mapping per 5-tuple kept for the flow's life (RFC 4787, RFC 5382 for TCP), ICMP echo
//! identifiers translated like ports and ICMP errors translated with the datagram they quote
//! (RFC 5508), the IPv4 TTL left to the kernel's forwarding.

pub mod checksum;
pub mod parse;
pub mod rewrite;

use vpn_common::nat::{FlowKey, NatRuleEntry};

pub use parse::{Parsed, Transport, parse};
pub use rewrite::{Endpoint, RewriteError, Side, rewrite, rewrite_icmp_error};

/// UDP ports of IKE and NAT-T (RFC 7296, RFC 3948): never handed out, so that a masqueraded
/// flow can never take traffic meant for the router's own IKE daemon.
pub const IKE_PORTS: [u16; 2] = [500, 4500];
/// Port candidates probed per new flow before giving up (counted as an allocation failure).
pub const PORT_PROBES: u32 = 8;

/// Whether `addr` lies in `prefix`/`len` (all IPv4, network order).
#[inline(always)]
pub fn in_prefix(addr: [u8; 4], prefix: [u8; 4], len: u8) -> bool {
    if len == 0 {
        return true;
    }
    let mask = u32::MAX << (32 - u32::from(len.min(32)));
    u32::from_be_bytes(addr) & mask == u32::from_be_bytes(prefix) & mask
}

/// Whether a rule entry covers a packet from `src` to `dst` (the out interface is checked
/// against the FIB separately).
#[inline(always)]
pub fn rule_matches(rule: &NatRuleEntry, src: [u8; 4], dst: [u8; 4]) -> bool {
    rule.valid != 0
        && in_prefix(src, rule.from, rule.from_len)
        && in_prefix(dst, rule.to, rule.to_len)
}

/// A hash of the flow's tuple that spreads neighbouring ports over the range (the first port
/// candidate; RFC 6056 section 3.3.3's idea: a function of the connection id).
#[inline(always)]
pub fn flow_hash(key: &FlowKey, seed: u32) -> u32 {
    let words = [
        u32::from_ne_bytes(key.src_addr),
        u32::from_ne_bytes(key.dst_addr),
        u32::from(u16::from_ne_bytes(key.src_port)) << 16
            | u32::from(u16::from_ne_bytes(key.dst_port)),
        u32::from(key.proto),
    ];
    let mut h = seed ^ 0x9e37_79b9;
    for w in words {
        // murmur3's mixing steps.
        let mut k = w.wrapping_mul(0xcc9e_2d51);
        k = k.rotate_left(15).wrapping_mul(0x1b87_3593);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Candidate number `attempt` for a flow with `hash`, in `first..=last` (a linear probe from
/// the hashed start). `None` if the range is empty or the candidate is an IKE port.
#[inline(always)]
pub fn port_candidate(hash: u32, attempt: u32, first: u16, last: u16) -> Option<u16> {
    if first == 0 || first > last {
        return None;
    }
    let span = u32::from(last) - u32::from(first) + 1;
    let port = u32::from(first) + (hash.wrapping_add(attempt) % span);
    let port = port as u16;
    if port == IKE_PORTS[0] || port == IKE_PORTS[1] {
        return None;
    }
    Some(port)
}

/// The tuple the reply to a translated packet carries: its source and destination swapped.
/// This is the key of the reverse table.
#[inline(always)]
pub fn translated_key(original: &FlowKey, source: Endpoint) -> FlowKey {
    FlowKey::new(
        original.proto,
        source.addr,
        source.port,
        original.dst_addr,
        original.dst_port,
    )
}

#[cfg(test)]
mod tests;
