//! The worker's SAs: ESP state (keys, sequence counter, replay window) by slot, plus what the
//! worker checks around the transform (selectors) and counts.
//!
//! Slots are chosen by the control plane and written into the BPF maps (inbound SA map value,
//! tunnel array value), so the XDP program tells the worker which SA a frame belongs to.

use std::ops::Range;

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

/// Outbound ESP: seals an inner IPv4 packet in place into a complete outer IPv4 packet.
pub trait EspSeal: Send {
    /// `inner` is the inner packet's range in `frame`; the outer packet may grow into the bytes
    /// before and after it. Returns the outer packet's range.
    fn seal(&mut self, frame: &mut [u8], inner: Range<usize>) -> Result<Range<usize>, DropReason>;
}

/// Inbound ESP: verifies and decrypts in place.
pub trait EspOpen: Send {
    /// `esp` spans the ESP packet from its SPI to the end of its ICV. Returns the inner
    /// packet's range and its next-header value.
    fn open(
        &mut self,
        frame: &mut [u8],
        esp: Range<usize>,
    ) -> Result<(Range<usize>, u8), DropReason>;
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

/// Where an SA stands against its lifetime.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub lifetime: Lifetime,
    pub installed: std::time::Instant,
    pub soft_reached: bool,
    pub hard_reached: bool,
}

impl Usage {
    pub fn new(lifetime: Lifetime, now: std::time::Instant) -> Self {
        Usage {
            lifetime,
            installed: now,
            soft_reached: false,
            hard_reached: false,
        }
    }

    /// The limit newly reached with these counters at `now`, if any (each is reported once).
    pub fn check(&mut self, counters: &SaCounters, now: std::time::Instant) -> Option<Expiry> {
        let age = now.saturating_duration_since(self.installed);
        if !self.hard_reached && self.lifetime.hard.reached(counters, age) {
            self.hard_reached = true;
            self.soft_reached = true;
            return Some(Expiry::Hard);
        }
        if !self.soft_reached && self.lifetime.soft.reached(counters, age) {
            self.soft_reached = true;
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
    pub counters: SaCounters,
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
    pub counters: SaCounters,
    pub usage: Usage,
}

pub enum SaEntry {
    Inbound(InboundEntry),
    Outbound(OutboundEntry),
}

/// SAs by slot.
#[derive(Default)]
pub struct SaTable {
    slots: Vec<Option<SaEntry>>,
}

impl SaTable {
    pub fn install(&mut self, slot: u32, entry: SaEntry) {
        let slot = slot as usize;
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        self.slots[slot] = Some(entry);
    }

    pub fn remove(&mut self, slot: u32) -> Option<SaEntry> {
        self.slots.get_mut(slot as usize).and_then(Option::take)
    }

    pub fn inbound(&mut self, slot: u32) -> Option<&mut InboundEntry> {
        match self.slots.get_mut(slot as usize) {
            Some(Some(SaEntry::Inbound(entry))) => Some(entry),
            _ => None,
        }
    }

    pub fn outbound(&mut self, slot: u32) -> Option<&mut OutboundEntry> {
        match self.slots.get_mut(slot as usize) {
            Some(Some(SaEntry::Outbound(entry))) => Some(entry),
            _ => None,
        }
    }

    /// Checks every SA's time limits; returns the limits newly reached, by slot.
    pub fn check_time(&mut self, now: std::time::Instant) -> Vec<(u32, Expiry)> {
        let mut reached = Vec::new();
        for (slot, entry) in self.slots.iter_mut().enumerate() {
            let expiry = match entry {
                Some(SaEntry::Inbound(e)) => e.usage.check(&e.counters, now),
                Some(SaEntry::Outbound(e)) => e.usage.check(&e.counters, now),
                None => None,
            };
            if let Some(expiry) = expiry {
                reached.push((slot as u32, expiry));
            }
        }
        reached
    }

    /// (name, direction, spi, counters) of every SA, for status.
    pub fn snapshot(&self) -> Vec<SaSnapshot> {
        self.slots
            .iter()
            .flatten()
            .map(|entry| match entry {
                SaEntry::Inbound(e) => SaSnapshot {
                    tunnel: e.name.clone(),
                    direction: "in".into(),
                    spi: e.spi,
                    packets: e.counters.packets,
                    bytes: e.counters.bytes,
                },
                SaEntry::Outbound(e) => SaSnapshot {
                    tunnel: e.name.clone(),
                    direction: "out".into(),
                    spi: e.spi,
                    packets: e.counters.packets,
                    bytes: e.counters.bytes,
                },
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
