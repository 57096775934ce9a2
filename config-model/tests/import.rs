//! `import`: seed 001's and seed 004's ipsec.conf/ipsec.secrets and a generic AWS text turn
//! into configurations that validate and say the same thing (peer, subnets, proposals, DPD,
//! lifetimes, encapsulation, fragmentation, auth); PSKs only ever land in 0600 files; hostile
//! input never panics.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use vpn_config::import::{self, ImportError, ImportOptions, Imported, strongswan::InputFile};
use vpn_config::*;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(name: &str) -> String {
    fs::read_to_string(fixtures().join(name)).unwrap()
}

fn strongswan(conf: &str, secrets: Option<&str>, dir: &Path) -> Result<Imported, ImportError> {
    let conf_text = read(conf);
    let secrets_text = secrets.map(read);
    let fx = fixtures();
    let c = InputFile {
        text: &conf_text,
        origin: conf,
        dir: &fx,
    };
    let s = secrets_text.as_deref().map(|t| InputFile {
        text: t,
        origin: secrets.unwrap(),
        dir: &fx,
    });
    let opts = ImportOptions {
        secrets_dir: Some(dir.to_path_buf()),
        ..ImportOptions::default()
    };
    import::strongswan::convert(&c, s.as_ref(), &opts)
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn proposals(ps: &[Proposal]) -> Vec<String> {
    ps.iter().map(|p| p.to_string()).collect()
}

fn warnings(i: &Imported) -> Vec<String> {
    i.warnings.iter().map(|w| w.to_string()).collect()
}

fn write_and_resolve(i: &Imported, origin: &str) -> (Config, Secrets) {
    for f in &i.secret_files {
        f.write(false).unwrap();
        let mode = fs::metadata(&f.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.path.display());
    }
    let c = Config::from_str(&i.toml, origin).unwrap_or_else(|e| panic!("{e}\n{}", i.toml));
    let s = c.resolve_secrets().unwrap_or_else(|e| panic!("{e}"));
    (c, s)
}

#[test]
fn seed_001_converts_to_the_same_two_tunnels() {
    let tmp = tempfile::tempdir().unwrap();
    let i = strongswan(
        "seed-001-aws.conf",
        Some("seed-001-aws.secrets"),
        tmp.path(),
    )
    .unwrap();
    let (c, secrets) = write_and_resolve(&i, "seed-001.toml");
    assert_eq!(
        c.router.identity,
        Some(Identity::Ipv4("203.0.113.25".parse().unwrap()))
    );
    assert_eq!(c.tunnels.len(), 2);
    for (t, peer, key) in [
        (&c.tunnels[0], "198.51.100.31", "FAKE.tunnel1.psk.not_real"),
        (&c.tunnels[1], "198.51.100.32", "FAKE.tunnel2.psk.not_real"),
    ] {
        assert_eq!(t.peer, peer.parse::<IpAddr>().unwrap());
        assert_eq!(
            t.traffic,
            TrafficMode::Policy {
                local: vec![net("192.168.0.0/16")],
                remote: vec![net("10.0.0.0/16")]
            },
            "leftsubnet=192.168.1.0/16 is 192.168.0.0/16, as charon installs it"
        );
        assert_eq!(
            proposals(&t.ike_proposals),
            vec!["aes256-sha256-prfsha256-modp1024"]
        );
        // No esp=: strongSwan's documented default, not this model's.
        assert_eq!(proposals(&t.esp_proposals), vec!["aes128-sha256"]);
        assert_eq!(t.lifetimes.ike, Duration::from_secs(8 * 3600));
        assert_eq!(t.lifetimes.child, Duration::from_secs(3600));
        assert_eq!(t.lifetimes.rekey_margin, Duration::from_secs(540));
        assert_eq!(t.dpd.delay, Duration::from_secs(10));
        assert_eq!(t.dpd.timeout, Duration::from_secs(30));
        assert_eq!(t.dpd.action, DpdAction::Restart);
        assert_eq!(t.auth.method, AuthMethod::Psk);
        assert_eq!(t.startup, Startup::Initiate);
        assert!(!t.force_encap);
        assert_eq!(t.ike_version, IkeVersion::V2);
        assert_eq!(secrets.tunnel(&t.name).unwrap().expose(), key.as_bytes());
        assert!(!i.toml.contains(key), "PSK inline:\n{}", i.toml);
    }
    assert_eq!(c.tunnels[0].name, "Tunnel1");
    // Active/standby over the identical selectors, in file order.
    let routes: Vec<(String, &str, u32)> = c
        .routes
        .iter()
        .map(|r| (r.prefix.to_string(), r.tunnel.as_str(), r.priority))
        .collect();
    assert_eq!(
        routes,
        vec![
            ("10.0.0.0/16".to_string(), "Tunnel1", 100),
            ("10.0.0.0/16".to_string(), "Tunnel2", 200)
        ]
    );
    let w = warnings(&i);
    for expected in [
        "seed-001-aws.conf:6: include: include is not followed",
        "seed-001-aws.conf:19: conn Tunnel1: leftsubnet: `192.168.1.0/16` has host bits set: 192.168.0.0/16 used",
        "seed-001-aws.conf:16: conn Tunnel1: ike: without `!`",
    ] {
        assert!(
            w.iter().any(|m| m.starts_with(expected)),
            "{expected}\n{w:#?}"
        );
    }
    // Nothing else is lost: keyingtries=%forever, type=tunnel, left=%defaultroute and
    // keyexchange=ike carry nothing this model lacks.
    assert_eq!(w.len(), 5, "{w:#?}");
}

#[test]
fn seed_004_converts_with_keys_encapsulation_and_fragmentation() {
    let tmp = tempfile::tempdir().unwrap();
    let i = strongswan(
        "seed-004-us-east-1.conf",
        Some("seed-004-us-east-1.secrets"),
        tmp.path(),
    )
    .unwrap();
    assert!(i.secret_files.is_empty(), "no PSK, nothing to write");
    let c =
        Config::from_str(&i.toml, "seed-004.toml").unwrap_or_else(|e| panic!("{e}\n{}", i.toml));
    assert_eq!(
        c.router.identity,
        Some(Identity::Ipv4("203.0.113.1".parse().unwrap()))
    );
    assert_eq!(c.tunnels.len(), 1);
    let t = &c.tunnels[0];
    assert_eq!(t.name, "us-east-2");
    assert_eq!(t.peer, "198.51.100.2".parse::<IpAddr>().unwrap());
    assert_eq!(
        t.traffic,
        TrafficMode::Policy {
            local: vec![net("172.16.0.0/16")],
            remote: vec![net("172.31.0.0/16")]
        }
    );
    // The same proposals config/mesh-node-us-east-1.toml holds: the CBC cipher that has no
    // integrity algorithm dropped from the AEAD proposal, the stray `#` removed.
    assert_eq!(
        proposals(&t.ike_proposals),
        vec![
            "aes192gcm16-aes128gcm16-prfsha256-ecp256-ecp521",
            "aes192-sha256-prfsha256-modp3072"
        ]
    );
    assert_eq!(
        proposals(&t.esp_proposals),
        vec!["aes192gcm16-aes128gcm16-ecp256", "aes192-sha256-modp3072"]
    );
    assert!(t.force_encap);
    assert!(t.fragmentation);
    assert_eq!(t.dpd.action, DpdAction::Restart);
    assert_eq!(t.startup, Startup::Initiate);
    assert_eq!(t.auth.method, AuthMethod::Rsa);
    let fx = fixtures();
    assert_eq!(
        t.auth.secret.source,
        SecretSource::File(fx.join("ipsec.d/private/us-east-1.key"))
    );
    assert_eq!(
        t.peer_public_key.as_deref(),
        Some(fx.join("ipsec.d/certs/us-east-2.pub").as_path())
    );
    assert_eq!(c.routes.len(), 1);
    assert_eq!(c.routes[0].prefix, net("172.31.0.0/16"));
    let w = warnings(&i);
    assert!(
        w.iter()
            .any(|m| m
                .starts_with("seed-004-us-east-1.conf:13: conn %default: esp: `#` right after")),
        "{w:#?}"
    );
    assert!(
        w.iter().any(|m| m.contains("conn us-east-2: ike: `aes192` in `aes192gcm16-aes128gcm16-aes192-prfsha256-ecp256-ecp521` has no integrity algorithm")),
        "{w:#?}"
    );
}

#[test]
fn aws_generic_text_becomes_two_route_based_aws_tunnels() {
    let tmp = tempfile::tempdir().unwrap();
    let text = read("aws-generic-vpn.txt");
    let opts = ImportOptions {
        secrets_dir: Some(tmp.path().to_path_buf()),
        remote_prefixes: vec![net("10.0.0.0/16")],
        ..ImportOptions::default()
    };
    let i = import::aws::convert(&text, "aws-generic-vpn.txt", &opts).unwrap();
    let (c, secrets) = write_and_resolve(&i, "aws.toml");
    assert_eq!(
        c.router.identity,
        Some(Identity::Ipv4("203.0.113.10".parse().unwrap()))
    );
    assert_eq!(c.tunnels.len(), 2);
    for (t, name, peer, local, remote, key) in [
        (
            &c.tunnels[0],
            "aws-t1",
            "198.51.100.10",
            "169.254.44.2/30",
            "169.254.44.1",
            "FAKE_t1.key.not.a.real.one",
        ),
        (
            &c.tunnels[1],
            "aws-t2",
            "198.51.100.20",
            "169.254.45.2/30",
            "169.254.45.1",
            "FAKE_t2.key.not.a.real.one",
        ),
    ] {
        assert_eq!(t.name, name);
        assert_eq!(t.profile, Some(Profile::Aws));
        assert_eq!(t.peer, peer.parse::<IpAddr>().unwrap());
        assert_eq!(
            t.traffic,
            TrafficMode::Route {
                inside_local: net(local),
                inside_remote: remote.parse().unwrap()
            }
        );
        assert_eq!(
            proposals(&t.ike_proposals),
            vec!["aes128-sha1-prfsha1-modp1024"]
        );
        assert_eq!(proposals(&t.esp_proposals), vec!["aes128-sha1-modp1024"]);
        assert_eq!(t.lifetimes.ike, Duration::from_secs(28800));
        assert_eq!(t.lifetimes.child, Duration::from_secs(3600));
        assert_eq!(t.dpd.delay, Duration::from_secs(10));
        assert_eq!(t.dpd.timeout, Duration::from_secs(30), "interval x retries");
        assert_eq!((t.mtu, t.mss), (1399, 1379));
        assert_eq!(t.startup, Startup::Initiate);
        assert_eq!(secrets.tunnel(name).unwrap().expose(), key.as_bytes());
        assert!(!i.toml.contains(key));
        assert!(warnings(&i).iter().all(|w| !w.contains(key)));
    }
    let routes: Vec<(&str, u32)> = c
        .routes
        .iter()
        .map(|r| (r.tunnel.as_str(), r.priority))
        .collect();
    assert_eq!(routes, vec![("aws-t1", 100), ("aws-t2", 200)]);
    let w = warnings(&i);
    assert!(
        w.iter()
            .any(|m| m.contains("IPSec Tunnel #1: Clear Don't Fragment Bit: not carried over")),
        "{w:#?}"
    );
}

#[test]
fn aws_without_remote_prefix_says_so_and_ikev1_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let text = read("aws-generic-vpn.txt").replace("IKEv2", "IKEv1");
    let opts = ImportOptions {
        secrets_dir: Some(tmp.path().to_path_buf()),
        ..ImportOptions::default()
    };
    let i = import::aws::convert(&text, "aws.txt", &opts).unwrap();
    assert!(Config::from_str(&i.toml, "x").is_ok());
    assert!(!i.toml.contains("[[route]]"));
    let w = warnings(&i);
    assert!(
        w.iter().any(|m| m.contains("give --remote-prefix")),
        "{w:#?}"
    );
    assert!(
        w.iter()
            .any(|m| m
                .starts_with("aws.txt:39: IPSec Tunnel #1: IKE version: IKEv1 is not supported")),
        "{w:#?}"
    );
}

