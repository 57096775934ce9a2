//! Source translation of decrypted tunnel traffic (seed 002: the office behind a tunnel
//! reaches peered VPCs through the LAN). The crypto worker hands decrypted packets to the
//! kernel through a raw socket, so they never cross XDP ingress; the worker applies the same
//! translation (`vpn_ebpf::nat`) and the same tables (the pinned maps) before that send.
//! Replies come back on the out interface, where XDP translates them back and, on the LAN,
//! sends them into the tunnel.
//!
//! One difference from the XDP path: the FIB is not asked which interface the kernel will use;
//! the rule's destination prefixes are trusted to lie behind its out interface.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use aya::maps::{Array, HashMap, Map, MapData};
use vpn_common::{
    names,
    nat::{FlowKey, MAX_NAT_RULES, NatMapping, NatRuleEntry, NatSettings, flow_flags},
};
use vpn_ebpf::nat::{
    Endpoint, PORT_PROBES, Parsed, Side, Transport, flow_hash, parse, port_candidate, rewrite,
    rewrite_icmp_error, rule_matches, translated_key,
};

use super::monotonic_ns;
use crate::datapath::loader::PINNED_MAPS;

/// Rules and settings are re-read this often (they change with interface addresses).
const REFRESH: Duration = Duration::from_secs(1);
const BPF_NOEXIST: u64 = 1;

/// What to do with the packet after translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatVerdict {
    /// Send it (translated, or not subject to NAT).
    Send,
    /// Drop it (a fragment matching a rule, or no free port): counted.
    Drop,
}

/// The worker's NAT counters (for `status`, in the worker's report).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerNatCounts {
    pub translated: u64,
    pub new_flows: u64,
    pub allocation_failed: u64,
    pub untranslated: u64,
    pub fragment_dropped: u64,
    pub malformed: u64,
}

/// The NAT tables as the crypto worker uses them.
pub struct WorkerNat {
    rules: Array<MapData, NatRuleEntry>,
    settings: Array<MapData, NatSettings>,
    reserved: Array<MapData, u64>,
    out: HashMap<MapData, FlowKey, NatMapping>,
    inbound: HashMap<MapData, FlowKey, NatMapping>,
    cached_rules: Vec<NatRuleEntry>,
    cached_settings: NatSettings,
    refreshed: Option<Instant>,
    pub counts: WorkerNatCounts,
}

fn open<T: TryFrom<Map, Error = aya::maps::MapError>>(
    pin_dir: &Path,
    name: &str,
) -> anyhow::Result<T> {
    let file = PINNED_MAPS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, file)| *file)
        .with_context(|| format!("{name} is not pinned"))?;
    let path = pin_dir.join(file);
    let data = MapData::from_pin(&path)
        .with_context(|| format!("opening pinned map {}", path.display()))?;
    let map = Map::from_map_data(data)?;
    T::try_from(map).with_context(|| format!("map {name} has an unexpected type"))
}

impl WorkerNat {
    /// Opens the pinned NAT maps of the datapath pinned in `pin_dir`.
    pub fn open(pin_dir: &Path) -> anyhow::Result<Self> {
        Ok(WorkerNat {
            rules: open(pin_dir, names::NAT_RULES)?,
            settings: open(pin_dir, names::NAT_SETTINGS)?,
            reserved: open(pin_dir, names::NAT_RESERVED_PORTS)?,
            out: open(pin_dir, names::NAT_OUT)?,
            inbound: open(pin_dir, names::NAT_IN)?,
            cached_rules: Vec::new(),
            cached_settings: NatSettings::default(),
            refreshed: None,
            counts: WorkerNatCounts::default(),
        })
    }

