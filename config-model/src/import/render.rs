//! The importers' common intermediate form ([`Draft`]) and its TOML rendering. Only keys an
//! input actually set are written; everything else takes the model's (or the profile's)
//! defaults. PSKs become [`SecretFile`]s referenced as `{ file = "..." }`.

use std::net::IpAddr;

use ipnet::IpNet;
use zeroize::Zeroizing;

use super::{ImportError, ImportOptions, SecretFile};

/// A whole converted configuration.
#[derive(Default)]
pub(crate) struct Draft {
    /// Comment lines at the top of the file (without `# `).
    pub header: Vec<String>,
    /// `[router] identity`: (type, value).
    pub identity: Option<(&'static str, String)>,
    pub tunnels: Vec<TunnelDraft>,
    pub routes: Vec<RouteDraft>,
}

pub(crate) enum AuthDraft {
    /// The PSK itself (written to a file, never to the TOML).
    Psk(Zeroizing<Vec<u8>>),
    /// A private key file: (`rsa_private_key` | `ecdsa_private_key` | ..., absolute path).
    Key(&'static str, String),
}

pub(crate) enum TrafficDraft {
    Selectors {
        local: Vec<IpNet>,
        remote: Vec<IpNet>,
    },
    /// Our inside address with its prefix length, the peer's inside address.
    Inside { local: IpNet, remote: IpAddr },
}

pub(crate) struct TunnelDraft {
    pub name: String,
    /// Where it came from, for warnings: `conn Tunnel1`, `IPSec Tunnel #1`.
    pub scope: String,
    pub line: usize,
    /// Comment lines written above the tunnel.
    pub comments: Vec<String>,
    pub peer: IpAddr,
    pub remote_identity: Option<(&'static str, String)>,
    pub profile: Option<&'static str>,
    pub ike_proposals: Vec<String>,
    pub esp_proposals: Vec<String>,
    pub ike_lifetime: Option<u64>,
    pub child_lifetime: Option<u64>,
    pub rekey_margin: Option<u64>,
    pub rekey_fuzz: Option<u32>,
    pub dpd_delay: Option<u64>,
    pub dpd_timeout: Option<u64>,
    pub dpd_action: Option<&'static str>,
    pub force_encap: Option<bool>,
    pub fragmentation: Option<bool>,
    pub auth: AuthDraft,
    pub peer_public_key: Option<String>,
    pub traffic: TrafficDraft,
    pub replay_window: Option<u32>,
    pub mtu: Option<u32>,
    pub mss: Option<u32>,
    pub startup: Option<&'static str>,
}

impl TunnelDraft {
    pub fn new(
        name: String,
        scope: String,
        line: usize,
        peer: IpAddr,
        auth: AuthDraft,
        traffic: TrafficDraft,
    ) -> Self {
        TunnelDraft {
            name,
            scope,
            line,
            comments: Vec::new(),
            peer,
            remote_identity: None,
            profile: None,
            ike_proposals: Vec::new(),
            esp_proposals: Vec::new(),
            ike_lifetime: None,
            child_lifetime: None,
            rekey_margin: None,
            rekey_fuzz: None,
            dpd_delay: None,
            dpd_timeout: None,
            dpd_action: None,
            force_encap: None,
            fragmentation: None,
            auth,
            peer_public_key: None,
            traffic,
            replay_window: None,
            mtu: None,
            mss: None,
            startup: None,
        }
    }
}

pub(crate) struct RouteDraft {
    pub prefix: IpNet,
    pub tunnel: String,
    pub priority: u32,
    pub scope: String,
    pub line: usize,
}

/// The TOML text and the PSK files it references.
pub(crate) fn render(
    d: &Draft,
    opts: &ImportOptions,
) -> Result<(String, Vec<SecretFile>), ImportError> {
    let mut out = String::new();
    for h in &d.header {
        out += &comment(h);
    }
    out += "\n[router]\n";
    out += &format!("name = {}\n", quote(&opts.router_name));
    out += &format!("wan = {}\n", quote(&opts.wan));
    out += &format!("lan = [{}]\n", list(opts.lan.iter().map(String::as_str)));
    if let Some((kind, value)) = &d.identity {
        out += &format!(
            "identity = {{ type = {}, value = {} }}\n",
            quote(kind),
            quote(value)
        );
    }
    let mut secrets = Vec::new();
    for t in &d.tunnels {
        out += "\n";
        for c in &t.comments {
            out += &comment(c);
        }
        out += "[[tunnel]]\n";
        out += &format!("name = {}\n", quote(&t.name));
        out += &format!("peer = {}\n", quote(&t.peer.to_string()));
        if let Some((kind, value)) = &t.remote_identity {
            out += &format!(
                "remote_identity = {{ type = {}, value = {} }}\n",
                quote(kind),
                quote(value)
            );
        }
        if let Some(p) = t.profile {
            out += &format!("profile = {}\n", quote(p));
        }
        match &t.auth {
            AuthDraft::Psk(bytes) => {
                let Some(dir) = &opts.secrets_dir else {
                    return Err(ImportError::NoSecretsDir);
                };
                let path = dir.join(format!("psk-{}", t.name));
                out += &format!(
                    "auth = {{ psk = {{ file = {} }} }}\n",
                    quote(&path.display().to_string())
                );
                secrets.push(SecretFile {
                    path,
                    tunnel: t.name.clone(),
                    bytes: bytes.clone(),
                });
            }
            AuthDraft::Key(field, path) => {
                out += &format!("auth = {{ {field} = {{ file = {} }} }}\n", quote(path));
            }
        }
        if let Some(k) = &t.peer_public_key {
            out += &format!("peer_public_key = {}\n", quote(k));
        }
        if !t.ike_proposals.is_empty() {
            out += &format!(
                "ike_proposals = [{}]\n",
                list(t.ike_proposals.iter().map(String::as_str))
            );
        }
        if !t.esp_proposals.is_empty() {
            out += &format!(
                "esp_proposals = [{}]\n",
                list(t.esp_proposals.iter().map(String::as_str))
            );
        }
        let lifetimes: Vec<String> = [
            ("ike", t.ike_lifetime.map(|v| v.to_string())),
            ("child", t.child_lifetime.map(|v| v.to_string())),
            ("rekey_margin", t.rekey_margin.map(|v| v.to_string())),
            ("rekey_fuzz", t.rekey_fuzz.map(|v| v.to_string())),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k} = {v}")))
        .collect();
        if !lifetimes.is_empty() {
            out += &format!("lifetimes = {{ {} }}\n", lifetimes.join(", "));
        }
        let dpd: Vec<String> = [
            ("delay", t.dpd_delay.map(|v| v.to_string())),
            ("timeout", t.dpd_timeout.map(|v| v.to_string())),
            ("action", t.dpd_action.map(quote)),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k} = {v}")))
        .collect();
        if !dpd.is_empty() {
            out += &format!("dpd = {{ {} }}\n", dpd.join(", "));
        }
        if let Some(v) = t.force_encap {
            out += &format!("force_encap = {v}\n");
        }
        if let Some(v) = t.fragmentation {
            out += &format!("fragmentation = {v}\n");
        }
        match &t.traffic {
            TrafficDraft::Selectors { local, remote } => {
                out += &format!(
                    "selectors = {{ local = [{}], remote = [{}] }}\n",
                    nets(local),
                    nets(remote)
                );
            }
            TrafficDraft::Inside { local, remote } => {
                out += &format!(
                    "inside = {{ local = {}, remote = {} }}\n",
                    quote(&local.to_string()),
                    quote(&remote.to_string())
                );
            }
        }
        if let Some(v) = t.replay_window {
            out += &format!("replay_window = {v}\n");
        }
        if let Some(v) = t.mtu {
            out += &format!("mtu = {v}\n");
        }
        if let Some(v) = t.mss {
            out += &format!("mss = {v}\n");
        }
        if let Some(v) = t.startup {
            out += &format!("startup = {}\n", quote(v));
        }
    }
    for r in &d.routes {
        out += &format!(
            "\n[[route]]\nprefix = {}\ntunnel = {}\npriority = {}\n",
            quote(&r.prefix.to_string()),
            quote(&r.tunnel),
            r.priority
        );
    }
    Ok((out, secrets))
}

fn comment(text: &str) -> String {
    text.lines()
        .map(|l| {
            let l: String = l.chars().filter(|c| !c.is_control()).collect();
            if l.is_empty() {
                "#\n".to_string()
            } else {
                format!("# {l}\n")
            }
        })
        .collect()
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.map(quote).collect::<Vec<_>>().join(", ")
}

fn nets(v: &[IpNet]) -> String {
    v.iter()
        .map(|n| quote(&n.to_string()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A TOML basic string.
pub(crate) fn quote(s: &str) -> String {
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
