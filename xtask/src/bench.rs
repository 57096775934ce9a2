//! `cargo xtask bench`: throughput and latency of the appliance against its baselines, all
//! measured in one run on the namespace lab (issue 7, first version).
//!
//! Variants, each on a fresh lab per repetition, repetitions interleaved (and the variant order
//! rotated) so that drift on a shared machine affects all of them alike:
//! - `plain-forwarding`: kernel routing between the sites, no tunnel (the forwarding ceiling);
//! - `strongswan-libipsec`: strongSwan 5.9 with kernel-libipsec (userspace ESP through a TUN
//!   device, the only ESP this kernel has) on both routers, PSK, AES-256-GCM;
//! - `appliance-esp-in-udp` / `appliance-raw-esp`: vpn-agent with static AES-256-GCM tunnels;
//! - `appliance-esp-in-udp-2workers`: the same on links with two queues, two crypto workers
//!   (cores) per router, one per queue (issue 4); on a 2-vCPU machine the workers compete with
//!   the hosts, iperf3 and the kernel for the same two cores.
//! - `appliance-esp-in-udp-aes128` / `appliance-raw-esp-aes128`: the same with AES-128-GCM.
//!
//! Figures per variant: iperf3 TCP goodput host-a -> host-b with 1 and 4 streams, UDP packet rate
//! received at 64- and 1372-byte payloads (1400-byte IP packets, the tunnel MTU), ping latency
//! idle and under a 1-stream TCP load, and CPU seconds per GB (whole machine, and the processes
//! in the router namespaces). Plus the crypto ceiling: `openssl speed -evp aes-256-gcm` at 1024
//! and 8192 bytes (and, with `--criterion`, the vpn-esp criterion bench).
//!
//! Output: `<target>/bench/report.json` (machine description and every sample), `report.md`
//! (medians and ratios) and `chart.svg`. `--quick` (1 s per measurement, one repetition) is the
//! smoke test in `cargo xtask test`: it checks that every figure was produced, never its value.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use vpn_lab::{
    AgentProcess, Lab, LabSpec, Node, addr,
    registry::teardown_owned_by_current,
    static_tunnel::{Encap, StaticTunnelFiles},
    strongswan::{Charon, Connection, Psk},
};

use crate::{bench_xdp, compile, step, workspace_root};

/// The `--only` name of the XDP microbenchmarks.
const XDP_SECTION: &str = "xdp";

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Smoke-test mode: 1 s per measurement, one repetition, no criterion.
    #[arg(long)]
    pub quick: bool,
    /// Repetitions of every variant, interleaved (default 3, 1 with --quick).
    #[arg(long)]
    pub reps: Option<u32>,
    /// Seconds per iperf3 measurement (default 5, 1 with --quick).
    #[arg(long)]
    pub seconds: Option<u32>,
    /// Output folder (default: <cargo target dir>/bench, or bench/quick with --quick).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The vpn-agent binary to measure (default: $VPN_AGENT_BIN, else build it).
    #[arg(long)]
    pub agent: Option<PathBuf>,
    /// Also run `cargo bench -p vpn-esp --bench seal_open -- --quick aes256gcm` and the worker's
    /// per-packet cost at 1, 100 and 10,000 SAs, `--bench sa_scale` (a few minutes).
    #[arg(long)]
    pub criterion: bool,
    /// Only these variants (comma-separated names; default: all); `xdp` names the XDP
    /// microbenchmarks (BPF_PROG_TEST_RUN), which run otherwise only when no list is given.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Profile the processes in the router namespaces (charon, vpn-agent) with `perf record -g`
    /// during an extra 1-stream TCP run per tunnel variant (first repetition only, so the
    /// figures are not perturbed); writes perf-<variant>.txt next to the report.
    #[arg(long)]
    pub perf: bool,
    /// Replace the "Latest run" section of docs/benchmarks.md with this run's table.
    #[arg(long)]
    pub update_docs: bool,
}

/// What carries the traffic between the two sites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Plain,
    StrongSwan,
    ApplianceUdp,
    ApplianceEsp,
    ApplianceUdp2Workers,
    ApplianceUdp128,
    ApplianceEsp128,
}

const VARIANTS: [Variant; 7] = [
    Variant::Plain,
    Variant::StrongSwan,
    Variant::ApplianceUdp,
    Variant::ApplianceEsp,
    Variant::ApplianceUdp2Workers,
    Variant::ApplianceUdp128,
    Variant::ApplianceEsp128,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain-forwarding",
            Variant::StrongSwan => "strongswan-libipsec",
            Variant::ApplianceUdp => "appliance-esp-in-udp",
            Variant::ApplianceEsp => "appliance-raw-esp",
            Variant::ApplianceUdp2Workers => "appliance-esp-in-udp-2workers",
            Variant::ApplianceUdp128 => "appliance-esp-in-udp-aes128",
            Variant::ApplianceEsp128 => "appliance-raw-esp-aes128",
        }
    }

    /// Queues of every lab link, and so crypto workers per router for the appliance.
    fn queues(self) -> u16 {
        match self {
            Variant::ApplianceUdp2Workers => 2,
            _ => 1,
        }
    }

    /// The appliance's encapsulation and AES key size in bytes; `None` for the baselines.
    fn appliance(self) -> Option<(Encap, usize)> {
        match self {
            Variant::Plain | Variant::StrongSwan => None,
            Variant::ApplianceUdp | Variant::ApplianceUdp2Workers => Some((Encap::Udp, 32)),
            Variant::ApplianceEsp => Some((Encap::Esp, 32)),
            Variant::ApplianceUdp128 => Some((Encap::Udp, 16)),
            Variant::ApplianceEsp128 => Some((Encap::Esp, 16)),
        }
    }

    fn description(self) -> &'static str {
        match self {
            Variant::Plain => "kernel IPv4 forwarding on both routers, no tunnel",
            Variant::StrongSwan => {
                "strongSwan 5.9 charon on both routers, kernel-libipsec (userspace ESP through a \
                 TUN device, always ESP-in-UDP 4500), IKEv2 PSK, ESP AES-256-GCM-16"
            }
            Variant::ApplianceUdp => {
                "vpn-agent on both routers, static AES-256-GCM-16 SAs, ESP in UDP 4500 (RFC 3948)"
            }
            Variant::ApplianceEsp => {
                "vpn-agent on both routers, static AES-256-GCM-16 SAs, raw ESP (IP protocol 50)"
            }
            Variant::ApplianceUdp2Workers => {
                "as appliance-esp-in-udp, on 2-queue veth links with 2 crypto workers per \
                 router (one per queue, sharing the SAs)"
            }
            Variant::ApplianceUdp128 => {
                "vpn-agent on both routers, static AES-128-GCM-16 SAs, ESP in UDP 4500 (RFC 3948)"
            }
            Variant::ApplianceEsp128 => {
                "vpn-agent on both routers, static AES-128-GCM-16 SAs, raw ESP (IP protocol 50)"
            }
        }
    }
}

