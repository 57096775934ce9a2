//! Seed 004's full mesh: one inventory lists every node (region concentrator) once, and
//! [`MeshInventory::render`] writes the configuration of one node, with a policy-based tunnel
//! to every other node, authenticated with the nodes' keys. (The `mesh render` command that
//! writes the files is the agent's, later.)
//!
//! ```toml
//! [mesh]
//! key_type = "rsa"                        # rsa | ecdsa | ed25519
//! ike_proposals = ["aes192gcm16-aes128gcm16-prfsha256-ecp256-ecp521"]   # optional
//! esp_proposals = ["aes192gcm16-aes128gcm16-ecp256"]                    # optional
//! force_encap = true                      # default true (seed 004: forceencaps=yes)
//! fragmentation = true                    # default true (seed 004: fragmentation=force)
//!
//! [[node]]
//! name = "us-east-1"                      # router name and the peers' tunnel name: 3-12 chars
//! public_address = "203.0.113.1"          # Elastic IP: identity and peer address
//! wan = "ens5"
//! lan = ["ens6"]
//! prefixes = ["172.16.0.0/16"]            # the node's VPC
//! private_key = "/etc/vpn/keys/us-east-1.key"
//! public_key = "/etc/vpn/certs/us-east-1.pub"
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;

use ipnet::IpNet;
use serde::Deserialize;
use serde_spanned::Spanned;

use crate::error::{ConfigErrors, Diagnostics};
use crate::model::AuthMethod;
use crate::proposal::{Proposal, ProposalKind};

type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    mesh: RawMesh,
    node: Vec<S<RawNode>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMesh {
    key_type: S<String>,
    ike_proposals: Option<Vec<S<String>>>,
    esp_proposals: Option<Vec<S<String>>>,
    force_encap: Option<bool>,
    fragmentation: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: S<String>,
    public_address: S<String>,
    wan: String,
    lan: Vec<String>,
    prefixes: Vec<S<String>>,
    private_key: S<String>,
    public_key: S<String>,
}

/// A checked mesh inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshInventory {
    pub key_type: AuthMethod,
    pub ike_proposals: Vec<String>,
    pub esp_proposals: Vec<String>,
    pub force_encap: bool,
    pub fragmentation: bool,
    pub nodes: Vec<MeshNode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshNode {
    pub name: String,
    pub public_address: IpAddr,
    pub wan: String,
    pub lan: Vec<String>,
    pub prefixes: Vec<IpNet>,
    pub private_key: String,
    pub public_key: String,
}

const DEFAULT_IKE: &str = "aes256gcm16-prfsha256-ecp256";
const DEFAULT_ESP: &str = "aes256gcm16-ecp256";

