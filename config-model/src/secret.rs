//! Secrets by reference: `psk = { file = "/etc/vpn/psk-tunnel1" }` or `{ env = "VPN_PSK_T1" }`.
//!
//! The configuration file never holds a secret. A [`Secret`] is only produced by
//! [`crate::Config::resolve_secrets`]; it zeroizes its bytes on drop and prints `<redacted>`.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use zeroize::Zeroizing;

use crate::error::Location;

/// Largest secret file read (private keys in PEM are a few KiB).
const MAX_SECRET_LEN: u64 = 64 * 1024;

/// Secret bytes (a pre-shared key or a PEM private key). Zeroized on drop; never printed.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(Zeroizing::new(bytes))
    }
    /// The secret bytes, for the IKE engine. Do not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a secret lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretSource {
    /// A file readable by its owner only (mode & 0o077 == 0), regular.
    File(PathBuf),
    /// An environment variable of the agent's process.
    Env(String),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::File(p) => write!(f, "file {}", p.display()),
            SecretSource::Env(v) => write!(f, "environment variable {v}"),
        }
    }
}

/// A secret reference as written in the file, with where it was written (for errors at
/// resolution time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub source: SecretSource,
    /// Field path, e.g. `tunnel[0].auth.psk`.
    pub path: String,
    pub location: Location,
}

/// Why a secret could not be loaded (never contains the secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret file {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("refusing secret file {path}: not a regular file")]
    NotRegular { path: PathBuf },
    #[error(
        "refusing secret file {path}: mode {mode:04o} lets group or others read it (chmod 600 it)"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("secret file {path} is larger than {max} bytes")]
    TooLarge { path: PathBuf, max: u64 },
    #[error("secret file {path} is empty")]
    EmptyFile { path: PathBuf },
    #[error("environment variable {var} is not set")]
    EnvMissing { var: String },
    #[error("environment variable {var} is empty")]
    EnvEmpty { var: String },
}

/// Reads a secret file, refusing one that is not a regular file or that group or others can
/// access (mode & 0o077 != 0). One trailing newline (`\n` or `\r\n`) is removed.
pub fn load_secret_file(path: &Path) -> Result<Secret, SecretError> {
    let io = |e: std::io::Error| SecretError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    // Check before opening so a FIFO or a device is never opened (open could block).
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(SecretError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    let mut file = File::open(path).map_err(io)?;
    // Check again on the open file: the path may have been swapped in between.
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(SecretError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.len() > MAX_SECRET_LEN {
        return Err(SecretError::TooLarge {
            path: path.to_path_buf(),
            max: MAX_SECRET_LEN,
        });
    }
    // Room for the whole limit up front: a growing Vec would leave copies of the secret in
    // freed memory that Zeroizing never sees.
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_SECRET_LEN as usize + 1));
    (&mut file)
        .take(MAX_SECRET_LEN + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > MAX_SECRET_LEN {
        return Err(SecretError::TooLarge {
            path: path.to_path_buf(),
            max: MAX_SECRET_LEN,
        });
    }
    strip_one_newline(&mut buf);
    if buf.is_empty() {
        return Err(SecretError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(Secret(buf))
}

/// Reads a secret from the process environment.
pub fn load_secret_env(var: &str) -> Result<Secret, SecretError> {
    use std::os::unix::ffi::OsStringExt;
    match std::env::var_os(var) {
        None => Err(SecretError::EnvMissing {
            var: var.to_string(),
        }),
        Some(v) => {
            let bytes = Zeroizing::new(v.into_vec());
            if bytes.is_empty() {
                return Err(SecretError::EnvEmpty {
                    var: var.to_string(),
                });
            }
            Ok(Secret(bytes))
        }
    }
}

impl SecretSource {
    pub fn load(&self) -> Result<Secret, SecretError> {
        match self {
            SecretSource::File(p) => load_secret_file(p),
            SecretSource::Env(v) => load_secret_env(v),
        }
    }
}

fn strip_one_newline(buf: &mut Zeroizing<Vec<u8>>) {
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
}

/// The raw form: deserialized from `{ file = "..." }` or `{ env = "..." }`. Anything else is
/// refused with a message that never repeats the value (an inline secret must not end up in
/// an error message or a log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawSecretRef(pub SecretSource);

pub(crate) const INLINE_SECRET: &str = "inline secrets are not allowed: reference the secret with { file = \"/etc/vpn/...\" } (mode 0600) or { env = \"VAR\" }";

impl<'de> serde::Deserialize<'de> for RawSecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawSecretRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("{ file = \"...\" } or { env = \"...\" }")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(de::Error::custom(INLINE_SECRET))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut found: Option<SecretSource> = None;
                while let Some(key) = map.next_key::<String>()? {
                    let src = match key.as_str() {
                        "file" => {
                            let p: String = map.next_value()?;
                            if !p.starts_with('/') {
                                return Err(de::Error::custom(format!(
                                    "secret file `{p}` must be an absolute path"
                                )));
                            }
                            SecretSource::File(PathBuf::from(p))
                        }
                        "env" => {
                            let v: String = map.next_value()?;
                            if v.is_empty()
                                || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                                || v.starts_with(|c: char| c.is_ascii_digit())
                            {
                                return Err(de::Error::custom(format!(
                                    "`{v}` is not a valid environment variable name"
                                )));
                            }
                            SecretSource::Env(v)
                        }
                        other => {
                            // Skip the value without looking at it: it may be a secret.
                            map.next_value::<de::IgnoredAny>()?;
                            return Err(de::Error::custom(format!(
                                "unknown key `{other}` in a secret reference: use {{ file = \"...\" }} or {{ env = \"...\" }}"
                            )));
                        }
                    };
                    if found.is_some() {
                        return Err(de::Error::custom(
                            "a secret reference takes exactly one of `file` or `env`",
                        ));
                    }
                    found = Some(src);
                }
                found.map(RawSecretRef).ok_or_else(|| {
                    de::Error::custom("a secret reference takes exactly one of `file` or `env`")
                })
            }
        }
        d.deserialize_any(V)
    }
}
