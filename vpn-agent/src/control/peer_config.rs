//! One resolved [`vpn_config::Tunnel`] (with the router's identity, the run-time WAN address
//! and the tunnel's resolved secret: a PSK or a PEM private key) as the IKE engine's
//! [`vpn_ike::PeerConfig`].
//!
//! Mapping rules:
//! * authentication: `psk` as the engine's PSK; `rsa` / `ecdsa` / `ed25519` as a private key
//!   (PEM: PKCS#8, PKCS#1 or SEC1, already read from its mode-0600 file by
//!   `Config::resolve_secrets`) that must be of the configured type, and the peer's public
//!   key read from `tunnel.peer_public_key` (PEM SPKI or PKCS#1, or an `rsasigkey` `0s...`
//!   value). We sign with RFC 7427 (RSA-PSS, ECDSA, Ed25519) when the peer announces a usable
//!   hash, RSA keys otherwise with auth method 1 (seed 004's raw RSA keys);
//! * addresses: ours is the WAN address given at run time, the peer's is `tunnel.peer`, both
//!   on port 500 (NAT-T on 4500);
//! * identities: ours is `router.identity`, else `router.wan_public_address` (1:1 NAT, as the
//!   model documents), else the WAN address; the peer's is `tunnel.remote_identity` (the
//!   model already defaults it to the peer's address); key ids are sent as the bytes written;
//! * proposals: each algorithm onto the engine's enum; a config proposal that mixes AEAD and
//!   classic ciphers becomes two engine proposals (AEAD ones without integrity, RFC 7296
//!   §3.3), in the order of their first cipher; an algorithm the engine lacks is an error
//!   naming the tunnel, the proposal and the algorithm;
//! * selectors: the policy prefixes, or the `0.0.0.0/0` (`::/0`) pair of route-based tunnels;
//! * lifetimes, DPD, force_encap and the replay window as configured (fuzz percent / 100);
//!   NAT-keepalives every 20 s while behind a NAT (RFC 3948 section 2.3).
//!
//! What `PeerConfig` has no field for (startup, NAT-T enable) is
//! returned next to it in [`TunnelPeer`]. The result is checked with
//! [`PeerConfig::validate`]. Neither the result's `Debug` nor any error shows the PSK or the
//! private key.

#![allow(dead_code)] // wired into the IKE driver next

use std::io::Read as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::IpNet;
use vpn_config::{
    AuthMethod, DhGroup, Encryption, Esn, IkeVersion, Integrity, Prf, Proposal, Router, Secret,
    Startup, Tunnel,
};
use vpn_ike::PeerConfig;
use vpn_ike::config::{Auth, KeyAuth, SignatureMode};
use vpn_ike::config::{
    DEFAULT_FRAGMENT_SIZE, DpdAction as IkeDpdAction, DpdConfig, EspProposal, IKE_PORT,
    Identity as IkeIdentity, IkeProposal, Lifetimes as IkeLifetimes, NAT_KEEPALIVE_INTERVAL,
    NAT_T_PORT, Psk, RetransmitConfig, TrafficSelector,
};
use vpn_ike_crypto::PrfAlgorithm;
use vpn_ike_crypto::auth::{RsaPadding, SigningKey, VerifyingKey};
use vpn_ike_crypto::dh::DhGroup as IkeDh;
use vpn_ike_crypto::ike_cipher::{EncrAlgorithm, IntegAlgorithm};
use vpn_ike_crypto::keyfile::KeyKind;

/// A tunnel ready for the IKE engine.
#[derive(Debug, Clone)]
pub struct TunnelPeer {
    /// The tunnel's name in the configuration.
    pub tunnel: String,
    /// The engine's configuration (its PSK or private key prints as `[REDACTED]`).
    pub config: PeerConfig,
    /// Initiate at start (and after a DPD restart), or only respond.
    pub startup: Startup,
    /// NAT detection and the move to UDP 4500 enabled (the engine always detects NAT; the
    /// driver must honour `false`).
    pub nat_traversal: bool,
    /// RFC 7383 IKE fragmentation wanted (the engine announces it and reassembles; it does
    /// not fragment what it sends yet).
    pub fragmentation: bool,
}

/// Which proposal list an algorithm came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalList {
    Ike,
    Esp,
}

impl std::fmt::Display for ProposalList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProposalList::Ike => "ike_proposals",
            ProposalList::Esp => "esp_proposals",
        })
    }
}

/// Why a tunnel cannot be given to the IKE engine. Never contains the PSK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerConfigError {
    #[error(
        "tunnel `{tunnel}`: {list}[{index}] `{proposal}`: the IKE engine does not implement {algorithm}"
    )]
    UnsupportedAlgorithm {
        tunnel: String,
        list: ProposalList,
        /// 0-based position in the list.
        index: usize,
        /// The proposal in strongSwan syntax, as resolved.
        proposal: String,
        /// strongSwan's keyword of the algorithm.
        algorithm: &'static str,
    },
    #[error("tunnel `{tunnel}`: IKEv1 is not supported by the IKE engine (IKEv2 only)")]
    IkeV1 { tunnel: String },
    #[error("tunnel `{tunnel}`: the pre-shared key is empty")]
    EmptyPsk { tunnel: String },
    /// The private key does not parse (the reason names the check, never key material).
    #[error("tunnel `{tunnel}`: unusable private key: {reason}")]
    PrivateKey {
        tunnel: String,
        reason: &'static str,
    },
    #[error(
        "tunnel `{tunnel}`: {method:?} authentication configured, but the private key is {key}"
    )]
    KeyType {
        tunnel: String,
        method: AuthMethod,
        key: KeyKind,
    },
    #[error("tunnel `{tunnel}`: key authentication needs peer_public_key")]
    NoPeerPublicKey { tunnel: String },
    #[error("tunnel `{tunnel}`: peer public key {}: {reason}", path.display())]
    PeerPublicKey {
        tunnel: String,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "tunnel `{tunnel}`: the local WAN address {local} and the peer {peer} are of different address families"
    )]
    AddressFamily {
        tunnel: String,
        local: IpAddr,
        peer: IpAddr,
    },
    #[error("tunnel `{tunnel}`: the IKE engine refuses the configuration: {source}")]
    Engine {
        tunnel: String,
        #[source]
        source: vpn_ike::config::ConfigError,
    },
}

