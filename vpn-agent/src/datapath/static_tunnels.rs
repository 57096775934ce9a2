//! Static-key tunnels (like `ip xfrm state add`): SPIs and keys from a file, no IKE. For tests,
//! and for peers that cannot run IKE.
//!
//! ```toml
//! [[tunnel]]
//! name = "to-site-b"
//! local_address = "198.51.100.1"    # outer source: this router's WAN address
//! peer_address = "198.51.100.2"
//! encapsulation = "udp"             # "udp" (RFC 3948, port 4500) or "esp" (protocol 50)
//! local_prefixes = ["10.1.0.0/24"]  # traffic selectors; [] means any
//! remote_prefixes = ["10.2.0.0/24"] # also the routes into the tunnel
//! route_based = false               # true: AWS style, the SA's selectors are 0.0.0.0/0 both
//!                                   # ways and remote_prefixes are only the routes
//! replay_window = 1024
//! esn = false                       # 64-bit extended sequence numbers (RFC 4303 2.2.1);
//!                                   # both ends must agree
//! mtu = 1400                        # largest inner packet; bigger ones are fragmented first
//!                                   # (or refused with ICMP "fragmentation needed" under DF)
//! mss = 1360                        # TCP MSS clamp for SYNs through the tunnel (mtu - 40)
//! lifetime = { hard_seconds = 86400, soft_bytes = 1_000_000_000 }  # per SA; also
//!                                   # soft_/hard_ packets, bytes, seconds. Soft: a warning
//!                                   # (rotate the keys); hard: the SA carries nothing more
//! outbound = { spi = 0x1001, key_file = "/etc/vpn/to-site-b.out" }
//! inbound = { spi = 0x2001, key_file = "/etc/vpn/to-site-b.in" }
//! ```
//!
//! `inbound` may also be a list of SAs, all accepted at once. That is how static keys are
//! rolled over without loss (make-before-break, as IKE does it): (1) add the new inbound SA on
//! both routers and reload them (SIGHUP); (2) switch `outbound` to the new SA on both, reload;
//! (3) drop the old inbound SA, reload.
//!
//! A key file holds the RFC 4106 keying material in hex: the AES key followed by the 4-byte
//! salt (20, 28 or 36 bytes for AES-128/192/256-GCM). It must be a regular file readable by
//! its owner only.

