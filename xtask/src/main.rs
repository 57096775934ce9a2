//! `cargo xtask`: everything needed to go from a fresh clone to a running, tested appliance.

mod bench;
mod bench_xdp;
mod compile;
mod demo;
mod lab;
mod setup;
mod suite;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Build, test and demo the VPN appliance")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install what a fresh machine lacks (nightly rust-src, bpf-linker, Debian packages).
    Setup,
    /// Build the eBPF object (with BTF) and the agent, release mode.
    Build,
    /// Build, then run the agent on this host: `cargo xtask run -- run --wan eth0`.
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The whole suite: formatting, lints, unit tests and the privileged namespace tests.
    Test,
    /// The standard namespace lab.
    Lab {
        #[command(subcommand)]
        command: lab::LabCommand,
    },
    /// Build, bring the lab up, load the agent on both routers, send traffic, show the
    /// counters, tear everything down.
    Demo(demo::DemoArgs),
    /// Throughput and latency of the appliance, strongSwan and plain forwarding on the lab, in
    /// one run: JSON, Markdown with ratios, SVG chart under <target>/bench.
    Bench(bench::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup => setup::run(),
        Command::Build => compile::build().map(|_| ()),
        Command::Run { args } => compile::run_agent(&args),
        Command::Test => suite::run(),
        Command::Lab { command } => lab::run(command),
        Command::Demo(args) => demo::run(&args),
        Command::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Prints a step banner, so logs show where time goes and where a failure happened.
fn step(name: &str) {
    eprintln!("\n==> {name}");
}
