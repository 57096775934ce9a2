//! `ipsec.conf` + `ipsec.secrets` (strongSwan 5.x starter format) to this crate's TOML.
//!
//! The files are parsed by hand (see [`super`]): `ipsec_conf` and `ipsec_secrets` follow
//! ipsec.conf(5) and ipsec.secrets(5). Each `conn` that names a peer becomes one
//! `[[tunnel]]`; `left` is this router, `right` the peer. The mapping, key by key:
//!
//! | ipsec.conf | here |
//! |---|---|
//! | `right` (an IP address) | `peer` |
//! | `leftid` | `[router] identity` (one per router: the first conn's) |
//! | `rightid` | `remote_identity` (when it is not the peer's address) |
//! | `leftsubnet` / `rightsubnet` (comma lists) | `selectors` (host bits cleared, as charon does) |
//! | `mark`, `mark_in`, `mark_out`, `vti` | route-based; with AWS's `leftupdown` script arguments `-ll`/`-lr`/`-r`, `inside` and routes |
//! | `ike` / `esp` (`!` = strict) | `ike_proposals` / `esp_proposals` |
//! | `ikelifetime`, `lifetime`/`keylife`, `margintime`/`rekeymargin`, `rekeyfuzz` | `lifetimes` |
//! | `dpddelay`, `dpdtimeout`, `dpdaction` (`hold` becomes `restart`) | `dpd` |
//! | `forceencaps` | `force_encap` |
//! | `fragmentation` (`yes`/`accept`/`force` on, `no` off) | `fragmentation` |
//! | `authby` / `leftauth` (`secret`/`psk`, `rsasig`/`pubkey`, `ecdsasig`) | `auth`: PSK from ipsec.secrets to a 0600 file, or the private key's path |
//! | `rightrsasigkey` / `rightsigkey` (a file) | `peer_public_key` |
//! | `auto` (`start`, `add`, `route`) | `startup` (`initiate`, `respond`, `initiate`) |
//! | `replay_window` | `replay_window` |
//!
//! Keys a conn does not set get strongSwan's documented defaults written out (ipsec.conf(5)
//! of 5.9: `ike` aes128-sha256-modp3072, `esp` aes128-sha256, `ikelifetime` 3h, `lifetime`
//! 1h, `margintime` 9m, `rekeyfuzz` 100%, `dpddelay` 30s, `dpdtimeout` 150s, `dpdaction`
//! none), so the result behaves like the strongSwan it came from rather than like this
//! model's defaults. Everything else is reported: unknown keys, IKEv1, algorithms this
//! appliance lacks, certificates, virtual IPs.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

use super::ipsec_conf::{self, Value, truncate};
use super::ipsec_secrets::{self, SecretsFile};
use super::{
    AuthDraft, Draft, ImportError, ImportOptions, Imported, RouteDraft, TrafficDraft, TunnelDraft,
    Warnings,
};
use crate::proposal::{KeywordClass, Proposal, ProposalKind, keyword_class};
use crate::raw::parse_duration;

/// One input file: its text, its name for messages, and its directory (relative key files in
/// ipsec.secrets and ipsec.conf are found in `ipsec.d/` next to it).
pub struct InputFile<'a> {
    pub text: &'a str,
    pub origin: &'a str,
    pub dir: &'a Path,
}

/// Tunnels converted at most (bounds the work a hostile file can cause: name and selector
/// checks compare tunnels pairwise).
pub const MAX_TUNNELS: usize = 1000;

// ipsec.conf(5), strongSwan 5.9.
const DEFAULT_IKE: &str = "aes128-sha256-modp3072";
const DEFAULT_ESP: &str = "aes128-sha256";
const DEFAULT_IKE_LIFETIME: u64 = 3 * 3600;
const DEFAULT_LIFETIME: u64 = 3600;
const DEFAULT_MARGIN: u64 = 9 * 60;
const DEFAULT_FUZZ: u32 = 100;
const DEFAULT_DPD_DELAY: u64 = 30;
const DEFAULT_DPD_TIMEOUT: u64 = 150;

