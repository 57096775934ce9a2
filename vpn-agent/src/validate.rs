//! `vpn-agent validate FILE`: the configuration checks, without touching the system.

use anyhow::bail;

use crate::cli::ValidateArgs;

pub fn run(args: &ValidateArgs) -> anyhow::Result<()> {
    let config = match vpn_config::Config::load(&args.file) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            bail!("{}: {} problem(s)", args.file.display(), errors.len());
        }
    };
    if args.secrets
        && let Err(errors) = config.resolve_secrets()
    {
        eprint!("{errors}");
        bail!(
            "{}: {} secret(s) could not be loaded",
            args.file.display(),
            errors.len()
        );
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
