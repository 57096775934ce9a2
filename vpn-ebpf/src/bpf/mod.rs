//! XDP programs: `xdp_wan` on internet-facing interfaces, `xdp_lan` on site-facing ones.
//!
//! Path of a packet, top to bottom:
//! - every frame is classified and counted ([`vpn_ebpf::classify`]);
//! - WAN: ESP whose SPI has an inbound SA goes to a crypto worker ([`wan::inbound`]);
//! - LAN: IPv4 whose destination a tunnel route covers goes to a crypto worker with the next
//!   hop towards the peer ([`lan::outbound`]);
//! - NAT masquerade on both: replies to translated flows are translated back first
//!   ([`nat::reverse`]; on the LAN they may then enter a tunnel), packets matching a rule and
//!   routed out of its interface are translated ([`nat::forward`]; tunnel traffic never: it
//!   was redirected above, and IKE/ESP classes are not NAT's);
//! - everything else passes to the kernel unchanged.

mod frame;
mod lan;
mod maps;
mod meta;
mod nat;
mod wan;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use vpn_common::{InterfaceRole, PacketClass, class_counter_index};
use vpn_ebpf::{PacketBytes as _, classify};

use frame::XdpFrame;
use maps::CLASS_COUNTERS;

#[xdp]
pub fn xdp_wan(ctx: XdpContext) -> u32 {
    let class = observe(&ctx, InterfaceRole::Wan);
    match class {
        PacketClass::Esp | PacketClass::EspInUdp => wan::inbound(&ctx, class),
        PacketClass::Plain | PacketClass::Fragment => {
            if nat::reverse(&ctx, class) {
                xdp_action::XDP_PASS
            } else {
                nat::forward(&ctx, class)
            }
        }
        _ => xdp_action::XDP_PASS,
    }
}

#[xdp]
pub fn xdp_lan(ctx: XdpContext) -> u32 {
    match observe(&ctx, InterfaceRole::Lan) {
        PacketClass::NonIp | PacketClass::Malformed => xdp_action::XDP_PASS,
        // A reply translated back goes where its inside host is, a tunnel included.
        class if nat::reverse(&ctx, class) => lan::outbound(&ctx),
        class => match lan::outbound(&ctx) {
            // Not for a tunnel: ordinary routing, after source translation.
            xdp_action::XDP_PASS if matches!(class, PacketClass::Plain | PacketClass::Fragment) => {
                nat::forward(&ctx, class)
            }
            action => action,
        },
    }
}

/// Classifies and counts the frame.
#[inline(always)]
fn observe(ctx: &XdpContext, role: InterfaceRole) -> PacketClass {
    let frame = XdpFrame(ctx);
    let class = classify(&frame);
    if let Some(counter) = CLASS_COUNTERS.get_ptr_mut(class_counter_index(role, class)) {
        // SAFETY: per-CPU slot: only this CPU writes it, and XDP does not preempt itself.
        let counter = unsafe { &mut *counter };
        counter.packets += 1;
        counter.bytes += frame.len() as u64;
    }
    class
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
