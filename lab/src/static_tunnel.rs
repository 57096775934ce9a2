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

/// Steps of a make-before-break key rollover (see vpn-agent's static tunnel docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rollover {
    /// Both routers accept the old and the new inbound SA; they still send with the old.
    AcceptNew,
    /// Both send with the new SA, still accepting the old.
    SendNew,
    /// Only the new SAs remain.
    DropOld,
}

/// The files for one router pair; the folder is removed on drop.
pub struct StaticTunnelFiles {
    dir: PathBuf,
    encapsulation: &'static str,
    a_outer: std::net::Ipv4Addr,
    extra: String,
    pub router_a: PathBuf,
    pub router_b: PathBuf,
    /// Hex keying material (AES key + salt; AES-256 unless written with another key size) of
    /// the a->b and b->a directions, for tools that decrypt a capture.
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
        Self::write_with(lab_id, encap, nat, "")
    }

    /// Like [`StaticTunnelFiles::write`], with `extra` TOML lines added to both tunnels (a
    /// lifetime, an MTU).
    pub fn write_with(lab_id: &str, encap: Encap, nat: bool, extra: &str) -> anyhow::Result<Self> {
        Self::write_keyed(lab_id, encap, nat, extra, 32)
    }

    /// Like [`StaticTunnelFiles::write_with`], with AES keys of `key_bytes` (16, 24 or 32:
    /// AES-128/192/256-GCM; the files hold the key and the 4-byte salt).
    pub fn write_keyed(
        lab_id: &str,
        encap: Encap,
        nat: bool,
        extra: &str,
        key_bytes: usize,
    ) -> anyhow::Result<Self> {
        if ![16, 24, 32].contains(&key_bytes) {
            anyhow::bail!("AES-GCM keys are 16, 24 or 32 bytes, not {key_bytes}");
        }
        let dir = std::env::temp_dir().join(format!("{lab_id}-static-tunnel"));
        fs::create_dir_all(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        let key_a_to_b = random_hex(key_bytes + 4)?;
        let key_b_to_a = random_hex(key_bytes + 4)?;
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
        let router_a = dir.join("router-a.toml");
        let router_b = dir.join("router-b.toml");
        let files = StaticTunnelFiles {
            dir,
            encapsulation,
            a_outer,
            extra: extra.to_owned(),
            router_a,
            router_b,
            key_a_to_b,
            key_b_to_a,
            spi_a_to_b,
            spi_b_to_a,
        };
        let (ab, ba) = (
            files.sa(spi_a_to_b, "a-to-b"),
            files.sa(spi_b_to_a, "b-to-a"),
        );
        files.write_configs(
            &ab,
            std::slice::from_ref(&ba),
            &ba,
            std::slice::from_ref(&ab),
        )?;
        Ok(files)
    }

    /// `{ spi = N, key_file = "..." }` for the key file `name`.key.
    fn sa(&self, spi: u32, name: &str) -> String {
        format!(
            "{{ spi = {spi}, key_file = \"{}\" }}",
            self.dir.join(format!("{name}.key")).display()
        )
    }

    /// Writes both routers' files: `ab` is router-a's outbound SA (router-b's inbound), `ba`
    /// the other way; each side's inbound list is given separately.
    fn write_configs(
        &self,
        ab_out: &str,
        a_in: &[String],
        ba_out: &str,
        b_in: &[String],
    ) -> anyhow::Result<()> {
        let tunnel = |name: &str,
                      local: std::net::Ipv4Addr,
                      peer: std::net::Ipv4Addr,
                      local_net: &str,
                      remote_net: &str,
                      out: &str,
                      inbound: &[String]| {
            format!(
                "[[tunnel]]\nname = \"{name}\"\nlocal_address = \"{local}\"\npeer_address = \"{peer}\"\n\
                 encapsulation = \"{}\"\nlocal_prefixes = [\"{local_net}\"]\n\
                 remote_prefixes = [\"{remote_net}\"]\noutbound = {out}\ninbound = [{}]\n{}\n",
                self.encapsulation,
                inbound.join(", "),
                self.extra
            )
        };
        write_private(
            &self.router_a,
            &tunnel(
                "to-site-b",
                self.a_outer,
                addr::ROUTER_B_WAN,
                addr::SITE_A,
                addr::SITE_B,
                ab_out,
                a_in,
            ),
        )?;
        write_private(
            &self.router_b,
            &tunnel(
                "to-site-a",
                addr::ROUTER_B_WAN,
                addr::ROUTER_A_WAN,
                addr::SITE_B,
                addr::SITE_A,
                ba_out,
                b_in,
            ),
        )
    }

    /// Starts `vpn-agent --static-tunnels` on a router with its file from this pair.
    pub fn start_agent(
        &self,
        lab: &crate::Lab,
        router: crate::Node,
        agent_bin: &Path,
    ) -> anyhow::Result<crate::AgentProcess> {
        let file = match router {
            crate::Node::RouterA => &self.router_a,
            crate::Node::RouterB => &self.router_b,
            other => anyhow::bail!("{} runs no agent", other.name()),
        };
        let file = file.to_string_lossy();
        crate::AgentProcess::start_with(lab, router, agent_bin, &["--static-tunnels", &file])
    }

    /// Starts the agents on both routers.
    pub fn start_agents(
        &self,
        lab: &crate::Lab,
        agent_bin: &Path,
    ) -> anyhow::Result<(crate::AgentProcess, crate::AgentProcess)> {
        Ok((
            self.start_agent(lab, crate::Node::RouterA, agent_bin)?,
            self.start_agent(lab, crate::Node::RouterB, agent_bin)?,
        ))
    }

    /// SPIs of the SAs a rollover introduces (the old ones plus 0x100).
    pub fn rolled_spis(&self) -> (u32, u32) {
        (self.spi_a_to_b + 0x100, self.spi_b_to_a + 0x100)
    }

    /// Rewrites both routers' files for one step of a key rollover to fresh random keys; the
    /// routers apply it on SIGHUP.
    pub fn rollover(&self, step: Rollover) -> anyhow::Result<()> {
        let new_ab_key = self.dir.join("a-to-b-new.key");
        let new_ba_key = self.dir.join("b-to-a-new.key");
        if !new_ab_key.exists() {
            write_private(&new_ab_key, &random_hex(36)?)?;
            write_private(&new_ba_key, &random_hex(36)?)?;
        }
        let (new_ab_spi, new_ba_spi) = self.rolled_spis();
        let (old_ab, old_ba) = (
            self.sa(self.spi_a_to_b, "a-to-b"),
            self.sa(self.spi_b_to_a, "b-to-a"),
        );
        let (new_ab, new_ba) = (
            self.sa(new_ab_spi, "a-to-b-new"),
            self.sa(new_ba_spi, "b-to-a-new"),
        );
        let both = |old: &String, new: &String| vec![old.clone(), new.clone()];
        match step {
            Rollover::AcceptNew => self.write_configs(
                &old_ab,
                &both(&old_ba, &new_ba),
                &old_ba,
                &both(&old_ab, &new_ab),
            ),
            Rollover::SendNew => self.write_configs(
                &new_ab,
                &both(&old_ba, &new_ba),
                &new_ba,
                &both(&old_ab, &new_ab),
            ),
            Rollover::DropOld => self.write_configs(
                &new_ab,
                std::slice::from_ref(&new_ba),
                &new_ba,
                std::slice::from_ref(&new_ab),
            ),
        }
    }
}