#[test]
fn psks_need_somewhere_to_go() {
    let conf = read("seed-001-aws.conf");
    let secrets = read("seed-001-aws.secrets");
    let fx = fixtures();
    let r = import::strongswan::convert(
        &InputFile {
            text: &conf,
            origin: "a.conf",
            dir: &fx,
        },
        Some(&InputFile {
            text: &secrets,
            origin: "a.secrets",
            dir: &fx,
        }),
        &ImportOptions::default(),
    );
    assert!(matches!(r, Err(ImportError::NoSecretsDir)), "{r:?}");
}

#[test]
fn secret_files_are_not_overwritten_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let i = strongswan(
        "seed-001-aws.conf",
        Some("seed-001-aws.secrets"),
        tmp.path(),
    )
    .unwrap();
    let f = &i.secret_files[0];
    fs::write(&f.path, "old key\n").unwrap();
    fs::set_permissions(&f.path, fs::Permissions::from_mode(0o644)).unwrap();
    let e = f.write(false).unwrap_err().to_string();
    assert!(e.contains("already exists"), "{e}");
    assert_eq!(fs::read_to_string(&f.path).unwrap(), "old key\n");
    f.write(true).unwrap();
    assert_eq!(
        fs::metadata(&f.path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::read_to_string(&f.path).unwrap(),
        "FAKE.tunnel1.psk.not_real\n"
    );
    // Debug never shows the key.
    assert!(!format!("{f:?}").contains("FAKE"));
}

