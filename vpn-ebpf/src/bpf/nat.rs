//! NAT masquerade in XDP (issue 5): connection tracking in two LRU hash maps, created here for
//! new flows, aged out by the agent's sweep. Runs on every interface after the tunnel checks:
//! - a packet to a translated source (a reply, or an ICMP error quoting a translated packet)
//!   gets its destination (and the quote) translated back;
//! - a packet that matches a rule and that the FIB routes out of the rule's interface gets its
//!   source translated (a port allocated for a new flow).
//!
//! The packet then passes to the kernel, which forwards it (TTL, ARP, the out interface's
//! queueing), as it would with its own MASQUERADE in POSTROUTING. Because the translated source
//! is the router's own address, the agent sets `accept_local` on the interfaces NAT rules take
//! traffic from.

use aya_ebpf::{
    bindings::{
        BPF_FIB_LKUP_RET_SUCCESS, BPF_FIB_LOOKUP_SKIP_NEIGH, BPF_NOEXIST,
        bpf_fib_lookup as FibParams, xdp_action,
    },
    helpers::{bpf_fib_lookup, bpf_get_prandom_u32, bpf_ktime_get_ns},
    programs::XdpContext,
};
use vpn_common::{
    PacketClass,
    nat::{FlowKey, MAX_NAT_RULES, NatEvent, NatMapping, NatRuleEntry, flow_flags},
};
use vpn_ebpf::{
    locate::ipv4_offset,
    nat::{
        Endpoint, PORT_PROBES, Parsed, Side, Transport, flow_hash, parse, port_candidate, rewrite,
        rewrite_icmp_error, rule_matches, translated_key,
    },
};

use super::{
    frame::XdpFrame,
    maps::{NAT_EVENTS, NAT_IN, NAT_OUT, NAT_RESERVED_PORTS, NAT_RULES, NAT_SETTINGS},
};

const AF_INET: u8 = 2;
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;

/// Translates a frame addressed to a translated source (a reply, or an ICMP error quoting a
/// translated packet) back to the inside host; `true` if it did. The caller then treats it as
/// a packet to the inside host (which may lie behind a tunnel).
#[inline(always)]
pub fn reverse(ctx: &XdpContext, class: PacketClass) -> bool {
    if class != PacketClass::Plain || !enabled() {
        // Fragments cannot be matched to a flow before reassembly.
        return false;
    }
    let mut frame = XdpFrame(ctx);
    let Some(parsed) = ipv4_offset(&frame).and_then(|l3| parse(&frame, l3)) else {
        return false;
    };
    !parsed.ip.fragment && translate_back(&mut frame, &parsed)
}

/// Source translation for a frame that matches a rule; the action to return.
#[inline(always)]
pub fn forward(ctx: &XdpContext, class: PacketClass) -> u32 {
    if !enabled() {
        return xdp_action::XDP_PASS;
    }
    let mut frame = XdpFrame(ctx);
    let Some(parsed) = ipv4_offset(&frame).and_then(|l3| parse(&frame, l3)) else {
        return xdp_action::XDP_PASS;
    };
    if class == PacketClass::Fragment || parsed.ip.fragment {
        // Only reassembly tells a fragment's ports; never let one out untranslated.
        if matching_rule(parsed.ip.src, parsed.ip.dst).is_some() {
            count(NatEvent::FragmentDropped);
            return xdp_action::XDP_DROP;
        }
        return xdp_action::XDP_PASS;
    }
    translate(ctx, &mut frame, &parsed)
}

/// Whether the agent runs NAT at all: it writes a port range (never starting at 0) when it
/// does. Without it, plain traffic skips the parse and the flow lookups.
#[inline(always)]
fn enabled() -> bool {
    NAT_SETTINGS
        .get(0)
        .is_some_and(|s| s.port_first != 0 && s.port_first <= s.port_last)
}

/// Translates a packet addressed to a translated source back; `true` if it was one.
#[inline(always)]
fn translate_back(frame: &mut XdpFrame, parsed: &Parsed) -> bool {
    match parsed.transport {
        Transport::Tcp | Transport::Udp | Transport::IcmpEchoRequest | Transport::IcmpEchoReply => {
            let Some(entry) = NAT_IN.get_ptr_mut(&parsed.key) else {
                return false;
            };
            let original = touch(entry, parsed);
            match rewrite(frame, parsed, Side::Destination, original) {
                Ok(()) => count(NatEvent::ReverseTranslated),
                Err(_) => count(NatEvent::Untranslated),
            }
            true
        }
        Transport::IcmpError => {
            // The quote is a packet we translated: its reply tuple is the reverse table's key.
            let Some(entry) = NAT_IN.get_ptr_mut(&parsed.quoted.key.reversed()) else {
                return false;
            };
            // SAFETY: a valid map value; copied out at once.
            let m = unsafe { *entry };
            let original = Endpoint {
                addr: m.addr,
                port: m.port,
            };
            match rewrite_icmp_error(frame, parsed, Side::Destination, original) {
                Ok(()) => count(NatEvent::IcmpErrorTranslated),
                Err(_) => count(NatEvent::Untranslated),
            }
            true
        }
        Transport::Other | Transport::Truncated => false,
    }
}

