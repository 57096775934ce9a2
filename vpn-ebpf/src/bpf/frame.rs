//! The frame of an XDP context as [`PacketBytes`], every read checked against `data_end`.

use aya_ebpf::programs::XdpContext;
use vpn_ebpf::{PacketBytes, PacketBytesMut};

pub struct XdpFrame<'a>(pub &'a XdpContext);

impl PacketBytes for XdpFrame<'_> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.0.data_end() - self.0.data()
    }

    #[inline(always)]
    fn bytes<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let start = checked_range(self.0, offset, N)?;
        // SAFETY: [start, start + N) was checked to lie inside the frame.
        Some(unsafe { core::ptr::read_unaligned(start as *const [u8; N]) })
    }
}

impl PacketBytesMut for XdpFrame<'_> {
    #[inline(always)]
    fn write_bytes<const N: usize>(&mut self, offset: usize, value: [u8; N]) -> bool {
        let Some(start) = checked_range(self.0, offset, N) else {
            return false;
        };
        // SAFETY: [start, start + N) lies inside the frame, which XDP may modify.
        unsafe { core::ptr::write_unaligned(start as *mut [u8; N], value) };
        true
    }
}

/// The address of `[offset, offset + len)` in the frame, if it lies inside it.
///
/// Two details keep the verifier satisfied: data_end is loaded volatile, so LLVM cannot drop
/// the check by proving it from earlier length comparisons the verifier does not track; and
/// the comparison is on pointers moved with `wrapping_add`, so LLVM does not rewrite
/// `start + 1 > end` as `start >= end`, a form from which the verifier learns no readable range.
#[inline(always)]
fn checked_range(ctx: &XdpContext, offset: usize, len: usize) -> Option<usize> {
    let start = (ctx.data() as *const u8).wrapping_add(offset);
    // SAFETY: ctx points at the xdp_md the kernel passed to this program.
    let end = unsafe { core::ptr::read_volatile(&(*ctx.ctx).data_end) } as usize as *const u8;
    if start.wrapping_add(len) > end {
        return None;
    }
    Some(start as usize)
}
