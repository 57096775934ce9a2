//! A crypto worker: one thread that owns one receive queue's AF_XDP sockets on both sides
//! (one UMEM), with an `Arc` of every SA; there is one worker per queue, and the SAs' sequence
//! counters, replay windows and lifetime totals are shared between them (see `sa_table`).
//!
//! Frame path, top to bottom:
//! - WAN rx (XskJob::Decrypt): find the ESP header, open it with the inbound SA named in the
//!   metadata, check the inner packet against the SA's selectors; transmit it on the LAN
//!   socket from the same UMEM frame when the kernel's next hop for it is known (see
//!   `nexthop`), else hand it to the kernel to forward into the site (raw socket; the kernel
//!   resolves the LAN next hop, fragments, or answers with ICMP).
//! - LAN rx (XskJob::Encrypt): seal the inner packet with the outbound SA named in the
//!   metadata; with a next hop from XDP's FIB lookup, transmit it on the WAN socket from the
//!   same UMEM frame; without one, send it through the kernel, which resolves ARP.
//! - Completed transmissions return frames to the pool, which refills both fill rings.
//! - The router's own packets (tunnel TUN devices, `local_tx`): sealed like LAN traffic, sent
//!   through the kernel.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddrV4},
    ops::Range,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc::{Receiver, Sender, TryRecvError},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use vpn_common::tunnel::{XSK_META_LEN, XSK_META_MAGIC, XskJob, XskMeta};
use vpn_ebpf::{
    PacketBytes as _,
    locate::{esp_offset, ipv4_addresses, ipv4_offset},
    mss::clamp_ipv4,
};
use xdpilone::xdp::XdpDesc;

use super::{
    fragment,
    local_tx::{LocalFrame, LocalPort, LocalPorts, is_ipv4},
    nat::worker_path::{NatVerdict, WorkerNat},
    nexthop::NextHopCache,
    sa_table::{DropReason, Expiry, OutboundEntry, SaCounters, SaEntry, SaSnapshot, SaTable},
    xsk::{FILL_TARGET, FramePool, XskPair, reap_completions, refill},
};

const ETH_HLEN: usize = 14;
const RX_BATCH: u32 = 64;
/// Tries at queueing one batch on a full transmit ring before its frames count as dropped.
const TX_ATTEMPTS: usize = 4;
const POLL_TIMEOUT_MS: i32 = 20;
const REPORT_EVERY: Duration = Duration::from_millis(250);
const LOCAL_EVERY: u32 = 16;

/// Changes to the worker's SAs, sent by the control plane.
pub enum Control {
    /// Use `entry` for frames labelled `slot`; say so on `installed` (the control plane waits
    /// for every worker before it points a BPF map at the slot: make-before-break).
    Install {
        slot: u32,
        entry: Arc<SaEntry>,
        installed: Sender<()>,
    },
    Remove {
        slot: u32,
    },
    /// Translate decrypted traffic that matches a NAT rule before handing it to the kernel.
    Nat(Box<WorkerNat>),
    /// The tunnel devices to read the router's own packets from (replaces the previous set).
    LocalPorts(Vec<LocalPort>),
}

/// An SA reached a lifetime limit; sent to the control plane (which rekeys, or takes the SA
/// out of the maps at a hard limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LifetimeEvent {
    pub slot: u32,
    pub expiry: Expiry,
}