#[test]
fn what_cannot_be_carried_over_is_reported_by_conn_and_key() {
    let conf = "conn %default\n  authby=secret\n  keyexchange=ikev1\n\nconn office\n  right=192.0.2.7\n  rightid=@gw.example.net\n  leftsubnet=10.1.0.0/24,10.2.0.0/24[tcp/443]\n  rightsubnet=10.9.0.0/16\n  ike=3des-sha1-modp1024,aes256-sha256-modp2048!\n  esp=aes128ctr-sha1\n  leftsourceip=%config\n  dpdaction=hold\n  auto=route\n\nconn roadwarrior\n  right=%any\n  auto=add\n\nconn vti\n  right=192.0.2.8\n  mark=100\n  esp=aes256gcm16\n  auto=add\n";
    let secrets = ": PSK \"Shared.Fake.Key\"\n";
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixtures();
    let opts = ImportOptions {
        secrets_dir: Some(tmp.path().to_path_buf()),
        ..ImportOptions::default()
    };
    let i = import::strongswan::convert(
        &InputFile {
            text: conf,
            origin: "x.conf",
            dir: &fx,
        },
        Some(&InputFile {
            text: secrets,
            origin: "x.secrets",
            dir: &fx,
        }),
        &opts,
    )
    .unwrap();
    let c = Config::from_str(&i.toml, "x").unwrap_or_else(|e| panic!("{e}\n{}", i.toml));
    // The model refuses vti's 0.0.0.0/0 selectors next to office's: vti is dropped, with the
    // model's reason.
    assert_eq!(i.tunnels, 1, "{:#?}", warnings(&i));
    let office = c.tunnel("office").unwrap();
    assert_eq!(
        office.remote_identity,
        Identity::Fqdn("gw.example.net".into())
    );
    assert_eq!(
        proposals(&office.ike_proposals),
        vec!["aes256-sha256-prfsha256-modp2048"]
    );
    // aes128ctr unknown: the ESP proposal is dropped, strongSwan's default used.
    assert_eq!(proposals(&office.esp_proposals), vec!["aes128-sha256"]);
    assert_eq!(office.dpd.action, DpdAction::Restart);
    assert!(c.tunnel("vti").is_none());
    let w = warnings(&i);
    for expected in [
        "x.conf:3: conn office: keyexchange: IKEv1 is not supported",
        "x.conf:8: conn office: leftsubnet: protocol/port restriction",
        "x.conf:10: conn office: ike: `3des` not supported",
        "x.conf:11: conn office: esp: `aes128ctr` not supported",
        "x.conf:12: conn office: leftsourceip: not carried over",
        "x.conf:13: conn office: dpdaction: hold",
        "x.conf:14: conn office: auto: route",
        "x.conf:17: conn roadwarrior: right: `%any` is not an IP address",
        "x.conf:22: conn vti: mark: route-based (mark/VTI)",
        "x.conf:20: conn vti: dropped: the converted tunnel `vti` is refused: tunnel[1].selectors:",
    ] {
        assert!(
            w.iter().any(|m| m.starts_with(expected)),
            "{expected}\n{w:#?}"
        );
    }
    assert!(w.iter().all(|m| !m.contains("Shared.Fake.Key")));
    assert!(!i.toml.contains("Shared.Fake.Key"));
}

