//! AF_XDP sockets of one worker: a UMEM shared by a socket on the WAN interface and one on the
//! LAN interface (same receive queue number on both), so a frame received on one side can be
//! transmitted on the other without a copy. Built on xdpilone (pure Rust AF_XDP rings).
//!
//! On veth the kernel runs AF_XDP in copy mode; zero-copy needs driver support (see the
//! platform notes). The XDP programs redirect to these sockets through the XSKMAPs.

use std::{os::fd::RawFd, ptr::NonNull};

use anyhow::{Context as _, anyhow, bail};
use xdpilone::{DeviceQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig, User};

/// Size of one UMEM frame: a page, so frames never straddle pages.
pub const FRAME_SIZE: u32 = 4096;
/// Size of every ring (fill, completion, rx, tx).
const RING_SIZE: u32 = 2048;
/// Frames lent to each side's fill ring: all it holds. While the worker is not running (two
/// vCPUs shared with the senders, receivers and the other router) the kernel keeps receiving
/// into these; with half the ring lent, the bench lost frames to an empty fill ring
/// (`rx_fill_ring_empty`) and TCP retransmitted thousands of segments per 5 s.
pub const FILL_TARGET: u32 = RING_SIZE;
/// Frames in the UMEM (32 MiB): both fill rings full, both tx rings full, and a spare batch.
pub const FRAME_COUNT: u32 = 4 * RING_SIZE;

/// Anonymous, page-aligned memory registered as the UMEM; unmapped on drop.
struct UmemArea {
    ptr: NonNull<u8>,
    len: usize,
}

impl UmemArea {
    fn new(len: usize) -> anyhow::Result<Self> {
        // SAFETY: anonymous private mapping; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error()).context("mapping the UMEM");
        }
        let ptr = NonNull::new(ptr.cast()).context("mmap returned null")?;
        Ok(UmemArea { ptr, len })
    }
}

