//! [`Listener`]: routes datagrams by SPI to IKE SAs (RFC 7296 section 2.6), creates
//! responders on IKE_SA_INIT requests, and hosts initiators too.
//!
//! A new IKE_SA_INIT request (zero responder SPI) is matched to a configuration by the
//! peer's IP address; a retransmission of one we already answered (same peer address and
//! initiator SPI) goes to the half-open SA, which resends its cached response. Anything else
//! is routed by the SPI in our slot of the header: the responder SPI when the I flag is set,
//! the initiator SPI otherwise. Closed SAs are removed once their last datagrams and events
//! have been collected; their counters are kept in the listener's.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rand_core::CryptoRng;
use tracing::debug;

use crate::codec::{DecodeError, ExchangeType, Header, Message, Spi};
use crate::config::{ConfigError, NAT_T_PORT, PeerConfig};
use crate::cookie::{CookieJar, HalfOpenLimits};
use crate::events::Event;
use crate::exchange::init::{InitOutcome, cookie_reply, critical_reply, respond_init};
use crate::sa::{SaCore, SaState, State};
use crate::stats::{DropReason, Stats};
use crate::{Transmit, is_nat_keepalive, strip_marker};

/// An event of one of the listener's IKE SAs.
#[derive(Debug)]
pub struct ListenerEvent {
    /// Our SPI of the IKE SA (the key for [`Listener::close`]).
    pub local_spi: Spi,
    /// The event.
    pub event: Event,
}

/// Many IKE SAs behind one pair of sockets.
pub struct Listener<R> {
    configs: Vec<Arc<PeerConfig>>,
    sas: HashMap<Spi, SaCore>,
    half_open: HashMap<(SocketAddr, Spi), Spi>,
    rng: R,
    nat_t_port: u16,
    stats: Stats,
    /// IKE_SA_INIT requests refused with NO_PROPOSAL_CHOSEN or INVALID_KE_PAYLOAD.
    init_rejected: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ListenerEvent>,
    limits: HalfOpenLimits,
    /// Made on first use (it needs the time).
    cookies: Option<CookieJar>,
}

