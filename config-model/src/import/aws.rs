//! AWS Site-to-Site VPN "Generic" customer gateway configuration text to this crate's TOML.
//!
//! The text is the one the VPC console's "Download configuration" (vendor "Generic") and
//! `GetVpnConnectionDeviceSampleConfiguration` produce; its layout is shown in the AWS
//! Site-to-Site VPN guide's "Example: Generic customer gateway device without BGP"
//! (awsdocs/amazon-vpc-network-administrator-guide, `doc_source/GenericConfigNoBGP.md`):
//! per tunnel an `IPSec Tunnel #N` header, then `#1: Internet Key Exchange Configuration`,
//! `#2: IPSec Configuration` (with DPD and the MSS advice), `#3: Tunnel Interface
//! Configuration` (outside and inside addresses, tunnel MTU), `#4: Static Routing
//! Configuration` (or BGP), each setting a `  - Name : value` line. It is a report meant for
//! people, parsed by hand (see [`super`]): unknown lines are skipped, unknown settings
//! reported by name (never by value: a value may be a key).
//!
//! Result: one route-based `[[tunnel]]` per `IPSec Tunnel #N` with `profile = "aws"`, the
//! inside /30, the parameters of the file (proposals, lifetimes, DPD interval x retries as
//! the timeout, MTU, MSS), `startup = "initiate"` (the AWS end only responds by default), the
//! customer gateway's outside address as our identity; and for each `--remote-prefix`, a
//! route over tunnel 1 (priority 100) and tunnel 2 (priority 200): active/standby.

use std::net::IpAddr;

use ipnet::IpNet;
use zeroize::Zeroizing;

