//! Packet logic of the XDP programs, written once and run in two places: inside the kernel
//! (through [`packet::PacketBytes`] over the XDP context, where the verifier checks every read)
//! and on the host in unit tests (over a byte slice).
//!
//! Hand-written: no maintained crate parses headers under the eBPF verifier's rules.
#![cfg_attr(not(test), no_std)]

pub mod classify;
pub mod locate;
pub mod mss;
pub mod nat;
pub mod packet;

pub use classify::classify;
pub use packet::{PacketBytes, PacketBytesMut};
