//! The agent authenticates with its own private key against strongSwan 5.9 holding another
//! one, each side knowing only the other's raw public key (seed 004's `authby=rsasig` mesh,
//! swanctl `pubkeys` here, no certificates): the CHILD_SA is installed on both sides with
//! matching SPIs and the sites ping each other through the XDP/AF_XDP datapath. Keys are made
//! at test time with `openssl genpkey`. RSA (2048, and seed 004's 4096 bits, for which
//! strongSwan signs with SHA2-384, PKCS#1 or PSS), ECDSA P-256 and Ed25519, all RFC 7427.
//! The agent also answers as responder, and behind the lab's NAT its NAT-keepalives (RFC 3948
//! section 2.3) reach strongSwan's side. A last test gives strongSwan the wrong public key for
//! the agent: nothing is installed.

use std::sync::Mutex;
use std::time::Duration;

use vpn_lab::{
    AgentProcess, Lab, LabSpec, Node, addr,
    strongswan::{Charon, CharonOptions, Connection, KeyAlgorithm, KeyFiles, Psk, PubkeyAuth},
};
use vpn_tests::{agent_bin, check_spis, poll_until, traffic::ping};

/// One lab at a time: each test brings up namespaces, charon and an agent with AF_XDP.
static SERIAL: Mutex<()> = Mutex::new(());

/// The `auth` key of the agent's configuration for a key algorithm.
fn auth_key(algorithm: KeyAlgorithm) -> &'static str {
    match algorithm {
        KeyAlgorithm::Rsa(_) => "rsa_private_key",
        KeyAlgorithm::EcdsaP256 => "ecdsa_private_key",
        KeyAlgorithm::Ed25519 => "ed25519_private_key",
    }
}

struct Setup {
    lab: Lab,
    charon: Charon,
    agent: AgentProcess,
    _dir: tempfile::TempDir,
}

/// One scenario.
struct Case {
    agent: KeyAlgorithm,
    charon: KeyAlgorithm,
    /// Extra lines for charon's strongswan.conf.
    charon_settings: &'static str,
    /// strongSwan initiates and the agent responds (`startup = "respond"`).
    agent_responds: bool,
    /// strongSwan is given another public key for the agent (the negative test).
    wrong_key_for_agent: bool,
    /// router-a behind the lab's 1:1 NAT (`LabSpec::nat`).
    nat: bool,
    /// More TOML lines for the agent's tunnel.
    agent_extra: &'static str,
    /// IKE and ESP proposals on both sides (strongSwan syntax, which ours follows).
    proposals: (&'static str, &'static str),
}

impl Case {
    fn new(agent: KeyAlgorithm, charon: KeyAlgorithm) -> Case {
        Case {
            agent,
            charon,
            charon_settings: "",
            agent_responds: false,
            wrong_key_for_agent: false,
            nat: false,
            agent_extra: "",
            proposals: ("aes256gcm16-prfsha256-modp2048", "aes256gcm16"),
        }
    }
}

