//! Two engines back to back with a fake clock: an [`IkeSa`] initiator ("A") and a
//! [`Listener`] responder ("B"), an optional 1:1 NAT in front of A, and a hook that may drop,
//! replace or duplicate every datagram in flight.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rand_core::{TryCryptoRng, TryRng};
use vpn_ike::config::{EspProposal, IkeProposal, PeerConfig, Psk};
use vpn_ike::{Event, IkeSa, Listener, Transmit};
use vpn_ike_crypto::PrfAlgorithm;
use vpn_ike_crypto::dh::DhGroup;
use vpn_ike_crypto::ike_cipher::{EncrAlgorithm, IntegAlgorithm};

/// A deterministic generator for tests only (splitmix64); not cryptographically secure.
pub struct TestRng(pub u64);

impl TryRng for TestRng {
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

impl TryCryptoRng for TestRng {}

pub const A_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const A_PRIVATE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 10);
pub const B_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

pub fn sock(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

pub fn gcm_ike(dh: Vec<DhGroup>) -> IkeProposal {
    IkeProposal {
        encr: vec![EncrAlgorithm::AesGcm16_256],
        integ: vec![],
        prf: vec![PrfAlgorithm::HmacSha256],
        dh,
    }
}

pub fn cbc_ike() -> IkeProposal {
    IkeProposal {
        encr: vec![EncrAlgorithm::AesCbc128],
        integ: vec![IntegAlgorithm::HmacSha256_128],
        prf: vec![PrfAlgorithm::HmacSha256],
        dh: vec![DhGroup::Ecp256],
    }
}

pub fn gcm_esp() -> EspProposal {
    EspProposal {
        encr: vec![EncrAlgorithm::AesGcm16_256],
        integ: vec![],
        dh: vec![],
        esn: false,
    }
}

pub fn cbc_esp() -> EspProposal {
    EspProposal {
        encr: vec![EncrAlgorithm::AesCbc256],
        integ: vec![IntegAlgorithm::HmacSha1_96],
        dh: vec![],
        esn: false,
    }
}

/// A's configuration (initiator); fast Curve25519 instead of MODP-2048 by default.
pub fn config_a() -> PeerConfig {
    let mut c = PeerConfig::psk(
        sock(A_IP, 500),
        sock(B_IP, 500),
        Psk::new(b"correct horse battery staple".to_vec()),
    );
    c.ike_proposals = vec![gcm_ike(vec![DhGroup::Curve25519])];
    c
}

/// B's configuration (responder).
pub fn config_b() -> PeerConfig {
    let mut c = PeerConfig::psk(
        sock(B_IP, 500),
        sock(A_IP, 500),
        Psk::new(b"correct horse battery staple".to_vec()),
    );
    c.ike_proposals = vec![gcm_ike(vec![DhGroup::Curve25519])];
    c
}

/// Which way a datagram travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    AtoB,
    BtoA,
}

/// What the hook does with a datagram.
pub enum Fate {
    Deliver,
    Drop,
    /// Deliver these datagrams first, then the original.
    Before(Vec<Vec<u8>>),
}

/// A datagram in flight, as the hook sees it.
#[derive(Debug, Clone)]
pub struct Flight {
    pub dir: Dir,
    pub from: SocketAddr,
    pub to: SocketAddr,
    /// The UDP payload (non-ESP marker included).
    pub payload: Vec<u8>,
}

pub type Hook = Box<dyn FnMut(&Flight) -> Fate>;

pub struct Net {
    pub now: Instant,
    pub t0: Instant,
    pub a: IkeSa<TestRng>,
    pub b: Listener<TestRng>,
    pub a_events: Vec<(Instant, Event)>,
    pub b_events: Vec<(Instant, Event)>,
    /// Everything sent, in order.
    pub log: Vec<Flight>,
    /// 1:1 NAT: A's private address is rewritten to A_IP.
    pub nat: bool,
    pub hook: Hook,
}

impl Net {
    pub fn new(a: PeerConfig, b: PeerConfig) -> Self {
        let t0 = Instant::now();
        Self {
            now: t0,
            t0,
            a: IkeSa::initiator(a, TestRng(1), t0).expect("config a"),
            b: Listener::new(vec![b], TestRng(2)).expect("config b"),
            a_events: Vec::new(),
            b_events: Vec::new(),
            log: Vec::new(),
            nat: false,
            hook: Box::new(|_| Fate::Deliver),
        }
    }