/// Keys that carry nothing this model needs, when they have these values (or any value: `*`).
const HARMLESS: &[(&str, &str)] = &[
    ("type", "tunnel"),
    ("keyingtries", "%forever"),
    ("keyingtries", "0"),
    ("left", "*"),
    ("leftrsasigkey", "*"),
    ("leftsigkey", "*"),
    ("keyexchange", "ikev2"),
    ("keyexchange", "ike"),
    ("compress", "no"),
    ("mobike", "no"),
    ("installpolicy", "yes"),
    ("leftfirewall", "no"),
    ("reqid", "*"),
    ("rightauth", "*"),
    ("aggressive", "no"),
    ("rekey", "yes"),
    // The agent rekeys IKE SAs, it does not reauthenticate them.
    ("reauth", "no"),
];

/// Converts an ipsec.conf (and optionally its ipsec.secrets) into this crate's TOML.
pub fn convert(
    conf: &InputFile<'_>,
    secrets: Option<&InputFile<'_>>,
    opts: &ImportOptions,
) -> Result<Imported, ImportError> {
    let mut w = Warnings::new(conf.origin);
    let file = ipsec_conf::parse(conf.text, &mut w);
    for (k, v) in &file.setup {
        w.push(
            v.line,
            "config setup",
            k,
            "daemon setting, not carried over",
        );
    }
    let mut sw = Warnings::new(secrets.map_or("ipsec.secrets", |s| s.origin));
    let secrets_file = secrets.map(|s| ipsec_secrets::parse(s.text, &mut sw));
    let cx = Cx {
        secrets: secrets_file.as_ref(),
        secrets_dir: secrets.map(|s| s.dir),
        conf_dir: conf.dir,
    };

    let mut draft = Draft {
        header: vec![
            format!(
                "Converted from {} by `vpn-agent import strongswan`.",
                conf.origin
            ),
            "Review the interfaces, and add [[route]] entries where a tunnel says so.".into(),
        ],
        ..Draft::default()
    };
    let templates = ipsec_conf::also_targets(&file);
    let mut names: Vec<String> = Vec::new();
    let mut identity_from: Option<(String, String)> = None;
    let mut route_count: BTreeMap<IpNet, u32> = BTreeMap::new();
    for idx in 0..file.conns.len() {
        let sec = &file.conns[idx];
        if draft.tunnels.len() == MAX_TUNNELS {
            w.push(sec.line, &format!("conn {}", sec.name), "", format!("more than {MAX_TUNNELS} tunnels: this conn and the ones after it are not converted"));
            break;
        }
        let map = ipsec_conf::resolve(&file, idx, &mut w);
        let scope = format!("conn {}", sec.name);
        if templates.contains(&sec.name) && !map.contains_key("right") {
            continue; // an also= template without a peer
        }
        let Some(conv) = cx.conn(&sec.name, sec.line, &map, &names, &mut w) else {
            continue;
        };
        // One identity per router: the first conn's leftid.
        if let Some((kind, value)) = conv.local_id {
            match &identity_from {
                None => {
                    draft.identity = Some((kind, value.clone()));
                    identity_from = Some((sec.name.clone(), value));
                }
                Some((first, v)) if *v != value => w.push(
                    map.get("leftid").map_or(sec.line, |v| v.line),
                    &scope,
                    "leftid",
                    format!("this model has one identity per router; `{v}` (from conn {first}) is used, not `{value}`"),
                ),
                _ => {}
            }
        }
        names.push(conv.tunnel.name.clone());
        for (prefix, line) in conv.routes {
            let n = route_count.entry(prefix).or_insert(0);
            *n += 1;
            draft.routes.push(RouteDraft {
                prefix,
                tunnel: conv.tunnel.name.clone(),
                // Two conns to one prefix (seed 001's Tunnel1/Tunnel2): active/standby in file order.
                priority: 100 * *n,
                scope: scope.clone(),
                line,
            });
        }
        draft.tunnels.push(conv.tunnel);
    }
    w.list.append(&mut sw.list);
    super::finish(draft, opts, w)
}

struct Cx<'a> {
    secrets: Option<&'a SecretsFile>,
    secrets_dir: Option<&'a Path>,
    conf_dir: &'a Path,
}

struct Converted {
    tunnel: TunnelDraft,
    local_id: Option<(&'static str, String)>,
    routes: Vec<(IpNet, usize)>,
}

/// Reads the keys of one conn, remembering which were used.
struct Keys<'m> {
    map: &'m BTreeMap<String, Value>,
    used: HashSet<&'static str>,
}

