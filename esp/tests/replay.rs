//! Anti-replay window (RFC 4303 section 3.4.3, RFC 6479-style bitmap, ESN per Appendix A) and
//! the outbound counter (section 3.3.3). Every scenario runs for window sizes 64, 1024 and 2048.

use vpn_esp::EspError;
use vpn_esp::replay::{ReplayError, ReplayWindow, SeqCounter};
use vpn_esp::sa::{ReplayWindowSize, SeqNum};

const SIZES: [u32; 3] = [64, 1024, 2048];

fn window(size: u32, esn: bool) -> ReplayWindow {
    ReplayWindow::new(ReplayWindowSize::new(size).unwrap(), esn)
}

/// check + commit, as decapsulate does after a good ICV.
fn accept(w: &mut ReplayWindow, wire: u32) -> Result<SeqNum, ReplayError> {
    let c = w.check(wire)?;
    w.commit(c)?;
    Ok(c.seq())
}

#[test]
fn in_order_then_duplicates() {
    for size in SIZES {
        let mut w = window(size, false);
        for s in 1..=5000u32 {
            assert_eq!(accept(&mut w, s), Ok(SeqNum(u64::from(s))));
        }
        assert_eq!(w.top(), SeqNum(5000));
        // Everything still inside the window is a duplicate; left of it is too old.
        for s in 5000 - size + 1..=5000 {
            assert_eq!(
                w.check(s),
                Err(ReplayError::Replayed),
                "size {size} seq {s}"
            );
        }
        assert_eq!(w.check(5000 - size), Err(ReplayError::TooOld));
        assert_eq!(w.check(1), Err(ReplayError::TooOld));
    }
}

#[test]
fn zero_is_never_valid() {
    for size in SIZES {
        let w = window(size, false);
        assert_eq!(w.check(0), Err(ReplayError::InvalidSeq));
    }
}

#[test]
fn out_of_order_within_window_is_accepted_once() {
    for size in SIZES {
        let mut w = window(size, false);
        let top = 10_000u32;
        assert!(accept(&mut w, top).is_ok());
        // Every number in the window, in a scrambled order, is accepted exactly once.
        let lo = top - size + 1;
        let mut order: Vec<u32> = (lo..top).collect();
        let mut x = 0x9e37_79b9u32;
        for i in (1..order.len()).rev() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            order.swap(i, (x as usize) % (i + 1));
        }
        for &s in &order {
            assert_eq!(
                accept(&mut w, s),
                Ok(SeqNum(u64::from(s))),
                "size {size} seq {s}"
            );
        }
        for &s in &order {
            assert_eq!(w.check(s), Err(ReplayError::Replayed));
        }
        assert_eq!(w.check(lo - 1), Err(ReplayError::TooOld));
        assert_eq!(w.top(), SeqNum(u64::from(top)));
    }
}

#[test]
fn window_edges_are_exact() {
    for size in SIZES {
        let mut w = window(size, false);
        let top = 3 * size + 17;
        assert!(accept(&mut w, top).is_ok());
        // Oldest acceptable: top - size + 1. One less is too old.
        assert!(w.check(top - size + 1).is_ok());
        assert_eq!(w.check(top - size), Err(ReplayError::TooOld));
    }
}

#[test]
fn large_jumps_slide_and_clear_the_bitmap() {
    for size in SIZES {
        let mut w = window(size, false);
        for s in 1..=size {
            accept(&mut w, s).unwrap();
        }
        // Jump by less than the window: the overlap keeps its bits, the new part is clear.
        let half = size / 2;
        let t1 = size + half;
        accept(&mut w, t1).unwrap();
        for s in t1 - size + 1..=size {
            assert_eq!(
                w.check(s),
                Err(ReplayError::Replayed),
                "size {size} seq {s}"
            );
        }
        for s in size + 1..t1 {
            assert!(w.check(s).is_ok(), "size {size} seq {s} should be fresh");
        }
        // Jump by far more than the ring: everything in the new window is fresh but the top.
        let t2 = t1 + 100 * size + 7;
        accept(&mut w, t2).unwrap();
        for s in t2 - size + 1..t2 {
            assert!(
                w.check(s).is_ok(),
                "size {size} seq {s} should be fresh after jump"
            );
        }
        assert_eq!(w.check(t2), Err(ReplayError::Replayed));
        assert_eq!(w.check(t2 - size), Err(ReplayError::TooOld));
        // Jumps by exactly one block and by exactly the window.
        let t3 = t2 + 64;
        accept(&mut w, t3).unwrap();
        assert!(w.check(t3 - 1).is_ok());
        let expect = if size > 64 {
            ReplayError::Replayed
        } else {
            ReplayError::TooOld
        };
        assert_eq!(w.check(t2), Err(expect));
        let t4 = t3 + size;
        accept(&mut w, t4).unwrap();
        assert_eq!(w.check(t3), Err(ReplayError::TooOld));
        assert!(w.check(t4 - 1).is_ok());
    }
}

