//! Bounds-checked reading and length-patching writing.

use super::error::{DecodeError, EncodeError};

/// A cursor over a byte slice that reports every short read as [`DecodeError::Truncated`] with
/// the absolute offset of the field.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, whose first byte is at absolute offset `base`.
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let available = self.remaining();
        if n > available {
            return Err(DecodeError::Truncated {
                what,
                offset: self.offset(),
                needed: n,
                available,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, what)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }
}

/// Appends a 16-bit length placeholder and returns its position for [`patch_len16`].
pub(crate) fn len16_placeholder(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    at
}

/// Writes the length of `out[start..]` into the placeholder at `at`.
pub(crate) fn patch_len16(
    out: &mut [u8],
    at: usize,
    start: usize,
    what: &'static str,
) -> Result<(), EncodeError> {
    let len = out.len() - start;
    let v = u16::try_from(len).map_err(|_| EncodeError::TooLong {
        what,
        length: len,
        limit: usize::from(u16::MAX),
    })?;
    out[at..at + 2].copy_from_slice(&v.to_be_bytes());
    Ok(())
}

/// A count or length as a `u8` field.
pub(crate) fn fit_u8(n: usize, what: &'static str) -> Result<u8, EncodeError> {
    u8::try_from(n).map_err(|_| EncodeError::TooLong {
        what,
        length: n,
        limit: usize::from(u8::MAX),
    })
}

/// A count or length as a `u16` field.
pub(crate) fn fit_u16(n: usize, what: &'static str) -> Result<u16, EncodeError> {
    u16::try_from(n).map_err(|_| EncodeError::TooLong {
        what,
        length: n,
        limit: usize::from(u16::MAX),
    })
}

/// Refuses counts above a decode cap, so that whatever encodes also decodes.
pub(crate) fn check_cap(n: usize, limit: usize, what: &'static str) -> Result<(), EncodeError> {
    if n > limit {
        Err(EncodeError::TooLong {
            what,
            length: n,
            limit,
        })
    } else {
        Ok(())
    }
}
