//! `cargo xtask setup`: idempotent installation of everything the build and the lab need.
//!
//! Each step first checks whether its work is already done, so a second run takes seconds.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, anyhow, bail};

use crate::step;

/// Permanent prefix for tools built here; bpf-linker's rpath points into it.
pub const DEFAULT_TOOLS_PREFIX: &str = "/opt/vpn-appliance";
const BPF_LINKER_VERSION: &str = "0.13.0";

/// Debian packages the lab, the tests and the interop peers use.
const DEBIAN_PACKAGES: &[&str] = &[
    "iproute2",
    "iputils-ping",
    "util-linux",
    "ethtool",
    "bpftool",
    "nftables",
    "iperf3",
    "linux-perf",
    "openssl",
    "tcpdump",
    "tshark",
    "strongswan-charon",
    "strongswan-swanctl",
    "libcharon-extra-plugins",
    "libstrongswan-extra-plugins",
    "libstrongswan-standard-plugins",
];

pub fn tools_prefix() -> PathBuf {
    std::env::var_os("VPN_TOOLS_PREFIX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_TOOLS_PREFIX))
}

pub fn bpf_linker_dir() -> PathBuf {
    tools_prefix().join("bpf-linker").join("bin")
}

pub fn run() -> anyhow::Result<()> {
    run_step("nightly toolchain with rust-src", nightly_rust_src)?;
    run_step("bpf-linker built against the nightly's libLLVM", bpf_linker)?;
    run_step("Debian packages", debian_packages)?;
    run_step("Python test oracles (scapy, cryptography)", python_oracles)?;
    eprintln!("setup: everything is in place");
    Ok(())
}

fn run_step(name: &str, f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    step(&format!("setup: {name}"));
    f().with_context(|| format!("setup step \"{name}\" failed"))
}

fn nightly_sysroot() -> anyhow::Result<PathBuf> {
    let output = Command::new("rustc")
        .args(["+nightly", "--print", "sysroot"])
        .output()
        .context("running rustc +nightly")?;
    if !output.status.success() {
        bail!(
            "no nightly toolchain: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(PathBuf::from(String::from_utf8(output.stdout)?.trim()))
}

fn nightly_rust_src() -> anyhow::Result<()> {
    if nightly_sysroot().is_err() {
        eprintln!("installing the nightly toolchain");
        checked(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    let sysroot = nightly_sysroot()?;
    if sysroot.join("lib/rustlib/src/rust/library/core").is_dir() {
        eprintln!("rust-src present in {}", sysroot.display());
        return Ok(());
    }
    checked(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
}

/// The nightly's own libLLVM shared library and its major version.
fn nightly_libllvm() -> anyhow::Result<(PathBuf, u32)> {
    let lib = nightly_sysroot()?.join("lib");
    let entries = std::fs::read_dir(&lib).with_context(|| format!("listing {}", lib.display()))?;
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        // libLLVM.so.22.1-rust-1.97.0-nightly: the name varies with the nightly.
        if let Some(version) = name.strip_prefix("libLLVM.so.") {
            let major = version
                .split('.')
                .next()
                .and_then(|m| m.parse().ok())
                .ok_or_else(|| anyhow!("cannot read the LLVM version of {name}"))?;
            return Ok((path, major));
        }
    }
    bail!("no libLLVM.so.* in {}", lib.display())
}

fn bpf_linker() -> anyhow::Result<()> {
    let (libllvm, llvm_major) = nightly_libllvm()?;
    let llvm_prefix = tools_prefix().join("llvm");
    let llvm_lib = llvm_prefix.join("lib");
    std::fs::create_dir_all(&llvm_lib)
        .with_context(|| format!("creating {}", llvm_lib.display()))?;
    let file_name = libllvm.file_name().context("libLLVM has no file name")?;
    // bpf-linker's rpath points here; re-pointing the links keeps it working across nightlies.
    for link in [llvm_lib.join(file_name), llvm_lib.join("libLLVM.so")] {
        symlink_to(&link, &libllvm)?;
    }

    let linker = bpf_linker_dir().join("bpf-linker");
    if let Ok(output) = Command::new(&linker).arg("--version").output() {
        let version = String::from_utf8_lossy(&output.stdout);
        if output.status.success() && version.contains(BPF_LINKER_VERSION) {
            eprintln!("{} is {}", linker.display(), version.trim());
            return Ok(());
        }
    }
    eprintln!("building bpf-linker {BPF_LINKER_VERSION} against LLVM {llvm_major} (about 80 s)");
    checked(
        Command::new("cargo")
            .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
            .args(["--locked", "--no-default-features", "--features"])
            .arg(format!("llvm-{llvm_major}"))
            .arg("--root")
            .arg(tools_prefix().join("bpf-linker"))
            .env("LLVM_PREFIX", &llvm_prefix),
    )
}

fn symlink_to(link: &Path, target: &Path) -> anyhow::Result<()> {
    if std::fs::read_link(link).is_ok_and(|current| current == target) {
        return Ok(());
    }
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("linking {} to {}", link.display(), target.display()))
}

fn debian_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .copied()
        .filter(|pkg| !dpkg_installed(pkg))
        .collect();
    if missing.is_empty() {
        eprintln!("all {} packages installed", DEBIAN_PACKAGES.len());
        return Ok(());
    }
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "missing packages {} and not root to install them",
            missing.join(" ")
        );
    }
    eprintln!("installing {}", missing.join(" "));
    checked(Command::new("apt-get").args(["update", "-qq"]))?;
    checked(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// scapy decrypts and builds ESP independently of our code (the ESP tests use it as an oracle).
const PYTHON_PACKAGES: &[&str] = &["scapy==2.8.0", "cryptography==48.0.0"];

fn python_oracles() -> anyhow::Result<()> {
    let present = Command::new("python3")
        .args(["-c", "import scapy.layers.ipsec, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        eprintln!("scapy and cryptography importable");
        return Ok(());
    }
    eprintln!("installing {}", PYTHON_PACKAGES.join(" "));
    checked(
        Command::new("python3")
            .args(["-m", "pip", "install", "--quiet"])
            .args(PYTHON_PACKAGES),
    )
}

fn dpkg_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout) == "install ok installed"
        })
}

/// Runs a command with inherited output; an error names it if it fails.
pub fn checked(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}
