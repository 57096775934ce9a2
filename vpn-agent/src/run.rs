//! `vpn-agent run`: load the datapath, publish the instance's state, wait for a stop signal,
//! then detach and clean up exactly what was set up.

use anyhow::{Context as _, bail};
use vpn_common::InterfaceRole;

use crate::{
    bpffs,
    cli::RunArgs,
    datapath::{
        loader::{AttachRequest, Datapath, remove_pins},
        static_tunnels,
        tunnels::TunnelRuntime,
    },
    instance::{PIN_ROOT, RuntimeState, create_private_dir, write_private_json},
    system::sysctl::{self, AppliedSysctls, Drift},
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

    let mut datapath = match Datapath::load(&pin_dir, &requests) {
        Ok(datapath) => datapath,
        Err(err) => {
            // Programs already attached were detached when the object was dropped; pins too.
            remove_pins(&pin_dir)?;
            return Err(err);
        }
    };
    let tunnels = if static_tunnels.is_empty() {
        None
    } else {
        match TunnelRuntime::start(&mut datapath, static_tunnels) {
            Ok(runtime) => Some(runtime),
            Err(err) => {
                datapath.shutdown()?;
                return Err(err);
            }
        }
    };
    let state = RuntimeState {
        instance: name.to_string(),
        pid: std::process::id(),
        pin_dir: pin_dir.clone(),
        interfaces: datapath.attached().to_vec(),
    };
    if let Err(err) = state.store(name) {
        if let Some(tunnels) = tunnels {
            tunnels.stop();
        }
        datapath.shutdown()?;
        return Err(err);
    }
    let sysctls = match config.as_ref().filter(|c| c.sysctl.manage) {
        Some(config) => match AppliedSysctls::apply(
            sysctl::desired(&config.sysctl),
            config.sysctl.restore_on_exit,
        ) {
            Ok(applied) => Some(applied),
            Err(err) => {
                if let Some(tunnels) = tunnels {
                    tunnels.stop();
                }
                datapath.shutdown()?;
                remove_state_file(name)?;
                return Err(err.context("applying the sysctl policy"));
            }
        },
        None => None,
    };
    tracing::info!(instance = %name, pin_dir = %pin_dir.display(), "datapath ready");

    let worker_file = name.worker_file();
    let system_file = name.system_file();
    let mut tunnels = tunnels;
    let mut reported_drift = Vec::new();
    let signal = signals.wait(|occasion| match occasion {
        Occasion::Tick => {
            if let Some(tunnels) = tunnels.as_mut() {
                tunnels.expire(std::time::Instant::now());
                if let Err(err) = write_private_json(&worker_file, &tunnels.report()) {
                    tracing::warn!(error = %err, "could not publish worker counters");
                }
            }
            if let Some(sysctls) = &sysctls {
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
            if let Some(tunnels) = tunnels.as_mut() {
                reload(tunnels, args.static_tunnels.as_deref());
            }
        }
    });
    tracing::info!(instance = %name, signal = ?signal, "stopping");
    if let Some(tunnels) = tunnels {
        tunnels.stop();
    }
    if let Some(sysctls) = sysctls {
        sysctls.restore();
    }
    let shutdown = datapath.shutdown();
    remove_state_file(name)?;
    let _ = std::fs::remove_file(&worker_file);
    let _ = std::fs::remove_file(&system_file);
    shutdown?;
    tracing::info!(instance = %name, "stopped cleanly");
    Ok(())
}

#[derive(Debug)]
enum StopSignal {
    Interrupt,
    Terminate,
}

/// Why the wait loop calls back.
enum Occasion {
    /// Twice a second: housekeeping and publishing counters.
    Tick,
    /// SIGHUP: re-read the configuration.
    Reload,
}

/// SIGHUP: re-reads the static tunnels and applies the difference. A file with errors changes
/// nothing: what runs keeps running.
fn reload(tunnels: &mut TunnelRuntime, path: Option<&std::path::Path>) {
    let Some(path) = path else {
        return;
    };
    tracing::info!(file = %path.display(), "reloading static tunnels");
    let wanted = match static_tunnels::load(path) {
        Ok(wanted) => wanted,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "reload refused; the running tunnels are unchanged");
            return;
        }
    };
    if let Err(err) = tunnels.apply(wanted, std::time::Instant::now()) {
        tracing::error!(error = %format!("{err:#}"), "reload applied only in part");
    }
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

    /// Waits for a stop signal, calling `on` twice a second and on every SIGHUP meanwhile.
    fn wait(mut self, mut on: impl FnMut(Occasion)) -> StopSignal {
        self.runtime.block_on(async {
            let mut interval = tokio::time::interval(std::time::Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = self.int.recv() => return StopSignal::Interrupt,
                    _ = self.term.recv() => return StopSignal::Terminate,
                    _ = self.hup.recv() => on(Occasion::Reload),
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
