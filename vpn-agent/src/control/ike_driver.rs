//! The IKE engine's I/O: UDP sockets on ports 500 and 4500 of the WAN address, the engine's
//! timers, and its events handed to the agent's main loop. The engine itself (vpn-ike) is
//! sans-IO; this thread is the only place it meets the network and the clock.
//!
//! Events go before datagrams, and the thread waits until the main loop has applied them to
//! the datapath: a CREATE_CHILD_SA response leaves only once the new inbound SA is live, and
//! the DELETE of a rekeyed pair only once its replacement is (RFC 7296 2.8, make-before-break).

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    os::fd::AsRawFd as _,
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use vpn_config::Startup;
use vpn_ike::{ChildSaInstalled, Event, Listener, Transmit, codec::Spi};

use super::{
    commands::{CommandRequest, CommandResult, DriverCommand, TunnelCommand},
    ike_report::{IkeReport, IkeSaReport, TunnelEvents},
    peer_config::TunnelPeer,
};
use crate::instance::write_private_json;

/// The longest the thread sleeps without looking at the stop flag.
const IDLE: Duration = Duration::from_millis(50);

/// First and longest wait before a tunnel that initiates tries again after its IKE SA failed.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// How long a stopping agent waits for its peers to confirm the deletion of its IKE SAs.
const FAREWELL: Duration = Duration::from_secs(1);

/// How often the SAs' state is published when nothing happens.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// How long the thread waits for the main loop to apply its events before sending anyway.
const APPLY_WAIT: Duration = Duration::from_secs(2);

/// What the engine tells the datapath, by tunnel name.
#[derive(Debug)]
pub enum DriverEvent {
    Installed {
        tunnel: String,
        child: Box<ChildSaInstalled>,
    },
    Deleted {
        tunnel: String,
        spi_in: u32,
    },
    /// The IKE SA is gone: every CHILD_SA of the tunnel with it.
    Down {
        tunnel: String,
        reason: String,
    },
}

pub struct IkeDriver {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    events: mpsc::Receiver<DriverEvent>,
    /// Events taken from `events` so far.
    taken: u64,
    progress: Arc<Progress>,
    commands: mpsc::Sender<CommandRequest>,
}

/// How far the main loop got with the driver's events, and how it is woken for new ones.
struct Progress {
    /// Number of events applied to the datapath.
    applied: Mutex<u64>,
    changed: Condvar,
    wake: Arc<tokio::sync::Notify>,
}

impl Progress {
    /// Blocks until `sent` events are applied, or [`APPLY_WAIT`] passes.
    fn wait_applied(&self, sent: u64) {
        let Ok(guard) = self.applied.lock() else {
            return;
        };
        let waited = self
            .changed
            .wait_timeout_while(guard, APPLY_WAIT, |applied| *applied < sent);
        if waited.is_ok_and(|(_, timeout)| timeout.timed_out()) {
            tracing::warn!("the datapath did not confirm the IKE changes in time; sending anyway");
        }
    }
}

/// The system's random generator, for the engine (nonces, SPIs, DH keys).
struct OsRng(std::fs::File);

impl rand_core::TryRng for OsRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        use std::io::Read as _;
        // Without randomness no nonce or key may be made: stopping is the only safe answer.
        #[allow(clippy::expect_used)]
        self.0
            .read_exact(dst)
            .expect("reading /dev/urandom for IKE nonces and keys");
        Ok(())
    }
}

impl rand_core::TryCryptoRng for OsRng {}

