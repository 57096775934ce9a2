//! Importers: other products' configuration files turned into this crate's TOML.
//!
//! - [`strongswan`]: an `ipsec.conf` / `ipsec.secrets` pair (strongSwan's starter format,
//!   ipsec.conf(5) and ipsec.secrets(5));
//! - [`aws`]: the "Generic" customer gateway configuration text that the AWS console and
//!   `DescribeVpnConnections` give for a Site-to-Site VPN connection.
//!
//! Both formats are parsed by hand: no maintained Rust crate parses either of them (the
//! ipsec.conf grammar lives only in strongSwan's C starter; the AWS text is a fixed-layout
//! report, not a data format).
//!
//! Every input is treated as hostile: parsers never panic, bound what they read, and report
//! problems with the file name and line. Secrets (PSKs) never reach the generated TOML, a
//! warning or an error: they are handed back as [`SecretFile`]s to write with mode 0600, and
//! the TOML references them as `{ file = "..." }`. The generated TOML is checked with
//! [`crate::Config::from_str`] before it is returned; a tunnel the model refuses is dropped
//! with a warning that carries the model's reason.

pub mod aws;
mod ipsec_conf;
mod ipsec_secrets;
mod render;
pub mod strongswan;

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use zeroize::Zeroizing;

pub(crate) use render::{AuthDraft, Draft, RouteDraft, TrafficDraft, TunnelDraft};

/// Largest input file read (ipsec.conf, ipsec.secrets, the AWS text are a few KiB).
pub const MAX_INPUT_LEN: u64 = 1024 * 1024;

/// Something the importer could not carry over, or changed on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportWarning {
    /// The input file.
    pub origin: String,
    /// 1-based line, or 0 when the warning is about the whole file.
    pub line: usize,
    /// What the warning is about: `conn Tunnel1`, `config setup`, `IPSec Tunnel #1`, ...
    pub scope: String,
    /// The key (`ike`, `dpdaction`, `Pre-Shared Key`, ...) or empty.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ImportWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.origin)?;
        if self.line > 0 {
            write!(f, "{}:", self.line)?;
        }
        write!(f, " {}", self.scope)?;
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why an import produced nothing. Never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: cannot read: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: larger than {max} bytes, refusing to read it")]
    TooLarge { path: String, max: u64 },
    #[error("{origin}: nothing usable: {reason}")]
    NothingUsable { origin: String, reason: String },
    #[error(
        "pre-shared keys must be written to files: give --out (they go next to it) or --secrets-dir"
    )]
    NoSecretsDir,
    #[error("the generated configuration is invalid:\n{0}")]
    Invalid(crate::ConfigErrors),
    #[error("{path}: {reason}")]
    Write { path: String, reason: String },
}

/// Settings the input files do not hold.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// `[router] name` (1-12 of letters, digits, hyphens).
    pub router_name: String,
    /// `[router] wan`.
    pub wan: String,
    /// `[router] lan`.
    pub lan: Vec<String>,
    /// Absolute directory the PSK files go to; `None`: an input with PSKs is refused.
    pub secrets_dir: Option<PathBuf>,
    /// `aws` only: the remote (VPC) prefixes, routed active/standby over tunnels 1 and 2.
    pub remote_prefixes: Vec<IpNet>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            router_name: "imported".into(),
            wan: "ens5".into(),
            lan: vec!["ens6".into()],
            secrets_dir: None,
            remote_prefixes: Vec::new(),
        }
    }
}

/// A secret to write: a PSK for one tunnel, at the path the TOML references.
pub struct SecretFile {
    pub path: PathBuf,
    pub tunnel: String,
    bytes: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretFile")
            .field("path", &self.path)
            .field("tunnel", &self.tunnel)
            .field("bytes", &"<redacted>")
            .finish()
    }
}

