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
/// returns once tcpdump says it is listening. Immediate mode: without it the kernel hands
/// packets over in blocks retired every second, and a capture stopped sooner loses the
/// last ones.
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
        .args([
            "-n",
            "-U",
            "--immediate-mode",
            "-Z",
            "root",
            "-s",
            "256",
            "-i",
            dev,
            "-w",
        ])
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

/// The IPv4 packets (Ethernet frames with EtherType 0x0800, link header removed) of a
/// classic pcap file written by tcpdump on an Ethernet-like device, as captured (snap length
/// permitting).
pub fn ipv4_packets(file: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let raw = std::fs::read(file)?;
    let header: [u8; 24] = raw
        .get(..24)
        .and_then(|h| h.try_into().ok())
        .context("pcap shorter than its header")?;
    let little = match header[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => bail!("{} is not a classic pcap file", file.display()),
    };
    let u32_at = |b: &[u8], at: usize| {
        let v: [u8; 4] = b[at..at + 4].try_into().expect("4 bytes");
        if little {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        }
    };
    if u32_at(&header, 20) != 1 {
        bail!("{}: not an Ethernet capture", file.display());
    }
    let mut packets = Vec::new();
    let mut at = 24;
    while at + 16 <= raw.len() {
        let caplen = u32_at(&raw, at + 8) as usize;
        let frame = raw
            .get(at + 16..at + 16 + caplen)
            .context("pcap record cut short")?;
        if frame.len() > 14 && frame[12..14] == [0x08, 0x00] {
            packets.push(frame[14..].to_vec());
        }
        at += 16 + caplen;
    }
    Ok(packets)
}
