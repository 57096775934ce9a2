//! Per-CPU traffic counters kept by the XDP programs.

use crate::{InterfaceRole, PacketClass};

/// Packets and bytes (whole frames, Ethernet header included) seen for one counter slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrafficCounter {
    pub packets: u64,
    pub bytes: u64,
}

impl TrafficCounter {
    /// Adds another counter, such as the same slot on another CPU.
    pub fn merge(&mut self, other: &TrafficCounter) {
        self.packets = self.packets.wrapping_add(other.packets);
        self.bytes = self.bytes.wrapping_add(other.bytes);
    }
}

// SAFETY: plain-old-data: two u64 fields, no padding, every bit pattern valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for TrafficCounter {}

/// Entries in the class counter array: one slot per (role, class).
pub const CLASS_COUNTER_ENTRIES: u32 = (InterfaceRole::COUNT * PacketClass::COUNT) as u32;

/// Index of the (role, class) slot in the class counter array.
pub const fn class_counter_index(role: InterfaceRole, class: PacketClass) -> u32 {
    role as u32 * PacketClass::COUNT as u32 + class as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_and_distinct() {
        let mut seen = [false; CLASS_COUNTER_ENTRIES as usize];
        for role in InterfaceRole::ALL {
            for class in PacketClass::ALL {
                let i = class_counter_index(role, class) as usize;
                assert!(i < seen.len());
                assert!(!seen[i], "slot {i} used twice");
                seen[i] = true;
            }
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn class_order_matches_discriminants() {
        for (i, class) in PacketClass::ALL.iter().enumerate() {
            assert_eq!(*class as usize, i);
        }
    }
}
