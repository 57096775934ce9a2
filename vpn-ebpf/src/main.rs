//! The XDP entry points. Built for `bpfel-unknown-none` by `vpn-agent/build.rs` (aya-build); on
//! any other target this binary is an empty shell so that `cargo clippy --workspace` works.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod xdp {
    use aya_ebpf::{
        bindings::xdp_action,
        macros::{map, xdp},
        maps::PerCpuArray,
        programs::XdpContext,
    };
    use vpn_common::{CLASS_COUNTER_ENTRIES, InterfaceRole, TrafficCounter, class_counter_index};
    use vpn_ebpf::{PacketBytes, classify};

    #[map]
    static CLASS_COUNTERS: PerCpuArray<TrafficCounter> =
        PerCpuArray::with_max_entries(CLASS_COUNTER_ENTRIES, 0);

    /// The frame of an XDP context, every read checked against `data_end` for the verifier.
    struct XdpFrame<'a>(&'a XdpContext);

    impl PacketBytes for XdpFrame<'_> {
        #[inline(always)]
        fn len(&self) -> usize {
            self.0.data_end() - self.0.data()
        }

        #[inline(always)]
        fn bytes<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
            let start = self.0.data() + offset;
            // A volatile load of data_end keeps LLVM from dropping this check when it can prove
            // it from earlier length comparisons that the verifier does not track.
            // SAFETY: ctx points at the xdp_md the kernel passed to this program.
            let end = unsafe { core::ptr::read_volatile(&(*self.0.ctx).data_end) } as usize;
            if start + N > end {
                return None;
            }
            // SAFETY: [start, start + N) was checked to lie inside the frame just above.
            Some(unsafe { core::ptr::read_unaligned(start as *const [u8; N]) })
        }
    }

    #[xdp]
    pub fn xdp_wan(ctx: XdpContext) -> u32 {
        observe(&ctx, InterfaceRole::Wan)
    }

    #[xdp]
    pub fn xdp_lan(ctx: XdpContext) -> u32 {
        observe(&ctx, InterfaceRole::Lan)
    }

    /// Classifies and counts the frame, then hands it to the kernel unchanged.
    #[inline(always)]
    fn observe(ctx: &XdpContext, role: InterfaceRole) -> u32 {
        let frame = XdpFrame(ctx);
        let class = classify(&frame);
        if let Some(counter) = CLASS_COUNTERS.get_ptr_mut(class_counter_index(role, class)) {
            // SAFETY: per-CPU slot: only this CPU writes it, and XDP does not preempt itself.
            let counter = unsafe { &mut *counter };
            counter.packets += 1;
            counter.bytes += frame.len() as u64;
        }
        xdp_action::XDP_PASS
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }

    #[unsafe(link_section = "license")]
    #[unsafe(no_mangle)]
    static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
}

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("vpn-ebpf is an eBPF object; build it with `cargo xtask build`.");
    std::process::exit(2);
}
