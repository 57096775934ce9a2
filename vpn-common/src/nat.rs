//! Map keys and values of the NAT masquerade datapath (issue 5, seed 002): the rules the agent
//! writes, the two connection-tracking tables the XDP programs keep (one per direction) and the
//! event counters.
//!
//! A flow is tracked by two entries created together by XDP:
//! - `NAT_OUT`, keyed by the original tuple as it arrives from the inside (source = the inside
//!   host), holding the translated source (the out-interface's address and the allocated port);
//! - `NAT_IN`, keyed by the reply tuple as it arrives from the outside (destination = the
//!   translated source), holding the original source.
//!
//! ICMP query messages (echo) use their identifier in place of the local-side port and 0 for
//! the remote side's (RFC 5508 section 3.1). Addresses and ports are in network byte order, as
//! on the wire.

/// Most flows tracked at once (each has one entry in both tables; LRU maps evict the coldest).
pub const MAX_NAT_FLOWS: u32 = 65_536;
/// Most (rule, destination prefix) pairs.
pub const MAX_NAT_RULES: u32 = 64;
/// One bit per port: ports the allocator must not hand out (the host's bound ports, IKE).
pub const NAT_RESERVED_WORDS: u32 = 65_536 / 64;

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// One direction of a flow: protocol, addresses and ports (ICMP: identifier / 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src_addr: [u8; 4],
    pub dst_addr: [u8; 4],
    pub src_port: [u8; 2],
    pub dst_port: [u8; 2],
    pub proto: u8,
    pub _pad: [u8; 3],
}

impl FlowKey {
    pub const fn new(
        proto: u8,
        src_addr: [u8; 4],
        src_port: [u8; 2],
        dst_addr: [u8; 4],
        dst_port: [u8; 2],
    ) -> Self {
        FlowKey {
            src_addr,
            dst_addr,
            src_port,
            dst_port,
            proto,
            _pad: [0; 3],
        }
    }

    /// The tuple of the other direction: addresses and ports swapped.
    pub const fn reversed(&self) -> Self {
        FlowKey::new(
            self.proto,
            self.dst_addr,
            self.dst_port,
            self.src_addr,
            self.src_port,
        )
    }
}

/// Bits of [`NatMapping::flags`]: what this direction of the flow has seen.
pub mod flow_flags {
    /// TCP FIN seen.
    pub const FIN: u8 = 0x01;
    /// TCP RST seen.
    pub const RST: u8 = 0x02;
    /// TCP SYN seen (a flow whose first packet was not a SYN was picked up mid-stream).
    pub const SYN: u8 = 0x04;
    /// A packet was seen in this direction since the entry was created (for `NAT_IN`: the
    /// flow was answered).
    pub const SEEN: u8 = 0x08;
}

/// Value of both tables: `NAT_OUT` holds the translated source, `NAT_IN` the original one.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatMapping {
    pub addr: [u8; 4],
    pub port: [u8; 2],
    /// [`flow_flags`] seen in this table's direction.
    pub flags: u8,
    pub _pad: u8,
    /// bpf_ktime_get_ns() of the last packet in this direction (CLOCK_MONOTONIC).
    pub last_seen_ns: u64,
}

/// Entry of the rule array: "from `from` to `to` out `out_ifindex`" masquerades to `out_addr`.
/// A rule with several destination prefixes takes one entry per prefix.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatRuleEntry {
    pub from: [u8; 4],
    pub to: [u8; 4],
    pub from_len: u8,
    pub to_len: u8,
    /// 0: an unused slot (the first one ends the list).
    pub valid: u8,
    pub _pad: u8,
    /// The interface the kernel's FIB must route the packet out of for the rule to apply.
    pub out_ifindex: u32,
    /// That interface's IPv4 address, the masquerade source.
    pub out_addr: [u8; 4],
}

/// Value of the one-entry settings array.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatSettings {
    /// Ports (and ICMP identifiers) the allocator hands out, inclusive; first > last: NAT off.
    pub port_first: u16,
    pub port_last: u16,
    pub _pad: u32,
}

/// What the NAT datapath did; indexes the per-CPU `NAT_EVENTS` array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatEvent {
    /// An inside packet of a tracked flow had its source translated.
    Translated = 0,
    /// An outside packet of a tracked flow had its destination translated back.
    ReverseTranslated = 1,
    /// A new flow was tracked (a port allocated).
    NewFlow = 2,
    /// No free port among the candidates probed: the packet was dropped.
    AllocationFailed = 3,
    /// An ICMP error about a tracked flow was translated (outer and embedded header).
    IcmpErrorTranslated = 4,
    /// A packet matching a rule was passed on untranslated (TTL about to expire, too big for
    /// the out interface, a protocol without ports, an ICMP error about no tracked flow): the
    /// kernel answers or forwards it, as it would before its own MASQUERADE.
    Untranslated = 5,
    /// A fragment matching a rule: dropped (its ports are only known after reassembly).
    FragmentDropped = 6,
    /// Flows removed by the agent's sweep after their timeout (written by the agent, CPU 0).
    Expired = 7,
    /// A packet matching a rule whose transport header is cut short: dropped, never sent
    /// with the inside source.
    Malformed = 8,
}

impl NatEvent {
    pub const COUNT: usize = 9;
    pub const ALL: [NatEvent; Self::COUNT] = [
        NatEvent::Translated,
        NatEvent::ReverseTranslated,
        NatEvent::NewFlow,
        NatEvent::AllocationFailed,
        NatEvent::IcmpErrorTranslated,
        NatEvent::Untranslated,
        NatEvent::FragmentDropped,
        NatEvent::Expired,
        NatEvent::Malformed,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            NatEvent::Translated => "translated",
            NatEvent::ReverseTranslated => "reverse_translated",
            NatEvent::NewFlow => "new_flows",
            NatEvent::AllocationFailed => "allocation_failed",
            NatEvent::IcmpErrorTranslated => "icmp_error_translated",
            NatEvent::Untranslated => "untranslated",
            NatEvent::FragmentDropped => "fragment_dropped",
            NatEvent::Expired => "expired",
            NatEvent::Malformed => "malformed",
        }
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY (all): #[repr(C)], only integer and byte-array fields, explicit padding, every bit
    // pattern valid.
    unsafe impl aya::Pod for super::FlowKey {}
    unsafe impl aya::Pod for super::NatMapping {}
    unsafe impl aya::Pod for super::NatRuleEntry {}
    unsafe impl aya::Pod for super::NatSettings {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_have_no_hidden_padding() {
        assert_eq!(core::mem::size_of::<FlowKey>(), 16);
        assert_eq!(core::mem::size_of::<NatMapping>(), 16);
        assert_eq!(core::mem::size_of::<NatRuleEntry>(), 20);
        assert_eq!(core::mem::size_of::<NatSettings>(), 8);
    }

    #[test]
    fn event_order_matches_discriminants() {
        for (i, e) in NatEvent::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i);
        }
    }

    #[test]
    fn reversing_swaps_both_ends() {
        let k = FlowKey::new(
            IPPROTO_UDP,
            [10, 1, 0, 10],
            [0x9c, 0x40],
            [10, 2, 0, 10],
            [0, 53],
        );
        let r = k.reversed();
        assert_eq!(r.src_addr, k.dst_addr);
        assert_eq!(r.dst_port, k.src_port);
        assert_eq!(r.reversed(), k);
    }
}