/// What a worker publishes for `status`; the agent publishes the sum over its workers, with
/// each worker's own report in `workers`.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct WorkerReport {
    /// The receive queue a worker serves (`None` in the sum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<u32>,
    pub decrypted: u64,
    pub encrypted: u64,
    /// Sent from the UMEM frame on an AF_XDP socket (sealed packets on the WAN, decrypted
    /// ones on the LAN).
    pub sent_xsk: u64,
    pub sent_kernel: u64,
    pub dropped: BTreeMap<String, u64>,
    pub sas: Vec<SaSnapshot>,
    /// The kernel's AF_XDP socket statistics, per side: frames lost because the worker's
    /// receive ring was full ("worker queue full") or it had lent no free frame, and more.
    #[serde(default)]
    pub sockets: BTreeMap<String, SocketStats>,
    /// SAs that reached a soft or hard lifetime limit, by kind.
    #[serde(default)]
    pub lifetime_events: BTreeMap<String, u64>,
    /// NAT of decrypted traffic (translated, new_flows, allocation_failed, ...).
    #[serde(default)]
    pub nat: BTreeMap<String, u64>,
    /// Each worker's own figures, by queue (in the sum only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerReport>,
    /// How the worker's loop ran: sleeps in poll(), receive batches and frames received,
    /// transmit kicks (sendto) and kernel sends (sendmmsg calls). Frames per batch and per
    /// sleep tell how much each system call is shared.
    #[serde(default)]
    pub loop_stats: LoopStats,
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct LoopStats {
    pub polls: u64,
    pub rx_batches: u64,
    pub rx_frames: u64,
    pub tx_kicks: u64,
    pub sendmmsg_calls: u64,
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct SocketStats {
    pub rx_dropped: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
}

pub struct Worker {
    xsk: XskPair,
    pool: FramePool,
    lent_wan: u32,
    lent_lan: u32,
    sas: SaTable,
    kernel: Socket,
    control: Receiver<Control>,
    events: Sender<LifetimeEvent>,
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<WorkerReport>>,
    counts: WorkerReport,
    rx_batch: Vec<XdpDesc>,
    tx_batch: Vec<XdpDesc>,
    /// Decrypted packets to transmit on the LAN socket.
    lan_tx_batch: Vec<XdpDesc>,
    /// LAN next hops from the kernel's tables; `None` if the resolver could not start (then
    /// every decrypted packet goes through the kernel).
    nexthops: Option<NextHopCache>,
    /// Frames (UMEM address) and the packet range in each to hand to the kernel.
    kernel_batch: Vec<(u64, std::ops::Range<usize>)>,
    nat: Option<Box<WorkerNat>>,
    local: LocalPorts,
}

enum Verdict {
    /// Transmit this descriptor on the WAN socket; the frame comes back through the
    /// completion ring.
    Transmit(XdpDesc),
    /// Transmit this descriptor on the LAN socket (likewise).
    TransmitLan(XdpDesc),
    /// Send this range of the frame through the kernel, then release the frame.
    ToKernel(std::ops::Range<usize>),
    /// Done with the frame (sent through the kernel, or dropped): back to the pool.
    Release,
}

impl Worker {
    /// A worker for receive queue `queue`, whose sockets `xsk` are bound to it.
    pub fn new(
        queue: u32,
        xsk: XskPair,
        control: Receiver<Control>,
        events: Sender<LifetimeEvent>,
        stop: Arc<AtomicBool>,
        report: Arc<Mutex<WorkerReport>>,
    ) -> anyhow::Result<Self> {
        // IPPROTO_RAW: send-only, we supply the IP header (IP_HDRINCL is implied).
        let kernel = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(libc::IPPROTO_RAW)),
        )
        .context("opening the raw socket for kernel-path sends")?;
        let nexthops = match NextHopCache::start(xsk.lan.ifindex) {
            Ok(cache) => Some(cache),
            Err(err) => {
                tracing::warn!(error = %err, "no LAN next-hop resolver: decrypted packets go through the kernel");
                None
            }
        };
        Ok(Worker {
            xsk,
            pool: FramePool::all(),
            lent_wan: 0,
            lent_lan: 0,
            sas: SaTable::default(),
            kernel,
            control,
            events,
            stop,
            report,
            counts: WorkerReport {
                queue: Some(queue),
                ..WorkerReport::default()
            },
            rx_batch: Vec::with_capacity(RX_BATCH as usize),
            tx_batch: Vec::with_capacity(RX_BATCH as usize),
            lan_tx_batch: Vec::with_capacity(RX_BATCH as usize),
            nexthops,
            kernel_batch: Vec::with_capacity(RX_BATCH as usize),
            nat: None,
            local: LocalPorts::default(),
        })
    }

    pub fn run(mut self) {
        let mut last_report = Instant::now();
        let fill_target = FILL_TARGET;
        let mut turn = 0u32;
        while !self.stop.load(Ordering::Relaxed) {
            self.apply_control();
            if let Some(nexthops) = self.nexthops.as_mut() {
                nexthops.update();
            }
            refill(
                &mut self.xsk.wan,
                &mut self.pool,
                &mut self.lent_wan,
                fill_target,
            );
            refill(
                &mut self.xsk.lan,
                &mut self.pool,
                &mut self.lent_lan,
                fill_target,
            );
            let mut work = self.receive(true) + self.receive(false);
            // The router's own packets are few: a read per device costs a system call, so
            // busy turns look only every LOCAL_EVERY turns.
            turn = turn.wrapping_add(1);
            if work == 0 || turn.is_multiple_of(LOCAL_EVERY) {
                work += self.receive_local();
            }
            work += reap_completions(&mut self.xsk.wan, &mut self.pool);
            work += reap_completions(&mut self.xsk.lan, &mut self.pool);
            if last_report.elapsed() >= REPORT_EVERY {
                self.publish();
                last_report = Instant::now();
            }
            if work == 0 {
                self.counts.loop_stats.polls += 1;
                self.wait_for_frames();
            }
        }
        self.publish();
    }

    fn apply_control(&mut self) {
        loop {
            match self.control.try_recv() {
                Ok(Control::Install {
                    slot,
                    entry,
                    installed,
                }) => {
                    self.sas.install(slot, entry);
                    let _ = installed.send(());
                }
                Ok(Control::Remove { slot }) => {
                    self.sas.remove(slot);
                }
                Ok(Control::Nat(nat)) => self.nat = Some(nat),
                Ok(Control::LocalPorts(ports)) => self.local.replace(ports),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }

    fn wait_for_frames(&self) {
        let mut fds: Vec<libc::pollfd> = [self.xsk.wan.fd(), self.xsk.lan.fd()]
            .into_iter()
            .chain(self.local.fds())
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: fds is a valid array of pollfd of the given length.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, POLL_TIMEOUT_MS) };
    }

    /// Seals what the router itself sent into the tunnel devices.
    fn receive_local(&mut self) -> u32 {
        let mut local = std::mem::take(&mut self.local);
        let read = local.drain(RX_BATCH, |frame| self.seal_local(frame));
        self.local = local;
        read
    }

    fn seal_local(&mut self, local: LocalFrame<'_>) {
        let LocalFrame {
            out_slot,
            frame,
            data,
            end,
        } = local;
        let Some(slot) = out_slot else {
            return self.count_drop(DropReason::TunnelDown);
        };
        if !is_ipv4(frame, data..end) {
            return self.count_drop(DropReason::NotIpv4);
        }
        match encrypt(
            &mut self.sas,
            frame,
            data,
            end,
            slot,
            &self.kernel,
            &self.events,
        ) {
            Ok(Sealed::InFrame(outer)) => match send_via_kernel(&self.kernel, &frame[outer]) {
                Ok(()) => {
                    self.counts.encrypted += 1;
                    self.counts.sent_kernel += 1;
                }
                Err(reason) => self.count_drop(reason),
            },
            Ok(Sealed::Fragments(n)) => {
                self.counts.encrypted += n;
                self.counts.sent_kernel += n;
            }
            Err(reason) => self.count_drop(reason),
        }
    }

    /// Drains up to a batch from one side's rx ring; transmissions and kernel sends of the
    /// batch go out together (one wake-up, one sendmmsg).
    fn receive(&mut self, wan: bool) -> u32 {
        let mut descs = std::mem::take(&mut self.rx_batch);
        descs.clear();
        {
            let port = if wan {
                &mut self.xsk.wan
            } else {
                &mut self.xsk.lan
            };
            let mut reader = port.rx.receive(RX_BATCH);
            while let Some(desc) = reader.read() {
                descs.push(desc);
            }
            reader.release();
        }
        let lent = if wan {
            &mut self.lent_wan
        } else {
            &mut self.lent_lan
        };
        *lent = lent.saturating_sub(descs.len() as u32);
        if !descs.is_empty() {
            self.counts.loop_stats.rx_batches += 1;
            self.counts.loop_stats.rx_frames += descs.len() as u64;
        }
        for desc in &descs {
            match self.handle(*desc) {
                Ok(Verdict::Transmit(tx)) => self.tx_batch.push(tx),
                Ok(Verdict::TransmitLan(tx)) => self.lan_tx_batch.push(tx),
                Ok(Verdict::ToKernel(range)) => self.kernel_batch.push((desc.addr, range)),
                Ok(Verdict::Release) => self.pool.give(desc.addr),
                Err(reason) => {
                    self.count_drop(reason);
                    self.pool.give(desc.addr);
                }
            }
        }
        self.flush_tx(true);
        self.flush_tx(false);
        self.flush_kernel();
        let n = descs.len() as u32;
        self.rx_batch = descs;
        n
    }

    fn count_drop(&mut self, reason: DropReason) {
        *self
            .counts
            .dropped
            .entry(reason.name().to_owned())
            .or_default() += 1;
    }

    /// Queues the batch of one side (`wan`: sealed packets; else decrypted ones on the LAN)
    /// on its transmit ring and kicks it.
    fn flush_tx(&mut self, wan: bool) {
        let batch = if wan {
            &mut self.tx_batch
        } else {
            &mut self.lan_tx_batch
        };
        if batch.is_empty() {
            return;
        }
        let batch = std::mem::take(batch);
        let mut queued = 0;
        // xdpilone reserves from its cached view of the kernel's consumer head while that shows
        // one free slot, so a batch may get fewer slots than the ring has (every 2048 frames,
        // when the cached view runs out); the next attempt refreshes the view.
        for _ in 0..TX_ATTEMPTS {
            {
                let rest = &batch[queued..];
                let port = if wan {
                    &mut self.xsk.wan
                } else {
                    &mut self.xsk.lan
                };
                let mut writer = port.tx.transmit(rest.len() as u32);
                queued += writer.insert(rest.iter().copied()) as usize;
                writer.commit();
            }
            self.kick_tx(wan);
            if queued == batch.len() {
                break;
            }
            let port = if wan {
                &mut self.xsk.wan
            } else {
                &mut self.xsk.lan
            };
            reap_completions(port, &mut self.pool);
        }
        self.counts.sent_xsk += queued as u64;
        if queued < batch.len() {
            tracing::debug!(
                unsent = batch.len() - queued,
                side = if wan { "wan" } else { "lan" },
                "transmit ring full"
            );
        }
        for desc in &batch[queued..] {
            self.count_drop(DropReason::TxFull);
            self.pool.give(desc.addr);
        }
        let mut batch = batch;
        batch.clear();
        if wan {
            self.tx_batch = batch;
        } else {
            self.lan_tx_batch = batch;
        }
    }

    /// Copy mode transmits only inside sendto, at most 32 frames per call (the kernel's
    /// TX_BATCH_SIZE) unless the socket's budget was raised (`XDP_MAX_TX_SKB_BUDGET`, see
    /// `xsk`), so kick until the ring is drained (bounded, in case the link stalls).
    fn kick_tx(&mut self, wan: bool) {
        let port = if wan { &self.xsk.wan } else { &self.xsk.lan };
        for _ in 0..(RX_BATCH / 16 + 2) {
            port.tx.wake();
            self.counts.loop_stats.tx_kicks += 1;
            if port.tx.pending() == 0 {
                break;
            }
        }
    }

    fn flush_kernel(&mut self) {
        if self.kernel_batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.kernel_batch);
        let mut packets: Vec<&[u8]> = Vec::with_capacity(batch.len());
        for (addr, range) in &batch {
            // SAFETY: these frames were received and are still owned (released below).
            match unsafe { self.xsk.frame_ref(*addr) } {
                Ok(frame) => packets.push(&frame[range.clone()]),
                Err(_) => packets.push(&[]),
            }
        }
        let sent = send_batch_via_kernel(
            &self.kernel,
            &packets,
            &mut self.counts.loop_stats.sendmmsg_calls,
        );
        drop(packets);
        self.counts.sent_kernel += sent as u64;
        for _ in sent..batch.len() {
            self.count_drop(DropReason::KernelSend);
        }
        for (addr, _) in &batch {
            self.pool.give(*addr);
        }
        self.kernel_batch = batch;
        self.kernel_batch.clear();
    }

    fn handle(&mut self, desc: XdpDesc) -> Result<Verdict, DropReason> {
        let wan_ifindex = self.xsk.wan.ifindex;
        // SAFETY: the frame was just received: we own it until it is released or transmitted.
        let (base, frame) =
            unsafe { self.xsk.frame_mut(desc.addr) }.map_err(|_| DropReason::Malformed)?;
        let data = (desc.addr - base) as usize;
        let end = data + desc.len as usize;
        if data < XSK_META_LEN || end > frame.len() {
            return Err(DropReason::Malformed);
        }
        // SAFETY: XskMeta is plain old data; the range is inside the frame (checked above).
        let meta: XskMeta =
            unsafe { std::ptr::read_unaligned(frame[data - XSK_META_LEN..].as_ptr().cast()) };
        if meta.magic != XSK_META_MAGIC {
            return Err(DropReason::Malformed);
        }
        if meta.job == XskJob::Decrypt as u8 {
            let inner = decrypt(
                &mut self.sas,
                &mut frame[..end],
                data,
                meta.slot,
                &self.events,
            )?;
            self.counts.decrypted += 1;
            if let Some(nat) = self.nat.as_mut()
                && nat.outbound(&mut frame[inner.clone()]) == NatVerdict::Drop
            {
                return Ok(Verdict::Release);
            }
            // Straight out of the LAN socket when the kernel's next hop is known and the
            // packet fits the link; the kernel otherwise.
            let ip = &frame[inner.clone()];
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            if let Some(hop) = self
                .nexthops
                .as_mut()
                .and_then(|n| n.lookup(dst, Instant::now))
                && inner.len() <= usize::from(hop.mtu)
                && inner.start >= data + ETH_HLEN
            {
                let eth = inner.start - ETH_HLEN;
                frame[eth..eth + 6].copy_from_slice(&hop.dst_mac);
                frame[eth + 6..eth + 12].copy_from_slice(&hop.src_mac);
                frame[eth + 12..eth + 14].copy_from_slice(&0x0800u16.to_be_bytes());
                return Ok(Verdict::TransmitLan(XdpDesc {
                    addr: base + eth as u64,
                    len: (inner.end - eth) as u32,
                    options: 0,
                }));
            }
            Ok(Verdict::ToKernel(inner))
        } else if meta.job == XskJob::Encrypt as u8 {
            let outer = match encrypt(
                &mut self.sas,
                frame,
                data,
                end,
                meta.slot,
                &self.kernel,
                &self.events,
            )? {
                Sealed::InFrame(outer) => outer,
                Sealed::Fragments(n) => {
                    self.counts.encrypted += n;
                    self.counts.sent_kernel += n;
                    return Ok(Verdict::Release);
                }
            };
            self.counts.encrypted += 1;
            if meta.fib_ok == 1 && meta.ifindex == wan_ifindex && outer.start >= ETH_HLEN {
                let eth = outer.start - ETH_HLEN;
                frame[eth..eth + 6].copy_from_slice(&meta.dst_mac);
                frame[eth + 6..eth + 12].copy_from_slice(&meta.src_mac);
                frame[eth + 12..eth + 14].copy_from_slice(&0x0800u16.to_be_bytes());
                Ok(Verdict::Transmit(XdpDesc {
                    addr: base + eth as u64,
                    len: (outer.end - eth) as u32,
                    options: 0,
                }))
            } else {
                Ok(Verdict::ToKernel(outer))
            }
        } else {
            Err(DropReason::Malformed)
        }
    }

    fn publish(&mut self) {
        for (slot, expiry) in self.sas.check_time(Instant::now()) {
            let _ = self.events.send(LifetimeEvent { slot, expiry });
        }
        self.counts.sas = self.sas.snapshot();
        if let Some(nat) = &self.nat {
            let c = nat.counts;
            self.counts.nat = [
                ("translated", c.translated),
                ("new_flows", c.new_flows),
                ("allocation_failed", c.allocation_failed),
                ("untranslated", c.untranslated),
                ("fragment_dropped", c.fragment_dropped),
                ("malformed", c.malformed),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        }
        for (side, port) in [("wan", &self.xsk.wan), ("lan", &self.xsk.lan)] {
            if let Ok(stats) = port.user.statistics_v2() {
                self.counts.sockets.insert(
                    side.to_owned(),
                    SocketStats {
                        rx_dropped: stats.rx_dropped,
                        rx_ring_full: stats.rx_ring_full,
                        rx_fill_ring_empty: stats.rx_fill_ring_empty_descs,
                        rx_invalid_descs: stats.rx_invalid_descs,
                        tx_invalid_descs: stats.tx_invalid_descs,
                    },
                );
            }
        }
        if let Ok(mut report) = self.report.lock() {
            *report = self.counts.clone();
        }
    }
}

