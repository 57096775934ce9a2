//! Interop with strongSwan 5.9 (charon with kernel-libipsec) on the namespace lab (root): our
//! engine, over real UDP sockets inside router-a or router-b's namespace, against charon on the
//! other router, as initiator and as responder. Both sides must list the same CHILD_SA SPIs
//! (`swanctl --list-sas`) and our derived ESP keys must equal the ones charon logs.
//!
//! kernel-libipsec fakes a NAT, so these runs also cover the move to UDP 4500 with the non-ESP
//! marker.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use vpn_ike::config::{Identity, PeerConfig, Psk, TrafficSelector};
use vpn_ike::events::ChildSaInstalled;
use vpn_ike::{Event, IkeSa, Listener, Transmit};
use vpn_lab::strongswan::{Charon, Connection, LoggedChildKeys};
use vpn_lab::{Lab, LabSpec, Node, addr};

/// The system's random generator (getrandom via /dev/urandom).
struct OsRng(std::fs::File);

impl rand_core::TryRng for OsRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        use std::io::Read as _;
        self.0.read_exact(dst).expect("reading /dev/urandom");
        Ok(())
    }
}

impl rand_core::TryCryptoRng for OsRng {}

fn os_rng() -> anyhow::Result<OsRng> {
    Ok(OsRng(std::fs::File::open("/dev/urandom")?))
}

/// UDP sockets on 500 and 4500 of `ip`, inside `node`'s namespace.
struct Sockets {
    ike: UdpSocket,
    nat_t: UdpSocket,
}

impl Sockets {
    fn bind(lab: &Lab, node: Node, ip: Ipv4Addr) -> anyhow::Result<Sockets> {
        let (ike, nat_t) = lab.run_in(node, move || {
            let ike = UdpSocket::bind((ip, 500)).context("binding 500")?;
            let nat_t = UdpSocket::bind((ip, 4500)).context("binding 4500")?;
            Ok((ike, nat_t))
        })?;
        for s in [&ike, &nat_t] {
            s.set_nonblocking(true)?;
        }
        Ok(Sockets { ike, nat_t })
    }

    fn send(&self, t: &Transmit) -> anyhow::Result<()> {
        let sock = if t.from.port() == 4500 {
            &self.nat_t
        } else {
            &self.ike
        };
        sock.send_to(&t.datagram(), t.to)?;
        Ok(())
    }

