//! Running commands and code inside a named network namespace.

use std::{
    fs::File,
    path::PathBuf,
    process::{Command, Output},
};

use anyhow::{Context as _, bail};
use nix::sched::{CloneFlags, setns};

/// The bind-mount that `ip netns add` creates for a namespace.
pub fn netns_path(name: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(name)
}

/// Runs a command to completion; fails with its stderr if it exits non-zero.
pub fn run(cmd: &mut Command) -> anyhow::Result<Output> {
    let output = cmd
        .output()
        .with_context(|| format!("running {}", describe(cmd)))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}): {}",
            describe(cmd),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output)
}

/// `ip ARGS...`.
pub fn ip(args: &[&str]) -> anyhow::Result<Output> {
    run(Command::new("ip").args(args))
}

/// A command that runs `program` inside namespace `ns`. Only the network namespace is entered
/// (nsenter --net), so the program still sees the host's /sys/fs/bpf and /run.
pub fn command_in(ns: &str, program: &str) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", netns_path(ns).display()))
        .arg("--")
        .arg(program);
    cmd
}

/// Runs `f` on a fresh thread that has joined namespace `ns`; sockets it creates live there.
pub fn run_in<F, R>(ns: &str, f: F) -> anyhow::Result<R>
where
    F: FnOnce() -> anyhow::Result<R> + Send + 'static,
    R: Send + 'static,
{
    let path = netns_path(ns);
    let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET)
            .with_context(|| format!("entering network namespace {ns}"))?;
        f()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("thread inside a network namespace panicked"))?
}

/// Names of the network namespaces that exist now.
pub fn list() -> anyhow::Result<Vec<String>> {
    let output = ip(&["netns", "list"])?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