/// Opens the ESP packet in `frame[data..]`; returns the inner IPv4 packet's range.
fn decrypt(
    sas: &mut SaTable,
    frame: &mut [u8],
    data: usize,
    slot: u32,
    events: &Sender<LifetimeEvent>,
) -> Result<Range<usize>, DropReason> {
    let packet = &frame[data..];
    let class = vpn_ebpf::classify(packet);
    let esp_start = esp_offset(packet, class).ok_or(DropReason::Malformed)?;
    let l3 = ipv4_offset(packet).ok_or(DropReason::Malformed)?;
    let total_len = usize::from(packet.be16_at(l3 + 2).ok_or(DropReason::Malformed)?);
    let esp = data + esp_start..data + l3 + total_len;
    let (sa, counters) = sas.inbound(slot).ok_or(DropReason::UnknownSa)?;
    if sa.usage.hard_reached() {
        return Err(DropReason::SaExpired);
    }
    let (inner, next_header) = sa.esp.open(frame, esp)?;
    if next_header != 4 || inner.len() < 20 {
        return Err(DropReason::NotIpv4);
    }
    let ip = &frame[inner.clone()];
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    if !sa.selectors.admits_inbound(src, dst) {
        return Err(DropReason::SelectorMismatch);
    }
    if sa.mss != 0 {
        clamp_ipv4(&mut frame[inner.clone()], 0, sa.mss);
    }
    counters.packets += 1;
    counters.bytes += inner.len() as u64;
    sa.usage.add(inner.len() as u64);
    if let Some(expiry) = sa.usage.check(Instant::now()) {
        let _ = events.send(LifetimeEvent { slot, expiry });
    }
    Ok(inner)
}

