//! Timing: many single test runs per case, interleaved across cases in rounds, and one long
//! `repeat` loop per case and round where the loop measures what it should.
//!
//! Why single runs: test-run copies the frame in once and does not restore it between
//! repetitions (`bpf_test_run` in net/bpf/test_run.c loops over the same `xdp_buff`). The
//! redirecting paths reserve XSK metadata with bpf_xdp_adjust_meta; in a loop the second run
//! finds the metadata area full and takes the drop path, so a `repeat` loop would time the
//! drop, not the redirect. One run per call keeps every timed run on its intended path; the
//! kernel still times it (`duration`), so the syscall itself is outside the figure, but one
//! clock read per run is inside it. The empty reference program measured the same way shows
//! that share.

use std::os::fd::BorrowedFd;

use anyhow::bail;
use serde_json::{Value, json};

use super::{
    cases::verdict_name,
    test_run::{Ingress, test_run},
};

pub struct Settings {
    pub rounds: u32,
    pub batch: u32,
    pub loop_repeat: u32,
}

/// One timed thing: a program on a frame, arriving on `ingress`.
pub struct Target<'a> {
    pub label: String,
    pub fd: BorrowedFd<'a>,
    pub frame: &'a [u8],
    pub ingress: Ingress,
    pub verdict: u32,
    /// Whether a `repeat` loop stays on the case's path (the program leaves the frame as is).
    pub loopable: bool,
}

#[derive(Default)]
pub struct Timing {
    samples: Vec<u32>,
    round_medians: Vec<f64>,
    loops: Vec<f64>,
    loop_verdict: Option<u32>,
}

/// Runs every target `batch` times per round, the round's order rotated so that no target
/// always runs first or after the same one.
pub fn measure(targets: &[Target<'_>], s: &Settings) -> anyhow::Result<Vec<Timing>> {
    let n = targets.len();
    let mut timings: Vec<Timing> = (0..n).map(|_| Timing::default()).collect();
    for round in 0..s.rounds as usize {
        for i in 0..n {
            let k = (i + round) % n;
            let t = &targets[k];
            let timing = &mut timings[k];
            let mut this_round = Vec::with_capacity(s.batch as usize);
            for _ in 0..s.batch {
                let run = test_run(t.fd, t.frame, t.ingress, 1)?;
                if run.retval != t.verdict {
                    bail!(
                        "{}: {} instead of {}",
                        t.label,
                        verdict_name(run.retval),
                        verdict_name(t.verdict)
                    );
                }
                this_round.push(run.duration_ns);
            }
            timing
                .round_medians
                .push(median_u32(&mut this_round.clone()));
            timing.samples.extend_from_slice(&this_round);
            if s.loop_repeat > 1 && t.loopable {
                let run = test_run(t.fd, t.frame, t.ingress, s.loop_repeat)?;
                timing.loop_verdict = Some(run.retval);
                if run.retval == t.verdict {
                    timing.loops.push(f64::from(run.duration_ns));
                }
            }
        }
    }
    Ok(timings)
}

fn median_u32(v: &mut [u32]) -> f64 {
    v.sort_unstable();
    percentile(v, 0.5)
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i])
}

impl Timing {
    /// Statistics of the single runs (ns), and of the `repeat` loops where those stayed on the
    /// intended path.
    pub fn to_json(&self, expected_verdict: u32, loopable: bool) -> Value {
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let mean = sorted.iter().map(|&v| f64::from(v)).sum::<f64>() / sorted.len().max(1) as f64;
        let mut loops = self.loops.clone();
        loops.sort_by(f64::total_cmp);
        let loop_ns = (!loops.is_empty()).then(|| loops[loops.len() / 2]);
        let loop_note = match self.loop_verdict {
            _ if !loopable => json!(
                "no loop: the program rewrites the frame, and test-run does not restore it between repetitions"
            ),
            Some(v) if v != expected_verdict => json!(format!(
                "a repeat loop ends in {}: the program changes the frame (XSK metadata) and test-run does not restore it between repetitions, so only single runs are valid",
                verdict_name(v)
            )),
            _ => Value::Null,
        };
        json!({
            "runs": sorted.len(),
            "median_ns": percentile(&sorted, 0.5),
            "p10_ns": percentile(&sorted, 0.1),
            "p90_ns": percentile(&sorted, 0.9),
            "min_ns": percentile(&sorted, 0.0),
            "mean_ns": mean,
            "round_medians_ns": self.round_medians,
            "loop_ns": loop_ns,
            "loop_note": loop_note,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        assert_eq!(percentile(&v, 0.5), 6.0);
        assert_eq!(percentile(&v, 0.1), 2.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert!(percentile(&[], 0.5).is_nan());
    }
}
