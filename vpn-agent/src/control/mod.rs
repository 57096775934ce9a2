//! The control plane: what drives the IKE engine.

pub mod peer_config;