/// Lab, strongSwan on router-b with `case.charon` keys, the agent on router-a with
/// `case.agent` keys, each given the other's public key.
fn setup(case: &Case) -> anyhow::Result<Setup> {
    let lab = Lab::up(LabSpec {
        nat: case.nat,
        ..LabSpec::default()
    })?;
    let dir = tempfile::tempdir()?;
    let agent_keys = KeyFiles::generate(dir.path(), "router-a", case.agent)?;
    let charon_keys = KeyFiles::generate(dir.path(), "router-b", case.charon)?;
    let trusted = if case.wrong_key_for_agent {
        KeyFiles::generate(dir.path(), "impostor", case.agent)?.public_key
    } else {
        agent_keys.public_key.clone()
    };

    let charon = Charon::start_with(
        &lab,
        Node::RouterB,
        &CharonOptions {
            extra_charon_settings: case.charon_settings.to_owned(),
        },
    )?;
    // The PSK is unused: the connection authenticates with the raw public keys.
    let (_, mut conn) = Connection::lab_pair(&Psk(b"unused".to_vec()));
    conn.ike_proposals = vec![case.proposals.0.to_owned()];
    conn.esp_proposals = vec![case.proposals.1.to_owned()];
    conn.pubkey = Some(PubkeyAuth {
        local: charon_keys.clone(),
        remote_public_key: trusted,
    });
    charon.load(&[conn])?;

    let config = dir.path().join("router-a.toml");
    std::fs::write(
        &config,
        format!(
            "[router]\nname = \"lab-a\"\nwan = \"wan\"\nlan = [\"lan\"]\n{public}\n\
             [[tunnel]]\nname = \"to-site-b\"\npeer = \"{peer}\"\n\
             auth = {{ {method} = {{ file = \"{key}\" }} }}\n\
             peer_public_key = \"{peer_key}\"\n\
             selectors = {{ local = [\"{a}\"], remote = [\"{b}\"] }}\n\
             force_encap = true\n\
             ike_proposals = [\"{ike}\"]\n\
             esp_proposals = [\"{esp}\"]\n\
             startup = \"{startup}\"\n{extra}\n\n[sysctl]\nmanage = false\n",
            extra = case.agent_extra,
            ike = case.proposals.0,
            esp = case.proposals.1,
            peer = addr::ROUTER_B_WAN,
            method = auth_key(case.agent),
            key = agent_keys.private_key.display(),
            peer_key = charon_keys.public_key.display(),
            a = addr::SITE_A,
            b = addr::SITE_B,
            // Behind the NAT our identity is the public address strongSwan sees.
            public = if case.nat {
                format!("wan_public_address = \"{}\"\n", addr::ROUTER_A_WAN)
            } else {
                String::new()
            },
            startup = if case.agent_responds {
                "respond"
            } else {
                "initiate"
            },
        ),
    )?;
    let config = config.to_string_lossy().into_owned();
    let agent =
        AgentProcess::start_bare(&lab, Node::RouterA, &agent_bin()?, &["--config", &config])?;
    Ok(Setup {
        lab,
        charon,
        agent,
        _dir: dir,
    })
}

/// How each side signs, as charon logs it (`authentication of '...' with SCHEME`).
struct Expect {
    /// The scheme charon verified our AUTH with.
    agent_signs: &'static str,
    /// The scheme charon signed its own AUTH with.
    charon_signs: &'static str,
}

/// The whole positive scenario.
fn negotiates_and_carries_traffic(case: Case, expect: Expect) -> anyhow::Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Setup {
        lab, charon, agent, ..
    } = setup(&case)?;
    if case.agent_responds {
        charon.initiate("net")?;
    }

    // The CHILD_SA on strongSwan's side, and ours in the datapath, with matching SPIs.
    let theirs = charon.wait_installed("net", Duration::from_secs(20))?;
    check_spis(&agent, &theirs)?;

    // Both sides really used the keys: charon verified our signature with the expected
    // scheme, and we verified charon's (auth method 1 = RSA, 14 = RFC 7427).
    let log = charon.log();
    for start in [
        format!(
            "authentication of '{}' with {} ",
            addr::ROUTER_A_WAN,
            expect.agent_signs
        ),
        format!(
            "authentication of '{}' (myself) with {} ",
            addr::ROUTER_B_WAN,
            expect.charon_signs
        ),
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(&start) && l.ends_with(" successful")),
            "`{start}... successful` not in charon's log:\n{log}"
        );
    }
    let ours = agent.log();
    let peer = if case.agent_responds {
        "initiator authenticated"
    } else {
        "responder authenticated"
    };
    assert!(
        ours.lines()
            .any(|l| l.contains(peer) && l.contains("auth_method=14")),
        "{ours}"
    );

    let out = lab
        .command(Node::HostA, "ping")
        .args([
            "-c",
            "5",
            "-i",
            "0.2",
            "-W",
            "2",
            "-q",
            &addr::HOST_B.to_string(),
        ])
        .output()?;
    assert!(
        out.status.success(),
        "ping through the negotiated tunnel: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        agent.log()
    );
    let status = poll_until(
        Duration::from_secs(5),
        || agent.status(),
        |s| s.worker.as_ref().is_some_and(|w| w.decrypted >= 5),
    )?;
    let w = status.worker.as_ref().expect("worker counters");
    assert!(w.encrypted >= 5 && w.decrypted >= 5, "{w:?}");
    assert_eq!(
        status.packets("wan", "plain")?,
        0,
        "clear packets on router-a's WAN"
    );

    agent.stop()?;
    charon.stop()?;
    lab.down()
}

