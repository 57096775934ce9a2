//! From text to [`Config`]: TOML syntax (all syntax errors at once), then each section and each
//! `[[tunnel]]`/`[[route]]`/`[[nat]]` entry deserialized on its own (so one bad entry does not
//! hide the others), then the semantic checks, all collected.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::error::{ConfigErrors, Diagnostics};
use crate::model::*;
use crate::profile::{self, Defaults};
use crate::proposal::{Proposal, ProposalKind};
use crate::raw::*;
use crate::secret::{RawSecretRef, SecretRef};

const SECTIONS: &str = "router, tunnel, route, nat, sysctl";

pub(crate) fn parse(origin: &str, text: &str) -> Result<Config, ConfigErrors> {
    let mut d = Diagnostics::new(origin, text);
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            let span = e.span().unwrap_or(0..0);
            d.error(&span, "", one_line(e.message()));
        }
        return Err(d.finish().expect_err("has errors"));
    }
    let doc_span = doc.span();
    let table = doc.into_inner();

    let mut router: Option<RawRouter> = None;
    let mut router_failed = false;
    let mut tunnels: Vec<(usize, RawTunnel)> = Vec::new();
    let mut tunnels_failed = false;
    let mut routes: Vec<(usize, RawRoute)> = Vec::new();
    let mut nats: Vec<(usize, RawNat)> = Vec::new();
    let mut sysctl: Option<RawSysctl> = None;

    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        match name {
            "router" => match de_one::<RawRouter>(&mut d, "router", value) {
                Some(r) => router = Some(r),
                None => router_failed = true,
            },
            "sysctl" => {
                if let Some(s) = de_one::<RawSysctl>(&mut d, "sysctl", value) {
                    sysctl = Some(s);
                }
            }
            "tunnel" | "route" | "nat" => {
                let Some(items) = array_of_tables(&mut d, name, value) else {
                    if name == "tunnel" {
                        tunnels_failed = true;
                    }
                    continue;
                };
                for (i, item) in items.iter().enumerate() {
                    let path = format!("{name}[{i}]");
                    match name {
                        "tunnel" => match de_one::<RawTunnel>(&mut d, &path, item) {
                            Some(t) => tunnels.push((i, t)),
                            None => tunnels_failed = true,
                        },
                        "route" => {
                            if let Some(r) = de_one::<RawRoute>(&mut d, &path, item) {
                                routes.push((i, r));
                            }
                        }
                        _ => {
                            if let Some(n) = de_one::<RawNat>(&mut d, &path, item) {
                                nats.push((i, n));
                            }
                        }
                    }
                }
            }
            other => d.error(
                &key.span(),
                other,
                format!("unknown section `{other}` (expected one of {SECTIONS})"),
            ),
        }
    }

    if router.is_none() && !router_failed {
        d.error(
            &(doc_span.start..doc_span.start),
            "router",
            "missing [router] section",
        );
    }

    let mut r = Resolver {
        d,
        router_ok: !router_failed,
        tunnels_ok: !tunnels_failed,
        declared: tunnels
            .iter()
            .map(|(_, t)| t.name.get_ref().clone())
            .collect(),
    };
    let router = router.map(|raw| r.router(raw));
    let tunnels = r.tunnels(&tunnels, router.as_ref());
    let routes = r.routes(&routes, &tunnels);
    let ifaces: Option<Vec<String>> = router.as_ref().map(|rt| {
        let mut v = vec![rt.wan.clone()];
        v.extend(rt.lan.iter().cloned());
        v
    });
    let nat = r.nats(&nats, ifaces.as_deref());
    let sysctl = r.sysctl(sysctl, ifaces.as_deref(), !tunnels.is_empty());
    r.d.finish()?;
    Ok(Config {
        origin: origin.to_string(),
        router: router.expect("no errors implies a router"),
        tunnels: tunnels.into_iter().map(|(t, _)| t).collect(),
        routes,
        nat,
        sysctl,
    })
}

fn one_line(msg: &str) -> String {
    msg.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn array_of_tables<'a, 'i>(
    d: &mut Diagnostics,
    name: &str,
    value: &'a Spanned<DeValue<'i>>,
) -> Option<&'a [Spanned<DeValue<'i>>]> {
    match value.get_ref() {
        DeValue::Array(a) => Some(a),
        _ => {
            d.error(
                &value.span(),
                name,
                format!("expected an array of tables: write each entry as [[{name}]]"),
            );
            None
        }
    }
}

/// Deserializes one section or entry; on error, reports it with the field path found from the
/// error's span.
fn de_one<'i, T: Deserialize<'i>>(
    d: &mut Diagnostics,
    path: &str,
    value: &Spanned<DeValue<'i>>,
) -> Option<T> {
    match T::deserialize(ValueDeserializer::from(value.clone())) {
        Ok(t) => Some(t),
        Err(e) => {
            let span = e.span().unwrap_or_else(|| value.span());
            let mut full = path.to_string();
            sub_path(value, span.start, &mut full);
            d.error(&span, full, one_line(e.message()));
            None
        }
    }
}

/// Appends to `out` the path of the innermost key or element of `v` whose key or value
/// contains `pos`. Every descendant is searched: a `[header]` table's span covers only its
/// header, not its body.
fn sub_path(v: &Spanned<DeValue<'_>>, pos: usize, out: &mut String) {
    if let Some(p) = find_path(v, pos) {
        out.push_str(&p);
    }
}

fn find_path(v: &Spanned<DeValue<'_>>, pos: usize) -> Option<String> {
    match v.get_ref() {
        DeValue::Table(t) => {
            for (k, val) in t.iter() {
                let key: &str = k.get_ref();
                if k.span().contains(&pos) {
                    return Some(format!(".{key}"));
                }
                if let Some(rest) = find_path(val, pos) {
                    return Some(format!(".{key}{rest}"));
                }
                if val.span().contains(&pos) {
                    return Some(format!(".{key}"));
                }
            }
            None
        }
        DeValue::Array(a) => {
            for (i, el) in a.iter().enumerate() {
                if let Some(rest) = find_path(el, pos) {
                    return Some(format!("[{i}]{rest}"));
                }
                if el.span().contains(&pos) {
                    return Some(format!("[{i}]"));
                }
            }
            None
        }
        _ => None,
    }
}

