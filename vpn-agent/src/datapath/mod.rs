//! The XDP datapath as the agent sees it: loading and attaching the programs, pinning their
//! maps, and reading their counters back.

pub mod counters;
pub mod loader;
