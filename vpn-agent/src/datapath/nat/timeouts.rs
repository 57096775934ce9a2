//! How long an idle flow keeps its mapping: the kernel's nf_conntrack defaults (Linux 6.x,
//! `net.netfilter.nf_conntrack_*_timeout*`), so that flows live as long through this NAT as
//! through the kernel's MASQUERADE. They also meet the NAT behaviour RFCs' floors: UDP at
//! least 2 minutes once both ways (RFC 4787 REQ-5), TCP established at least 2 h 4 min
//! (RFC 5382 REQ-5), transitory TCP at least 4 min... except the kernel's 2 min for closing and
//! SYN-sent states, which we follow for equal behaviour.

use std::time::Duration;

use vpn_common::nat::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, flow_flags};

/// nf_conntrack_tcp_timeout_established.
pub const TCP_ESTABLISHED: Duration = Duration::from_secs(5 * 24 * 3600);
/// nf_conntrack_tcp_timeout_syn_sent, _fin_wait, _time_wait (all 120 s).
pub const TCP_TRANSITORY: Duration = Duration::from_secs(120);
/// nf_conntrack_tcp_timeout_close: after a reset.
pub const TCP_CLOSED: Duration = Duration::from_secs(10);
/// nf_conntrack_udp_timeout: one direction only so far.
pub const UDP_UNREPLIED: Duration = Duration::from_secs(30);
/// nf_conntrack_udp_timeout_stream: replies seen.
pub const UDP_REPLIED: Duration = Duration::from_secs(120);
/// nf_conntrack_icmp_timeout.
pub const ICMP: Duration = Duration::from_secs(30);
/// nf_conntrack_generic_timeout (no other protocol is tracked; kept for completeness).
pub const GENERIC: Duration = Duration::from_secs(600);

/// What the sweep knows of a flow: both directions' flags, and whether a reply was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowState {
    pub proto: u8,
    /// [`flow_flags`] of both directions.
    pub flags: u8,
    pub replied: bool,
}

/// The idle time after which the flow's mapping is removed.
pub fn timeout(state: FlowState) -> Duration {
    match state.proto {
        IPPROTO_TCP if state.flags & flow_flags::RST != 0 => TCP_CLOSED,
        IPPROTO_TCP if state.flags & flow_flags::FIN != 0 || !state.replied => TCP_TRANSITORY,
        IPPROTO_TCP => TCP_ESTABLISHED,
        IPPROTO_UDP if state.replied => UDP_REPLIED,
        IPPROTO_UDP => UDP_UNREPLIED,
        IPPROTO_ICMP => ICMP,
        _ => GENERIC,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(proto: u8, flags: u8, replied: bool) -> FlowState {
        FlowState {
            proto,
            flags,
            replied,
        }
    }

    #[test]
    fn tcp_lives_long_only_while_established() {
        assert_eq!(
            timeout(state(IPPROTO_TCP, flow_flags::SYN, false)),
            TCP_TRANSITORY
        );
        assert_eq!(
            timeout(state(IPPROTO_TCP, flow_flags::SYN, true)),
            TCP_ESTABLISHED
        );
        assert_eq!(
            timeout(state(IPPROTO_TCP, flow_flags::SYN | flow_flags::FIN, true)),
            TCP_TRANSITORY
        );
        assert_eq!(
            timeout(state(IPPROTO_TCP, flow_flags::FIN | flow_flags::RST, true)),
            TCP_CLOSED
        );
        assert!(
            TCP_ESTABLISHED >= Duration::from_secs(7440),
            "RFC 5382 REQ-5"
        );
    }

    #[test]
    fn udp_and_icmp() {
        assert_eq!(timeout(state(IPPROTO_UDP, 0, false)), UDP_UNREPLIED);
        assert_eq!(timeout(state(IPPROTO_UDP, 0, true)), UDP_REPLIED);
        assert!(UDP_REPLIED >= Duration::from_secs(120), "RFC 4787 REQ-5");
        assert_eq!(timeout(state(IPPROTO_ICMP, 0, true)), ICMP);
    }
}
