//! Command-line surface of `vpn-agent`.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::instance::InstanceName;

#[derive(Debug, Parser)]
#[command(
    name = "vpn-agent",
    version,
    about = "eBPF/XDP site-to-site IPsec VPN router"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the XDP datapath onto the router's interfaces and run until SIGINT/SIGTERM.
    Run(RunArgs),
    /// Show the datapath's counters of a running instance.
    Status(StatusArgs),
    /// Check a configuration file; every problem is reported as FILE:LINE:COLUMN: FIELD: REASON.
    Validate(ValidateArgs),
    /// List the IKE and CHILD SAs of a running instance (like `swanctl --list-sas`).
    ListSas(StatusArgs),
    /// Negotiate a configured tunnel now (and bring it back after failures again).
    Initiate(TunnelArgs),
    /// Delete a tunnel's SAs and keep it down until `initiate`.
    Terminate(TunnelArgs),
    /// Re-read the static tunnels of a running instance (SIGHUP).
    Reload(InstanceOnly),
    /// Convert a strongSwan ipsec.conf/ipsec.secrets or an AWS generic configuration text
    /// into this format; what cannot be carried over is reported on stderr.
    Import {
        #[command(subcommand)]
        command: crate::import::ImportCommand,
    },
    /// Time the XDP programs with BPF_PROG_TEST_RUN and print JSON (for `cargo xtask bench`).
    #[command(hide = true)]
    BenchXdp(crate::bench_xdp::BenchXdpArgs),
    /// Full-mesh inventories (seed 004).
    Mesh {
        #[command(subcommand)]
        command: MeshCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum MeshCommand {
    /// Print one node's router configuration, rendered from the inventory.
    Render {
        /// The inventory (TOML): every node once, with its address, prefixes and keys.
        inventory: std::path::PathBuf,
        /// The node to render.
        #[arg(long)]
        node: String,
    },
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The configuration file (TOML).
    pub file: std::path::PathBuf,
    /// Also load the secrets it references (files must be mode 0600 or stricter).
    #[arg(long)]
    pub secrets: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Router configuration (TOML, see `vpn-agent validate`): interfaces, sysctl policy, and
    /// the tunnels, negotiated with IKEv2.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Internet-facing interface (IKE and ESP arrive here); overrides the configuration's.
    #[arg(long, value_name = "IFACE", required_unless_present = "config")]
    pub wan: Option<String>,
    /// Site-facing interface (clear traffic to tunnel arrives here).
    #[arg(long, value_name = "IFACE")]
    pub lan: Option<String>,
    #[command(flatten)]
    pub instance: InstanceArg,
    /// Static-key tunnels to run (TOML; keys in root-only files). Needs a LAN interface.
    #[arg(long, value_name = "FILE")]
    pub static_tunnels: Option<std::path::PathBuf>,
    /// Serve Prometheus metrics on this local address (e.g. 127.0.0.1:9469), path /metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
    /// How to attach XDP: in the driver (native), or in the generic network stack.
    #[arg(long, value_enum, default_value_t = XdpAttachMode::Native)]
    pub xdp_mode: XdpAttachMode,
    /// Most crypto workers (threads) to run, one per receive queue of the WAN and LAN
    /// interfaces; overrides the configuration's `router.workers`. Default: one per queue.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(vpn_config::MAX_WORKERS)))]
    pub workers: Option<u32>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub instance: InstanceArg,
    /// Print JSON for scripts instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TunnelArgs {
    /// The tunnel's name in the configuration.
    pub name: String,
    #[command(flatten)]
    pub instance: InstanceArg,
}

#[derive(Debug, Args)]
pub struct InstanceOnly {
    #[command(flatten)]
    pub instance: InstanceArg,
}

#[derive(Debug, Args)]
pub struct InstanceArg {
    /// Instance name: one agent per name; its maps are pinned under /sys/fs/bpf/vpn-appliance/NAME.
    #[arg(long, default_value = "default", value_parser = InstanceName::parse)]
    pub instance: InstanceName,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpAttachMode {
    /// In the NIC driver (XDP_FLAGS_DRV_MODE): the fast path.
    Native,
    /// In the generic stack (XDP_FLAGS_SKB_MODE): for drivers without XDP support.
    Generic,
}

impl XdpAttachMode {
    pub fn to_aya(self) -> aya::programs::XdpMode {
        match self {
            XdpAttachMode::Native => aya::programs::XdpMode::Driver,
            XdpAttachMode::Generic => aya::programs::XdpMode::Skb,
        }
    }
}