/// strongSwan route-based tunnels: `mark` alone gives 0.0.0.0/0 selectors and a warning that
/// routes must be added; AWS's VTI updown script arguments give the inside addresses and routes.
#[test]
fn route_based_conns() {
    let conf = "conn %default\n  authby=secret\n  leftsubnet=0.0.0.0/0\n  rightsubnet=0.0.0.0/0\n  auto=start\n\nconn Tunnel1\n  right=198.51.100.10\n  mark=100\n  leftupdown=\"/etc/ipsec.d/aws-updown.sh -ln Tunnel1 -ll 169.254.44.2/30 -lr 169.254.44.1/30 -m 100 -r 10.0.0.0/16\"\n";
    let secrets = ": PSK \"Fake.psk.value\"\n";
    let fx = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let opts = ImportOptions {
        secrets_dir: Some(tmp.path().into()),
        ..ImportOptions::default()
    };
    let run = |conf: &str| {
        import::strongswan::convert(
            &InputFile {
                text: conf,
                origin: "r.conf",
                dir: &fx,
            },
            Some(&InputFile {
                text: secrets,
                origin: "r.secrets",
                dir: &fx,
            }),
            &opts,
        )
        .unwrap()
    };
    let i = run(conf);
    let c = Config::from_str(&i.toml, "r").unwrap_or_else(|e| panic!("{e}\n{}", i.toml));
    let t = c.tunnel("Tunnel1").unwrap();
    assert_eq!(
        t.traffic,
        TrafficMode::Route {
            inside_local: net("169.254.44.2/30"),
            inside_remote: "169.254.44.1".parse().unwrap()
        }
    );
    assert_eq!(c.routes.len(), 1);
    assert_eq!(c.routes[0].prefix, net("10.0.0.0/16"));

    let plain = conf.replace("  leftupdown", "  #leftupdown");
    let i = run(&plain);
    let c = Config::from_str(&i.toml, "r").unwrap_or_else(|e| panic!("{e}\n{}", i.toml));
    let t = c.tunnel("Tunnel1").unwrap();
    assert_eq!(
        t.traffic,
        TrafficMode::Policy {
            local: vec![net("0.0.0.0/0")],
            remote: vec![net("0.0.0.0/0")]
        }
    );
    assert!(c.routes.is_empty());
    assert!(i.toml.contains("add [[route]] entries"), "{}", i.toml);
    let w = warnings(&i);
    assert!(
        w.iter()
            .any(|m| m.starts_with("r.conf:9: conn Tunnel1: mark: route-based")),
        "{w:#?}"
    );
}

