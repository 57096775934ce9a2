//! The control plane: what drives the IKE engine.

pub mod child_sa;
pub mod commands;
pub mod ike_driver;
pub mod ike_report;
pub mod ike_tunnels;
pub mod peer_config;
pub mod socket;