/// Every figure measured per variant: key, unit, what it is.
const METRICS: &[(&str, &str, &str)] = &[
    (
        "tcp_1_stream_gbps",
        "Gbit/s",
        "iperf3 TCP goodput, 1 stream",
    ),
    (
        "tcp_4_streams_gbps",
        "Gbit/s",
        "iperf3 TCP goodput, 4 streams",
    ),
    (
        "tcp_1_stream_retransmits",
        "segments",
        "TCP retransmits, 1 stream",
    ),
    ("udp_64_rx_kpps", "kpps", "UDP 64-byte payloads received"),
    (
        "udp_1372_rx_kpps",
        "kpps",
        "UDP 1372-byte payloads received",
    ),
    ("ping_idle_avg_ms", "ms", "ping RTT, idle"),
    (
        "ping_loaded_avg_ms",
        "ms",
        "ping RTT under 1-stream TCP load",
    ),
    ("ping_loaded_max_ms", "ms", "max ping RTT under load"),
    ("ping_loaded_loss_pct", "%", "ping loss under load"),
    (
        "cpu_s_per_gb_machine",
        "CPU s/GB",
        "busy CPU seconds of the machine per GB, 1 stream",
    ),
    (
        "cpu_s_per_gb_router_procs",
        "CPU s/GB",
        "CPU seconds of router-namespace processes per GB",
    ),
];

/// Ratios reported between variants (metric, numerator, denominator).
const RATIOS: &[(&str, Variant, Variant)] = &[
    (
        "tcp_1_stream_gbps",
        Variant::ApplianceUdp,
        Variant::StrongSwan,
    ),
    (
        "tcp_4_streams_gbps",
        Variant::ApplianceUdp,
        Variant::StrongSwan,
    ),
    ("udp_64_rx_kpps", Variant::ApplianceUdp, Variant::StrongSwan),
    (
        "udp_1372_rx_kpps",
        Variant::ApplianceUdp,
        Variant::StrongSwan,
    ),
    (
        "tcp_1_stream_gbps",
        Variant::ApplianceEsp,
        Variant::StrongSwan,
    ),
    (
        "tcp_4_streams_gbps",
        Variant::ApplianceEsp,
        Variant::StrongSwan,
    ),
    ("tcp_1_stream_gbps", Variant::ApplianceUdp, Variant::Plain),
    ("tcp_4_streams_gbps", Variant::ApplianceUdp, Variant::Plain),
    ("udp_64_rx_kpps", Variant::ApplianceUdp, Variant::Plain),
    ("udp_1372_rx_kpps", Variant::ApplianceUdp, Variant::Plain),
    ("tcp_1_stream_gbps", Variant::ApplianceEsp, Variant::Plain),
    ("tcp_4_streams_gbps", Variant::ApplianceEsp, Variant::Plain),
    ("tcp_1_stream_gbps", Variant::StrongSwan, Variant::Plain),
    (
        "tcp_4_streams_gbps",
        Variant::ApplianceUdp2Workers,
        Variant::ApplianceUdp,
    ),
    (
        "udp_1372_rx_kpps",
        Variant::ApplianceUdp2Workers,
        Variant::ApplianceUdp,
    ),
    // AES-128-GCM against AES-256-GCM, same encapsulation: what the cipher's share is.
    (
        "tcp_1_stream_gbps",
        Variant::ApplianceUdp128,
        Variant::ApplianceUdp,
    ),
    (
        "udp_1372_rx_kpps",
        Variant::ApplianceUdp128,
        Variant::ApplianceUdp,
    ),
    (
        "tcp_1_stream_gbps",
        Variant::ApplianceEsp128,
        Variant::ApplianceEsp,
    ),
    (
        "tcp_1_stream_gbps",
        Variant::ApplianceUdp128,
        Variant::StrongSwan,
    ),
    (
        "tcp_1_stream_gbps",
        Variant::ApplianceUdp128,
        Variant::Plain,
    ),
    (
        "tcp_1_stream_gbps",
        Variant::ApplianceEsp128,
        Variant::Plain,
    ),
];

const OPENSSL_SIZES: [u32; 2] = [1024, 8192];

struct Settings {
    quick: bool,
    reps: u32,
    seconds: u32,
    out: PathBuf,
    agent: PathBuf,
    variants: Vec<Variant>,
    perf: bool,
}

/// Samples per metric, in run order.
type Samples = BTreeMap<String, Vec<f64>>;
/// One measurement of each metric.
type Figures = Vec<(String, f64)>;

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let agent = match args
        .agent
        .clone()
        .or_else(|| std::env::var_os("VPN_AGENT_BIN").map(PathBuf::from))
    {
        Some(agent) => agent,
        None => {
            let built = compile::build()?;
            // compile::build names <workspace>/target; prefer CARGO_TARGET_DIR's binary.
            let in_target = target_dir().join("release/vpn-agent");
            if in_target.is_file() {
                in_target
            } else {
                built
            }
        }
    };
    let report = execute(args, &agent)?;
    let out = settings_out(args);
    if args.quick && args.only.is_empty() {
        // The smoke test's check: every figure is there (never what it is).
        check_complete(&report)?;
    }
    if args.update_docs {
        update_docs(&report)?;
    }
    eprintln!("\n{}", markdown(&report));
    eprintln!("report: {}", out.join("report.json").display());
    Ok(())
}