struct Resolver<'a> {
    d: Diagnostics<'a>,
    /// False when `[router]` failed to deserialize: checks against its interfaces are skipped.
    router_ok: bool,
    /// False when a tunnel failed to deserialize: "no such tunnel" checks are skipped.
    tunnels_ok: bool,
    /// Every tunnel name written, including tunnels that failed their checks.
    declared: Vec<String>,
}

/// A value with the span it was written at (None: a default).
#[derive(Clone)]
struct Val<T> {
    v: T,
    span: Option<Range<usize>>,
    path: String,
}

fn val<T: Clone>(raw: Option<&S<T>>, default: T, path: String) -> Val<T> {
    match raw {
        Some(s) => Val {
            v: s.get_ref().clone(),
            span: Some(s.span()),
            path,
        },
        None => Val {
            v: default,
            span: None,
            path,
        },
    }
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn join_nets(v: &[IpNet]) -> String {
    v.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Resolver<'_> {
    fn err(&mut self, span: &Range<usize>, path: impl Into<String>, reason: impl Into<String>) {
        self.d.error(span, path, reason);
    }

    /// Reports at the value's own span, or at `fallback` when the value is a default.
    fn err_val<T>(&mut self, v: &Val<T>, fallback: &Range<usize>, reason: impl Into<String>) {
        let span = v.span.clone().unwrap_or_else(|| fallback.clone());
        self.d.error(&span, v.path.clone(), reason);
    }

    fn line_of(&self, span: &Range<usize>) -> usize {
        self.d.loc(span).line
    }

    // ---- scalar checks ----

    /// Seed 000's Terraform rule: only letters, digits and hyphens; `min..=max` characters
    /// (project and environment tags: at most 12; `vpn_name`: 3 to 20).
    fn name(&mut self, s: &S<String>, path: &str, min: usize, max: usize) -> bool {
        let v = s.get_ref();
        let n = v.chars().count();
        if n < min || n > max || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            self.err(
                &s.span(),
                path,
                format!(
                    "`{v}` is not a valid name: use {min} to {max} characters, only letters, digits and hyphens"
                ),
            );
            return false;
        }
        true
    }

    fn ifname(&mut self, s: &S<String>, path: &str) -> bool {
        let v = s.get_ref();
        if v.is_empty()
            || v.len() > 15
            || v == "."
            || v == ".."
            || v.chars()
                .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
        {
            self.err(
                &s.span(),
                path,
                format!(
                    "`{v}` is not a valid Linux interface name (1 to 15 bytes, no '/', ':' or whitespace)"
                ),
            );
            return false;
        }
        true
    }

    fn addr(&mut self, s: &S<String>, path: &str) -> Option<IpAddr> {
        match s.get_ref().trim().parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(
                    &s.span(),
                    path,
                    format!("`{}` is not an IP address", s.get_ref()),
                );
                None
            }
        }
    }

    /// A network prefix; a bare address means a host prefix. Host bits must be zero.
    fn prefix(&mut self, s: &S<String>, path: &str) -> Option<IpNet> {
        let t = s.get_ref().trim();
        let net = if t.contains('/') {
            t.parse::<IpNet>().ok()
        } else {
            t.parse::<IpAddr>().ok().map(IpNet::from)
        };
        let Some(net) = net else {
            self.err(
                &s.span(),
                path,
                format!("`{t}` is not a prefix (like 10.0.0.0/16)"),
            );
            return None;
        };
        if net.trunc() != net {
            self.err(
                &s.span(),
                path,
                format!("`{t}` has host bits set (did you mean {}?)", net.trunc()),
            );
            return None;
        }
        Some(net)
    }

    fn identity(&mut self, raw: &S<RawIdentity>, path: &str) -> Option<Identity> {
        let kind = *raw.get_ref().kind.get_ref();
        let value = &raw.get_ref().value;
        let v = value.get_ref().trim();
        let vpath = format!("{path}.value");
        let bad = |what: &str| format!("`{v}` is not {what}");
        let r = match kind {
            IdType::Ipv4 => v
                .parse()
                .map(Identity::Ipv4)
                .map_err(|_| bad("an IPv4 address")),
            IdType::Ipv6 => v
                .parse()
                .map(Identity::Ipv6)
                .map_err(|_| bad("an IPv6 address")),
            IdType::Fqdn => {
                let ok = !v.is_empty()
                    && v.len() <= 253
                    && v.split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    });
                if ok {
                    Ok(Identity::Fqdn(v.to_string()))
                } else {
                    Err(bad("a fully qualified domain name"))
                }
            }
            IdType::Email => {
                let ok = v
                    .split_once('@')
                    .is_some_and(|(u, h)| !u.is_empty() && !h.is_empty());
                if ok {
                    Ok(Identity::Email(v.to_string()))
                } else {
                    Err(bad("an email address (user@domain)"))
                }
            }
            IdType::KeyId => {
                if v.is_empty() {
                    Err("a key id cannot be empty".to_string())
                } else {
                    Ok(Identity::KeyId(v.to_string()))
                }
            }
        };
        match r {
            Ok(id) => Some(id),
            Err(reason) => {
                self.err(&value.span(), vpath, reason);
                None
            }
        }
    }

    fn auth(&mut self, raw: &S<RawAuth>, path: &str) -> Option<LocalAuth> {
        let entries = raw.get_ref().entries();
        match entries.as_slice() {
            [] => {
                self.err(
                    &raw.span(),
                    path,
                    "set one of psk, rsa_private_key, ecdsa_private_key or ed25519_private_key",
                );
                None
            }
            [(method, field, r)] => Some(self.secret_ref(*method, field, r, path)),
            [_, (_, field, r), ..] => {
                self.err(
                    &r.span(),
                    format!("{path}.{field}"),
                    "set only one of psk, rsa_private_key, ecdsa_private_key or ed25519_private_key",
                );
                None
            }
        }
    }

    fn secret_ref(
        &mut self,
        method: AuthMethod,
        field: &str,
        r: &S<RawSecretRef>,
        path: &str,
    ) -> LocalAuth {
        LocalAuth {
            method,
            secret: SecretRef {
                source: r.get_ref().0.clone(),
                path: format!("{path}.{field}"),
                location: self.d.loc(&r.span()),
            },
        }
    }

    // ---- sections ----

    fn router(&mut self, raw: RawRouter) -> Router {
        self.name(&raw.name, "router.name", 1, 12);
        self.ifname(&raw.wan, "router.wan");
        let mut lan: Vec<String> = Vec::new();
        if raw.lan.get_ref().is_empty() {
            self.err(
                &raw.lan.span(),
                "router.lan",
                "at least one LAN interface is needed",
            );
        }
        for (i, l) in raw.lan.get_ref().iter().enumerate() {
            let path = format!("router.lan[{i}]");
            if !self.ifname(l, &path) {
                continue;
            }
            if l.get_ref() == raw.wan.get_ref() {
                self.err(
                    &l.span(),
                    path,
                    format!(
                        "`{}` is already the WAN interface: an interface is either WAN or LAN",
                        l.get_ref()
                    ),
                );
            } else if lan.contains(l.get_ref()) {
                self.err(
                    &l.span(),
                    path,
                    format!("`{}` is listed twice", l.get_ref()),
                );
            } else {
                lan.push(l.get_ref().clone());
            }
        }
        let wan_public_address = raw
            .wan_public_address
            .as_ref()
            .and_then(|a| self.addr(a, "router.wan_public_address"));
        let identity = match &raw.identity {
            Some(id) => self.identity(id, "router.identity"),
            None => wan_public_address.map(Identity::from_addr),
        };
        let auth = raw.auth.as_ref().and_then(|a| self.auth(a, "router.auth"));
        let workers = raw.workers.as_ref().and_then(|w| {
            let n = *w.get_ref();
            if (1..=crate::model::MAX_WORKERS).contains(&n) {
                Some(n)
            } else {
                self.err(
                    &w.span(),
                    "router.workers",
                    format!(
                        "{n} workers: between 1 and {} (one per receive queue)",
                        crate::model::MAX_WORKERS
                    ),
                );
                None
            }
        });
        Router {
            name: raw.name.into_inner(),
            wan: raw.wan.into_inner(),
            lan,
            wan_public_address,
            identity,
            auth,
            workers,
        }
    }

    fn tunnels(
        &mut self,
        raws: &[(usize, RawTunnel)],
        router: Option<&Router>,
    ) -> Vec<(Tunnel, TunnelSpans)> {
        let mut out: Vec<(Tunnel, TunnelSpans)> = Vec::new();
        let mut names: HashMap<String, Range<usize>> = HashMap::new();
        for (i, raw) in raws {
            let p = format!("tunnel[{i}]");
            if self.name(&raw.name, &format!("{p}.name"), 3, 20) {
                let n = raw.name.get_ref();
                if let Some(first) = names.get(n).cloned() {
                    let line = self.line_of(&first);
                    self.err(
                        &raw.name.span(),
                        format!("{p}.name"),
                        format!("duplicate tunnel name `{n}` (first defined on line {line})"),
                    );
                } else {
                    names.insert(n.clone(), raw.name.span());
                }
            }
            if let Some(t) = self.tunnel(*i, raw, router) {
                out.push(t);
            }
        }
        self.cross_tunnel(&out);
        out
    }

    fn tunnel(
        &mut self,
        i: usize,
        raw: &RawTunnel,
        router: Option<&Router>,
    ) -> Option<(Tunnel, TunnelSpans)> {
        let profile = raw
            .profile
            .as_ref()
            .map(|s| *s.get_ref())
            .filter(|p| *p != Profile::None);
        let cx = TunnelCx {
            p: format!("tunnel[{i}]"),
            here: raw.name.span(),
            aws: profile == Some(Profile::Aws),
            gcp: profile == Some(Profile::Gcp),
            defs: profile::defaults(profile),
        };
        let p = &cx.p;

        let peer = self.addr(&raw.peer, &format!("{p}.peer"));
        let remote_identity = match &raw.remote_identity {
            Some(id) => self.identity(id, &format!("{p}.remote_identity")),
            None => peer.map(Identity::from_addr),
        };
        let ike_version = self.ike_version(&cx, raw);
        let ike_proposals = self.proposals(
            ProposalKind::Ike,
            raw.ike_proposals.as_ref(),
            cx.defs,
            p,
            profile,
        );
        let esp_proposals = self.proposals(
            ProposalKind::Esp,
            raw.esp_proposals.as_ref(),
            cx.defs,
            p,
            profile,
        );
        let lifetimes = self.tunnel_lifetimes(&cx, raw);
        let dpd = self.dpd(&cx, raw);
        let (nat_traversal, force_encap) = self.nat_t(&cx, raw);
        let auth = self.tunnel_auth(&cx, raw, router);
        let traffic = match (&raw.selectors, &raw.inside) {
            (Some(_), Some(ins)) => {
                self.err(
                    &ins.span(),
                    format!("{p}.inside"),
                    "set either selectors (policy-based) or inside (route-based), not both",
                );
                None
            }
            (None, None) => {
                self.err(
                    &cx.here,
                    p.clone(),
                    "set selectors (policy-based) or inside (route-based, 0.0.0.0/0 selectors)",
                );
                None
            }
            (Some(sel), None) => self.selectors(sel, p),
            (None, Some(ins)) => self.inside(ins, p, cx.aws),
        };
        let replay_window = self.replay_window(&cx, raw);
        let (mtu, mss, outer_mtu) = self.sizes(&cx, raw);
        let startup = raw
            .startup
            .as_ref()
            .map_or(Startup::Initiate, |s| *s.get_ref());

        let spans = TunnelSpans {
            index: i,
            name: raw.name.span(),
            selectors: raw.selectors.as_ref().map(|s| s.span()),
            inside: raw.inside.as_ref().map(|s| s.span()),
        };
        Some((
            Tunnel {
                name: raw.name.get_ref().clone(),
                peer: peer?,
                remote_identity: remote_identity?,
                profile,
                ike_version,
                ike_proposals,
                esp_proposals,
                lifetimes,
                dpd,
                nat_traversal,
                force_encap,
                fragmentation: raw.fragmentation.unwrap_or(true),
                auth: auth?,
                peer_public_key: raw
                    .peer_public_key
                    .as_ref()
                    .map(|k| PathBuf::from(k.get_ref())),
                traffic: traffic?,
                replay_window,
                mtu,
                mss,
                outer_mtu,
                startup,
            },
            spans,
        ))
    }

    fn ike_version(&mut self, cx: &TunnelCx, raw: &RawTunnel) -> IkeVersion {
        let p = &cx.p;
        match raw.ike_version.as_ref().map(|v| (*v.get_ref(), v.span())) {
            None | Some((2, _)) => IkeVersion::V2,
            Some((1, span)) => {
                if cx.gcp {
                    self.err(
                        &span,
                        format!("{p}.ike_version"),
                        "GCP HA VPN supports IKEv2 only",
                    );
                }
                IkeVersion::V1
            }
            Some((v, span)) => {
                self.err(
                    &span,
                    format!("{p}.ike_version"),
                    format!("IKE version {v} does not exist (1 or 2)"),
                );
                IkeVersion::V2
            }
        }
    }

    fn tunnel_lifetimes(&mut self, cx: &TunnelCx, raw: &RawTunnel) -> Lifetimes {
        let (p, defs) = (&cx.p, cx.defs);
        let lt = raw.lifetimes.as_ref().map(|l| l.get_ref());
        let lt_span = raw.lifetimes.as_ref().map_or(cx.here.clone(), |l| l.span());
        let ike = val(
            lt.and_then(|l| l.ike.as_ref()),
            Secs(defs.ike_lifetime),
            format!("{p}.lifetimes.ike"),
        );
        let child = val(
            lt.and_then(|l| l.child.as_ref()),
            Secs(defs.child_lifetime),
            format!("{p}.lifetimes.child"),
        );
        let margin = val(
            lt.and_then(|l| l.rekey_margin.as_ref()),
            Secs(defs.rekey_margin),
            format!("{p}.lifetimes.rekey_margin"),
        );
        let fuzz = val(
            lt.and_then(|l| l.rekey_fuzz.as_ref()),
            defs.rekey_fuzz,
            format!("{p}.lifetimes.rekey_fuzz"),
        );
        self.lifetimes(&ike, &child, &margin, &fuzz, &lt_span, cx.aws);
        Lifetimes {
            ike: Duration::from_secs(ike.v.0),
            child: Duration::from_secs(child.v.0),
            rekey_margin: Duration::from_secs(margin.v.0),
            rekey_fuzz_percent: fuzz.v.min(100) as u8,
        }
    }

    fn dpd(&mut self, cx: &TunnelCx, raw: &RawTunnel) -> Dpd {
        let (p, defs) = (&cx.p, cx.defs);
        let dpd_raw = raw.dpd.as_ref().map(|d| d.get_ref());
        let dpd_span = raw.dpd.as_ref().map_or(cx.here.clone(), |d| d.span());
        let delay = val(
            dpd_raw.and_then(|d| d.delay.as_ref()),
            Secs(defs.dpd_delay),
            format!("{p}.dpd.delay"),
        );
        let timeout = val(
            dpd_raw.and_then(|d| d.timeout.as_ref()),
            Secs(defs.dpd_timeout),
            format!("{p}.dpd.timeout"),
        );
        let action = dpd_raw
            .and_then(|d| d.action.as_ref())
            .map_or(defs.dpd_action, |a| *a.get_ref());
        if delay.v.0 == 0 {
            self.err_val(&delay, &dpd_span, "the DPD delay must be at least 1 s");
        }
        if timeout.v.0 <= delay.v.0 {
            self.err_val(
                &timeout,
                &dpd_span,
                format!(
                    "the DPD timeout ({} s) must be longer than the delay ({} s)",
                    timeout.v.0, delay.v.0
                ),
            );
        }
        if cx.aws && timeout.v.0 < profile::AWS_MIN_DPD_TIMEOUT {
            self.err_val(
                &timeout,
                &dpd_span,
                format!(
                    "{} s is below AWS's minimum of {} s",
                    timeout.v.0,
                    profile::AWS_MIN_DPD_TIMEOUT
                ),
            );
        }
        Dpd {
            delay: Duration::from_secs(delay.v.0),
            timeout: Duration::from_secs(timeout.v.0),
            action,
        }
    }

    /// (nat_traversal, force_encap)
    fn nat_t(&mut self, cx: &TunnelCx, raw: &RawTunnel) -> (bool, bool) {
        let nat_traversal = raw.nat_traversal.as_ref().is_none_or(|v| *v.get_ref());
        let force_encap = raw.force_encap.as_ref().is_some_and(|v| *v.get_ref());
        if force_encap && !nat_traversal {
            let span = raw
                .force_encap
                .as_ref()
                .map_or(cx.here.clone(), |v| v.span());
            self.err(
                &span,
                format!("{}.force_encap", cx.p),
                "force_encap needs nat_traversal = true (encapsulation is UDP 4500)",
            );
        }
        (nat_traversal, force_encap)
    }

    /// The tunnel's own `auth`, else the router's; and the peer's public key for key methods.
    fn tunnel_auth(
        &mut self,
        cx: &TunnelCx,
        raw: &RawTunnel,
        router: Option<&Router>,
    ) -> Option<LocalAuth> {
        let p = &cx.p;
        let auth = match (&raw.auth, router.and_then(|r| r.auth.clone())) {
            (Some(a), _) => self.auth(a, &format!("{p}.auth"))?,
            (None, Some(a)) => a,
            (None, None) => {
                if self.router_ok {
                    self.err(
                        &cx.here,
                        p.clone(),
                        format!("no authentication: set {p}.auth or router.auth"),
                    );
                }
                return None;
            }
        };
        if (cx.aws || cx.gcp) && auth.method != AuthMethod::Psk {
            let span = raw.auth.as_ref().map_or(cx.here.clone(), |a| a.span());
            let who = if cx.aws {
                "AWS Site-to-Site VPN"
            } else {
                "GCP HA VPN"
            };
            self.err(
                &span,
                format!("{p}.auth"),
                format!("{who} tunnels authenticate with a pre-shared key (psk)"),
            );
        }
        match (&raw.peer_public_key, auth.method) {
            (None, AuthMethod::Rsa | AuthMethod::Ecdsa | AuthMethod::Ed25519) => {
                self.err(
                    &cx.here,
                    p.clone(),
                    "key authentication needs peer_public_key (the peer's public key file)",
                );
            }
            (Some(k), AuthMethod::Psk) => {
                self.err(
                    &k.span(),
                    format!("{p}.peer_public_key"),
                    "peer_public_key is only used with key authentication, not psk",
                );
            }
            (Some(k), _) if !k.get_ref().starts_with('/') => {
                self.err(
                    &k.span(),
                    format!("{p}.peer_public_key"),
                    format!("`{}` must be an absolute path", k.get_ref()),
                );
            }
            _ => {}
        }
        Some(auth)
    }

    fn replay_window(&mut self, cx: &TunnelCx, raw: &RawTunnel) -> u32 {
        let replay = val(
            raw.replay_window.as_ref(),
            cx.defs.replay_window,
            format!("{}.replay_window", cx.p),
        );
        if replay.v > 65535 {
            self.err_val(
                &replay,
                &cx.here,
                format!("{} packets is above the maximum of 65535", replay.v),
            );
        }
        if cx.aws {
            let (lo, hi) = profile::AWS_REPLAY_WINDOW;
            if replay.v < lo {
                self.err_val(
                    &replay,
                    &cx.here,
                    format!("{} packets is below AWS's minimum of {lo}", replay.v),
                );
            } else if replay.v > hi {
                self.err_val(
                    &replay,
                    &cx.here,
                    format!("{} packets is above AWS's limit of {hi}", replay.v),
                );
            }
        }
        replay.v
    }

    /// (mtu, mss, outer_mtu)
    fn sizes(&mut self, cx: &TunnelCx, raw: &RawTunnel) -> (u16, u16, u16) {
        let (p, defs, here) = (&cx.p, cx.defs, &cx.here);
        let mtu = val(raw.mtu.as_ref(), defs.mtu, format!("{p}.mtu"));
        let mss = val(raw.mss.as_ref(), defs.mss, format!("{p}.mss"));
        let outer = val(
            raw.outer_mtu.as_ref(),
            defs.outer_mtu,
            format!("{p}.outer_mtu"),
        );
        let mut mtu_ok = true;
        for v in [&mtu, &outer] {
            if !(576..=9000).contains(&v.v) {
                self.err_val(v, here, format!("{} is outside 576..=9000", v.v));
                mtu_ok = false;
            }
        }
        if mtu_ok && mtu.v + 50 > outer.v {
            let target = if mtu.span.is_some() { &mtu } else { &outer };
            self.err_val(
                target,
                here,
                format!(
                    "mtu {} leaves no room for ESP under outer_mtu {} (at least 50 bytes of overhead)",
                    mtu.v, outer.v
                ),
            );
        }
        if cx.gcp && outer.v > profile::GCP_MAX_OUTER_MTU {
            self.err_val(
                &outer,
                here,
                format!(
                    "{} is above GCP's gateway MTU of {}",
                    outer.v,
                    profile::GCP_MAX_OUTER_MTU
                ),
            );
        }
        if mtu_ok && (mss.v < 536 || mss.v >= mtu.v) {
            let target = if mss.span.is_some() { &mss } else { &mtu };
            self.err_val(
                target,
                here,
                format!(
                    "MSS {} must be at least 536 and below the MTU ({})",
                    mss.v, mtu.v
                ),
            );
        }
        let clamp = |v: u32| v.min(9000) as u16;
        (clamp(mtu.v), clamp(mss.v), clamp(outer.v))
    }

    fn proposals(
        &mut self,
        kind: ProposalKind,
        raw: Option<&S<Vec<S<RawProposal>>>>,
        defs: &Defaults,
        p: &str,
        profile: Option<Profile>,
    ) -> Vec<Proposal> {
        let field = match kind {
            ProposalKind::Ike => "ike_proposals",
            ProposalKind::Esp => "esp_proposals",
        };
        let Some(raw) = raw else {
            return (match kind {
                ProposalKind::Ike => defs.ike_proposals,
                ProposalKind::Esp => defs.esp_proposals,
            })
            .iter()
            .map(|s| Proposal::parse(kind, s).expect("built-in proposals parse"))
            .collect();
        };
        if raw.get_ref().is_empty() {
            self.err(
                &raw.span(),
                format!("{p}.{field}"),
                "at least one proposal is needed",
            );
        }
        let mut out = Vec::new();
        for (j, s) in raw.get_ref().iter().enumerate() {
            let path = format!("{p}.{field}[{j}]");
            match Proposal::parse(kind, &s.get_ref().0) {
                Err(reason) => self.err(&s.span(), path, reason),
                Ok(prop) => {
                    let refused = match profile {
                        Some(Profile::Aws) => profile::aws_refuses(kind, &prop),
                        Some(Profile::Gcp) => profile::gcp_refuses(&prop),
                        _ => None,
                    };
                    if let Some(reason) = refused {
                        self.err(&s.span(), path, reason);
                    }
                    out.push(prop);
                }
            }
        }
        out
    }

    fn lifetimes(
        &mut self,
        ike: &Val<Secs>,
        child: &Val<Secs>,
        margin: &Val<Secs>,
        fuzz: &Val<u32>,
        fallback: &Range<usize>,
        aws: bool,
    ) {
        let (i, c, m) = (ike.v.0, child.v.0, margin.v.0);
        let mut ok = true;
        for v in [ike, child] {
            if v.v.0 == 0 {
                self.err_val(v, fallback, "a lifetime must be longer than 0 s");
                ok = false;
            }
        }
        if aws {
            for (v, (lo, hi)) in [
                (ike, profile::AWS_IKE_LIFETIME),
                (child, profile::AWS_CHILD_LIFETIME),
            ] {
                if v.v.0 < lo {
                    self.err_val(
                        v,
                        fallback,
                        format!("{} s is below AWS's minimum of {lo} s", v.v.0),
                    );
                    ok = false;
                } else if v.v.0 > hi {
                    self.err_val(
                        v,
                        fallback,
                        format!("{} s is above AWS's limit of {hi} s", v.v.0),
                    );
                    ok = false;
                }
            }
            if ok && c >= i {
                let target = if child.span.is_some() { child } else { ike };
                self.err_val(
                    target,
                    fallback,
                    format!("AWS needs the CHILD lifetime ({c} s) below the IKE lifetime ({i} s)"),
                );
            }
            if m < profile::AWS_MIN_REKEY_MARGIN {
                self.err_val(
                    margin,
                    fallback,
                    format!(
                        "{m} s is below AWS's minimum of {} s",
                        profile::AWS_MIN_REKEY_MARGIN
                    ),
                );
                ok = false;
            } else if ok && m > c / 2 {
                self.err_val(
                    margin,
                    fallback,
                    format!(
                        "{m} s is above half the CHILD lifetime ({} s), AWS's limit",
                        c / 2
                    ),
                );
                ok = false;
            }
        }
        if ok && (m >= c || m >= i) {
            let target = if margin.span.is_some() {
                margin
            } else if child.span.is_some() {
                child
            } else {
                ike
            };
            self.err_val(
                target,
                fallback,
                format!(
                    "the rekey margin ({m} s) must be shorter than the IKE ({i} s) and CHILD ({c} s) lifetimes"
                ),
            );
        }
        if fuzz.v > 100 {
            self.err_val(fuzz, fallback, format!("{} % is above 100 %", fuzz.v));
        }
    }

    fn selectors(&mut self, sel: &S<RawSelectors>, p: &str) -> Option<TrafficMode> {
        let s = sel.get_ref();
        let mut ok = true;
        let mut sides: Vec<Vec<IpNet>> = Vec::new();
        for (side, list) in [("local", &s.local), ("remote", &s.remote)] {
            let path = format!("{p}.selectors.{side}");
            if list.get_ref().is_empty() {
                self.err(&list.span(), path.clone(), "at least one prefix is needed");
                ok = false;
            }
            let mut nets = Vec::new();
            for (j, item) in list.get_ref().iter().enumerate() {
                match self.prefix(item, &format!("{path}[{j}]")) {
                    Some(n) => nets.push(n),
                    None => ok = false,
                }
            }
            sides.push(nets);
        }
        let remote = sides.pop().unwrap_or_default();
        let local = sides.pop().unwrap_or_default();
        // A default route on either side is a full tunnel (`remote = ["0.0.0.0/0"]`), not a
        // mistake; other overlaps between the local and remote side are.
        for (j, r) in remote.iter().enumerate() {
            if r.prefix_len() == 0 {
                continue;
            }
            if let Some(l) = local.iter().find(|l| l.prefix_len() != 0 && overlaps(l, r)) {
                let span = s.remote.get_ref()[j].span();
                self.err(
                    &span,
                    format!("{p}.selectors.remote[{j}]"),
                    format!(
                        "{r} overlaps the local selector {l}: traffic would loop into the tunnel"
                    ),
                );
                ok = false;
            }
        }
        ok.then_some(TrafficMode::Policy { local, remote })
    }

    fn inside(&mut self, ins: &S<RawInside>, p: &str, aws: bool) -> Option<TrafficMode> {
        let r = ins.get_ref();
        let lpath = format!("{p}.inside.local");
        let rpath = format!("{p}.inside.remote");
        let Ok(local) = r.local.get_ref().trim().parse::<IpNet>() else {
            self.err(
                &r.local.span(),
                lpath,
                format!(
                    "`{}` is not an address with its prefix length (like 169.254.10.2/30)",
                    r.local.get_ref()
                ),
            );
            return None;
        };
        let remote = self.addr(&r.remote, &rpath)?;
        let ok_len = match local {
            IpNet::V4(n) => n.prefix_len() == 30 || (!aws && n.prefix_len() == 31),
            IpNet::V6(n) => n.prefix_len() == 126 || (!aws && n.prefix_len() == 127),
        };
        if !ok_len {
            let want = if aws {
                "a /30 (IPv4) or /126 (IPv6)"
            } else {
                "a /30 or /31 (IPv4) or /126 or /127 (IPv6)"
            };
            self.err(
                &r.local.span(),
                lpath,
                format!("the inside network {} must be {want}", local.trunc()),
            );
            return None;
        }
        let p2p = matches!(local, IpNet::V4(n) if n.prefix_len() == 31)
            || matches!(local, IpNet::V6(n) if n.prefix_len() == 127);
        let unusable = |a: IpAddr| !p2p && (a == local.network() || a == local.broadcast());
        if unusable(local.addr()) {
            self.err(
                &r.local.span(),
                lpath,
                format!(
                    "{} is the network or broadcast address of {}",
                    local.addr(),
                    local.trunc()
                ),
            );
            return None;
        }
        if !local.contains(&remote) || remote == local.addr() || unusable(remote) {
            self.err(
                &r.remote.span(),
                rpath,
                format!(
                    "{remote} must be the other usable address of {} (ours is {})",
                    local.trunc(),
                    local.addr()
                ),
            );
            return None;
        }
        if aws {
            match local {
                IpNet::V4(n) => {
                    let link_local: ipnet::Ipv4Net = "169.254.0.0/16".parse().expect("literal");
                    if !link_local.contains(&n.network()) {
                        self.err(
                            &r.local.span(),
                            lpath,
                            format!(
                                "AWS inside CIDRs come from 169.254.0.0/16, not {}",
                                n.trunc()
                            ),
                        );
                        return None;
                    }
                    if profile::aws_reserved_inside().contains(&n.trunc()) {
                        self.err(
                            &r.local.span(),
                            lpath,
                            format!("{} is one of AWS's reserved inside CIDRs", n.trunc()),
                        );
                        return None;
                    }
                }
                IpNet::V6(n) => {
                    let ula: ipnet::Ipv6Net = "fd00::/8".parse().expect("literal");
                    if !ula.contains(&n.network()) {
                        self.err(
                            &r.local.span(),
                            lpath,
                            format!(
                                "AWS IPv6 inside CIDRs come from fd00::/8, not {}",
                                n.trunc()
                            ),
                        );
                        return None;
                    }
                }
            }
        }
        Some(TrafficMode::Route {
            inside_local: local,
            inside_remote: remote,
        })
    }

    /// Checks between tunnels: inside networks must not overlap; policy selector pairs must
    /// not partly overlap (identical pairs are an active/standby pair, decided by routes).
    fn cross_tunnel(&mut self, ts: &[(Tunnel, TunnelSpans)]) {
        for (j, (tj, sj)) in ts.iter().enumerate() {
            for (ti, si) in &ts[..j] {
                match (&ti.traffic, &tj.traffic) {
                    (
                        TrafficMode::Route {
                            inside_local: a, ..
                        },
                        TrafficMode::Route {
                            inside_local: b, ..
                        },
                    ) if overlaps(&a.trunc(), &b.trunc()) => {
                        let line = self.line_of(si.inside.as_ref().unwrap_or(&si.name));
                        let span = sj.inside.clone().unwrap_or(sj.name.clone());
                        let idx = sj.index;
                        self.err(
                            &span,
                            format!("tunnel[{idx}].inside.local"),
                            format!(
                                "inside network {} overlaps tunnel `{}`'s {} (line {line})",
                                b.trunc(),
                                ti.name,
                                a.trunc()
                            ),
                        );
                    }
                    (
                        TrafficMode::Policy {
                            local: li,
                            remote: ri,
                        },
                        TrafficMode::Policy {
                            local: lj,
                            remote: rj,
                        },
                    ) => {
                        let identical = li == lj && ri == rj;
                        let conflict = !identical
                            && li.iter().any(|a| lj.iter().any(|b| overlaps(a, b)))
                            && ri.iter().any(|a| rj.iter().any(|b| overlaps(a, b)));
                        if conflict {
                            let line = self.line_of(si.selectors.as_ref().unwrap_or(&si.name));
                            let span = sj.selectors.clone().unwrap_or(sj.name.clone());
                            let idx = sj.index;
                            self.err(
                                &span,
                                format!("tunnel[{idx}].selectors"),
                                format!(
                                    "{} === {} partly overlaps tunnel `{}`'s {} === {} (line {line}): traffic in the overlap matches two policies (identical selectors are allowed as an active/standby pair)",
                                    join_nets(lj),
                                    join_nets(rj),
                                    ti.name,
                                    join_nets(li),
                                    join_nets(ri)
                                ),
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn routes(
        &mut self,
        raws: &[(usize, RawRoute)],
        tunnels: &[(Tunnel, TunnelSpans)],
    ) -> Vec<Route> {
        let mut out: Vec<(Route, Range<usize>)> = Vec::new();
        for (i, raw) in raws {
            let p = format!("route[{i}]");
            let prefix = self.prefix(&raw.prefix, &format!("{p}.prefix"));
            let name = raw.tunnel.get_ref();
            let tunnel = tunnels.iter().map(|(t, _)| t).find(|t| &t.name == name);
            if !self.declared.contains(name) && self.tunnels_ok {
                let known: Vec<&str> = self.declared.iter().map(String::as_str).collect();
                self.err(
                    &raw.tunnel.span(),
                    format!("{p}.tunnel"),
                    format!(
                        "no tunnel named `{name}` (tunnels: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
            }
            let priority = raw
                .priority
                .as_ref()
                .map_or(DEFAULT_ROUTE_PRIORITY, |v| *v.get_ref());
            let Some(prefix) = prefix else { continue };
            if tunnel.is_none() {
                continue;
            }
            if let Some(TrafficMode::Policy { remote, .. }) = tunnel.map(|t| &t.traffic)
                && !remote.iter().any(|r| r.contains(&prefix))
            {
                self.err(
                    &raw.prefix.span(),
                    format!("{p}.prefix"),
                    format!(
                        "{prefix} is outside tunnel `{name}`'s remote selectors ({}): its traffic would match no SA",
                        join_nets(remote)
                    ),
                );
            }
            let span = raw.prefix.span();
            if let Some((prev, pspan)) = out
                .iter()
                .find(|(r, _)| r.prefix == prefix && (r.tunnel == *name || r.priority == priority))
            {
                let line = self.line_of(pspan);
                let reason = if prev.tunnel == *name {
                    format!("duplicate route {prefix} via `{name}` (line {line})")
                } else {
                    format!(
                        "{prefix} already goes to tunnel `{}` with priority {priority} (line {line}): give the standby route a different priority",
                        prev.tunnel
                    )
                };
                self.err(&span, format!("{p}.prefix"), reason);
            }
            out.push((
                Route {
                    prefix,
                    tunnel: name.clone(),
                    priority,
                },
                span,
            ));
        }
        out.into_iter().map(|(r, _)| r).collect()
    }

    fn nats(&mut self, raws: &[(usize, RawNat)], ifaces: Option<&[String]>) -> Vec<NatRule> {
        let mut out = Vec::new();
        for (i, raw) in raws {
            let p = format!("nat[{i}]");
            let from = self.prefix(&raw.from, &format!("{p}.from"));
            if raw.to.get_ref().is_empty() {
                self.err(
                    &raw.to.span(),
                    format!("{p}.to"),
                    "at least one destination prefix is needed",
                );
            }
            let mut to = Vec::new();
            for (j, t) in raw.to.get_ref().iter().enumerate() {
                let path = format!("{p}.to[{j}]");
                if let Some(n) = self.prefix(t, &path) {
                    if let Some(f) = from
                        && (f.addr().is_ipv4() != n.addr().is_ipv4())
                    {
                        self.err(
                            &t.span(),
                            path,
                            format!("{n} and the source {f} are of different address families"),
                        );
                        continue;
                    }
                    to.push(n);
                }
            }
            if let Some(ifs) = ifaces
                && self.router_ok
                && !ifs.contains(raw.out.get_ref())
            {
                self.err(
                    &raw.out.span(),
                    format!("{p}.out"),
                    format!(
                        "`{}` is neither the WAN nor a LAN interface ({})",
                        raw.out.get_ref(),
                        ifs.join(", ")
                    ),
                );
            }
            if let Some(from) = from {
                out.push(NatRule {
                    action: raw
                        .action
                        .as_ref()
                        .map_or(NatAction::Masquerade, |a| *a.get_ref()),
                    from,
                    to,
                    out: raw.out.get_ref().clone(),
                });
            }
        }
        out
    }

    fn sysctl(
        &mut self,
        raw: Option<RawSysctl>,
        ifaces: Option<&[String]>,
        has_tunnels: bool,
    ) -> SysctlPolicy {
        let mut pol = SysctlPolicy {
            manage: true,
            ip_forward: true,
            rp_filter: BTreeMap::from([("all".to_string(), 2)]),
            send_redirects: false,
            accept_redirects: false,
            secure_redirects: false,
            accept_source_route: false,
            tcp_mtu_probing: 1,
            restore_on_exit: true,
        };
        let Some(raw) = raw else { return pol };
        pol.manage = raw.manage.unwrap_or(true);
        if let Some(f) = &raw.ip_forward {
            pol.ip_forward = *f.get_ref();
            if pol.manage && !pol.ip_forward && has_tunnels {
                self.err(
                    &f.span(),
                    "sysctl.ip_forward",
                    "a VPN router must forward: ip_forward = false would drop all tunnel traffic (set manage = false to leave sysctls alone)",
                );
            }
        }
        if let Some(rp) = &raw.rp_filter {
            pol.rp_filter.clear();
            for (k, v) in rp.get_ref() {
                let path = format!("sysctl.rp_filter.{}", k.get_ref());
                let known = k.get_ref() == "all"
                    || k.get_ref() == "default"
                    || ifaces.is_none_or(|ifs| ifs.contains(k.get_ref()))
                    || !self.router_ok;
                if !known {
                    self.err(
                        &k.span(),
                        path.clone(),
                        format!(
                            "`{}` is not `all`, `default`, the WAN or a LAN interface",
                            k.get_ref()
                        ),
                    );
                }
                if *v.get_ref() > 2 {
                    self.err(
                        &v.span(),
                        path,
                        format!("{} is not 0 (off), 1 (strict) or 2 (loose)", v.get_ref()),
                    );
                    continue;
                }
                pol.rp_filter.insert(k.get_ref().clone(), *v.get_ref());
            }
            // The kernel uses max(all, interface): a lower interface value has no effect.
            if let Some(all) = pol.rp_filter.get("all").copied() {
                for (k, v) in rp.get_ref() {
                    let name = k.get_ref();
                    if name != "all" && name != "default" && *v.get_ref() < all {
                        self.err(
                            &v.span(),
                            format!("sysctl.rp_filter.{name}"),
                            format!(
                                "{} has no effect while all = {all}: the kernel uses the higher of the two",
                                v.get_ref()
                            ),
                        );
                    }
                }
            }
        }
        if let Some(t) = &raw.tcp_mtu_probing {
            if *t.get_ref() > 2 {
                self.err(
                    &t.span(),
                    "sysctl.tcp_mtu_probing",
                    format!("{} is not 0, 1 or 2", t.get_ref()),
                );
            }
            pol.tcp_mtu_probing = *t.get_ref();
        }
        pol.send_redirects = raw.send_redirects.unwrap_or(false);
        pol.accept_redirects = raw.accept_redirects.unwrap_or(false);
        pol.secure_redirects = raw.secure_redirects.unwrap_or(false);
        pol.accept_source_route = raw.accept_source_route.unwrap_or(false);
        pol.restore_on_exit = raw.restore_on_exit.unwrap_or(true);
        pol
    }
}

/// What every check of one tunnel needs to know.
struct TunnelCx {
    /// `tunnel[i]`
    p: String,
    /// The tunnel's name: where errors about the whole tunnel, or about defaults, point.
    here: Range<usize>,
    aws: bool,
    gcp: bool,
    defs: &'static Defaults,
}

/// Where a tunnel's parts were written, for cross-tunnel errors.
pub(crate) struct TunnelSpans {
    index: usize,
    name: Range<usize>,
    selectors: Option<Range<usize>>,
    inside: Option<Range<usize>>,
}
