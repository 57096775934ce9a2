//! Retransmission of requests (RFC 7296 section 2.1).
//!
//! Only the original initiator of an exchange retransmits; responders answer a retransmitted
//! request from their cached response. The schedule is exponential: the `n`-th wait
//! (0-based) is `initial_timeout * base^n`, capped at `max_timeout`; after `tries`
//! retransmissions have each waited their turn, the exchange (and the IKE SA) fails.
//! strongSwan's defaults (4 s, 1.8, 5 tries) give sends at 0, 4, 11.2, 24.2, 47.5 and 89.5 s and
//! a give-up at 165 s.

use std::time::{Duration, Instant};

use crate::config::RetransmitConfig;

/// The retransmission state of one outstanding request.
#[derive(Debug, Clone)]
pub struct Retransmit {
    config: RetransmitConfig,
    sent: u32,
    deadline: Instant,
    give_up_at: Option<Instant>,
}

/// What to do at a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Not yet.
    Wait,
    /// Send the request again.
    Resend,
    /// Stop: the peer did not answer.
    GiveUp,
}

impl Retransmit {
    /// Starts the schedule for a request first sent at `now`. `give_up_at` is an extra
    /// absolute limit (the DPD timeout).
    #[must_use]
    pub fn start(config: RetransmitConfig, now: Instant, give_up_at: Option<Instant>) -> Self {
        Self {
            config,
            sent: 0,
            deadline: now + wait(&config, 0),
            give_up_at,
        }
    }

    /// The next time [`Retransmit::poll`] has something to do.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        match self.give_up_at {
            Some(g) => g.min(self.deadline),
            None => self.deadline,
        }
    }

    /// Retransmissions done so far.
    #[must_use]
    pub fn retransmissions(&self) -> u32 {
        self.sent
    }

    /// Advances the schedule at `now`.
    pub fn poll(&mut self, now: Instant) -> Step {
        if self.give_up_at.is_some_and(|g| now >= g) {
            return Step::GiveUp;
        }
        if now < self.deadline {
            return Step::Wait;
        }
        if self.sent >= self.config.tries {
            return Step::GiveUp;
        }
        self.sent += 1;
        self.deadline = now + wait(&self.config, self.sent);
        Step::Resend
    }
}

fn wait(c: &RetransmitConfig, n: u32) -> Duration {
    let factor = c.base.max(1.0).powi(i32::try_from(n).unwrap_or(i32::MAX));
    let secs = c.initial_timeout.as_secs_f64() * factor;
    if !secs.is_finite() || secs >= c.max_timeout.as_secs_f64() {
        c.max_timeout
    } else {
        Duration::from_secs_f64(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strongswan_schedule() {
        let t0 = Instant::now();
        let mut r = Retransmit::start(RetransmitConfig::default(), t0, None);
        let mut sends = Vec::new();
        loop {
            let at = r.deadline();
            match r.poll(at) {
                Step::Resend => sends.push((at - t0).as_secs_f64()),
                Step::GiveUp => {
                    sends.push((at - t0).as_secs_f64());
                    break;
                }
                Step::Wait => unreachable!(),
            }
        }
        let expect = [4.0, 11.2, 24.16, 47.488, 89.4784, 165.06112];
        assert_eq!(sends.len(), expect.len());
        for (a, b) in sends.iter().zip(expect) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
    }

    #[test]
    fn extra_limit_wins() {
        let t0 = Instant::now();
        let mut r = Retransmit::start(
            RetransmitConfig::default(),
            t0,
            Some(t0 + Duration::from_secs(5)),
        );
        assert_eq!(r.poll(t0 + Duration::from_secs(4)), Step::Resend);
        assert_eq!(r.deadline(), t0 + Duration::from_secs(5));
        assert_eq!(r.poll(t0 + Duration::from_secs(5)), Step::GiveUp);
    }
}
