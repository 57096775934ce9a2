//! The configuration's IKE tunnels at run time: the engine's driver, and the CHILD_SAs it has
//! negotiated per tunnel, as the datapath should carry them.

use std::{collections::BTreeMap, net::Ipv4Addr};

use anyhow::Context as _;
use vpn_config::{Config, TrafficMode};

use super::{
    child_sa::{TunnelSas, TunnelSettings, choose_routes},
    ike_driver::{DriverEvent, IkeDriver},
    peer_config::{TunnelPeer, peer_config},
};
use crate::datapath::{static_tunnels::StaticTunnel, tunnels::RoutePlan};

pub struct IkeTunnels {
    driver: IkeDriver,
    tunnels: BTreeMap<String, TunnelSas>,
    /// The configuration running now (for reloads).
    applied: Config,
    wan: Ipv4Addr,
}

/// The engine's peers and the datapath settings of every tunnel of `config`.
fn plan(
    config: &Config,
    wan: Ipv4Addr,
) -> anyhow::Result<(Vec<TunnelPeer>, BTreeMap<String, TunnelSettings>)> {
    let secrets = config
        .resolve_secrets()
        .map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let mut peers = Vec::new();
    let mut settings = BTreeMap::new();
    for tunnel in &config.tunnels {
        // The PSK or the PEM private key (read from its mode-0600 file).
        let secret = secrets
            .tunnel(&tunnel.name)
            .with_context(|| format!("tunnel {}: no pre-shared key or private key", tunnel.name))?;
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
        settings.insert(
            tunnel.name.clone(),
            TunnelSettings {
                name: tunnel.name.clone(),
                routes,
                remote_selectors,
                mtu: tunnel.mtu,
                mss: tunnel.mss,
            },
        );
    }
    Ok((peers, settings))
}

impl IkeTunnels {
    /// Starts IKE for every tunnel of `config` (PSK or key authentication) on the WAN address
    /// `wan`; `None` when the configuration has none.
    pub fn start(
        config: &Config,
        wan: Ipv4Addr,
        report: std::path::PathBuf,
    ) -> anyhow::Result<Option<Self>> {
        if config.tunnels.is_empty() {
            return Ok(None);
        }
        let (peers, settings) = plan(config, wan)?;
        let tunnels = settings
            .into_iter()
            .map(|(name, s)| (name, TunnelSas::new(s)))
            .collect();
        let driver = IkeDriver::start(wan, peers, report)?;
        Ok(Some(IkeTunnels {
            driver,
            tunnels,
            applied: config.clone(),
            wan,
        }))
    }

    /// Applies a reloaded configuration: tunnels whose configuration did not change keep
    /// their SAs (their routes are updated); changed ones are negotiated again; removed ones
    /// are deleted; new ones start. A configuration whose secrets or tunnels cannot be used
    /// changes nothing.
    pub fn reload(&mut self, config: &Config) -> anyhow::Result<String> {
        let (peers, mut settings) = plan(config, self.wan)?;
        let router_changed = config.router != self.applied.router;
        let old: BTreeMap<&str, &vpn_config::Tunnel> = self
            .applied
            .tunnels
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        let mut remove = Vec::new();
        let mut add = Vec::new();
        let mut kept = 0;
        for peer in peers {
            let name = peer.tunnel.clone();
            let same = config
                .tunnels
                .iter()
                .find(|t| t.name == name)
                .is_some_and(|t| !router_changed && old.get(name.as_str()) == Some(&t));
            let Some(s) = settings.remove(&name) else {
                continue;
            };
            if same {
                if let Some(sas) = self.tunnels.get_mut(&name) {
                    sas.set_settings(s);
                }
                kept += 1;
                continue;
            }
            if old.contains_key(name.as_str()) {
                remove.push(name.clone());
            }
            self.tunnels.insert(name, TunnelSas::new(s));
            add.push(peer);
        }
        let mut gone = 0;
        for name in old.keys() {
            if !config.tunnels.iter().any(|t| t.name == *name) {
                remove.push((*name).to_owned());
                self.tunnels.remove(*name);
                gone += 1;
            }
        }
        let summary = format!(
            "{kept} tunnel(s) unchanged, {} new or changed, {gone} removed",
            add.len()
        );
        self.driver.reconfigure(remove, add);
        self.applied = config.clone();
        Ok(summary)
    }

    /// Our WAN address is now `wan`: IKE moves there and every tunnel is negotiated again
    /// (the old SAs go; see `ike_driver`).
    pub fn rebind(&mut self, wan: Ipv4Addr) -> anyhow::Result<()> {
        if wan == self.wan {
            return Ok(());
        }
        let (peers, _) = plan(&self.applied, wan)?;
        self.driver.rebind(wan, peers);
        self.wan = wan;
        Ok(())
    }

    /// The configured tunnels' names.
    pub fn names(&self) -> Vec<String> {
        self.tunnels.keys().cloned().collect()
    }

    /// The WAN address IKE runs on.
    pub fn wan(&self) -> Ipv4Addr {
        self.wan
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
