//! `vpn-ike`: the sans-IO IKEv2 engine of the appliance.
//!
//! So far it holds the wire codec, [`codec`]: IKEv2 messages and payloads (RFC 7296 section 3,
//! RFC 7383 fragments) to typed values and back, safe on hostile input.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
