//! `vpn-agent run`: load the datapath, publish the instance's state, wait for a stop signal,
//! then detach and clean up exactly what was set up.

use anyhow::{Context as _, bail};
use vpn_common::InterfaceRole;

use crate::{
    bpffs,
    cli::RunArgs,
    control::{ike_tunnels::IkeTunnels, socket::ControlSocket},
    datapath::{
        loader::{AttachRequest, Datapath, remove_pins},
        nat::{NatRuntime, worker_path::WorkerNat},
        static_tunnels,
        tunnels::{TunnelRuntime, static_routes},
    },
    instance::{PIN_ROOT, RuntimeState, create_private_dir, write_private_json},
    metrics::MetricsServer,
    system::{
        interface_ipv4,
        link_watch::LinkWatch,
        sysctl::{self, AppliedSysctls, Drift},
    },
};

/// What the agent publishes about the host it manages (for `status`).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SystemReport {
    pub sysctl_drift: Vec<Drift>,
}

/// WAN and LAN interfaces: the command line wins over the configuration.
fn interfaces(
    args: &RunArgs,
    config: Option<&vpn_config::Config>,
) -> anyhow::Result<(String, Option<String>)> {
    let wan = match (&args.wan, config) {
        (Some(wan), _) => wan.clone(),
        (None, Some(config)) => config.router.wan.clone(),
        (None, None) => bail!("no WAN interface: give --wan or --config"),
    };
    let lan = match (&args.lan, config) {
        (Some(lan), _) => Some(lan.clone()),
        (None, Some(config)) => {
            if config.router.lan.len() > 1 {
                tracing::warn!("only the first LAN interface is served for now");
            }
            config.router.lan.first().cloned()
        }
        (None, None) => None,
    };
    Ok((wan, lan))
}

pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let name = &args.instance.instance;
    if let Some(previous) = RuntimeState::load(name)? {
        if previous.owner_alive() {
            bail!("instance {name} is already running (pid {})", previous.pid);
        }
        tracing::warn!(instance = %name, pid = previous.pid, "removing state left by an agent that did not stop cleanly");
        remove_pins(&previous.pin_dir)?;
        remove_state_file(name)?;
    }

    // Configuration errors stop us before anything is attached.
    let config = match &args.config {
        Some(path) => Some(vpn_config::Config::load(path).map_err(|errors| {
            anyhow::anyhow!("{errors}\n{}: {} problem(s)", path.display(), errors.len())
        })?),
        None => None,
    };
    let static_tunnels = match &args.static_tunnels {
        Some(path) => static_tunnels::load(path)?,
        None => Vec::new(),
    };
    let signals = StopSignals::install()?;
    bpffs::ensure_mounted()?;
    create_private_dir(std::path::Path::new(PIN_ROOT))?;
    let pin_dir = name.pin_dir();
    remove_pins(&pin_dir)?;

    let (wan, lan) = interfaces(args, config.as_ref())?;
    if !static_tunnels.is_empty() && lan.is_none() {
        bail!("static tunnels need a LAN interface (--lan, or lan in the configuration)");
    }
    let mut requests = vec![AttachRequest {
        role: InterfaceRole::Wan,
        ifname: wan,
        mode: args.xdp_mode,
    }];
    if let Some(lan) = &lan {
        requests.push(AttachRequest {
            role: InterfaceRole::Lan,
            ifname: lan.clone(),
            mode: args.xdp_mode,
        });
    }

    let datapath = match Datapath::load(&pin_dir, &requests) {
        Ok(datapath) => datapath,
        Err(err) => {
            // Programs already attached were detached when the object was dropped; pins too.
            remove_pins(&pin_dir)?;
            return Err(err);
        }
    };
    let mut parts = Running {
        datapath,
        tunnels: None,
        ike: None,
        sysctls: None,
        nat: None,
        state_stored: false,
        metrics: None,
        control: None,
        config: config.clone(),
    };
    if let Err(err) = parts.start(
        name,
        config.as_ref(),
        static_tunnels.clone(),
        &requests,
        args.workers,
    ) {
        let _ = parts.shutdown(name);
        return Err(err);
    }
    if let Some(listen) = args.metrics {
        match MetricsServer::start(listen, name) {
            Ok(server) => parts.metrics = Some(server),
            Err(err) => {
                let _ = parts.shutdown(name);
                return Err(err);
            }
        }
    }
    tracing::info!(instance = %name, pin_dir = %pin_dir.display(), "datapath ready");

    let worker_file = name.worker_file();
    let system_file = name.system_file();
    let mut static_wanted = static_tunnels;
    let mut reported_drift = Vec::new();
    let wake = parts.ike.as_ref().map(IkeTunnels::wake);
    let mut watch = match LinkWatch::open() {
        Ok(watch) => Some(watch),
        Err(err) => {
            tracing::warn!(error = %format!("{err:#}"), "interface changes will not be followed");
            None
        }
    };
    let wan_name = requests[0].ifname.clone();
    let signal = signals.wait(wake, |occasion| match occasion {
        Occasion::Tick | Occasion::Ike => {
            if let (Occasion::Tick, Some(nat)) = (occasion, parts.nat.as_mut()) {
                nat.tick();
            }
            if matches!(occasion, Occasion::Tick) && watch.as_mut().is_some_and(LinkWatch::changed) {
                follow_interfaces(&mut parts, &wan_name, lan.as_deref());
            }
            if let Some(tunnels) = parts.tunnels.as_mut() {
                if let Some(ike) = parts.ike.as_mut() {
                    if ike.poll() {
                        apply(tunnels, &static_wanted, Some(ike));
                    }
                    ike.applied();
                }
                if matches!(occasion, Occasion::Ike) {
                    return;
                }
                tunnels.expire(std::time::Instant::now());
                if let Err(err) = write_private_json(&worker_file, &tunnels.report()) {
                    tracing::warn!(error = %err, "could not publish worker counters");
                }
            }
            if let Some(sysctls) = &parts.sysctls {
                let drift = sysctls.drift();
                for d in drift.iter().filter(|d| !reported_drift.contains(*d)) {
                    tracing::warn!(key = %d.key, wanted = %d.wanted, found = %d.found, "sysctl changed behind our back");
                }
                let report = SystemReport {
                    sysctl_drift: drift.clone(),
                };
                if let Err(err) = write_private_json(&system_file, &report) {
                    tracing::warn!(error = %err, "could not publish system state");
                }
                reported_drift = drift;
            }
        }
        Occasion::Reload => {
            if let Some(new) = reload(args.static_tunnels.as_deref()) {
                static_wanted = new;
            }
            if let Some(path) = args.config.as_deref() {
                parts.reload_config(path, name);
            }
            if let Some(tunnels) = parts.tunnels.as_mut() {
                apply(tunnels, &static_wanted, parts.ike.as_ref());
            }
        }
    });
    tracing::info!(instance = %name, signal = ?signal, "stopping");
    let shutdown = parts.shutdown(name);
    for file in [worker_file, system_file, name.ike_file()] {
        let _ = std::fs::remove_file(file);
    }
    shutdown?;
    tracing::info!(instance = %name, "stopped cleanly");
    Ok(())
}

/// What a running agent set up, torn down in reverse order by [`Running::shutdown`], also when
/// start-up fails half-way.
struct Running {
    datapath: Datapath,
    tunnels: Option<TunnelRuntime>,
    ike: Option<IkeTunnels>,
    sysctls: Option<AppliedSysctls>,
    nat: Option<NatRuntime>,
    state_stored: bool,
    metrics: Option<MetricsServer>,
    control: Option<ControlSocket>,
    /// The configuration running now (for reloads).
    config: Option<vpn_config::Config>,
}

