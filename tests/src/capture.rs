//! Packet captures in the lab and their reading by tshark, a dissector that shares no code with
//! the appliance.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail};
use vpn_lab::{Lab, Node};

/// tcpdump on `dev` of `node` into `file`, packet-buffered, as root (the folder is private);
/// returns once tcpdump says it is listening.
pub fn capture(
    lab: &Lab,
    node: Node,
    dev: &str,
    file: &Path,
    filter: &str,
) -> anyhow::Result<Child> {
    use std::io::{BufRead as _, BufReader};
    let mut child = lab
        .command(node, "tcpdump")
        .args(["-n", "-U", "-Z", "root", "-s", "256", "-i", dev, "-w"])
        .arg(file)
        .arg(filter)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting tcpdump")?;
    let stderr = child.stderr.take().context("tcpdump stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("listening on") => break,
            Some(Ok(_)) => continue,
            _ => {
                let _ = child.kill();
                bail!("tcpdump on {dev} did not start");
            }
        }
    }
    // Keep draining stderr so tcpdump never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok(child)
}

/// Stops a capture from [`capture`] (SIGINT, so tcpdump flushes the file).
pub fn stop_capture(mut child: Child) -> anyhow::Result<()> {
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )?;
    child.wait()?;
    Ok(())
}

/// tshark on `file` with `args`; its standard output.
pub fn tshark(file: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!("tshark failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A tshark `esp_sa` table entry for an AES-GCM-16 SA: `keymat_hex` is the key and salt.
pub fn esp_sa(src: &str, dst: &str, spi: u32, keymat_hex: &str) -> String {
    format!(
        "uat:esp_sa:\"IPv4\",\"{src}\",\"{dst}\",\"{spi:#010x}\",\
         \"AES-GCM with 16 octet ICV [RFC4106]\",\"0x{keymat_hex}\",\"NULL\",\"\""
    )
}