#[test]
fn nothing_usable_is_an_error_naming_the_file() {
    let fx = fixtures();
    for conf in [
        "",
        "garbage\n",
        "conn a\n  right=%any\n",
        "config setup\n  uniqueids=no\n",
    ] {
        let r = import::strongswan::convert(
            &InputFile {
                text: conf,
                origin: "bad.conf",
                dir: &fx,
            },
            None,
            &ImportOptions::default(),
        );
        match r {
            Err(ImportError::NothingUsable { origin, .. }) => assert_eq!(origin, "bad.conf"),
            other => panic!("{conf:?}: {other:?}"),
        }
    }
    let r = import::aws::convert("hello\n", "bad.txt", &ImportOptions::default());
    assert!(matches!(r, Err(ImportError::NothingUsable { .. })), "{r:?}");
}

#[test]
fn a_psk_conn_without_a_matching_secret_is_skipped_without_leaking_other_keys() {
    let conf = "conn t1\n  authby=psk\n  right=192.0.2.1\n  leftsubnet=10.0.0.0/8\n  rightsubnet=172.16.0.0/12\n";
    let secrets = "192.0.2.99 : PSK \"Other.Fake.Key\"\nbroken line Other.Fake.Key2\n";
    let fx = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let opts = ImportOptions {
        secrets_dir: Some(tmp.path().into()),
        ..ImportOptions::default()
    };
    let e = import::strongswan::convert(
        &InputFile {
            text: conf,
            origin: "c",
            dir: &fx,
        },
        Some(&InputFile {
            text: secrets,
            origin: "s",
            dir: &fx,
        }),
        &opts,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("c:2: conn t1: authby: no PSK entry in ipsec.secrets matches"),
        "{e}"
    );
    assert!(e.contains("s:2: ipsec.secrets: no ` : `"), "{e}");
    assert!(!e.contains("Other.Fake"), "{e}");
}