#[test]
fn rsa_keys_against_strongswan() -> anyhow::Result<()> {
    negotiates_and_carries_traffic(
        Case::new(KeyAlgorithm::Rsa(2048), KeyAlgorithm::Rsa(2048)),
        Expect {
            agent_signs: "RSA_EMSA_PSS_SHA2_256_SALT_32",
            charon_signs: "RSA_EMSA_PKCS1_SHA2_256",
        },
    )
}

/// Seed 004's 4096-bit keys: strongSwan signs with SHA2-384 for keys above 3072 bits, with
/// PKCS#1 v1.5 by default ...
#[test]
fn seed_004_rsa_4096_keys_against_strongswan() -> anyhow::Result<()> {
    negotiates_and_carries_traffic(
        Case::new(KeyAlgorithm::Rsa(4096), KeyAlgorithm::Rsa(4096)),
        Expect {
            agent_signs: "RSA_EMSA_PSS_SHA2_256_SALT_32",
            charon_signs: "RSA_EMSA_PKCS1_SHA2_384",
        },
    )
}

/// ... and with RSA-PSS (its AlgorithmIdentifier parsed by us) when `rsa_pss = yes`.
#[test]
fn rsa_pss_4096_from_strongswan() -> anyhow::Result<()> {
    negotiates_and_carries_traffic(
        Case {
            charon_settings: "  rsa_pss = yes",
            ..Case::new(KeyAlgorithm::Rsa(2048), KeyAlgorithm::Rsa(4096))
        },
        Expect {
            agent_signs: "RSA_EMSA_PSS_SHA2_256_SALT_32",
            charon_signs: "RSA_EMSA_PSS_SHA2_384_SALT_48",
        },
    )
}

#[test]
fn ecdsa_p256_key_against_strongswan_rsa() -> anyhow::Result<()> {
    negotiates_and_carries_traffic(
        Case::new(KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa(2048)),
        Expect {
            agent_signs: "ECDSA_WITH_SHA256_DER",
            charon_signs: "RSA_EMSA_PKCS1_SHA2_256",
        },
    )
}

#[test]
fn ed25519_keys_against_strongswan() -> anyhow::Result<()> {
    negotiates_and_carries_traffic(
        Case::new(KeyAlgorithm::Ed25519, KeyAlgorithm::Ed25519),
        Expect {
            agent_signs: "ED25519",
            charon_signs: "ED25519",
        },
    )
}

/// strongSwan initiates; the agent answers as responder (RSA key, ECDSA on strongSwan's side).
#[test]
fn agent_as_responder_with_keys() -> anyhow::Result<()> {
    negotiates_and_carries_traffic(
        Case {
            agent_responds: true,
            ..Case::new(KeyAlgorithm::Rsa(2048), KeyAlgorithm::EcdsaP256)
        },
        Expect {
            agent_signs: "RSA_EMSA_PSS_SHA2_256_SALT_32",
            charon_signs: "ECDSA_WITH_SHA256_DER",
        },
    )
}

/// Behind the lab's NAT the agent sends NAT-keepalives (RFC 3948 section 2.3: one 0xFF
/// octet, UDP 4500 to 4500, every 20 s): one is seen on strongSwan's side of the NAT.
#[test]
fn nat_keepalives_cross_the_nat_to_strongswan() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Setup {
        lab, charon, agent, ..
    } = setup(&Case {
        nat: true,
        ..Case::new(KeyAlgorithm::Ed25519, KeyAlgorithm::Ed25519)
    })?;
    // Listen on router-b's WAN for a 9-byte UDP datagram (8 header + 1) holding 0xFF from
    // the agent (through the NAT).
    let capture = lab
        .command(Node::RouterB, "timeout")
        .args(["45", "tcpdump", "-i", "wan", "-n", "-l", "-c", "1"])
        .arg(format!(
            "udp and src host {} and dst host {} and dst port 4500 and udp[4:2] = 9 \
             and udp[8] = 0xff",
            addr::ROUTER_A_WAN,
            addr::ROUTER_B_WAN
        ))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let theirs = charon.wait_installed("net", Duration::from_secs(20))?;
    assert!(theirs.encap);
    // strongSwan sees us behind a NAT.
    let sas = charon.list_sas()?;
    assert_eq!(
        sas.first()
            .and_then(|s| s.fields.get("nat-remote"))
            .map(String::as_str),
        Some("yes"),
        "{sas:?}"
    );
    let out = capture.wait_with_output()?;
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "no NAT-keepalive within 45 s ({}): {line}\n{}",
        out.status,
        agent.log()
    );
    // Translated to the public address by the NAT, ports kept.
    assert!(
        line.contains(&format!(
            "{}.4500 > {}.4500",
            addr::ROUTER_A_WAN,
            addr::ROUTER_B_WAN
        )),
        "{line}"
    );
    // The tunnel is still up.
    assert!(charon.installed_child("net")?.is_some(), "{}", charon.log());
    agent.stop()?;
    charon.stop()?;
    lab.down()
}

