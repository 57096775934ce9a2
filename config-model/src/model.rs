//! The resolved, normalized model the agent, the IKE engine and the datapath use: profile
//! defaults filled in, durations as [`Duration`], prefixes as [`IpNet`], proposals as enums.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::proposal::Proposal;
use crate::secret::SecretRef;

/// The whole router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file name (or origin name) the configuration was read from.
    pub origin: String,
    pub router: Router,
    pub tunnels: Vec<Tunnel>,
    pub routes: Vec<Route>,
    pub nat: Vec<NatRule>,
    pub sysctl: SysctlPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Router {
    /// Instance name (seed 000's rule: at most 12 of `A-Z a-z 0-9 -`).
    pub name: String,
    /// WAN interface (internet, peers).
    pub wan: String,
    /// LAN interfaces (the site).
    pub lan: Vec<String>,
    /// The public address the WAN address is mapped to 1:1 (an EC2 Elastic IP), if any.
    pub wan_public_address: Option<IpAddr>,
    /// Our IKE identity. `None`: the WAN public address if set, else the WAN address at run time.
    pub identity: Option<Identity>,
    /// Default authentication for tunnels that do not set their own.
    pub auth: Option<LocalAuth>,
    /// Most crypto workers to run, one per receive queue of the WAN and LAN interfaces
    /// (`None`: one per queue, as many as the interfaces have).
    pub workers: Option<u32>,
}

/// Most crypto workers a router may ask for: more than any NIC here has queues.
pub const MAX_WORKERS: u32 = 64;

/// IKE identity types (RFC 7296 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdType {
    Ipv4,
    Ipv6,
    Fqdn,
    Email,
    KeyId,
}

/// A typed IKE identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    Fqdn(String),
    /// RFC 822 address (`ID_RFC822_ADDR`).
    Email(String),
    /// Opaque key id, as written.
    KeyId(String),
}

impl Identity {
    pub fn from_addr(a: IpAddr) -> Identity {
        match a {
            IpAddr::V4(a) => Identity::Ipv4(a),
            IpAddr::V6(a) => Identity::Ipv6(a),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    Psk,
    Rsa,
    Ecdsa,
    Ed25519,
}

/// How we authenticate: the method and where its secret (PSK or private key) lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAuth {
    pub method: AuthMethod,
    pub secret: SecretRef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// AWS Site-to-Site VPN: defaults and limits of the AWS user guide.
    Aws,
    /// GCP HA VPN: defaults and limits of the Cloud VPN docs.
    Gcp,
    /// No profile (same as leaving the key out).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Startup {
    /// Initiate the IKE SA at start and after a DPD `restart` (strongSwan `auto=start`).
    Initiate,
    /// Wait for the peer (strongSwan `auto=add`).
    Respond,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DpdAction {
    Clear,
    Restart,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NatAction {
    /// Rewrite the source to the address of the `out` interface (iptables MASQUERADE).
    Masquerade,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IkeVersion {
    V1,
    V2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// IKE SA lifetime (AWS "phase 1 lifetime").
    pub ike: Duration,
    /// CHILD SA lifetime (AWS "phase 2 lifetime").
    pub child: Duration,
    /// Rekey this long before the lifetime ends (AWS "rekey margin time").
    pub rekey_margin: Duration,
    /// Randomize the rekey time by up to this percentage of the margin (AWS "rekey fuzz").
    pub rekey_fuzz_percent: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dpd {
    /// Send a liveness check after this much silence.
    pub delay: Duration,
    /// Declare the peer dead after this much silence.
    pub timeout: Duration,
    pub action: DpdAction,
}

/// What traffic a tunnel carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrafficMode {
    /// Policy-based: the CHILD SA's traffic selectors (strongSwan `leftsubnet`/`rightsubnet`).
    Policy {
        local: Vec<IpNet>,
        remote: Vec<IpNet>,
    },
    /// Route-based: 0.0.0.0/0 selectors, forwarding by `[[route]]`, with the inside addresses
    /// AWS assigns (a /30 from 169.254.0.0/16; `local` carries its prefix length).
    Route {
        inside_local: IpNet,
        inside_remote: IpAddr,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    pub name: String,
    pub peer: IpAddr,
    /// Defaults to the peer's address.
    pub remote_identity: Identity,
    pub profile: Option<Profile>,
    pub ike_version: IkeVersion,
    pub ike_proposals: Vec<Proposal>,
    pub esp_proposals: Vec<Proposal>,
    pub lifetimes: Lifetimes,
    pub dpd: Dpd,
    /// Detect NAT and move to UDP 4500 (RFC 3948).
    pub nat_traversal: bool,
    /// Always encapsulate ESP in UDP, even without NAT (strongSwan `forceencaps`).
    pub force_encap: bool,
    /// RFC 7383 IKE fragmentation.
    pub fragmentation: bool,
    pub auth: LocalAuth,
    /// The peer's public key file, for RSA/ECDSA/Ed25519 authentication.
    pub peer_public_key: Option<PathBuf>,
    pub traffic: TrafficMode,
    pub replay_window: u32,
    /// Largest inner packet; larger ones are fragmented before encryption.
    pub mtu: u16,
    /// TCP MSS clamp on the tunnel path.
    pub mss: u16,
    /// Largest encrypted packet towards the peer (GCP: at most 1460).
    pub outer_mtu: u16,
    pub startup: Startup,
}

impl Tunnel {
    /// The traffic selectors to negotiate: the configured ones, or 0.0.0.0/0 (or ::/0) on both
    /// sides for a route-based tunnel.
    pub fn selectors(&self) -> (Vec<IpNet>, Vec<IpNet>) {
        match &self.traffic {
            TrafficMode::Policy { local, remote } => (local.clone(), remote.clone()),
            TrafficMode::Route { inside_local, .. } => {
                let any: IpNet = match inside_local {
                    IpNet::V4(_) => "0.0.0.0/0".parse().expect("literal"),
                    IpNet::V6(_) => "::/0".parse().expect("literal"),
                };
                (vec![any], vec![any])
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: IpNet,
    pub tunnel: String,
    /// Lower is preferred; the standby of an active/standby pair has the higher number.
    pub priority: u32,
}

/// The priority of a route that does not give one.
pub const DEFAULT_ROUTE_PRIORITY: u32 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatRule {
    pub action: NatAction,
    pub from: IpNet,
    pub to: Vec<IpNet>,
    pub out: String,
}

/// Which sysctls the agent sets (and restores on exit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysctlPolicy {
    pub manage: bool,
    pub ip_forward: bool,
    /// Interface name (or `all`/`default`) -> 0 off, 1 strict, 2 loose.
    pub rp_filter: BTreeMap<String, u8>,
    pub send_redirects: bool,
    pub accept_redirects: bool,
    pub secure_redirects: bool,
    pub accept_source_route: bool,
    /// 0, 1 or 2 (net.ipv4.tcp_mtu_probing).
    pub tcp_mtu_probing: u8,
    pub restore_on_exit: bool,
}