impl Drop for UmemArea {
    fn drop(&mut self) {
        // SAFETY: the mapping made in new(); every user of it (the Umem) is dropped before.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// SAFETY: the area is plain memory; access to frames is coordinated by ring ownership.
unsafe impl Send for UmemArea {}

/// One interface queue's rings.
pub struct Port {
    pub ifindex: u32,
    pub device: DeviceQueue,
    pub user: User,
    pub rx: RingRx,
    pub tx: RingTx,
}

impl Port {
    pub fn fd(&self) -> RawFd {
        self.user.as_raw_fd()
    }
}

/// Both sides' sockets over one UMEM. Field order matters: rings and sockets are dropped
/// before the UMEM registration, and that before the memory it points into.
pub struct XskPair {
    pub wan: Port,
    pub lan: Port,
    _umem: Umem,
    area: UmemArea,
}

// SAFETY: the rings are single-producer/single-consumer structures owned by this value, which a
// single worker thread owns; nothing else holds pointers into them.
unsafe impl Send for XskPair {}

impl XskPair {
    /// Binds sockets to `queue` of both interfaces.
    pub fn bind(wan_ifindex: u32, lan_ifindex: u32, queue: u32) -> anyhow::Result<Self> {
        let area = UmemArea::new((FRAME_SIZE * FRAME_COUNT) as usize)?;
        let region = NonNull::slice_from_raw_parts(area.ptr, area.len);
        let config = UmemConfig {
            fill_size: RING_SIZE,
            complete_size: RING_SIZE,
            frame_size: FRAME_SIZE,
            headroom: 0,
            flags: 0,
        };
        // SAFETY: the area is page aligned, sized as declared, and outlives the Umem (field order).
        let umem = unsafe { Umem::new(config, region) }
            .map_err(|e| anyhow!("registering the UMEM: {e}"))?;
        let wan = Self::port(&umem, wan_ifindex, queue, true)
            .with_context(|| format!("AF_XDP socket on WAN ifindex {wan_ifindex} queue {queue}"))?;
        let lan = Self::port(&umem, lan_ifindex, queue, false)
            .with_context(|| format!("AF_XDP socket on LAN ifindex {lan_ifindex} queue {queue}"))?;
        Ok(XskPair {
            wan,
            lan,
            _umem: umem,
            area,
        })
    }

    fn port(umem: &Umem, ifindex: u32, queue: u32, owns_umem_fd: bool) -> anyhow::Result<Port> {
        let mut info = IfInfo::invalid();
        info.from_ifindex(ifindex)
            .map_err(|e| anyhow!("interface {ifindex}: {e}"))?;
        info.set_queue(queue);
        let socket = if owns_umem_fd {
            Socket::with_shared(&info, umem)
        } else {
            Socket::new(&info)
        }
        .map_err(|e| anyhow!("creating the socket: {e}"))?;
        let device = umem
            .fq_cq(&socket)
            .map_err(|e| anyhow!("fill/completion rings: {e}"))?;
        let user = umem
            .rx_tx(
                &socket,
                &SocketConfig {
                    rx_size: std::num::NonZeroU32::new(RING_SIZE),
                    tx_size: std::num::NonZeroU32::new(RING_SIZE),
                    bind_flags: 0,
                },
            )
            .map_err(|e| anyhow!("rx/tx rings: {e}"))?;
        let rx = user.map_rx().map_err(|e| anyhow!("mapping rx: {e}"))?;
        let tx = user.map_tx().map_err(|e| anyhow!("mapping tx: {e}"))?;
        umem.bind(&user).map_err(|e| anyhow!("binding: {e}"))?;
        let tx_budget = raise_tx_budget(user.as_raw_fd(), RING_SIZE);
        tracing::debug!(
            ifindex,
            ?tx_budget,
            "AF_XDP copy-mode transmit budget per sendto"
        );
        Ok(Port {
            ifindex,
            device,
            user,
            rx,
            tx,
        })
    }

    /// The whole frame (chunk) that contains UMEM address `addr`.
    ///
    /// # Safety
    /// The caller must own the frame: received and not yet given back to a fill or tx ring.
    pub unsafe fn frame_mut(&mut self, addr: u64) -> anyhow::Result<(u64, &mut [u8])> {
        let base = addr & !u64::from(FRAME_SIZE - 1);
        let end = base + u64::from(FRAME_SIZE);
        if end > self.area.len as u64 {
            bail!("descriptor address {addr:#x} outside the UMEM");
        }
        // SAFETY: in bounds (checked above); exclusive by the caller's ownership of the frame.
        let frame = unsafe {
            std::slice::from_raw_parts_mut(
                self.area.ptr.as_ptr().add(base as usize),
                FRAME_SIZE as usize,
            )
        };
        Ok((base, frame))
    }
}

impl XskPair {
    /// Read access to the frame that contains `addr`.
    ///
    /// # Safety
    /// The caller must own the frame (see [`XskPair::frame_mut`]).
    pub unsafe fn frame_ref(&self, addr: u64) -> anyhow::Result<&[u8]> {
        let base = addr & !u64::from(FRAME_SIZE - 1);
        if base + u64::from(FRAME_SIZE) > self.area.len as u64 {
            bail!("descriptor address {addr:#x} outside the UMEM");
        }
        // SAFETY: in bounds (checked above); the caller owns the frame.
        Ok(unsafe {
            std::slice::from_raw_parts(
                self.area.ptr.as_ptr().add(base as usize),
                FRAME_SIZE as usize,
            )
        })
    }
}

/// `XDP_MAX_TX_SKB_BUDGET` (Linux 6.17): how many frames one sendto() transmits in copy mode.
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;

/// Lets one wake-up (sendto) transmit up to `budget` frames in copy mode instead of the
/// kernel's default 32. Older kernels refuse the option: then it stays 32 and the worker
/// simply kicks more often. Returns the budget set, if any.
fn raise_tx_budget(fd: RawFd, budget: u32) -> Option<u32> {
    // SAFETY: a u32 option value of the declared length, on our own socket.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            XDP_MAX_TX_SKB_BUDGET,
            (&budget as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    (rc == 0).then_some(budget)
}

/// Chunk base addresses of the frames not lent to the kernel.
pub struct FramePool {
    free: Vec<u64>,
}

impl FramePool {
    pub fn all() -> Self {
        FramePool {
            free: (0..FRAME_COUNT)
                .map(|i| u64::from(i) * u64::from(FRAME_SIZE))
                .collect(),
        }
    }

    pub fn take(&mut self) -> Option<u64> {
        self.free.pop()
    }

    pub fn give(&mut self, addr: u64) {
        self.free.push(addr & !u64::from(FRAME_SIZE - 1));
    }

    pub fn len(&self) -> usize {
        self.free.len()
    }
}

/// Tops up `port`'s fill ring to `target` frames lent to the kernel; `lent` counts them (the
/// worker decrements it for every frame it receives).
pub fn refill(port: &mut Port, pool: &mut FramePool, lent: &mut u32, target: u32) {
    let want = target.saturating_sub(*lent).min(pool.len() as u32);
    if want == 0 {
        return;
    }
    let mut writer = port.device.fill(want);
    // No more frames taken than slots reserved: insert() takes an item before a slot.
    let slots = writer.capacity();
    let inserted = writer.insert((0..slots).map_while(|_| pool.take()));
    writer.commit();
    *lent += inserted;
}

/// Reaps transmitted frames back into the pool.
pub fn reap_completions(port: &mut Port, pool: &mut FramePool) -> u32 {
    let mut reader = port.device.complete(RING_SIZE);
    let mut n = 0;
    while let Some(addr) = reader.read() {
        pool.give(addr);
        n += 1;
    }
    reader.release();
    n
}
