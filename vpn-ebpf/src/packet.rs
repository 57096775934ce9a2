//! Bounds-checked reads from a packet.

/// Read access to the bytes of one received frame.
///
/// Every read is checked against the end of the frame; a read that would cross it returns
/// `None`. In XDP this is the check the verifier demands before any packet access.
pub trait PacketBytes {
    /// Length of the frame in bytes.
    fn len(&self) -> usize;

    /// Whether the frame is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `N` bytes at `offset`, or `None` if any of them lies past the end of the frame.
    fn bytes<const N: usize>(&self, offset: usize) -> Option<[u8; N]>;

    /// Big-endian u8 at `offset`.
    #[inline(always)]
    fn u8_at(&self, offset: usize) -> Option<u8> {
        self.bytes::<1>(offset).map(|b| b[0])
    }

    /// Big-endian (network order) u16 at `offset`.
    #[inline(always)]
    fn be16_at(&self, offset: usize) -> Option<u16> {
        self.bytes::<2>(offset).map(u16::from_be_bytes)
    }

    /// Big-endian (network order) u32 at `offset`.
    #[inline(always)]
    fn be32_at(&self, offset: usize) -> Option<u32> {
        self.bytes::<4>(offset).map(u32::from_be_bytes)
    }
}

impl PacketBytes for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    fn bytes<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let end = offset.checked_add(N)?;
        self.get(offset..end)?.try_into().ok()
    }
}

/// Write access to a frame, with the same bounds checks as [`PacketBytes`].
pub trait PacketBytesMut: PacketBytes {
    /// Writes `value` at `offset`; `false` (and nothing written) if it would cross the end.
    fn write_bytes<const N: usize>(&mut self, offset: usize, value: [u8; N]) -> bool;
}

impl PacketBytesMut for [u8] {
    fn write_bytes<const N: usize>(&mut self, offset: usize, value: [u8; N]) -> bool {
        let Some(end) = offset.checked_add(N) else {
            return false;
        };
        match self.get_mut(offset..end) {
            Some(dst) => {
                dst.copy_from_slice(&value);
                true
            }
            None => false,
        }
    }
}