use std::{
    net::{IpAddr, Ipv4Addr},
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use ipnet::Ipv4Net;
use serde::Deserialize;
use vpn_esp::{AeadKey, ReplayWindowSize, SaParams, Spi, TunnelEndpoints, UdpEncap};
use zeroize::Zeroizing;

use super::sa_table::{Lifetime, Limits};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(rename = "tunnel", default)]
    tunnels: Vec<TunnelSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TunnelSpec {
    name: String,
    local_address: Ipv4Addr,
    peer_address: Ipv4Addr,
    encapsulation: EncapsulationSpec,
    #[serde(default)]
    local_prefixes: Vec<Ipv4Net>,
    remote_prefixes: Vec<Ipv4Net>,
    #[serde(default)]
    route_based: bool,
    #[serde(default = "default_replay_window")]
    replay_window: u32,
    #[serde(default)]
    esn: bool,
    #[serde(default = "default_mtu")]
    mtu: u16,
    mss: Option<u16>,
    #[serde(default)]
    lifetime: LifetimeSpec,
    outbound: SaSpec,
    inbound: OneOrMore<SaSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LifetimeSpec {
    soft_bytes: Option<u64>,
    hard_bytes: Option<u64>,
    soft_packets: Option<u64>,
    hard_packets: Option<u64>,
    soft_seconds: Option<u64>,
    hard_seconds: Option<u64>,
}

impl LifetimeSpec {
    fn resolve(&self) -> Lifetime {
        let secs = |s: Option<u64>| s.map(std::time::Duration::from_secs);
        Lifetime {
            soft: Limits {
                bytes: self.soft_bytes,
                packets: self.soft_packets,
                time: secs(self.soft_seconds),
            },
            hard: Limits {
                bytes: self.hard_bytes,
                packets: self.hard_packets,
                time: secs(self.hard_seconds),
            },
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMore<T> {
    One(T),
    More(Vec<T>),
}

impl<T> OneOrMore<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMore::One(one) => vec![one],
            OneOrMore::More(more) => more,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EncapsulationSpec {
    Udp,
    Esp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaSpec {
    spi: u32,
    key_file: PathBuf,
}

fn default_replay_window() -> u32 {
    1024
}

/// Fits ESP-in-UDP with AES-GCM (at most 65 bytes of overhead) in a 1500-byte path.
fn default_mtu() -> u16 {
    1400
}

/// IPv4 and TCP headers without options.
const TCP_IP_HEADERS: u16 = 40;
/// IPv4's minimum datagram every link carries (RFC 791), a floor for the tunnel MTU.
const MIN_MTU: u16 = 576;

/// One static tunnel, its keys loaded.
#[derive(Clone)]
pub struct StaticTunnel {
    pub name: String,
    pub local_address: Ipv4Addr,
    pub peer_address: Ipv4Addr,
    pub encapsulation: EncapsulationSpec,
    pub local_prefixes: Vec<Ipv4Net>,
    pub remote_prefixes: Vec<Ipv4Net>,
    /// Selectors 0.0.0.0/0 both ways; `remote_prefixes` only route traffic into the tunnel.
    pub route_based: bool,
    pub mtu: u16,
    pub mss: u16,
    pub lifetime: Lifetime,
    pub outbound: SaParams,
    /// Every SA accepted from the peer (more than one while keys roll over).
    pub inbound: Vec<SaParams>,
}

impl std::fmt::Debug for StaticTunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTunnel")
            .field("name", &self.name)
            .field("peer_address", &self.peer_address)
            .finish_non_exhaustive()
    }
}

/// Reads and validates `path`; errors name the file, the tunnel and the field.
pub fn load(path: &Path) -> anyhow::Result<Vec<StaticTunnel>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: File = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
    let mut tunnels = Vec::new();
    for (i, spec) in file.tunnels.into_iter().enumerate() {
        let at = format!("{}: tunnel[{i}] ({})", path.display(), spec.name);
        tunnels.push(resolve(spec).with_context(|| at)?);
    }
    let mut spis: Vec<u32> = tunnels
        .iter()
        .flat_map(|t| t.inbound.iter().map(|sa| sa.spi.get()))
        .collect();
    spis.sort_unstable();
    if let Some(w) = spis.windows(2).find(|w| w[0] == w[1]) {
        bail!("{}: inbound SPI {:#x} is used twice", path.display(), w[0]);
    }
    let mut names: Vec<&str> = tunnels.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        bail!("{}: two tunnels are named {}", path.display(), w[0]);
    }
    Ok(tunnels)
}

fn resolve(spec: TunnelSpec) -> anyhow::Result<StaticTunnel> {
    if spec.remote_prefixes.is_empty() {
        bail!("remote_prefixes: at least one prefix is needed to route traffic into the tunnel");
    }
    if !(MIN_MTU..=9000).contains(&spec.mtu) {
        bail!("mtu: {} is outside {MIN_MTU}..=9000", spec.mtu);
    }
    let mss = spec.mss.unwrap_or(spec.mtu - TCP_IP_HEADERS);
    if mss == 0 || mss > spec.mtu - TCP_IP_HEADERS {
        bail!(
            "mss: {mss} must be between 1 and mtu - 40 ({})",
            spec.mtu - TCP_IP_HEADERS
        );
    }
    let window = ReplayWindowSize::new(spec.replay_window)
        .map_err(|e| anyhow::anyhow!("replay_window: {e}"))?;
    let encap = match spec.encapsulation {
        EncapsulationSpec::Udp => Some(UdpEncap::nat_t()),
        EncapsulationSpec::Esp => None,
    };
    let params = |sa: &SaSpec, local: Ipv4Addr, remote: Ipv4Addr, field: &str| {
        let spi = Spi::new(sa.spi).map_err(|e| anyhow::anyhow!("{field}.spi: {e}"))?;
        let keymat = read_key_file(&sa.key_file).with_context(|| format!("{field}.key_file"))?;
        let (key, salt) = AeadKey::from_keymat(&keymat)
            .map_err(|e| anyhow::anyhow!("{field}.key_file {}: {e}", sa.key_file.display()))?;
        let tunnel = TunnelEndpoints::new(IpAddr::V4(local), IpAddr::V4(remote))
            .map_err(|e| anyhow::anyhow!("{field}: {e}"))?;
        let mut params = SaParams::new(spi, key, salt, tunnel);
        params.replay_window = window;
        params.udp_encap = encap;
        params.esn = spec.esn;
        Ok::<_, anyhow::Error>(params)
    };
    // Outbound packets go local -> peer; inbound ones were sealed by the peer towards us.
    let outbound = params(
        &spec.outbound,
        spec.local_address,
        spec.peer_address,
        "outbound",
    )?;
    let inbound_specs = spec.inbound.into_vec();
    if inbound_specs.is_empty() {
        bail!("inbound: at least one SA is needed");
    }
    let inbound = inbound_specs
        .iter()
        .enumerate()
        .map(|(i, sa)| {
            params(
                sa,
                spec.peer_address,
                spec.local_address,
                &format!("inbound[{i}]"),
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(StaticTunnel {
        name: spec.name,
        local_address: spec.local_address,
        peer_address: spec.peer_address,
        encapsulation: spec.encapsulation,
        local_prefixes: spec.local_prefixes,
        remote_prefixes: spec.remote_prefixes,
        route_based: spec.route_based,
        mtu: spec.mtu,
        mss,
        lifetime: spec.lifetime.resolve(),
        outbound,
        inbound,
    })
}

/// Hex keying material from a root-only file; the buffers are zeroized when dropped.
fn read_key_file(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    if meta.mode() & 0o077 != 0 {
        bail!(
            "{} is readable by group or others (mode {:o}); keys must be mode 0600 or stricter",
            path.display(),
            meta.mode() & 0o777
        );
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let hex: Zeroizing<Vec<u8>> =
        Zeroizing::new(text.bytes().filter(|b| !b.is_ascii_whitespace()).collect());
    if !hex.len().is_multiple_of(2) {
        bail!("{}: odd number of hex digits", path.display());
    }
    let mut out = Zeroizing::new(Vec::with_capacity(hex.len() / 2));
    for pair in hex.chunks(2) {
        let digit = |b: u8| (b as char).to_digit(16);
        match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
            // The offending characters are part of the secret: do not print them.
            _ => bail!("{}: not hexadecimal", path.display()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    const KEY_HEX: &str =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\ncafebabe\n";

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn config(dir: &Path, out_key: &Path, in_key: &Path) -> PathBuf {
        let text = format!(
            "[[tunnel]]\nname = \"t\"\nlocal_address = \"198.51.100.1\"\npeer_address = \"198.51.100.2\"\n\
             encapsulation = \"udp\"\nremote_prefixes = [\"10.2.0.0/24\"]\n\
             outbound = {{ spi = 4097, key_file = \"{}\" }}\ninbound = {{ spi = 8193, key_file = \"{}\" }}\n",
            out_key.display(),
            in_key.display()
        );
        write(dir, "tunnels.toml", &text, 0o600)
    }

    #[test]
    fn loads_a_tunnel_with_private_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = write(dir.path(), "k", KEY_HEX, 0o600);
        let tunnels = load(&config(dir.path(), &key, &key)).unwrap();
        assert_eq!(tunnels.len(), 1);
        assert_eq!(tunnels[0].outbound.spi.get(), 4097);
        assert_eq!(tunnels[0].inbound[0].spi.get(), 8193);
        assert!(tunnels[0].outbound.udp_encap.is_some());
        assert!(!format!("{:?}", tunnels[0]).contains("0001020304"));
    }

    #[test]
    fn refuses_key_files_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let key = write(dir.path(), "k", KEY_HEX, 0o644);
        let err = format!("{:#}", load(&config(dir.path(), &key, &key)).unwrap_err());
        assert!(err.contains("readable by group or others"), "{err}");
        assert!(err.contains("outbound.key_file"), "{err}");
    }

    #[test]
    fn bad_hex_never_echoes_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let key = write(
            dir.path(),
            "k",
            "zz0102030405060708090a0b0c0d0e0f10111213",
            0o600,
        );
        let err = format!("{:#}", load(&config(dir.path(), &key, &key)).unwrap_err());
        assert!(err.contains("not hexadecimal"), "{err}");
        assert!(!err.contains("zz01"), "{err}");
    }

    #[test]
    fn unknown_fields_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "t.toml", "[[tunnel]]\nnmae = \"x\"\n", 0o600);
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(err.contains("t.toml"), "{err}");
        assert!(err.contains("nmae"), "{err}");
    }
}