    pub fn with_nat(mut a: PeerConfig, b: PeerConfig) -> Self {
        a.local_addr = sock(A_PRIVATE_IP, 500);
        let mut n = Self::new(a, b);
        n.nat = true;
        n
    }

    fn nat_out(&self, addr: SocketAddr) -> SocketAddr {
        if self.nat && addr.ip() == IpAddr::V4(A_PRIVATE_IP) {
            sock(A_IP, addr.port())
        } else {
            addr
        }
    }

    fn nat_in(&self, addr: SocketAddr) -> SocketAddr {
        if self.nat && addr.ip() == IpAddr::V4(A_IP) {
            sock(A_PRIVATE_IP, addr.port())
        } else {
            addr
        }
    }

    fn collect_events(&mut self) {
        while let Some(e) = self.a.poll_event() {
            self.a_events.push((self.now, e));
        }
        while let Some(e) = self.b.poll_event() {
            self.b_events.push((self.now, e.event));
        }
    }

    fn deliver(&mut self, dir: Dir, from: SocketAddr, to: SocketAddr, payload: &[u8]) {
        match dir {
            Dir::AtoB => self.b.handle_datagram(self.now, from, to, payload),
            Dir::BtoA => self.a.handle_datagram(self.now, from, to, payload),
        }
    }

    fn send(&mut self, dir: Dir, t: Transmit) {
        // A sends from its private address; the NAT rewrites the source on the way out and
        // the destination on the way back.
        let (from, to) = match dir {
            Dir::AtoB => (self.nat_out(t.from), t.to),
            Dir::BtoA => (t.from, self.nat_in(t.to)),
        };
        let flight = Flight {
            dir,
            from,
            to,
            payload: t.datagram(),
        };
        self.log.push(flight.clone());
        match (self.hook)(&flight) {
            Fate::Deliver => self.deliver(dir, from, to, &flight.payload),
            Fate::Drop => {}
            Fate::Before(list) => {
                for p in list {
                    self.deliver(dir, from, to, &p);
                }
                self.deliver(dir, from, to, &flight.payload);
            }
        }
    }

    /// Moves datagrams until both sides are quiet.
    pub fn pump(&mut self) {
        loop {
            self.collect_events();
            if let Some(t) = self.a.poll_transmit() {
                self.send(Dir::AtoB, t);
                continue;
            }
            if let Some(t) = self.b.poll_transmit() {
                self.send(Dir::BtoA, t);
                continue;
            }
            self.collect_events();
            return;
        }
    }

    /// Advances the clock to the next timer (if it is before `limit`) and runs it.
    pub fn step(&mut self, limit: Instant) -> bool {
        let next = [self.a.poll_timeout(), self.b.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if t <= limit => {
                self.now = self.now.max(t);
                self.a.handle_timeout(self.now);
                self.b.handle_timeout(self.now);
                self.pump();
                true
            }
            _ => false,
        }
    }

    /// Runs timers and traffic until `secs` seconds after t0.
    pub fn run_until(&mut self, secs: u64) {
        let limit = self.t0 + Duration::from_secs(secs);
        while self.step(limit) {}
        self.now = self.now.max(limit);
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.pump();
    }

    pub fn start(&mut self) {
        self.a.initiate(self.now);
        self.pump();
    }

    pub fn secs(&self, at: Instant) -> f64 {
        (at - self.t0).as_secs_f64()
    }
}

/// The ChildSaInstalled events of a side.
pub fn installed(events: &[(Instant, Event)]) -> Vec<&vpn_ike::ChildSaInstalled> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ChildSaInstalled(c) => Some(&**c),
            _ => None,
        })
        .collect()
}

pub fn established(events: &[(Instant, Event)]) -> usize {
    events
        .iter()
        .filter(|(_, e)| matches!(e, Event::IkeSaEstablished { .. }))
        .count()
}

pub fn closed(events: &[(Instant, Event)]) -> Vec<(Instant, vpn_ike::CloseReason)> {
    events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::IkeSaClosed { reason } => Some((*t, *reason)),
            _ => None,
        })
        .collect()
}
