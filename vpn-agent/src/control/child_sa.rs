//! CHILD_SAs negotiated by the IKE engine, turned into what the datapath installs: per tunnel,
//! one outbound SA and the inbound SAs of every CHILD_SA still alive (two while a rekey
//! overlaps, RFC 7296 2.8), which `TunnelRuntime::apply` installs make-before-break.
//!
//! A rekey's replacement sends only once the SA it replaces is deleted. Both sides then know it
//! is safe: the rekey's responder installed the new inbound SA before answering, its initiator
//! before asking to delete the old pair (the IKE driver acknowledges every installation before
//! the engine's next datagram leaves), so neither switches to an SA the other cannot open yet.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;
use vpn_esp::{AeadKey, ReplayWindowSize, SaParams, Salt, Spi, TunnelEndpoints, UdpEncap};
use vpn_ike::{ChildSaInstalled, config::TrafficSelector};
use vpn_ike_crypto::{ike_cipher::EncrAlgorithm, keys::EspKeys};

use crate::datapath::{
    sa_table::Lifetime,
    static_tunnels::{EncapsulationSpec, StaticTunnel},
    tunnels::RoutePlan,
};

/// Why a negotiated CHILD_SA cannot go into the datapath.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChildSaError {
    #[error("tunnel `{tunnel}`: the datapath does ESP with AES-GCM-16 only, not {algorithm}")]
    NotAesGcm { tunnel: String, algorithm: String },
    #[error("tunnel `{tunnel}`: the datapath does IPv4 outer addresses only")]
    NotIpv4 { tunnel: String },
    #[error("tunnel `{tunnel}`: traffic selector {start}-{end} is not one IPv4 prefix")]
    SelectorNotPrefix {
        tunnel: String,
        start: IpAddr,
        end: IpAddr,
    },
    #[error("tunnel `{tunnel}`: {what}")]
    Invalid { tunnel: String, what: String },
}

/// What the configuration says about a tunnel's datapath, beside what IKE negotiates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelSettings {
    pub name: String,
    /// `[[route]]`s into the tunnel, with their priority (lower wins).
    pub routes: Vec<(Ipv4Net, u32)>,
    /// The configured remote selectors of a policy tunnel (empty when route-based): where its
    /// traffic is dropped while it is down.
    pub remote_selectors: Vec<Ipv4Net>,
    pub mtu: u16,
    pub mss: u16,
}

/// Routes for tunnels given as (name, up, candidate prefixes with priorities): each prefix goes
/// to the tunnel with the lowest priority among those up (active/standby pairs fail over and
/// back by priority), or nowhere (`None`: dropped) while none is.
pub fn choose_routes<'a>(
    tunnels: impl IntoIterator<Item = (&'a str, bool, Vec<(Ipv4Net, u32)>)>,
) -> RoutePlan {
    let mut best: std::collections::BTreeMap<Ipv4Net, Option<(u32, &str)>> = Default::default();
    for (name, up, candidates) in tunnels {
        for (prefix, priority) in candidates {
            let entry = best.entry(prefix).or_insert(None);
            if up && entry.is_none_or(|(p, _)| priority < p) {
                *entry = Some((priority, name));
            }
        }
    }
    best.into_iter()
        .map(|(prefix, b)| (prefix, b.map(|(_, name)| name.to_owned())))
        .collect()
}

/// One negotiated CHILD_SA, ready for the datapath.
struct Child {
    spi_in: u32,
    spi_out: u32,
    local: Ipv4Addr,
    peer: Ipv4Addr,
    udp: bool,
    local_ts: Vec<Ipv4Net>,
    remote_ts: Vec<Ipv4Net>,
    inbound: SaParams,
    outbound: SaParams,
    /// The inbound SPI of the CHILD_SA this one replaces (a rekey).
    replaces: Option<u32>,
}