impl IkeDriver {
    /// Starts the engine for `peers` on the WAN address `wan`; the SAs' state is published to
    /// `report` (for `vpn-agent status`).
    pub fn start(
        wan: Ipv4Addr,
        peers: Vec<TunnelPeer>,
        report: std::path::PathBuf,
    ) -> anyhow::Result<Self> {
        let ike = UdpSocket::bind((wan, 500)).with_context(|| format!("binding {wan}:500"))?;
        let nat_t = UdpSocket::bind((wan, 4500)).with_context(|| format!("binding {wan}:4500"))?;
        for s in [&ike, &nat_t] {
            s.set_nonblocking(true)?;
        }
        let rng = OsRng(std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?);
        let names: BTreeMap<IpAddr, String> = peers
            .iter()
            .map(|p| (p.config.remote_addr.ip(), p.tunnel.clone()))
            .collect();
        let configs: BTreeMap<String, vpn_ike::PeerConfig> = peers
            .iter()
            .map(|p| (p.tunnel.clone(), p.config.clone()))
            .collect();
        let initiating: BTreeMap<String, Retry> = peers
            .iter()
            .filter(|p| p.startup == Startup::Initiate)
            .map(|p| {
                (
                    p.tunnel.clone(),
                    Retry {
                        config: p.config.clone(),
                        at: None,
                        wait: RETRY_FIRST,
                        paused: false,
                    },
                )
            })
            .collect();
        let mut listener = Listener::new(peers.iter().map(|p| p.config.clone()).collect(), rng)
            .context("configuring the IKE engine")?;
        let now = Instant::now();
        for peer in peers.iter().filter(|p| p.startup == Startup::Initiate) {
            listener
                .connect(now, peer.config.clone())
                .with_context(|| format!("initiating tunnel {}", peer.tunnel))?;
            tracing::info!(tunnel = %peer.tunnel, peer = %peer.config.remote_addr, "initiating IKE");
        }
        let (sender, events) = mpsc::channel();
        let (command_sender, commands) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let progress = Arc::new(Progress {
            applied: Mutex::new(0),
            changed: Condvar::new(),
            wake: Arc::new(tokio::sync::Notify::new()),
        });
        let shared = Arc::clone(&progress);
        let thread = std::thread::Builder::new()
            .name("ike".into())
            .spawn(move || {
                let mut io = Io {
                    ike,
                    nat_t,
                    listener,
                    names,
                    spis: BTreeMap::new(),
                    sender,
                    sent: 0,
                    progress: shared,
                    established: BTreeMap::new(),
                    report,
                    reported: Instant::now(),
                    initiating,
                    events: BTreeMap::new(),
                    configs,
                    commands,
                    stopping: false,
                };
                while !flag.load(Ordering::Relaxed) {
                    io.turn();
                }
                io.farewell();
            })
            .context("starting the IKE thread")?;
        Ok(IkeDriver {
            stop,
            thread: Some(thread),
            events,
            taken: 0,
            progress,
            commands: command_sender,
        })
    }

    /// Hands a reloaded configuration's tunnel changes to the IKE thread (it logs the result).
    pub fn reconfigure(&self, remove: Vec<String>, add: Vec<TunnelPeer>) {
        let request = CommandRequest {
            command: DriverCommand::Reconfigure { remove, add },
            reply: None,
        };
        if self.commands.send(request).is_err() {
            tracing::error!("the IKE thread has stopped: reload not applied");
        }
    }

    /// Moves IKE to a new WAN address (the IKE thread logs the result).
    pub fn rebind(&self, wan: Ipv4Addr, peers: Vec<TunnelPeer>) {
        let request = CommandRequest {
            command: DriverCommand::Rebind { wan, peers },
            reply: None,
        };
        if self.commands.send(request).is_err() {
            tracing::error!("the IKE thread has stopped: WAN address change not applied");
        }
    }

    /// Where operator commands go (the control socket).
    pub fn commander(&self) -> mpsc::Sender<CommandRequest> {
        self.commands.clone()
    }

