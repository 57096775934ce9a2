//! What the IKE thread publishes about its SAs for `vpn-agent status`, and how status prints
//! it: in the shape of strongSwan's `ipsec status` / `swanctl --list-sas`, which the seeds'
//! operators already read.

use std::{
    fmt::Write as _,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use vpn_ike::{SaState, config::TrafficSelector, info::IkeSaInfo};

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct IkeReport {
    pub ike_sas: Vec<IkeSaReport>,
    /// Since the agent started, by tunnel.
    #[serde(default)]
    pub tunnels: std::collections::BTreeMap<String, TunnelEvents>,
}

/// What happened to a tunnel's SAs since the agent started.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct TunnelEvents {
    /// CHILD_SAs replaced by a rekey.
    pub child_rekeys: u64,
    /// IKE SAs that ended, by reason (`DeadPeer` is DPD).
    pub ike_sa_closed: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IkeSaReport {
    pub tunnel: String,
    /// CONNECTING, ESTABLISHED, ...
    pub state: String,
    /// Unix time the SA was established.
    pub established_at: Option<u64>,
    pub local: String,
    pub remote: String,
    pub spi_i: String,
    pub spi_r: String,
    pub initiator: bool,
    pub nat_detected: bool,
    pub algorithms: Option<String>,
    pub child_sas: Vec<ChildSaReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildSaReport {
    pub spi_in: u32,
    pub spi_out: u32,
    /// ESP in UDP (RFC 3948) rather than raw ESP.
    pub udp_encap: bool,
    pub algorithms: String,
    pub local_ts: Vec<String>,
    pub remote_ts: Vec<String>,
    /// Unix times of the planned rekey and of the expiry.
    pub rekey_at: u64,
    pub expire_at: u64,
    pub rekeying: bool,
}

fn unix(at: Instant, now: Instant, wall: SystemTime) -> u64 {
    let t = if at >= now {
        wall + (at - now)
    } else {
        wall - (now - at)
    };
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn selector(ts: &TrafficSelector) -> String {
    let range = match (ts.start, ts.end) {
        (std::net::IpAddr::V4(s), std::net::IpAddr::V4(e)) => {
            let span = u32::from(e).wrapping_sub(u32::from(s));
            if span.wrapping_add(1).is_power_of_two() && u32::from(s) & span == 0 {
                format!("{s}/{}", 32 - span.wrapping_add(1).trailing_zeros().min(32))
            } else if span == u32::MAX {
                format!("{s}/0")
            } else {
                format!("{s}..{e}")
            }
        }
        (s, e) => format!("{s}..{e}"),
    };
    match (ts.protocol, ts.start_port, ts.end_port) {
        (0, 0, 65535) => range,
        (p, s, e) if s == e => format!("{range}[{p}/{s}]"),
        (p, s, e) => format!("{range}[{p}/{s}-{e}]"),
    }
}

impl IkeSaReport {
    /// The report of `sa`, which belongs to `tunnel` and was established at `established`.
    pub fn new(tunnel: String, sa: &IkeSaInfo, established: Option<SystemTime>) -> Self {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let state = match sa.state {
            SaState::Idle | SaState::Init | SaState::Auth => "CONNECTING",
            SaState::Established => "ESTABLISHED",
            SaState::Closed => "DELETING",
        };
        IkeSaReport {
            tunnel,
            state: state.to_owned(),
            established_at: established
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
            local: sa.local.to_string(),
            remote: sa.remote.to_string(),
            spi_i: sa.spi_i.to_string(),
            spi_r: sa.spi_r.to_string(),
            initiator: sa.initiator,
            nat_detected: sa.nat_detected,
            algorithms: sa.algorithms.clone(),
            child_sas: sa
                .children
                .iter()
                .map(|c| ChildSaReport {
                    spi_in: c.spi_in,
                    spi_out: c.spi_out,
                    udp_encap: sa.udp_encap,
                    algorithms: c.algorithms.clone(),
                    local_ts: c.local_ts.iter().map(selector).collect(),
                    remote_ts: c.remote_ts.iter().map(selector).collect(),
                    rekey_at: unix(c.rekey_at, now, wall),
                    expire_at: unix(c.expire_at, now, wall),
                    rekeying: c.rekeying,
                })
                .collect(),
        }
    }
}

/// "12 seconds", "3 minutes", "2 hours", as strongSwan words durations.
fn words(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        0..120 => (s, "second"),
        120..7200 => (s / 60, "minute"),
        _ => (s / 3600, "hour"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

impl IkeReport {
    /// `Security Associations (N up, M connecting):` and two lines per IKE SA and CHILD_SA.
    pub fn render(&self, out: &mut String) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let up = self
            .ike_sas
            .iter()
            .filter(|s| s.state == "ESTABLISHED")
            .count();
        let _ = writeln!(
            out,
            "\nSecurity Associations ({up} up, {} connecting):",
            self.ike_sas.len() - up
        );
        for (i, sa) in self.ike_sas.iter().enumerate() {
            let (name, n) = (&sa.tunnel, i + 1);
            let since = sa
                .established_at
                .map(|t| format!(" {} ago", words(Duration::from_secs(now.saturating_sub(t)))))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{name}[{n}]: {}{since}, {}...{}",
                sa.state, sa.local, sa.remote
            );
            let (mark_i, mark_r) = if sa.initiator { ("*", "") } else { ("", "*") };
            let _ = writeln!(
                out,
                "{name}[{n}]: IKEv2 SPIs: {}_i{mark_i} {}_r{mark_r}{}{}",
                sa.spi_i,
                sa.spi_r,
                sa.algorithms
                    .as_ref()
                    .map(|a| format!(", {a}"))
                    .unwrap_or_default(),
                if sa.nat_detected {
                    ", NAT detected"
                } else {
                    ""
                }
            );
            for (j, c) in sa.child_sas.iter().enumerate() {
                let encap = if c.udp_encap { "ESP in UDP" } else { "ESP" };
                let timer = if c.rekeying {
                    "rekeying".to_owned()
                } else {
                    format!(
                        "rekeying in {}",
                        words(Duration::from_secs(c.rekey_at.saturating_sub(now)))
                    )
                };
                let _ = writeln!(
                    out,
                    "{name}{{{}}}: INSTALLED, TUNNEL, {encap} SPIs: {:08x}_i {:08x}_o, {}, {timer}",
                    j + 1,
                    c.spi_in,
                    c.spi_out,
                    c.algorithms
                );
                let _ = writeln!(
                    out,
                    "{name}{{{}}}: {} === {}",
                    j + 1,
                    c.local_ts.join(" "),
                    c.remote_ts.join(" ")
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(start: [u8; 4], end: [u8; 4]) -> TrafficSelector {
        TrafficSelector {
            protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: start.into(),
            end: end.into(),
        }
    }

    #[test]
    fn selectors_print_as_prefixes_where_they_are_one() {
        assert_eq!(selector(&ts([10, 1, 0, 0], [10, 1, 0, 255])), "10.1.0.0/24");
        assert_eq!(
            selector(&ts([0, 0, 0, 0], [255, 255, 255, 255])),
            "0.0.0.0/0"
        );
        assert_eq!(selector(&ts([10, 1, 0, 7], [10, 1, 0, 7])), "10.1.0.7/32");
        assert_eq!(
            selector(&ts([10, 1, 0, 1], [10, 1, 0, 200])),
            "10.1.0.1..10.1.0.200"
        );
    }

    #[test]
    fn renders_like_ipsec_status() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let report = IkeReport {
            tunnels: Default::default(),
            ike_sas: vec![IkeSaReport {
                tunnel: "to-site-b".into(),
                state: "ESTABLISHED".into(),
                established_at: Some(now - 5),
                local: "198.51.100.1:500".into(),
                remote: "198.51.100.2:500".into(),
                spi_i: "3ba288d62f8ba9b4".into(),
                spi_r: "4e6676548aa1918b".into(),
                initiator: true,
                nat_detected: false,
                algorithms: Some("AES_GCM_16-256/PRF_HMAC_SHA2_256/MODP_2048".into()),
                child_sas: vec![ChildSaReport {
                    spi_in: 0xc4f9d261,
                    spi_out: 0xcbef13fc,
                    udp_encap: true,
                    algorithms: "AES_GCM_16-256".into(),
                    local_ts: vec!["10.1.0.0/24".into()],
                    remote_ts: vec!["10.2.0.0/24".into()],
                    rekey_at: now + 3000,
                    expire_at: now + 3600,
                    rekeying: false,
                }],
            }],
        };
        let mut out = String::new();
        report.render(&mut out);
        assert!(
            out.contains("Security Associations (1 up, 0 connecting):"),
            "{out}"
        );
        assert!(
            out.contains(
                "to-site-b[1]: ESTABLISHED 5 seconds ago, 198.51.100.1:500...198.51.100.2:500"
            ),
            "{out}"
        );
        assert!(
            out.contains("to-site-b{1}: INSTALLED, TUNNEL, ESP in UDP SPIs: c4f9d261_i cbef13fc_o, AES_GCM_16-256, rekeying in 50 minutes"),
            "{out}"
        );
        assert!(
            out.contains("to-site-b{1}: 10.1.0.0/24 === 10.2.0.0/24"),
            "{out}"
        );
    }
}