impl Child {
    /// 0.0.0.0/0 selectors: routing alone picks the tunnel (AWS style).
    fn route_based(&self) -> bool {
        self.remote_ts.contains(&Ipv4Net::default())
    }
}

/// The CHILD_SAs of one tunnel.
pub struct TunnelSas {
    settings: TunnelSettings,
    /// Oldest first.
    children: Vec<Child>,
}

impl TunnelSas {
    pub fn new(settings: TunnelSettings) -> Self {
        TunnelSas {
            settings,
            children: Vec::new(),
        }
    }

    /// A CHILD_SA was installed: new, or a rekey's replacement, which is accepted from now on
    /// and sends once the SA it replaces is deleted.
    pub fn installed(&mut self, child: &ChildSaInstalled) -> Result<(), ChildSaError> {
        let name = &self.settings.name;
        let ipv4 = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => Ok(v4),
            IpAddr::V6(_) => Err(ChildSaError::NotIpv4 {
                tunnel: name.clone(),
            }),
        };
        let local = ipv4(child.local_addr.ip())?;
        let peer = ipv4(child.remote_addr.ip())?;
        let encap = child.udp_encap.map(|u| (u.local_port, u.remote_port));
        let outbound = esp_params(
            name,
            child,
            &child.keys_out,
            child.spi_out,
            (local, peer),
            encap,
        )?;
        // Inbound packets come from the peer's port to ours.
        let inbound = esp_params(
            name,
            child,
            &child.keys_in,
            child.spi_in,
            (peer, local),
            encap.map(|(l, r)| (r, l)),
        )?;
        self.children.retain(|c| c.spi_in != child.spi_in);
        self.children.push(Child {
            spi_in: child.spi_in,
            spi_out: child.spi_out,
            local,
            peer,
            udp: encap.is_some(),
            local_ts: prefixes(name, &child.local_ts)?,
            remote_ts: prefixes(name, &child.remote_ts)?,
            inbound,
            outbound,
            replaces: child.rekeyed_from,
        });
        Ok(())
    }

    /// A CHILD_SA was deleted (rekeyed away, or closed).
    pub fn deleted(&mut self, spi_in: u32) {
        self.children.retain(|c| c.spi_in != spi_in);
    }

    /// The tunnel as the datapath should run it now; `None` without a CHILD_SA. A route-based
    /// tunnel's routes are not in it: [`TunnelSas::route_candidates`] gives them.
    pub fn wanted(&self) -> Option<StaticTunnel> {
        let sending = self.sender()?;
        let route_based = sending.route_based();
        Some(StaticTunnel {
            name: self.settings.name.clone(),
            local_address: sending.local,
            peer_address: sending.peer,
            encapsulation: if sending.udp {
                EncapsulationSpec::Udp
            } else {
                EncapsulationSpec::Esp
            },
            local_prefixes: if route_based {
                Vec::new()
            } else {
                sending.local_ts.clone()
            },
            remote_prefixes: if route_based {
                Vec::new()
            } else {
                sending.remote_ts.clone()
            },
            route_based,
            mtu: self.settings.mtu,
            mss: self.settings.mss,
            // The IKE engine rekeys before, and deletes at, the CHILD_SA's lifetime.
            lifetime: Lifetime::default(),
            outbound: sending.outbound.clone(),
            inbound: self.children.iter().map(|c| c.inbound.clone()).collect(),
        })
    }

    /// New settings from a reloaded configuration (routes, MTU); the SAs stay.
    pub fn set_settings(&mut self, settings: TunnelSettings) {
        self.settings = settings;
    }

    /// Whether the tunnel has a CHILD_SA to send with.
    pub fn is_up(&self) -> bool {
        self.sender().is_some()
    }

    /// The prefixes this tunnel can carry, with their priority: the configured routes, and a
    /// policy tunnel's selectors (the negotiated ones while it is up).
    pub fn route_candidates(&self) -> Vec<(Ipv4Net, u32)> {
        let mut candidates = self.settings.routes.clone();
        let selectors = match self.sender() {
            Some(c) if c.route_based() => Vec::new(),
            Some(c) => c.remote_ts.clone(),
            None => self.settings.remote_selectors.clone(),
        };
        for prefix in selectors {
            if !candidates.iter().any(|(p, _)| *p == prefix) {
                candidates.push((prefix, vpn_config::DEFAULT_ROUTE_PRIORITY));
            }
        }
        candidates
    }

    /// The CHILD_SA that sends: the newest one that is not waiting for its predecessor's
    /// deletion.
    fn sender(&self) -> Option<&Child> {
        let alive = |spi: u32| self.children.iter().any(|c| c.spi_in == spi);
        self.children
            .iter()
            .rev()
            .find(|c| !c.replaces.is_some_and(alive))
            .or(self.children.first())
    }

    pub fn spis(&self) -> Vec<(u32, u32)> {
        self.children
            .iter()
            .map(|c| (c.spi_in, c.spi_out))
            .collect()
    }
}

