//! `vpn-agent import strongswan|aws`: the command-line glue around `vpn_config::import`
//! (which does the parsing and the conversion). Reads the inputs, writes the PSK files (mode
//! 0600) and the configuration, prints what could not be carried over on stderr.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use vpn_config::import::{self, ImportError, ImportOptions, Imported, strongswan::InputFile};

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Convert a strongSwan ipsec.conf (with its ipsec.secrets for PSKs and key files).
    Strongswan(StrongswanArgs),
    /// Convert the AWS Site-to-Site VPN "Generic" customer gateway configuration text.
    Aws(AwsArgs),
}

#[derive(Debug, Args)]
pub struct StrongswanArgs {
    /// The ipsec.conf to convert.
    pub ipsec_conf: PathBuf,
    /// The ipsec.secrets holding the PSKs and private key names of its conns.
    #[arg(long, value_name = "IPSEC_SECRETS")]
    pub secrets: Option<PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct AwsArgs {
    /// The generic configuration text downloaded for the VPN connection.
    pub file: PathBuf,
    /// A remote (VPC) prefix to route over tunnel 1 (priority 100) and tunnel 2 (200).
    #[arg(long = "remote-prefix", value_name = "CIDR")]
    pub remote_prefixes: Vec<ipnet::IpNet>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Write the configuration here (default: stdout). PSK files go next to it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the PSK files (psk-TUNNEL, mode 0600) here instead of next to --out.
    #[arg(long, value_name = "DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// Replace existing output and PSK files.
    #[arg(long)]
    pub force: bool,
    /// The router's name (the input files do not have one).
    #[arg(long, default_value = "imported")]
    pub name: String,
    /// The WAN interface (the input files do not name interfaces).
    #[arg(long, default_value = "ens5")]
    pub wan: String,
    /// A LAN interface (repeatable).
    #[arg(long = "lan", default_value = "ens6")]
    pub lan: Vec<String>,
}

pub fn run(command: &ImportCommand) -> anyhow::Result<()> {
    match command {
        ImportCommand::Strongswan(a) => {
            let conf = import::read_input(&a.ipsec_conf)?;
            let conf_dir = parent_dir(&a.ipsec_conf)?;
            let secrets = match &a.secrets {
                Some(p) => Some((
                    import::read_input(p)?,
                    parent_dir(p)?,
                    p.display().to_string(),
                )),
                None => None,
            };
            let opts = options(&a.out, Vec::new())?;
            let origin = a.ipsec_conf.display().to_string();
            let conf_in = InputFile {
                text: &conf,
                origin: &origin,
                dir: &conf_dir,
            };
            let secrets_in =
                secrets
                    .as_ref()
                    .map(|(text, dir, origin)| InputFile { text, origin, dir });
            let result = import::strongswan::convert(&conf_in, secrets_in.as_ref(), &opts);
            finish(result, &a.out)
        }
        ImportCommand::Aws(a) => {
            let text = import::read_input(&a.file)?;
            let opts = options(&a.out, a.remote_prefixes.clone())?;
            let result = import::aws::convert(&text, &a.file.display().to_string(), &opts);
            finish(result, &a.out)
        }
    }
}

fn options(out: &OutputArgs, remote_prefixes: Vec<ipnet::IpNet>) -> anyhow::Result<ImportOptions> {
    let secrets_dir = match (&out.secrets_dir, &out.out) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(f)) => Some(parent_dir(f)?),
        (None, None) => None,
    };
    let secrets_dir = match secrets_dir {
        Some(d) => Some(
            std::path::absolute(&d)
                .with_context(|| format!("{}: cannot make the path absolute", d.display()))?,
        ),
        None => None,
    };
    Ok(ImportOptions {
        router_name: out.name.clone(),
        wan: out.wan.clone(),
        lan: out.lan.clone(),
        secrets_dir,
        remote_prefixes,
    })
}

/// The absolute directory holding `file`.
fn parent_dir(file: &Path) -> anyhow::Result<PathBuf> {
    let abs = std::path::absolute(file)
        .with_context(|| format!("{}: cannot make the path absolute", file.display()))?;
    Ok(abs
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf))
}

fn finish(result: Result<Imported, ImportError>, out: &OutputArgs) -> anyhow::Result<()> {
    let imported = result?;
    for w in &imported.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(path) = &out.out
        && path.exists()
        && !out.force
    {
        bail!(
            "{}: already exists (use --force to replace it)",
            path.display()
        );
    }
    if let Some(dir) = imported.secret_files.first().and_then(|f| f.path.parent()) {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("{}: cannot create the secrets directory", dir.display()))?;
    }
    // Secrets first: the configuration never names a file that is not there.
    for f in &imported.secret_files {
        f.write(out.force)?;
    }
    match &out.out {
        None => print!("{}", imported.toml),
        Some(path) => {
            std::fs::write(path, &imported.toml)
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
    }
    eprintln!(
        "{}: {} tunnel(s), {} PSK file(s) (mode 0600), {} warning(s)",
        out.out
            .as_ref()
            .map_or_else(|| "stdout".to_string(), |p| p.display().to_string()),
        imported.tunnels,
        imported.secret_files.len(),
        imported.warnings.len()
    );
    Ok(())
}
