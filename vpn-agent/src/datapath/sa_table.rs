//! The workers' SAs: ESP state (keys, sequence counter, replay window) by slot, plus what a
//! worker checks around the transform (selectors) and counts.
//!
//! Slots are chosen by the control plane and written into the BPF maps (inbound SA map value,
//! tunnel array value), so the XDP program tells the worker which SA a frame belongs to.
//!
//! With one worker per receive queue, an SA is used by every worker at once: the control plane
//! builds one [`SaEntry`] and hands each worker an `Arc` of it. What must be per SA, not per
//! queue, lives in the entry and is safe to share: the outbound sequence counter and the
//! inbound replay window (in `vpn-esp`: RFC 4303 3.3.3 and 3.4.3), and the lifetime totals
//! ([`Usage`], RFC 4301 4.4.2.1), which are atomics. Each worker keeps its own packet and byte
//! counters beside its `Arc` ([`SaTable`]), so the hot path writes no shared counter unless the
//! SA has a byte or packet limit; `status` adds them up.

use std::{
    ops::Range,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use ipnet::Ipv4Net;

/// Why the worker dropped a frame; each has its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// No SA in the slot the metadata names (removed meanwhile).
    UnknownSa,
    /// Headers too short for the lengths they claim, or no metadata.
    Malformed,
    /// The ESP transform refused the packet; the name says why (bad ICV, replay, ...).
    Esp(&'static str),
    /// The decrypted packet's addresses are outside the SA's traffic selectors.
    SelectorMismatch,
    /// The decrypted payload is not IPv4 (next header not 4).
    NotIpv4,
    /// The transmit ring was full.
    TxFull,
    /// Sending through the kernel failed.
    KernelSend,
    /// Larger than the tunnel MTU with DF set: answered with ICMP "fragmentation needed".
    TooBig,
    /// The SA reached a hard lifetime limit (or its sequence numbers ran out).
    SaExpired,
    /// The router's own packet for a tunnel that is down.
    TunnelDown,
}

impl DropReason {
    pub fn name(self) -> &'static str {
        match self {
            DropReason::UnknownSa => "unknown_sa",
            DropReason::Malformed => "malformed",
            DropReason::Esp(reason) => reason,
            DropReason::SelectorMismatch => "selector_mismatch",
            DropReason::NotIpv4 => "not_ipv4",
            DropReason::TxFull => "tx_full",
            DropReason::KernelSend => "kernel_send_failed",
            DropReason::TooBig => "too_big",
            DropReason::SaExpired => "sa_expired",
            DropReason::TunnelDown => "tunnel_down",
        }
    }
}

/// Outbound ESP: seals an inner IPv4 packet in place into a complete outer IPv4 packet. Shared
/// by all workers: every call takes its own sequence number.
pub trait EspSeal: Send + Sync {
    /// `inner` is the inner packet's range in `frame`; the outer packet may grow into the bytes
    /// before and after it. Returns the outer packet's range.
    fn seal(&self, frame: &mut [u8], inner: Range<usize>) -> Result<Range<usize>, DropReason>;
}

/// Inbound ESP: verifies and decrypts in place. Shared by all workers, with one replay window.
pub trait EspOpen: Send + Sync {
    /// `esp` spans the ESP packet from its SPI to the end of its ICV. Returns the inner
    /// packet's range and its next-header value.
    fn open(&self, frame: &mut [u8], esp: Range<usize>) -> Result<(Range<usize>, u8), DropReason>;
}

/// Traffic selectors as prefix lists; an empty list matches every address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selectors {
    pub local: Vec<Ipv4Net>,
    pub remote: Vec<Ipv4Net>,
}

impl Selectors {
    fn matches(list: &[Ipv4Net], addr: std::net::Ipv4Addr) -> bool {
        list.is_empty() || list.iter().any(|net| net.contains(&addr))
    }

    /// Whether a packet from `src` to `dst` arriving from the peer fits (RFC 4301 5.2: the
    /// inner header must match the SA's selectors, else drop).
    pub fn admits_inbound(&self, src: std::net::Ipv4Addr, dst: std::net::Ipv4Addr) -> bool {
        Self::matches(&self.remote, src) && Self::matches(&self.local, dst)
    }
}

/// Byte, packet and time limits of an SA (RFC 4301 section 4.4.2.1); `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub bytes: Option<u64>,
    pub packets: Option<u64>,
    pub time: Option<std::time::Duration>,
}

impl Limits {
    fn counts_volume(&self) -> bool {
        self.bytes.is_some() || self.packets.is_some()
    }

    fn reached(&self, counters: &SaCounters, age: std::time::Duration) -> bool {
        self.bytes.is_some_and(|b| counters.bytes >= b)
            || self.packets.is_some_and(|p| counters.packets >= p)
            || self.time.is_some_and(|t| age >= t)
    }
}

/// Soft limits tell the control plane to rekey; at a hard limit the SA carries nothing more.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lifetime {
    pub soft: Limits,
    pub hard: Limits,
}

/// Which limit an SA reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    Soft,
    Hard,
}

/// Where an SA stands against its lifetime, across all workers.
#[derive(Debug)]
pub struct Usage {
    pub lifetime: Lifetime,
    pub installed: std::time::Instant,
    /// Totals over every worker; kept only when a byte or packet limit needs them.
    packets: AtomicU64,
    bytes: AtomicU64,
    volume: bool,
    soft_reached: AtomicBool,
    hard_reached: AtomicBool,
}