/// Source translation of a packet that matches a rule.
#[inline(always)]
fn translate(ctx: &XdpContext, frame: &mut XdpFrame, parsed: &Parsed) -> u32 {
    let Some(rule) = matching_rule(parsed.ip.src, parsed.ip.dst) else {
        return xdp_action::XDP_PASS;
    };
    let translatable = match parsed.transport {
        Transport::Tcp | Transport::Udp => true,
        // Only a request starts an echo flow; a lone reply is no flow (the kernel's conntrack
        // calls it invalid and does not translate it either).
        Transport::IcmpEchoRequest => true,
        Transport::IcmpEchoReply => false,
        Transport::IcmpError => {
            return forward_icmp_error(frame, parsed, &parsed.quoted.key.reversed());
        }
        Transport::Other => false,
        // A transport header cut short: it must not leave with the inside source.
        Transport::Truncated => {
            count(NatEvent::Malformed);
            return xdp_action::XDP_DROP;
        }
    };
    // TTL about to expire: the kernel answers with time exceeded to the inside host, as it
    // does before its POSTROUTING MASQUERADE.
    if !translatable || parsed.ip.ttl <= 1 || !routed_out_of(ctx, parsed, &rule) {
        count(NatEvent::Untranslated);
        return xdp_action::XDP_PASS;
    }
    let source = match NAT_OUT.get_ptr_mut(&parsed.key) {
        Some(entry) => touch(entry, parsed),
        None => match new_flow(parsed, &rule) {
            Some(source) => source,
            None => {
                count(NatEvent::AllocationFailed);
                return xdp_action::XDP_DROP;
            }
        },
    };
    match rewrite(frame, parsed, Side::Source, source) {
        Ok(()) => count(NatEvent::Translated),
        Err(_) => count(NatEvent::Untranslated),
    }
    xdp_action::XDP_PASS
}

/// An ICMP error from inside about a reverse-translated packet (`original` is the flow's
/// original tuple): translated to the flow's public source, quote included.
#[inline(always)]
fn forward_icmp_error(frame: &mut XdpFrame, parsed: &Parsed, original: &FlowKey) -> u32 {
    let Some(entry) = NAT_OUT.get_ptr_mut(original) else {
        count(NatEvent::Untranslated);
        return xdp_action::XDP_PASS;
    };
    // SAFETY: a valid map value; copied out at once.
    let m = unsafe { *entry };
    let source = Endpoint {
        addr: m.addr,
        port: m.port,
    };
    match rewrite_icmp_error(frame, parsed, Side::Source, source) {
        Ok(()) => count(NatEvent::IcmpErrorTranslated),
        Err(_) => count(NatEvent::Untranslated),
    }
    xdp_action::XDP_PASS
}

/// The first rule entry covering a packet from `src` to `dst`.
#[inline(always)]
fn matching_rule(src: [u8; 4], dst: [u8; 4]) -> Option<NatRuleEntry> {
    for i in 0..MAX_NAT_RULES {
        let rule = NAT_RULES.get(i)?;
        if rule.valid == 0 {
            return None;
        }
        if rule_matches(rule, src, dst) {
            return Some(*rule);
        }
    }
    None
}

/// Whether the kernel will forward the packet out of the rule's interface, without needing
/// to fragment it (a packet too big passes untranslated, so that the kernel's "fragmentation
/// needed" reaches the inside host, RFC 1191).
#[inline(always)]
fn routed_out_of(ctx: &XdpContext, parsed: &Parsed, rule: &NatRuleEntry) -> bool {
    // SAFETY: all-zero is a valid bpf_fib_lookup (plain integers and unions of them).
    let mut fib: FibParams = unsafe { core::mem::zeroed() };
    fib.family = AF_INET;
    fib.l4_protocol = parsed.ip.proto;
    fib.ifindex = ctx.ingress_ifindex() as u32;
    fib.__bindgen_anon_1.tot_len = (parsed.ip.l4_len + (parsed.ip.l4 - parsed.ip.l3)) as u16;
    fib.__bindgen_anon_3.ipv4_src = u32::from_ne_bytes(parsed.ip.src);
    fib.__bindgen_anon_4.ipv4_dst = u32::from_ne_bytes(parsed.ip.dst);
    // SAFETY: ctx is this program's context; fib is a properly sized, initialised struct.
    let rc = unsafe {
        bpf_fib_lookup(
            ctx.ctx.cast(),
            &mut fib,
            core::mem::size_of::<FibParams>() as i32,
            BPF_FIB_LOOKUP_SKIP_NEIGH,
        )
    };
    rc == i64::from(BPF_FIB_LKUP_RET_SUCCESS) && fib.ifindex == rule.out_ifindex
}

