//! `BPF_PROG_TEST_RUN` through the raw bpf(2) system call (aya 0.14 has no public test-run
//! API), and a two-instruction reference program loaded the same way to measure the cost of a
//! test run itself.
//!
//! The layouts follow the kernel UAPI, `include/uapi/linux/bpf.h`: the `test` and the
//! `BPF_PROG_LOAD` members of `union bpf_attr`, and `struct xdp_md`. The kernel accepts an
//! attribute shorter than its own `union bpf_attr` and treats the missing tail as zero
//! (`bpf_check_uarg_tail_zero`), so each struct below stops at the last field it needs.

use std::{
    ffi::CStr,
    io,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
};

/// `enum bpf_cmd`.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
/// `enum bpf_prog_type`.
const BPF_PROG_TYPE_XDP: u32 = 6;

/// `struct xdp_md`: the context test-run builds the XDP buffer from (`ctx_in`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct XdpMd {
    /// Offset of the packet in `data_in`; non-zero only with user metadata in front (none here).
    data: u32,
    /// Must equal `data_size_in`.
    data_end: u32,
    /// Must be 0.
    data_meta: u32,
    /// The device (in the caller's network namespace) whose receive queue the frame seems to
    /// arrive on: what `ctx->ingress_ifindex` and bpf_fib_lookup see.
    ingress_ifindex: u32,
    rx_queue_index: u32,
    /// Must be 0.
    egress_ifindex: u32,
}

/// `union bpf_attr`'s `test` member, fields up to `batch_size`, padded to its 8-byte alignment
/// with an explicit zero field so that no uninitialised byte reaches the kernel.
#[repr(C, align(8))]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// `union bpf_attr`'s `BPF_PROG_LOAD` member, fields up to `prog_name`.
#[repr(C, align(8))]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// What one `BPF_PROG_TEST_RUN` call reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestRun {
    /// The program's verdict (XDP action) of the last run.
    pub retval: u32,
    /// Average nanoseconds per run over `repeat` runs, as the kernel timed them.
    pub duration_ns: u32,
}

/// Where the frame seems to arrive.
#[derive(Clone, Copy, Debug)]
pub struct Ingress {
    pub ifindex: u32,
    pub rx_queue: u32,
}

/// Runs the XDP program `prog` `repeat` times on a copy of `frame` (the kernel copies it in
/// once: every repetition sees the previous one's changes to the frame and its metadata).
pub fn test_run(
    prog: BorrowedFd<'_>,
    frame: &[u8],
    ingress: Ingress,
    repeat: u32,
) -> io::Result<TestRun> {
    let len = u32::try_from(frame.len()).map_err(|_| io::Error::other("frame too long"))?;
    let ctx = XdpMd {
        data: 0,
        data_end: len,
        data_meta: 0,
        ingress_ifindex: ingress.ifindex,
        rx_queue_index: ingress.rx_queue,
        egress_ifindex: 0,
    };
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: len,
        data_in: frame.as_ptr() as u64,
        repeat,
        ctx_size_in: size_of::<XdpMd>() as u32,
        ctx_in: &ctx as *const XdpMd as u64,
        ..TestRunAttr::default()
    };
    // SAFETY: bpf(2) with BPF_PROG_TEST_RUN reads `size_of::<TestRunAttr>()` bytes of `attr`
    // (a #[repr(C)] prefix of `bpf_attr.test`, fully initialised, padding explicit), reads
    // `data_size_in` bytes at `data_in` (the `frame` slice) and `ctx_size_in` bytes at `ctx_in`
    // (`ctx`), both alive for the call, and writes only `retval` and `duration` back into
    // `attr` (data_out and ctx_out are null, so nothing else is copied out).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestRunAttr,
            size_of::<TestRunAttr>() as libc::c_uint,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TestRun {
        retval: attr.retval,
        duration_ns: attr.duration,
    })
}

/// Loads `r0 = XDP_PASS; exit`: the least an XDP program can do. Its test-run time is the
/// harness's own per-run cost (timer reads, bottom-half toggling, the dispatcher), against
/// which the datapath's figures can be read.
pub fn load_floor_program() -> io::Result<OwnedFd> {
    const XDP_PASS: u64 = 2;
    // BPF_ALU64 | BPF_MOV | BPF_K with dst r0 and imm XDP_PASS; then BPF_JMP | BPF_EXIT.
    // Encoding of `struct bpf_insn`: code (u8), dst/src registers (u8), off (i16), imm (i32).
    let insns: [u64; 2] = [0xb7 | (XDP_PASS << 32), 0x95];
    let license: &CStr = c"GPL";
    let mut name = [0u8; 16];
    name[..11].copy_from_slice(b"bench_floor");
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..ProgLoadAttr::default()
    };
    // SAFETY: bpf(2) with BPF_PROG_LOAD reads `size_of::<ProgLoadAttr>()` bytes of `attr` (a
    // #[repr(C)] prefix of the BPF_PROG_LOAD member of `bpf_attr`, fully initialised, no
    // implicit padding), `insn_cnt` 8-byte instructions at `insns` and the NUL-terminated
    // license, all alive for the call; log_buf is null so nothing is written back.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoadAttr,
            size_of::<ProgLoadAttr>() as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a successful BPF_PROG_LOAD returns a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_uapi() {
        // bpf_attr.test up to batch_size ends at byte 76; xdp_md is six u32.
        assert_eq!(std::mem::offset_of!(TestRunAttr, duration), 36);
        assert_eq!(std::mem::offset_of!(TestRunAttr, ctx_in), 48);
        assert_eq!(std::mem::offset_of!(TestRunAttr, batch_size), 72);
        assert_eq!(size_of::<TestRunAttr>(), 80);
        assert_eq!(size_of::<XdpMd>(), 24);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(size_of::<ProgLoadAttr>(), 64);
    }
}