fn esp_params(
    tunnel: &str,
    child: &ChildSaInstalled,
    keys: &EspKeys,
    spi: u32,
    (from, to): (Ipv4Addr, Ipv4Addr),
    udp: Option<(u16, u16)>,
) -> Result<SaParams, ChildSaError> {
    let invalid = |what: String| ChildSaError::Invalid {
        tunnel: tunnel.to_owned(),
        what,
    };
    match (child.suite.encr, child.suite.integ) {
        (
            EncrAlgorithm::AesGcm16_128 | EncrAlgorithm::AesGcm16_192 | EncrAlgorithm::AesGcm16_256,
            None,
        ) => {}
        (encr, _) => {
            return Err(ChildSaError::NotAesGcm {
                tunnel: tunnel.to_owned(),
                algorithm: format!("{encr:?}"),
            });
        }
    }
    let key = AeadKey::new(keys.encr_key.as_bytes()).map_err(|e| invalid(format!("key: {e}")))?;
    let salt: [u8; 4] = keys
        .salt
        .as_bytes()
        .try_into()
        .map_err(|_| invalid("the AES-GCM salt is not 4 bytes".into()))?;
    let spi = Spi::new(spi).map_err(|e| invalid(format!("SPI: {e}")))?;
    let ends = TunnelEndpoints::new(IpAddr::V4(from), IpAddr::V4(to))
        .map_err(|e| invalid(format!("addresses: {e}")))?;
    let mut params = SaParams::new(spi, key, Salt::new(salt), ends);
    params.esn = child.esn;
    params.replay_window = ReplayWindowSize::new(child.replay_window)
        .map_err(|e| invalid(format!("replay window: {e}")))?;
    params.udp_encap = match udp {
        Some((src, dst)) => {
            Some(UdpEncap::new(src, dst).map_err(|e| invalid(format!("UDP encapsulation: {e}")))?)
        }
        None => None,
    };
    Ok(params)
}