/// Allocates a port for a new flow and creates both table entries; the translated source.
#[inline(always)]
fn new_flow(parsed: &Parsed, rule: &NatRuleEntry) -> Option<Endpoint> {
    let settings = NAT_SETTINGS.get(0)?;
    let (first, last) = (settings.port_first, settings.port_last);
    // SAFETY: helpers without arguments.
    let (now, seed) = unsafe { (bpf_ktime_get_ns(), bpf_get_prandom_u32()) };
    let flags = tcp_flags(parsed);
    let hash = flow_hash(&parsed.key, seed);
    // Created unanswered (no SEEN flag), stamped so the sweep gives it a grace period.
    let original = NatMapping {
        addr: parsed.key.src_addr,
        port: parsed.key.src_port,
        flags: 0,
        _pad: 0,
        last_seen_ns: now,
    };
    for attempt in 0..PORT_PROBES {
        let Some(port) = port_candidate(hash, attempt, first, last) else {
            continue;
        };
        if reserved(port) {
            continue;
        }
        let source = Endpoint {
            addr: rule.out_addr,
            port: port.to_be_bytes(),
        };
        let reply = translated_key(&parsed.key, source).reversed();
        // BPF_NOEXIST: the reply tuple is ours only if no other flow holds it (RFC 4787
        // REQ-1's collision case: another inside host to the same remote endpoint).
        if NAT_IN
            .insert(&reply, &original, u64::from(BPF_NOEXIST))
            .is_err()
        {
            continue;
        }
        let mapping = NatMapping {
            addr: source.addr,
            port: source.port,
            flags: flags | flow_flags::SEEN,
            _pad: 0,
            last_seen_ns: now,
        };
        if NAT_OUT
            .insert(&parsed.key, &mapping, u64::from(BPF_NOEXIST))
            .is_err()
        {
            // Another CPU created this flow meanwhile: use its mapping.
            let _ = NAT_IN.remove(&reply);
            let entry = NAT_OUT.get_ptr_mut(&parsed.key)?;
            return Some(touch(entry, parsed));
        }
        count(NatEvent::NewFlow);
        return Some(source);
    }
    None
}

/// Whether the agent marked `port` as one the host uses.
#[inline(always)]
fn reserved(port: u16) -> bool {
    match NAT_RESERVED_PORTS.get(u32::from(port / 64)) {
        Some(word) => word & (1u64 << (port % 64)) != 0,
        None => true,
    }
}

/// Records the packet on a flow entry (time, TCP flags) and returns the entry's endpoint.
#[inline(always)]
fn touch(entry: *mut NatMapping, parsed: &Parsed) -> Endpoint {
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    let flags = tcp_flags(parsed) | flow_flags::SEEN;
    // SAFETY: a valid map value. Concurrent updates from other CPUs race benignly: the time
    // and flags only ever move forward.
    unsafe {
        (*entry).last_seen_ns = now;
        if (*entry).flags & flags != flags {
            (*entry).flags |= flags;
        }
        Endpoint {
            addr: (*entry).addr,
            port: (*entry).port,
        }
    }
}

#[inline(always)]
fn tcp_flags(parsed: &Parsed) -> u8 {
    if parsed.transport != Transport::Tcp {
        return 0;
    }
    let flags = parsed.tcp_flags;
    let mut seen = 0;
    if flags & TCP_FIN != 0 {
        seen |= flow_flags::FIN;
    }
    if flags & TCP_RST != 0 {
        seen |= flow_flags::RST;
    }
    if flags & TCP_SYN != 0 {
        seen |= flow_flags::SYN;
    }
    seen
}

#[inline(always)]
fn count(event: NatEvent) {
    if let Some(counter) = NAT_EVENTS.get_ptr_mut(event as u32) {
        // SAFETY: per-CPU slot, written only by this CPU.
        unsafe { *counter += 1 };
    }
}
