//! `vpn-agent validate FILE`: the configuration checks, without touching the system.

use anyhow::bail;

use crate::cli::ValidateArgs;
use crate::control::peer_config::check_keys;

pub fn run(args: &ValidateArgs) -> anyhow::Result<()> {
    let config = match vpn_config::Config::load(&args.file) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            bail!("{}: {} problem(s)", args.file.display(), errors.len());
        }
    };
    if args.secrets {
        let secrets = match config.resolve_secrets() {
            Ok(secrets) => secrets,
            Err(errors) => {
                eprint!("{errors}");
                bail!(
                    "{}: {} secret(s) could not be loaded",
                    args.file.display(),
                    errors.len()
                );
            }
        };
        // Key tunnels: the private key parses and fits the method, the peer's key loads.
        let problems: Vec<String> = config
            .tunnels
            .iter()
            .filter_map(|t| {
                let secret = secrets.tunnel(&t.name)?;
                check_keys(t, secret).err().map(|e| e.to_string())
            })
            .collect();
        if !problems.is_empty() {
            for p in &problems {
                eprintln!("{}: {p}", args.file.display());
            }
            bail!(
                "{}: {} tunnel(s) with unusable keys",
                args.file.display(),
                problems.len()
            );
        }
    }
    println!(
        "{}: valid ({} tunnel(s), {} route(s))",
        args.file.display(),
        config.tunnels.len(),
        config.routes.len()
    );
    Ok(())
}

/// `vpn-agent mesh render INVENTORY --node NAME`: the node's configuration on stdout, checked
/// like any configuration before it is printed.
pub fn render_mesh(inventory: &std::path::Path, node: &str) -> anyhow::Result<()> {
    let origin = inventory.display().to_string();
    let text = std::fs::read_to_string(inventory)
        .map_err(|e| anyhow::anyhow!("{origin}: cannot read the inventory: {e}"))?;
    let mesh = vpn_config::MeshInventory::from_str(&text, &origin)
        .map_err(|errors| anyhow::anyhow!("{errors}\n{origin}: {} problem(s)", errors.len()))?;
    let Some(rendered) = mesh.render(node) else {
        bail!("{origin}: no node named {node:?}");
    };
    let check = format!("{node} (rendered from {origin})");
    if let Err(errors) = vpn_config::Config::from_str(&rendered, &check) {
        bail!("{errors}\nthe rendered configuration of {node} is invalid");
    }
    print!("{rendered}");
    Ok(())
}
