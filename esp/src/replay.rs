//! Anti-replay window (RFC 4303 section 3.4.3) and the outbound sequence counter (section 3.3.3).
//!
//! Hand-written: it is a few dozen lines, must not allocate per packet, and its exact semantics
//! (check before the ICV, commit only after) are what the datapath relies on.
//!
//! **Bitmap.** In the style of RFC 6479: the window is a ring of `u64` blocks, a power of two
//! of them, at least `ceil(W / 64) + 1`. Sliding the window right never shifts bits; it only
//! zeroes the blocks that the new right edge enters (all of them on a jump of a whole ring).
//! The extra block means the bits still inside the window are never in a block being zeroed.
//! The window is exact: a sequence number `s` is acceptable iff `s > T` or `T - s < W` and its
//! bit is clear, where `T` is the highest committed number. W is 64..=2048 (AWS's range).
//!
//! **ESN** (RFC 4303 section 2.2.1 and Appendix A2.2): only the low 32 bits are on the wire. The
//! high 32 bits are inferred from the window: if the window's bottom `Tl - W + 1` does not wrap
//! (case A), a low half below it belongs to the next 2^32 block (`Th + 1`), otherwise to `Th`;
//! if it wraps (case B), a low half at or above the wrapped bottom belongs to `Th - 1`. The
//! inferred high half is authenticated by the ICV (it is in the AAD), so a wrong guess fails as
//! `BadIcv`; this crate does not attempt the optional re-synchronisation of Appendix A3.
//!
//! **Check, then commit.** [`ReplayWindow::check`] is a pure function of the window; it returns
//! a [`Candidate`] holding the full 64-bit number. Only [`ReplayWindow::commit`], called after
//! the ICV has verified, changes the window. So a forged packet (which fails the ICV) can never
//! move the window or mark a number as seen. `commit` re-checks, so a candidate that became stale
//! in the meantime (another packet moved the window) or was committed twice is refused.
//!
//! **Outbound** ([`SeqCounter`]): starts at 1 and never wraps; after 2^32 - 1 (no ESN) or
//! 2^64 - 1 (ESN) it returns [`EspError::SeqExhausted`] and the SA must be rekeyed.
//!
//! **Several workers, one SA.** With one crypto worker per receive queue, the same SA is used
//! from several threads at once. The IV is the sequence number (RFC 4106 3.1: unique per key),
//! so [`SeqCounter`] hands numbers out with an atomic compare-and-swap: no two threads ever get
//! the same one, and none is handed out past the end of the space. The inbound window is shared
//! behind a mutex held only for the check and for the commit, never during the decryption: two
//! copies of one packet arriving on two queues may both pass the check, but `commit` re-checks
//! under the lock, so exactly one is accepted (RFC 4303 3.4.3 asks for a per-SA window, not a
//! per-queue one).

use core::sync::atomic::{AtomicU64, Ordering};

use crate::error::EspError;
use crate::sa::{ReplayWindowSize, SeqNum};

/// Why a sequence number is refused by the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// Already received.
    Replayed,
    /// Left of the window.
    TooOld,
    /// Never valid: 0, or an ESN inference outside the 64-bit space.
    InvalidSeq,
}

impl From<ReplayError> for EspError {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Replayed => EspError::Replayed,
            ReplayError::TooOld => EspError::TooOld,
            ReplayError::InvalidSeq => EspError::InvalidSeq,
        }
    }
}

/// A sequence number that passed [`ReplayWindow::check`]; commit it once the ICV verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a candidate does nothing until committed after the ICV check"]
pub struct Candidate {
    seq: SeqNum,
}

impl Candidate {
    /// The full (ESN-inferred) sequence number, whose high half goes into the AAD.
    pub fn seq(self) -> SeqNum {
        self.seq
    }
}

/// Per-SA anti-replay state.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    size: u64,
    esn: bool,
    top: u64,
    bitmap: Box<[u64]>,
    block_mask: u64,
}

impl ReplayWindow {
    /// An empty window of `size` packets. Allocates once (at most 64 `u64`s for 2048).
    pub fn new(size: ReplayWindowSize, esn: bool) -> Self {
        let size = u64::from(size.get());
        let blocks = (size.div_ceil(64) + 1).next_power_of_two();
        ReplayWindow {
            size,
            esn,
            top: 0,
            bitmap: vec![0u64; blocks as usize].into_boxed_slice(),
            block_mask: blocks - 1,
        }
    }

    /// A window whose highest received number is `top`, treating every number up to `top` as
    /// already received (the safe assumption when an SA's inbound state moves between workers
    /// without its bitmap, and the way tests start a window far into the sequence space).
    pub fn resume_at(size: ReplayWindowSize, esn: bool, top: SeqNum) -> Self {
        let mut w = Self::new(size, esn);
        w.bitmap.fill(u64::MAX);
        let (block, _) = w.bit(top.0);
        let bit = top.0 & 63;
        w.bitmap[block] = if bit == 63 {
            u64::MAX
        } else {
            (1u64 << (bit + 1)) - 1
        };
        w.top = top.0;
        w
    }

