//! Static-key tunnel configurations for the two lab routers (vpn-agent --static-tunnels), with
//! fresh random keys in root-only files.

use std::{
    fs,
    io::Read as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;

use crate::addr;

/// How the ESP packets travel between the routers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encap {
    /// RFC 3948 UDP port 4500 (what NAT traversal and AWS from EC2 use).
    Udp,
    /// IP protocol 50.
    Esp,
}

/// The files for one router pair; the folder is removed on drop.
pub struct StaticTunnelFiles {
    dir: PathBuf,
    pub router_a: PathBuf,
    pub router_b: PathBuf,
    /// Hex keying material (AES-256 key + salt) of the a->b and b->a directions, for tools that
    /// decrypt a capture.
    pub key_a_to_b: String,
    pub key_b_to_a: String,
    pub spi_a_to_b: u32,
    pub spi_b_to_a: u32,
}

impl Drop for StaticTunnelFiles {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

impl StaticTunnelFiles {
    /// Writes configurations for a tunnel between site A (10.1.0.0/24) and site B
    /// (10.2.0.0/24). With `nat`, router-a's outer address is its private one and router-b
    /// talks to the public (NAT) address, as with an EC2 Elastic IP.
    pub fn write(lab_id: &str, encap: Encap, nat: bool) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("{lab_id}-static-tunnel"));
        fs::create_dir_all(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        let key_a_to_b = random_hex(36)?;
        let key_b_to_a = random_hex(36)?;
        let (spi_a_to_b, spi_b_to_a) = (0x0a0b_0001, 0x0b0a_0001);
        let key_ab = dir.join("a-to-b.key");
        let key_ba = dir.join("b-to-a.key");
        write_private(&key_ab, &key_a_to_b)?;
        write_private(&key_ba, &key_b_to_a)?;
        let encapsulation = match encap {
            Encap::Udp => "udp",
            Encap::Esp => "esp",
        };
        let a_outer = if nat {
            addr::ROUTER_A_WAN_PRIVATE
        } else {
            addr::ROUTER_A_WAN
        };
        let tunnel = |name: &str,
                      local: std::net::Ipv4Addr,
                      peer: std::net::Ipv4Addr,
                      local_net: &str,
                      remote_net: &str,
                      out: (u32, &Path),
                      inb: (u32, &Path)| {
            format!(
                "[[tunnel]]\nname = \"{name}\"\nlocal_address = \"{local}\"\npeer_address = \"{peer}\"\n\
                 encapsulation = \"{encapsulation}\"\nlocal_prefixes = [\"{local_net}\"]\n\
                 remote_prefixes = [\"{remote_net}\"]\n\
                 outbound = {{ spi = {}, key_file = \"{}\" }}\n\
                 inbound = {{ spi = {}, key_file = \"{}\" }}\n",
                out.0,
                out.1.display(),
                inb.0,
                inb.1.display()
            )
        };
        let router_a = dir.join("router-a.toml");
        let router_b = dir.join("router-b.toml");
        write_private(
            &router_a,
            &tunnel(
                "to-site-b",
                a_outer,
                addr::ROUTER_B_WAN,
                addr::SITE_A,
                addr::SITE_B,
                (spi_a_to_b, &key_ab),
                (spi_b_to_a, &key_ba),
            ),
        )?;
        write_private(
            &router_b,
            &tunnel(
                "to-site-a",
                addr::ROUTER_B_WAN,
                addr::ROUTER_A_WAN,
                addr::SITE_B,
                addr::SITE_A,
                (spi_b_to_a, &key_ba),
                (spi_a_to_b, &key_ab),
            ),
        )?;
        Ok(StaticTunnelFiles {
            dir,
            router_a,
            router_b,
            key_a_to_b,
            key_b_to_a,
            spi_a_to_b,
            spi_b_to_a,
        })
    }
}