/// The `cargo xtask test` step: a quick run that must produce every figure.
pub fn smoke(agent: &Path) -> anyhow::Result<()> {
    let args = BenchArgs {
        quick: true,
        reps: None,
        seconds: None,
        out: None,
        agent: Some(agent.to_owned()),
        criterion: false,
        only: Vec::new(),
        perf: false,
        update_docs: false,
    };
    let report = execute(&args, agent)?;
    check_complete(&report)?;
    let written: Value =
        serde_json::from_slice(&std::fs::read(settings_out(&args).join("report.json"))?)?;
    check_complete(&written)?;
    eprintln!("bench smoke test: every figure present");
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn settings_out(args: &BenchArgs) -> PathBuf {
    args.out.clone().unwrap_or_else(|| {
        let base = target_dir().join("bench");
        if args.quick { base.join("quick") } else { base }
    })
}

fn execute(args: &BenchArgs, agent: &Path) -> anyhow::Result<Value> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the benchmark builds namespace labs and must run as root");
    }
    let run_xdp = args.only.is_empty() || args.only.iter().any(|n| n == XDP_SECTION);
    let variants = if args.only.is_empty() {
        VARIANTS.to_vec()
    } else {
        args.only
            .iter()
            .filter(|name| *name != XDP_SECTION)
            .map(|name| {
                VARIANTS
                    .iter()
                    .copied()
                    .find(|v| v.name() == name)
                    .with_context(|| format!("unknown variant {name}"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let settings = Settings {
        quick: args.quick,
        reps: args.reps.unwrap_or(if args.quick { 1 } else { 3 }).max(1),
        seconds: args
            .seconds
            .unwrap_or(if args.quick { 1 } else { 5 })
            .max(1),
        out: settings_out(args),
        agent: agent.to_owned(),
        variants,
        perf: args.perf,
    };
    std::fs::create_dir_all(&settings.out)
        .with_context(|| format!("creating {}", settings.out.display()))?;
    // The diagnostics are appended per repetition: start from none.
    let _ = std::fs::remove_dir_all(settings.out.join("diag"));
    // Ctrl-C: remove the labs (and with them charon and the agents) this run created.
    let _ = ctrlc::set_handler(|| {
        eprintln!("\ninterrupted: tearing the lab down");
        let _ = teardown_owned_by_current();
        std::process::exit(130);
    });

    let started = Instant::now();
    let xdp = if run_xdp {
        step("bench: XDP per-packet cost (BPF_PROG_TEST_RUN, vpn-agent bench-xdp)");
        Some(bench_xdp::run(agent, settings.quick).context("the XDP microbenchmarks")?)
    } else {
        None
    };
    let mut crypto: Samples = BTreeMap::new();
    let mut samples: BTreeMap<&'static str, Samples> = BTreeMap::new();
    let mut profiles: BTreeMap<&'static str, String> = BTreeMap::new();
    // `--only xdp`: no lab variants, so no repetitions (and no crypto ceiling) either.
    let reps = if settings.variants.is_empty() {
        0
    } else {
        settings.reps
    };
    for rep in 0..reps {
        step(&format!("bench: repetition {}/{}", rep + 1, settings.reps));
        for (size, value) in openssl_speed(if settings.quick { 1 } else { 3 })? {
            crypto
                .entry(format!("openssl_aes_256_gcm_{size}_mbps"))
                .or_default()
                .push(value);
        }
        // Rotate the order so no variant always runs first (or right after the same one).
        let n = settings.variants.len();
        for i in 0..n {
            let variant = settings.variants[(i + rep as usize) % n];
            eprintln!("bench: {} ...", variant.name());
            let t = Instant::now();
            let profile = settings.perf && rep == 0 && variant != Variant::Plain;
            let (figures, profile) = measure_variant(variant, &settings, profile)
                .with_context(|| format!("measuring {}", variant.name()))?;
            if let Some(path) = profile {
                eprintln!("bench: profile of {}: {}", variant.name(), path.display());
                profiles.insert(variant.name(), path.display().to_string());
            }
            let entry = samples.entry(variant.name()).or_default();
            for (metric, value) in figures {
                entry.entry(metric).or_default().push(value);
            }
            eprintln!(
                "bench: {} done in {:.1} s: {}",
                variant.name(),
                t.elapsed().as_secs_f64(),
                summary_line(&samples[variant.name()])
            );
        }
    }
    let criterion = if args.criterion && !settings.quick {
        step("bench: vpn-esp criterion (seal_open, --quick)");
        Some(criterion_bench()?)
    } else {
        None
    };

    let mut report = build_report(&settings, &crypto, &samples, criterion, started.elapsed())?;
    if !profiles.is_empty() {
        report["perf_profiles"] = json!(profiles);
    }
    if let Some(xdp) = xdp {
        report["xdp"] = xdp;
    }
    std::fs::write(
        settings.out.join("report.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    std::fs::write(settings.out.join("report.md"), markdown(&report))?;
    std::fs::write(settings.out.join("chart.svg"), chart_svg(&report))?;
    Ok(report)
}

fn summary_line(samples: &Samples) -> String {
    let last = |k: &str| {
        samples
            .get(k)
            .and_then(|v| v.last())
            .copied()
            .unwrap_or(f64::NAN)
    };
    format!(
        "TCP {:.2} / {:.2} Gbit/s, UDP64 {:.0} kpps, ping under load {:.2} ms",
        last("tcp_1_stream_gbps"),
        last("tcp_4_streams_gbps"),
        last("udp_64_rx_kpps"),
        last("ping_loaded_avg_ms")
    )
}

/// What keeps a variant running; dropped before the lab (field order).
#[allow(dead_code)] // held for their Drop
enum Peers {
    None,
    Strongswan(Charon, Charon),
    Agents(Box<(AgentProcess, AgentProcess, StaticTunnelFiles)>),
}

fn start_variant(lab: &Lab, variant: Variant, agent: &Path) -> anyhow::Result<Peers> {
    Ok(match variant {
        Variant::Plain => Peers::None,
        Variant::StrongSwan => {
            let psk = Psk::random()?;
            let (conn_a, conn_b) = Connection::lab_pair(&psk);
            let a = Charon::start(lab, Node::RouterA)?;
            let b = Charon::start(lab, Node::RouterB)?;
            a.load(&[conn_a])?;
            b.load(&[conn_b])?;
            a.initiate("net")?;
            a.wait_installed("net", Duration::from_secs(10))?;
            b.wait_installed("net", Duration::from_secs(10))?;
            Peers::Strongswan(a, b)
        }
        Variant::ApplianceUdp
        | Variant::ApplianceEsp
        | Variant::ApplianceUdp2Workers
        | Variant::ApplianceUdp128
        | Variant::ApplianceEsp128 => {
            let (encap, key_bytes) = variant.appliance().context("an appliance variant")?;
            let files = StaticTunnelFiles::write_keyed(lab.id(), encap, false, "", key_bytes)?;
            let a_cfg = files.router_a.to_string_lossy().into_owned();
            let b_cfg = files.router_b.to_string_lossy().into_owned();
            let workers = variant.queues().to_string();
            let args = |cfg| ["--static-tunnels", cfg, "--workers", workers.as_str()];
            let a = AgentProcess::start_with(lab, Node::RouterA, agent, &args(&a_cfg))?;
            let b = AgentProcess::start_with(lab, Node::RouterB, agent, &args(&b_cfg))?;
            Peers::Agents(Box::new((a, b, files)))
        }
    })
}

/// Clean shutdown (SIGTERM; their logs and folders are removed). On an error path the values
/// are dropped instead: killed, with their logs left for a look.
fn stop_peers(peers: Peers) -> anyhow::Result<()> {
    match peers {
        Peers::None => Ok(()),
        Peers::Strongswan(a, b) => {
            a.stop()?;
            b.stop()
        }
        Peers::Agents(agents) => {
            let (a, b, _files) = *agents;
            a.stop()?;
            b.stop()
        }
    }
}

/// Checks that the tunnel really carried the measured traffic (and the clear path did not).
fn check_tunnel_used(peers: &Peers, bytes: f64) -> anyhow::Result<()> {
    match peers {
        Peers::None => Ok(()),
        Peers::Strongswan(a, _) => {
            let sa = a.installed_child("net")?.context("CHILD_SA gone")?;
            if (sa.bytes_out as f64) < bytes * 0.9 {
                bail!(
                    "strongSwan sealed only {} bytes of the {bytes} sent: traffic bypassed the tunnel",
                    sa.bytes_out
                );
            }
            Ok(())
        }
        Peers::Agents(agents) => {
            let a = &agents.0;
            // The worker publishes its counters every 500 ms.
            let deadline = Instant::now() + Duration::from_secs(3);
            loop {
                let w = a.status()?.worker.unwrap_or_default();
                let sealed: u64 = w
                    .sas
                    .iter()
                    .filter(|s| s.direction == "out")
                    .map(|s| s.bytes)
                    .sum();
                if sealed as f64 >= bytes * 0.9 {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    bail!("the agent sealed only {sealed} bytes of the {bytes} sent");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn measure_variant(
    variant: Variant,
    s: &Settings,
    profile: bool,
) -> anyhow::Result<(Figures, Option<PathBuf>)> {
    let lab = Lab::up(LabSpec {
        queues: variant.queues(),
        ..LabSpec::default()
    })?;
    let peers = start_variant(&lab, variant, &s.agent)?;
    let mut figures = Vec::new();
    let secs = s.seconds;

    // Warm-up: ARP, the first flows through XDP, charon's first packets.
    ping(&lab, 3, 0.05)?;

    let cpu_before = cpu_snapshot(&lab)?;
    let tcp1 = iperf_tcp(&lab, 1, secs)?;
    let cpu_after = cpu_snapshot(&lab)?;
    let gb = tcp1.bytes / 1e9;
    figures.push(("tcp_1_stream_gbps".into(), tcp1.gbps));
    figures.push(("tcp_1_stream_retransmits".into(), tcp1.retransmits));
    figures.push((
        "cpu_s_per_gb_machine".into(),
        (cpu_after.machine - cpu_before.machine) / gb,
    ));
    figures.push((
        "cpu_s_per_gb_router_procs".into(),
        (cpu_after.routers - cpu_before.routers) / gb,
    ));
    check_tunnel_used(&peers, tcp1.bytes)?;

    let tcp4 = iperf_tcp(&lab, 4, secs)?;
    figures.push(("tcp_4_streams_gbps".into(), tcp4.gbps));

    for (len, key) in [(64, "udp_64_rx_kpps"), (1372, "udp_1372_rx_kpps")] {
        figures.push((key.into(), iperf_udp(&lab, len, secs)?));
    }

    let idle = ping(&lab, if s.quick { 10 } else { 40 }, 0.02)?;
    figures.push(("ping_idle_avg_ms".into(), idle.avg_ms));
    let loaded = ping_under_load(&lab, secs)?;
    figures.push(("ping_loaded_avg_ms".into(), loaded.avg_ms));
    figures.push(("ping_loaded_max_ms".into(), loaded.max_ms));
    figures.push(("ping_loaded_loss_pct".into(), loaded.loss_pct));

    if let Err(err) = write_diagnostics(&lab, variant, &peers, &s.out) {
        eprintln!("bench: diagnostics of {}: {err:#}", variant.name());
    }

    let profile = if profile {
        Some(profile_routers(&lab, variant, secs, &s.out)?)
    } else {
        None
    };

    stop_peers(peers)?;
    lab.down()?;
    Ok((figures, profile))
}

/// Appends what explains losses to `<out>/diag/<variant>.txt`: the agents' status (worker
/// drops by reason, AF_XDP socket statistics) and the link counters of every namespace, as
/// they stand after the variant's measurements.
fn write_diagnostics(lab: &Lab, variant: Variant, peers: &Peers, out: &Path) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let dir = out.join("diag");
    std::fs::create_dir_all(&dir)?;
    let mut text = format!(
        "== {} at {}\n",
        variant.name(),
        utc_string(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default()
        )
    );
    if let Peers::Agents(agents) = peers {
        for (name, agent) in [("router-a", &agents.0), ("router-b", &agents.1)] {
            let _ = writeln!(text, "-- vpn-agent status --json, {name}");
            text.push_str(&agent.status_json().unwrap_or_else(|e| format!("{e:#}")));
            text.push('\n');
        }
    }
    for node in [Node::HostA, Node::RouterA, Node::RouterB, Node::HostB] {
        let output = lab
            .command(node, "ip")
            .args(["-s", "-s", "link", "show"])
            .output()?;
        let _ = writeln!(text, "-- ip -s -s link, {}", node.name());
        text.push_str(&String::from_utf8_lossy(&output.stdout));
    }
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{}.txt", variant.name())))?
        .write_all(text.as_bytes())?;
    Ok(())
}

/// `perf record -g` of every process in the router namespaces during a 1-stream TCP run (process
/// context only, including the kernel work done in their system calls; softirq work on other
/// CPUs is not attributed to them). Writes the report summary; returns its path.
fn profile_routers(lab: &Lab, variant: Variant, secs: u32, out: &Path) -> anyhow::Result<PathBuf> {
    let mut pids = Vec::new();
    for node in [Node::RouterA, Node::RouterB] {
        let output = vpn_lab::netns::ip(&["netns", "pids", &lab.ns(node)])?;
        pids.extend(
            String::from_utf8_lossy(&output.stdout)
                .split_whitespace()
                .map(str::to_owned),
        );
    }
    if pids.is_empty() {
        bail!("no processes in the router namespaces to profile");
    }
    let data = out.join(format!("perf-{}.data", variant.name()));
    let mut perf = Command::new("perf")
        .args(["record", "-g", "-q", "-o"])
        .arg(&data)
        .args(["-p", &pids.join(",")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting perf record (package linux-perf)")?;
    std::thread::sleep(Duration::from_millis(300));
    let load = iperf_tcp(lab, 1, secs);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(perf.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    perf.wait()?;
    load.context("the load under perf")?;
    let mut text = format!(
        "perf record -g of the router-namespace processes of {} during {secs} s of 1-stream TCP\n",
        variant.name()
    );
    // Self time by DSO and by symbol, then time including callees (which system calls and
    // kernel paths the time goes to).
    for (sort, children, limit) in [
        ("comm,dso", "--no-children", "0.5"),
        ("comm,sym", "--no-children", "0.5"),
        ("comm,sym", "--children", "2"),
    ] {
        let report = Command::new("perf")
            .args(["report", "-i"])
            .arg(&data)
            .args([children, "-g", "none", "--stdio", "--percent-limit", limit])
            .args(["--sort", sort])
            .stderr(Stdio::null())
            .output()
            .context("running perf report")?;
        text.push_str(&format!("\n== by {sort} ({children})\n"));
        text.extend(
            String::from_utf8_lossy(&report.stdout)
                .lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .map(|l| format!("{l}\n")),
        );
    }
    let _ = std::fs::remove_file(&data);
    let path = out.join(format!("perf-{}.txt", variant.name()));
    std::fs::write(&path, text)?;
    Ok(path)
}

/// An iperf3 server on host-b for one test; killed on drop if still running.
struct IperfServer(Child);

impl IperfServer {
    fn start(lab: &Lab) -> anyhow::Result<IperfServer> {
        let child = lab
            .command(Node::HostB, "iperf3")
            .args(["-s", "-1", "-B", &addr::HOST_B.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the iperf3 server")?;
        let server = IperfServer(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let listening = lab.exec(Node::HostB, "ss", &["-Hltn", "sport = :5201"])?;
            if !listening.trim().is_empty() {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!("iperf3 server not listening after 5 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for IperfServer {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct TcpResult {
    gbps: f64,
    bytes: f64,
    retransmits: f64,
}

fn iperf_client(lab: &Lab, args: &[&str]) -> anyhow::Result<Value> {
    let _server = IperfServer::start(lab)?;
    let output = lab
        .command(Node::HostA, "iperf3")
        .args(["-c", &addr::HOST_B.to_string(), "-J"])
        .args(args)
        .output()
        .context("running iperf3")?;
    parse_iperf(&output.stdout, &output.stderr)
}

fn parse_iperf(stdout: &[u8], stderr: &[u8]) -> anyhow::Result<Value> {
    let v: Value = serde_json::from_slice(stdout).with_context(|| {
        format!(
            "iperf3 printed no JSON: {}",
            String::from_utf8_lossy(stderr).trim()
        )
    })?;
    if let Some(err) = v.get("error") {
        bail!("iperf3: {err}");
    }
    Ok(v)
}

fn iperf_tcp(lab: &Lab, streams: u32, secs: u32) -> anyhow::Result<TcpResult> {
    let v = iperf_client(lab, &["-t", &secs.to_string(), "-P", &streams.to_string()])?;
    tcp_result(&v)
}

fn tcp_result(v: &Value) -> anyhow::Result<TcpResult> {
    let received = &v["end"]["sum_received"];
    let bps = received["bits_per_second"]
        .as_f64()
        .context("no end.sum_received.bits_per_second")?;
    let bytes = received["bytes"]
        .as_f64()
        .context("no end.sum_received.bytes")?;
    Ok(TcpResult {
        gbps: bps / 1e9,
        bytes,
        retransmits: v["end"]["sum_sent"]["retransmits"].as_f64().unwrap_or(0.0),
    })
}

/// UDP at full speed with `len`-byte payloads; the packet rate the receiver counted, in kpps.
fn iperf_udp(lab: &Lab, len: u32, secs: u32) -> anyhow::Result<f64> {
    let v = iperf_client(
        lab,
        &[
            "-u",
            "-b",
            "0",
            "-l",
            &len.to_string(),
            "-t",
            &secs.to_string(),
        ],
    )?;
    udp_rx_kpps(&v)
}

fn udp_rx_kpps(v: &Value) -> anyhow::Result<f64> {
    let sum = &v["end"]["sum"];
    let packets = sum["packets"].as_f64().context("no end.sum.packets")?;
    let lost = sum["lost_packets"].as_f64().unwrap_or(0.0);
    let seconds = sum["seconds"].as_f64().context("no end.sum.seconds")?;
    if seconds <= 0.0 {
        bail!("iperf3 UDP ran for {seconds} s");
    }
    Ok((packets - lost).max(0.0) / seconds / 1000.0)
}

struct PingResult {
    avg_ms: f64,
    max_ms: f64,
    loss_pct: f64,
}

fn ping(lab: &Lab, count: u32, interval: f64) -> anyhow::Result<PingResult> {
    let output = lab
        .command(Node::HostA, "ping")
        .args(["-q", "-c", &count.to_string(), "-i", &interval.to_string()])
        .args(["-W", "1", &addr::HOST_B.to_string()])
        .output()
        .context("running ping")?;
    parse_ping(&String::from_utf8_lossy(&output.stdout))
}

/// `rtt min/avg/max/mdev = 0.056/0.065/0.074/0.009 ms` and `N% packet loss`.
fn parse_ping(text: &str) -> anyhow::Result<PingResult> {
    let loss_pct = text
        .split(',')
        .find(|part| part.contains("packet loss"))
        .and_then(|part| part.trim().split('%').next()?.parse().ok())
        .with_context(|| format!("no packet loss in ping output: {text}"))?;
    let rtt = text
        .lines()
        .find_map(|l| l.split_once(" = ").filter(|(k, _)| k.starts_with("rtt")))
        .map(|(_, v)| v.trim_end_matches(" ms").split('/').collect::<Vec<_>>())
        .with_context(|| format!("no rtt in ping output: {text}"))?;
    let field = |i: usize| -> anyhow::Result<f64> {
        rtt.get(i)
            .and_then(|s| s.trim().parse().ok())
            .with_context(|| format!("bad rtt line in ping output: {text}"))
    };
    Ok(PingResult {
        avg_ms: field(1)?,
        max_ms: field(2)?,
        loss_pct,
    })
}

/// Ping every 20 ms while one TCP stream fills the tunnel.
fn ping_under_load(lab: &Lab, secs: u32) -> anyhow::Result<PingResult> {
    let server = IperfServer::start(lab)?;
    let load = lab
        .command(Node::HostA, "iperf3")
        .args(["-c", &addr::HOST_B.to_string(), "-J"])
        .args(["-t", &(secs + 1).to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the iperf3 load")?;
    std::thread::sleep(Duration::from_millis(500));
    let count = (secs * 50).max(20);
    let result = ping(lab, count, 0.02);
    let output = load.wait_with_output()?;
    drop(server);
    parse_iperf(&output.stdout, &output.stderr).context("the load under ping")?;
    result
}

struct CpuSnapshot {
    /// Busy seconds of all CPUs (/proc/stat: everything but idle and iowait).
    machine: f64,
    /// utime + stime of the processes in the router namespaces (charon, vpn-agent).
    routers: f64,
}

/// /proc/stat and /proc/PID/stat count in USER_HZ, which is 100 on Linux whatever CONFIG_HZ is.
const USER_HZ: f64 = 100.0;

fn cpu_snapshot(lab: &Lab) -> anyhow::Result<CpuSnapshot> {
    let hz = USER_HZ;
    let stat = std::fs::read_to_string("/proc/stat")?;
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .context("empty /proc/stat")?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guest is in user already.
    let busy: f64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    let mut routers = 0.0;
    for node in [Node::RouterA, Node::RouterB] {
        let pids = vpn_lab::netns::ip(&["netns", "pids", &lab.ns(node)])?;
        for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                && let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..])
            {
                let f: Vec<&str> = rest.split_whitespace().collect();
                // Fields 14 and 15 (utime, stime) are at 11 and 12 after the ')'.
                let t: f64 = [11, 12]
                    .iter()
                    .filter_map(|&i| f.get(i)?.parse::<f64>().ok())
                    .sum();
                routers += t;
            }
        }
    }
    Ok(CpuSnapshot {
        machine: busy / hz,
        routers: routers / hz,
    })
}

/// `openssl speed -evp aes-256-gcm -mr` for each of [`OPENSSL_SIZES`]: MB/s (10^6 bytes).
fn openssl_speed(seconds: u32) -> anyhow::Result<Vec<(u32, f64)>> {
    let mut results = Vec::new();
    for size in OPENSSL_SIZES {
        let output = Command::new("openssl")
            .args(["speed", "-evp", "aes-256-gcm", "-mr"])
            .args([
                "-seconds",
                &seconds.to_string(),
                "-bytes",
                &size.to_string(),
            ])
            .stderr(Stdio::null())
            .output()
            .context("running openssl speed")?;
        let text = String::from_utf8_lossy(&output.stdout);
        // "+F:25:AES-256-GCM:1450517380.22": bytes per second for the one size.
        let bps: f64 = text
            .lines()
            .find(|l| l.starts_with("+F:"))
            .and_then(|l| l.rsplit(':').next()?.trim().parse().ok())
            .with_context(|| format!("no +F line in openssl speed output: {text}"))?;
        results.push((size, bps / 1e6));
    }
    Ok(results)
}

/// The vpn-esp criterion bench, AES-256-GCM only, quick mode: throughput per benchmark in MB/s.
/// Also the worker's per-packet cost at 1, 100 and 10,000 SAs (`--bench sa_scale`, 1400 B).
fn criterion_bench() -> anyhow::Result<BTreeMap<String, f64>> {
    let mut results = BTreeMap::new();
    for (bench, filter) in [("seal_open", "aes256gcm"), ("sa_scale", "sa_scale")] {
        let output = compile::cargo(&[
            "bench", "-p", "vpn-esp", "--bench", bench, "--", "--quick", filter,
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo bench")?;
        if !output.status.success() {
            bail!("cargo bench -p vpn-esp --bench {bench} failed");
        }
        results.extend(parse_criterion(&String::from_utf8_lossy(&output.stdout)));
    }
    Ok(results)
}

/// Criterion's text output: `NAME  time: [...]` then `thrpt: [low MID high]`; the middle value.
fn parse_criterion(text: &str) -> BTreeMap<String, f64> {
    let mut results = BTreeMap::new();
    let mut name: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some((head, _)) = trimmed.split_once("time:") {
            let head = head.trim();
            if !head.is_empty() {
                name = Some(head.to_owned());
            }
        } else if !trimmed.starts_with("thrpt:") && !trimmed.is_empty() && !line.starts_with(' ') {
            // A long name on its own line, "time:" on the next.
            name = Some(trimmed.to_owned());
        }
        if let Some(rest) = trimmed.split_once("thrpt:").map(|(_, r)| r)
            && let Some(n) = name.take()
        {
            let parts: Vec<&str> = rest
                .trim()
                .trim_matches(|c| c == '[' || c == ']')
                .split_whitespace()
                .collect();
            // [low unit mid unit high unit]
            if parts.len() >= 4
                && let Ok(value) = parts[2].parse::<f64>()
            {
                let scale = match parts[3] {
                    "GiB/s" => 1024.0 * 1024.0 * 1024.0 / 1e6,
                    "MiB/s" => 1024.0 * 1024.0 / 1e6,
                    "KiB/s" => 1024.0 / 1e6,
                    "GB/s" => 1000.0,
                    "MB/s" => 1.0,
                    _ => continue,
                };
                results.insert(n, value * scale);
            }
        }
    }
    results
}

fn stats(values: &[f64]) -> Value {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let median = if sorted.is_empty() {
        Value::Null
    } else {
        let m = sorted.len() / 2;
        json!(if sorted.len() % 2 == 1 {
            sorted[m]
        } else {
            (sorted[m - 1] + sorted[m]) / 2.0
        })
    };
    json!({
        "samples": values,
        "median": median,
        "min": sorted.first(),
        "max": sorted.last(),
    })
}

fn read_text(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn machine() -> Value {
    let cpuinfo = read_text("/proc/cpuinfo");
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let flags = field("flags");
    let interesting: Vec<&str> = flags
        .split_whitespace()
        .filter(|f| {
            [
                "aes",
                "pclmulqdq",
                "avx2",
                "vaes",
                "vpclmulqdq",
                "sha_ni",
                "hypervisor",
            ]
            .contains(f)
                || f.starts_with("avx512")
        })
        .collect();
    let version = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default()
    };
    let mem_kb = read_text("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or_default();
    json!({
        "cpu_model": field("model name"),
        "cpu_flags_crypto": interesting,
        "cpu_flags": flags,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory_gib": (mem_kb as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "kernel": read_text("/proc/sys/kernel/osrelease"),
        "kernel_version": read_text("/proc/sys/kernel/version"),
        "hostname": read_text("/proc/sys/kernel/hostname"),
        "loadavg_at_end": read_text("/proc/loadavg"),
        "openssl": version("openssl", &["version"]),
        "iperf3": version("iperf3", &["--version"]),
        // `swanctl --version` asks a running daemon; the package says which charon this is.
        "strongswan": version("dpkg-query", &["-W", "-f=strongSwan ${Version}", "strongswan-charon"]),
    })
}

fn build_report(
    s: &Settings,
    crypto: &Samples,
    samples: &BTreeMap<&'static str, Samples>,
    criterion: Option<BTreeMap<String, f64>>,
    elapsed: Duration,
) -> anyhow::Result<Value> {
    let mut variants = serde_json::Map::new();
    for v in &s.variants {
        let mut metrics = serde_json::Map::new();
        if let Some(figures) = samples.get(v.name()) {
            for (key, unit, what) in METRICS {
                if let Some(values) = figures.get(*key) {
                    let mut m = stats(values);
                    m["unit"] = json!(unit);
                    m["what"] = json!(what);
                    metrics.insert((*key).to_owned(), m);
                }
            }
        }
        variants.insert(
            v.name().to_owned(),
            json!({ "description": v.description(), "metrics": metrics }),
        );
    }
    let median = |variant: Variant, metric: &str| {
        variants
            .get(variant.name())
            .and_then(|v| v["metrics"][metric]["median"].as_f64())
    };
    let mut ratios = Vec::new();
    for (metric, num, den) in RATIOS {
        if let (Some(a), Some(b)) = (median(*num, metric), median(*den, metric)) {
            ratios.push(json!({
                "metric": metric,
                "numerator": num.name(),
                "denominator": den.name(),
                "ratio": if b > 0.0 { json!(a / b) } else { Value::Null },
            }));
        }
    }
    let mut crypto_json = serde_json::Map::new();
    for (k, values) in crypto {
        crypto_json.insert(k.clone(), stats(values));
    }
    // The appliance's 1-stream goodput against the one-core crypto ceiling (openssl, 1024 B).
    let ceiling = crypto_json
        .get("openssl_aes_256_gcm_1024_mbps")
        .and_then(|c| c["median"].as_f64());
    for v in [
        Variant::ApplianceUdp,
        Variant::ApplianceEsp,
        Variant::StrongSwan,
    ] {
        if let (Some(gbps), Some(mbps)) = (median(v, "tcp_1_stream_gbps"), ceiling) {
            ratios.push(json!({
                "metric": "tcp_1_stream_bytes_vs_openssl_1024",
                "numerator": v.name(),
                "denominator": "openssl_aes_256_gcm_1024_mbps",
                "ratio": if mbps > 0.0 { json!(gbps * 1e3 / 8.0 / mbps) } else { Value::Null },
            }));
        }
    }
    if let Some(c) = criterion {
        // Against the crate the worker uses: ring's raw seal of 1400-byte packets on one core.
        if let Some(&seal) = c.get("aes256gcm/raw_seal/1400") {
            for v in [Variant::ApplianceUdp, Variant::ApplianceEsp] {
                if let Some(gbps) = median(v, "tcp_1_stream_gbps") {
                    ratios.push(json!({
                        "metric": "tcp_1_stream_bytes_vs_seal_1400",
                        "numerator": v.name(),
                        "denominator": "vpn_esp_criterion aes256gcm/raw_seal/1400",
                        "ratio": if seal > 0.0 { json!(gbps * 1e3 / 8.0 / seal) } else { Value::Null },
                    }));
                }
            }
        }
        crypto_json.insert("vpn_esp_criterion_mbps".into(), json!(c));
    }
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    Ok(json!({
        "schema": 1,
        "finished_unix": unix,
        "finished_utc": utc_string(unix),
        "mode": if s.quick { "quick" } else { "full" },
        "repetitions": s.reps,
        "seconds_per_measurement": s.seconds,
        "elapsed_s": elapsed.as_secs_f64(),
        "agent": s.agent.display().to_string(),
        "machine": machine(),
        "notes": [
            "Every variant runs on a fresh namespace lab per repetition; repetitions are interleaved and the variant order rotates.",
            "This kernel has no XFRM ESP (CONFIG_INET_ESP off): strongSwan uses kernel-libipsec, userspace ESP through a TUN device, always encapsulated in UDP 4500.",
            "All traffic crosses veth pairs on one machine: senders, routers and receivers share the same cores, so figures are relative, not line rates.",
            "UDP rates are what the receiver counted with the sender at full speed (iperf3 -b 0); 1372-byte payloads make 1400-byte IP packets (the tunnel MTU).",
            "cpu_s_per_gb_machine counts every busy CPU second (senders and receivers included); cpu_s_per_gb_router_procs only the processes in the router namespaces (charon, vpn-agent), not softirq work such as kernel forwarding and XDP.",
            "openssl speed is the CLI's figure for one core; the library called directly is faster."
        ],
        "crypto": crypto_json,
        "variants": variants,
        "ratios": ratios,
    }))
}

/// YYYY-MM-DD HH:MM UTC from a Unix time (civil-from-days, no dependency).
fn utc_string(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

/// Every variant has every metric as a finite number, the crypto figures and the ratios exist.
pub fn check_complete(report: &Value) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for v in VARIANTS {
        for (metric, _, _) in METRICS {
            let m = &report["variants"][v.name()]["metrics"][*metric];
            if !m["median"].as_f64().is_some_and(f64::is_finite) {
                missing.push(format!("{}.{metric}", v.name()));
            }
        }
    }
    for size in OPENSSL_SIZES {
        let key = format!("openssl_aes_256_gcm_{size}_mbps");
        if !report["crypto"][&key]["median"]
            .as_f64()
            .is_some_and(f64::is_finite)
        {
            missing.push(format!("crypto.{key}"));
        }
    }
    let ratios = report["ratios"].as_array().map(Vec::len).unwrap_or(0);
    if ratios < RATIOS.len() {
        missing.push(format!("ratios ({ratios} of {})", RATIOS.len()));
    }
    for key in ["cpu_model", "kernel", "cores", "cpu_flags"] {
        if report["machine"][key].is_null() {
            missing.push(format!("machine.{key}"));
        }
    }
    missing.extend(bench_xdp::missing(&report["xdp"]));
    if !missing.is_empty() {
        bail!("the benchmark report lacks: {}", missing.join(", "));
    }
    Ok(())
}

fn fmt_num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// The Markdown summary: the lab variants' tables (if any ran), then the XDP microbenchmarks
/// (if they ran).
pub fn markdown(report: &Value) -> String {
    let mut s = String::new();
    if report["variants"]
        .as_object()
        .is_some_and(|v| !v.is_empty())
    {
        s.push_str(&markdown_lab(report));
    }
    if !report["xdp"].is_null() {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(&markdown_xdp(report));
    }
    s
}

/// The XDP section with a line naming the run and the machine (the docs' XDP block).
fn markdown_xdp(report: &Value) -> String {
    let m = &report["machine"];
    format!(
        "XDP microbenchmarks of {} ({} mode) on {}, {} cores, kernel {}.\n\n{}",
        report["finished_utc"].as_str().unwrap_or("?"),
        report["mode"].as_str().unwrap_or("?"),
        m["cpu_model"].as_str().unwrap_or("?"),
        m["cores"],
        m["kernel"].as_str().unwrap_or("?"),
        bench_xdp::markdown(&report["xdp"]),
    )
}

/// Machine, crypto ceiling, medians (min-max) per variant, ratios.
fn markdown_lab(report: &Value) -> String {
    let mut s = String::new();
    let m = &report["machine"];
    let _ = writeln!(
        s,
        "Run of {} ({} mode, {} repetition(s) x {} s per measurement, {:.0} s in all).\n",
        report["finished_utc"].as_str().unwrap_or("?"),
        report["mode"].as_str().unwrap_or("?"),
        report["repetitions"],
        report["seconds_per_measurement"],
        report["elapsed_s"].as_f64().unwrap_or(0.0),
    );
    let flags: Vec<&str> = m["cpu_flags_crypto"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "Machine: {}, {} cores, {} GiB, kernel {}; crypto flags: {}.\nTools: {}; {}; {}.\n",
        m["cpu_model"].as_str().unwrap_or("?"),
        m["cores"],
        m["memory_gib"],
        m["kernel"].as_str().unwrap_or("?"),
        flags.join(" "),
        m["strongswan"].as_str().unwrap_or("?"),
        m["openssl"].as_str().unwrap_or("?"),
        m["iperf3"].as_str().unwrap_or("?"),
    );
    let c = &report["crypto"];
    let _ = writeln!(
        s,
        "Crypto ceiling, one core: `openssl speed -evp aes-256-gcm` {} MB/s at 1024 B, {} MB/s at 8192 B (medians).",
        fmt_num(c["openssl_aes_256_gcm_1024_mbps"]["median"].as_f64()),
        fmt_num(c["openssl_aes_256_gcm_8192_mbps"]["median"].as_f64()),
    );
    if let Some(crit) = c["vpn_esp_criterion_mbps"].as_object() {
        let pick: Vec<String> = crit
            .iter()
            .filter(|(k, _)| k.ends_with("/1400"))
            .map(|(k, v)| format!("{k} {} MB/s", fmt_num(v.as_f64())))
            .collect();
        let _ = writeln!(s, "vpn-esp criterion (--quick): {}.", pick.join(", "));
        // sa_scale's throughput is in bytes of 1400-byte inner packets: ns per packet.
        let per_packet: Vec<String> = crit
            .iter()
            .filter(|(k, _)| k.starts_with("sa_scale/"))
            .filter_map(|(k, v)| Some(format!("{} {:.0} ns", &k[9..], 1400e3 / v.as_f64()?)))
            .collect();
        if !per_packet.is_empty() {
            let _ = writeln!(
                s,
                "Worker per-packet cost, AES-256-GCM ESP of a 1400-byte packet with the SA taken by slot from a table of N (vpn-esp sa_scale, --quick): {}.",
                per_packet.join(", ")
            );
        }
    }
    let _ = writeln!(s);

    let _ = write!(s, "| figure | unit |");
    let names: Vec<&str> = report["variants"]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    // Keep the canonical order.
    let ordered: Vec<&str> = VARIANTS
        .iter()
        .map(|v| v.name())
        .filter(|n| names.contains(n))
        .collect();
    for n in &ordered {
        let _ = write!(s, " {n} |");
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "|---|---|{}", "---|".repeat(ordered.len()));
    for (metric, unit, what) in METRICS {
        let _ = write!(s, "| {what} | {unit} |");
        for n in &ordered {
            let f = &report["variants"][*n]["metrics"][*metric];
            let med = fmt_num(f["median"].as_f64());
            let cell = if f["samples"].as_array().is_some_and(|a| a.len() > 1) {
                format!(
                    "{med} ({}-{})",
                    fmt_num(f["min"].as_f64()),
                    fmt_num(f["max"].as_f64())
                )
            } else {
                med
            };
            let _ = write!(s, " {cell} |");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "\nMedians, with (min-max) over the repetitions.\n");
    let _ = writeln!(s, "| ratio | figure | value |\n|---|---|---|");
    if let Some(ratios) = report["ratios"].as_array() {
        for r in ratios {
            let _ = writeln!(
                s,
                "| {} / {} | {} | {} |",
                r["numerator"].as_str().unwrap_or("?"),
                r["denominator"].as_str().unwrap_or("?"),
                r["metric"].as_str().unwrap_or("?"),
                r["ratio"]
                    .as_f64()
                    .map(|v| format!("{v:.2}x"))
                    .unwrap_or_else(|| "-".into()),
            );
        }
    }
    s
}

/// A grouped bar chart (SVG, no dependency): TCP goodput (1 and 4 streams) and UDP packet rates
/// per variant, each panel on its own scale.
fn chart_svg(report: &Value) -> String {
    let panels: &[(&str, &[(&str, &str)])] = &[
        (
            "TCP goodput, Gbit/s",
            &[
                ("tcp_1_stream_gbps", "1 stream"),
                ("tcp_4_streams_gbps", "4 streams"),
            ],
        ),
        (
            "UDP received, kpps",
            &[("udp_64_rx_kpps", "64 B"), ("udp_1372_rx_kpps", "1372 B")],
        ),
    ];
    let colours = ["#4e79a7", "#f28e2b"];
    let variants: Vec<&str> = VARIANTS.iter().map(|v| v.name()).collect();
    // About 130 px per variant, so that the labels under the bars do not overlap.
    let (pw, ph, margin) = ((130.0 * variants.len() as f64).max(520.0), 300.0, 50.0);
    let width = pw * panels.len() as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">",
        ph + 60.0
    );
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    for (p, (title, series)) in panels.iter().enumerate() {
        let x0 = p as f64 * pw + margin;
        let plot_w = pw - margin * 1.5;
        let plot_h = ph - margin;
        let top = 30.0;
        let max = variants
            .iter()
            .flat_map(|v| {
                series.iter().filter_map(move |(k, _)| {
                    report["variants"][*v]["metrics"][*k]["median"].as_f64()
                })
            })
            .fold(0.0_f64, f64::max)
            .max(1e-9);
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{title}</text>",
            x0
        );
        let _ = writeln!(
            s,
            "<line x1=\"{x0}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>",
            top + plot_h,
            x0 + plot_w,
            top + plot_h
        );
        let group_w = plot_w / variants.len() as f64;
        let bar_w = group_w * 0.8 / series.len() as f64;
        for (i, v) in variants.iter().enumerate() {
            let gx = x0 + i as f64 * group_w + group_w * 0.1;
            for (j, (k, _)) in series.iter().enumerate() {
                let val = report["variants"][*v]["metrics"][*k]["median"]
                    .as_f64()
                    .unwrap_or(0.0);
                let h = val / max * (plot_h - 15.0);
                let x = gx + j as f64 * bar_w;
                let y = top + plot_h - h;
                let _ = writeln!(
                    s,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"/>",
                    bar_w - 2.0,
                    colours[j % colours.len()]
                );
                let _ = writeln!(
                    s,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9\">{}</text>",
                    x + bar_w / 2.0,
                    y - 3.0,
                    fmt_num(Some(val))
                );
            }
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9\">{}</text>",
                gx + group_w * 0.4,
                top + plot_h + 14.0,
                v.replace("appliance-", "appl. ")
            );
        }
        for (j, (_, label)) in series.iter().enumerate() {
            let lx = x0 + j as f64 * 90.0;
            let ly = top + plot_h + 34.0;
            let _ = writeln!(
                s,
                "<rect x=\"{lx}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{label}</text>",
                ly - 9.0,
                colours[j % colours.len()],
                lx + 14.0,
                ly
            );
        }
    }
    let _ = writeln!(s, "</svg>");
    s
}

const DOCS_BEGIN: &str = "<!-- bench:latest:begin -->";
const DOCS_END: &str = "<!-- bench:latest:end -->";
const DOCS_XDP_BEGIN: &str = "<!-- bench:xdp:begin -->";
const DOCS_XDP_END: &str = "<!-- bench:xdp:end -->";

/// Replaces the text between the markers in docs/benchmarks.md with this run's summary: the
/// lab variants' block if they ran, the XDP block if the microbenchmarks ran.
fn update_docs(report: &Value) -> anyhow::Result<()> {
    let path = workspace_root().join("docs/benchmarks.md");
    let mut text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    if report["variants"]
        .as_object()
        .is_some_and(|v| !v.is_empty())
    {
        text = replace_block(&text, DOCS_BEGIN, DOCS_END, &markdown_lab(report))
            .with_context(|| format!("updating {}", path.display()))?;
    }
    if !report["xdp"].is_null() {
        text = replace_block(&text, DOCS_XDP_BEGIN, DOCS_XDP_END, &markdown_xdp(report))
            .with_context(|| format!("updating {}", path.display()))?;
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("updated {}", path.display());
    Ok(())
}

fn replace_block(text: &str, begin: &str, end: &str, body: &str) -> anyhow::Result<String> {
    let (Some(b), Some(e)) = (text.find(begin), text.find(end)) else {
        bail!("the {begin} / {end} markers are missing");
    };
    Ok(format!("{}{begin}\n{body}{}", &text[..b], &text[e..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ping_summary() {
        let text = "--- 10.2.0.10 ping statistics ---\n\
                    50 packets transmitted, 49 received, 2% packet loss, time 1000ms\n\
                    rtt min/avg/max/mdev = 0.056/0.065/0.074/0.009 ms\n";
        let p = parse_ping(text).unwrap();
        assert_eq!((p.avg_ms, p.max_ms, p.loss_pct), (0.065, 0.074, 2.0));
        assert!(parse_ping("nothing").is_err());
    }

    #[test]
    fn parses_criterion_throughput() {
        let text = "aes256gcm/raw_seal/1400\n                        time:   [400.00 ns 410.00 ns 420.00 ns]\n                        thrpt:  [3.1000 GiB/s 3.2000 GiB/s 3.3000 GiB/s]\n\
                    Found 1 outliers among 10 measurements (10.00%)\n  1 (10.00%) high mild\n\
                    aes256gcm/raw_open/64   time:   [40.0 ns 41.0 ns 42.0 ns]\n                        thrpt:  [1.4000 GiB/s 1.5000 GiB/s 1.6000 GiB/s]\n\
                    \x20                       change:\n                        time:   [-1.0% +0.5% +2.0%] (p = 0.60 > 0.05)\n                        thrpt:  [-2.0% -0.5% +1.0%]\n";
        let r = parse_criterion(text);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!((r["aes256gcm/raw_seal/1400"] - 3.2 * 1073.741824).abs() < 0.01);
        assert!(r.contains_key("aes256gcm/raw_open/64"));
    }

    #[test]
    fn iperf_json_figures() {
        let tcp = json!({"end": {"sum_received": {"bits_per_second": 2.5e9, "bytes": 1.0e9},
                                  "sum_sent": {"retransmits": 3}}});
        let r = tcp_result(&tcp).unwrap();
        assert_eq!((r.gbps, r.bytes, r.retransmits), (2.5, 1.0e9, 3.0));
        let udp = json!({"end": {"sum": {"packets": 12000, "lost_packets": 2000, "seconds": 2.0}}});
        assert_eq!(udp_rx_kpps(&udp).unwrap(), 5.0);
        assert!(parse_iperf(br#"{"error": "unable to connect"}"#, b"").is_err());
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc_string(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_string(951_782_400), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn a_report_without_figures_is_incomplete_and_a_full_one_is_complete() {
        assert!(check_complete(&json!({})).is_err());
        let mut variants = serde_json::Map::new();
        for v in VARIANTS {
            let mut metrics = serde_json::Map::new();
            for (k, _, _) in METRICS {
                metrics.insert((*k).into(), json!({"median": 1.0}));
            }
            variants.insert(v.name().into(), json!({"metrics": metrics}));
        }
        let report = json!({
            "variants": variants,
            "crypto": {"openssl_aes_256_gcm_1024_mbps": {"median": 1.0},
                       "openssl_aes_256_gcm_8192_mbps": {"median": 1.0},
                       "vpn_esp_criterion_mbps": {"sa_scale/spread/10000": 3500.0}},
            "ratios": vec![json!({}); RATIOS.len()],
            "machine": {"cpu_model": "x", "kernel": "y", "cores": 2, "cpu_flags": "aes"},
        });
        assert!(check_complete(&report).is_err(), "no XDP section");
        let mut report = report;
        report["xdp"] = crate::bench_xdp::tests::sample_report();
        check_complete(&report).unwrap();
        // The two-worker variant is one of the figures the smoke test requires.
        let mut without = report.clone();
        without["variants"]
            .as_object_mut()
            .unwrap()
            .remove(Variant::ApplianceUdp2Workers.name());
        let missing = check_complete(&without).unwrap_err().to_string();
        assert!(
            missing.contains("appliance-esp-in-udp-2workers.tcp_4_streams_gbps"),
            "{missing}"
        );
        let md = markdown(&report);
        assert!(md.contains("| ratio |"));
        assert!(md.contains("| program | case | SAs/routes |"));
        assert!(md.contains("spread/10000 400 ns"), "{md}");
        assert!(chart_svg(&report).starts_with("<svg"));
    }
}
