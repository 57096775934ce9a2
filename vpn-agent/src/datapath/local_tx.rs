//! The router's own packets into tunnels: read from each tunnel's TUN device
//! (`system::kernel_routes` routes them there), sealed by the worker like LAN traffic, sent
//! through the kernel.

use std::{
    ops::Range,
    os::fd::{AsRawFd as _, RawFd},
};

use crate::system::kernel_routes::TunnelDevice;

/// Room in front of the packet for a made-up Ethernet header and the outer headers.
const FRONT: usize = 128;
/// Room behind it for ESP padding, trailer and ICV.
const BACK: usize = 64;
const MAX_PACKET: usize = 65_535;
const ETH_HLEN: usize = 14;

/// A tunnel's device and the outbound SA slot its packets are sealed with (`None`: the tunnel
/// is down and its packets are dropped).
#[derive(Clone, Debug)]
pub struct LocalPort {
    pub tunnel: String,
    pub device: TunnelDevice,
    pub out_slot: Option<u32>,
}

/// Where a packet read from a device is handed to be sealed: the slot, a frame laid out as
/// the XDP path lays it out (Ethernet header from `data`, the packet up to `end`), with room
/// around it.
pub struct LocalFrame<'a> {
    pub out_slot: Option<u32>,
    pub frame: &'a mut [u8],
    pub data: usize,
    pub end: usize,
}

/// Empty by default, without a buffer: the worker swaps this out on every turn that reads.
#[derive(Default)]
pub struct LocalPorts {
    ports: Vec<LocalPort>,
    /// Allocated on the first read.
    scratch: Vec<u8>,
}

impl LocalPorts {
    pub fn replace(&mut self, ports: Vec<LocalPort>) {
        self.ports = ports;
    }

    pub fn fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.ports.iter().map(|p| p.device.fd.as_raw_fd())
    }

    /// Reads up to `budget` packets from every device, handing each to `seal`; returns how
    /// many were read.
    pub fn drain(&mut self, budget: u32, mut seal: impl FnMut(LocalFrame<'_>)) -> u32 {
        if self.ports.is_empty() {
            return 0;
        }
        if self.scratch.is_empty() {
            self.scratch = vec![0; FRONT + MAX_PACKET + BACK];
        }
        let mut read = 0;
        for port in &self.ports {
            let fd = port.device.fd.as_raw_fd();
            for _ in 0..budget {
                let start = FRONT;
                let room = &mut self.scratch[start..start + MAX_PACKET];
                // SAFETY: reads at most room.len() bytes into room; the descriptor is
                // non-blocking, so an empty device returns EAGAIN at once.
                let n = unsafe { libc::read(fd, room.as_mut_ptr().cast(), room.len()) };
                let Ok(len) = usize::try_from(n) else {
                    break;
                };
                if len == 0 {
                    break;
                }
                read += 1;
                let data = start - ETH_HLEN;
                self.scratch[data..data + 12].fill(0);
                self.scratch[data + 12..start].copy_from_slice(&0x0800u16.to_be_bytes());
                seal(LocalFrame {
                    out_slot: port.out_slot,
                    frame: &mut self.scratch,
                    data,
                    end: start + len,
                });
            }
        }
        read
    }
}

/// The IPv4 packet inside a [`LocalFrame`] (IPv6 from the device is not routed there by us).
pub fn is_ipv4(frame: &[u8], range: Range<usize>) -> bool {
    frame
        .get(range.start + ETH_HLEN)
        .is_some_and(|b| b >> 4 == 4)
}
