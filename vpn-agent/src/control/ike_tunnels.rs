//! The configuration's IKE tunnels at run time: the engine's driver, and the CHILD_SAs it has
//! negotiated per tunnel, as the datapath should carry them.

use std::{collections::BTreeMap, net::Ipv4Addr};

use anyhow::Context as _;
use vpn_config::{Config, TrafficMode};

use super::{
    child_sa::{TunnelSas, TunnelSettings, choose_routes},
    ike_driver::{DriverEvent, IkeDriver},
    peer_config::peer_config,
};
use crate::datapath::{static_tunnels::StaticTunnel, tunnels::RoutePlan};

pub struct IkeTunnels {
    driver: IkeDriver,
    tunnels: BTreeMap<String, TunnelSas>,
}

impl IkeTunnels {
    /// Starts IKE for every tunnel of `config` (PSK or key authentication) on the WAN address
    /// `wan`; `None` when the configuration has none.
    pub fn start(
        config: &Config,
        wan: Ipv4Addr,
        report: std::path::PathBuf,
    ) -> anyhow::Result<Option<Self>> {
        let wanted: Vec<_> = config.tunnels.iter().collect();
        if wanted.is_empty() {
            return Ok(None);
        }
        let secrets = config
            .resolve_secrets()
            .map_err(|errors| anyhow::anyhow!("{errors}"))?;
        let mut peers = Vec::new();
        let mut tunnels = BTreeMap::new();
        for tunnel in wanted {
            // The PSK or the PEM private key (read from its mode-0600 file).
            let secret = secrets.tunnel(&tunnel.name).with_context(|| {
                format!("tunnel {}: no pre-shared key or private key", tunnel.name)
            })?;
            peers.push(peer_config(&config.router, tunnel, wan.into(), secret)?);
            let v4 = |net: &ipnet::IpNet| match net {
                ipnet::IpNet::V4(v4) => Some(*v4),
                ipnet::IpNet::V6(_) => None,
            };
            let routes = config
                .routes
                .iter()
                .filter(|r| r.tunnel == tunnel.name)
                .filter_map(|r| v4(&r.prefix).map(|p| (p, r.priority)))
                .collect();
            let remote_selectors = match &tunnel.traffic {
                TrafficMode::Policy { remote, .. } => remote.iter().filter_map(v4).collect(),
                TrafficMode::Route { .. } => Vec::new(),
            };
            tunnels.insert(
                tunnel.name.clone(),
                TunnelSas::new(TunnelSettings {
                    name: tunnel.name.clone(),
                    routes,
                    remote_selectors,
                    mtu: tunnel.mtu,
                    mss: tunnel.mss,
                }),
            );
        }
        let driver = IkeDriver::start(wan, peers, report)?;
        Ok(Some(IkeTunnels { driver, tunnels }))
    }

    /// Takes the engine's news; `true` if what the datapath should carry changed.
    pub fn poll(&mut self) -> bool {
        let mut changed = false;
        while let Some(event) = self.driver.try_event() {
            match event {
                DriverEvent::Installed { tunnel, child } => {
                    if let Some(sas) = self.tunnels.get_mut(&tunnel) {
                        match sas.installed(&child) {
                            Ok(()) => changed = true,
                            Err(err) => {
                                tracing::error!(error = %err, "negotiated CHILD SA not installed")
                            }
                        }
                    }
                }
                DriverEvent::Deleted { tunnel, spi_in } => {
                    if let Some(sas) = self.tunnels.get_mut(&tunnel) {
                        sas.deleted(spi_in);
                        changed = true;
                    }
                }
                DriverEvent::Down { tunnel, reason } => {
                    tracing::warn!(%tunnel, %reason, "IKE SA down: its CHILD SAs leave the datapath");
                    if let Some(sas) = self.tunnels.get_mut(&tunnel) {
                        for (spi_in, _) in sas.spis() {
                            sas.deleted(spi_in);
                        }
                        changed = true;
                    }
                }
            }
        }
        changed
    }

    /// Tells the engine's thread that what [`IkeTunnels::poll`] took is in the datapath now.
    pub fn applied(&self) {
        self.driver.applied();
    }

    /// Where operator commands go (the control socket).
    pub fn commander(&self) -> std::sync::mpsc::Sender<super::commands::CommandRequest> {
        self.driver.commander()
    }

    /// Notified when the engine has news for [`IkeTunnels::poll`].
    pub fn wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.driver.wake()
    }

    /// Where each prefix of the tunnels goes ([`choose_routes`]).
    pub fn routes(&self) -> RoutePlan {
        choose_routes(
            self.tunnels
                .iter()
                .map(|(name, sas)| (name.as_str(), sas.is_up(), sas.route_candidates())),
        )
    }

    /// The tunnels with a CHILD_SA, as the datapath should run them.
    pub fn wanted(&self) -> Vec<StaticTunnel> {
        self.tunnels
            .values()
            .filter_map(TunnelSas::wanted)
            .collect()
    }

    pub fn stop(self) {
        self.driver.stop();
    }
}
