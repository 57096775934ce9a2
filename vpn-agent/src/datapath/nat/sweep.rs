//! The agent's garbage collection of the connection-tracking tables: which entries to remove,
//! decided from both directions of each flow (XDP only updates the entry a packet hit).

use std::collections::HashMap;

use vpn_common::nat::{FlowKey, NatMapping, flow_flags};
use vpn_ebpf::nat::{Endpoint, translated_key};

use super::timeouts::{FlowState, timeout};

/// A reverse entry without its forward entry is removed after this long: XDP creates the
/// reverse entry first, so a young one may be a flow being created right now.
pub const ORPHAN_GRACE_NS: u64 = 2_000_000_000;

/// Entries to remove from each table.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    pub out: Vec<FlowKey>,
    pub inbound: Vec<FlowKey>,
    /// Flows removed because they were idle past their timeout or lost their address.
    pub expired: u64,
}

/// Decides what to remove at `now_ns` (CLOCK_MONOTONIC, as bpf_ktime_get_ns). Flows whose
/// translated address is not in `live_addrs` go at once (the interface lost it: MASQUERADE
/// forgets such flows too).
pub fn sweep(
    out: &[(FlowKey, NatMapping)],
    inbound: &HashMap<FlowKey, NatMapping>,
    now_ns: u64,
    live_addrs: &[[u8; 4]],
) -> Sweep {
    let mut result = Sweep::default();
    let mut paired = std::collections::HashSet::new();
    for (key, mapping) in out {
        let source = Endpoint {
            addr: mapping.addr,
            port: mapping.port,
        };
        let reply = translated_key(key, source).reversed();
        let Some(back) = inbound
            .get(&reply)
            .filter(|b| b.addr == key.src_addr && b.port == key.src_port)
        else {
            // Its reverse entry was evicted (LRU) or belongs to another flow: without it
            // replies cannot be translated, so let the next packet start afresh.
            result.out.push(*key);
            continue;
        };
        paired.insert(reply);
        let state = FlowState {
            proto: key.proto,
            flags: mapping.flags | back.flags,
            replied: back.flags & flow_flags::SEEN != 0,
        };
        let last = mapping.last_seen_ns.max(back.last_seen_ns);
        let idle = now_ns.saturating_sub(last);
        let timed_out = u128::from(idle) > timeout(state).as_nanos();
        if timed_out || !live_addrs.contains(&mapping.addr) {
            result.out.push(*key);
            result.inbound.push(reply);
            result.expired += 1;
        }
    }
    for (key, back) in inbound {
        if !paired.contains(key) && now_ns.saturating_sub(back.last_seen_ns) > ORPHAN_GRACE_NS {
            result.inbound.push(*key);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::nat::timeouts;
    use vpn_common::nat::{IPPROTO_TCP, IPPROTO_UDP};

    const SEC: u64 = 1_000_000_000;
    const PUBLIC: [u8; 4] = [198, 51, 100, 1];

    fn flow(proto: u8, sport: u16) -> FlowKey {
        FlowKey::new(
            proto,
            [10, 1, 0, 10],
            sport.to_be_bytes(),
            [10, 2, 0, 10],
            53u16.to_be_bytes(),
        )
    }

    /// Both entries of a flow translated to PUBLIC:`port`, last seen at `out_at` / `in_at`.
    fn tracked(
        key: FlowKey,
        port: u16,
        flags: u8,
        out_at: u64,
        in_at: u64,
        replied: bool,
    ) -> ((FlowKey, NatMapping), (FlowKey, NatMapping)) {
        let out = NatMapping {
            addr: PUBLIC,
            port: port.to_be_bytes(),
            flags,
            _pad: 0,
            last_seen_ns: out_at,
        };
        let reply = translated_key(
            &key,
            Endpoint {
                addr: PUBLIC,
                port: port.to_be_bytes(),
            },
        )
        .reversed();
        let back = NatMapping {
            addr: key.src_addr,
            port: key.src_port,
            flags: if replied { flow_flags::SEEN } else { 0 },
            _pad: 0,
            last_seen_ns: in_at,
        };
        ((key, out), (reply, back))
    }

    #[test]
    fn idle_flows_expire_by_their_state() {
        let now = 1000 * SEC;
        let unreplied_udp = tracked(
            flow(IPPROTO_UDP, 1),
            61001,
            0,
            now - 31 * SEC,
            now - 31 * SEC,
            false,
        );
        let replied_udp = tracked(
            flow(IPPROTO_UDP, 2),
            61002,
            0,
            now - 100 * SEC,
            now - 31 * SEC,
            true,
        );
        let established = tracked(
            flow(IPPROTO_TCP, 3),
            61003,
            flow_flags::SYN,
            now - 900 * SEC,
            now - 900 * SEC,
            true,
        );
        let reset = tracked(
            flow(IPPROTO_TCP, 4),
            61004,
            flow_flags::RST,
            now - 11 * SEC,
            now - 11 * SEC,
            true,
        );
        let all = [unreplied_udp, replied_udp, established, reset];
        let out: Vec<_> = all.iter().map(|(o, _)| *o).collect();
        let inbound: HashMap<_, _> = all.iter().map(|(_, i)| *i).collect();
        let s = sweep(&out, &inbound, now, &[PUBLIC]);
        assert_eq!(s.out, [unreplied_udp.0.0, reset.0.0]);
        assert_eq!(s.inbound.len(), 2);
        assert!(s.inbound.contains(&unreplied_udp.1.0) && s.inbound.contains(&reset.1.0));
        assert_eq!(s.expired, 2);
        assert!(timeouts::UDP_REPLIED > Duration::from_secs(31));
    }

    #[test]
    fn a_lost_address_ends_its_flows_and_orphans_are_collected() {
        let now = 1000 * SEC;
        let live = tracked(flow(IPPROTO_UDP, 1), 61001, 0, now, now, true);
        let out = vec![live.0];
        let mut inbound: HashMap<_, _> = [live.1].into();
        // A reverse entry without forward entry: young (being created) and old.
        let (_, young) = tracked(flow(IPPROTO_UDP, 7), 61007, 0, 0, now - SEC, false);
        let (_, old) = tracked(flow(IPPROTO_UDP, 8), 61008, 0, 0, now - 3 * SEC, false);
        inbound.insert(young.0, young.1);
        inbound.insert(old.0, old.1);
        let s = sweep(&out, &inbound, now, &[PUBLIC]);
        assert_eq!(s.out, []);
        assert_eq!(s.inbound, [old.0]);
        assert_eq!(s.expired, 0);

        let s = sweep(&out, &inbound, now, &[[203, 0, 113, 9]]);
        assert_eq!(s.out, [live.0.0]);
        assert!(s.inbound.contains(&live.1.0));
        assert_eq!(s.expired, 1);
    }

    #[test]
    fn a_forward_entry_whose_reverse_was_evicted_goes() {
        let now = 1000 * SEC;
        let flow = tracked(flow(IPPROTO_TCP, 1), 61001, flow_flags::SYN, now, now, true);
        let s = sweep(&[flow.0], &HashMap::new(), now, &[PUBLIC]);
        assert_eq!(s.out, [flow.0.0]);
        assert_eq!(s.expired, 0);
    }

    use std::time::Duration;
}
