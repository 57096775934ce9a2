//! The file as written: serde structs with `deny_unknown_fields` and spans on every field that
//! is checked, so errors can point at the line. `crate::resolve` turns these into the model.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_spanned::Spanned;

use crate::model::{AuthMethod, DpdAction, IdType, NatAction, Profile, Startup};
use crate::secret::RawSecretRef;

pub(crate) type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouter {
    pub name: S<String>,
    pub wan: S<String>,
    pub lan: S<Vec<S<String>>>,
    pub wan_public_address: Option<S<String>>,
    pub identity: Option<S<RawIdentity>>,
    pub auth: Option<S<RawAuth>>,
    pub workers: Option<S<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIdentity {
    #[serde(rename = "type")]
    pub kind: S<IdType>,
    pub value: S<String>,
}

/// `auth = { psk = { env = "X" } }` or `{ rsa_private_key = { file = "..." } }`, etc.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    pub psk: Option<S<RawSecretRef>>,
    pub rsa_private_key: Option<S<RawSecretRef>>,
    pub ecdsa_private_key: Option<S<RawSecretRef>>,
    pub ed25519_private_key: Option<S<RawSecretRef>>,
}

impl RawAuth {
    /// The (method, field name, reference) triples that are set.
    pub fn entries(&self) -> Vec<(AuthMethod, &'static str, &S<RawSecretRef>)> {
        let mut v = Vec::new();
        if let Some(r) = &self.psk {
            v.push((AuthMethod::Psk, "psk", r));
        }
        if let Some(r) = &self.rsa_private_key {
            v.push((AuthMethod::Rsa, "rsa_private_key", r));
        }
        if let Some(r) = &self.ecdsa_private_key {
            v.push((AuthMethod::Ecdsa, "ecdsa_private_key", r));
        }
        if let Some(r) = &self.ed25519_private_key {
            v.push((AuthMethod::Ed25519, "ed25519_private_key", r));
        }
        v
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTunnel {
    pub name: S<String>,
    pub peer: S<String>,
    pub remote_identity: Option<S<RawIdentity>>,
    pub profile: Option<S<Profile>>,
    pub ike_version: Option<S<u8>>,
    pub ike_proposals: Option<S<Vec<S<RawProposal>>>>,
    pub esp_proposals: Option<S<Vec<S<RawProposal>>>>,
    pub lifetimes: Option<S<RawLifetimes>>,
    pub dpd: Option<S<RawDpd>>,
    pub nat_traversal: Option<S<bool>>,
    pub force_encap: Option<S<bool>>,
    pub fragmentation: Option<bool>,
    pub auth: Option<S<RawAuth>>,
    pub peer_public_key: Option<S<String>>,
    pub selectors: Option<S<RawSelectors>>,
    pub inside: Option<S<RawInside>>,
    pub replay_window: Option<S<u32>>,
    pub mtu: Option<S<u32>>,
    pub mss: Option<S<u32>>,
    pub outer_mtu: Option<S<u32>>,
    pub startup: Option<S<Startup>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLifetimes {
    pub ike: Option<S<Secs>>,
    pub child: Option<S<Secs>>,
    pub rekey_margin: Option<S<Secs>>,
    pub rekey_fuzz: Option<S<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDpd {
    pub delay: Option<S<Secs>>,
    pub timeout: Option<S<Secs>>,
    pub action: Option<S<DpdAction>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSelectors {
    pub local: S<Vec<S<String>>>,
    pub remote: S<Vec<S<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInside {
    /// Our inside address with its prefix length, e.g. `169.254.10.2/30`.
    pub local: S<String>,
    /// The peer's inside address, e.g. `169.254.10.1`.
    pub remote: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub prefix: S<String>,
    pub tunnel: S<String>,
    pub priority: Option<S<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNat {
    pub action: Option<S<NatAction>>,
    pub from: S<String>,
    pub to: S<Vec<S<String>>>,
    pub out: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSysctl {
    pub manage: Option<bool>,
    pub ip_forward: Option<S<bool>>,
    pub rp_filter: Option<S<BTreeMap<S<String>, S<u8>>>>,
    pub send_redirects: Option<bool>,
    pub accept_redirects: Option<bool>,
    pub secure_redirects: Option<bool>,
    pub accept_source_route: Option<bool>,
    pub tcp_mtu_probing: Option<S<u8>>,
    pub restore_on_exit: Option<bool>,
}

/// A proposal: a strongSwan string (`"aes256gcm16-prfsha256-modp2048"`) or a table
/// (`{ encryption = ["aes256gcm16"], prf = ["prfsha256"], dh = ["modp2048", "ecp256"] }`,
/// each value a keyword or a list of keywords), which is turned into the string form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawProposal(pub String);

const PROPOSAL_KEYS: &[&str] = &["encryption", "integrity", "prf", "dh", "esn"];

impl<'de> Deserialize<'de> for RawProposal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawProposal;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a proposal string (\"aes256gcm16-prfsha256-modp2048\") or a table with encryption, integrity, prf, dh, esn",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawProposal, E> {
                Ok(RawProposal(v.to_string()))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<RawProposal, A::Error> {
                let mut parts: Vec<(usize, Vec<String>)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let Some(rank) = PROPOSAL_KEYS.iter().position(|k| *k == key) else {
                        return Err(de::Error::unknown_field(&key, PROPOSAL_KEYS));
                    };
                    let v = match map.next_value::<OneOrMany>()? {
                        OneOrMany::One(s) => vec![s],
                        OneOrMany::Many(v) => v,
                    };
                    parts.push((rank, v));
                }
                parts.sort_by_key(|(r, _)| *r);
                let all: Vec<String> = parts.into_iter().flat_map(|(_, v)| v).collect();
                if all.is_empty() {
                    return Err(de::Error::custom("empty proposal table"));
                }
                Ok(RawProposal(all.join("-")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration in whole seconds: an integer (`3600`) or a string with units (`"1h"`, `"90m"`,
/// `"8h30m"`, `"540s"`, `"1d"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Secs(pub u64);

pub(crate) fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<u64>() {
        return Some(n);
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            let mult = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                _ => return None,
            };
            let n: u64 = num.parse().ok()?;
            num.clear();
            total = total.checked_add(n.checked_mul(mult)?)?;
        }
    }
    if !num.is_empty() {
        return None;
    }
    Some(total)
}

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Secs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration: seconds (3600) or a string like \"1h\", \"90m\", \"540s\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secs, E> {
                u64::try_from(v)
                    .map(Secs)
                    .map_err(|_| E::custom(format!("a duration cannot be negative ({v})")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secs, E> {
                Ok(Secs(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secs, E> {
                parse_duration(v).map(Secs).ok_or_else(|| {
                    E::custom(format!(
                        "`{v}` is not a duration: use seconds (3600) or a string like \"1h\", \"90m\", \"540s\""
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3600"), Some(3600));
        assert_eq!(parse_duration("8h"), Some(28800));
        assert_eq!(parse_duration("1h30m"), Some(5400));
        assert_eq!(parse_duration("540s"), Some(540));
        assert_eq!(parse_duration("1d"), Some(86400));
        assert_eq!(parse_duration("1x"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("10"), Some(10));
        assert_eq!(parse_duration("5m3"), None);
    }
}