#[test]
fn strongswan_refuses_an_agent_with_another_key() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Setup {
        lab, charon, agent, ..
    } = setup(&Case {
        wrong_key_for_agent: true,
        ..Case::new(KeyAlgorithm::Rsa(2048), KeyAlgorithm::Rsa(2048))
    })?;
    // charon answers AUTHENTICATION_FAILED; the agent logs it and installs nothing.
    let log = poll_until(
        Duration::from_secs(20),
        || Ok(agent.log()),
        |log| log.contains("responder refused our authentication"),
    )?;
    assert!(
        log.contains("responder refused our authentication"),
        "{log}"
    );
    assert!(charon.installed_child("net")?.is_none(), "{}", charon.log());
    let status = agent.status()?;
    assert!(
        status.worker.as_ref().is_none_or(|w| w.sas.is_empty()),
        "{:?}\n{}",
        status.worker,
        agent.log()
    );
    let log = charon.log();
    assert!(
        log.contains("signature validation failed") && log.contains("[ N(AUTH_FAILED) ]"),
        "{log}"
    );
    agent.stop()?;
    charon.stop()?;
    lab.down()
}

/// RFC 7383 both ways: with small fragments on both sides (strongSwan's
/// `fragment_size` 576, our `outer_mtu` 640), each side splits its IKE_AUTH message (a 4096-bit RSA
/// signature) into SKF fragments; the other verifies each and reassembles the message, and
/// the tunnel comes up.
#[test]
fn ike_auth_in_fragments_both_ways_with_strongswan() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let case = Case {
        charon_settings: "fragment_size = 576",
        agent_extra: "fragmentation = true\nouter_mtu = 640\nmtu = 576\nmss = 536",
        ..Case::new(KeyAlgorithm::Rsa(4096), KeyAlgorithm::Rsa(4096))
    };
    let Setup {
        lab, charon, agent, ..
    } = setup(&case)?;
    charon.wait_installed("net", Duration::from_secs(20))?;
    let up = poll_until(
        Duration::from_secs(10),
        || agent.status(),
        |s| s.worker.as_ref().is_some_and(|w| w.sas.len() == 2),
    )?;
    assert!(
        up.worker.as_ref().is_some_and(|w| w.sas.len() == 2),
        "{}",
        agent.log()
    );
    let log = charon.log();
    assert!(
        log.contains("splitting IKE message"),
        "strongSwan sent no fragments:\n{log}"
    );
    assert!(
        log.contains("received fragment #1") || log.contains("EF(1/"),
        "strongSwan received no fragments from us:\n{log}"
    );
    assert_eq!(ping(&lab, Node::HostA, addr::HOST_B, 3)?, 3);

    agent.stop()?;
    charon.stop()?;
    lab.down()
}

/// The proposals issue 3 names, each negotiated with strongSwan over RSA raw keys: seed 004's
/// AES-192-GCM with ECP-256 (PFS group for rekeys too), SHA2-384 with ECP-384, and
/// Curve25519; traffic crosses each tunnel, so both sides derived the same CHILD_SA keys.
#[test]
fn seed_004_and_modern_proposals_with_strongswan() -> anyhow::Result<()> {
    for proposals in [
        ("aes192gcm16-prfsha256-ecp256", "aes192gcm16-ecp256"),
        ("aes256gcm16-prfsha384-ecp384", "aes256gcm16"),
        ("aes256gcm16-prfsha256-curve25519", "aes128gcm16"),
    ] {
        eprintln!("proposals {proposals:?}");
        negotiates_and_carries_traffic(
            Case {
                proposals,
                ..Case::new(KeyAlgorithm::Rsa(2048), KeyAlgorithm::Rsa(2048))
            },
            Expect {
                agent_signs: "RSA_EMSA_PSS_SHA2_256_SALT_32",
                charon_signs: "RSA_EMSA_PKCS1_SHA2_256",
            },
        )?;
    }
    Ok(())
}
