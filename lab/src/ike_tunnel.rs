//! IKE-negotiated tunnel configurations for the two lab routers (`vpn-agent run --config`): one
//! policy tunnel between site A (10.1.0.0/24) and site B (10.2.0.0/24), authenticated with a
//! fresh random pre-shared key in a root-only file. router-a initiates, router-b responds.

use std::{
    fs,
    io::Read as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;

use crate::{AgentProcess, Lab, Node, addr};

/// How the pair's tunnel is set up.
#[derive(Clone, Debug, Default)]
pub struct IkeOptions {
    /// router-a sits behind the lab's 1:1 NAT (build the lab with `LabSpec { nat: true }`).
    pub nat: bool,
    /// ESP in UDP 4500 even without a NAT.
    pub force_encap: bool,
    /// More TOML lines for both tunnels (lifetimes, DPD, MTU).
    pub extra: String,
}

/// The files for one router pair; the folder is removed on drop.
pub struct IkeTunnelFiles {
    dir: PathBuf,
    pub router_a: PathBuf,
    pub router_b: PathBuf,
}

impl Drop for IkeTunnelFiles {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// 32 random letters and digits: a key AWS's rules would accept too.
fn random_psk() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ123456789";
    let mut buf = [0u8; 32];
    fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

impl IkeTunnelFiles {
    pub fn write(lab_id: &str, options: &IkeOptions) -> anyhow::Result<Self> {
        Self::write_each(lab_id, options, "", "")
    }

    /// Like [`IkeTunnelFiles::write`], with TOML lines for router-a's tunnel only (`extra_a`)
    /// and router-b's only (`extra_b`): lifetimes that differ, so one side rekeys first.
    pub fn write_each(
        lab_id: &str,
        options: &IkeOptions,
        extra_a: &str,
        extra_b: &str,
    ) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("{lab_id}-ike-tunnel"));
        fs::create_dir_all(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        let psk = dir.join("psk");
        write_private(&psk, &random_psk()?)?;
        let files = IkeTunnelFiles {
            router_a: dir.join("router-a.toml"),
            router_b: dir.join("router-b.toml"),
            dir,
        };
        let router = |name: &str, public: Option<std::net::Ipv4Addr>| {
            let public = public
                .map(|p| format!("wan_public_address = \"{p}\"\n"))
                .unwrap_or_default();
            format!(
                "[router]\nname = \"{name}\"\nwan = \"wan\"\nlan = [\"lan\"]\n{public}\n\
                 [sysctl]\nmanage = false\n\n"
            )
        };
        let tunnel = |name: &str,
                      peer: std::net::Ipv4Addr,
                      local: &str,
                      remote: &str,
                      startup: &str,
                      own: &str| {
            format!(
                "[[tunnel]]\nname = \"{name}\"\npeer = \"{peer}\"\n\
                 auth = {{ psk = {{ file = \"{psk}\" }} }}\n\
                 selectors = {{ local = [\"{local}\"], remote = [\"{remote}\"] }}\n\
                 force_encap = {force}\n\
                 ike_proposals = [\"aes256gcm16-prfsha256-modp2048\"]\n\
                 esp_proposals = [\"aes256gcm16\"]\n\
                 startup = \"{startup}\"\n{extra}\n{own}\n",
                psk = psk.display(),
                force = options.force_encap,
                extra = options.extra,
            )
        };
        // Behind the NAT, router-a is known by its public address (its IKE identity too).
        let a_public = options.nat.then_some(addr::ROUTER_A_WAN);
        write_private(
            &files.router_a,
            &(router("lab-a", a_public)
                + &tunnel(
                    "to-site-b",
                    addr::ROUTER_B_WAN,
                    addr::SITE_A,
                    addr::SITE_B,
                    "initiate",
                    extra_a,
                )),
        )?;
        write_private(
            &files.router_b,
            &(router("lab-b", None)
                + &tunnel(
                    "to-site-a",
                    addr::ROUTER_A_WAN,
                    addr::SITE_B,
                    addr::SITE_A,
                    "respond",
                    extra_b,
                )),
        )?;
        Ok(files)
    }

    /// Starts `vpn-agent run --config` on a router with its file from this pair.
    pub fn start_agent(
        &self,
        lab: &Lab,
        router: Node,
        agent_bin: &Path,
    ) -> anyhow::Result<AgentProcess> {
        self.start_agent_with(lab, router, agent_bin, &[])
    }

    /// Like [`IkeTunnelFiles::start_agent`], with more `vpn-agent run` arguments.
    pub fn start_agent_with(
        &self,
        lab: &Lab,
        router: Node,
        agent_bin: &Path,
        extra: &[&str],
    ) -> anyhow::Result<AgentProcess> {
        let file = match router {
            Node::RouterA => &self.router_a,
            Node::RouterB => &self.router_b,
            other => anyhow::bail!("{} runs no agent", other.name()),
        };
        let file = file.to_string_lossy();
        let mut args = vec!["--config", &file];
        args.extend_from_slice(extra);
        AgentProcess::start_bare(lab, router, agent_bin, &args)
    }

    /// Starts the responder (router-b), then the initiator (router-a).
    pub fn start_agents(
        &self,
        lab: &Lab,
        agent_bin: &Path,
    ) -> anyhow::Result<(AgentProcess, AgentProcess)> {
        let b = self.start_agent(lab, Node::RouterB, agent_bin)?;
        let a = self.start_agent(lab, Node::RouterA, agent_bin)?;
        Ok((a, b))
    }
}