#[test]
fn check_without_commit_never_moves_the_window() {
    for size in SIZES {
        let mut w = window(size, false);
        accept(&mut w, 100).unwrap();
        let before = format!("{w:?}");
        // A packet whose ICV fails: checked but never committed.
        let c = w.check(100_000).unwrap();
        assert_eq!(c.seq(), SeqNum(100_000));
        assert!(w.check(50).is_ok());
        assert_eq!(format!("{w:?}"), before);
        assert_eq!(w.top(), SeqNum(100));
        // The forged number is still acceptable later (it was never recorded).
        assert_eq!(accept(&mut w, 100_000), Ok(SeqNum(100_000)));
    }
}

#[test]
fn stale_or_double_commit_is_refused() {
    for size in SIZES {
        let mut w = window(size, false);
        accept(&mut w, 10).unwrap();
        let old = w.check(5).unwrap();
        let dup = w.check(11).unwrap();
        w.commit(dup).unwrap();
        assert_eq!(w.commit(dup), Err(ReplayError::Replayed));
        // Another packet moves the window past the pending candidate.
        accept(&mut w, 10 + size + 100).unwrap();
        let before = format!("{w:?}");
        assert_eq!(w.commit(old), Err(ReplayError::TooOld));
        assert_eq!(format!("{w:?}"), before);
    }
}

#[test]
fn esn_infers_high_bits_across_the_low_wrap() {
    for size in SIZES {
        // Start just below a 2^32 boundary with high half 7.
        let base = (7u64 << 32) | u64::from(u32::MAX - 10);
        let mut w =
            ReplayWindow::resume_at(ReplayWindowSize::new(size).unwrap(), true, SeqNum(base));
        // Continue up to and across the wrap: the low half goes ...fffe, ffff, 0, 1, 2.
        for k in 1..=20u64 {
            let full = base + k;
            assert_eq!(
                accept(&mut w, full as u32),
                Ok(SeqNum(full)),
                "size {size} k {k}"
            );
        }
        assert_eq!(w.top(), SeqNum((8u64 << 32) | 9));
        // The last pre-wrap number (window case B now) maps back to high half 7: a duplicate.
        let pre_wrap = (7u64 << 32) | u64::from(u32::MAX);
        assert_eq!(w.check(pre_wrap as u32), Err(ReplayError::Replayed));
        // Duplicates after the wrap.
        assert_eq!(w.check(5), Err(ReplayError::Replayed));
        // A number just after the top belongs to high half 8.
        assert_eq!(
            w.check(100).map(|c| c.seq()),
            Ok(SeqNum((8u64 << 32) | 100))
        );
        // A low half far below the wrapped window bottom is inferred as high half 8 (ahead).
        let c = w.check(u32::MAX / 2).unwrap();
        assert_eq!(c.seq(), SeqNum((8u64 << 32) | u64::from(u32::MAX / 2)));
    }
}

#[test]
fn esn_case_b_late_packet_from_previous_block() {
    for size in SIZES {
        // The window straddles a 2^32 boundary: the top's low half is small, and some
        // numbers just before the boundary were skipped.
        let pre = (3u64 << 32) | u64::from(u32::MAX - 5);
        let mut w =
            ReplayWindow::resume_at(ReplayWindowSize::new(size).unwrap(), true, SeqNum(pre));
        let post = (4u64 << 32) | 3;
        assert_eq!(accept(&mut w, 3), Ok(SeqNum(post)));
        // pre+1 .. pre+5 (low halves ...fffa..ffff) arrive late: high half 3 (case B).
        for k in 1..=5u64 {
            let full = pre + k;
            assert_eq!(
                accept(&mut w, full as u32),
                Ok(SeqNum(full)),
                "size {size} k {k}"
            );
        }
        assert_eq!(w.top(), SeqNum(post));
        assert_eq!(w.check((pre + 1) as u32), Err(ReplayError::Replayed));
        // A low half below the (wrapped) window bottom is inferred as high half 4, i.e. a
        // number ahead of the top (RFC 4303 A2.2); if the sender meant an old one, the ICV
        // fails because the AAD carries the inferred high half.
        let older = (pre - u64::from(size)) as u32;
        assert_eq!(
            w.check(older).map(|c| c.seq()),
            Ok(SeqNum((4u64 << 32) | u64::from(older)))
        );
    }
}