impl Usage {
    pub fn new(lifetime: Lifetime, now: std::time::Instant) -> Self {
        Usage {
            lifetime,
            installed: now,
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            volume: lifetime.soft.counts_volume() || lifetime.hard.counts_volume(),
            soft_reached: AtomicBool::new(false),
            hard_reached: AtomicBool::new(false),
        }
    }

    /// One packet of `bytes` went through the SA (on any worker).
    pub fn add(&self, bytes: u64) {
        if self.volume {
            self.packets.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// The totals over every worker (zero without a byte or packet limit).
    pub fn totals(&self) -> SaCounters {
        SaCounters {
            packets: self.packets.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    pub fn hard_reached(&self) -> bool {
        self.hard_reached.load(Ordering::Relaxed)
    }

    /// Marks the hard limit reached (sequence numbers ran out); true if it was not already.
    pub fn reach_hard(&self) -> bool {
        self.soft_reached.store(true, Ordering::Relaxed);
        !self.hard_reached.swap(true, Ordering::Relaxed)
    }

    /// The limit newly reached at `now`, if any: each is reported once, by whichever worker
    /// sees it first.
    pub fn check(&self, now: std::time::Instant) -> Option<Expiry> {
        let age = now.saturating_duration_since(self.installed);
        let totals = self.totals();
        if !self.hard_reached() && self.lifetime.hard.reached(&totals, age) {
            return self.reach_hard().then_some(Expiry::Hard);
        }
        if !self.soft_reached.load(Ordering::Relaxed)
            && self.lifetime.soft.reached(&totals, age)
            && !self.soft_reached.swap(true, Ordering::Relaxed)
        {
            return Some(Expiry::Soft);
        }
        None
    }
}

/// Packets and bytes through one SA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaCounters {
    pub packets: u64,
    pub bytes: u64,
}

pub struct InboundEntry {
    pub name: String,
    pub spi: u32,
    pub esp: Box<dyn EspOpen>,
    pub selectors: Selectors,
    /// TCP MSS that decrypted SYNs are clamped to (the peer may not clamp).
    pub mss: u16,
    pub usage: Usage,
}

pub struct OutboundEntry {
    pub name: String,
    pub spi: u32,
    pub esp: Box<dyn EspSeal>,
    /// Our outer address: the source of ICMP errors about the tunnel.
    pub local_address: std::net::Ipv4Addr,
    /// Largest inner packet sealed whole; bigger ones are fragmented first, or refused with
    /// ICMP "fragmentation needed" when DF is set.
    pub mtu: u16,
    pub usage: Usage,
}

pub enum SaEntry {
    Inbound(InboundEntry),
    Outbound(OutboundEntry),
}

impl SaEntry {
    fn usage(&self) -> &Usage {
        match self {
            SaEntry::Inbound(e) => &e.usage,
            SaEntry::Outbound(e) => &e.usage,
        }
    }
}

/// One worker's view of an SA: the shared entry and this worker's counters.
struct Held {
    entry: Arc<SaEntry>,
    counters: SaCounters,
}

/// One worker's SAs by slot.
#[derive(Default)]
pub struct SaTable {
    slots: Vec<Option<Held>>,
}

impl SaTable {
    pub fn install(&mut self, slot: u32, entry: Arc<SaEntry>) {
        let slot = slot as usize;
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        self.slots[slot] = Some(Held {
            entry,
            counters: SaCounters::default(),
        });
    }

    pub fn remove(&mut self, slot: u32) -> Option<Arc<SaEntry>> {
        self.slots
            .get_mut(slot as usize)
            .and_then(Option::take)
            .map(|held| held.entry)
    }

    /// The inbound SA in `slot` and this worker's counters for it.
    pub fn inbound(&mut self, slot: u32) -> Option<(&InboundEntry, &mut SaCounters)> {
        let held = self.slots.get_mut(slot as usize)?.as_mut()?;
        match &*held.entry {
            SaEntry::Inbound(entry) => Some((entry, &mut held.counters)),
            SaEntry::Outbound(_) => None,
        }
    }

    /// The outbound SA in `slot` and this worker's counters for it.
    pub fn outbound(&mut self, slot: u32) -> Option<(&OutboundEntry, &mut SaCounters)> {
        let held = self.slots.get_mut(slot as usize)?.as_mut()?;
        match &*held.entry {
            SaEntry::Outbound(entry) => Some((entry, &mut held.counters)),
            SaEntry::Inbound(_) => None,
        }
    }

    /// Checks every SA's time limits; returns the limits newly reached, by slot.
    pub fn check_time(&self, now: std::time::Instant) -> Vec<(u32, Expiry)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, held)| {
                let expiry = held.as_ref()?.entry.usage().check(now)?;
                Some((slot as u32, expiry))
            })
            .collect()
    }

    /// (name, direction, spi, counters) of every SA as this worker carried it, for status.
    pub fn snapshot(&self) -> Vec<SaSnapshot> {
        self.slots
            .iter()
            .flatten()
            .map(|held| {
                let (tunnel, direction, spi) = match &*held.entry {
                    SaEntry::Inbound(e) => (&e.name, "in", e.spi),
                    SaEntry::Outbound(e) => (&e.name, "out", e.spi),
                };
                SaSnapshot {
                    tunnel: tunnel.clone(),
                    direction: direction.into(),
                    spi,
                    packets: held.counters.packets,
                    bytes: held.counters.bytes,
                }
            })
            .collect()
    }
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct SaSnapshot {
    pub tunnel: String,
    pub direction: String,
    pub spi: u32,
    pub packets: u64,
    pub bytes: u64,
}
