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