impl Running {
    /// Everything after the datapath: tunnels, IKE, the state file, the sysctl policy, NAT.
    fn start(
        &mut self,
        name: &crate::instance::InstanceName,
        config: Option<&vpn_config::Config>,
        static_tunnels: Vec<static_tunnels::StaticTunnel>,
        requests: &[AttachRequest],
        workers: Option<u32>,
    ) -> anyhow::Result<()> {
        let ike_wanted = config.is_some_and(|c| !c.tunnels.is_empty());
        if !static_tunnels.is_empty() || ike_wanted {
            // The command line wins over the configuration.
            let workers = workers.or(config.and_then(|c| c.router.workers));
            self.tunnels = Some(TunnelRuntime::start(
                &mut self.datapath,
                static_tunnels,
                workers,
            )?);
        }
        // IKE runs on the WAN address; negotiated CHILD SAs join the static tunnels.
        if let Some(config) = config.filter(|_| ike_wanted) {
            let wan = interface_ipv4(&requests[0].ifname)?
                .with_context(|| {
                    format!(
                        "interface {} has no IPv4 address for IKE",
                        requests[0].ifname
                    )
                })
                .context("starting IKE")?;
            self.ike = IkeTunnels::start(config, wan, name.ike_file()).context("starting IKE")?;
            if let Some(ike) = &self.ike {
                let socket = ControlSocket::start(&name.control_socket(), ike.commander())?;
                self.control = Some(socket);
            }
        }
        RuntimeState {
            instance: name.to_string(),
            pid: std::process::id(),
            pin_dir: name.pin_dir(),
            interfaces: self.datapath.attached().to_vec(),
        }
        .store(name)?;
        self.state_stored = true;
        if let Some(config) = config.filter(|c| c.sysctl.manage) {
            self.sysctls = Some(
                AppliedSysctls::apply(
                    sysctl::desired(&config.sysctl),
                    config.sysctl.restore_on_exit,
                )
                .context("applying the sysctl policy")?,
            );
        }
        // NAT masquerade (the configuration's [[nat]] rules).
        if let Some(config) = config {
            self.nat =
                NatRuntime::start(&mut self.datapath, &config.nat).context("starting NAT")?;
            // Decrypted tunnel traffic reaches the kernel from the worker, not through XDP.
            if let (Some(_), Some(tunnels)) = (&self.nat, &self.tunnels) {
                tunnels.enable_nat(|| WorkerNat::open(&name.pin_dir()))?;
            }
        }
        Ok(())
    }

    /// SIGHUP: re-reads the configuration and applies what changed: tunnels and routes
    /// (unchanged tunnels keep their SAs), the sysctl policy, NAT rules. A file with errors,
    /// unreadable secrets or NAT rules the datapath cannot serve changes nothing; so does one
    /// that moves the interfaces, which XDP is attached to (that takes a restart).
    fn reload_config(&mut self, path: &std::path::Path, name: &crate::instance::InstanceName) {
        tracing::info!(file = %path.display(), "reloading the configuration");
        let refuse = |why: &str| {
            tracing::error!(
                "reload of {} refused, the running configuration is kept: {why}",
                path.display()
            );
        };
        let config = match vpn_config::Config::load(path) {
            Ok(config) => config,
            Err(errors) => return refuse(&format!("{} problem(s):\n{errors}", errors.len())),
        };
        if let Some(running) = &self.config
            && (running.router.wan != config.router.wan || running.router.lan != config.router.lan)
        {
            return refuse(&format!(
                "router.wan/router.lan changed ({} {:?} -> {} {:?}): the XDP programs stay where they are attached until the agent restarts",
                running.router.wan, running.router.lan, config.router.wan, config.router.lan
            ));
        }
        if let Err(err) =
            crate::datapath::nat::check_out_interfaces(self.datapath.attached(), &config.nat)
        {
            return refuse(&format!("nat: {err:#}"));
        }
        match (self.ike.as_mut(), config.tunnels.is_empty()) {
            (Some(ike), _) => match ike.reload(&config) {
                Ok(summary) => tracing::info!(%summary, "tunnels reloaded"),
                Err(err) => return refuse(&format!("{err:#}")),
            },
            (None, false) => {
                return refuse(
                    "tunnels added to a configuration that ran none: IKE starts with the agent, restart it",
                );
            }
            (None, true) => {}
        }
        if let Err(err) = self.reload_sysctls(&config) {
            tracing::error!(error = %format!("{err:#}"), "the new sysctl policy is applied only in part");
        }
        if let Err(err) = self.reload_nat(&config, name) {
            tracing::error!(error = %format!("{err:#}"), "the new NAT rules are not applied");
        }
        self.config = Some(config);
        tracing::info!("configuration reloaded");
    }

