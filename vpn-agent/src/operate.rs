//! The operator's verbs on a running instance, in the spirit of swanctl: `list-sas`,
//! `initiate NAME`, `terminate NAME` (over the root-only control socket) and `reload`
//! (SIGHUP).

use anyhow::{Context as _, bail};

use crate::{
    cli::{InstanceOnly, StatusArgs, TunnelArgs},
    control::{commands::TunnelCommand, ike_report::IkeReport, socket},
    instance::RuntimeState,
};

/// `vpn-agent list-sas [--json]`: the IKE SAs and their CHILD_SAs.
pub fn list_sas(args: &StatusArgs) -> anyhow::Result<()> {
    let name = &args.instance.instance;
    running(name)?;
    let path = name.ike_file();
    let report: IkeReport = match std::fs::read_to_string(&path) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => IkeReport::default(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let mut out = String::new();
        report.render(&mut out);
        print!("{}", out.trim_start());
    }
    Ok(())
}

/// `vpn-agent initiate NAME` / `terminate NAME`.
pub fn tunnel(args: &TunnelArgs, initiate: bool) -> anyhow::Result<()> {
    let name = &args.instance.instance;
    running(name)?;
    let command = if initiate {
        TunnelCommand::Initiate(args.name.clone())
    } else {
        TunnelCommand::Terminate(args.name.clone())
    };
    let answer = socket::send(&name.control_socket(), &command)?;
    if !answer.ok {
        bail!("{}", answer.message);
    }
    println!("{}", answer.message);
    Ok(())
}

/// `vpn-agent reload`: SIGHUP to the instance.
pub fn reload(args: &InstanceOnly) -> anyhow::Result<()> {
    let name = &args.instance.instance;
    let state = running(name)?;
    let pid = i32::try_from(state.pid).context("pid out of range")?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .with_context(|| format!("signalling instance {name} (pid {pid})"))?;
    println!("instance {name} (pid {pid}) reloads its configuration (the log says what changed)");
    Ok(())
}

fn running(name: &crate::instance::InstanceName) -> anyhow::Result<RuntimeState> {
    match RuntimeState::load(name)? {
        Some(state) if state.owner_alive() => Ok(state),
        Some(state) => bail!(
            "instance {name} is not running (pid {} has exited)",
            state.pid
        ),
        None => bail!("instance {name} is not running"),
    }
}
