//! The record of labs that exist, so that nothing a lab created outlives it unnoticed.
//!
//! Each lab writes `/run/vpn-lab/<id>.json` before it creates anything, naming its namespaces and
//! its owner process. Teardown deletes exactly those namespaces (after stopping the processes
//! inside them) and then the record. A lab whose owner died without tearing down (Ctrl-C, a
//! killed test) is removed by the next lab that starts; `lab up` labs have no owner and stay
//! until `lab down`.

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::netns;

const REGISTRY_DIR: &str = "/run/vpn-lab";

/// The process that owns a lab: identified by pid and start time, so a reused pid is not
/// mistaken for the owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    pub start_ticks: u64,
}

impl Owner {
    pub fn current() -> anyhow::Result<Self> {
        let pid = std::process::id();
        Ok(Owner {
            pid,
            start_ticks: start_ticks(pid).context("reading this process's start time")?,
        })
    }

    pub fn alive(&self) -> bool {
        start_ticks(self.pid) == Some(self.start_ticks)
    }
}

/// Field 22 of /proc/PID/stat: the process start time in clock ticks since boot.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields restart after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabRecord {
    pub id: String,
    /// `None` for a lab left up on purpose (`cargo xtask lab up`).
    pub owner: Option<Owner>,
    pub nat: bool,
    pub namespaces: Vec<String>,
}

impl LabRecord {
    pub fn path(id: &str) -> PathBuf {
        Path::new(REGISTRY_DIR).join(format!("{id}.json"))
    }

    pub fn store(&self) -> anyhow::Result<()> {
        fs::create_dir_all(REGISTRY_DIR).with_context(|| format!("creating {REGISTRY_DIR}"))?;
        let path = Self::path(&self.id);
        fs::write(&path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn load(id: &str) -> anyhow::Result<Self> {
        let path = Self::path(id);
        let text = fs::read_to_string(&path)
            .with_context(|| format!("no lab {id} ({})", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Every recorded lab.
    pub fn all() -> anyhow::Result<Vec<Self>> {
        let dir = match fs::read_dir(REGISTRY_DIR) {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("listing {REGISTRY_DIR}")),
        };
        let mut labs = Vec::new();
        for entry in dir {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = fs::read_to_string(&path)?;
                match serde_json::from_str(&text) {
                    Ok(record) => labs.push(record),
                    Err(e) => eprintln!("vpn-lab: ignoring unreadable {}: {e}", path.display()),
                }
            }
        }
        labs.sort_by(|a: &LabRecord, b| a.id.cmp(&b.id));
        Ok(labs)
    }

    /// Stops the processes inside this lab's namespaces, deletes the namespaces, then the record.
    pub fn teardown(&self) -> anyhow::Result<()> {
        let existing = netns::list()?;
        for ns in self.namespaces.iter().filter(|ns| existing.contains(ns)) {
            let removed = stop_processes_in(ns).and_then(|()| netns::ip(&["netns", "del", ns]));
            // Another process may have removed it meanwhile (two labs reaping one orphan).
            if let Err(err) = removed
                && netns::list()?.contains(ns)
            {
                return Err(err);
            }
        }
        let path = Self::path(&self.id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
        }
    }
}

/// Removes labs whose owner process has died.
pub fn reap_orphans() -> anyhow::Result<Vec<String>> {
    let mut reaped = Vec::new();
    for record in LabRecord::all()? {
        if record.owner.as_ref().is_some_and(|o| !o.alive()) {
            record
                .teardown()
                .with_context(|| format!("removing orphaned lab {}", record.id))?;
            reaped.push(record.id);
        }
    }
    Ok(reaped)
}

/// SIGTERM to every process in namespace `ns`, SIGKILL to those still there after two seconds.
fn stop_processes_in(ns: &str) -> anyhow::Result<()> {
    use nix::{sys::signal::Signal, unistd::Pid};
    let pids = |ns: &str| -> anyhow::Result<Vec<Pid>> {
        let output = netns::ip(&["netns", "pids", ns])?;
        Ok(String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .map(Pid::from_raw)
            .collect())
    };
    let signal_all = |signal: Signal| -> anyhow::Result<bool> {
        let found = pids(ns)?;
        for pid in &found {
            let _ = nix::sys::signal::kill(*pid, signal);
        }
        Ok(!found.is_empty())
    };
    if !signal_all(Signal::SIGTERM)? {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if pids(ns)?.is_empty() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_all(Signal::SIGKILL)?;
    Ok(())
}

/// Tears down every lab owned by this process (for a Ctrl-C handler).
pub fn teardown_owned_by_current() -> anyhow::Result<()> {
    let me = Owner::current()?;
    for record in LabRecord::all()? {
        if record.owner.as_ref() == Some(&me) {
            record.teardown()?;
        }
    }
    Ok(())
}
