//! Incremental Internet checksum updates (RFC 1624): when 16-bit words of a checksummed
//! region change from `m` to `m'`, the checksum `HC` becomes `HC' = ~(~HC + ~m + m')`
//! (eqn. 3), in ones' complement arithmetic. Only the changed words are touched, so the IPv4
//! header, TCP, UDP and ICMP checksums are fixed without reading the payload.

/// The sum of `~m + m'` over every changed word, to apply to one checksum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChecksumDelta(u32);

impl ChecksumDelta {
    pub const fn new() -> Self {
        ChecksumDelta(0)
    }

    /// One 16-bit word changed from `old` to `new`.
    #[inline(always)]
    pub fn word(&mut self, old: [u8; 2], new: [u8; 2]) {
        self.0 += u32::from(!u16::from_be_bytes(old)) + u32::from(u16::from_be_bytes(new));
        self.0 = fold(self.0);
    }

    /// A 32-bit field (an IPv4 address) changed: its two words.
    #[inline(always)]
    pub fn addr(&mut self, old: [u8; 4], new: [u8; 4]) {
        self.word([old[0], old[1]], [new[0], new[1]]);
        self.word([old[2], old[3]], [new[2], new[3]]);
    }

    /// Adds the changes recorded in `other` (a checksum that covers both regions).
    #[inline(always)]
    pub fn merge(&mut self, other: ChecksumDelta) {
        self.0 = fold(self.0 + other.0);
    }

    /// The checksum `sum` (as found in the header) after the recorded changes.
    #[inline(always)]
    pub fn apply(self, sum: [u8; 2]) -> [u8; 2] {
        let acc = u32::from(!u16::from_be_bytes(sum)) + self.0;
        (!(fold(acc) as u16)).to_be_bytes()
    }
}

/// Folds carries back into the low 16 bits (twice is enough for two 17-bit operands).
#[inline(always)]
fn fold(mut acc: u32) -> u32 {
    acc = (acc & 0xffff) + (acc >> 16);
    (acc & 0xffff) + (acc >> 16)
}

/// The full Internet checksum of `data` (RFC 1071), for tests and for building packets.
#[cfg(test)]
pub fn full(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for bytes in chunks {
        for pair in bytes.chunks(2) {
            let word = if pair.len() == 2 {
                u16::from_be_bytes([pair[0], pair[1]])
            } else {
                u16::from_be_bytes([pair[0], 0])
            };
            sum = fold(sum + u32::from(word));
        }
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_update_equals_recomputation() {
        let mut data = [
            0x45u8, 0, 0, 84, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0, 10, 1, 0, 10, 10, 2, 0, 10,
        ];
        let sum = full(&[&data]);
        data[10..12].copy_from_slice(&sum.to_be_bytes());
        let mut delta = ChecksumDelta::new();
        delta.addr([10, 1, 0, 10], [198, 51, 100, 1]);
        data[12..16].copy_from_slice(&[198, 51, 100, 1]);
        let updated = delta.apply([data[10], data[11]]);
        data[10..12].copy_from_slice(&updated);
        assert_eq!(
            full(&[&data]),
            0,
            "a header with a right checksum sums to zero"
        );
    }

    #[test]
    fn no_change_keeps_the_checksum() {
        let mut delta = ChecksumDelta::new();
        delta.word([1, 2], [1, 2]);
        for sum in [[0x12, 0x34], [0xff, 0xfe], [0x00, 0x01]] {
            assert_eq!(delta.apply(sum), sum);
        }
    }

    #[test]
    fn many_random_updates_stay_valid() {
        // A deterministic pseudo-random walk over words and values.
        let mut x: u32 = 0x1234_5678;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let mut data = [0u8; 32];
        for b in data.iter_mut() {
            *b = next() as u8;
        }
        data[0] = 0;
        data[1] = 0;
        let sum = full(&[&data]);
        data[0..2].copy_from_slice(&sum.to_be_bytes());
        for _ in 0..1000 {
            let at = 2 + 2 * (next() as usize % 15);
            let new = (next() as u16).to_be_bytes();
            let mut d = ChecksumDelta::new();
            d.word([data[at], data[at + 1]], new);
            data[at..at + 2].copy_from_slice(&new);
            let s = d.apply([data[0], data[1]]);
            data[0..2].copy_from_slice(&s);
            let check = full(&[&data]);
            assert!(check == 0 || check == 0xffff, "sum {check:#x}");
        }
    }
}
