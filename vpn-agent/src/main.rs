//! `vpn-agent`: the appliance's daemon and command-line interface.

mod bench_xdp;
mod bpffs;
mod cli;
mod control;
mod datapath;
mod import;
mod instance;
mod metrics;
mod operate;
mod run;
mod status;
mod system;
mod validate;

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_logging();
    let result = match cli.command {
        cli::Command::Run(args) => run::run(&args),
        cli::Command::Status(args) => status::show(&args),
        cli::Command::ListSas(args) => operate::list_sas(&args),
        cli::Command::Initiate(args) => operate::tunnel(&args, true),
        cli::Command::Terminate(args) => operate::tunnel(&args, false),
        cli::Command::Reload(args) => operate::reload(&args),
        cli::Command::Validate(args) => validate::run(&args),
        cli::Command::Import { command } => import::run(&command),
        cli::Command::BenchXdp(args) => bench_xdp::run(&args),
        cli::Command::Mesh {
            command: cli::MeshCommand::Render { inventory, node },
        } => validate::render_mesh(&inventory, &node),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vpn-agent: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VPN_AGENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
