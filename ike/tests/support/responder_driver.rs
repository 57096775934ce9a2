//! The driver shared by the `responder` fuzz target and tests/responder_corpus.rs: decodes
//! `flags:u8 len:u16 bytes` records and feeds them to a fresh responder [`Listener`].

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use vpn_ike::config::{PeerConfig, Psk};
use vpn_ike::{Listener, SaState};

/// Deterministic (splitmix64), for reproducible runs only.
pub struct FixedRng(pub u64);

impl rand_core::TryRng for FixedRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for FixedRng {}

pub const PEER: &str = "198.51.100.1";
pub const US: &str = "198.51.100.2";

/// The responder's configuration (fast Curve25519 so that fuzzing gets far).
pub fn config() -> PeerConfig {
    let mut c = PeerConfig::psk(
        format!("{US}:500").parse().unwrap(),
        format!("{PEER}:500").parse().unwrap(),
        Psk::new(b"fuzz".to_vec()),
    );
    c.ike_proposals[0].dh = vec![vpn_ike_crypto::dh::DhGroup::Curve25519];
    c
}

/// Encodes datagrams as driver input.
pub fn records(datagrams: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (flags, d) in datagrams {
        out.push(*flags);
        out.extend_from_slice(&u16::try_from(d.len()).unwrap().to_be_bytes());
        out.extend_from_slice(d);
    }
    out
}

/// Runs the input; returns the states of the SAs at the end.
pub fn run(mut data: &[u8]) -> Vec<SaState> {
    let mut l = Listener::new(vec![config()], FixedRng(7)).expect("valid config");
    let t0 = Instant::now();
    let mut now = t0;
    while let [flags, l0, l1, rest @ ..] = data {
        let len = usize::from(u16::from_be_bytes([*l0, *l1])).min(rest.len());
        let (d, tail) = rest.split_at(len);
        data = tail;
        let port = if flags & 1 != 0 { 4500 } else { 500 };
        let from: SocketAddr = format!("{PEER}:{port}").parse().unwrap();
        let to: SocketAddr = format!("{US}:{port}").parse().unwrap();
        l.handle_datagram(now, from, to, d);
        if flags & 2 != 0 {
            now += Duration::from_secs(10);
            l.handle_timeout(now);
        }
        while l.poll_transmit().is_some() {}
        while l.poll_event().is_some() {}
        if now - t0 > Duration::from_secs(3600) {
            break;
        }
    }
    l.sa_spis()
        .into_iter()
        .filter_map(|s| l.sa_state(s))
        .collect()
}
