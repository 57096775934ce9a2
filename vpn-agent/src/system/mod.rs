//! What the agent changes on the host besides BPF: kernel parameters (sysctls) now; routes
//! (rtnetlink) to come.

pub mod sysctl;