/// Traffic selectors as prefixes; each address range must be exactly one IPv4 prefix (what
/// site-to-site peers negotiate; port or protocol limits are not enforced by the datapath).
fn prefixes(tunnel: &str, selectors: &[TrafficSelector]) -> Result<Vec<Ipv4Net>, ChildSaError> {
    selectors
        .iter()
        .map(|ts| {
            let not_prefix = || ChildSaError::SelectorNotPrefix {
                tunnel: tunnel.to_owned(),
                start: ts.start,
                end: ts.end,
            };
            let (IpAddr::V4(start), IpAddr::V4(end)) = (ts.start, ts.end) else {
                return Err(not_prefix());
            };
            let (s, e) = (u32::from(start), u32::from(end));
            let hosts = e.wrapping_sub(s).wrapping_add(1);
            let len = if s == 0 && e == u32::MAX {
                0
            } else if e >= s && hosts.is_power_of_two() && s % hosts == 0 {
                32 - hosts.trailing_zeros() as u8
            } else {
                return Err(not_prefix());
            };
            Ipv4Net::new(start, len).map_err(|_| not_prefix())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use vpn_ike::{codec::Spi as IkeSpi, events::UdpEncap as IkeUdp};
    use vpn_ike_crypto::{keys::EspSuite, secret::SecretBytes};

    use super::*;

    fn ts(start: [u8; 4], end: [u8; 4]) -> TrafficSelector {
        TrafficSelector {
            protocol: 0,
            start_port: 0,
            end_port: u16::MAX,
            start: IpAddr::from(start),
            end: IpAddr::from(end),
        }
    }

    fn keys(byte: u8) -> EspKeys {
        EspKeys {
            encr_key: SecretBytes::new(vec![byte; 32]),
            salt: SecretBytes::new(vec![byte; 4]),
            integ_key: SecretBytes::new(Vec::new()),
        }
    }

    fn child(spi_in: u32, spi_out: u32, remote_ts: TrafficSelector) -> ChildSaInstalled {
        let now = Instant::now();
        ChildSaInstalled {
            ike_spis: (IkeSpi([1; 8]), IkeSpi([2; 8])),
            spi_in,
            spi_out,
            keys_in: keys(1),
            keys_out: keys(2),
            suite: EspSuite {
                encr: EncrAlgorithm::AesGcm16_256,
                integ: None,
            },
            esn: false,
            local_ts: vec![ts([10, 1, 0, 0], [10, 1, 0, 255])],
            remote_ts: vec![remote_ts],
            local_addr: "198.51.100.1:4500".parse().unwrap(),
            remote_addr: "198.51.100.2:4500".parse().unwrap(),
            udp_encap: Some(IkeUdp {
                local_port: 4500,
                remote_port: 4500,
            }),
            replay_window: 1024,
            rekey_at: now + Duration::from_secs(3000),
            expire_at: now + Duration::from_secs(3600),
            rekeyed_from: None,
        }
    }

    fn settings() -> TunnelSettings {
        TunnelSettings {
            name: "aws-t1".into(),
            routes: vec![("10.0.0.0/16".parse().unwrap(), 100)],
            remote_selectors: Vec::new(),
            mtu: 1399,
            mss: 1379,
        }
    }

    #[test]
    fn a_policy_child_sa_becomes_a_tunnel_with_its_selectors() {
        let mut sas = TunnelSas::new(settings());
        sas.installed(&child(0x100, 0x200, ts([10, 2, 0, 0], [10, 2, 0, 255])))
            .unwrap();
        let t = sas.wanted().unwrap();
        assert!(!t.route_based);
        assert_eq!(
            t.local_prefixes,
            ["10.1.0.0/24".parse::<Ipv4Net>().unwrap()]
        );
        assert_eq!(
            t.remote_prefixes,
            ["10.2.0.0/24".parse::<Ipv4Net>().unwrap()]
        );
        assert_eq!(t.encapsulation, EncapsulationSpec::Udp);
        assert_eq!(t.outbound.spi.get(), 0x200);
        assert_eq!(t.inbound.len(), 1);
        assert_eq!(t.inbound[0].spi.get(), 0x100);
        // Outbound seals local -> peer with the outbound keys; inbound the other way.
        assert_eq!(t.outbound.key.expose(), &[2; 32]);
        assert_eq!(t.inbound[0].key.expose(), &[1; 32]);
        assert_eq!(t.mtu, 1399);
    }

    #[test]
    fn route_based_child_sas_use_the_configured_routes() {
        let mut sas = TunnelSas::new(settings());
        sas.installed(&child(0x100, 0x200, TrafficSelector::any_v4()))
            .unwrap();
        let t = sas.wanted().unwrap();
        assert!(t.route_based);
        assert!(t.remote_prefixes.is_empty() && t.local_prefixes.is_empty());
        assert_eq!(sas.route_candidates(), settings().routes);
    }

    #[test]
    fn routes_go_to_the_preferred_tunnel_that_is_up_or_nowhere() {
        let net = |s: &str| s.parse::<Ipv4Net>().unwrap();
        let both = |p1, p2| {
            vec![
                ("t1", true, vec![(net("10.0.0.0/16"), p1)]),
                ("t2", true, vec![(net("10.0.0.0/16"), p2)]),
            ]
        };
        let plan = choose_routes(both(100, 200));
        assert_eq!(plan[&net("10.0.0.0/16")].as_deref(), Some("t1"));
        let plan = choose_routes(both(300, 200));
        assert_eq!(plan[&net("10.0.0.0/16")].as_deref(), Some("t2"));
        // The active one is down: the standby carries the prefix.
        let mut down = both(100, 200);
        down[0].1 = false;
        assert_eq!(
            choose_routes(down.clone())[&net("10.0.0.0/16")].as_deref(),
            Some("t2")
        );
        // Both down: the prefix stays routed, to nothing (dropped, never in the clear).
        down[1].1 = false;
        assert_eq!(choose_routes(down)[&net("10.0.0.0/16")], None);
    }

    #[test]
    fn a_policy_tunnel_that_is_down_still_claims_its_configured_selectors() {
        let mut s = settings();
        s.routes.clear();
        s.remote_selectors = vec!["10.2.0.0/24".parse().unwrap()];
        let mut sas = TunnelSas::new(s);
        assert_eq!(
            sas.route_candidates(),
            [("10.2.0.0/24".parse().unwrap(), 100)]
        );
        sas.installed(&child(0x100, 0x200, ts([10, 2, 0, 0], [10, 2, 0, 127])))
            .unwrap();
        assert_eq!(
            sas.route_candidates(),
            [("10.2.0.0/25".parse().unwrap(), 100)]
        );
    }

    #[test]
    fn a_rekey_overlaps_then_the_old_sa_goes() {
        let mut sas = TunnelSas::new(settings());
        let remote = ts([10, 2, 0, 0], [10, 2, 0, 255]);
        sas.installed(&child(0x100, 0x200, remote)).unwrap();
        let mut new = child(0x101, 0x201, remote);
        new.rekeyed_from = Some(0x100);
        sas.installed(&new).unwrap();
        let t = sas.wanted().unwrap();
        assert_eq!(
            t.outbound.spi.get(),
            0x200,
            "the old SA sends until it is deleted"
        );
        let spis: Vec<u32> = t.inbound.iter().map(|p| p.spi.get()).collect();
        assert_eq!(spis, [0x100, 0x101], "both are accepted while they overlap");
        sas.deleted(0x100);
        let t = sas.wanted().unwrap();
        assert_eq!(t.outbound.spi.get(), 0x201, "the new SA sends");
        assert_eq!(t.inbound.len(), 1);
        sas.deleted(0x101);
        assert!(sas.wanted().is_none());
    }

    #[test]
    fn what_the_datapath_cannot_carry_is_refused() {
        let mut sas = TunnelSas::new(settings());
        let mut cbc = child(0x100, 0x200, TrafficSelector::any_v4());
        cbc.suite = EspSuite {
            encr: EncrAlgorithm::AesCbc256,
            integ: Some(vpn_ike_crypto::ike_cipher::IntegAlgorithm::HmacSha256_128),
        };
        assert!(matches!(
            sas.installed(&cbc),
            Err(ChildSaError::NotAesGcm { .. })
        ));
        let odd = child(0x100, 0x200, ts([10, 2, 0, 1], [10, 2, 0, 200]));
        assert!(matches!(
            sas.installed(&odd),
            Err(ChildSaError::SelectorNotPrefix { .. })
        ));
        assert!(sas.wanted().is_none());
    }
}
