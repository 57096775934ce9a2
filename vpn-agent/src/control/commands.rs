//! Operator commands for the IKE thread (`vpn-agent initiate NAME`, `terminate NAME`), sent
//! over the control socket and answered once the engine has acted on them.

use std::sync::mpsc;

/// What the operator asks of a tunnel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelCommand {
    /// Negotiate the tunnel now (and keep it up, if it initiates by configuration).
    Initiate(String),
    /// Delete the tunnel's IKE SAs and CHILD_SAs, and do not bring it back until `Initiate`.
    Terminate(String),
}

/// The answer to a command: what was done, or why nothing was.
pub type CommandResult = Result<String, String>;

/// What the IKE thread is asked to do.
pub enum DriverCommand {
    /// An operator's command.
    Tunnel(TunnelCommand),
    /// A reloaded configuration: these tunnels go (their SAs are deleted), these come (and
    /// initiate if they are configured to).
    Reconfigure {
        remove: Vec<String>,
        add: Vec<super::peer_config::TunnelPeer>,
    },
    /// The WAN address changed: IKE moves to `wan`, every SA negotiated from the old address
    /// is dropped, and the tunnels (`peers`, planned for the new address) start again.
    Rebind {
        wan: std::net::Ipv4Addr,
        peers: Vec<super::peer_config::TunnelPeer>,
    },
}

/// A command, with the way back for its answer if someone waits for it.
pub struct CommandRequest {
    pub command: DriverCommand,
    pub reply: Option<mpsc::Sender<CommandResult>>,
}