    /// Notified whenever events are waiting in [`IkeDriver::try_event`].
    pub fn wake(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.progress.wake)
    }

    /// The next event, if one is waiting.
    pub fn try_event(&mut self) -> Option<DriverEvent> {
        let event = self.events.try_recv().ok()?;
        self.taken += 1;
        Some(event)
    }

    /// Confirms that every event taken so far is applied to the datapath.
    pub fn applied(&self) {
        if let Ok(mut applied) = self.progress.applied.lock() {
            *applied = self.taken;
        }
        self.progress.changed.notify_all();
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Io {
    ike: UdpSocket,
    nat_t: UdpSocket,
    listener: Listener<OsRng>,
    /// Peer address -> tunnel name.
    names: BTreeMap<IpAddr, String>,
    /// Our IKE SPI -> tunnel name, learnt from the events that carry the peer's address.
    spis: BTreeMap<[u8; 8], String>,
    sender: mpsc::Sender<DriverEvent>,
    /// Events sent so far.
    sent: u64,
    progress: Arc<Progress>,
    /// When each IKE SA (by our SPI) was established.
    established: BTreeMap<[u8; 8], std::time::SystemTime>,
    /// Where the SAs' state is published, and when it last was.
    report: std::path::PathBuf,
    reported: Instant,
    /// Rekeys and IKE SA ends per tunnel, for status and metrics.
    events: BTreeMap<String, TunnelEvents>,
    /// Every tunnel's engine configuration, by name (for operator commands).
    configs: BTreeMap<String, vpn_ike::PeerConfig>,
    commands: mpsc::Receiver<CommandRequest>,
    /// Stopping: the main loop no longer applies events, so nothing waits for it.
    stopping: bool,
    /// Tunnels that initiate, by name: they try again, with back-off, while they have no IKE
    /// SA (a production tunnel must come back when its peer does, however long it was away).
    initiating: BTreeMap<String, Retry>,
}

/// When an initiating tunnel next tries to connect.
struct Retry {
    config: vpn_ike::PeerConfig,
    /// `None`: connected or connecting.
    at: Option<Instant>,
    wait: Duration,
    /// Terminated by the operator: stays down until initiated again.
    paused: bool,
}

impl Io {
    /// Waits for a datagram or the next timer, then lets the engine act on what came.
    fn turn(&mut self) {
        let now = Instant::now();
        let wait = self
            .listener
            .poll_timeout()
            .map(|at| at.saturating_duration_since(now))
            .unwrap_or(IDLE)
            .min(IDLE);
        let mut fds = [
            libc::pollfd {
                fd: self.ike.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.nat_t.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: a valid array of two pollfd.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, wait.as_millis() as libc::c_int) };

        let mut buf = vec![0u8; 65_535];
        for socket in [&self.ike, &self.nat_t] {
            let Ok(to) = socket.local_addr() else {
                continue;
            };
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                self.listener
                    .handle_datagram(Instant::now(), from, to, &buf[..n]);
            }
        }
        self.listener.handle_timeout(Instant::now());
        while let Ok(request) = self.commands.try_recv() {
            let result = match request.command {
                DriverCommand::Tunnel(command) => self.execute(&command, Instant::now()),
                DriverCommand::Reconfigure { remove, add } => {
                    self.reconfigure(remove, add, Instant::now())
                }
                DriverCommand::Rebind { wan, peers } => self.rebind(wan, peers, Instant::now()),
            };
            match (request.reply, result) {
                (Some(reply), result) => {
                    let _ = reply.send(result);
                }
                (None, Ok(done)) => tracing::info!("{done}"),
                (None, Err(err)) => tracing::error!("{err}"),
            }
        }
        self.retry(Instant::now());
        let before = self.sent;
        while let Some(e) = self.listener.poll_event() {
            self.forward(e.local_spi, e.event);
        }
        if self.sent != before && !self.stopping {
            self.progress.wake.notify_one();
            self.progress.wait_applied(self.sent);
        }
        while let Some(t) = self.listener.poll_transmit() {
            self.send(&t);
        }
        if self.sent != before || self.reported.elapsed() >= REPORT_EVERY {
            self.publish();
        }
    }

    /// Stopping: deletes every IKE SA with an INFORMATIONAL DELETE (RFC 7296 section 1.4.1),
    /// so that peers do not wait for DPD to notice, and waits [`FAREWELL`] at most for the
    /// answers.
    fn farewell(&mut self) {
        self.stopping = true;
        let now = Instant::now();
        for spi in self.listener.sa_spis() {
            self.listener.close(now, spi);
        }
        for r in self.initiating.values_mut() {
            r.paused = true;
        }
        let deadline = now + FAREWELL;
        loop {
            while let Some(t) = self.listener.poll_transmit() {
                self.send(&t);
            }
            let open = self
                .listener
                .sa_info()
                .iter()
                .any(|sa| sa.state != vpn_ike::SaState::Closed);
            if !open || Instant::now() >= deadline {
                break;
            }
            self.turn();
        }
        tracing::info!("IKE SAs deleted");
    }

    /// Initiating tunnels without an IKE SA (it failed, timed out or was deleted, and no DPD
    /// restart made a new one) connect again after a back-off.
    fn retry(&mut self, now: Instant) {
        let live: Vec<IpAddr> = self
            .listener
            .sa_info()
            .iter()
            .filter(|sa| sa.state != vpn_ike::SaState::Closed)
            .map(|sa| sa.remote.ip())
            .collect();
        for (name, r) in self.initiating.iter_mut().filter(|(_, r)| !r.paused) {
            let connected = live.contains(&r.config.remote_addr.ip());
            match r.at {
                None if !connected => {
                    r.at = Some(now + r.wait);
                    tracing::info!(tunnel = %name, after = ?r.wait, "no IKE SA: will initiate again");
                    r.wait = (r.wait * 2).min(RETRY_MAX);
                }
                Some(at) if now >= at => {
                    r.at = None;
                    if connected {
                        continue;
                    }
                    match self.listener.connect(now, r.config.clone()) {
                        Ok(_) => {
                            tracing::info!(tunnel = %name, peer = %r.config.remote_addr, "initiating IKE again")
                        }
                        Err(err) => {
                            tracing::warn!(tunnel = %name, error = %err, "initiating IKE again")
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Our SPIs of the IKE SAs with `peer` that have not ended.
    fn live_spis(&self, peer: IpAddr) -> Vec<Spi> {
        self.listener
            .sa_info()
            .iter()
            .filter(|sa| sa.remote.ip() == peer && sa.state != vpn_ike::SaState::Closed)
            .map(|sa| if sa.initiator { sa.spi_i } else { sa.spi_r })
            .collect()
    }

    /// Applies a reloaded configuration's tunnel changes.
    fn reconfigure(
        &mut self,
        remove: Vec<String>,
        add: Vec<TunnelPeer>,
        now: Instant,
    ) -> CommandResult {
        for name in &remove {
            let Some(config) = self.configs.remove(name) else {
                continue;
            };
            for spi in self.live_spis(config.remote_addr.ip()) {
                self.listener.close(now, spi);
            }
            self.initiating.remove(name);
            self.names.retain(|_, n| n != name);
        }
        let (removed, added) = (remove.len(), add.len());
        for peer in add {
            self.names
                .insert(peer.config.remote_addr.ip(), peer.tunnel.clone());
            if peer.startup == Startup::Initiate {
                self.initiating.insert(
                    peer.tunnel.clone(),
                    Retry {
                        config: peer.config.clone(),
                        at: Some(now),
                        wait: RETRY_FIRST,
                        paused: false,
                    },
                );
            }
            self.configs.insert(peer.tunnel, peer.config);
        }
        self.listener
            .set_configs(self.configs.values().cloned().collect())
            .map_err(|e| format!("reconfiguring the IKE engine: {e}"))?;
        Ok(format!(
            "IKE tunnels reconfigured: {removed} removed or replaced, {added} added or replaced"
        ))
    }

    /// Moves IKE to the new WAN address `wan`. The SAs negotiated from the old one are
    /// unreachable for their peers now (RFC 7296 binds an SA to its addresses; moving one
    /// needs MOBIKE, RFC 4555), so they are dropped without a DELETE, which their CHILD_SAs
    /// leave the datapath with; then every tunnel starts again from the new address.
    fn rebind(&mut self, wan: Ipv4Addr, peers: Vec<TunnelPeer>, now: Instant) -> CommandResult {
        let bind = |port: u16| {
            let socket =
                UdpSocket::bind((wan, port)).map_err(|e| format!("binding {wan}:{port}: {e}"))?;
            socket
                .set_nonblocking(true)
                .map_err(|e| format!("{wan}:{port}: {e}"))?;
            Ok::<_, String>(socket)
        };
        let (ike, nat_t) = (bind(500)?, bind(4500)?);
        let old = self
            .ike
            .local_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        for spi in self.listener.sa_spis() {
            self.listener
                .abandon(spi, vpn_ike::CloseReason::AddressChanged);
        }
        self.ike = ike;
        self.nat_t = nat_t;
        let all: Vec<String> = self.configs.keys().cloned().collect();
        self.reconfigure(all, peers, now)?;
        Ok(format!(
            "IKE moved from {old} to {wan}; the tunnels start again"
        ))
    }

    /// Carries out an operator command.
    fn execute(&mut self, command: &TunnelCommand, now: Instant) -> CommandResult {
        let (TunnelCommand::Initiate(name) | TunnelCommand::Terminate(name)) = command;
        let Some(config) = self.configs.get(name).cloned() else {
            return Err(format!("no tunnel named {name:?}"));
        };
        let live = self.live_spis(config.remote_addr.ip());
        match command {
            TunnelCommand::Initiate(_) => {
                if let Some(r) = self.initiating.get_mut(name) {
                    r.paused = false;
                    r.wait = RETRY_FIRST;
                }
                if !live.is_empty() {
                    return Ok(format!("{name} has an IKE SA already"));
                }
                self.listener
                    .connect(now, config)
                    .map_err(|e| format!("initiating {name}: {e}"))?;
                Ok(format!("initiating {name}"))
            }
            TunnelCommand::Terminate(_) => {
                if let Some(r) = self.initiating.get_mut(name) {
                    r.paused = true;
                    r.at = None;
                }
                for spi in &live {
                    self.listener.close(now, *spi);
                }
                Ok(format!("terminating {name}: {} IKE SA(s)", live.len()))
            }
        }
    }

    /// Writes the IKE and CHILD SAs for `vpn-agent status`.
    fn publish(&mut self) {
        self.reported = Instant::now();
        let mut report = IkeReport {
            tunnels: self.events.clone(),
            ..IkeReport::default()
        };
        for sa in self.listener.sa_info() {
            let local = if sa.initiator { sa.spi_i } else { sa.spi_r };
            let tunnel = self
                .names
                .get(&sa.remote.ip())
                .or_else(|| self.spis.get(&local.0))
                .cloned()
                .unwrap_or_else(|| sa.remote.ip().to_string());
            let established = self.established.get(&local.0).copied();
            report
                .ike_sas
                .push(IkeSaReport::new(tunnel, &sa, established));
        }
        report.ike_sas.sort_by(|a, b| a.tunnel.cmp(&b.tunnel));
        let live: Vec<[u8; 8]> = self.listener.sa_spis().iter().map(|s| s.0).collect();
        self.established.retain(|spi, _| live.contains(spi));
        if let Err(err) = write_private_json(&self.report, &report) {
            tracing::warn!(error = %err, "could not publish the IKE SAs");
        }
    }

    fn send(&self, t: &Transmit) {
        let socket = if t.from.port() == 4500 {
            &self.nat_t
        } else {
            &self.ike
        };
        if let Err(err) = socket.send_to(&t.datagram(), t.to) {
            tracing::warn!(to = %t.to, error = %err, "sending an IKE message");
        }
    }

    fn tunnel_of(&mut self, spi: Spi, peer: Option<SocketAddr>) -> Option<String> {
        if let Some(name) = peer.and_then(|p| self.names.get(&p.ip())).cloned() {
            self.spis.insert(spi.0, name.clone());
            return Some(name);
        }
        self.spis.get(&spi.0).cloned()
    }

    fn forward(&mut self, spi: Spi, event: Event) {
        let event = match event {
            Event::IkeSaEstablished { remote_addr, .. } => {
                self.established.insert(spi.0, std::time::SystemTime::now());
                if let Some(tunnel) = self.tunnel_of(spi, Some(remote_addr)) {
                    if let Some(r) = self.initiating.get_mut(&tunnel) {
                        r.wait = RETRY_FIRST;
                    }
                    tracing::info!(%tunnel, peer = %remote_addr, "IKE SA established");
                }
                return;
            }
            Event::ChildSaInstalled(child) => {
                let Some(tunnel) = self.tunnel_of(spi, Some(child.remote_addr)) else {
                    return;
                };
                if child.rekeyed_from.is_some() {
                    self.events.entry(tunnel.clone()).or_default().child_rekeys += 1;
                }
                tracing::info!(
                    %tunnel,
                    spi_in = format_args!("{:#010x}", child.spi_in),
                    spi_out = format_args!("{:#010x}", child.spi_out),
                    "CHILD SA negotiated"
                );
                DriverEvent::Installed { tunnel, child }
            }
            Event::ChildSaDeleted { spi_in, .. } => {
                let Some(tunnel) = self.tunnel_of(spi, None) else {
                    return;
                };
                DriverEvent::Deleted { tunnel, spi_in }
            }
            // Its CHILD_SAs live on in the IKE SA that replaced it.
            Event::IkeSaClosed {
                reason: vpn_ike::CloseReason::Rekeyed,
            } => {
                tracing::info!(spi = %spi, "rekeyed IKE SA deleted");
                return;
            }
            Event::IkeSaClosed { reason } => {
                let Some(tunnel) = self.tunnel_of(spi, None) else {
                    return;
                };
                tracing::warn!(%tunnel, ?reason, "IKE SA closed");
                *self
                    .events
                    .entry(tunnel.clone())
                    .or_default()
                    .ike_sa_closed
                    .entry(format!("{reason:?}"))
                    .or_default() += 1;
                DriverEvent::Down {
                    tunnel,
                    reason: format!("{reason:?}"),
                }
            }
            other => {
                tracing::info!(event = ?other, "IKE event");
                return;
            }
        };
        if self.sender.send(event).is_ok() {
            self.sent += 1;
        }
    }
}