#[test]
fn esn_start_of_space() {
    for size in SIZES {
        let mut w = window(size, true);
        // Before any packet, huge low halves are inferred as "before 0": invalid.
        assert_eq!(w.check(u32::MAX), Err(ReplayError::InvalidSeq));
        assert_eq!(w.check(0), Err(ReplayError::InvalidSeq));
        assert_eq!(accept(&mut w, 1), Ok(SeqNum(1)));
        assert_eq!(accept(&mut w, 2), Ok(SeqNum(2)));
    }
}

#[test]
fn esn_end_of_space() {
    for size in SIZES {
        let top = u64::MAX - 1;
        let mut w =
            ReplayWindow::resume_at(ReplayWindowSize::new(size).unwrap(), true, SeqNum(top));
        assert_eq!(accept(&mut w, u32::MAX), Ok(SeqNum(u64::MAX)));
        // Nothing after 2^64 - 1: a low half below the window would need high half 2^32.
        assert_eq!(w.check(5), Err(ReplayError::InvalidSeq));
    }
}

#[test]
fn non_esn_never_infers_high_bits() {
    let mut w = window(64, false);
    accept(&mut w, u32::MAX - 1).unwrap();
    assert_eq!(accept(&mut w, u32::MAX), Ok(SeqNum(u64::from(u32::MAX))));
    // Without ESN a small number after the top is simply too old (no wrap).
    assert_eq!(w.check(1), Err(ReplayError::TooOld));
}

#[test]
fn window_sizes_are_validated() {
    for bad in [0, 1, 63, 2049, 4096, u32::MAX] {
        assert!(ReplayWindowSize::new(bad).is_err(), "{bad}");
    }
    for good in [64, 65, 100, 1024, 2047, 2048] {
        assert_eq!(ReplayWindowSize::new(good).unwrap().get(), good);
    }
    assert_eq!(ReplayWindowSize::default().get(), 1024);
}

#[test]
fn odd_window_size_is_exact() {
    let mut w = ReplayWindow::new(ReplayWindowSize::new(100).unwrap(), false);
    accept(&mut w, 1000).unwrap();
    assert!(w.check(901).is_ok());
    assert_eq!(w.check(900), Err(ReplayError::TooOld));
}

#[test]
fn outbound_counter_without_esn_stops_at_2_pow_32_minus_1() {
    let c = SeqCounter::new(false);
    assert_eq!(c.next_seq(), Ok(SeqNum(1)));
    assert_eq!(c.next_seq(), Ok(SeqNum(2)));
    let c = SeqCounter::resume_after(false, u64::from(u32::MAX) - 2);
    assert_eq!(c.remaining(), 2);
    assert_eq!(c.next_seq(), Ok(SeqNum(u64::from(u32::MAX) - 1)));
    assert_eq!(c.next_seq(), Ok(SeqNum(u64::from(u32::MAX))));
    assert_eq!(c.next_seq(), Err(EspError::SeqExhausted));
    assert_eq!(c.next_seq(), Err(EspError::SeqExhausted));
    assert_eq!(c.last(), SeqNum(u64::from(u32::MAX)));
}

#[test]
fn outbound_counter_with_esn_crosses_2_pow_32_and_stops_at_2_pow_64_minus_1() {
    let c = SeqCounter::resume_after(true, u64::from(u32::MAX) - 1);
    assert_eq!(c.next_seq(), Ok(SeqNum(u64::from(u32::MAX))));
    assert_eq!(c.next_seq(), Ok(SeqNum(1u64 << 32)));
    let c = SeqCounter::resume_after(true, u64::MAX - 1);
    assert_eq!(c.next_seq(), Ok(SeqNum(u64::MAX)));
    assert_eq!(c.next_seq(), Err(EspError::SeqExhausted));
}

#[test]
fn esn_top_exactly_at_window_minus_one() {
    // Regression: with ESN and a top whose low half is exactly W - 1, computing the window
    // bottom as `tl - W + 1` overflowed (found by the pseudo-random test).
    for size in SIZES {
        let top = u64::from(size - 1);
        let mut w =
            ReplayWindow::resume_at(ReplayWindowSize::new(size).unwrap(), true, SeqNum(top));
        assert_eq!(w.check(0), Err(ReplayError::InvalidSeq));
        assert_eq!(w.check(1), Err(ReplayError::Replayed));
        assert_eq!(accept(&mut w, size), Ok(SeqNum(u64::from(size))));
        let far = (5u64 << 32) | u64::from(size - 1);
        let mut w =
            ReplayWindow::resume_at(ReplayWindowSize::new(size).unwrap(), true, SeqNum(far));
        assert_eq!(w.check(0).map(|c| c.seq()), Err(ReplayError::Replayed));
        assert_eq!(accept(&mut w, size), Ok(SeqNum(far + 1)));
    }
}
