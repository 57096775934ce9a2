//! The XDP entry points. Built for `bpfel-unknown-none` by `vpn-agent/build.rs` (aya-build); on
//! any other target this binary is an empty shell so that `cargo clippy --workspace` works.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod bpf;

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("vpn-ebpf is an eBPF object; build it with `cargo xtask build`.");
    std::process::exit(2);
}