    /// Received datagrams: (from, to, payload).
    fn recv(&self) -> anyhow::Result<Vec<(SocketAddr, SocketAddr, Vec<u8>)>> {
        let mut out = Vec::new();
        for s in [&self.ike, &self.nat_t] {
            let mut buf = [0u8; 65_535];
            loop {
                match s.recv_from(&mut buf) {
                    Ok((n, from)) => out.push((from, s.local_addr()?, buf[..n].to_vec())),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(out)
    }
}

fn v4(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

fn our_config(
    local: Ipv4Addr,
    remote: Ipv4Addr,
    psk: &[u8],
    local_ts: Ipv4Addr,
    remote_ts: Ipv4Addr,
) -> PeerConfig {
    let mut c = PeerConfig::psk(v4(local, 500), v4(remote, 500), Psk::new(psk.to_vec()));
    c.local_id = Identity::Address(IpAddr::V4(local));
    c.remote_id = Some(Identity::Address(IpAddr::V4(remote)));
    c.local_ts = vec![TrafficSelector::v4_prefix(local_ts, addr::PREFIX_LEN)];
    c.remote_ts = vec![TrafficSelector::v4_prefix(remote_ts, addr::PREFIX_LEN)];
    c
}

/// Our keys in charon's log layout: encryption key | salt per direction.
fn as_logged(c: &ChildSaInstalled, initiator: bool) -> LoggedChildKeys {
    let cat =
        |k: &vpn_ike_crypto::keys::EspKeys| [k.encr_key.as_bytes(), k.salt.as_bytes()].concat();
    let (i_to_r, r_to_i) = if initiator {
        (&c.keys_out, &c.keys_in)
    } else {
        (&c.keys_in, &c.keys_out)
    };
    LoggedChildKeys {
        encryption_initiator: cat(i_to_r),
        encryption_responder: cat(r_to_i),
        integrity_initiator: i_to_r.integ_key.as_bytes().to_vec(),
        integrity_responder: r_to_i.integ_key.as_bytes().to_vec(),
    }
}

fn psk_text(psk: &vpn_lab::strongswan::Psk) -> Vec<u8> {
    psk.0.clone()
}

#[test]
fn our_initiator_against_charon_responder() -> anyhow::Result<()> {
    initiator_run(None)
}

/// Seed 001's proposal: AES-CBC-128 with HMAC-SHA2-256 and MODP-1024, for IKE and ESP
/// (covers the CBC+HMAC SK payload and the integrity keys).
#[test]
fn our_initiator_against_charon_aes_cbc_sha256_modp1024() -> anyhow::Result<()> {
    use vpn_ike::config::{EspProposal, IkeProposal};
    use vpn_ike_crypto::ike_cipher::{EncrAlgorithm, IntegAlgorithm};
    let ike = IkeProposal {
        encr: vec![EncrAlgorithm::AesCbc128],
        integ: vec![IntegAlgorithm::HmacSha256_128],
        prf: vec![vpn_ike_crypto::PrfAlgorithm::HmacSha256],
        dh: vec![vpn_ike_crypto::dh::DhGroup::Modp1024],
    };
    let esp = EspProposal {
        encr: vec![EncrAlgorithm::AesCbc128],
        integ: vec![IntegAlgorithm::HmacSha256_128],
        dh: vec![],
        esn: false,
    };
    initiator_run(Some((ike, esp, "aes128-sha256-modp1024", "aes128-sha256")))
}

/// router-a behind the lab's 1:1 NAT (like an EC2 Elastic IP): a real NAT, detected by both.
#[test]
fn our_initiator_behind_nat_against_charon() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec {
        nat: true,
        ..LabSpec::default()
    })?;
    let psk = vpn_lab::strongswan::Psk::random()?;
    let (_, conn_b) = Connection::lab_pair(&psk);
    let b = Charon::start(&lab, Node::RouterB)?;
    b.load(&[conn_b])?;
    let sockets = Sockets::bind(&lab, Node::RouterA, addr::ROUTER_A_WAN_PRIVATE)?;
    let mut config = our_config(
        addr::ROUTER_A_WAN_PRIVATE,
        addr::ROUTER_B_WAN,
        &psk_text(&psk),
        addr::HOST_A,
        addr::HOST_B,
    );
    // The identity charon expects is the public address.
    config.local_id = Identity::Address(IpAddr::V4(addr::ROUTER_A_WAN));
    let now = Instant::now();
    let mut sa = IkeSa::initiator(config, os_rng()?, now)?;
    sa.initiate(now);
    let events = pump_until(&mut sa, &sockets, &b, 20, |e| {
        matches!(e, Event::ChildSaInstalled(_))
    })?;
    assert!(events.iter().any(|e| matches!(
        e,
        Event::IkeSaEstablished {
            nat_detected: true,
            ..
        }
    )));
    let ours = installed_in(&events).context("child")?;
    assert_eq!(ours.local_addr, v4(addr::ROUTER_A_WAN_PRIVATE, 4500));
    let theirs = b.wait_installed("net", Duration::from_secs(5))?;
    assert_eq!((theirs.spi_in, theirs.spi_out), (ours.spi_out, ours.spi_in));
    assert!(
        b.log().contains("local host is behind NAT")
            || b.log().contains("remote host is behind NAT"),
        "charon did not see the NAT:\n{}",
        b.log()
    );
    assert!(b.logged_child_keys().contains(&as_logged(ours, true)));
    Ok(())
}

fn initiator_run(
    proposals: Option<(
        vpn_ike::config::IkeProposal,
        vpn_ike::config::EspProposal,
        &str,
        &str,
    )>,
) -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec::default())?;
    let psk = vpn_lab::strongswan::Psk::random()?;
    let (_, mut conn_b) = Connection::lab_pair(&psk);
    let mut config = our_config(
        addr::ROUTER_A_WAN,
        addr::ROUTER_B_WAN,
        &psk_text(&psk),
        addr::HOST_A,
        addr::HOST_B,
    );
    if let Some((ike, esp, ike_text, esp_text)) = proposals {
        config.ike_proposals = vec![ike];
        config.esp_proposals = vec![esp];
        conn_b.ike_proposals = vec![ike_text.to_owned()];
        conn_b.esp_proposals = vec![esp_text.to_owned()];
    }
    let b = Charon::start(&lab, Node::RouterB)?;
    b.load(&[conn_b])?;
    let sockets = Sockets::bind(&lab, Node::RouterA, addr::ROUTER_A_WAN)?;
    let now = Instant::now();
    let mut sa = IkeSa::initiator(config, os_rng()?, now)?;
    sa.initiate(now);
    let deadline = now + Duration::from_secs(20);
    let mut child = None;
    while child.is_none() {
        if Instant::now() > deadline {
            bail!(
                "no CHILD_SA after 20 s; stats {:?}\n{}",
                sa.stats(),
                b.log()
            );
        }
        while let Some(t) = sa.poll_transmit() {
            sockets.send(&t)?;
        }
        for (from, to, d) in sockets.recv()? {
            sa.handle_datagram(Instant::now(), from, to, &d);
        }
        if sa.poll_timeout().is_some_and(|t| t <= Instant::now()) {
            sa.handle_timeout(Instant::now());
        }
        while let Some(e) = sa.poll_event() {
            match e {
                Event::ChildSaInstalled(c) => child = Some(c),
                Event::IkeSaClosed { reason } => bail!("closed: {reason:?}\n{}", b.log()),
                Event::ChildSaFailed { reason } => bail!("child failed: {reason:?}\n{}", b.log()),
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let ours = child.unwrap();
    let theirs = b.wait_installed("net", Duration::from_secs(5))?;
    assert_eq!(theirs.spi_in, ours.spi_out, "SPI of a->b");
    assert_eq!(theirs.spi_out, ours.spi_in, "SPI of b->a");
    assert!(ours.udp_encap.is_some(), "libipsec fakes a NAT: ESP in UDP");
    let logged = b.logged_child_keys();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0], as_logged(&ours, true), "CHILD_SA keys differ");
    // DELETE on close.
    sa.close(Instant::now());
    while let Some(t) = sa.poll_transmit() {
        sockets.send(&t)?;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.list_sas()?.is_empty() {
        if Instant::now() > deadline {
            bail!("charon kept the SA after our DELETE");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

#[test]
fn charon_initiator_against_our_responder() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec::default())?;
    let psk = vpn_lab::strongswan::Psk::random()?;
    let (conn_a, _) = Connection::lab_pair(&psk);
    let a = Charon::start(&lab, Node::RouterA)?;
    a.load(&[conn_a])?;
    let sockets = Sockets::bind(&lab, Node::RouterB, addr::ROUTER_B_WAN)?;
    let config = our_config(
        addr::ROUTER_B_WAN,
        addr::ROUTER_A_WAN,
        &psk_text(&psk),
        addr::HOST_B,
        addr::HOST_A,
    );
    let mut listener = Listener::new(vec![config], os_rng()?)?;
    let ours = std::thread::scope(|s| -> anyhow::Result<Box<ChildSaInstalled>> {
        let initiating = s.spawn(|| a.initiate("net"));
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut child = None;
        while child.is_none() || !initiating.is_finished() {
            if Instant::now() > deadline {
                bail!(
                    "no CHILD_SA after 20 s; stats {:?}\n{}",
                    listener.stats(),
                    a.log()
                );
            }
            for (from, to, d) in sockets.recv()? {
                listener.handle_datagram(Instant::now(), from, to, &d);
            }
            if listener.poll_timeout().is_some_and(|t| t <= Instant::now()) {
                listener.handle_timeout(Instant::now());
            }
            while let Some(t) = listener.poll_transmit() {
                sockets.send(&t)?;
            }
            while let Some(e) = listener.poll_event() {
                match e.event {
                    Event::ChildSaInstalled(c) => child = Some(c),
                    Event::IkeSaClosed { reason } => bail!("closed: {reason:?}\n{}", a.log()),
                    _ => {}
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        initiating
            .join()
            .map_err(|_| anyhow::anyhow!("initiate panicked"))??;
        child.context("no child")
    })?;
    let theirs = a.wait_installed("net", Duration::from_secs(5))?;
    assert_eq!(theirs.spi_in, ours.spi_out, "SPI of b->a");
    assert_eq!(theirs.spi_out, ours.spi_in, "SPI of a->b");
    assert!(ours.udp_encap.is_some(), "libipsec fakes a NAT: ESP in UDP");
    let logged = a.logged_child_keys();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0], as_logged(&ours, false), "CHILD_SA keys differ");

    // charon deletes the IKE SA: we answer and report it.
    let reason = std::thread::scope(|s| -> anyhow::Result<vpn_ike::CloseReason> {
        let terminating = s.spawn(|| a.terminate_ike("lab"));
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut reason = None;
        while reason.is_none() || !terminating.is_finished() {
            if Instant::now() > deadline {
                bail!(
                    "no DELETE handled; stats {:?}\n{}",
                    listener.stats(),
                    a.log()
                );
            }
            for (from, to, d) in sockets.recv()? {
                listener.handle_datagram(Instant::now(), from, to, &d);
            }
            while let Some(t) = listener.poll_transmit() {
                sockets.send(&t)?;
            }
            while let Some(e) = listener.poll_event() {
                if let Event::IkeSaClosed { reason: r } = e.event {
                    reason = Some(r);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        terminating
            .join()
            .map_err(|_| anyhow::anyhow!("terminate panicked"))??;
        reason.context("no close")
    })?;
    assert_eq!(reason, vpn_ike::CloseReason::PeerDeleted);
    assert!(listener.sa_spis().is_empty());
    assert!(a.list_sas()?.is_empty());
    Ok(())
}

/// Pumps `sa` over `sockets` until `done` says so for an event, or fails after `secs`.
fn pump_until<R: rand_core::CryptoRng>(
    sa: &mut IkeSa<R>,
    sockets: &Sockets,
    charon: &Charon,
    secs: u64,
    mut done: impl FnMut(&Event) -> bool,
) -> anyhow::Result<Vec<Event>> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    loop {
        if Instant::now() > deadline {
            bail!(
                "timed out; events {seen:?}; stats {:?}\n{}",
                sa.stats(),
                charon.log()
            );
        }
        while let Some(t) = sa.poll_transmit() {
            sockets.send(&t)?;
        }
        for (from, to, d) in sockets.recv()? {
            sa.handle_datagram(Instant::now(), from, to, &d);
        }
        if sa.poll_timeout().is_some_and(|t| t <= Instant::now()) {
            sa.handle_timeout(Instant::now());
        }
        while let Some(t) = sa.poll_transmit() {
            sockets.send(&t)?;
        }
        let mut finished = false;
        while let Some(e) = sa.poll_event() {
            if let Event::IkeSaClosed { reason } = e {
                bail!("closed: {reason:?}\n{}", charon.log());
            }
            finished |= done(&e);
            seen.push(e);
        }
        if finished {
            return Ok(seen);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn installed_in(events: &[Event]) -> Option<&ChildSaInstalled> {
    events.iter().rev().find_map(|e| match e {
        Event::ChildSaInstalled(c) => Some(&**c),
        _ => None,
    })
}

#[test]
fn child_rekey_with_pfs_both_ways() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec::default())?;
    let psk = vpn_lab::strongswan::Psk::random()?;
    let (_, mut conn_b) = Connection::lab_pair(&psk);
    conn_b.esp_proposals = vec!["aes256gcm16-curve25519".to_owned()];
    conn_b.child_rekey_time = Some(Duration::from_secs(10));
    let b = Charon::start(&lab, Node::RouterB)?;
    b.load(&[conn_b])?;
    let sockets = Sockets::bind(&lab, Node::RouterA, addr::ROUTER_A_WAN)?;
    let mut config = our_config(
        addr::ROUTER_A_WAN,
        addr::ROUTER_B_WAN,
        &psk_text(&psk),
        addr::HOST_A,
        addr::HOST_B,
    );
    config.esp_proposals[0].dh = vec![vpn_ike_crypto::dh::DhGroup::Curve25519];
    let now = Instant::now();
    let mut sa = IkeSa::initiator(config, os_rng()?, now)?;
    sa.initiate(now);
    let first = pump_until(&mut sa, &sockets, &b, 20, |e| {
        matches!(e, Event::ChildSaInstalled(_))
    })?;
    let first_spi = installed_in(&first).context("first child")?.spi_in;

    // charon rekeys after 9-10 s (with PFS), then deletes the old pair. (Shorter rekey times
    // do not work with kernel-libipsec: its whole-second expiry lets the hard limit, 1.1 x the
    // rekey time, fire first.)
    let events = pump_until(
        &mut sa,
        &sockets,
        &b,
        25,
        |e| matches!(e, Event::ChildSaDeleted { spi_in, .. } if *spi_in == first_spi),
    )?;
    let Some(second) = installed_in(&events) else {
        bail!("no rekeyed child: {events:?}\n{}", b.log());
    };
    assert_eq!(second.rekeyed_from, Some(first_spi));
    let theirs = b.wait_installed("net", Duration::from_secs(5))?;
    assert_eq!(
        (theirs.spi_in, theirs.spi_out),
        (second.spi_out, second.spi_in)
    );
    let logged = b.logged_child_keys();
    assert!(
        logged.contains(&as_logged(second, false)),
        "keys of charon's rekey differ"
    );
    let second_spi = second.spi_in;

    // Now we rekey (we start the exchange, so our outbound keys come first).
    sa.rekey_child(Instant::now(), second_spi);
    let events = pump_until(
        &mut sa,
        &sockets,
        &b,
        10,
        |e| matches!(e, Event::ChildSaDeleted { spi_in, .. } if *spi_in == second_spi),
    )?;
    let third = installed_in(&events).context("our rekeyed child")?;
    assert_eq!(third.rekeyed_from, Some(second_spi));
    let sas = b.list_sas()?;
    let children: Vec<(u32, u32)> = sas
        .iter()
        .flat_map(|i| &i.children)
        .filter(|c| c.state == "INSTALLED")
        .map(|c| (c.spi_in, c.spi_out))
        .collect();
    assert!(
        children.contains(&(third.spi_out, third.spi_in)),
        "charon lists {children:x?}"
    );
    assert!(
        b.logged_child_keys().contains(&as_logged(third, true)),
        "keys of our rekey differ"
    );
    Ok(())
}
