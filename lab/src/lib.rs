//! The standard lab: network namespaces that stand in for two sites joined over the internet.
//!
//! ```text
//!  host-a            router-a                          router-b            host-b
//!  10.1.0.10 ── lan 10.1.0.1 | wan 198.51.100.1 ──── wan 198.51.100.2 | lan 10.2.0.1 ── 10.2.0.10
//! ```
//!
//! With NAT, router-a's WAN gets the private address 10.0.1.10 behind a `nat-a` namespace that maps
//! it 1:1 to 198.51.100.1, the way an EC2 Elastic IP does; that forces NAT traversal.
//!
//! Every lab gets a unique id that prefixes its namespace names, and is recorded in a registry
//! under /run so that a lab whose owner died (Ctrl-C, crash) is removed by the next one, and
//! `cargo xtask lab down` can remove a lab that `lab up` left running.

pub mod agent;
pub mod ike_tunnel;
pub mod netns;
pub mod registry;
pub mod static_tunnel;
pub mod strongswan;
pub mod topology;
pub mod traffic;

pub use agent::AgentProcess;
pub use topology::{Lab, LabSpec, Node, addr};
