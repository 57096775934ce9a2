//! Inbound: ESP from the WAN with a known SPI goes to a crypto worker.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use vpn_common::{
    PacketClass,
    tunnel::{DatapathEvent, Encapsulation, XSK_META_MAGIC, XskJob, XskMeta},
};
use vpn_ebpf::{PacketBytes, locate::esp_offset};

use super::{
    frame::XdpFrame,
    maps::{INBOUND_SAS, XSKS_WAN, count},
    meta,
};

#[inline(always)]
pub fn inbound(ctx: &XdpContext, class: PacketClass) -> u32 {
    let frame = XdpFrame(ctx);
    let Some(spi) = esp_offset(&frame, class).and_then(|off| frame.bytes::<4>(off)) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: the value is copied out at once; the agent replaces entries, never mutates them.
    let Some(sa) = (unsafe { INBOUND_SAS.get(&u32::from_ne_bytes(spi)) }).copied() else {
        count(DatapathEvent::UnknownSpi);
        return xdp_action::XDP_PASS;
    };
    let arrived = match class {
        PacketClass::EspInUdp => Encapsulation::EspInUdp,
        _ => Encapsulation::Esp,
    };
    if sa.encapsulation != arrived as u8 {
        count(DatapathEvent::WrongEncapsulation);
        return xdp_action::XDP_DROP;
    }
    let queue = ctx.rx_queue_index();
    if XSKS_WAN.get(queue).is_none() {
        count(DatapathEvent::NoWorker);
        return xdp_action::XDP_PASS;
    }
    let written = meta::write(
        ctx,
        XskMeta {
            magic: XSK_META_MAGIC,
            job: XskJob::Decrypt as u8,
            fib_ok: 0,
            _pad: [0; 2],
            slot: sa.sa_slot,
            ifindex: 0,
            dst_mac: [0; 6],
            src_mac: [0; 6],
        },
    );
    if !written {
        count(DatapathEvent::NoMetaRoom);
        return xdp_action::XDP_DROP;
    }
    count(DatapathEvent::InboundToWorker);
    XSKS_WAN.redirect(queue, 0).unwrap_or(xdp_action::XDP_DROP)
}