enum Sealed {
    /// The outer packet, in the frame.
    InFrame(Range<usize>),
    /// The inner packet was too big: this many fragments were sealed and sent via the kernel.
    Fragments(u64),
}

/// Seals the inner IPv4 packet of the frame at `frame[data..end]`; returns the outer packet's
/// range (IPv4 header onwards), or handles a packet above the tunnel MTU (see `fragment`).
fn encrypt(
    sas: &mut SaTable,
    frame: &mut [u8],
    data: usize,
    end: usize,
    slot: u32,
    kernel: &Socket,
    events: &Sender<LifetimeEvent>,
) -> Result<Sealed, DropReason> {
    let packet = &frame[data..end];
    let l3 = ipv4_offset(packet).ok_or(DropReason::Malformed)?;
    // Checks version, header and total length against the frame.
    ipv4_addresses(packet, l3).ok_or(DropReason::Malformed)?;
    let total_len = usize::from(packet.be16_at(l3 + 2).ok_or(DropReason::Malformed)?);
    let inner = data + l3..data + l3 + total_len;
    let (sa, counters) = sas.outbound(slot).ok_or(DropReason::UnknownSa)?;
    if sa.usage.hard_reached() {
        return Err(DropReason::SaExpired);
    }
    let sealed = if inner.len() > usize::from(sa.mtu) {
        seal_oversized(sa, counters, &frame[inner], kernel)
    } else {
        sa.esp.seal(frame, inner.clone()).map(|outer| {
            counters.packets += 1;
            counters.bytes += inner.len() as u64;
            sa.usage.add(inner.len() as u64);
            Sealed::InFrame(outer)
        })
    };
    let expiry = match &sealed {
        // Out of sequence numbers (RFC 4303 3.3.3): the SA must not send again.
        Err(DropReason::Esp("seq_exhausted")) => sa.usage.reach_hard().then_some(Expiry::Hard),
        _ => sa.usage.check(Instant::now()),
    };
    if let Some(expiry) = expiry {
        let _ = events.send(LifetimeEvent { slot, expiry });
    }
    sealed
}

