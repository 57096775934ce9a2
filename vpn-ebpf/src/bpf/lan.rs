//! Outbound: IPv4 from the LAN whose destination a tunnel route covers goes to a crypto worker,
//! with the next hop towards the tunnel's peer looked up here (bpf_fib_lookup) so the worker
//! needs no routing table. Traffic for a tunnel that cannot be encrypted is dropped, never
//! forwarded in the clear.

use aya_ebpf::{
    bindings::{BPF_FIB_LKUP_RET_SUCCESS, bpf_fib_lookup as FibParams, xdp_action},
    helpers::bpf_fib_lookup,
    maps::lpm_trie::Key,
    programs::XdpContext,
};
use vpn_common::tunnel::{DatapathEvent, XSK_META_MAGIC, XskJob, XskMeta};
use vpn_ebpf::{
    locate::{ipv4_addresses, ipv4_offset},
    mss::clamp_ipv4,
};

use super::{
    frame::XdpFrame,
    maps::{TUNNEL_ROUTES, TUNNELS, XSKS_LAN, count},
    meta,
};

const AF_INET: u8 = 2;

#[inline(always)]
pub fn outbound(ctx: &XdpContext) -> u32 {
    let mut frame = XdpFrame(ctx);
    let Some(l3) = ipv4_offset(&frame) else {
        return xdp_action::XDP_PASS;
    };
    let Some((src, dst)) = ipv4_addresses(&frame, l3) else {
        return xdp_action::XDP_PASS;
    };
    let Some(slot) = TUNNEL_ROUTES.get(Key::new(32, dst)).copied() else {
        return xdp_action::XDP_PASS;
    };
    let Some(tunnel) = TUNNELS.get(slot).copied() else {
        return xdp_action::XDP_PASS;
    };
    if !in_prefix(src, tunnel.local_prefix, tunnel.local_prefix_len) {
        // Not covered by this tunnel's local selector: ordinary routing.
        return xdp_action::XDP_PASS;
    }
    if tunnel.active == 0 {
        count(DatapathEvent::TunnelDown);
        return xdp_action::XDP_DROP;
    }
    if tunnel.mss != 0 {
        clamp_ipv4(&mut frame, l3, tunnel.mss);
    }
    let queue = ctx.rx_queue_index();
    if XSKS_LAN.get(queue).is_none() {
        count(DatapathEvent::NoWorker);
        return xdp_action::XDP_DROP;
    }

    // SAFETY: all-zero is a valid bpf_fib_lookup (plain integers and unions of them).
    let mut fib: FibParams = unsafe { core::mem::zeroed() };
    fib.family = AF_INET;
    fib.ifindex = ctx.ingress_ifindex() as u32;
    fib.__bindgen_anon_3.ipv4_src = u32::from_ne_bytes(tunnel.local_addr);
    fib.__bindgen_anon_4.ipv4_dst = u32::from_ne_bytes(tunnel.peer_addr);
    // SAFETY: ctx is this program's context; fib is a properly sized, initialised struct.
    let rc = unsafe {
        bpf_fib_lookup(
            ctx.ctx.cast(),
            &mut fib,
            core::mem::size_of::<FibParams>() as i32,
            0,
        )
    };
    let fib_ok = rc == i64::from(BPF_FIB_LKUP_RET_SUCCESS);
    if !fib_ok {
        count(DatapathEvent::FibMiss);
    }
    let written = meta::write(
        ctx,
        XskMeta {
            magic: XSK_META_MAGIC,
            job: XskJob::Encrypt as u8,
            fib_ok: u8::from(fib_ok),
            _pad: [0; 2],
            slot: tunnel.sa_slot,
            ifindex: if fib_ok { fib.ifindex } else { 0 },
            dst_mac: fib.dmac,
            src_mac: fib.smac,
        },
    );
    if !written {
        count(DatapathEvent::NoMetaRoom);
        return xdp_action::XDP_DROP;
    }
    count(DatapathEvent::OutboundToWorker);
    XSKS_LAN.redirect(queue, 0).unwrap_or(xdp_action::XDP_DROP)
}

#[inline(always)]
fn in_prefix(addr: [u8; 4], prefix: [u8; 4], len: u8) -> bool {
    if len == 0 {
        return true;
    }
    let mask = u32::MAX << (32 - u32::from(len.min(32)));
    u32::from_be_bytes(addr) & mask == u32::from_be_bytes(prefix) & mask
}
