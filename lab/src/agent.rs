//! Running `vpn-agent` on a lab router and reading its status, as the demo and the tests do.

use std::{
    collections::BTreeMap,
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::{Lab, Node, topology::ifname};

/// How long an agent may take to load and attach before we call it failed.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A `vpn-agent run` process inside a lab router's namespace. Dropping it kills the agent.
pub struct AgentProcess {
    child: Option<Child>,
    agent_bin: PathBuf,
    instance: String,
    log_path: PathBuf,
}

impl AgentProcess {
    /// Starts the agent on `router` with its `wan` and `lan` interfaces and waits until its
    /// datapath is attached and its status readable.
    pub fn start(lab: &Lab, router: Node, agent_bin: &Path) -> anyhow::Result<Self> {
        Self::start_with(lab, router, agent_bin, &[])
    }

    /// Like [`AgentProcess::start`], with more `vpn-agent run` arguments.
    pub fn start_with(
        lab: &Lab,
        router: Node,
        agent_bin: &Path,
        extra_args: &[&str],
    ) -> anyhow::Result<Self> {
        let mut args = vec!["--wan", ifname::WAN, "--lan", ifname::LAN];
        args.extend_from_slice(extra_args);
        Self::start_bare(lab, router, agent_bin, &args)
    }

    /// `vpn-agent run --instance NAME ARGS...` with exactly these arguments (interfaces
    /// included, or a configuration that names them).
    pub fn start_bare(
        lab: &Lab,
        router: Node,
        agent_bin: &Path,
        args: &[&str],
    ) -> anyhow::Result<Self> {
        let instance = lab.ns(router);
        let log_path = std::env::temp_dir().join(format!("{instance}.agent.log"));
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let child = lab
            .command(router, &agent_bin.to_string_lossy())
            .args(["run", "--instance", &instance])
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} in {instance}", agent_bin.display()))?;
        let mut agent = AgentProcess {
            child: Some(child),
            agent_bin: agent_bin.to_owned(),
            instance,
            log_path,
        };
        agent.wait_ready()?;
        Ok(agent)
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "vpn-agent for {} exited during start-up ({status}):\n{}",
                    self.instance,
                    self.log()
                );
            }
            if self
                .status_command()
                .arg("--json")
                .output()?
                .status
                .success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "vpn-agent for {} not ready after {START_TIMEOUT:?}:\n{}",
                    self.instance,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn status_command(&self) -> Command {
        let mut cmd = Command::new(&self.agent_bin);
        cmd.args(["status", "--instance", &self.instance]);
        cmd
    }

    /// `vpn-agent status --json`, parsed.
    pub fn status(&self) -> anyhow::Result<StatusSnapshot> {
        let output = self.status_command().arg("--json").output()?;
        if !output.status.success() {
            bail!(
                "vpn-agent status failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        serde_json::from_slice(&output.stdout).context("parsing vpn-agent status --json")
    }

    /// `vpn-agent status --json`, as the agent printed it.
    pub fn status_json(&self) -> anyhow::Result<String> {
        let output = self.status_command().arg("--json").output()?;
        if !output.status.success() {
            bail!(
                "vpn-agent status failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `vpn-agent status`, the human table.
    pub fn status_table(&self) -> anyhow::Result<String> {
        let output = self.status_command().output()?;
        if !output.status.success() {
            bail!(
                "vpn-agent status failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// SIGHUP: the agent re-reads its configuration.
    pub fn reload(&self) -> anyhow::Result<()> {
        let child = self.child.as_ref().context("agent not running")?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .context("signalling vpn-agent")
    }

    /// SIGKILL, as a crash or the OOM killer would: no clean-up runs in the agent.
    pub fn kill(mut self) -> anyhow::Result<()> {
        let mut child = self.child.take().context("agent already stopped")?;
        child.kill().context("killing vpn-agent")?;
        child.wait()?;
        Ok(())
    }

    /// The agent binary this process runs.
    pub fn agent_bin(&self) -> &Path {
        &self.agent_bin
    }

    /// Lets the agent outlive this value (`demo --keep`); `lab down` stops it.
    pub fn leave_running(mut self) {
        self.child = None;
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let mut child = self.child.take().context("agent already stopped")?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .context("signalling vpn-agent")?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "vpn-agent did not stop within {STOP_TIMEOUT:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if !status.success() {
            bail!("vpn-agent exited with {status}:\n{}", self.log());
        }
        let _ = std::fs::remove_file(&self.log_path);
        Ok(())
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Not stopped on purpose (a test failed half-way): ask it to stop cleanly first, so it
        // detaches and unpins; kill it only if it does not.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        remove_instance_state(&self.instance);
        if std::thread::panicking() {
            eprintln!("vpn-agent log of {}:\n{}", self.instance, self.log());
        }
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// Removes what an agent instance leaves behind if it could not clean up itself (it was
/// killed): its pinned maps and its state files. Paths as in vpn-agent's `instance` module.
fn remove_instance_state(instance: &str) {
    let _ = std::fs::remove_dir_all(Path::new("/sys/fs/bpf/vpn-appliance").join(instance));
    for suffix in ["json", "worker.json", "system.json"] {
        let _ = std::fs::remove_file(
            Path::new("/run/vpn-appliance").join(format!("{instance}.{suffix}")),
        );
    }
}

/// The parts of `vpn-agent status --json` that the lab reads.
#[derive(Clone, Debug, Deserialize)]
pub struct StatusSnapshot {
    pub instance: String,
    pub pin_dir: PathBuf,
    pub interfaces: Vec<InterfaceSnapshot>,
    #[serde(default)]
    pub datapath_events: BTreeMap<String, u64>,
    #[serde(default)]
    pub worker: Option<WorkerSnapshot>,
    #[serde(default)]
    pub sysctl_drift: Vec<SysctlDrift>,
    #[serde(default)]
    pub nat: NatSnapshot,
    /// IKE SAs, when the agent negotiates tunnels.
    #[serde(default)]
    pub ike: Option<IkeSnapshot>,
}

/// The NAT's counters in `vpn-agent status --json`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct NatSnapshot {
    /// (Rule, destination prefix) entries installed in XDP.
    #[serde(default)]
    pub rules: u64,
    /// Flows tracked now.
    pub flows: u64,
    /// Event name (translated, new_flows, allocation_failed, ...) -> count.
    pub events: BTreeMap<String, u64>,
}

impl NatSnapshot {
    /// The count of `event`, 0 if the agent does not report it.
    pub fn event(&self, event: &str) -> u64 {
        self.events.get(event).copied().unwrap_or(0)
    }
}

/// The IKE SAs in `vpn-agent status --json`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct IkeSnapshot {
    pub ike_sas: Vec<IkeSaSnapshot>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct IkeSaSnapshot {
    pub tunnel: String,
    /// Our address and port.
    #[serde(default)]
    pub local: String,
    pub spi_i: String,
    pub spi_r: String,
    /// CONNECTING, ESTABLISHED, DELETING.
    pub state: String,
    pub initiator: bool,
    pub child_sas: Vec<ChildSaSnapshot>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ChildSaSnapshot {
    pub spi_in: u32,
    pub spi_out: u32,
    pub udp_encap: bool,
    pub local_ts: Vec<String>,
    pub remote_ts: Vec<String>,
}

/// A managed sysctl whose value changed behind the agent's back.
#[derive(Clone, Debug, Deserialize)]
pub struct SysctlDrift {
    pub key: String,
    pub wanted: String,
    pub found: String,
}

/// The crypto workers' counters in `vpn-agent status --json` (summed over the workers).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct WorkerSnapshot {
    pub decrypted: u64,
    pub encrypted: u64,
    pub sent_xsk: u64,
    pub sent_kernel: u64,
    pub dropped: BTreeMap<String, u64>,
    pub sas: Vec<SaSnapshot>,
    #[serde(default)]
    pub lifetime_events: BTreeMap<String, u64>,
    /// NAT of decrypted traffic (translated, new_flows, ...).
    #[serde(default)]
    pub nat: BTreeMap<String, u64>,
    /// The receive queue of one worker (`None` in the sum over all of them).
    #[serde(default)]
    pub queue: Option<u32>,
    /// Each worker's own counters (one per receive queue), in the sum.
    #[serde(default)]
    pub workers: Vec<WorkerSnapshot>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SaSnapshot {
    pub tunnel: String,
    pub direction: String,
    pub spi: u32,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct InterfaceSnapshot {
    pub role: String,
    pub name: String,
    pub received: BTreeMap<String, CounterSnapshot>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub packets: u64,
    pub bytes: u64,
}

impl StatusSnapshot {
    /// Packets of `class` received on the interface with `role`; an error if either is unknown.
    pub fn packets(&self, role: &str, class: &str) -> anyhow::Result<u64> {
        let interface = self
            .interfaces
            .iter()
            .find(|i| i.role == role)
            .with_context(|| format!("no {role} interface in status"))?;
        let counter = interface
            .received
            .get(class)
            .with_context(|| format!("no class {class} in status"))?;
        Ok(counter.packets)
    }

    /// Packets of every class received, summed over interfaces.
    pub fn total_packets(&self) -> u64 {
        self.interfaces
            .iter()
            .flat_map(|i| i.received.values())
            .map(|c| c.packets)
            .sum()
    }
}
