//! Reading the per-CPU class counters from their pinned map.

use std::path::Path;

use anyhow::Context as _;
use aya::maps::{Map, MapData, PerCpuArray};
use vpn_common::{
    InterfaceRole, PacketClass, TrafficCounter, class_counter_index, names,
    nat::{FlowKey, MAX_NAT_RULES, NatEvent, NatMapping, NatRuleEntry},
    tunnel::DatapathEvent,
};

use super::loader::PINNED_MAPS;

/// Class counters of one instance, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassCounters {
    slots: [[TrafficCounter; PacketClass::COUNT]; InterfaceRole::COUNT],
}

impl ClassCounters {
    pub fn get(&self, role: InterfaceRole, class: PacketClass) -> TrafficCounter {
        self.slots[role as usize][class as usize]
    }

    /// Opens the pinned counter map in `pin_dir` and sums every slot over all CPUs.
    pub fn read_pinned(pin_dir: &Path) -> anyhow::Result<Self> {
        let file = PINNED_MAPS
            .iter()
            .find(|(name, _)| *name == names::CLASS_COUNTERS)
            .map(|(_, file)| *file)
            .context("class counters are not among the pinned maps")?;
        let path = pin_dir.join(file);
        let data = MapData::from_pin(&path)
            .with_context(|| format!("opening pinned map {}", path.display()))?;
        let map = Map::from_map_data(data)
            .with_context(|| format!("reading map type of {}", path.display()))?;
        let array: PerCpuArray<MapData, TrafficCounter> = PerCpuArray::try_from(map)
            .with_context(|| format!("{} is not a per-CPU array of counters", path.display()))?;

        let mut counters = ClassCounters::default();
        for role in InterfaceRole::ALL {
            for class in PacketClass::ALL {
                let index = class_counter_index(role, class);
                let per_cpu = array
                    .get(&index, 0)
                    .with_context(|| format!("reading slot {index} of {}", path.display()))?;
                let slot = &mut counters.slots[role as usize][class as usize];
                for value in per_cpu.iter() {
                    slot.merge(value);
                }
            }
        }
        Ok(counters)
    }
}

/// The XDP programs' tunnel events (redirects, drops by reason), summed over CPUs.
pub fn read_pinned_events(pin_dir: &Path) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let file = PINNED_MAPS
        .iter()
        .find(|(name, _)| *name == names::DATAPATH_EVENTS)
        .map(|(_, file)| *file)
        .context("datapath events are not among the pinned maps")?;
    let path = pin_dir.join(file);
    let data = MapData::from_pin(&path)
        .with_context(|| format!("opening pinned map {}", path.display()))?;
    let map = Map::from_map_data(data)
        .with_context(|| format!("reading map type of {}", path.display()))?;
    let array: PerCpuArray<MapData, u64> = PerCpuArray::try_from(map)
        .with_context(|| format!("{} is not a per-CPU array of u64", path.display()))?;
    DatapathEvent::ALL
        .iter()
        .map(|event| {
            let values = array
                .get(&(*event as u32), 0)
                .with_context(|| format!("reading event {}", event.name()))?;
            Ok((event.name(), values.iter().sum()))
        })
        .collect()
}

/// The NAT's counters and the number of flows it tracks, from the pinned maps.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct NatCounters {
    /// (Rule, destination prefix) entries installed in XDP.
    pub rules: u64,
    /// Flows in the forward table now.
    pub flows: u64,
    /// [`NatEvent`] counts, summed over CPUs.
    pub events: std::collections::BTreeMap<&'static str, u64>,
}

pub fn read_pinned_nat(pin_dir: &Path) -> anyhow::Result<NatCounters> {
    let open = |name: &str| -> anyhow::Result<Map> {
        let file = PINNED_MAPS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, file)| *file)
            .with_context(|| format!("{name} is not among the pinned maps"))?;
        let path = pin_dir.join(file);
        let data = MapData::from_pin(&path)
            .with_context(|| format!("opening pinned map {}", path.display()))?;
        Map::from_map_data(data).with_context(|| format!("reading map type of {}", path.display()))
    };
    let events: PerCpuArray<MapData, u64> = PerCpuArray::try_from(open(names::NAT_EVENTS)?)
        .context("NAT events are not a per-CPU array of u64")?;
    let flows: aya::maps::HashMap<MapData, FlowKey, NatMapping> =
        aya::maps::HashMap::try_from(open(names::NAT_OUT)?)
            .context("the NAT table is not a hash map of flows")?;
    let rules: aya::maps::Array<MapData, NatRuleEntry> =
        aya::maps::Array::try_from(open(names::NAT_RULES)?)
            .context("the NAT rules are not an array of rule entries")?;
    let mut counters = NatCounters {
        rules: (0..MAX_NAT_RULES)
            .map_while(|i| rules.get(&i, 0).ok().filter(|r| r.valid != 0))
            .count() as u64,
        flows: flows.keys().filter(Result::is_ok).count() as u64,
        ..Default::default()
    };
    for event in NatEvent::ALL {
        let values = events
            .get(&(event as u32), 0)
            .with_context(|| format!("reading NAT event {}", event.name()))?;
        counters.events.insert(event.name(), values.iter().sum());
    }
    Ok(counters)
}