use super::ipsec_conf::truncate;
use super::{
    AuthDraft, Draft, ImportError, ImportOptions, Imported, RouteDraft, TrafficDraft, TunnelDraft,
    Warnings,
};
use crate::proposal::{Proposal, ProposalKind};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Part {
    Preamble,
    Ike,
    Ipsec,
    Interface,
    Routing,
    Bgp,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Block {
    None,
    Outside,
    Inside,
}

/// What one `IPSec Tunnel #N` section says.
#[derive(Default)]
struct TunnelText {
    number: u32,
    line: usize,
    ike_version: Option<(String, usize)>,
    auth_method: Option<(String, usize)>,
    psk: Option<(Zeroizing<String>, usize)>,
    ike_integ: Option<(String, usize)>,
    ike_enc: Option<(String, usize)>,
    ike_lifetime: Option<(String, usize)>,
    ike_dh: Option<(String, usize)>,
    esp_integ: Option<(String, usize)>,
    esp_enc: Option<(String, usize)>,
    esp_lifetime: Option<(String, usize)>,
    esp_pfs: Option<(String, usize)>,
    dpd_interval: Option<(String, usize)>,
    dpd_retries: Option<(String, usize)>,
    mss: Option<(String, usize)>,
    mtu: Option<(String, usize)>,
    cgw_outside: Option<(String, usize)>,
    vgw_outside: Option<(String, usize)>,
    cgw_inside: Option<(String, usize)>,
    vgw_inside: Option<(String, usize)>,
    next_hop: Option<(String, usize)>,
    bgp_reported: bool,
}

/// Converts the generic configuration text of one VPN connection.
pub fn convert(text: &str, origin: &str, opts: &ImportOptions) -> Result<Imported, ImportError> {
    let mut w = Warnings::new(origin);
    let mut header = vec![format!(
        "Converted from {origin} (AWS generic customer gateway configuration) by `vpn-agent import aws`."
    )];
    let mut tunnels: Vec<TunnelText> = Vec::new();
    let mut part = Part::Preamble;
    let mut block = Block::None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        let lower = t.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("ipsec tunnel #") {
            let number = rest
                .trim()
                .parse::<u32>()
                .unwrap_or(tunnels.len() as u32 + 1);
            if tunnels.iter().any(|x| x.number == number) {
                w.push(
                    line,
                    &format!("IPSec Tunnel #{number}"),
                    "",
                    "a second section for this tunnel: its settings are merged into the first",
                );
            } else {
                tunnels.push(TunnelText {
                    number,
                    line,
                    ..TunnelText::default()
                });
            }
            if let Some(pos) = tunnels.iter().position(|x| x.number == number) {
                // Keep the section being filled last.
                let cur = tunnels.remove(pos);
                tunnels.push(cur);
            }
            part = Part::Preamble;
            block = Block::None;
            continue;
        }
        if lower.starts_with('#') && lower.contains(':') {
            part = if lower.contains("internet key exchange") {
                Part::Ike
            } else if lower.contains("ipsec configuration") {
                Part::Ipsec
            } else if lower.contains("tunnel interface") {
                Part::Interface
            } else if lower.contains("static routing") {
                Part::Routing
            } else if lower.contains("border gateway protocol") || lower.contains("bgp") {
                Part::Bgp
            } else {
                part
            };
            block = Block::None;
            continue;
        }
        if lower.starts_with("outside ip addresses") {
            block = Block::Outside;
            continue;
        }
        if lower.starts_with("inside ip addresses") {
            block = Block::Inside;
            continue;
        }
        if let Some((k, v)) = lower.split_once(':')
            && !lower.starts_with('-')
            && k.starts_with("your ")
            && k.trim().ends_with(" id")
        {
            let _ = v;
            // "Your VPN Connection ID : vpn-..." (identifiers, not secrets): kept as a comment.
            header.push(t.split_whitespace().collect::<Vec<_>>().join(" "));
            continue;
        }
        let Some(item) = t.strip_prefix("- ").or_else(|| t.strip_prefix("-\t")) else {
            continue;
        };
        let Some((key, value)) = item.split_once(':') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        let Some(cur) = tunnels.last_mut() else {
            w.push(
                line,
                "preamble",
                &key,
                "setting outside any `IPSec Tunnel #N` section: skipped",
            );
            continue;
        };
        let scope = format!("IPSec Tunnel #{}", cur.number);
        let v = || Some((value.to_string(), line));
        match (part, block, key.as_str()) {
            (Part::Ike, _, "ike version") => cur.ike_version = v(),
            (Part::Ike, _, "authentication method") => cur.auth_method = v(),
            (Part::Ike, _, "pre-shared key") => {
                cur.psk = Some((Zeroizing::new(value.to_string()), line));
            }
            (Part::Ike, _, "authentication algorithm") => cur.ike_integ = v(),
            (Part::Ike, _, "encryption algorithm") => cur.ike_enc = v(),
            (Part::Ike, _, "lifetime") => cur.ike_lifetime = v(),
            (Part::Ike, _, "diffie-hellman" | "perfect forward secrecy") => cur.ike_dh = v(),
            (Part::Ike, _, "phase 1 negotiation mode") => {}
            (Part::Ipsec, _, "protocol") => {
                if !value.eq_ignore_ascii_case("esp") {
                    w.push(line, &scope, "Protocol", "only ESP is supported");
                }
            }
            (Part::Ipsec, _, "authentication algorithm") => cur.esp_integ = v(),
            (Part::Ipsec, _, "encryption algorithm") => cur.esp_enc = v(),
            (Part::Ipsec, _, "lifetime") => cur.esp_lifetime = v(),
            (Part::Ipsec, _, "perfect forward secrecy") => cur.esp_pfs = v(),
            (Part::Ipsec, _, "mode") => {
                if !value.eq_ignore_ascii_case("tunnel") {
                    w.push(line, &scope, "Mode", "only tunnel mode is supported");
                }
            }
            (Part::Ipsec, _, "dpd interval") => cur.dpd_interval = v(),
            (Part::Ipsec, _, "dpd retries") => cur.dpd_retries = v(),
            (Part::Ipsec, _, "tcp mss adjustment") => cur.mss = v(),
            (Part::Ipsec, _, "clear don't fragment bit") => {
                if value.eq_ignore_ascii_case("enabled") {
                    w.push(line, &scope, "Clear Don't Fragment Bit", "not carried over: packets above the tunnel MTU are fragmented before encryption unless DF is set, then answered with ICMP fragmentation-needed (the MSS clamp keeps TCP below the MTU)");
                }
            }
            (Part::Ipsec, _, "fragmentation") => {
                if !value.to_ascii_lowercase().contains("before encryption") {
                    w.push(
                        line,
                        &scope,
                        "Fragmentation",
                        "this appliance always fragments before encryption",
                    );
                }
            }
            (Part::Interface, Block::Outside, "customer gateway") => cur.cgw_outside = v(),
            (Part::Interface, Block::Outside, "virtual private gateway") => cur.vgw_outside = v(),
            (Part::Interface, Block::Inside, "customer gateway") => cur.cgw_inside = v(),
            (Part::Interface, Block::Inside, "virtual private gateway") => cur.vgw_inside = v(),
            (Part::Interface, _, "tunnel interface mtu") => cur.mtu = v(),
            (Part::Routing, _, "next hop") => cur.next_hop = v(),
            (Part::Bgp, _, _) => {
                if !cur.bgp_reported {
                    cur.bgp_reported = true;
                    w.push(line, &scope, "BGP", "dynamic routing (BGP) is not supported: static routes are written instead (--remote-prefix); set the VPN connection to static routing");
                }
            }
            _ => w.push(line, &scope, &key, "not carried over (unknown setting)"),
        }
    }

    let mut draft = Draft {
        header,
        ..Draft::default()
    };
    draft.header.push(
        "Two route-based tunnels (0.0.0.0/0 selectors, inside /30s); the routes pick the active one."
            .into(),
    );
    let mut names = Vec::new();
    for tt in &tunnels {
        if let Some(t) = tunnel(tt, &mut w, &mut draft, &names) {
            names.push(t.name.clone());
            draft.tunnels.push(t);
        }
    }
    if draft.tunnels.len() == 1 {
        w.push(
            0,
            "connection",
            "",
            "only one usable tunnel: AWS gives two for redundancy",
        );
    }
    if opts.remote_prefixes.is_empty() && !draft.tunnels.is_empty() {
        w.push(0, "connection", "routes", "the generic text has no remote (VPC) prefixes: no [[route]] written; give --remote-prefix CIDR");
    }
    for prefix in &opts.remote_prefixes {
        for (n, t) in draft.tunnels.iter().enumerate() {
            draft.routes.push(RouteDraft {
                prefix: prefix.trunc(),
                tunnel: t.name.clone(),
                priority: 100 * (n as u32 + 1),
                scope: t.scope.clone(),
                line: t.line,
            });
        }
    }
    super::finish(draft, opts, w)
}