    fn reload_sysctls(&mut self, config: &vpn_config::Config) -> anyhow::Result<()> {
        if self.config.as_ref().map(|c| &c.sysctl) == Some(&config.sysctl) {
            return Ok(());
        }
        let policy = &config.sysctl;
        match (self.sysctls.as_mut(), policy.manage) {
            (Some(applied), true) => {
                applied.update(sysctl::desired(policy), policy.restore_on_exit)
            }
            (None, true) => {
                self.sysctls = Some(AppliedSysctls::apply(
                    sysctl::desired(policy),
                    policy.restore_on_exit,
                )?);
                Ok(())
            }
            (Some(_), false) => {
                if let Some(applied) = self.sysctls.take() {
                    applied.restore();
                }
                Ok(())
            }
            (None, false) => Ok(()),
        }
    }

    fn reload_nat(
        &mut self,
        config: &vpn_config::Config,
        name: &crate::instance::InstanceName,
    ) -> anyhow::Result<()> {
        if self.config.as_ref().map(|c| &c.nat) == Some(&config.nat) {
            return Ok(());
        }
        match self.nat.as_mut() {
            Some(nat) => nat.set_rules(self.datapath.attached(), &config.nat),
            None => {
                self.nat = NatRuntime::start(&mut self.datapath, &config.nat)?;
                if let (Some(_), Some(tunnels)) = (&self.nat, &self.tunnels) {
                    tunnels.enable_nat(|| WorkerNat::open(&name.pin_dir()))?;
                }
                Ok(())
            }
        }
    }

    fn shutdown(self, name: &crate::instance::InstanceName) -> anyhow::Result<()> {
        if let Some(control) = self.control {
            control.stop();
        }
        if let Some(metrics) = self.metrics {
            metrics.stop();
        }
        if let Some(ike) = self.ike {
            ike.stop();
        }
        if let Some(tunnels) = self.tunnels {
            tunnels.stop();
        }
        if let Some(nat) = self.nat {
            nat.stop();
        }
        if let Some(sysctls) = self.sysctls {
            sysctls.restore();
        }
        let detached = self.datapath.shutdown();
        if self.state_stored {
            remove_state_file(name)?;
        }
        detached
    }
}

#[derive(Debug)]
enum StopSignal {
    Interrupt,
    Terminate,
}

/// Why the wait loop calls back.
#[derive(Clone, Copy)]
enum Occasion {
    /// Twice a second: housekeeping and publishing counters.
    Tick,
    /// The IKE engine has news for the datapath (and waits until it is applied).
    Ike,
    /// SIGHUP: re-read the configuration.
    Reload,
}

/// SIGHUP: re-reads the static tunnels. A file with errors changes nothing: what runs keeps
/// running.
fn reload(path: Option<&std::path::Path>) -> Option<Vec<static_tunnels::StaticTunnel>> {
    let path = path?;
    tracing::info!(file = %path.display(), "reloading static tunnels");
    match static_tunnels::load(path) {
        Ok(wanted) => Some(wanted),
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "reload refused; the running tunnels are unchanged");
            None
        }
    }
}

