//! Making sure a BPF filesystem is mounted where maps are pinned.

use std::path::Path;

use anyhow::Context as _;
use nix::{
    mount::{MsFlags, mount},
    sys::statfs::{BPF_FS_MAGIC, statfs},
};

const BPFFS: &str = "/sys/fs/bpf";

/// Mounts bpffs on /sys/fs/bpf (mode 0700) unless one is already there, as systemd would do.
pub fn ensure_mounted() -> anyhow::Result<()> {
    let path = Path::new(BPFFS);
    let stat = statfs(path).with_context(|| format!("statfs {BPFFS}"))?;
    if stat.filesystem_type() == BPF_FS_MAGIC {
        return Ok(());
    }
    tracing::info!(path = BPFFS, "mounting the BPF filesystem");
    mount(
        Some("bpf"),
        path,
        Some("bpf"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=0700"),
    )
    .with_context(|| format!("mounting bpffs on {BPFFS}"))
}