impl MeshInventory {
    /// Parses and checks an inventory: node names (3-12 of letters, digits, hyphens: they
    /// become router names and tunnel names), unique names and addresses, prefixes without
    /// host bits and shared by no two nodes, absolute key paths, valid proposals.
    pub fn from_str(text: &str, origin: &str) -> Result<MeshInventory, ConfigErrors> {
        let mut d = Diagnostics::new(origin, text);
        let raw: RawInventory = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                d.error(
                    &e.span().unwrap_or(0..0),
                    "",
                    e.message().replace('\n', "; "),
                );
                return Err(d.finish().expect_err("has errors"));
            }
        };
        let key_type = match raw.mesh.key_type.get_ref().as_str() {
            "rsa" => AuthMethod::Rsa,
            "ecdsa" => AuthMethod::Ecdsa,
            "ed25519" => AuthMethod::Ed25519,
            other => {
                d.error(
                    &raw.mesh.key_type.span(),
                    "mesh.key_type",
                    format!("`{other}` is not rsa, ecdsa or ed25519"),
                );
                AuthMethod::Rsa
            }
        };
        let mut proposals = |list: &Option<Vec<S<String>>>, kind, field: &str, default: &str| {
            let Some(list) = list else {
                return vec![default.to_string()];
            };
            for (i, p) in list.iter().enumerate() {
                if let Err(e) = Proposal::parse(kind, p.get_ref()) {
                    d.error(&p.span(), format!("mesh.{field}[{i}]"), e);
                }
            }
            list.iter().map(|p| p.get_ref().clone()).collect()
        };
        let ike_proposals = proposals(
            &raw.mesh.ike_proposals,
            ProposalKind::Ike,
            "ike_proposals",
            DEFAULT_IKE,
        );
        let esp_proposals = proposals(
            &raw.mesh.esp_proposals,
            ProposalKind::Esp,
            "esp_proposals",
            DEFAULT_ESP,
        );

        let mut nodes = Vec::new();
        let mut names: HashMap<String, Range<usize>> = HashMap::new();
        let mut addrs: HashMap<IpAddr, Range<usize>> = HashMap::new();
        let mut all_prefixes: Vec<(IpNet, String, Range<usize>)> = Vec::new();
        if raw.node.len() < 2 {
            d.error(
                &(0..0),
                "node",
                "a mesh needs at least two [[node]] entries",
            );
        }
        for (i, n) in raw.node.iter().enumerate() {
            let n_span = n.span();
            let n = n.get_ref();
            let p = format!("node[{i}]");
            let name = n.name.get_ref();
            let len = name.chars().count();
            if !(3..=12).contains(&len)
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                d.error(
                    &n.name.span(),
                    format!("{p}.name"),
                    format!("`{name}` is not a valid node name: use 3 to 12 characters, only letters, digits and hyphens"),
                );
            } else if let Some(first) = names.get(name) {
                let line = d.loc(first).line;
                d.error(
                    &n.name.span(),
                    format!("{p}.name"),
                    format!("duplicate node name `{name}` (first defined on line {line})"),
                );
            } else {
                names.insert(name.clone(), n.name.span());
            }
            let addr = match n.public_address.get_ref().parse::<IpAddr>() {
                Ok(a) => {
                    if let Some(first) = addrs.get(&a) {
                        let line = d.loc(first).line;
                        d.error(
                            &n.public_address.span(),
                            format!("{p}.public_address"),
                            format!("{a} is already the address of another node (line {line})"),
                        );
                    } else {
                        addrs.insert(a, n.public_address.span());
                    }
                    Some(a)
                }
                Err(_) => {
                    d.error(
                        &n.public_address.span(),
                        format!("{p}.public_address"),
                        format!("`{}` is not an IP address", n.public_address.get_ref()),
                    );
                    None
                }
            };
            let mut prefixes = Vec::new();
            if n.prefixes.is_empty() {
                d.error(
                    &n_span,
                    format!("{p}.prefixes"),
                    "a node needs at least one prefix",
                );
            }
            for (j, s) in n.prefixes.iter().enumerate() {
                let path = format!("{p}.prefixes[{j}]");
                match s.get_ref().parse::<IpNet>() {
                    Ok(net) if net.trunc() == net => {
                        if let Some((other, owner, ospan)) =
                            all_prefixes.iter().find(|(o, _, _)| {
                                o.contains(&net.network()) || net.contains(&o.network())
                            })
                        {
                            let line = d.loc(ospan).line;
                            d.error(
                                &s.span(),
                                path,
                                format!("{net} overlaps {other} of node `{owner}` (line {line}): mesh nodes route by prefix"),
                            );
                        } else {
                            all_prefixes.push((net, name.clone(), s.span()));
                        }
                        prefixes.push(net);
                    }
                    _ => d.error(
                        &s.span(),
                        path,
                        format!("`{}` is not a prefix without host bits", s.get_ref()),
                    ),
                }
            }
            for (field, v) in [
                ("private_key", &n.private_key),
                ("public_key", &n.public_key),
            ] {
                if !v.get_ref().starts_with('/') {
                    d.error(
                        &v.span(),
                        format!("{p}.{field}"),
                        format!("`{}` must be an absolute path", v.get_ref()),
                    );
                }
            }
            if let Some(public_address) = addr {
                nodes.push(MeshNode {
                    name: name.clone(),
                    public_address,
                    wan: n.wan.clone(),
                    lan: n.lan.clone(),
                    prefixes,
                    private_key: n.private_key.get_ref().clone(),
                    public_key: n.public_key.get_ref().clone(),
                });
            }
        }
        d.finish()?;
        Ok(MeshInventory {
            key_type,
            ike_proposals,
            esp_proposals,
            force_encap: raw.mesh.force_encap.unwrap_or(true),
            fragmentation: raw.mesh.fragmentation.unwrap_or(true),
            nodes,
        })
    }

    /// The configuration file of node `name` (None if there is no such node): a tunnel to
    /// every other node, selectors from the nodes' prefixes, a route per remote prefix.
    pub fn render(&self, name: &str) -> Option<String> {
        let me = self.nodes.iter().find(|n| n.name == name)?;
        let key_field = match self.key_type {
            AuthMethod::Ecdsa => "ecdsa_private_key",
            AuthMethod::Ed25519 => "ed25519_private_key",
            _ => "rsa_private_key",
        };
        let list = |v: &[String]| v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ");
        let nets = |v: &[IpNet]| {
            v.iter()
                .map(|n| quote(&n.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = format!(
            "# Generated from the mesh inventory for node `{}`: edit the inventory, not this file.\n\n\
             [router]\nname = {}\nwan = {}\nlan = [{}]\nwan_public_address = {}\n\
             auth = {{ {key_field} = {{ file = {} }} }}\n",
            me.name,
            quote(&me.name),
            quote(&me.wan),
            list(&me.lan),
            quote(&me.public_address.to_string()),
            quote(&me.private_key),
        );
        let peers: Vec<&MeshNode> = self.nodes.iter().filter(|n| n.name != me.name).collect();
        for peer in &peers {
            out += &format!(
                "\n[[tunnel]]\nname = {}\npeer = {}\npeer_public_key = {}\n\
                 ike_proposals = [{}]\nesp_proposals = [{}]\n\
                 force_encap = {}\nfragmentation = {}\ndpd = {{ action = \"restart\" }}\n\
                 selectors = {{ local = [{}], remote = [{}] }}\nstartup = \"initiate\"\n",
                quote(&peer.name),
                quote(&peer.public_address.to_string()),
                quote(&peer.public_key),
                list(&self.ike_proposals),
                list(&self.esp_proposals),
                self.force_encap,
                self.fragmentation,
                nets(&me.prefixes),
                nets(&peer.prefixes),
            );
        }
        for peer in &peers {
            for prefix in &peer.prefixes {
                out += &format!(
                    "\n[[route]]\nprefix = {}\ntunnel = {}\n",
                    quote(&prefix.to_string()),
                    quote(&peer.name)
                );
            }
        }
        Some(out)
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if c.is_control() => q.push_str(&format!("\\u{:04X}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}
