//! Builds the XDP object (`vpn-ebpf`) for bpfel-unknown-none with the nightly toolchain and
//! bpf-linker, so that `include_bytes!` in the agent can embed it.

use std::{env, path::PathBuf};

/// Where `cargo xtask setup` installs bpf-linker (built against the nightly's own libLLVM).
const DEFAULT_TOOLS_PREFIX: &str = "/opt/vpn-appliance";

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=VPN_TOOLS_PREFIX");
    let prefix = env::var_os("VPN_TOOLS_PREFIX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_TOOLS_PREFIX));
    let linker_dir = prefix.join("bpf-linker").join("bin");
    if linker_dir.join("bpf-linker").exists() {
        let path = env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![linker_dir];
        dirs.extend(env::split_paths(&path));
        // SAFETY: build scripts are single-threaded; the nested cargo inherits this PATH.
        unsafe { env::set_var("PATH", env::join_paths(dirs)?) };
    }

    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir
        .parent()
        .ok_or_else(|| anyhow::anyhow!("vpn-agent has no parent directory"))?;
    let common_dir = workspace.join("vpn-common");
    println!("cargo:rerun-if-changed={}", common_dir.display());
    let ebpf_dir = workspace.join("vpn-ebpf");
    let ebpf_dir = ebpf_dir
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("non-UTF-8 path {}", ebpf_dir.display()))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "vpn-ebpf",
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