    /// Translates the source of `packet` (an IPv4 packet, header at offset 0) if a rule
    /// matches it.
    pub fn outbound(&mut self, packet: &mut [u8]) -> NatVerdict {
        self.refresh();
        let Some(parsed) = parse(packet, 0) else {
            return NatVerdict::Send;
        };
        let Some(rule) = self
            .cached_rules
            .iter()
            .find(|r| rule_matches(r, parsed.ip.src, parsed.ip.dst))
            .copied()
        else {
            return NatVerdict::Send;
        };
        if parsed.ip.fragment {
            self.counts.fragment_dropped += 1;
            return NatVerdict::Drop;
        }
        let translatable = match parsed.transport {
            Transport::Tcp | Transport::Udp => true,
            Transport::IcmpEchoRequest => true,
            Transport::IcmpEchoReply => false,
            Transport::IcmpError => {
                // An error about a reverse-translated packet: quote translated too (RFC 5508).
                let Ok(m) = self.out.get(&parsed.quoted.key.reversed(), 0) else {
                    self.counts.untranslated += 1;
                    return NatVerdict::Send;
                };
                let source = Endpoint {
                    addr: m.addr,
                    port: m.port,
                };
                match rewrite_icmp_error(packet, &parsed, Side::Source, source) {
                    Ok(()) => self.counts.translated += 1,
                    Err(_) => self.counts.untranslated += 1,
                }
                return NatVerdict::Send;
            }
            Transport::Other => false,
            // A transport header cut short: it must not leave with the inside source.
            Transport::Truncated => {
                self.counts.malformed += 1;
                return NatVerdict::Drop;
            }
        };
        if !translatable {
            self.counts.untranslated += 1;
            return NatVerdict::Send;
        }
        let source = match self.out.get(&parsed.key, 0) {
            Ok(m) => {
                self.touch(&parsed, m);
                Endpoint {
                    addr: m.addr,
                    port: m.port,
                }
            }
            Err(_) => match self.new_flow(&parsed, &rule) {
                Some(source) => source,
                None => {
                    self.counts.allocation_failed += 1;
                    return NatVerdict::Drop;
                }
            },
        };
        match rewrite(packet, &parsed, Side::Source, source) {
            Ok(()) => self.counts.translated += 1,
            Err(_) => self.counts.untranslated += 1,
        }
        NatVerdict::Send
    }

    fn refresh(&mut self) {
        if self.refreshed.is_some_and(|at| at.elapsed() < REFRESH) {
            return;
        }
        self.refreshed = Some(Instant::now());
        let mut rules = Vec::new();
        for i in 0..MAX_NAT_RULES {
            match self.rules.get(&i, 0) {
                Ok(rule) if rule.valid != 0 => rules.push(rule),
                _ => break,
            }
        }
        self.cached_rules = rules;
        if let Ok(settings) = self.settings.get(&0, 0) {
            self.cached_settings = settings;
        }
    }

    /// Records the packet on its forward entry (time, TCP flags), as XDP does.
    fn touch(&mut self, parsed: &Parsed, mut m: NatMapping) {
        m.last_seen_ns = monotonic_ns();
        m.flags |= tcp_flags(parsed) | flow_flags::SEEN;
        // Best effort: the entry may have been swept meanwhile; the next packet recreates it.
        let _ = self.out.insert(parsed.key, m, 0);
    }

    /// Allocates a port as XDP does (hashed candidates, `BPF_NOEXIST` on the reverse table).
    fn new_flow(&mut self, parsed: &Parsed, rule: &NatRuleEntry) -> Option<Endpoint> {
        let (first, last) = (
            self.cached_settings.port_first,
            self.cached_settings.port_last,
        );
        let now = monotonic_ns();
        let hash = flow_hash(&parsed.key, rand_seed());
        let original = NatMapping {
            addr: parsed.key.src_addr,
            port: parsed.key.src_port,
            flags: 0,
            _pad: 0,
            last_seen_ns: now,
        };
        for attempt in 0..PORT_PROBES {
            let Some(port) = port_candidate(hash, attempt, first, last) else {
                continue;
            };
            let reserved = self
                .reserved
                .get(&u32::from(port / 64), 0)
                .map_or(true, |word| word & (1u64 << (port % 64)) != 0);
            if reserved {
                continue;
            }
            let source = Endpoint {
                addr: rule.out_addr,
                port: port.to_be_bytes(),
            };
            let reply = translated_key(&parsed.key, source).reversed();
            if self.inbound.insert(reply, original, BPF_NOEXIST).is_err() {
                continue;
            }
            let mapping = NatMapping {
                addr: source.addr,
                port: source.port,
                flags: tcp_flags(parsed) | flow_flags::SEEN,
                _pad: 0,
                last_seen_ns: now,
            };
            if self.out.insert(parsed.key, mapping, BPF_NOEXIST).is_err() {
                let _ = self.inbound.remove(&reply);
                return None;
            }
            self.counts.new_flows += 1;
            return Some(source);
        }
        None
    }
}

fn tcp_flags(parsed: &Parsed) -> u8 {
    if parsed.transport != Transport::Tcp {
        return 0;
    }
    let flags = parsed.tcp_flags;
    let mut seen = 0;
    if flags & 0x01 != 0 {
        seen |= flow_flags::FIN;
    }
    if flags & 0x04 != 0 {
        seen |= flow_flags::RST;
    }
    if flags & 0x02 != 0 {
        seen |= flow_flags::SYN;
    }
    seen
}

/// A seed for the port hash (RFC 6056: not predictable from outside).
fn rand_seed() -> u32 {
    let mut seed = [0u8; 4];
    // SAFETY: a valid buffer of the length passed.
    let n = unsafe { libc::getrandom(seed.as_mut_ptr().cast(), seed.len(), 0) };
    if n != 4 {
        return monotonic_ns() as u32;
    }
    u32::from_ne_bytes(seed)
}