impl<'m> Keys<'m> {
    fn get(&mut self, k: &'static str) -> Option<&'m Value> {
        self.used.insert(k);
        self.map.get(k)
    }
    /// The first of several synonyms that is set, with the name it was set under.
    fn first(&mut self, ks: &[&'static str]) -> Option<(&'static str, &'m Value)> {
        let mut found = None;
        for k in ks {
            if let Some(v) = self.get(k)
                && found.is_none()
            {
                found = Some((*k, v));
            }
        }
        found
    }
}

impl Cx<'_> {
    fn conn(
        &self,
        name: &str,
        line: usize,
        map: &BTreeMap<String, Value>,
        taken: &[String],
        w: &mut Warnings,
    ) -> Option<Converted> {
        let scope = format!("conn {name}");
        let mut k = Keys {
            map,
            used: HashSet::new(),
        };
        let skip = |w: &mut Warnings, line: usize, key: &str, why: String| {
            w.push(line, &scope, key, format!("{why}: conn not converted"));
        };

        if let Some(v) = k.get("auto")
            && v.text == "ignore"
        {
            skip(
                w,
                v.line,
                "auto",
                "auto=ignore (strongSwan does not load it either)".into(),
            );
            return None;
        }
        if let Some(v) = k.get("type")
            && v.text != "tunnel"
        {
            skip(
                w,
                v.line,
                "type",
                format!("type={} (only tunnel mode is supported)", v.text),
            );
            return None;
        }
        if let Some(v) = k.get("ah") {
            skip(w, v.line, "ah", "AH is not supported (ESP only)".into());
            return None;
        }

        // The peer.
        let Some(right) = k.get("right") else {
            skip(w, line, "right", "no right= (the peer)".into());
            return None;
        };
        let peer: IpAddr = match right.text.parse() {
            Ok(a) => a,
            Err(_) => {
                skip(
                    w,
                    right.line,
                    "right",
                    format!(
                        "`{}` is not an IP address (%any, %defaultroute and host names cannot be a tunnel's peer here)",
                        truncate(&right.text, 60)
                    ),
                );
                return None;
            }
        };
        let left_ip: Option<IpAddr> = k.get("left").and_then(|v| v.text.parse().ok());

        // Identities.
        let local_id = match k.get("leftid") {
            Some(v) => identity(&v.text)
                .map_err(|why| {
                    w.push(
                        v.line,
                        &scope,
                        "leftid",
                        format!("{why}: the router's default identity is used"),
                    )
                })
                .ok()
                .flatten(),
            None => None,
        };
        let mut remote_identity = None;
        if let Some(v) = k.get("rightid") {
            match identity(&v.text) {
                Ok(Some((kind, value))) if value != peer.to_string() => {
                    remote_identity = Some((kind, value))
                }
                Ok(_) => {}
                Err(why) => w.push(
                    v.line,
                    &scope,
                    "rightid",
                    format!("{why}: the peer's address is expected as its identity"),
                ),
            }
        }

        // Authentication.
        let auth_v = k.first(&["leftauth", "authby"]);
        let method = auth_v.map_or("pubkey", |(_, v)| v.text.as_str());
        let auth_line = auth_v.map_or(line, |(_, v)| v.line);
        let auth_key = auth_v.map_or("authby", |(k, _)| k);
        let mut local_ids: Vec<String> = Vec::new();
        if let Some(v) = k.get("leftid") {
            local_ids.push(v.text.clone());
        }
        if let Some(a) = left_ip {
            local_ids.push(a.to_string());
        }
        let mut remote_ids = vec![peer.to_string()];
        if let Some(v) = k.get("rightid") {
            remote_ids.push(v.text.clone());
        }
        let mut peer_public_key = None;
        let auth = match method {
            "secret" | "psk" => {
                let Some(secrets) = self.secrets else {
                    skip(
                        w,
                        auth_line,
                        auth_key,
                        "PSK authentication needs ipsec.secrets (--secrets FILE)".into(),
                    );
                    return None;
                };
                let Some((psk, _)) = secrets.psk(&local_ids, &remote_ids) else {
                    skip(
                        w,
                        auth_line,
                        auth_key,
                        format!(
                            "no PSK entry in ipsec.secrets matches {} / {}",
                            local_ids.join(" "),
                            remote_ids.join(" ")
                        ),
                    );
                    return None;
                };
                AuthDraft::Psk(psk.clone())
            }
            "rsasig" | "pubkey" | "rsa" | "ecdsasig" | "ecdsa" => {
                if let Some(v) = k.get("leftcert") {
                    w.push(v.line, &scope, "leftcert", "certificates are not carried over: the private key from ipsec.secrets is used and the peer needs our raw public key");
                }
                let Some(secrets) = self.secrets else {
                    skip(w, auth_line, auth_key, "key authentication needs ipsec.secrets (--secrets FILE) for the private key".into());
                    return None;
                };
                let Some((kind, file, _)) = secrets.private_key(&local_ids) else {
                    skip(
                        w,
                        auth_line,
                        auth_key,
                        "no RSA/ECDSA private key entry in ipsec.secrets".into(),
                    );
                    return None;
                };
                let field = match kind {
                    "RSA" => "rsa_private_key",
                    "ECDSA" => "ecdsa_private_key",
                    _ => {
                        skip(
                            w,
                            auth_line,
                            auth_key,
                            format!(
                                "the private key is of type {kind}: write auth = {{ rsa_private_key | ecdsa_private_key | ed25519_private_key = ... }} by hand"
                            ),
                        );
                        return None;
                    }
                };
                let path = ipsec_secrets::key_path(
                    self.secrets_dir.unwrap_or(self.conf_dir),
                    file,
                    "private",
                );
                match k.first(&["rightrsasigkey", "rightsigkey"]) {
                    Some((key, v))
                        if v.text.starts_with('%')
                            || v.text.starts_with("0s")
                            || v.text.starts_with("0x") =>
                    {
                        skip(w, v.line, key, "only a public key file can be carried over (not %cert or an inline key): save the key to a file".into());
                        return None;
                    }
                    Some((_, v)) => {
                        peer_public_key =
                            Some(ipsec_secrets::key_path(self.conf_dir, &v.text, "certs"))
                    }
                    None => {
                        let why = if k.get("rightcert").is_some() {
                            "certificates are not supported: give the peer's raw public key (rightrsasigkey=FILE)"
                        } else {
                            "no rightrsasigkey/rightsigkey (the peer's public key)"
                        };
                        skip(w, auth_line, auth_key, why.into());
                        return None;
                    }
                }
                AuthDraft::Key(field, path)
            }
            other => {
                skip(
                    w,
                    auth_line,
                    auth_key,
                    format!("`{other}` authentication is not supported (PSK or public keys only)"),
                );
                return None;
            }
        };

        // Traffic: route-based (marks, VTI) or policy-based (subnets).
        let mark = k.first(&["mark", "mark_in", "mark_out", "vti"]);
        let updown = k.get("leftupdown");
        let mut routes: Vec<(IpNet, usize)> = Vec::new();
        let mut comments = Vec::new();
        let local_nets = self.subnets(&mut k, "leftsubnet", &scope, w)?;
        let remote_nets = self.subnets(&mut k, "rightsubnet", &scope, w)?;
        let aws_vti = updown.and_then(|u| aws_updown(&u.text).map(|a| (a, u.line)));
        let traffic = if let Some(((inside_local, inside_remote, prefixes), uline)) = aws_vti {
            comments.push(format!("Route-based (from {scope}'s leftupdown VTI script: -ll/-lr inside addresses, -r routes)."));
            routes.extend(prefixes.into_iter().map(|p| (p, uline)));
            TrafficDraft::Inside {
                local: inside_local,
                remote: inside_remote,
            }
        } else {
            if let Some(v) = updown {
                w.push(v.line, &scope, "leftupdown", "the updown script is not run; its work (routes, firewall rules) must be expressed here");
            }
            let any: IpNet = match peer {
                IpAddr::V4(_) => "0.0.0.0/0".parse().expect("literal"),
                IpAddr::V6(_) => "::/0".parse().expect("literal"),
            };
            let local = match local_nets {
                Some(v) => v,
                None if mark.is_some() => vec![any],
                None => match left_ip {
                    Some(a) => vec![IpNet::from(a)],
                    None => {
                        skip(w, line, "leftsubnet", "no leftsubnet and left is not an address (the traffic selector would be this host's address, unknown here)".into());
                        return None;
                    }
                },
            };
            let remote = match remote_nets {
                Some(v) => v,
                None if mark.is_some() => vec![any],
                None => vec![IpNet::from(peer)],
            };
            if let Some((key, v)) = mark {
                w.push(v.line, &scope, key, "route-based (mark/VTI): the kernel routes that sent traffic into the VTI are not in ipsec.conf; add [[route]] entries for the remote prefixes to this tunnel");
                comments.push(format!("Route-based in strongSwan ({key}={}): add [[route]] entries for the remote prefixes.", v.text));
            }
            let rline = k.map.get("rightsubnet").map_or(line, |v| v.line);
            routes.extend(
                remote
                    .iter()
                    .filter(|n| n.prefix_len() != 0)
                    .map(|n| (*n, rline)),
            );
            TrafficDraft::Selectors { local, remote }
        };

        let tname = super::tunnel_name(name, taken);
        if tname != name {
            w.push(
                line,
                &scope,
                "",
                format!(
                    "renamed to `{tname}` (tunnel names are 3-20 letters, digits, hyphens, unique)"
                ),
            );
        }
        let mut t = TunnelDraft::new(tname, scope.clone(), line, peer, auth, traffic);
        t.comments = vec![format!("From {scope} (line {line}).")];
        t.comments.extend(comments);
        t.remote_identity = remote_identity;
        t.peer_public_key = peer_public_key;

        // IKE version.
        if let Some(v) = k.get("keyexchange")
            && (v.text == "ikev1" || v.text == "ike1")
        {
            w.push(v.line, &scope, "keyexchange", "IKEv1 is not supported by this appliance: converted as IKEv2 (the peer must accept IKEv2)");
        }

        // Proposals.
        t.ike_proposals = self.proposals(&mut k, "ike", ProposalKind::Ike, &scope, w);
        t.esp_proposals = self.proposals(&mut k, "esp", ProposalKind::Esp, &scope, w);

        // Lifetimes.
        t.ike_lifetime =
            Some(time(&mut k, &["ikelifetime"], &scope, w).unwrap_or(DEFAULT_IKE_LIFETIME));
        t.child_lifetime =
            Some(time(&mut k, &["lifetime", "keylife"], &scope, w).unwrap_or(DEFAULT_LIFETIME));
        t.rekey_margin =
            Some(time(&mut k, &["margintime", "rekeymargin"], &scope, w).unwrap_or(DEFAULT_MARGIN));
        t.rekey_fuzz = Some(match k.get("rekeyfuzz") {
            Some(v) => match v.text.trim_end_matches('%').parse::<u32>() {
                Ok(n) => n,
                Err(_) => {
                    w.push(
                        v.line,
                        &scope,
                        "rekeyfuzz",
                        format!(
                            "`{}` is not a percentage: {DEFAULT_FUZZ}% used",
                            truncate(&v.text, 40)
                        ),
                    );
                    DEFAULT_FUZZ
                }
            },
            None => DEFAULT_FUZZ,
        });

        // DPD. ipsec.conf(5): dpdtimeout is only used by IKEv1 charon (IKEv2 declares the
        // peer dead after its retransmissions), but it is this model's explicit timeout.
        t.dpd_delay = Some(time(&mut k, &["dpddelay"], &scope, w).unwrap_or(DEFAULT_DPD_DELAY));
        t.dpd_timeout =
            Some(time(&mut k, &["dpdtimeout"], &scope, w).unwrap_or(DEFAULT_DPD_TIMEOUT));
        t.dpd_action = Some(match k.get("dpdaction") {
            None => "none",
            Some(v) => {
                match v.text.as_str() {
                    "clear" => "clear",
                    "restart" => "restart",
                    "none" => "none",
                    "hold" => {
                        w.push(v.line, &scope, "dpdaction", "hold (trap and re-establish on traffic) is not supported: restart used");
                        "restart"
                    }
                    other => {
                        w.push(
                            v.line,
                            &scope,
                            "dpdaction",
                            format!(
                                "`{}` is not clear, hold, restart or none: none used",
                                truncate(other, 40)
                            ),
                        );
                        "none"
                    }
                }
            }
        });

        if let Some(v) = k.get("forceencaps") {
            t.force_encap = yes_no(&v.text).or_else(|| {
                w.push(v.line, &scope, "forceencaps", "not yes or no: left out");
                None
            });
        }
        if let Some(v) = k.get("fragmentation") {
            t.fragmentation = match v.text.as_str() {
                "yes" | "force" => Some(true),
                "accept" => {
                    w.push(v.line, &scope, "fragmentation", "accept (announce, never send fragments) has no equivalent: fragmentation = true also sends them");
                    Some(true)
                }
                "no" => Some(false),
                _ => {
                    w.push(
                        v.line,
                        &scope,
                        "fragmentation",
                        "not yes, accept, force or no: left out",
                    );
                    None
                }
            };
        }
        if let Some(v) = k.get("replay_window") {
            match v.text.parse::<u32>() {
                Ok(n) => t.replay_window = Some(n),
                Err(_) => w.push(v.line, &scope, "replay_window", "not a number: left out"),
            }
        }
        t.startup = Some(match k.get("auto").map(|v| (v.text.as_str(), v.line)) {
            None | Some(("add", _)) => "respond",
            Some(("start", _)) => "initiate",
            Some(("route", l)) => {
                w.push(l, &scope, "auto", "route (trap policies, initiate on traffic) is not supported: the tunnel initiates at start");
                "initiate"
            }
            Some((other, l)) => {
                w.push(
                    l,
                    &scope,
                    "auto",
                    format!(
                        "`{}` is not start, add or route: respond used",
                        truncate(other, 40)
                    ),
                );
                "respond"
            }
        });
        if let Some(v) = k.get("keyingtries")
            && v.text != "%forever"
            && v.text != "0"
        {
            w.push(
                v.line,
                &scope,
                "keyingtries",
                "the agent retries forever (with back-off), not a fixed number of times",
            );
        }
        if let Some(v) = k.get("mobike")
            && v.text == "yes"
        {
            w.push(
                v.line,
                &scope,
                "mobike",
                "MOBIKE is not supported: not carried over",
            );
        }

        // Everything else.
        for (key, v) in map {
            let harmless = HARMLESS
                .iter()
                .any(|(hk, hv)| hk == key && (*hv == "*" || *hv == v.text));
            if !k.used.contains(key.as_str()) && !harmless {
                w.push(v.line, &scope, key, "not carried over");
            }
        }
        Some(Converted {
            tunnel: t,
            local_id,
            routes,
        })
    }

    /// `leftsubnet` / `rightsubnet`: a comma list of prefixes. `Ok(None)` when unset; a conn
    /// whose subnets are all unusable is not converted (`None`).
    fn subnets(
        &self,
        k: &mut Keys<'_>,
        key: &'static str,
        scope: &str,
        w: &mut Warnings,
    ) -> Option<Option<Vec<IpNet>>> {
        let Some(v) = k.get(key) else {
            return Some(None);
        };
        let mut out = Vec::new();
        for item in v.text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (net_text, protoport) = match item.split_once('[') {
                Some((n, rest)) => (n.trim(), Some(rest)),
                None => (item, None),
            };
            if protoport.is_some() {
                w.push(v.line, scope, key, format!("protocol/port restriction on `{}` is not supported: the whole prefix is used", truncate(item, 60)));
            }
            let parsed = if net_text.contains('/') {
                net_text.parse::<IpNet>().ok()
            } else {
                net_text.parse::<IpAddr>().ok().map(IpNet::from)
            };
            match parsed {
                Some(n) if n.trunc() != n => {
                    // charon installs the network part (seed 001's 192.168.1.0/16 shows up as
                    // 192.168.0.0/16 in `ipsec status`).
                    w.push(
                        v.line,
                        scope,
                        key,
                        format!(
                            "`{n}` has host bits set: {} used, as strongSwan does",
                            n.trunc()
                        ),
                    );
                    out.push(n.trunc());
                }
                Some(n) => out.push(n),
                None => w.push(
                    v.line,
                    scope,
                    key,
                    format!("`{}` is not a prefix: left out", truncate(net_text, 60)),
                ),
            }
        }
        if out.is_empty() {
            w.push(v.line, scope, key, "no usable prefix: conn not converted");
            return None;
        }
        Some(Some(out))
    }