fn tunnel(
    tt: &TunnelText,
    w: &mut Warnings,
    draft: &mut Draft,
    taken: &[String],
) -> Option<TunnelDraft> {
    let scope = format!("IPSec Tunnel #{}", tt.number);
    let skip = |w: &mut Warnings, line: usize, key: &str, why: &str| {
        w.push(line, &scope, key, format!("{why}: tunnel not converted"));
    };
    if let Some((m, line)) = &tt.auth_method
        && !m.eq_ignore_ascii_case("pre-shared key")
    {
        skip(
            w,
            *line,
            "Authentication Method",
            "only pre-shared keys are supported with AWS",
        );
        return None;
    }
    let Some((psk, psk_line)) = &tt.psk else {
        skip(w, tt.line, "Pre-Shared Key", "no pre-shared key");
        return None;
    };
    let psk_text = psk.trim();
    if psk_text.is_empty() || psk_text.starts_with('[') || psk_text.contains(char::is_whitespace) {
        skip(
            w,
            *psk_line,
            "Pre-Shared Key",
            "the pre-shared key is missing or hidden in this text",
        );
        return None;
    }
    let Some((vgw, vline)) = &tt.vgw_outside else {
        skip(
            w,
            tt.line,
            "Outside IP Addresses",
            "no virtual private gateway outside address",
        );
        return None;
    };
    let Ok(peer) = vgw.parse::<IpAddr>() else {
        skip(
            w,
            *vline,
            "Virtual Private Gateway",
            &format!("`{}` is not an IP address", truncate(vgw, 40)),
        );
        return None;
    };
    let (Some((cgw_in, cline)), Some((vgw_in, vline_in))) = (&tt.cgw_inside, &tt.vgw_inside) else {
        skip(w, tt.line, "Inside IP Addresses", "no inside addresses");
        return None;
    };
    let Ok(local) = cgw_in.parse::<IpNet>() else {
        skip(
            w,
            *cline,
            "Customer Gateway",
            &format!("inside `{}` is not an address/length", truncate(cgw_in, 40)),
        );
        return None;
    };
    let Ok(remote) = vgw_in.split('/').next().unwrap_or("").parse::<IpAddr>() else {
        skip(
            w,
            *vline_in,
            "Virtual Private Gateway",
            &format!("inside `{}` is not an address", truncate(vgw_in, 40)),
        );
        return None;
    };
    if let Some((hop, hline)) = &tt.next_hop
        && hop.parse::<IpAddr>().ok() != Some(remote)
    {
        w.push(
            *hline,
            &scope,
            "Next hop",
            format!(
                "{} is not the gateway's inside address {remote}: the inside address is used",
                truncate(hop, 40)
            ),
        );
    }
    // Our identity: the customer gateway's outside address (the same for both tunnels).
    if let Some((cgw, line)) = &tt.cgw_outside {
        match cgw.parse::<IpAddr>() {
            Ok(a) => {
                let kind = if a.is_ipv4() { "ipv4" } else { "ipv6" };
                match &draft.identity {
                    None => draft.identity = Some((kind, a.to_string())),
                    Some((_, v)) if *v != a.to_string() => w.push(*line, &scope, "Customer Gateway", format!("outside address {a} differs from the first tunnel's {v}; one identity per router: {v} used")),
                    _ => {}
                }
            }
            Err(_) => w.push(*line, &scope, "Customer Gateway", format!("outside `{}` is not an IP address: the router's identity is left to its default (the WAN address)", truncate(cgw, 40))),
        }
    }

    let name = super::tunnel_name(&format!("aws-t{}", tt.number), taken);
    let mut t = TunnelDraft::new(
        name,
        scope.clone(),
        tt.line,
        peer,
        AuthDraft::Psk(Zeroizing::new(psk_text.as_bytes().to_vec())),
        TrafficDraft::Inside { local, remote },
    );
    t.profile = Some("aws");
    t.startup = Some("initiate");
    t.comments.push(format!(
        "{scope}: VGW {peer}, inside {local} (ours) / {remote}; the AWS end only responds by default."
    ));
    if let Some((v, line)) = &tt.ike_version
        && v.eq_ignore_ascii_case("ikev1")
    {
        w.push(*line, &scope, "IKE version", "IKEv1 is not supported by this appliance: converted as IKEv2 (allow ikev2 in the tunnel's IKE versions on the AWS side)");
    }

    // Proposals from the single algorithms of each phase.
    let ike_enc = tt.ike_enc.as_ref().and_then(|(v, l)| {
        encryption(v).or_else(|| unsupported(w, *l, &scope, "Encryption Algorithm", v))
    });
    let ike_integ = tt.ike_integ.as_ref().and_then(|(v, l)| {
        integrity(v).or_else(|| unsupported(w, *l, &scope, "Authentication Algorithm", v))
    });
    let ike_dh = tt
        .ike_dh
        .as_ref()
        .and_then(|(v, l)| dh_group(v).or_else(|| unsupported(w, *l, &scope, "Diffie-Hellman", v)));
    if let (Some(e), Some(i), Some(d)) = (ike_enc, ike_integ, ike_dh) {
        // For an AEAD cipher AWS's "authentication algorithm" is the PRF.
        let p = if e.contains("gcm") {
            format!("{e}-prf{i}-{d}")
        } else {
            format!("{e}-{i}-{d}")
        };
        push_checked(
            &mut t.ike_proposals,
            ProposalKind::Ike,
            p,
            w,
            tt.line,
            &scope,
        );
    } else {
        w.push(
            tt.line,
            &scope,
            "Internet Key Exchange",
            "incomplete IKE algorithms: the aws profile's proposals are used",
        );
    }
    let esp_enc = tt.esp_enc.as_ref().and_then(|(v, l)| {
        encryption(v).or_else(|| unsupported(w, *l, &scope, "Encryption Algorithm", v))
    });
    let esp_integ = tt.esp_integ.as_ref().and_then(|(v, l)| {
        integrity(v).or_else(|| unsupported(w, *l, &scope, "Authentication Algorithm", v))
    });
    let pfs = match &tt.esp_pfs {
        Some((v, _))
            if v.to_ascii_lowercase().contains("disabled") || v.eq_ignore_ascii_case("none") =>
        {
            Some(None)
        }
        Some((v, l)) => dh_group(v)
            .map(Some)
            .or_else(|| unsupported(w, *l, &scope, "Perfect Forward Secrecy", v).map(Some)),
        None => Some(None),
    };
    match (esp_enc, pfs) {
        (Some(e), Some(pfs)) if e.contains("gcm") || esp_integ.is_some() => {
            let mut parts = vec![e];
            if !parts[0].contains("gcm") {
                parts.push(esp_integ.unwrap_or_default());
            }
            parts.extend(pfs);
            push_checked(
                &mut t.esp_proposals,
                ProposalKind::Esp,
                parts.join("-"),
                w,
                tt.line,
                &scope,
            );
        }
        _ => w.push(
            tt.line,
            &scope,
            "IPSec Configuration",
            "incomplete ESP algorithms: the aws profile's proposals are used",
        ),
    }

    t.ike_lifetime = number(w, &tt.ike_lifetime, &scope, "Lifetime").map(u64::from);
    t.child_lifetime = number(w, &tt.esp_lifetime, &scope, "Lifetime").map(u64::from);
    // DPD: AWS declares the peer dead after `retries` missed intervals.
    let interval = number(w, &tt.dpd_interval, &scope, "DPD Interval");
    let retries = number(w, &tt.dpd_retries, &scope, "DPD Retries");
    if let Some(i) = interval {
        t.dpd_delay = Some(u64::from(i.max(1)));
        if let Some(r) = retries {
            let timeout = u64::from(i) * u64::from(r.max(1));
            t.dpd_timeout = Some(if timeout < 30 {
                w.push(tt.dpd_retries.as_ref().map_or(tt.line, |x| x.1), &scope, "DPD Retries", format!("interval x retries = {timeout} s is below AWS's minimum DPD timeout: 30 s used"));
                30
            } else {
                timeout
            });
        }
    }
    t.mtu = number(w, &tt.mtu, &scope, "Tunnel interface MTU");
    t.mss = number(w, &tt.mss, &scope, "TCP MSS Adjustment");
    Some(t)
}

