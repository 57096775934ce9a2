//! Writing [`XskMeta`] in front of a frame for the worker that receives it.

use aya_ebpf::{helpers::bpf_xdp_adjust_meta, programs::XdpContext};
use vpn_common::tunnel::{XSK_META_LEN, XskMeta};

/// Reserves the metadata area and writes `meta` into it; `false` if the driver has no room.
/// Invalidates earlier packet pointers (the helper may move data).
#[inline(always)]
pub fn write(ctx: &XdpContext, meta: XskMeta) -> bool {
    // SAFETY: ctx is the program's own context.
    if unsafe { bpf_xdp_adjust_meta(ctx.ctx, -(XSK_META_LEN as i32)) } != 0 {
        return false;
    }
    let start = ctx.metadata();
    if start + XSK_META_LEN > ctx.data() {
        return false;
    }
    // SAFETY: [start, start + XSK_META_LEN) lies in the metadata area, checked against data.
    unsafe { core::ptr::write_unaligned(start as *mut XskMeta, meta) };
    true
}