impl<R> core::fmt::Debug for Listener<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Listener")
            .field("sas", &self.sas.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<R: CryptoRng> Listener<R> {
    /// A listener answering the peers of `configs` (matched by remote IP; an unspecified IP
    /// matches any peer).
    pub fn new(configs: Vec<PeerConfig>, rng: R) -> Result<Self, ConfigError> {
        for c in &configs {
            c.validate()?;
        }
        Ok(Self {
            configs: configs.into_iter().map(Arc::new).collect(),
            sas: HashMap::new(),
            half_open: HashMap::new(),
            rng,
            nat_t_port: NAT_T_PORT,
            stats: Stats::default(),
            init_rejected: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            limits: HalfOpenLimits::default(),
            cookies: None,
        })
    }

    /// Rekeys the CHILD_SA with inbound SPI `spi_in` of the IKE SA `spi` now.
    pub fn rekey_child(&mut self, now: Instant, spi: Spi, spi_in: u32) {
        if let Some(sa) = self.sas.get_mut(&spi) {
            sa.request_rekey_child(now, spi_in, &mut self.rng);
        }
        self.collect();
    }

    /// Replaces the configurations new IKE SAs are made from (a reloaded configuration);
    /// existing IKE SAs keep theirs until they end.
    pub fn set_configs(&mut self, configs: Vec<PeerConfig>) -> Result<(), ConfigError> {
        for c in &configs {
            c.validate()?;
        }
        self.configs = configs.into_iter().map(Arc::new).collect();
        Ok(())
    }

    /// When to ask for cookies and when to refuse new half-open SAs.
    pub fn set_half_open_limits(&mut self, limits: HalfOpenLimits) {
        self.limits = limits;
    }

    /// Whether a new IKE_SA_INIT request may create a half-open SA (RFC 7296 section 2.6):
    /// below the cookie threshold always; above it only with a valid cookie (else a COOKIE
    /// is sent back); above the maximum never.
    fn admit(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        msg: &Message,
        via_nat_t: bool,
    ) -> bool {
        let half_open = self
            .sas
            .values()
            .filter(|s| matches!(s.state, State::InitReplied(_)))
            .count();
        if half_open >= self.limits.max_half_open {
            self.stats.half_open_refused += 1;
            debug!(%from, half_open, "IKE_SA_INIT dropped: too many half-open IKE SAs");
            return false;
        }
        if half_open < self.limits.cookie_threshold {
            return true;
        }
        let ni = msg
            .payloads
            .iter()
            .find_map(|p| match p {
                crate::codec::Payload::Nonce(n) => Some(n.as_slice()),
                _ => None,
            })
            .unwrap_or_default();
        let presented = msg.payloads.iter().find_map(|p| match p {
            crate::codec::Payload::Notify(n)
                if n.notify_type == crate::codec::NotifyType::Cookie =>
            {
                Some(n.data.as_slice())
            }
            _ => None,
        });
        let rng: &mut dyn CryptoRng = &mut self.rng;
        let jar = self.cookies.get_or_insert_with(|| CookieJar::new(now, rng));
        let spi_i = msg.initiator_spi.0;
        if presented.is_some_and(|c| jar.check(c, ni, from.ip(), &spi_i)) {
            return true;
        }
        let cookie = jar.make(now, &mut self.rng, ni, from.ip(), &spi_i);
        debug!(%from, half_open, "IKE_SA_INIT answered with a COOKIE");
        self.stats.cookies_sent += 1;
        self.stats.sent += 1;
        self.transmits
            .push_back(cookie_reply(msg, from, to, via_nat_t, cookie));
        false
    }

    /// Starts an initiator for `config`; returns its SPI.
    pub fn connect(&mut self, now: Instant, config: PeerConfig) -> Result<Spi, ConfigError> {
        config.validate()?;
        let mut core = SaCore::new(Arc::new(config), true, now);
        core.initiate(now, &mut self.rng);
        let spi = core.local_spi();
        self.sas.insert(spi, core);
        self.collect();
        Ok(spi)
    }

    /// A UDP datagram, as received (with the non-ESP marker on the NAT-T port).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
    ) {
        self.route(now, from, to, bytes);
        self.collect();
    }

    fn drop_msg(&mut self, reason: DropReason, detail: &str) {
        self.stats.drop(reason);
        debug!(reason = reason.label(), detail, "dropped IKE datagram");
    }

    fn route(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        if is_nat_keepalive(to, bytes, self.nat_t_port) {
            self.stats.nat_keepalives_received += 1;
            return;
        }
        let (msg_bytes, via_nat_t) = match strip_marker(to, bytes, self.nat_t_port) {
            Ok(x) => x,
            Err(r) => return self.drop_msg(r, "marker"),
        };
        let header = match Header::peek(msg_bytes) {
            Ok(h) => h,
            Err(e) => return self.drop_msg(DropReason::Malformed, e.kind()),
        };
        let new_init = header.exchange_type == ExchangeType::IkeSaInit
            && !header.flags.response()
            && header.flags.initiator()
            && header.responder_spi.is_zero();
        if new_init {
            if let Some(spi) = self.half_open.get(&(from, header.initiator_spi)).copied()
                && let Some(sa) = self.sas.get_mut(&spi)
            {
                sa.handle(now, from, to, msg_bytes, via_nat_t, &mut self.rng);
                return;
            }
            return self.new_responder(now, from, to, msg_bytes, via_nat_t);
        }
        let local = if header.flags.initiator() {
            header.responder_spi
        } else {
            header.initiator_spi
        };
        match self.sas.get_mut(&local) {
            Some(sa) => sa.handle(now, from, to, msg_bytes, via_nat_t, &mut self.rng),
            None => self.drop_msg(DropReason::UnknownSpi, "no such IKE SA"),
        }
    }

    fn new_responder(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
        via_nat_t: bool,
    ) {
        let msg = match Message::decode(bytes) {
            Ok(m) => m,
            Err(DecodeError::UnsupportedCriticalPayload { payload_type, .. }) => {
                // RFC 7296 section 2.5: reject, naming the payload type.
                self.stats.unsupported_critical_payloads += 1;
                match Header::peek(bytes) {
                    Ok(h) if h.message_id.0 == 0 => {
                        debug!(%from, payload_type, "IKE_SA_INIT with an unsupported critical payload");
                        self.init_rejected += 1;
                        self.stats.sent += 1;
                        self.transmits.push_back(critical_reply(
                            &h,
                            from,
                            to,
                            via_nat_t,
                            payload_type,
                        ));
                    }
                    _ => self.drop_msg(DropReason::Malformed, "unsupported critical payload"),
                }
                return;
            }
            Err(e) => return self.drop_msg(DropReason::Malformed, e.kind()),
        };
        if msg.message_id.0 != 0 {
            return self.drop_msg(DropReason::InvalidContent, "IKE_SA_INIT message ID");
        }
        let Some(config) = self
            .configs
            .iter()
            .find(|c| c.remote_addr.ip().is_unspecified() || c.remote_addr.ip() == from.ip())
            .cloned()
        else {
            return self.drop_msg(DropReason::NoConfig, "no configuration for peer");
        };
        if !self.admit(now, from, to, &msg, via_nat_t) {
            return;
        }
        match respond_init(config, now, from, to, bytes, &msg, via_nat_t, &mut self.rng) {
            InitOutcome::Created(core) => {
                let spi = core.local_spi();
                self.half_open.insert((from, msg.initiator_spi), spi);
                self.stats.received += 1;
                self.sas.insert(spi, *core);
            }
            InitOutcome::Reject(t, why) => {
                debug!(%from, ?why, "IKE_SA_INIT refused");
                self.init_rejected += 1;
                self.stats.sent += 1;
                self.transmits.push_back(t);
            }
            InitOutcome::Drop(r, detail) => self.drop_msg(r, detail),
        }
    }

    /// Timers of all SAs.
    pub fn handle_timeout(&mut self, now: Instant) {
        for sa in self.sas.values_mut() {
            if sa.poll_timeout().is_some_and(|t| t <= now) {
                sa.handle_timeout(now, &mut self.rng);
            }
        }
        self.collect();
        // DPD restarts.
        let restarts: Vec<Arc<PeerConfig>> = self
            .sas
            .values_mut()
            .filter(|s| s.restart_requested)
            .map(|s| {
                s.restart_requested = false;
                s.config.clone()
            })
            .collect();
        for c in restarts {
            let mut core = SaCore::new(c, true, now);
            core.initiate(now, &mut self.rng);
            self.sas.insert(core.local_spi(), core);
        }
        self.collect();
    }

    /// Deletes the IKE SA whose local SPI is `spi`.
    pub fn close(&mut self, now: Instant, spi: Spi) {
        if let Some(sa) = self.sas.get_mut(&spi) {
            sa.request_close(now, &mut self.rng);
        }
        self.collect();
    }

    /// Drops the IKE SA whose local SPI is `spi` at once, without a DELETE exchange (our
    /// address is gone, so no answer could come back): its CHILD_SAs are reported deleted.
    pub fn abandon(&mut self, spi: Spi, reason: crate::CloseReason) {
        if let Some(sa) = self.sas.get_mut(&spi) {
            sa.close(reason);
        }
        self.collect();
    }

    /// Moves datagrams and events out of the SAs and removes closed ones.
    fn collect(&mut self) {
        self.initial_contact();
        // IKE SAs that replace rekeyed ones (RFC 7296 section 2.18).
        let successors: Vec<SaCore> = self
            .sas
            .values_mut()
            .filter_map(|sa| sa.successor.take())
            .map(|b| *b)
            .collect();
        for sa in successors {
            self.sas.insert(sa.local_spi(), sa);
        }
        let mut closed = Vec::new();
        for (spi, sa) in &mut self.sas {
            self.transmits.extend(sa.transmits.drain(..));
            self.events
                .extend(sa.events.drain(..).map(|event| ListenerEvent {
                    local_spi: *spi,
                    event,
                }));
            if sa.is_closed() && !sa.restart_requested {
                closed.push(*spi);
            }
        }
        for spi in closed {
            if let Some(sa) = self.sas.remove(&spi) {
                self.stats.add(&sa.stats);
            }
            self.half_open.retain(|_, v| *v != spi);
        }
    }

    /// A peer that authenticated with INITIAL_CONTACT has restarted: its older IKE SAs (same
    /// configuration and address) are closed without a DELETE (RFC 7296 section 2.4).
    fn initial_contact(&mut self) {
        let fresh: Vec<(Spi, Arc<PeerConfig>, SocketAddr)> = self
            .sas
            .iter_mut()
            .filter(|(_, s)| s.initial_contact)
            .map(|(spi, s)| {
                s.initial_contact = false;
                (*spi, s.config.clone(), s.remote)
            })
            .collect();
        for (spi, config, remote) in fresh {
            for (other, sa) in &mut self.sas {
                if *other != spi
                    && Arc::ptr_eq(&sa.config, &config)
                    && sa.remote.ip() == remote.ip()
                    && sa.summary() == SaState::Established
                {
                    debug!(old = %other, new = %spi, "peer sent INITIAL_CONTACT");
                    sa.close(crate::CloseReason::Superseded);
                }
            }
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ListenerEvent> {
        self.events.pop_front()
    }

    /// The earliest timer of all SAs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sas.values().filter_map(SaCore::poll_timeout).min()
    }

    /// Counters of the listener and all its SAs (closed ones included).
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        for sa in self.sas.values() {
            s.add(&sa.stats);
        }
        s
    }

    /// IKE_SA_INIT requests refused (NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD).
    pub fn init_rejected(&self) -> u64 {
        self.init_rejected
    }

    /// The state of the SA with local SPI `spi`.
    pub fn sa_state(&self, spi: Spi) -> Option<SaState> {
        self.sas.get(&spi).map(SaCore::summary)
    }

    /// Snapshots of all IKE SAs and their CHILD_SAs, for status displays.
    pub fn sa_info(&self) -> Vec<crate::info::IkeSaInfo> {
        self.sas.values().map(SaCore::info).collect()
    }

    /// Local SPIs of all SAs.
    pub fn sa_spis(&self) -> Vec<Spi> {
        self.sas.keys().copied().collect()
    }
}