/// The kernel says links, addresses or routes changed: IKE follows the WAN address
/// (negotiating the tunnels again from the new one), the kernel routes' source the LAN
/// address, and routes removed behind our back are put back.
fn follow_interfaces(parts: &mut Running, wan: &str, lan: Option<&str>) {
    if let Some(ike) = parts.ike.as_mut() {
        match interface_ipv4(wan) {
            Ok(Some(address)) if address != ike.wan() => {
                tracing::warn!(interface = %wan, from = %ike.wan(), to = %address, "WAN address changed: IKE moves to it and the tunnels are negotiated again");
                if let Err(err) = ike.rebind(address) {
                    tracing::error!(error = %format!("{err:#}"), "IKE could not follow the WAN address");
                }
            }
            Ok(None) => {
                tracing::warn!(interface = %wan, "the WAN interface has no IPv4 address: IKE waits for one")
            }
            Ok(Some(_)) => {}
            Err(err) => tracing::warn!(error = %format!("{err:#}"), "reading the WAN address"),
        }
    }
    if let (Some(tunnels), Some(lan)) = (parts.tunnels.as_mut(), lan) {
        match interface_ipv4(lan) {
            Ok(source) => tunnels.set_route_source(source),
            Err(err) => tracing::warn!(error = %format!("{err:#}"), "reading the LAN address"),
        }
    }
    if let Some(tunnels) = parts.tunnels.as_mut() {
        tunnels.repair_kernel_routes();
    }
}

/// Brings the datapath to the static tunnels plus the ones IKE negotiated, and their routes.
fn apply(
    tunnels: &mut TunnelRuntime,
    static_wanted: &[static_tunnels::StaticTunnel],
    ike: Option<&IkeTunnels>,
) {
    let mut wanted = static_wanted.to_vec();
    let mut routes = static_routes(static_wanted);
    if let Some(ike) = ike {
        wanted.extend(ike.wanted());
        for (prefix, tunnel) in ike.routes() {
            if let Some(other) = routes.get(&prefix) {
                tracing::warn!(%prefix, tunnel = ?other, "a static tunnel has this route already: IKE tunnels do not get it");
                continue;
            }
            routes.insert(prefix, tunnel);
        }
    }
    if let Err(err) = tunnels.apply(wanted, &routes, std::time::Instant::now()) {
        tracing::error!(error = %format!("{err:#}"), "tunnel changes applied only in part");
    }
    let mut configured: Vec<String> = static_wanted.iter().map(|t| t.name.clone()).collect();
    configured.extend(ike.map(IkeTunnels::names).unwrap_or_default());
    tunnels.keep_devices(&configured);
}

/// Waits for SIGINT or SIGTERM. The handlers are installed before the datapath is loaded, so
/// that a signal arriving during start-up is not lost and still triggers a clean detach.
struct StopSignals {
    runtime: tokio::runtime::Runtime,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let (term, int, hup) = runtime
            .block_on(async {
                Ok::<_, std::io::Error>((
                    signal(SignalKind::terminate())?,
                    signal(SignalKind::interrupt())?,
                    signal(SignalKind::hangup())?,
                ))
            })
            .context("installing SIGTERM/SIGINT/SIGHUP handlers")?;
        Ok(Self {
            runtime,
            term,
            int,
            hup,
        })
    }

    /// Waits for a stop signal, calling `on` twice a second, on every SIGHUP, and whenever
    /// `ike` is notified meanwhile.
    fn wait(
        mut self,
        ike: Option<std::sync::Arc<tokio::sync::Notify>>,
        mut on: impl FnMut(Occasion),
    ) -> StopSignal {
        let ike = ike.unwrap_or_default();
        self.runtime.block_on(async {
            let mut interval = tokio::time::interval(std::time::Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = self.int.recv() => return StopSignal::Interrupt,
                    _ = self.term.recv() => return StopSignal::Terminate,
                    _ = self.hup.recv() => on(Occasion::Reload),
                    _ = ike.notified() => on(Occasion::Ike),
                    _ = interval.tick() => on(Occasion::Tick),
                }
            }
        })
    }
}

fn remove_state_file(name: &crate::instance::InstanceName) -> anyhow::Result<()> {
    let path = name.state_file();
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}
