//! The XDP datapath as the agent sees it: loading and attaching the programs, pinning their
//! maps, the tunnel tables the control plane writes, and the AF_XDP crypto workers (one per
//! receive queue).

pub mod counters;
pub mod esp_sa;
pub mod fragment;
pub mod loader;
pub mod local_tx;
pub mod nat;
pub mod nexthop;
pub mod rx_queues;
pub mod sa_table;
pub mod static_tunnels;
pub mod tables;
pub mod tunnels;
pub mod worker;
pub mod workers;
pub mod xsk;