/// Largest public key file read (an RSA-8192 SPKI PEM is under 2 KiB).
const MAX_PUBLIC_KEY_FILE: u64 = 64 * 1024;

/// Reads the peer's public key file (public: no permission check, but a regular file of
/// sane size).
fn peer_public_key(tunnel: &Tunnel) -> Result<VerifyingKey, PeerConfigError> {
    let path: &Path =
        tunnel
            .peer_public_key
            .as_deref()
            .ok_or_else(|| PeerConfigError::NoPeerPublicKey {
                tunnel: tunnel.name.clone(),
            })?;
    let error = |reason: String| PeerConfigError::PeerPublicKey {
        tunnel: tunnel.name.clone(),
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| error(e.to_string()))?;
    let meta = file.metadata().map_err(|e| error(e.to_string()))?;
    if !meta.is_file() {
        return Err(error("not a regular file".into()));
    }
    let mut text = Vec::new();
    file.take(MAX_PUBLIC_KEY_FILE + 1)
        .read_to_end(&mut text)
        .map_err(|e| error(e.to_string()))?;
    if text.len() as u64 > MAX_PUBLIC_KEY_FILE {
        return Err(error(format!("larger than {MAX_PUBLIC_KEY_FILE} bytes")));
    }
    VerifyingKey::from_pem(&text).map_err(|e| error(e.to_string()))
}

/// Checks that a key tunnel's private key parses and fits its method and that the peer's
/// public key file loads (`vpn-agent validate --secrets`); PSK tunnels pass when non-empty.
pub fn check_keys(tunnel: &Tunnel, secret: &Secret) -> Result<(), PeerConfigError> {
    auth(tunnel, secret).map(|_| ())
}

/// The engine's authentication for `tunnel` with its resolved `secret`.
fn auth(tunnel: &Tunnel, secret: &Secret) -> Result<Auth, PeerConfigError> {
    let name = || tunnel.name.clone();
    let method = tunnel.auth.method;
    if method == AuthMethod::Psk {
        if secret.is_empty() {
            return Err(PeerConfigError::EmptyPsk { tunnel: name() });
        }
        return Ok(Auth::Psk(Psk::new(secret.expose().to_vec())));
    }
    let key = SigningKey::from_pem(secret.expose()).map_err(|e| PeerConfigError::PrivateKey {
        tunnel: name(),
        reason: match e {
            vpn_ike_crypto::auth::AuthError::InvalidKey(reason) => reason,
            _ => "cannot be used",
        },
    })?;
    let fits = matches!(
        (method, key.kind()),
        (AuthMethod::Rsa, KeyKind::Rsa(_))
            | (AuthMethod::Ecdsa, KeyKind::EcdsaP256 | KeyKind::EcdsaP384)
            | (AuthMethod::Ed25519, KeyKind::Ed25519)
    );
    if !fits {
        return Err(PeerConfigError::KeyType {
            tunnel: name(),
            method,
            key: key.kind(),
        });
    }
    Ok(Auth::PublicKey(Box::new(KeyAuth {
        local_key: Arc::new(key),
        peer_key: peer_public_key(tunnel)?,
        // RFC 7427 with RSA-PSS when the peer announces SHA2-256; RSA keys fall back to
        // method 1 for peers that do not (seed 004's strongSwan `rsasigkey` setups).
        mode: SignatureMode::DigitalSignature {
            rsa: RsaPadding::Pss,
        },
    })))
}

/// Maps `tunnel` (of a configuration whose `[router]` is `router`) to the engine's
/// configuration. `wan_addr` is the WAN interface's address at run time; `secret` is the
/// tunnel's resolved PSK or private key (`Config::resolve_secrets()?.tunnel(&tunnel.name)`).
/// With key authentication, the peer's public key file is read here.
pub fn peer_config(
    router: &Router,
    tunnel: &Tunnel,
    wan_addr: IpAddr,
    secret: &Secret,
) -> Result<TunnelPeer, PeerConfigError> {
    let name = || tunnel.name.clone();
    if tunnel.ike_version == IkeVersion::V1 {
        return Err(PeerConfigError::IkeV1 { tunnel: name() });
    }
    let auth = auth(tunnel, secret)?;
    if wan_addr.is_ipv4() != tunnel.peer.is_ipv4() {
        return Err(PeerConfigError::AddressFamily {
            tunnel: name(),
            local: wan_addr,
            peer: tunnel.peer,
        });
    }

    let mut ike_proposals = Vec::new();
    for (index, p) in tunnel.ike_proposals.iter().enumerate() {
        ike_proposals.extend(ike_proposal(tunnel, index, p)?);
    }
    let mut esp_proposals = Vec::new();
    for (index, p) in tunnel.esp_proposals.iter().enumerate() {
        esp_proposals.extend(esp_proposal(tunnel, index, p)?);
    }

    let local_id = match (&router.identity, router.wan_public_address) {
        (Some(id), _) => identity(id),
        (None, Some(public)) => IkeIdentity::Address(public),
        (None, None) => IkeIdentity::Address(wan_addr),
    };
    let (local_ts, remote_ts) = tunnel.selectors();
    let l = &tunnel.lifetimes;
    let config = PeerConfig {
        local_addr: SocketAddr::new(wan_addr, IKE_PORT),
        remote_addr: SocketAddr::new(tunnel.peer, IKE_PORT),
        nat_t_port: NAT_T_PORT,
        local_id,
        remote_id: Some(identity(&tunnel.remote_identity)),
        auth,
        ike_proposals,
        esp_proposals,
        local_ts: local_ts.iter().map(selector).collect(),
        remote_ts: remote_ts.iter().map(selector).collect(),
        lifetimes: IkeLifetimes {
            ike: l.ike,
            child: l.child,
            margin: l.rekey_margin,
            fuzz: f64::from(l.rekey_fuzz_percent) / 100.0,
        },
        dpd: Some(DpdConfig {
            delay: tunnel.dpd.delay,
            timeout: tunnel.dpd.timeout,
            action: match tunnel.dpd.action {
                vpn_config::DpdAction::Clear => IkeDpdAction::Clear,
                vpn_config::DpdAction::Restart => IkeDpdAction::Restart,
                vpn_config::DpdAction::None => IkeDpdAction::None,
            },
        }),
        retransmit: RetransmitConfig::default(),
        force_encap: tunnel.force_encap,
        replay_window: tunnel.replay_window,
        initial_contact: true,
        nat_keepalive: Some(NAT_KEEPALIVE_INTERVAL),
        // Fragments no larger than the path's packets, nor than strongSwan's default.
        fragmentation: tunnel
            .fragmentation
            .then_some(tunnel.outer_mtu.min(DEFAULT_FRAGMENT_SIZE)),
    };
    config
        .validate()
        .map_err(|source| PeerConfigError::Engine {
            tunnel: name(),
            source,
        })?;
    Ok(TunnelPeer {
        tunnel: name(),
        config,
        startup: tunnel.startup,
        nat_traversal: tunnel.nat_traversal,
        fragmentation: tunnel.fragmentation,
    })
}

