//! The control plane: what drives the IKE engine.

pub mod child_sa;
pub mod peer_config;
