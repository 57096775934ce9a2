//! `cargo xtask test`: the whole suite, as CI runs it.

use crate::{
    compile::{self, cargo},
    setup::checked,
    step,
};

pub fn run() -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("the suite includes namespace tests and must run as root");
    }
    let agent = compile::build()?;

    step("test: formatting");
    checked(&mut cargo(&["fmt", "--all", "--", "--check"]))?;

    // Everything in release mode, so clippy and the tests reuse the build's eBPF object.
    step("test: clippy");
    checked(&mut cargo(&[
        "clippy",
        "--release",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;

    step("test: unit and namespace tests");
    checked(cargo(&["test", "--release", "--workspace"]).env("VPN_AGENT_BIN", &agent))?;

    // Every variant for about a second each: the benchmark works and produces every figure.
    step("test: quick benchmark (smoke test, no thresholds)");
    crate::bench::smoke(&agent)?;
    Ok(())
}