fn identity(id: &vpn_config::Identity) -> IkeIdentity {
    match id {
        vpn_config::Identity::Ipv4(a) => IkeIdentity::Address(IpAddr::V4(*a)),
        vpn_config::Identity::Ipv6(a) => IkeIdentity::Address(IpAddr::V6(*a)),
        vpn_config::Identity::Fqdn(s) => IkeIdentity::Fqdn(s.clone()),
        vpn_config::Identity::Email(s) => IkeIdentity::Email(s.clone()),
        vpn_config::Identity::KeyId(s) => IkeIdentity::KeyId(s.as_bytes().to_vec()),
    }
}

/// A prefix, all protocols and ports.
fn selector(net: &IpNet) -> TrafficSelector {
    TrafficSelector {
        protocol: 0,
        start_port: 0,
        end_port: u16::MAX,
        start: net.network(),
        end: net.broadcast(),
    }
}

/// `None`: the engine does not implement it.
fn encryption(e: Encryption) -> Option<EncrAlgorithm> {
    Some(match e {
        Encryption::AesCbc128 => EncrAlgorithm::AesCbc128,
        Encryption::AesCbc192 => EncrAlgorithm::AesCbc192,
        Encryption::AesCbc256 => EncrAlgorithm::AesCbc256,
        Encryption::AesGcm16_128 => EncrAlgorithm::AesGcm16_128,
        Encryption::AesGcm16_192 => EncrAlgorithm::AesGcm16_192,
        Encryption::AesGcm16_256 => EncrAlgorithm::AesGcm16_256,
        Encryption::ChaCha20Poly1305 => return None,
    })
}

fn integrity(i: Integrity) -> IntegAlgorithm {
    match i {
        Integrity::HmacSha1_96 => IntegAlgorithm::HmacSha1_96,
        Integrity::HmacSha256_128 => IntegAlgorithm::HmacSha256_128,
        Integrity::HmacSha384_192 => IntegAlgorithm::HmacSha384_192,
        Integrity::HmacSha512_256 => IntegAlgorithm::HmacSha512_256,
    }
}

fn prf(p: Prf) -> PrfAlgorithm {
    match p {
        Prf::HmacSha1 => PrfAlgorithm::HmacSha1,
        Prf::HmacSha256 => PrfAlgorithm::HmacSha256,
        Prf::HmacSha384 => PrfAlgorithm::HmacSha384,
        Prf::HmacSha512 => PrfAlgorithm::HmacSha512,
    }
}

/// `None`: the engine does not implement it.
fn dh(g: DhGroup) -> Option<IkeDh> {
    Some(match g {
        DhGroup::Modp1024 => IkeDh::Modp1024,
        DhGroup::Modp1536 => IkeDh::Modp1536,
        DhGroup::Modp2048 => IkeDh::Modp2048,
        DhGroup::Modp3072 => IkeDh::Modp3072,
        DhGroup::Modp4096 => IkeDh::Modp4096,
        DhGroup::Modp6144 => IkeDh::Modp6144,
        DhGroup::Modp8192 => IkeDh::Modp8192,
        DhGroup::Ecp256 => IkeDh::Ecp256,
        DhGroup::Ecp384 => IkeDh::Ecp384,
        DhGroup::Ecp521 => IkeDh::Ecp521,
        DhGroup::Modp1024s160 => IkeDh::Modp1024S160,
        DhGroup::Modp2048s224 => IkeDh::Modp2048S224,
        DhGroup::Modp2048s256 => IkeDh::Modp2048S256,
        DhGroup::Curve25519 => IkeDh::Curve25519,
        DhGroup::Curve448 => return None,
    })
}

/// The algorithms of one config proposal on the engine's side: the ciphers split into the
/// AEAD group and the classic group (in the order their first member appears), integrity
/// (for the classic group only) and DH groups.
struct Mapped {
    groups: Vec<Vec<EncrAlgorithm>>,
    integ: Vec<IntegAlgorithm>,
    dh: Vec<IkeDh>,
}

fn map_common(
    tunnel: &Tunnel,
    list: ProposalList,
    index: usize,
    p: &Proposal,
) -> Result<Mapped, PeerConfigError> {
    let unsupported = |algorithm: &'static str| PeerConfigError::UnsupportedAlgorithm {
        tunnel: tunnel.name.clone(),
        list,
        index,
        proposal: p.to_string(),
        algorithm,
    };
    let mut aead = Vec::new();
    let mut classic = Vec::new();
    let mut aead_first = None;
    for e in &p.encryption {
        let mapped = encryption(*e).ok_or_else(|| unsupported(e.keyword()))?;
        aead_first.get_or_insert(e.is_aead());
        if e.is_aead() {
            aead.push(mapped);
        } else {
            classic.push(mapped);
        }
    }
    let mut dh_groups = Vec::new();
    for g in &p.dh {
        dh_groups.push(dh(*g).ok_or_else(|| unsupported(g.keyword()))?);
    }
    let groups = if aead_first == Some(false) {
        [classic, aead]
    } else {
        [aead, classic]
    };
    Ok(Mapped {
        groups: groups.into_iter().filter(|g| !g.is_empty()).collect(),
        integ: p.integrity.iter().map(|i| integrity(*i)).collect(),
        dh: dh_groups,
    })
}