/// Headroom for the outer headers when sealing outside a UMEM frame.
const SCRATCH_FRONT: usize = 64;
/// Room for padding, trailer and ICV.
const SCRATCH_BACK: usize = 64;

fn seal_oversized(
    sa: &OutboundEntry,
    counters: &mut SaCounters,
    inner: &[u8],
    kernel: &Socket,
) -> Result<Sealed, DropReason> {
    if fragment::dont_fragment(inner) {
        let icmp =
            fragment::frag_needed(sa.local_address, inner, sa.mtu).ok_or(DropReason::Malformed)?;
        send_via_kernel(kernel, &icmp)?;
        return Err(DropReason::TooBig);
    }
    let fragments =
        fragment::fragment_ipv4(inner, usize::from(sa.mtu)).ok_or(DropReason::Malformed)?;
    let mut sent = 0;
    for piece in fragments {
        let mut scratch = vec![0u8; SCRATCH_FRONT + piece.len() + SCRATCH_BACK];
        scratch[SCRATCH_FRONT..SCRATCH_FRONT + piece.len()].copy_from_slice(&piece);
        let outer = sa
            .esp
            .seal(&mut scratch, SCRATCH_FRONT..SCRATCH_FRONT + piece.len())?;
        send_via_kernel(kernel, &scratch[outer])?;
        counters.packets += 1;
        counters.bytes += piece.len() as u64;
        sa.usage.add(piece.len() as u64);
        sent += 1;
    }
    Ok(Sealed::Fragments(sent))
}

