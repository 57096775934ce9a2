//! `cargo xtask build` and `cargo xtask run`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};
use object::{Object as _, ObjectSection as _};

use crate::{
    setup::{self, bpf_linker_dir, checked},
    step, workspace_root,
};

/// A cargo command at the workspace root that finds bpf-linker.
pub fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root()).args(args);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(bpf_linker_dir()).chain(std::env::split_paths(&path));
    if let Ok(path) = std::env::join_paths(dirs) {
        cmd.env("PATH", path);
    }
    cmd
}

/// Builds the agent (and, through its build script, the eBPF object) in release mode; returns
/// the agent's path.
pub fn build() -> anyhow::Result<PathBuf> {
    setup::run()?;
    step("build: eBPF object and agent (release)");
    checked(&mut cargo(&[
        "build",
        "--release",
        "--package",
        "vpn-agent",
    ]))?;
    let object = newest_ebpf_object()?;
    check_btf(&object)?;
    let agent = agent_path();
    eprintln!("agent: {}", agent.display());
    Ok(agent)
}

pub fn agent_path() -> PathBuf {
    target_dir().join("release/vpn-agent")
}

/// Cargo's target folder: CARGO_TARGET_DIR if set, else the workspace's target/.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// `cargo xtask run -- ARGS`: build, then become the agent (signals go straight to it).
pub fn run_agent(args: &[String]) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt as _;
    let agent = build()?;
    step(&format!("run: {} {}", agent.display(), args.join(" ")));
    let err = Command::new(&agent).args(args).exec();
    Err(err).with_context(|| format!("executing {}", agent.display()))
}

/// The eBPF object the last release build embedded (build-script output folders are hashed).
fn newest_ebpf_object() -> anyhow::Result<PathBuf> {
    let build_dir = target_dir().join("release/build");
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in
        std::fs::read_dir(&build_dir).with_context(|| format!("listing {}", build_dir.display()))?
    {
        let dir = entry?.path();
        if !dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("vpn-agent-"))
        {
            continue;
        }
        let candidate = dir.join("out/vpn-ebpf");
        if let Ok(modified) = candidate.metadata().and_then(|m| m.modified())
            && newest.as_ref().is_none_or(|(t, _)| modified > *t)
        {
            newest = Some((modified, candidate));
        }
    }
    newest
        .map(|(_, path)| path)
        .context("no eBPF object found under target/release/build/vpn-agent-*/out")
}

/// The object must carry BTF: the loader needs it for map definitions and CO-RE.
fn check_btf(object: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(object).with_context(|| format!("reading {}", object.display()))?;
    let elf =
        object::File::parse(&*bytes).with_context(|| format!("parsing {}", object.display()))?;
    let Some(btf) = elf.section_by_name(".BTF") else {
        bail!("{} has no .BTF section", object.display());
    };
    let programs: Vec<_> = elf
        .sections()
        .filter_map(|s| {
            s.name()
                .ok()
                .filter(|n| n.starts_with("xdp"))
                .map(str::to_owned)
        })
        .collect();
    eprintln!(
        "eBPF object: {} ({} bytes, BTF {} bytes, program sections: {})",
        object.display(),
        bytes.len(),
        btf.size(),
        programs.join(", ")
    );
    Ok(())
}