impl SecretFile {
    /// Writes the secret and one newline (which the loader strips) with mode 0600. An existing
    /// file is only replaced when `overwrite` is set: it may hold a key in use.
    pub fn write(&self, overwrite: bool) -> Result<(), ImportError> {
        let err = |reason: String| ImportError::Write {
            path: self.path.display().to_string(),
            reason,
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).mode(0o600);
        if overwrite {
            opts.create(true).truncate(true);
        } else {
            opts.create_new(true);
        }
        let mut f = opts.open(&self.path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                err("already exists (use --force to replace it)".into())
            } else {
                err(format!("cannot create: {e}"))
            }
        })?;
        // An existing file keeps its mode on open: tighten it before writing the secret.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| err(format!("cannot chmod 600: {e}")))?;
        let mut data = Zeroizing::new(Vec::with_capacity(self.bytes.len() + 1));
        data.extend_from_slice(&self.bytes);
        data.push(b'\n');
        f.write_all(&data)
            .map_err(|e| err(format!("cannot write: {e}")))
    }
}

/// The result of an import: the TOML (valid for [`crate::Config::from_str`]), the secret
/// files it references (not yet written), and what could not be carried over.
#[derive(Debug)]
pub struct Imported {
    pub toml: String,
    pub secret_files: Vec<SecretFile>,
    pub warnings: Vec<ImportWarning>,
    /// Number of tunnels in `toml`.
    pub tunnels: usize,
}