/// Sends a complete IPv4 packet through the kernel's routing (and neighbour resolution).
fn send_via_kernel(socket: &Socket, packet: &[u8]) -> Result<(), DropReason> {
    if packet.len() < 20 || packet[0] >> 4 != 4 {
        return Err(DropReason::Malformed);
    }
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    let addr = SockAddr::from(SocketAddrV4::new(dst, 0));
    socket
        .send_to(packet, &addr)
        .map(|_| ())
        .map_err(|_| DropReason::KernelSend)
}

/// Sends complete IPv4 packets through the kernel with as few sendmmsg calls as possible;
/// returns how many were sent.
fn send_batch_via_kernel(socket: &Socket, packets: &[&[u8]], calls: &mut u64) -> usize {
    use std::os::fd::AsRawFd as _;
    let mut addrs: Vec<libc::sockaddr_in> = Vec::with_capacity(packets.len());
    let mut iovs: Vec<libc::iovec> = Vec::with_capacity(packets.len());
    for packet in packets {
        let dst = if packet.len() >= 20 && packet[0] >> 4 == 4 {
            [packet[16], packet[17], packet[18], packet[19]]
        } else {
            [0; 4]
        };
        addrs.push(libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(dst),
            },
            sin_zero: [0; 8],
        });
        iovs.push(libc::iovec {
            iov_base: packet.as_ptr() as *mut libc::c_void,
            iov_len: packet.len(),
        });
    }
    let mut msgs: Vec<libc::mmsghdr> = (0..packets.len())
        .map(|i| {
            // SAFETY: all-zero is a valid msghdr; the pointers set below outlive the call.
            let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
            hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_in).cast();
            hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            hdr.msg_iov = &mut iovs[i];
            hdr.msg_iovlen = 1;
            libc::mmsghdr {
                msg_hdr: hdr,
                msg_len: 0,
            }
        })
        .collect();
    let (mut next, mut failed) = (0, 0);
    while next < msgs.len() {
        *calls += 1;
        // SAFETY: msgs[next..] are valid mmsghdr whose buffers live until the call returns.
        let n = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                msgs[next..].as_mut_ptr(),
                (msgs.len() - next) as libc::c_uint,
                0,
            )
        };
        match n {
            // The kernel refused the first remaining packet (no route, say): skip it, go on.
            n if n < 0 => {
                failed += 1;
                next += 1;
            }
            0 => {
                failed += msgs.len() - next;
                break;
            }
            n => next += n as usize,
        }
    }
    packets.len() - failed
}