fn unsupported(w: &mut Warnings, line: usize, scope: &str, key: &str, v: &str) -> Option<String> {
    w.push(
        line,
        scope,
        key,
        format!("`{}` is not supported", truncate(v, 40)),
    );
    None
}

fn push_checked(
    list: &mut Vec<String>,
    kind: ProposalKind,
    p: String,
    w: &mut Warnings,
    line: usize,
    scope: &str,
) {
    match Proposal::parse(kind, &p) {
        Ok(_) => list.push(p),
        Err(why) => w.push(
            line,
            scope,
            "proposal",
            format!("{why}: the aws profile's proposals are used"),
        ),
    }
}

/// The leading number of `28800 seconds`, `1399 bytes`, `10`.
fn number(w: &mut Warnings, v: &Option<(String, usize)>, scope: &str, key: &str) -> Option<u32> {
    let (text, line) = v.as_ref()?;
    let digits: String = text
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    match digits.parse::<u32>() {
        Ok(n) => Some(n),
        Err(_) => {
            w.push(
                *line,
                scope,
                key,
                format!(
                    "`{}` is not a number: the aws profile's default is used",
                    truncate(text, 40)
                ),
            );
            None
        }
    }
}

/// AWS's cipher names (`aes-128-cbc`, `aes-256-gcm-16`, `AES256`, ...) as strongSwan keywords.
fn encryption(v: &str) -> Option<String> {
    let s: String = v
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    Some(
        match s.as_str() {
            "aes128cbc" | "aes128" => "aes128",
            "aes256cbc" | "aes256" => "aes256",
            "aes128gcm16" | "aes128gcm" => "aes128gcm16",
            "aes256gcm16" | "aes256gcm" => "aes256gcm16",
            _ => return None,
        }
        .to_string(),
    )
}

