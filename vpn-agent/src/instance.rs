//! An agent instance: its name, where its maps are pinned and where its runtime state lives.
//!
//! Several instances may run on one host (the lab runs one per router namespace); each owns a
//! folder of pinned maps and a state file, both readable by root only.

use std::{
    fmt,
    fs::{self, DirBuilder},
    io::Write as _,
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::cli::XdpAttachMode;

/// bpffs folder holding one sub-folder of pinned maps per instance.
pub const PIN_ROOT: &str = "/sys/fs/bpf/vpn-appliance";
/// Folder of the instances' runtime state files.
pub const RUN_ROOT: &str = "/run/vpn-appliance";
const MAX_NAME_LEN: usize = 32;

/// A validated instance name: 1-32 lowercase letters, digits and inner hyphens, so that it is a
/// safe path component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceName(String);

impl InstanceName {
    pub fn parse(name: &str) -> Result<Self, String> {
        let valid_chars = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            Err(format!("must be 1 to {MAX_NAME_LEN} characters long"))
        } else if !valid_chars {
            Err("may contain only lowercase letters, digits and hyphens".into())
        } else if name.starts_with('-') || name.ends_with('-') {
            Err("must not start or end with a hyphen".into())
        } else {
            Ok(Self(name.to_owned()))
        }
    }

    pub fn pin_dir(&self) -> PathBuf {
        Path::new(PIN_ROOT).join(&self.0)
    }

    pub fn state_file(&self) -> PathBuf {
        Path::new(RUN_ROOT).join(format!("{}.json", self.0))
    }

    /// Host state the agent manages, such as sysctl drift (for `status`).
    pub fn system_file(&self) -> PathBuf {
        Path::new(RUN_ROOT).join(format!("{}.system.json", self.0))
    }

    /// The control socket (`vpn-agent initiate`, `terminate`).
    pub fn control_socket(&self) -> PathBuf {
        Path::new(RUN_ROOT).join(format!("{}.sock", self.0))
    }

    /// The IKE and CHILD SAs the IKE thread publishes (for `status`).
    pub fn ike_file(&self) -> PathBuf {
        Path::new(RUN_ROOT).join(format!("{}.ike.json", self.0))
    }

    /// Counters the crypto worker publishes (for `status`).
    pub fn worker_file(&self) -> PathBuf {
        Path::new(RUN_ROOT).join(format!("{}.worker.json", self.0))
    }
}

impl fmt::Display for InstanceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One interface the datapath is attached to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttachedInterface {
    pub role: String,
    pub name: String,
    pub ifindex: u32,
    pub mode: XdpAttachMode,
}

/// What a running instance publishes about itself for `status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RuntimeState {
    pub instance: String,
    pub pid: u32,
    pub pin_dir: PathBuf,
    pub interfaces: Vec<AttachedInterface>,
}

impl RuntimeState {
    pub fn load(name: &InstanceName) -> anyhow::Result<Option<Self>> {
        let path = name.state_file();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let state =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(Some(state))
    }

    /// Writes the state file atomically, mode 0600.
    pub fn store(&self, name: &InstanceName) -> anyhow::Result<()> {
        create_private_dir(Path::new(RUN_ROOT))?;
        write_private_json(&name.state_file(), self)
    }

    /// Whether the process that wrote this state is still alive.
    pub fn owner_alive(&self) -> bool {
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        nix::sys::signal::kill(pid, None).is_ok()
    }
}

/// Writes `value` as JSON to `path` atomically (temporary file, then rename), mode 0600.
pub fn write_private_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(serde_json::to_string_pretty(value)?.as_bytes())
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// Creates `dir` (and missing parents) with mode 0700, and tightens it to 0700 if it exists.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {} to root", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for name in ["default", "router-a", "r1", "vl12ab-router-a"] {
            assert!(InstanceName::parse(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_names_that_are_not_safe_path_components() {
        let too_long = "a".repeat(MAX_NAME_LEN + 1);
        for name in [
            "", "../etc", "a/b", "Router", "-a", "a-", "a b", "a.b", &too_long,
        ] {
            assert!(InstanceName::parse(name).is_err(), "{name:?}");
        }
    }
}