    /// `ike=` / `esp=`: comma-separated proposals in strongSwan's syntax; a trailing `!` makes
    /// the list strict. Algorithms this appliance lacks are dropped from their proposal;
    /// proposals left unusable are dropped; strongSwan's default when none is left or set.
    fn proposals(
        &self,
        k: &mut Keys<'_>,
        key: &'static str,
        kind: ProposalKind,
        scope: &str,
        w: &mut Warnings,
    ) -> Vec<String> {
        let default = match kind {
            ProposalKind::Ike => DEFAULT_IKE,
            ProposalKind::Esp => DEFAULT_ESP,
        };
        let Some(v) = k.get(key) else {
            return vec![default.to_string()];
        };
        let text = v.text.trim();
        let (list, strict) = match text.strip_suffix('!') {
            Some(l) => (l, true),
            None => (text, false),
        };
        if !strict {
            // ipsec.conf(5): without `!`, charon also accepts its default proposals as responder.
            w.push(v.line, scope, key, "without `!` strongSwan would also accept its default proposals; only the listed ones are carried over");
        }
        let mut out = Vec::new();
        for prop in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(p) = convert_proposal(prop, kind, v.line, scope, key, w) {
                out.push(p);
            }
        }
        if out.is_empty() {
            w.push(
                v.line,
                scope,
                key,
                format!("no usable proposal: strongSwan's default {default} used"),
            );
            out.push(default.to_string());
        }
        out
    }
}