/// Every prefix of every fixture, and byte-flipped variants, convert or fail cleanly.
#[test]
fn truncated_and_mangled_inputs_never_panic() {
    let fx = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let opts = ImportOptions {
        secrets_dir: Some(tmp.path().into()),
        remote_prefixes: vec![net("10.0.0.0/16")],
        ..ImportOptions::default()
    };
    let mangle = |s: &str, step: usize| -> Vec<String> {
        let mut out = Vec::new();
        let idx: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
        for &cut in idx.iter().step_by(step) {
            out.push(s[..cut].to_string());
            for junk in ["\"", "#", "=", ":", "/", "\u{0}", "é", "\n"] {
                out.push(format!("{}{junk}{}", &s[..cut], &s[cut..]));
            }
        }
        out
    };
    for (conf, secrets) in [
        ("seed-001-aws.conf", "seed-001-aws.secrets"),
        ("seed-004-us-east-1.conf", "seed-004-us-east-1.secrets"),
    ] {
        let (c, s) = (read(conf), read(secrets));
        for variant in mangle(&c, 7) {
            let _ = import::strongswan::convert(
                &InputFile {
                    text: &variant,
                    origin: conf,
                    dir: &fx,
                },
                Some(&InputFile {
                    text: &s,
                    origin: secrets,
                    dir: &fx,
                }),
                &opts,
            );
        }
        for variant in mangle(&s, 1) {
            let _ = import::strongswan::convert(
                &InputFile {
                    text: &c,
                    origin: conf,
                    dir: &fx,
                },
                Some(&InputFile {
                    text: &variant,
                    origin: secrets,
                    dir: &fx,
                }),
                &opts,
            );
        }
    }
    let aws = read("aws-generic-vpn.txt");
    for variant in mangle(&aws, 53) {
        if let Ok(i) = import::aws::convert(&variant, "aws", &opts) {
            assert!(Config::from_str(&i.toml, "aws").is_ok());
        }
    }
}

/// A large file converts in bounded time: at most MAX_TUNNELS tunnels, the rest reported.
#[test]
fn many_conns_are_capped() {
    let mut conf = String::from(
        "conn %default\n  authby=secret\n  leftsubnet=10.0.0.0/8\n  rightsubnet=172.16.0.0/12\n",
    );
    for n in 0..3000u32 {
        conf += &format!("conn c{n}\n  right=192.0.{}.{}\n", n / 250, n % 250 + 1);
    }
    let fx = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let opts = ImportOptions {
        secrets_dir: Some(tmp.path().into()),
        ..ImportOptions::default()
    };
    let start = std::time::Instant::now();
    let i = import::strongswan::convert(
        &InputFile {
            text: &conf,
            origin: "big.conf",
            dir: &fx,
        },
        Some(&InputFile {
            text: ": PSK \"Fake.key\"\n",
            origin: "s",
            dir: &fx,
        }),
        &opts,
    )
    .unwrap();
    assert_eq!(i.tunnels, import::strongswan::MAX_TUNNELS);
    assert!(
        warnings(&i)
            .iter()
            .any(|w| w.contains("more than 1000 tunnels"))
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
}

/// Custom tunnel options (AES-GCM, SHA2-256, group 14) and a BGP connection: AEAD proposals
/// use the integrity algorithm as the PRF; BGP is reported once per tunnel.
#[test]
fn aws_gcm_and_bgp_variants() {
    let tmp = tempfile::tempdir().unwrap();
    let text = read("aws-generic-vpn.txt")
        .replace("Encryption Algorithm     : aes-128-cbc", "Encryption Algorithm     : aes-256-gcm-16")
        .replace("Authentication Algorithm : sha1", "Authentication Algorithm : sha2-256")
        .replace("Diffie-Hellman           : Group 2", "Diffie-Hellman           : Group 14")
        .replace("Diffie-Hellman Group 2", "Diffie-Hellman Group 14")
        .replace(
            "#4: Static Routing Configuration:",
            "#4: Border Gateway Protocol (BGP) Configuration:\n  - Customer Gateway ASN : 65000\n  - Neighbor IP Address : 169.254.44.1",
        );
    let opts = ImportOptions {
        secrets_dir: Some(tmp.path().to_path_buf()),
        remote_prefixes: vec![net("10.0.0.0/16")],
        ..ImportOptions::default()
    };
    let i = import::aws::convert(&text, "gcm.txt", &opts).unwrap();
    let c = Config::from_str(&i.toml, "gcm").unwrap_or_else(|e| panic!("{e}\n{}", i.toml));
    for t in &c.tunnels {
        assert_eq!(
            proposals(&t.ike_proposals),
            vec!["aes256gcm16-prfsha256-modp2048"]
        );
        assert_eq!(proposals(&t.esp_proposals), vec!["aes256gcm16-modp2048"]);
    }
    let w = warnings(&i);
    assert_eq!(
        w.iter()
            .filter(|m| m.contains(": BGP: dynamic routing (BGP) is not supported"))
            .count(),
        2,
        "{w:#?}"
    );
}
