//! [`IkeSa`]: one IKE SA driven by its owner, sans-IO.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rand_core::CryptoRng;

use crate::codec::Spi;
use crate::config::{ConfigError, PeerConfig};
use crate::events::Event;
use crate::sa::{SaCore, SaState};
use crate::stats::Stats;
use crate::{Transmit, strip_marker};

/// One IKE SA and its CHILD_SAs, as initiator. Responders are made by [`crate::Listener`].
///
/// Feed it with [`IkeSa::initiate`], [`IkeSa::handle_datagram`], [`IkeSa::handle_timeout`],
/// [`IkeSa::close`]; after each call drain [`IkeSa::poll_transmit`] and
/// [`IkeSa::poll_event`] and sleep until [`IkeSa::poll_timeout`]. With DPD action restart, a
/// dead peer closes the SA and a new one (new SPIs) starts in the same object.
pub struct IkeSa<R> {
    core: SaCore,
    rng: R,
}

impl<R> core::fmt::Debug for IkeSa<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IkeSa")
            .field("spi_i", &self.core.spi_i)
            .field("spi_r", &self.core.spi_r)
            .field("state", &self.core.summary())
            .finish_non_exhaustive()
    }
}

impl<R: CryptoRng> IkeSa<R> {
    /// An initiator for `config`; nothing is sent before [`IkeSa::initiate`].
    pub fn initiator(config: PeerConfig, rng: R, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            core: SaCore::new(Arc::new(config), true, now),
            rng,
        })
    }

    /// Starts IKE_SA_INIT (no-op unless idle).
    pub fn initiate(&mut self, now: Instant) {
        self.core.initiate(now, &mut self.rng);
    }

    /// A UDP datagram from `from` to `to`, as received (with the non-ESP marker on the
    /// NAT-T port).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
    ) {
        match strip_marker(to, bytes, self.core.config.nat_t_port) {
            Ok((msg, via_nat_t)) => {
                self.core
                    .handle(now, from, to, msg, via_nat_t, &mut self.rng);
            }
            Err(reason) => self.core.drop_msg(reason, "marker"),
        }
        self.restart_if_asked(now);
    }

    /// Timers (retransmission, DPD).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now, &mut self.rng);
        self.restart_if_asked(now);
    }

    /// Deletes the IKE SA (INFORMATIONAL with Delete once established).
    pub fn close(&mut self, now: Instant) {
        self.core.request_close(now, &mut self.rng);
    }

    /// Deletes the CHILD_SA with inbound SPI `spi_in`.
    pub fn delete_child(&mut self, now: Instant, spi_in: u32) {
        self.core.request_delete_child(now, spi_in, &mut self.rng);
    }

    /// Rekeys the CHILD_SA with inbound SPI `spi_in` now (CREATE_CHILD_SA, make-before-break);
    /// it also happens by itself at the fuzzed soft lifetime.
    pub fn rekey_child(&mut self, now: Instant, spi_in: u32) {
        self.core.request_rekey_child(now, spi_in, &mut self.rng);
    }

    fn restart_if_asked(&mut self, now: Instant) {
        if !self.core.restart_requested {
            return;
        }
        let mut fresh = SaCore::new(self.core.config.clone(), true, now);
        fresh.transmits = std::mem::take(&mut self.core.transmits);
        fresh.events = std::mem::take(&mut self.core.events);
        fresh.stats = std::mem::take(&mut self.core.stats);
        self.core = fresh;
        self.core.initiate(now, &mut self.rng);
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.core.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.events.pop_front()
    }

    /// When to call [`IkeSa::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }

    /// The state.
    pub fn state(&self) -> SaState {
        self.core.summary()
    }

    /// (initiator SPI, responder SPI).
    pub fn spis(&self) -> (Spi, Spi) {
        (self.core.spi_i, self.core.spi_r)
    }

    /// Inbound SPIs of the installed CHILD_SAs.
    pub fn child_spis(&self) -> Vec<(u32, u32)> {
        self.core
            .children
            .iter()
            .map(|c| (c.spi_in, c.spi_out))
            .collect()
    }
}