/// One proposal: unknown algorithms dropped, and classic ciphers dropped from a proposal
/// that mixes them with AEAD ciphers but has no integrity algorithm (seed 004's
/// `aes192gcm16-aes128gcm16-aes192-prfsha256-ecp256-ecp521`: strongSwan refuses such a
/// proposal, "an integrity algorithm is mandatory ... with classic (non-AEAD) encryption").
fn convert_proposal(
    prop: &str,
    kind: ProposalKind,
    line: usize,
    scope: &str,
    key: &str,
    w: &mut Warnings,
) -> Option<String> {
    let mut tokens: Vec<(String, Option<KeywordClass>)> = prop
        .split('-')
        .map(|t| t.trim().to_ascii_lowercase())
        .map(|t| {
            let c = keyword_class(&t);
            (t, c)
        })
        .collect();
    let unknown: Vec<String> = tokens
        .iter()
        .filter(|(_, c)| c.is_none())
        .map(|(t, _)| format!("`{}`", truncate(t, 30)))
        .collect();
    if !unknown.is_empty() {
        w.push(
            line,
            scope,
            key,
            format!(
                "{} not supported by this appliance: dropped from `{}`",
                unknown.join(", "),
                truncate(prop, 80)
            ),
        );
        tokens.retain(|(_, c)| c.is_some());
    }
    let has = |tokens: &[(String, Option<KeywordClass>)], c: KeywordClass| {
        tokens.iter().any(|(_, x)| *x == Some(c))
    };
    if has(&tokens, KeywordClass::AeadCipher)
        && has(&tokens, KeywordClass::Cipher)
        && !has(&tokens, KeywordClass::Integrity)
    {
        let dropped: Vec<String> = tokens
            .iter()
            .filter(|(_, c)| *c == Some(KeywordClass::Cipher))
            .map(|(t, _)| format!("`{t}`"))
            .collect();
        w.push(line, scope, key, format!("{} in `{}` has no integrity algorithm (strongSwan refuses the proposal): dropped, the AEAD ciphers kept", dropped.join(", "), truncate(prop, 80)));
        tokens.retain(|(_, c)| *c != Some(KeywordClass::Cipher));
    }
    let joined = tokens
        .iter()
        .map(|(t, _)| t.as_str())
        .collect::<Vec<_>>()
        .join("-");
    if joined.is_empty() {
        w.push(
            line,
            scope,
            key,
            format!(
                "proposal `{}` has nothing left: dropped",
                truncate(prop, 80)
            ),
        );
        return None;
    }
    match Proposal::parse(kind, &joined) {
        Ok(_) => Some(joined),
        Err(why) => {
            w.push(line, scope, key, format!("{why}: proposal dropped"));
            None
        }
    }
}