    /// The highest committed sequence number (0 before the first packet).
    pub fn top(&self) -> SeqNum {
        SeqNum(self.top)
    }

    /// Window size in packets.
    pub fn size(&self) -> u32 {
        self.size as u32
    }

    /// Whether the window infers ESN high halves.
    pub fn esn(&self) -> bool {
        self.esn
    }

    /// Full sequence number for the low 32 bits seen on the wire.
    fn infer(&self, wire: u32) -> Result<u64, ReplayError> {
        if !self.esn {
            return Ok(u64::from(wire));
        }
        let w = self.size as u32; // <= 2048
        let tl = self.top as u32;
        let th = (self.top >> 32) as u32;
        let high = if tl >= w - 1 {
            // Case A: the window [tl - w + 1, tl] lies within one 2^32 block.
            if wire >= tl - (w - 1) {
                th
            } else {
                th.checked_add(1).ok_or(ReplayError::InvalidSeq)?
            }
        } else if wire >= tl.wrapping_sub(w - 1) {
            // Case B: the window straddles a 2^32 boundary; this is its older part.
            th.checked_sub(1).ok_or(ReplayError::InvalidSeq)?
        } else {
            th
        };
        Ok((u64::from(high) << 32) | u64::from(wire))
    }

    fn bit(&self, seq: u64) -> (usize, u64) {
        (((seq >> 6) & self.block_mask) as usize, 1u64 << (seq & 63))
    }

    fn check_full(&self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 {
            return Err(ReplayError::InvalidSeq);
        }
        if seq > self.top {
            return Ok(());
        }
        if self.top - seq >= self.size {
            return Err(ReplayError::TooOld);
        }
        let (block, mask) = self.bit(seq);
        if self.bitmap[block] & mask != 0 {
            return Err(ReplayError::Replayed);
        }
        Ok(())
    }

    /// Is the packet with low sequence half `wire_seq` acceptable? Does not change the window.
    pub fn check(&self, wire_seq: u32) -> Result<Candidate, ReplayError> {
        let seq = self.infer(wire_seq)?;
        self.check_full(seq)?;
        Ok(Candidate { seq: SeqNum(seq) })
    }

    /// Record `candidate` as received, sliding the window if it is the new highest. Call only
    /// after the ICV verified. Refuses a candidate that is no longer acceptable.
    pub fn commit(&mut self, candidate: Candidate) -> Result<(), ReplayError> {
        let seq = candidate.seq.0;
        self.check_full(seq)?;
        if seq > self.top {
            let old_block = self.top >> 6;
            let new_block = seq >> 6;
            if new_block - old_block > self.block_mask {
                self.bitmap.fill(0);
            } else {
                for b in old_block + 1..=new_block {
                    self.bitmap[(b & self.block_mask) as usize] = 0;
                }
            }
            self.top = seq;
        }
        let (block, mask) = self.bit(seq);
        self.bitmap[block] |= mask;
        Ok(())
    }
}

/// Outbound sequence numbers: 1, 2, 3, ... never wrapping (RFC 4303 section 3.3.3), shared by
/// every thread that seals with the SA (each number is handed out once).
#[derive(Debug)]
pub struct SeqCounter {
    last: AtomicU64,
    esn: bool,
}

impl Clone for SeqCounter {
    fn clone(&self) -> Self {
        SeqCounter::resume_after(self.esn, self.last().0)
    }
}

impl SeqCounter {
    /// A fresh counter; the first number handed out is 1.
    pub fn new(esn: bool) -> Self {
        Self::resume_after(esn, 0)
    }

    /// A counter whose last sent number was `last` (SA hand-over between workers, and tests of
    /// exhaustion). `last` beyond the space makes the counter exhausted.
    pub fn resume_after(esn: bool, last: u64) -> Self {
        SeqCounter {
            last: AtomicU64::new(last),
            esn,
        }
    }

    /// The largest number this counter may send.
    pub fn max(&self) -> u64 {
        if self.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        }
    }

    /// The next sequence number, or `SeqExhausted` once the space is used up (rekey). Safe to
    /// call from several threads: a compare-and-swap (not a blind add, which would wrap at
    /// 2^64 - 1) so a number is never handed out twice nor past [`SeqCounter::max`].
    pub fn next_seq(&self) -> Result<SeqNum, EspError> {
        let max = self.max();
        self.last
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                (last < max).then_some(last + 1)
            })
            .map(|last| SeqNum(last + 1))
            .map_err(|_| EspError::SeqExhausted)
    }

    /// The last number handed out (0 if none).
    pub fn last(&self) -> SeqNum {
        SeqNum(self.last.load(Ordering::Relaxed))
    }

    /// How many numbers are left before exhaustion.
    pub fn remaining(&self) -> u64 {
        self.max().saturating_sub(self.last().0)
    }
}