/// Reads an input file, refusing anything larger than [`MAX_INPUT_LEN`] or not UTF-8.
pub fn read_input(path: &Path) -> Result<String, ImportError> {
    use std::io::Read as _;
    let name = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| ImportError::Read {
        path: name.clone(),
        reason: e.to_string(),
    })?;
    let mut buf = Vec::new();
    f.take(MAX_INPUT_LEN + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ImportError::Read {
            path: name.clone(),
            reason: e.to_string(),
        })?;
    if buf.len() as u64 > MAX_INPUT_LEN {
        return Err(ImportError::TooLarge {
            path: name,
            max: MAX_INPUT_LEN,
        });
    }
    // Not String::from_utf8's error: it would carry the bytes (maybe a secret) along.
    String::from_utf8(buf).map_err(|e| ImportError::Read {
        path: name,
        reason: format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Collects warnings for one input file.
pub(crate) struct Warnings {
    pub origin: String,
    pub list: Vec<ImportWarning>,
}

impl Warnings {
    pub fn new(origin: &str) -> Self {
        Warnings {
            origin: origin.to_string(),
            list: Vec::new(),
        }
    }
    pub fn push(&mut self, line: usize, scope: &str, key: &str, message: impl Into<String>) {
        self.list.push(ImportWarning {
            origin: self.origin.clone(),
            line,
            scope: scope.to_string(),
            key: key.to_string(),
            message: message.into(),
        });
    }
}

/// Renders the draft, checks it with the model, drops what the model refuses (with a
/// warning naming the model's reason), and returns the result; fails when no tunnel is left.
pub(crate) fn finish(
    mut draft: Draft,
    opts: &ImportOptions,
    mut warnings: Warnings,
) -> Result<Imported, ImportError> {
    // File order, the main input's warnings first.
    let main = warnings.origin.clone();
    warnings.list.sort_by_key(|w| (w.origin != main, w.line));
    // Each round removes at least one tunnel or route, so this ends.
    loop {
        if draft.tunnels.is_empty() {
            let reason = if warnings.list.is_empty() {
                "no connection to convert".to_string()
            } else {
                format!(
                    "no tunnel could be converted (see the {} warning(s))",
                    warnings.list.len()
                )
            };
            // The error carries the warnings that explain why.
            let mut reason = reason;
            if !warnings.list.is_empty() {
                reason = format!("{reason}\n{}", join_warnings(&warnings.list));
            }
            return Err(ImportError::NothingUsable {
                origin: warnings.origin.clone(),
                reason,
            });
        }
        let (toml, secret_files) = render::render(&draft, opts)?;
        let check = format!("{} (converted)", warnings.origin);
        let errors = match crate::Config::from_str(&toml, &check) {
            Ok(_) => {
                return Ok(Imported {
                    tunnels: draft.tunnels.len(),
                    toml,
                    secret_files,
                    warnings: warnings.list,
                });
            }
            Err(errors) => errors,
        };
        let mut drop_tunnels: Vec<usize> = Vec::new();
        let mut drop_routes: Vec<usize> = Vec::new();
        for e in errors.iter() {
            if let Some(i) = index_of(&e.path, "tunnel[").filter(|i| *i < draft.tunnels.len()) {
                let t = &draft.tunnels[i];
                warnings.push(
                    t.line,
                    &t.scope,
                    "",
                    format!(
                        "dropped: the converted tunnel `{}` is refused: {}: {}",
                        t.name, e.path, e.reason
                    ),
                );
                drop_tunnels.push(i);
            } else if let Some(j) = index_of(&e.path, "route[").filter(|j| *j < draft.routes.len())
            {
                let r = &draft.routes[j];
                warnings.push(
                    r.line,
                    &r.scope,
                    "",
                    format!(
                        "route {} via `{}` dropped: {}",
                        r.prefix, r.tunnel, e.reason
                    ),
                );
                drop_routes.push(j);
            }
        }
        if drop_tunnels.is_empty() && drop_routes.is_empty() {
            // Not a tunnel's fault (router name, interfaces): nothing to drop.
            return Err(ImportError::Invalid(errors));
        }
        drop_tunnels.sort_unstable();
        drop_tunnels.dedup();
        drop_routes.sort_unstable();
        drop_routes.dedup();
        for j in drop_routes.into_iter().rev() {
            draft.routes.remove(j);
        }
        for i in drop_tunnels.into_iter().rev() {
            let name = draft.tunnels.remove(i).name;
            draft.routes.retain(|r| r.tunnel != name);
        }
    }
}

fn join_warnings(list: &[ImportWarning]) -> String {
    list.iter()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `tunnel[3].dpd` with prefix `tunnel[` -> 3.
fn index_of(path: &str, prefix: &str) -> Option<usize> {
    let rest = path.strip_prefix(prefix)?;
    let end = rest.find(']')?;
    rest[..end].parse().ok()
}

/// A tunnel name the model accepts (3-20 of letters, digits, hyphens), unique in `taken`.
pub(crate) fn tunnel_name(wanted: &str, taken: &[String]) -> String {
    let mut base: String = wanted
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(20)
        .collect();
    while base.chars().count() < 3 {
        base.push('x');
    }
    if !taken.contains(&base) {
        return base;
    }
    for n in 2.. {
        let suffix = format!("-{n}");
        let keep = 20 - suffix.len();
        let candidate = format!("{}{suffix}", &base[..base.len().min(keep)]);
        if !taken.contains(&candidate) {
            return candidate;
        }
    }
    unreachable!("some suffix is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_names_fit_the_model() {
        assert_eq!(tunnel_name("Tunnel1", &[]), "Tunnel1");
        assert_eq!(tunnel_name("a_b.c", &[]), "a-b-c");
        assert_eq!(tunnel_name("x", &[]), "xxx");
        assert_eq!(tunnel_name("dup", &["dup".into()]), "dup-2");
        let long = "a".repeat(40);
        let first = tunnel_name(&long, &[]);
        assert_eq!(first.len(), 20);
        let second = tunnel_name(&long, std::slice::from_ref(&first));
        assert_eq!(second.len(), 20);
        assert!(second.ends_with("-2"));
    }

    #[test]
    fn index_paths() {
        assert_eq!(index_of("tunnel[3].dpd.timeout", "tunnel["), Some(3));
        assert_eq!(index_of("route[0].prefix", "tunnel["), None);
        assert_eq!(index_of("tunnel[x]", "tunnel["), None);
    }
}