/// A time value (`8h`, `3600`, `9m`, `1d`) of the first of `keys` that is set.
fn time(k: &mut Keys<'_>, keys: &[&'static str], scope: &str, w: &mut Warnings) -> Option<u64> {
    let (key, v) = k.first(keys)?;
    match parse_duration(&v.text) {
        Some(s) => Some(s),
        None => {
            w.push(
                v.line,
                scope,
                key,
                format!(
                    "`{}` is not a time (like 3600, 9m, 8h): strongSwan's default used",
                    truncate(&v.text, 40)
                ),
            );
            None
        }
    }
}

fn yes_no(s: &str) -> Option<bool> {
    match s {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// An ipsec.conf identity as (type, value); `Ok(None)` for `%any`.
fn identity(s: &str) -> Result<Option<(&'static str, String)>, String> {
    let s = s.trim();
    if s == "%any" || s.is_empty() {
        return Ok(None);
    }
    if let Ok(a) = s.parse::<IpAddr>() {
        let kind = if a.is_ipv4() { "ipv4" } else { "ipv6" };
        return Ok(Some((kind, a.to_string())));
    }
    if let Some(rest) = s.strip_prefix('@') {
        if rest.starts_with('#') || rest.starts_with('@') {
            return Err(format!(
                "`{}`: key-id and ASN.1 identities are not carried over",
                truncate(s, 60)
            ));
        }
        return Ok(Some(("fqdn", rest.to_string())));
    }
    if s.contains('=') {
        return Err(format!(
            "`{}`: distinguished names (certificate identities) are not supported",
            truncate(s, 60)
        ));
    }
    if s.contains('@') {
        return Ok(Some(("email", s.to_string())));
    }
    if s.contains('.') {
        return Ok(Some(("fqdn", s.to_string())));
    }
    Err(format!(
        "`{}` is not an identity this model knows",
        truncate(s, 60)
    ))
}

/// AWS's strongSwan VTI recipe passes the tunnel's inside addresses and the VPC prefix to its
/// updown script: `leftupdown="/etc/ipsec.d/aws-updown.sh -ln Tunnel1 -ll 169.254.10.2/30
/// -lr 169.254.10.1/30 -m 100 -r 10.0.0.0/16"`. Returns (our inside address with its length,
/// the peer's inside address, the `-r` prefixes).
fn aws_updown(cmd: &str) -> Option<(IpNet, IpAddr, Vec<IpNet>)> {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let arg = |flag: &str| {
        words
            .iter()
            .position(|w| *w == flag)
            .and_then(|i| words.get(i + 1).copied())
    };
    let local: IpNet = arg("-ll")?.parse().ok()?;
    let remote_text = arg("-lr")?;
    let remote: IpAddr = remote_text.split('/').next()?.parse().ok()?;
    let prefixes = words
        .windows(2)
        .filter(|p| p[0] == "-r")
        .filter_map(|p| p[1].parse::<IpNet>().ok())
        .map(|n| n.trunc())
        .collect();
    Some((local, remote, prefixes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities() {
        assert_eq!(
            identity("203.0.113.1").unwrap(),
            Some(("ipv4", "203.0.113.1".into()))
        );
        assert_eq!(
            identity("@vpn.example.com").unwrap(),
            Some(("fqdn", "vpn.example.com".into()))
        );
        assert_eq!(
            identity("me@example.com").unwrap(),
            Some(("email", "me@example.com".into()))
        );
        assert_eq!(identity("%any").unwrap(), None);
        assert!(identity("C=CH, O=strongSwan, CN=moon").is_err());
    }

    #[test]
    fn aws_updown_arguments() {
        let (l, r, p) = aws_updown("/etc/ipsec.d/aws-updown.sh -ln Tunnel1 -ll 169.254.10.2/30 -lr 169.254.10.1/30 -m 100 -r 10.0.0.0/16").unwrap();
        assert_eq!(l.to_string(), "169.254.10.2/30");
        assert_eq!(r.to_string(), "169.254.10.1");
        assert_eq!(p, vec!["10.0.0.0/16".parse::<IpNet>().unwrap()]);
        assert!(aws_updown("/usr/lib/ipsec/_updown iptables").is_none());
    }

    #[test]
    fn proposals_are_repaired_or_dropped_with_reasons() {
        let mut w = Warnings::new("t");
        assert_eq!(
            convert_proposal(
                "aes192gcm16-aes128gcm16-aes192-prfsha256-ecp256-ecp521",
                ProposalKind::Ike,
                1,
                "conn x",
                "ike",
                &mut w
            )
            .as_deref(),
            Some("aes192gcm16-aes128gcm16-prfsha256-ecp256-ecp521")
        );
        assert_eq!(
            convert_proposal(
                "3des-aes128-sha1-modp1024",
                ProposalKind::Ike,
                1,
                "conn x",
                "ike",
                &mut w
            )
            .as_deref(),
            Some("aes128-sha1-modp1024")
        );
        assert_eq!(
            convert_proposal("3des-md5", ProposalKind::Esp, 1, "conn x", "esp", &mut w),
            None
        );
        assert_eq!(w.list.len(), 4, "{:?}", w.list);
        assert!(w.list[1].message.contains("`3des` not supported"));
    }
}
