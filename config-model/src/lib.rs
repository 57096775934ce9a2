//! `vpn-config`: the declarative configuration of the VPN router (one TOML file), checked and
//! resolved into types the agent, the IKE engine and the datapath use directly.
//!
//! ```toml
//! [router]
//! name = "edge-a"
//! wan = "ens5"
//! lan = ["ens6"]
//! wan_public_address = "203.0.113.10"      # 1:1 NAT (EC2 Elastic IP)
//!
//! [[tunnel]]
//! name = "aws-t1"
//! peer = "192.0.2.10"
//! profile = "aws"                           # AWS defaults and limits
//! auth = { psk = { env = "VPN_PSK_T1" } }   # secrets by reference only
//! inside = { local = "169.254.10.2/30", remote = "169.254.10.1" }
//!
//! [[route]]
//! prefix = "10.0.0.0/16"
//! tunnel = "aws-t1"
//! priority = 100
//! ```
//!
//! [`Config::load`] / [`Config::from_str`] parse and check everything except the secrets and
//! report every problem at once as `file:line:col: field.path: reason`;
//! [`Config::resolve_secrets`] then reads the referenced secret files and variables.
//! See `config/README.md` in the repository for the full schema. [`import`] converts
//! strongSwan's ipsec.conf/ipsec.secrets and AWS's generic customer gateway text into it.

mod error;
pub mod import;
mod mesh;
mod model;
mod profile;
pub mod proposal;
mod raw;
mod resolve;
mod secret;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

pub use error::{ConfigError, ConfigErrors, Location};
pub use mesh::{MeshInventory, MeshNode};
pub use model::*;
pub use proposal::{DhGroup, Encryption, Esn, Integrity, Prf, Proposal, ProposalKind};
pub use secret::{Secret, SecretError, SecretRef, SecretSource, load_secret_env, load_secret_file};

impl Config {
    /// Reads and checks a configuration file. Errors name this path.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigErrors> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            errors: vec![ConfigError {
                origin: origin.clone(),
                location: Location { line: 1, column: 1 },
                path: String::new(),
                reason: format!("cannot read the configuration: {e}"),
            }],
        })?;
        Config::from_str(&text, &origin)
    }

    /// Parses and checks configuration text; `origin` names it in errors (a file name).
    /// Secrets are not read (see [`Config::resolve_secrets`]).
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
        resolve::parse(origin, text)
    }

    /// Reads every referenced secret (files must be regular and mode 0600 or stricter;
    /// variables must be set), and checks the AWS PSK rules on the PSKs of `aws` tunnels.
    /// Errors point at the line of the reference and never contain a secret.
    pub fn resolve_secrets(&self) -> Result<Secrets, ConfigErrors> {
        let mut errors = Vec::new();
        let mut loaded: BTreeMap<SecretSource, Option<Arc<Secret>>> = BTreeMap::new();
        let mut load = |r: &SecretRef, errors: &mut Vec<ConfigError>| -> Option<Arc<Secret>> {
            loaded
                .entry(r.source.clone())
                .or_insert_with(|| match r.source.load() {
                    Ok(s) => Some(Arc::new(s)),
                    Err(e) => {
                        errors.push(self.error_at(r, e.to_string()));
                        None
                    }
                })
                .clone()
        };
        if let Some(a) = &self.router.auth {
            load(&a.secret, &mut errors);
        }
        let mut tunnels = BTreeMap::new();
        for t in &self.tunnels {
            let Some(secret) = load(&t.auth.secret, &mut errors) else {
                continue;
            };
            if t.profile == Some(Profile::Aws)
                && t.auth.method == AuthMethod::Psk
                && let Some(rule) = profile::aws_psk_problem(secret.expose())
            {
                errors.push(self.error_at(
                    &t.auth.secret,
                    format!(
                        "the pre-shared key in {} (used by AWS tunnel `{}`) breaks AWS's rules: {rule}",
                        t.auth.secret.source, t.name
                    ),
                ));
                continue;
            }
            tunnels.insert(t.name.clone(), secret);
        }
        if errors.is_empty() {
            Ok(Secrets { tunnels })
        } else {
            errors.sort_by_key(|e| e.location);
            errors.dedup();
            Err(ConfigErrors { errors })
        }
    }

    fn error_at(&self, r: &SecretRef, reason: String) -> ConfigError {
        ConfigError {
            origin: self.origin.clone(),
            location: r.location,
            path: r.path.clone(),
            reason,
        }
    }

    pub fn tunnel(&self, name: &str) -> Option<&Tunnel> {
        self.tunnels.iter().find(|t| t.name == name)
    }
}

/// The secrets of a configuration, by tunnel: the PSK or the private key each tunnel
/// authenticates with. Printing it shows only the tunnel names.
#[derive(Clone)]
pub struct Secrets {
    tunnels: BTreeMap<String, Arc<Secret>>,
}

impl Secrets {
    /// The PSK or private key (PEM) tunnel `name` authenticates with.
    pub fn tunnel(&self, name: &str) -> Option<&Secret> {
        self.tunnels.get(name).map(|s| s.as_ref())
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.tunnels.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}