fn ike_proposal(
    tunnel: &Tunnel,
    index: usize,
    p: &Proposal,
) -> Result<Vec<IkeProposal>, PeerConfigError> {
    let m = map_common(tunnel, ProposalList::Ike, index, p)?;
    let prfs: Vec<PrfAlgorithm> = p.prf.iter().map(|f| prf(*f)).collect();
    Ok(m.groups
        .into_iter()
        .map(|encr| IkeProposal {
            integ: if encr[0].is_aead() {
                Vec::new()
            } else {
                m.integ.clone()
            },
            encr,
            prf: prfs.clone(),
            dh: m.dh.clone(),
        })
        .collect())
}

fn esp_proposal(
    tunnel: &Tunnel,
    index: usize,
    p: &Proposal,
) -> Result<Vec<EspProposal>, PeerConfigError> {
    let m = map_common(tunnel, ProposalList::Esp, index, p)?;
    let esn = p.esn.contains(&Esn::Yes);
    Ok(m.groups
        .into_iter()
        .map(|encr| EspProposal {
            integ: if encr[0].is_aead() {
                Vec::new()
            } else {
                m.integ.clone()
            },
            encr,
            dh: m.dh.clone(),
            esn,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::net::Ipv4Addr;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use vpn_config::{Config, SecretSource, Secrets};

    use super::*;

    /// The WAN address "found at run time".
    const WAN: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200));

    fn examples_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config")
    }

    /// A key file of the IKE crypto crate's test keys.
    fn test_key(name: &str) -> String {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ike-crypto/tests/keys");
        fs::read_to_string(dir.join(name)).unwrap()
    }

    /// The PSK written for a secret file or variable: AWS-valid and different per source.
    fn psk_for(source: &str) -> String {
        let clean: String = source.chars().filter(char::is_ascii_alphanumeric).collect();
        format!("Psk.{clean}_0123456789")
    }

    /// Parses `text` with every secret provided: `/etc/vpn/` moved into `tmp` (files created
    /// with mode 0600), environment variables turned into files (so no test touches the
    /// process environment).
    fn load(text: &str, origin: &str, tmp: &Path) -> (Config, Secrets) {
        let text = text.replace("/etc/vpn/", &format!("{}/", tmp.display()));
        let mut c = Config::from_str(&text, origin).unwrap_or_else(|e| panic!("{e}"));
        // Key tunnels get a test key of their method and the peer's public key.
        for t in &c.tunnels {
            if let Some(p) = &t.peer_public_key {
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(p, test_key("rsa2048.spki.pem")).unwrap();
            }
        }
        let refs = c
            .tunnels
            .iter_mut()
            .map(|t| (t.auth.method, &mut t.auth.secret))
            .chain(c.router.auth.iter_mut().map(|a| (a.method, &mut a.secret)));
        for (method, r) in refs {
            let path = match &r.source {
                SecretSource::File(p) => p.clone(),
                SecretSource::Env(var) => tmp.join(format!("env-{var}")),
            };
            let content = match method {
                AuthMethod::Psk => psk_for(&r.source.to_string()),
                AuthMethod::Rsa => test_key("rsa2048.pkcs8.pem"),
                AuthMethod::Ecdsa => test_key("p256.pkcs8.pem"),
                AuthMethod::Ed25519 => test_key("ed25519.pkcs8.pem"),
            };
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, format!("{content}\n")).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            // The content is derived from the original source, so the expected PSK can be
            // computed from it; the file now holds it.
            fs::write(path.with_extension("expected"), &content).unwrap();
            r.source = SecretSource::File(path);
        }
        let s = c.resolve_secrets().unwrap_or_else(|e| panic!("{e}"));
        (c, s)
    }

    fn load_example(name: &str, tmp: &Path) -> (Config, Secrets) {
        let path = examples_dir().join(name);
        load(
            &fs::read_to_string(&path).unwrap(),
            &path.display().to_string(),
            tmp,
        )
    }

    fn map(c: &Config, s: &Secrets, name: &str) -> Result<TunnelPeer, PeerConfigError> {
        let t = c.tunnel(name).unwrap();
        peer_config(&c.router, t, WAN, s.tunnel(name).unwrap())
    }

    fn expected_psk(c: &Config, name: &str) -> Vec<u8> {
        let SecretSource::File(p) = &c.tunnel(name).unwrap().auth.secret.source else {
            panic!("sources were turned into files")
        };
        fs::read(p.with_extension("expected")).unwrap()
    }

    fn any4() -> Vec<TrafficSelector> {
        vec![TrafficSelector::any_v4()]
    }

    fn ts(s: &str) -> TrafficSelector {
        let (a, len) = s.split_once('/').unwrap();
        TrafficSelector::v4_prefix(a.parse().unwrap(), len.parse().unwrap())
    }

    fn addr(s: &str) -> IkeIdentity {
        IkeIdentity::Address(s.parse().unwrap())
    }

    #[test]
    fn every_example_maps_every_tunnel() {
        let mut files: Vec<PathBuf> = fs::read_dir(examples_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        assert_eq!(files.len(), 5, "{files:?}");
        let mut mapped = 0;
        for path in &files {
            let tmp = tempfile::tempdir().unwrap();
            let name = path.file_name().unwrap().to_str().unwrap();
            let (c, s) = load_example(name, tmp.path());
            for t in &c.tunnels {
                let what = format!("{name}: {}", t.name);
                let p = map(&c, &s, &t.name).unwrap_or_else(|e| panic!("{what}: {e}"));
                mapped += 1;
                let pc = &p.config;
                assert_eq!(p.tunnel, t.name);
                assert_eq!(pc.local_addr, SocketAddr::new(WAN, 500), "{what}");
                assert_eq!(pc.remote_addr, SocketAddr::new(t.peer, 500), "{what}");
                assert_eq!(pc.nat_t_port, 4500);
                let local_id = match (&c.router.identity, c.router.wan_public_address) {
                    (Some(vpn_config::Identity::Ipv4(a)), _) => IkeIdentity::Address((*a).into()),
                    (Some(other), _) => panic!("{what}: unexpected identity {other:?}"),
                    (None, Some(a)) => IkeIdentity::Address(a),
                    (None, None) => IkeIdentity::Address(WAN),
                };
                assert_eq!(pc.local_id, local_id, "{what}");
                assert_eq!(pc.remote_id, Some(IkeIdentity::Address(t.peer)), "{what}");
                match (t.auth.method, &pc.auth) {
                    (AuthMethod::Psk, Auth::Psk(psk)) => {
                        assert_eq!(psk.as_bytes(), expected_psk(&c, &t.name), "{what}")
                    }
                    (AuthMethod::Rsa, Auth::PublicKey(k)) => {
                        assert_eq!(k.local_key.kind(), KeyKind::Rsa(2048), "{what}");
                        assert_eq!(k.peer_key.kind(), KeyKind::Rsa(2048), "{what}");
                        assert_eq!(
                            k.mode,
                            SignatureMode::DigitalSignature {
                                rsa: RsaPadding::Pss
                            }
                        );
                    }
                    (m, a) => panic!("{what}: {m:?} mapped to {a:?}"),
                }
                // Every config proposal is there: its ciphers, in order, across the engine
                // proposals it became.
                let ike_encr: Vec<EncrAlgorithm> = pc
                    .ike_proposals
                    .iter()
                    .flat_map(|p| p.encr.clone())
                    .collect();
                let mut want: Vec<EncrAlgorithm> = t
                    .ike_proposals
                    .iter()
                    .flat_map(|p| p.encryption.iter().map(|e| encryption(*e).unwrap()))
                    .collect();
                assert_eq!(ike_encr.len(), want.len(), "{what}");
                want.retain(|e| !ike_encr.contains(e));
                assert!(want.is_empty(), "{what}");
                assert!(pc.esp_proposals.len() >= t.esp_proposals.len(), "{what}");
                let (l, r) = t.selectors();
                assert_eq!(pc.local_ts.len(), l.len(), "{what}");
                assert_eq!(pc.remote_ts.len(), r.len(), "{what}");
                for (sel, net) in pc
                    .local_ts
                    .iter()
                    .zip(&l)
                    .chain(pc.remote_ts.iter().zip(&r))
                {
                    assert_eq!((sel.start, sel.end), (net.network(), net.broadcast()));
                }
                assert_eq!(pc.lifetimes.ike, t.lifetimes.ike, "{what}");
                assert_eq!(pc.lifetimes.child, t.lifetimes.child, "{what}");
                assert_eq!(pc.lifetimes.margin, t.lifetimes.rekey_margin, "{what}");
                assert_eq!(
                    pc.lifetimes.fuzz * 100.0,
                    f64::from(t.lifetimes.rekey_fuzz_percent)
                );
                let dpd = pc.dpd.unwrap();
                assert_eq!((dpd.delay, dpd.timeout), (t.dpd.delay, t.dpd.timeout));
                assert_eq!(pc.replay_window, t.replay_window, "{what}");
                assert_eq!(pc.force_encap, t.force_encap, "{what}");
                assert_eq!(p.startup, t.startup, "{what}");
                assert_eq!(p.fragmentation, t.fragmentation, "{what}");
                assert_eq!(p.nat_traversal, t.nat_traversal, "{what}");
                assert_eq!(pc.validate(), Ok(()), "{what}");
            }
        }
        // aws-two-tunnels 2, aws-gcp-ha 4, onprem 2, vpc-peering 1, the mesh node's 2 (RSA).
        assert_eq!(mapped, 11);
    }

    #[test]
    fn aws_two_tunnels_field_by_field() {
        let tmp = tempfile::tempdir().unwrap();
        let (c, s) = load_example("aws-two-tunnels.toml", tmp.path());
        for (name, peer, startup) in [
            ("aws-t1", "198.51.100.10", Startup::Initiate),
            ("aws-t2", "198.51.100.20", Startup::Initiate),
        ] {
            let p = map(&c, &s, name).unwrap();
            let pc = &p.config;
            assert_eq!(pc.local_addr, "192.0.2.200:500".parse().unwrap());
            assert_eq!(pc.remote_addr, SocketAddr::new(peer.parse().unwrap(), 500));
            assert_eq!(pc.local_id, addr("203.0.113.10"));
            assert_eq!(pc.remote_id, Some(addr(peer)));
            assert_eq!(
                pc.auth.psk().unwrap().as_bytes(),
                psk_for(&format!("file {}/psk-{name}", tmp.path().display())).as_bytes()
            );
            // aws-t1 takes the aws profile's four proposals; aws-t2 spells out two (its
            // comment calls them "the AWS defaults", but the profile also offers AES-128).
            let ciphers: &[(EncrAlgorithm, Option<IntegAlgorithm>)] = if name == "aws-t1" {
                &[
                    (EncrAlgorithm::AesGcm16_256, None),
                    (EncrAlgorithm::AesGcm16_128, None),
                    (
                        EncrAlgorithm::AesCbc256,
                        Some(IntegAlgorithm::HmacSha256_128),
                    ),
                    (
                        EncrAlgorithm::AesCbc128,
                        Some(IntegAlgorithm::HmacSha256_128),
                    ),
                ]
            } else {
                &[
                    (EncrAlgorithm::AesGcm16_256, None),
                    (
                        EncrAlgorithm::AesCbc256,
                        Some(IntegAlgorithm::HmacSha256_128),
                    ),
                ]
            };
            let ike: Vec<IkeProposal> = ciphers
                .iter()
                .map(|(e, i)| IkeProposal {
                    encr: vec![*e],
                    integ: i.iter().copied().collect(),
                    prf: vec![PrfAlgorithm::HmacSha256],
                    dh: vec![IkeDh::Modp2048],
                })
                .collect();
            let esp: Vec<EspProposal> = ciphers
                .iter()
                .map(|(e, i)| EspProposal {
                    encr: vec![*e],
                    integ: i.iter().copied().collect(),
                    dh: vec![IkeDh::Modp2048],
                    esn: false,
                })
                .collect();
            assert_eq!(pc.ike_proposals, ike, "{name}");
            assert_eq!(pc.esp_proposals, esp, "{name}");
            assert_eq!(pc.local_ts, any4());
            assert_eq!(pc.remote_ts, any4());
            assert_eq!(
                pc.lifetimes,
                IkeLifetimes {
                    ike: Duration::from_secs(28_800),
                    child: Duration::from_secs(3_600),
                    margin: Duration::from_secs(540),
                    fuzz: 1.0,
                }
            );
            assert_eq!(
                pc.dpd,
                Some(DpdConfig {
                    delay: Duration::from_secs(10),
                    timeout: Duration::from_secs(30),
                    action: IkeDpdAction::Clear,
                })
            );
            assert_eq!(pc.nat_t_port, 4500);
            assert_eq!(pc.replay_window, 1024);
            assert!(!pc.force_encap);
            assert!(pc.initial_contact);
            assert_eq!(pc.retransmit, RetransmitConfig::default());
            assert_eq!(p.startup, startup);
            assert!(p.nat_traversal);
        }
    }

    #[test]
    fn other_examples_spot_checks() {
        let tmp = tempfile::tempdir().unwrap();
        // Policy tunnel, CBC, restart, identity = the 1:1 NAT public address.
        let (c, s) = load_example("onprem-strongswan-side.toml", tmp.path());
        let pc = map(&c, &s, "Tunnel2").unwrap().config;
        assert_eq!(pc.local_id, addr("203.0.113.25"));
        let cbc = IkeProposal {
            encr: vec![EncrAlgorithm::AesCbc256],
            integ: vec![IntegAlgorithm::HmacSha256_128],
            prf: vec![PrfAlgorithm::HmacSha256],
            dh: vec![IkeDh::Modp1024],
        };
        assert_eq!(pc.ike_proposals, vec![cbc]);
        assert_eq!(
            pc.esp_proposals,
            vec![EspProposal {
                encr: vec![EncrAlgorithm::AesCbc256],
                integ: vec![IntegAlgorithm::HmacSha256_128],
                dh: vec![IkeDh::Modp1024],
                esn: false,
            }]
        );
        assert_eq!(pc.local_ts, vec![ts("192.168.0.0/16")]);
        assert_eq!(pc.remote_ts, vec![ts("10.0.0.0/16")]);
        assert_eq!(pc.dpd.unwrap().action, IkeDpdAction::Restart);
        // The router's default PSK (an environment variable there).
        assert_eq!(
            pc.auth.psk().unwrap().as_bytes(),
            psk_for("environment variable VPN_PSK_TUNNEL2").as_bytes()
        );

        let tmp = tempfile::tempdir().unwrap();
        let (c, s) = load_example("vpc-peering-transit-masquerade.toml", tmp.path());
        let p = map(&c, &s, "office").unwrap();
        assert_eq!(p.startup, Startup::Respond);
        assert_eq!(
            p.config.local_ts,
            vec![
                ts("10.100.0.0/16"),
                ts("10.110.0.0/16"),
                ts("10.120.0.0/16")
            ]
        );
        assert_eq!(p.config.remote_ts, vec![ts("172.16.168.0/24")]);
        assert_eq!(p.config.lifetimes.ike, Duration::from_secs(4 * 3600));
        assert_eq!(
            p.config.auth.psk().unwrap().as_bytes(),
            psk_for("environment variable VPN_PSK_OFFICE").as_bytes()
        );

        let tmp = tempfile::tempdir().unwrap();
        let (c, s) = load_example("aws-gcp-ha-four-tunnels.toml", tmp.path());
        let pc = map(&c, &s, "aws-conn1-t1").unwrap().config;
        assert_eq!(
            pc.ike_proposals[0].dh,
            vec![IkeDh::Modp2048, IkeDh::Modp3072, IkeDh::Modp4096]
        );
        assert_eq!(pc.ike_proposals.len(), 1);
        assert!(map(&c, &s, "gcp-if0").unwrap().fragmentation);
        let gcp1 = map(&c, &s, "gcp-if1").unwrap().config;
        assert_eq!(gcp1.lifetimes.child, Duration::from_secs(3 * 3600));
    }

    const PSK: &str = "Sup3r.Secret_psk_value";

    fn inline(tmp: &Path, ike: &str, esp: &str) -> (Config, Secrets) {
        let psk = tmp.join("psk");
        fs::write(&psk, PSK).unwrap();
        fs::set_permissions(&psk, fs::Permissions::from_mode(0o600)).unwrap();
        let text = format!(
            r#"
[router]
name = "unit"
wan = "eth0"
lan = ["eth1"]
identity = {{ type = "fqdn", value = "gw.example.net" }}

[[tunnel]]
name = "lab"
peer = "198.51.100.9"
auth = {{ psk = {{ file = "{}" }} }}
ike_proposals = ["{ike}"]
esp_proposals = ["{esp}"]
selectors = {{ local = ["10.1.0.0/16"], remote = ["10.2.0.0/16"] }}
"#,
            psk.display()
        );
        let c = Config::from_str(&text, "unit.toml").unwrap_or_else(|e| panic!("{e}"));
        let s = c.resolve_secrets().unwrap();
        (c, s)
    }

    #[test]
    fn mixed_aead_and_classic_become_two_proposals() {
        let tmp = tempfile::tempdir().unwrap();
        let (c, s) = inline(
            tmp.path(),
            "aes256-aes192gcm16-aes128gcm16-sha384-sha256-prfsha256-ecp256-ecp521",
            "aes128gcm16-aes256-sha512-curve25519-esn",
        );
        let p = map(&c, &s, "lab").unwrap();
        assert_eq!(
            p.config.local_id,
            IkeIdentity::Fqdn("gw.example.net".into())
        );
        assert_eq!(
            p.config.ike_proposals,
            vec![
                IkeProposal {
                    encr: vec![EncrAlgorithm::AesCbc256],
                    integ: vec![
                        IntegAlgorithm::HmacSha384_192,
                        IntegAlgorithm::HmacSha256_128
                    ],
                    prf: vec![PrfAlgorithm::HmacSha256],
                    dh: vec![IkeDh::Ecp256, IkeDh::Ecp521],
                },
                IkeProposal {
                    encr: vec![EncrAlgorithm::AesGcm16_192, EncrAlgorithm::AesGcm16_128],
                    integ: vec![],
                    prf: vec![PrfAlgorithm::HmacSha256],
                    dh: vec![IkeDh::Ecp256, IkeDh::Ecp521],
                },
            ]
        );
        assert_eq!(
            p.config.esp_proposals,
            vec![
                EspProposal {
                    encr: vec![EncrAlgorithm::AesGcm16_128],
                    integ: vec![],
                    dh: vec![IkeDh::Curve25519],
                    esn: true,
                },
                EspProposal {
                    encr: vec![EncrAlgorithm::AesCbc256],
                    integ: vec![IntegAlgorithm::HmacSha512_256],
                    dh: vec![IkeDh::Curve25519],
                    esn: true,
                },
            ]
        );
    }

    /// The fallbacks the resolved examples never reach (resolve fills `router.identity` from
    /// `wan_public_address`), and the knobs no PSK example sets.
    #[test]
    fn identity_fallbacks_and_flags() {
        let tmp = tempfile::tempdir().unwrap();
        let (c, s) = inline(tmp.path(), "aes256gcm16-prfsha256-modp2048", "aes256gcm16");
        let secret = s.tunnel("lab").unwrap();
        let mut t = c.tunnel("lab").unwrap().clone();
        t.force_encap = true;
        t.replay_window = 64;
        t.startup = Startup::Respond;
        t.dpd.action = vpn_config::DpdAction::None;
        t.remote_identity = vpn_config::Identity::KeyId("peer-key".into());
        let mut router = c.router.clone();
        router.identity = None;
        router.wan_public_address = Some("203.0.113.99".parse().unwrap());
        let p = peer_config(&router, &t, WAN, secret).unwrap();
        assert_eq!(p.config.local_id, addr("203.0.113.99"));
        assert_eq!(
            p.config.remote_id,
            Some(IkeIdentity::KeyId(b"peer-key".to_vec()))
        );
        assert!(p.config.force_encap);
        assert_eq!(p.config.replay_window, 64);
        assert_eq!(p.startup, Startup::Respond);
        assert_eq!(p.config.dpd.unwrap().action, IkeDpdAction::None);
        router.wan_public_address = None;
        let p = peer_config(&router, &t, WAN, secret).unwrap();
        assert_eq!(p.config.local_id, IkeIdentity::Address(WAN));
        router.identity = Some(vpn_config::Identity::Email("vpn@example.net".into()));
        let p = peer_config(&router, &t, WAN, secret).unwrap();
        assert_eq!(
            p.config.local_id,
            IkeIdentity::Email("vpn@example.net".into())
        );
    }

    #[test]
    fn unsupported_algorithms_are_typed_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let (c, s) = inline(
            tmp.path(),
            "aes256gcm16-prfsha256-modp2048",
            "aes256gcm16-chacha20poly1305-modp2048",
        );
        let err = map(&c, &s, "lab").unwrap_err();
        assert_eq!(
            err,
            PeerConfigError::UnsupportedAlgorithm {
                tunnel: "lab".into(),
                list: ProposalList::Esp,
                index: 0,
                proposal: "aes256gcm16-chacha20poly1305-modp2048".into(),
                algorithm: "chacha20poly1305",
            }
        );
        assert_eq!(
            err.to_string(),
            "tunnel `lab`: esp_proposals[0] `aes256gcm16-chacha20poly1305-modp2048`: the IKE engine does not implement chacha20poly1305"
        );

        let tmp = tempfile::tempdir().unwrap();
        let (c, s) = inline(
            tmp.path(),
            "aes256gcm16-prfsha384-modp2048-curve448",
            "aes256gcm16",
        );
        assert_eq!(
            map(&c, &s, "lab").unwrap_err(),
            PeerConfigError::UnsupportedAlgorithm {
                tunnel: "lab".into(),
                list: ProposalList::Ike,
                index: 0,
                proposal: "aes256gcm16-prfsha384-modp2048-curve448".into(),
                algorithm: "curve448",
            }
        );
    }

    /// Every error the mapping can give, and the result's `Debug`, without the PSK.
    #[test]
    fn psk_never_printed() {
        let tmp = tempfile::tempdir().unwrap();
        let (c, s) = inline(tmp.path(), "aes256gcm16-prfsha256-modp2048", "aes256gcm16");
        let t = c.tunnel("lab").unwrap();
        let secret = s.tunnel("lab").unwrap();
        let ok = peer_config(&c.router, t, WAN, secret).unwrap();
        assert_eq!(ok.config.auth.psk().unwrap().as_bytes(), PSK.as_bytes());
        for shown in [format!("{ok:?}"), format!("{ok:#?}")] {
            assert!(shown.contains("198.51.100.9"), "{shown}");
            assert!(!shown.contains(PSK), "{shown}");
        }

        let mut errors = Vec::new();
        let mut v1 = t.clone();
        v1.ike_version = IkeVersion::V1;
        errors.push(peer_config(&c.router, &v1, WAN, secret).unwrap_err());
        // The PSK given as a private key: the error names the check, not the bytes.
        let mut rsa = t.clone();
        rsa.auth.method = AuthMethod::Rsa;
        errors.push(peer_config(&c.router, &rsa, WAN, secret).unwrap_err());
        errors.push(peer_config(&c.router, t, "2001:db8::1".parse().unwrap(), secret).unwrap_err());
        let mut margin = t.clone();
        margin.lifetimes.rekey_margin = margin.lifetimes.child;
        errors.push(peer_config(&c.router, &margin, WAN, secret).unwrap_err());
        let mut chacha = t.clone();
        chacha.esp_proposals[0].encryption = vec![Encryption::ChaCha20Poly1305];
        errors.push(peer_config(&c.router, &chacha, WAN, secret).unwrap_err());
        errors.push(peer_config(&c.router, t, WAN, &Secret::new(Vec::new())).unwrap_err());
        let kinds: Vec<String> = errors
            .iter()
            .map(|e| {
                format!("{e:?}")
                    .split([' ', '{'])
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "IkeV1",
                "PrivateKey",
                "AddressFamily",
                "Engine",
                "UnsupportedAlgorithm",
                "EmptyPsk"
            ]
        );
        for e in &errors {
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(
                    shown.contains("`lab`") || shown.contains("\"lab\""),
                    "{shown}"
                );
                assert!(!shown.contains(PSK), "{shown}");
            }
        }
        assert_eq!(
            errors[3].to_string(),
            "tunnel `lab`: the IKE engine refuses the configuration: lifetimes.margin out of range"
        );
    }

    /// A key tunnel: `method_key` (e.g. `ed25519_private_key`) from `private` (a test key,
    /// written mode `mode`), the peer's key from `public` (written as is).
    fn key_tunnel(
        tmp: &Path,
        method_key: &str,
        private: &str,
        mode: u32,
        public: &[u8],
    ) -> Result<(Config, Secrets), String> {
        let key = tmp.join("local.key");
        fs::write(&key, test_key(private)).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(mode)).unwrap();
        let peer = tmp.join("peer.pub");
        fs::write(&peer, public).unwrap();
        let text = format!(
            r#"
[router]
name = "unit"
wan = "eth0"
lan = ["eth1"]

[[tunnel]]
name = "mesh"
peer = "198.51.100.9"
auth = {{ {method_key} = {{ file = "{}" }} }}
peer_public_key = "{}"
selectors = {{ local = ["10.1.0.0/16"], remote = ["10.2.0.0/16"] }}
"#,
            key.display(),
            peer.display()
        );
        let c = Config::from_str(&text, "unit.toml").map_err(|e| e.to_string())?;
        let s = c.resolve_secrets().map_err(|e| e.to_string())?;
        Ok((c, s))
    }

    #[test]
    fn key_tunnels_map_to_signature_authentication() {
        for (method_key, private, kind) in [
            ("rsa_private_key", "rsa2048.pkcs1.pem", KeyKind::Rsa(2048)),
            ("ecdsa_private_key", "p384.pkcs8.pem", KeyKind::EcdsaP384),
            ("ecdsa_private_key", "p256.sec1.pem", KeyKind::EcdsaP256),
            ("ed25519_private_key", "ed25519.pkcs8.pem", KeyKind::Ed25519),
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let public = test_key("ed25519.spki.pem");
            let (c, s) =
                key_tunnel(tmp.path(), method_key, private, 0o600, public.as_bytes()).unwrap();
            let p = map(&c, &s, "mesh").unwrap_or_else(|e| panic!("{private}: {e}"));
            let k = p.config.auth.key().expect("key authentication");
            assert_eq!(k.local_key.kind(), kind);
            assert_eq!(k.peer_key.kind(), KeyKind::Ed25519);
            // The private key is neither in the Debug output nor in any form of the PEM.
            let shown = format!("{p:?}");
            assert!(shown.contains("[REDACTED]"), "{shown}");
            let pem = test_key(private);
            for line in pem.lines().filter(|l| !l.starts_with("-----")) {
                assert!(!shown.contains(line), "{private}: {shown}");
            }
        }
    }

    #[test]
    fn unusable_keys_are_named_errors_without_key_material() {
        let spki = test_key("rsa2048.spki.pem");
        // A private key group or others can read is refused when secrets are resolved.
        let tmp = tempfile::tempdir().unwrap();
        let err = key_tunnel(
            tmp.path(),
            "rsa_private_key",
            "rsa2048.pkcs8.pem",
            0o644,
            spki.as_bytes(),
        )
        .unwrap_err();
        assert!(err.contains("chmod 600"), "{err}");

        let tmp = tempfile::tempdir().unwrap();
        let (c, s) = key_tunnel(
            tmp.path(),
            "rsa_private_key",
            "ed25519.pkcs8.pem",
            0o600,
            spki.as_bytes(),
        )
        .unwrap();
        assert_eq!(
            map(&c, &s, "mesh").unwrap_err(),
            PeerConfigError::KeyType {
                tunnel: "mesh".into(),
                method: AuthMethod::Rsa,
                key: KeyKind::Ed25519
            }
        );

        for (public, what) in [
            (&b"not a key"[..], "garbage"),
            (test_key("p256.pkcs8.pem").as_bytes(), "a private key"),
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let (c, s) = key_tunnel(
                tmp.path(),
                "ecdsa_private_key",
                "p256.pkcs8.pem",
                0o600,
                public,
            )
            .unwrap();
            let err = map(&c, &s, "mesh").unwrap_err();
            assert!(
                matches!(&err, PeerConfigError::PeerPublicKey { tunnel, .. } if tunnel == "mesh"),
                "{what}: {err:?}"
            );
            let shown = format!("{err} {err:?}");
            for line in test_key("p256.pkcs8.pem")
                .lines()
                .filter(|l| !l.starts_with("-----"))
            {
                assert!(!shown.contains(line), "{what}: {shown}");
            }
        }

        // The peer's key file is gone.
        let tmp = tempfile::tempdir().unwrap();
        let (c, s) = key_tunnel(
            tmp.path(),
            "ed25519_private_key",
            "ed25519.pkcs8.pem",
            0o600,
            spki.as_bytes(),
        )
        .unwrap();
        fs::remove_file(tmp.path().join("peer.pub")).unwrap();
        let err = map(&c, &s, "mesh").unwrap_err();
        assert!(err.to_string().contains("peer.pub"), "{err}");
    }
}