/// AWS's integrity names (`sha1`, `hmac-sha1-96`, `sha2-256`, `hmac-sha-256-128`, ...).
fn integrity(v: &str) -> Option<String> {
    let s = v.to_ascii_lowercase();
    let s = s.trim().trim_start_matches("hmac-");
    let compact: String = s.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    if compact == "sha" || compact == "sha1" || compact == "sha196" {
        return Some("sha1".into());
    }
    // `sha256`, `sha2256128` (sha2-256-128), `sha512256` (sha-512-256): the digest size is
    // the first number after `sha` or `sha2`.
    let rest = compact.strip_prefix("sha")?;
    for bits in ["256", "384", "512"] {
        if rest.starts_with(bits) || rest.strip_prefix('2').is_some_and(|r| r.starts_with(bits)) {
            return Some(format!("sha{bits}"));
        }
    }
    None
}

/// `Group 14` / `Diffie-Hellman Group 2` as a strongSwan keyword.
fn dh_group(v: &str) -> Option<String> {
    let n: u32 = v
        .to_ascii_lowercase()
        .rsplit("group")
        .next()?
        .trim()
        .parse()
        .ok()?;
    Some(
        match n {
            2 => "modp1024",
            5 => "modp1536",
            14 => "modp2048",
            15 => "modp3072",
            16 => "modp4096",
            17 => "modp6144",
            18 => "modp8192",
            19 => "ecp256",
            20 => "ecp384",
            21 => "ecp521",
            22 => "modp1024s160",
            23 => "modp2048s224",
            24 => "modp2048s256",
            _ => return None,
        }
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names() {
        assert_eq!(encryption("aes-128-cbc").as_deref(), Some("aes128"));
        assert_eq!(encryption("AES256-GCM-16").as_deref(), Some("aes256gcm16"));
        assert_eq!(encryption("3des"), None);
        assert_eq!(integrity("hmac-sha1-96").as_deref(), Some("sha1"));
        assert_eq!(integrity("sha2-256").as_deref(), Some("sha256"));
        assert_eq!(integrity("hmac-sha-512-256").as_deref(), Some("sha512"));
        assert_eq!(integrity("md5"), None);
        assert_eq!(dh_group("Group 2").as_deref(), Some("modp1024"));
        assert_eq!(
            dh_group("Diffie-Hellman Group 14").as_deref(),
            Some("modp2048")
        );
        assert_eq!(dh_group("Group 1"), None);
        assert_eq!(dh_group("Group x"), None);
    }
}
