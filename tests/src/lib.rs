//! Helpers shared by the integration tests in `tests/tests/`.
//!
//! The tests run the release agent binary that `cargo xtask build` produced; `cargo xtask test`
//! passes its path in `VPN_AGENT_BIN`.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

pub mod capture;
pub mod traffic;

/// Tests of one binary that saturate the cores (bulk transfers) and those that count every
/// packet of a steady stream take turns, so that one's load cannot make the other drop.
static LOAD_SENSITIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds the load-sensitive turn until dropped.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    LOAD_SENSITIVE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The `vpn-agent` binary under test.
pub fn agent_bin() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("VPN_AGENT_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/vpn-agent"),
    };
    if !path.is_file() {
        bail!(
            "no agent binary at {}: run the suite with `cargo xtask test` (it builds the agent)",
            path.display()
        );
    }
    path.canonicalize()
        .with_context(|| format!("resolving {}", path.display()))
}

/// Runs `vpn-agent ARGS --instance NAME` against a running agent (its control socket);
/// returns whether it succeeded and what it printed.
pub fn agent_verb(agent: &vpn_lab::AgentProcess, args: &[&str]) -> anyhow::Result<(bool, String)> {
    let out = std::process::Command::new(agent_bin()?)
        .args(args)
        .args(["--instance", agent.instance()])
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// Polls `read` until `done` holds for its value or `timeout` passes; returns the last value.
/// XDP runs when the receiving veth's NAPI poll does, a little after `send` returns.
pub fn poll_until<T>(
    timeout: Duration,
    mut read: impl FnMut() -> anyhow::Result<T>,
    done: impl Fn(&T) -> bool,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let value = read()?;
        if done(&value) || Instant::now() > deadline {
            return Ok(value);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for the agent's datapath to hold the CHILD_SA strongSwan installed: our outbound SA is
/// its inbound one and the other way round.
pub fn check_spis(
    agent: &vpn_lab::AgentProcess,
    theirs: &vpn_lab::strongswan::ChildSa,
) -> anyhow::Result<()> {
    let ours = poll_until(
        Duration::from_secs(10),
        || agent.status(),
        |s| s.worker.as_ref().is_some_and(|w| w.sas.len() == 2),
    )?;
    let sas = &ours.worker.as_ref().expect("worker counters").sas;
    assert_eq!(sas.len(), 2, "{sas:?}\n{}", agent.log());
    let spi = |direction: &str| sas.iter().find(|s| s.direction == direction).map(|s| s.spi);
    assert_eq!(
        spi("out"),
        Some(theirs.spi_in),
        "our outbound SA is strongSwan's inbound"
    );
    assert_eq!(
        spi("in"),
        Some(theirs.spi_out),
        "our inbound SA is strongSwan's outbound"
    );
    Ok(())
}
