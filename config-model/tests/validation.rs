//! One test (at least) per validation rule, each asserting the exact rendered error:
//! `file:line:col: field.path: reason`.

use std::time::Duration;

use vpn_config::*;

fn errors(text: &str) -> Vec<String> {
    match Config::from_str(text, "t.toml") {
        Ok(_) => vec![],
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

fn ok(text: &str) -> Config {
    match Config::from_str(text, "t.toml") {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

/// Five lines: a valid `[router]` with a default PSK.
const ROUTER: &str = r#"[router]
name = "edge"
wan = "ens5"
lan = ["ens6"]
auth = { psk = { env = "VPN_PSK" } }
"#;

/// A valid route-based AWS tunnel; `[[tunnel]]` is on the first line of the snippet.
fn aws_tunnel(name: &str, third_octet: u8, extra: &str) -> String {
    format!(
        r#"
[[tunnel]]
name = "{name}"
peer = "192.0.2.{third_octet}"
profile = "aws"
inside = {{ local = "169.254.{third_octet}.2/30", remote = "169.254.{third_octet}.1" }}
{extra}"#
    )
}

fn policy_tunnel(name: &str, peer: u8, local: &str, remote: &str) -> String {
    format!(
        r#"
[[tunnel]]
name = "{name}"
peer = "198.51.100.{peer}"
selectors = {{ local = [{local}], remote = [{remote}] }}
"#
    )
}

#[test]
fn minimal_config_is_valid() {
    let c = ok(&format!("{ROUTER}{}", aws_tunnel("aws-t1", 10, "")));
    assert_eq!(c.router.name, "edge");
    assert_eq!(c.tunnels.len(), 1);
    assert!(c.routes.is_empty());
}

#[test]
fn toml_syntax_errors_have_positions() {
    let e = errors("[router\nname = \"x\"\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("t.toml:1:"), "{e:?}");
}

#[test]
fn unknown_fields_are_refused_everywhere_and_all_reported() {
    let text = format!(
        "{ROUTER}colour = \"blue\"\n{}{}",
        aws_tunnel(
            "aws-t1",
            10,
            "[tunnel.lifetimes]\nchild = 3000\nflavour = 1\n"
        ),
        aws_tunnel("aws-t2", 11, "mtuu = 1400\n"),
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:6:1: router.colour: unknown field `colour`, expected one of `name`, `wan`, `lan`, `wan_public_address`, `identity`, `auth`, `workers`",
            "t.toml:15:1: tunnel[0].lifetimes.flavour: unknown field `flavour`, expected one of `ike`, `child`, `rekey_margin`, `rekey_fuzz`",
            "t.toml:22:1: tunnel[1].mtuu: unknown field `mtuu`, expected one of `name`, `peer`, `remote_identity`, `profile`, `ike_version`, `ike_proposals`, `esp_proposals`, `lifetimes`, `dpd`, `nat_traversal`, `force_encap`, `fragmentation`, `auth`, `peer_public_key`, `selectors`, `inside`, `replay_window`, `mtu`, `mss`, `outer_mtu`, `startup`",
        ]
    );
}

#[test]
fn unknown_section_and_missing_router() {
    assert_eq!(
        errors("[routr]\nname = \"edge\"\n"),
        vec![
            "t.toml:1:1: router: missing [router] section",
            "t.toml:1:2: routr: unknown section `routr` (expected one of router, tunnel, route, nat, sysctl)",
        ]
    );
}

#[test]
fn tunnel_must_be_an_array_of_tables() {
    assert_eq!(
        errors(&format!("{ROUTER}[tunnel]\nname = \"x\"\n")),
        vec!["t.toml:6:1: tunnel: expected an array of tables: write each entry as [[tunnel]]"]
    );
}

#[test]
fn missing_required_field() {
    assert_eq!(
        errors(&format!("{ROUTER}[[tunnel]]\nname = \"aws-t1\"\n")),
        vec!["t.toml:6:1: tunnel[0]: missing field `peer`"]
    );
}

#[test]
fn router_name_follows_seed_000_rule() {
    let text = ROUTER.replace("\"edge\"", "\"Edge_Router\"");
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:2:8: router.name: `Edge_Router` is not a valid name: use 1 to 12 characters, only letters, digits and hyphens"
        ]
    );
    let text = ROUTER.replace("\"edge\"", "\"edge-router-01\"");
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:2:8: router.name: `edge-router-01` is not a valid name: use 1 to 12 characters, only letters, digits and hyphens"
        ]
    );
    // Twelve characters, upper case and hyphens are fine (the seed allows a-zA-Z0-9-).
    ok(&format!(
        "{}{}",
        ROUTER.replace("\"edge\"", "\"Edge-Router1\""),
        aws_tunnel("aws-t1", 10, "")
    ));
}

#[test]
fn tunnel_names_follow_seed_000_vpn_name_rule() {
    let long = "t".repeat(21);
    let text = format!(
        "{ROUTER}{}{}{}",
        aws_tunnel("t1", 10, ""),
        aws_tunnel(&long, 11, ""),
        aws_tunnel("aws.t3", 12, "")
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:8:8: tunnel[0].name: `t1` is not a valid name: use 3 to 20 characters, only letters, digits and hyphens".to_string(),
            format!("t.toml:14:8: tunnel[1].name: `{long}` is not a valid name: use 3 to 20 characters, only letters, digits and hyphens"),
            "t.toml:20:8: tunnel[2].name: `aws.t3` is not a valid name: use 3 to 20 characters, only letters, digits and hyphens".to_string(),
        ]
    );
}

#[test]
fn duplicate_tunnel_names() {
    let text = format!(
        "{ROUTER}{}{}",
        aws_tunnel("aws-t1", 10, ""),
        aws_tunnel("aws-t1", 11, "")
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:14:8: tunnel[1].name: duplicate tunnel name `aws-t1` (first defined on line 8)"
        ]
    );
}

#[test]
fn interface_used_as_wan_and_lan() {
    let text = ROUTER.replace("lan = [\"ens6\"]", "lan = [\"ens6\", \"ens5\", \"ens6\"]");
    assert_eq!(
        errors(&format!("{text}{}", aws_tunnel("aws-t1", 10, ""))),
        vec![
            "t.toml:4:16: router.lan[1]: `ens5` is already the WAN interface: an interface is either WAN or LAN",
            "t.toml:4:24: router.lan[2]: `ens6` is listed twice",
        ]
    );
}

#[test]
fn interface_names_are_linux_names() {
    let text = ROUTER.replace("wan = \"ens5\"", "wan = \"a-very-long-ifname0\"");
    assert_eq!(
        errors(&format!("{text}{}", aws_tunnel("aws-t1", 10, ""))),
        vec![
            "t.toml:3:7: router.wan: `a-very-long-ifname0` is not a valid Linux interface name (1 to 15 bytes, no '/', ':' or whitespace)"
        ]
    );
}

#[test]
fn addresses_and_identities() {
    let text = format!(
        "{}wan_public_address = \"203.0.113.300\"\nidentity = {{ type = \"fqdn\", value = \"not a name\" }}\n{}",
        ROUTER,
        aws_tunnel(
            "aws-t1",
            10,
            "remote_identity = { type = \"ipv4\", value = \"2001:db8::1\" }\n"
        )
        .replace("192.0.2.10", "192.0.2.x")
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:6:22: router.wan_public_address: `203.0.113.300` is not an IP address",
            "t.toml:7:37: router.identity.value: `not a name` is not a fully qualified domain name",
            "t.toml:11:8: tunnel[0].peer: `192.0.2.x` is not an IP address",
            "t.toml:14:44: tunnel[0].remote_identity.value: `2001:db8::1` is not an IPv4 address",
        ]
    );
}

#[test]
fn workers_are_between_one_and_the_maximum() {
    let c = ok(&format!(
        "{ROUTER}workers = 2\n{}",
        aws_tunnel("aws-t1", 10, "")
    ));
    assert_eq!(c.router.workers, Some(2));
    let c = ok(&format!("{ROUTER}{}", aws_tunnel("aws-t1", 10, "")));
    assert_eq!(c.router.workers, None, "unset: one per queue");
    assert_eq!(
        errors(&format!("{ROUTER}workers = 0\n")),
        vec!["t.toml:6:11: router.workers: 0 workers: between 1 and 64 (one per receive queue)"]
    );
    assert_eq!(
        errors(&format!("{ROUTER}workers = 65\n")),
        vec!["t.toml:6:11: router.workers: 65 workers: between 1 and 64 (one per receive queue)"]
    );
}

#[test]
fn identity_types_are_typed() {
    let c = ok(&format!(
        "{}identity = {{ type = \"email\", value = \"vpn@example.com\" }}\n{}",
        ROUTER,
        aws_tunnel("aws-t1", 10, "")
    ));
    assert_eq!(
        c.router.identity,
        Some(Identity::Email("vpn@example.com".into()))
    );
    assert_eq!(
        c.tunnels[0].remote_identity,
        Identity::Ipv4("192.0.2.10".parse().unwrap())
    );
    assert_eq!(
        errors(&format!(
            "{}identity = {{ type = \"dn\", value = \"x\" }}\n",
            ROUTER
        )),
        vec![
            "t.toml:6:21: router.identity.type: unknown variant `dn`, expected one of `ipv4`, `ipv6`, `fqdn`, `email`, `key_id`"
        ]
    );
}

#[test]
fn inline_secrets_are_refused_without_echoing_them() {
    let text = format!(
        "{}{}",
        ROUTER.replace(
            "auth = { psk = { env = \"VPN_PSK\" } }",
            "auth = { psk = \"Sup3rSecretPsk\" }"
        ),
        aws_tunnel(
            "aws-t1",
            10,
            "auth = { ed25519_private_key = 424242424242 }\n"
        )
    );
    let e = errors(&text);
    assert_eq!(
        e,
        vec![
            "t.toml:5:16: router.auth.psk: inline secrets are not allowed: reference the secret with { file = \"/etc/vpn/...\" } (mode 0600) or { env = \"VAR\" }",
            "t.toml:12:32: tunnel[0].auth.ed25519_private_key: inline secrets are not allowed: reference the secret with { file = \"/etc/vpn/...\" } (mode 0600) or { env = \"VAR\" }",
        ]
    );
    let all = e.join("\n");
    assert!(!all.contains("Sup3rSecretPsk"));
    assert!(!all.contains("424242424242"));
    // Unknown keys in a reference are refused without looking at their value either.
    let text = ROUTER.replace("{ env = \"VPN_PSK\" }", "{ value = \"Sup3rSecretPsk\" }");
    let e = errors(&text).join("\n");
    assert!(
        e.contains("unknown key `value` in a secret reference"),
        "{e}"
    );
    assert!(!e.contains("Sup3rSecretPsk"), "{e}");
}

#[test]
fn secret_references_are_checked() {
    let text = ROUTER.replace("{ env = \"VPN_PSK\" }", "{ file = \"psk.txt\" }");
    assert_eq!(
        errors(&text),
        vec!["t.toml:5:16: router.auth.psk: secret file `psk.txt` must be an absolute path"]
    );
    let text = ROUTER.replace("{ env = \"VPN_PSK\" }", "{ env = \"A\", file = \"/x\" }");
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:5:16: router.auth.psk: a secret reference takes exactly one of `file` or `env`"
        ]
    );
}

#[test]
fn auth_is_required_and_consistent() {
    let router = ROUTER.replace("auth = { psk = { env = \"VPN_PSK\" } }\n", "");
    let text = format!(
        "{router}{}{}{}",
        aws_tunnel("aws-t1", 10, ""),
        policy_tunnel("mesh-a", 1, "\"10.1.0.0/16\"", "\"10.2.0.0/16\"")
            + "auth = { rsa_private_key = { file = \"/etc/vpn/k.pem\" } }\n",
        policy_tunnel("mesh-b", 2, "\"10.1.0.0/16\"", "\"10.3.0.0/16\"")
            + "auth = { psk = { env = \"P\" }, ecdsa_private_key = { env = \"K\" } }\npeer_public_key = \"/etc/vpn/b.pub\"\n",
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:7:8: tunnel[0]: no authentication: set tunnel[0].auth or router.auth",
            "t.toml:13:8: tunnel[1]: key authentication needs peer_public_key (the peer's public key file)",
            "t.toml:22:51: tunnel[2].auth.ecdsa_private_key: set only one of psk, rsa_private_key, ecdsa_private_key or ed25519_private_key",
        ]
    );
    let text = format!(
        "{ROUTER}{}",
        aws_tunnel("aws-t1", 10, "peer_public_key = \"/etc/vpn/x.pub\"\n")
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:12:19: tunnel[0].peer_public_key: peer_public_key is only used with key authentication, not psk"
        ]
    );
}

#[test]
fn cloud_profiles_need_psk() {
    let text = format!(
        "{ROUTER}{}",
        aws_tunnel(
            "aws-t1",
            10,
            "auth = { rsa_private_key = { file = \"/etc/vpn/k\" } }\npeer_public_key = \"/etc/vpn/p\"\n"
        )
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:12:8: tunnel[0].auth: AWS Site-to-Site VPN tunnels authenticate with a pre-shared key (psk)"
        ]
    );
}

#[test]
fn proposals_are_parsed_and_checked_against_profiles() {
    let text = format!(
        "{ROUTER}{}{}",
        aws_tunnel(
            "aws-t1",
            10,
            "ike_proposals = [\"aes256-sha265-modp2048\", \"chacha20poly1305-prfsha256-modp2048\", \"aes256gcm16-prfsha256-modp1536\"]\n"
        ),
        aws_tunnel(
            "aws-t2",
            11,
            "esp_proposals = [\"aes256gcm16-modp1536\", \"aes192-sha1\"]\n"
        )
        .replace("\"aws\"", "\"gcp\"")
        .replace(
            "esp_proposals = [\"aes256gcm16-modp1536\", \"aes192-sha1\"]",
            "esp_proposals = [\"chacha20poly1305\"]\nike_proposals = []"
        )
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:12:18: tunnel[0].ike_proposals[0]: unknown algorithm `sha265` in proposal `aes256-sha265-modp2048`",
            "t.toml:12:44: tunnel[0].ike_proposals[1]: `chacha20poly1305` is not accepted by AWS (AES128, AES256, AES128-GCM-16, AES256-GCM-16)",
            "t.toml:12:83: tunnel[0].ike_proposals[2]: `modp1536` (group 5) is not accepted by AWS in phase 1 (groups 2, 14-24)",
            "t.toml:19:18: tunnel[1].esp_proposals[0]: `chacha20poly1305` is not among Cloud VPN's supported ciphers (AES-CBC, AES-GCM)",
            "t.toml:20:17: tunnel[1].ike_proposals: at least one proposal is needed",
        ]
    );
    // ESP takes group 5 at AWS (phase 2), not aes192.
    let text = format!(
        "{ROUTER}{}",
        aws_tunnel(
            "aws-t1",
            10,
            "esp_proposals = [\"aes256gcm16-modp1536\", \"aes192-sha1\"]\n"
        )
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:12:42: tunnel[0].esp_proposals[1]: `aes192` is not accepted by AWS (AES128, AES256, AES128-GCM-16, AES256-GCM-16)"
        ]
    );
}

#[test]
fn aws_lifetime_limits() {
    // The example of the brief: tunnel[1].lifetimes.child above 3600 s.
    let text = format!(
        "{ROUTER}{}{}",
        aws_tunnel("aws-t1", 10, ""),
        aws_tunnel(
            "aws-t2",
            11,
            "[tunnel.lifetimes]\nike = 28800\nchild = 4000\n"
        )
    );
    assert_eq!(
        errors(&text),
        vec!["t.toml:20:9: tunnel[1].lifetimes.child: 4000 s is above AWS's limit of 3600 s"]
    );
    let t = |extra: &str| errors(&format!("{ROUTER}{}", aws_tunnel("aws-t1", 10, extra)));
    assert_eq!(
        t("lifetimes = { ike = 600, child = \"20m\" }\n"),
        vec!["t.toml:12:21: tunnel[0].lifetimes.ike: 600 s is below AWS's minimum of 900 s"]
    );
    assert_eq!(
        t("lifetimes = { ike = \"30m\", child = \"30m\" }\n"),
        vec![
            "t.toml:12:36: tunnel[0].lifetimes.child: AWS needs the CHILD lifetime (1800 s) below the IKE lifetime (1800 s)"
        ]
    );
    assert_eq!(
        t("lifetimes = { rekey_margin = 30 }\n"),
        vec!["t.toml:12:30: tunnel[0].lifetimes.rekey_margin: 30 s is below AWS's minimum of 60 s"]
    );
    assert_eq!(
        t("lifetimes = { child = 1800, rekey_margin = 901 }\n"),
        vec![
            "t.toml:12:44: tunnel[0].lifetimes.rekey_margin: 901 s is above half the CHILD lifetime (900 s), AWS's limit"
        ]
    );
    assert_eq!(
        t("lifetimes = { rekey_fuzz = 150 }\n"),
        vec!["t.toml:12:28: tunnel[0].lifetimes.rekey_fuzz: 150 % is above 100 %"]
    );
    assert_eq!(
        t("lifetimes = { ike = \"8x\" }\n"),
        vec![
            "t.toml:12:21: tunnel[0].lifetimes.ike: `8x` is not a duration: use seconds (3600) or a string like \"1h\", \"90m\", \"540s\""
        ]
    );
}

#[test]
fn general_lifetime_rules() {
    let text = format!(
        "{ROUTER}{}lifetimes = {{ ike = \"1h\", child = \"2h\", rekey_margin = \"1h\" }}\n",
        policy_tunnel("site-b", 2, "\"10.1.0.0/16\"", "\"10.2.0.0/16\"")
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:11:56: tunnel[0].lifetimes.rekey_margin: the rekey margin (3600 s) must be shorter than the IKE (3600 s) and CHILD (7200 s) lifetimes"
        ]
    );
    let text = format!(
        "{ROUTER}{}lifetimes = {{ child = 0 }}\n",
        policy_tunnel("site-b", 2, "\"10.1.0.0/16\"", "\"10.2.0.0/16\"")
    );
    assert_eq!(
        errors(&text),
        vec!["t.toml:11:23: tunnel[0].lifetimes.child: a lifetime must be longer than 0 s"]
    );
}

#[test]
fn replay_window_dpd_and_nat_t() {
    let t = |extra: &str| errors(&format!("{ROUTER}{}", aws_tunnel("aws-t1", 10, extra)));
    assert_eq!(
        t("replay_window = 32\n"),
        vec!["t.toml:12:17: tunnel[0].replay_window: 32 packets is below AWS's minimum of 64"]
    );
    assert_eq!(
        t("replay_window = 4096\n"),
        vec!["t.toml:12:17: tunnel[0].replay_window: 4096 packets is above AWS's limit of 2048"]
    );
    assert_eq!(
        t("dpd = { delay = 5, timeout = 20 }\n"),
        vec!["t.toml:12:30: tunnel[0].dpd.timeout: 20 s is below AWS's minimum of 30 s"]
    );
    assert_eq!(
        t("dpd = { delay = 40, timeout = 30, action = \"reboot\" }\n"),
        vec![
            "t.toml:12:44: tunnel[0].dpd.action: unknown variant `reboot`, expected one of `clear`, `restart`, `none`"
        ]
    );
    assert_eq!(
        t("dpd = { delay = 40, timeout = 30 }\n"),
        vec![
            "t.toml:12:31: tunnel[0].dpd.timeout: the DPD timeout (30 s) must be longer than the delay (40 s)"
        ]
    );
    assert_eq!(
        t("nat_traversal = false\nforce_encap = true\n"),
        vec![
            "t.toml:13:15: tunnel[0].force_encap: force_encap needs nat_traversal = true (encapsulation is UDP 4500)"
        ]
    );
}

#[test]
fn mtu_and_mss() {
    let t = |extra: &str| errors(&format!("{ROUTER}{}", aws_tunnel("aws-t1", 10, extra)));
    assert_eq!(
        t("mtu = 1400\nmss = 1400\n"),
        vec!["t.toml:13:7: tunnel[0].mss: MSS 1400 must be at least 536 and below the MTU (1400)"]
    );
    assert_eq!(
        t("mtu = 1480\n"),
        vec![
            "t.toml:12:7: tunnel[0].mtu: mtu 1480 leaves no room for ESP under outer_mtu 1500 (at least 50 bytes of overhead)"
        ]
    );
    assert_eq!(
        t("mtu = 100\n"),
        vec!["t.toml:12:7: tunnel[0].mtu: 100 is outside 576..=9000"]
    );
    assert_eq!(
        t("mtu = 1200\n"),
        vec!["t.toml:12:7: tunnel[0].mtu: MSS 1379 must be at least 536 and below the MTU (1200)"]
    );
}

#[test]
fn gcp_profile_limits() {
    let gcp = |extra: &str| {
        errors(&format!(
            "{ROUTER}{}",
            aws_tunnel("gcp-if0", 10, extra).replace("\"aws\"", "\"gcp\"")
        ))
    };
    assert_eq!(gcp(""), Vec::<String>::new());
    assert_eq!(
        gcp("ike_version = 1\nouter_mtu = 1500\n"),
        vec![
            "t.toml:12:15: tunnel[0].ike_version: GCP HA VPN supports IKEv2 only",
            "t.toml:13:13: tunnel[0].outer_mtu: 1500 is above GCP's gateway MTU of 1460",
        ]
    );
    assert_eq!(
        gcp(
            "auth = { ed25519_private_key = { file = \"/etc/vpn/k\" } }\npeer_public_key = \"/etc/vpn/p\"\n"
        ),
        vec![
            "t.toml:12:8: tunnel[0].auth: GCP HA VPN tunnels authenticate with a pre-shared key (psk)"
        ]
    );
}

#[test]
fn selectors_or_inside() {
    let text = format!(
        "{ROUTER}{}{}",
        aws_tunnel(
            "aws-t1",
            10,
            "selectors = { local = [\"10.1.0.0/16\"], remote = [\"10.2.0.0/16\"] }\n"
        ),
        "\n[[tunnel]]\nname = \"bare\"\npeer = \"198.51.100.9\"\n"
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:11:10: tunnel[0].inside: set either selectors (policy-based) or inside (route-based), not both",
            "t.toml:15:8: tunnel[1]: set selectors (policy-based) or inside (route-based, 0.0.0.0/0 selectors)",
        ]
    );
}

#[test]
fn selector_prefixes() {
    let text = format!(
        "{ROUTER}{}",
        policy_tunnel("site-b", 2, "\"10.1.0.1/16\"", "\"10.0.0.0/8\", \"bogus\"")
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:10:24: tunnel[0].selectors.local[0]: `10.1.0.1/16` has host bits set (did you mean 10.1.0.0/16?)",
            "t.toml:10:64: tunnel[0].selectors.remote[1]: `bogus` is not a prefix (like 10.0.0.0/16)",
        ]
    );
    let text = format!(
        "{ROUTER}{}",
        policy_tunnel("site-b", 2, "\"10.1.0.0/16\"", "\"10.0.0.0/8\"")
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:10:50: tunnel[0].selectors.remote[0]: 10.0.0.0/8 overlaps the local selector 10.1.0.0/16: traffic would loop into the tunnel"
        ]
    );
}

#[test]
fn overlapping_selectors_between_tunnels() {
    let text = format!(
        "{ROUTER}{}{}{}",
        policy_tunnel("site-b", 2, "\"10.1.0.0/16\"", "\"10.2.0.0/16\""),
        // Identical pair: an active/standby pair, allowed.
        policy_tunnel("site-b2", 3, "\"10.1.0.0/16\"", "\"10.2.0.0/16\""),
        // Partial overlap: ambiguous.
        policy_tunnel("site-c", 4, "\"10.1.0.0/16\"", "\"10.2.128.0/17\""),
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:20:13: tunnel[2].selectors: 10.1.0.0/16 === 10.2.128.0/17 partly overlaps tunnel `site-b`'s 10.1.0.0/16 === 10.2.0.0/16 (line 10): traffic in the overlap matches two policies (identical selectors are allowed as an active/standby pair)",
            "t.toml:20:13: tunnel[2].selectors: 10.1.0.0/16 === 10.2.128.0/17 partly overlaps tunnel `site-b2`'s 10.1.0.0/16 === 10.2.0.0/16 (line 15): traffic in the overlap matches two policies (identical selectors are allowed as an active/standby pair)",
        ]
    );
}

#[test]
fn inside_addresses() {
    let inside = |local: &str, remote: &str| {
        errors(&format!(
            "{ROUTER}{}",
            aws_tunnel("aws-t1", 10, "").replace(
                "inside = { local = \"169.254.10.2/30\", remote = \"169.254.10.1\" }",
                &format!("inside = {{ local = \"{local}\", remote = \"{remote}\" }}")
            )
        ))
    };
    assert_eq!(
        inside("169.254.10.2/29", "169.254.10.1"),
        vec![
            "t.toml:11:20: tunnel[0].inside.local: the inside network 169.254.10.0/29 must be a /30 (IPv4) or /126 (IPv6)"
        ]
    );
    assert_eq!(
        inside("10.0.0.2/30", "10.0.0.1"),
        vec![
            "t.toml:11:20: tunnel[0].inside.local: AWS inside CIDRs come from 169.254.0.0/16, not 10.0.0.0/30"
        ]
    );
    assert_eq!(
        inside("169.254.169.254/30", "169.254.169.253"),
        vec![
            "t.toml:11:20: tunnel[0].inside.local: 169.254.169.252/30 is one of AWS's reserved inside CIDRs"
        ]
    );
    assert_eq!(
        inside("169.254.5.1/30", "169.254.5.2"),
        vec![
            "t.toml:11:20: tunnel[0].inside.local: 169.254.5.0/30 is one of AWS's reserved inside CIDRs"
        ]
    );
    assert_eq!(
        inside("169.254.10.2/30", "169.254.10.3"),
        vec![
            "t.toml:11:48: tunnel[0].inside.remote: 169.254.10.3 must be the other usable address of 169.254.10.0/30 (ours is 169.254.10.2)"
        ]
    );
    assert_eq!(
        inside("169.254.10.0/30", "169.254.10.1"),
        vec![
            "t.toml:11:20: tunnel[0].inside.local: 169.254.10.0 is the network or broadcast address of 169.254.10.0/30"
        ]
    );
    // Two tunnels on one inside network.
    let text = format!(
        "{ROUTER}{}{}",
        aws_tunnel("aws-t1", 10, ""),
        aws_tunnel("aws-t2", 11, "")
            .replace("169.254.11.2/30", "169.254.10.1/30")
            .replace("remote = \"169.254.11.1\"", "remote = \"169.254.10.2\"")
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:17:10: tunnel[1].inside.local: inside network 169.254.10.0/30 overlaps tunnel `aws-t1`'s 169.254.10.0/30 (line 11)"
        ]
    );
}

#[test]
fn routes() {
    let text = format!(
        "{ROUTER}{}{}{}",
        aws_tunnel("aws-t1", 10, ""),
        policy_tunnel("site-b", 2, "\"10.1.0.0/16\"", "\"10.2.0.0/16\""),
        r#"
[[route]]
prefix = "10.0.0.0/16"
tunnel = "aws-t1"

[[route]]
prefix = "10.0.0.0/16"
tunnel = "aws-t9"

[[route]]
prefix = "10.0.0.0/16"
tunnel = "site-b"

[[route]]
prefix = "10.0.0.0/16"
tunnel = "aws-t1"
priority = 200

[[route]]
prefix = "10.0.0.1/16"
tunnel = "aws-t1"
"#
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:24:10: route[1].tunnel: no tunnel named `aws-t9` (tunnels: aws-t1, site-b)",
            "t.toml:27:10: route[2].prefix: 10.0.0.0/16 is outside tunnel `site-b`'s remote selectors (10.2.0.0/16): its traffic would match no SA",
            "t.toml:27:10: route[2].prefix: 10.0.0.0/16 already goes to tunnel `aws-t1` with priority 100 (line 19): give the standby route a different priority",
            "t.toml:31:10: route[3].prefix: duplicate route 10.0.0.0/16 via `aws-t1` (line 19)",
            "t.toml:36:10: route[4].prefix: `10.0.0.1/16` has host bits set (did you mean 10.0.0.0/16?)",
        ]
    );
}

#[test]
fn active_standby_routes_resolve() {
    let c = ok(&format!(
        "{ROUTER}{}{}{}",
        aws_tunnel("aws-t1", 10, ""),
        aws_tunnel("aws-t2", 11, ""),
        "[[route]]\nprefix = \"10.0.0.0/16\"\ntunnel = \"aws-t1\"\n[[route]]\nprefix = \"10.0.0.0/16\"\ntunnel = \"aws-t2\"\npriority = 200\n"
    ));
    assert_eq!(c.routes.len(), 2);
    assert_eq!(c.routes[0].priority, 100);
    assert_eq!(c.routes[1].priority, 200);
    assert_eq!(c.routes[1].prefix, "10.0.0.0/16".parse().unwrap());
}

#[test]
fn nat_rules() {
    let text = format!(
        "{ROUTER}{}{}",
        aws_tunnel("aws-t1", 10, ""),
        r#"
[[nat]]
from = "172.16.168.0/24"
to = ["10.110.0.0/16", "2001:db8::/32"]
out = "ens7"
"#
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:15:24: nat[0].to[1]: 2001:db8::/32 and the source 172.16.168.0/24 are of different address families",
            "t.toml:16:7: nat[0].out: `ens7` is neither the WAN nor a LAN interface (ens5, ens6)",
        ]
    );
    let c = ok(&text
        .replace("\"2001:db8::/32\"", "\"10.120.0.0/16\"")
        .replace("ens7", "ens6"));
    assert_eq!(c.nat[0].action, NatAction::Masquerade);
    assert_eq!(c.nat[0].to.len(), 2);
}

#[test]
fn sysctl_policy() {
    let text = format!(
        "{ROUTER}{}{}",
        aws_tunnel("aws-t1", 10, ""),
        r#"
[sysctl]
ip_forward = false
rp_filter = { all = 2, ens6 = 1, ens9 = 0, ens5 = 3 }
tcp_mtu_probing = 5
"#
    );
    assert_eq!(
        errors(&text),
        vec![
            "t.toml:14:14: sysctl.ip_forward: a VPN router must forward: ip_forward = false would drop all tunnel traffic (set manage = false to leave sysctls alone)",
            "t.toml:15:31: sysctl.rp_filter.ens6: 1 has no effect while all = 2: the kernel uses the higher of the two",
            "t.toml:15:34: sysctl.rp_filter.ens9: `ens9` is not `all`, `default`, the WAN or a LAN interface",
            "t.toml:15:41: sysctl.rp_filter.ens9: 0 has no effect while all = 2: the kernel uses the higher of the two",
            "t.toml:15:51: sysctl.rp_filter.ens5: 3 is not 0 (off), 1 (strict) or 2 (loose)",
            "t.toml:16:19: sysctl.tcp_mtu_probing: 5 is not 0, 1 or 2",
        ]
    );
    // Defaults when [sysctl] is absent: managed, forwarding on, redirects and source routing
    // off, loose rp_filter, MTU probing on, restored on exit.
    let c = ok(&format!("{ROUTER}{}", aws_tunnel("aws-t1", 10, "")));
    let s = &c.sysctl;
    assert!(s.manage && s.ip_forward && s.restore_on_exit);
    assert!(!s.send_redirects && !s.accept_redirects && !s.accept_source_route);
    assert_eq!(s.rp_filter.get("all"), Some(&2));
    assert_eq!(s.tcp_mtu_probing, 1);
    // manage = false leaves ip_forward alone.
    ok(&format!(
        "{ROUTER}{}[sysctl]\nmanage = false\nip_forward = false\n",
        aws_tunnel("aws-t1", 10, "")
    ));
}

#[test]
fn aws_profile_fills_in_defaults() {
    let c = ok(&format!("{ROUTER}{}", aws_tunnel("aws-t1", 10, "")));
    let t = &c.tunnels[0];
    assert_eq!(t.profile, Some(Profile::Aws));
    assert_eq!(t.lifetimes.ike, Duration::from_secs(28800));
    assert_eq!(t.lifetimes.child, Duration::from_secs(3600));
    assert_eq!(t.lifetimes.rekey_margin, Duration::from_secs(540));
    assert_eq!(t.lifetimes.rekey_fuzz_percent, 100);
    assert_eq!(t.replay_window, 1024);
    assert_eq!(t.dpd.timeout, Duration::from_secs(30));
    assert_eq!(t.dpd.action, DpdAction::Clear);
    assert_eq!((t.mtu, t.mss), (1399, 1379));
    assert_eq!(t.ike_version, IkeVersion::V2);
    assert_eq!(t.startup, Startup::Initiate);
    assert!(t.nat_traversal && !t.force_encap && t.fragmentation);
    assert_eq!(
        t.ike_proposals[0].to_string(),
        "aes256gcm16-prfsha256-modp2048"
    );
    assert_eq!(t.ike_proposals.len(), 4);
    assert_eq!(
        t.esp_proposals[0].encryption,
        vec![Encryption::AesGcm16_256]
    );
    assert_eq!(t.auth.method, AuthMethod::Psk);
    assert_eq!(t.auth.secret.source, SecretSource::Env("VPN_PSK".into()));
    // Route-based: the 0.0.0.0/0 selector pair and the inside /30.
    let any: ipnet::IpNet = "0.0.0.0/0".parse().unwrap();
    assert_eq!(t.selectors(), (vec![any], vec![any]));
    assert_eq!(
        t.traffic,
        TrafficMode::Route {
            inside_local: "169.254.10.2/30".parse().unwrap(),
            inside_remote: "169.254.10.1".parse().unwrap(),
        }
    );
}

#[test]
fn gcp_and_plain_defaults() {
    let c = ok(&format!(
        "{ROUTER}{}{}",
        aws_tunnel("gcp-if0", 10, "").replace("\"aws\"", "\"gcp\""),
        policy_tunnel("site-b", 2, "\"10.1.0.0/16\"", "\"10.2.0.0/16\"")
    ));
    let g = &c.tunnels[0];
    assert_eq!(g.lifetimes.ike, Duration::from_secs(36000));
    assert_eq!(g.lifetimes.child, Duration::from_secs(10800));
    assert_eq!((g.mtu, g.mss, g.outer_mtu), (1390, 1350, 1460));
    assert_eq!(g.ike_proposals.len(), 1);
    let p = &c.tunnels[1];
    assert_eq!(p.profile, None);
    assert_eq!(p.lifetimes.ike, Duration::from_secs(14400));
    assert_eq!(p.dpd.action, DpdAction::Restart);
    assert_eq!((p.mtu, p.mss, p.outer_mtu), (1400, 1360, 1500));
}

#[test]
fn durations_accept_units() {
    let c = ok(&format!(
        "{ROUTER}{}",
        aws_tunnel(
            "aws-t1",
            10,
            "lifetimes = { ike = \"7h30m\", child = \"45m\", rekey_margin = \"5m\" }\n"
        )
    ));
    assert_eq!(c.tunnels[0].lifetimes.ike, Duration::from_secs(27000));
    assert_eq!(c.tunnels[0].lifetimes.child, Duration::from_secs(2700));
    assert_eq!(
        c.tunnels[0].lifetimes.rekey_margin,
        Duration::from_secs(300)
    );
}

#[test]
fn all_errors_are_collected_in_file_order() {
    let text = format!(
        "{}{}{}",
        ROUTER.replace("\"edge\"", "\"edge_1\""),
        aws_tunnel("aws-t1", 10, "replay_window = 8\n"),
        aws_tunnel("aws-t2", 11, "lifetimes = { child = 4000 }\n"),
    );
    let e = Config::from_str(&text, "config/aws.toml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "config/aws.toml:2:8: router.name: `edge_1` is not a valid name: use 1 to 12 characters, only letters, digits and hyphens\n\
         config/aws.toml:12:17: tunnel[0].replay_window: 8 packets is below AWS's minimum of 64\n\
         config/aws.toml:19:23: tunnel[1].lifetimes.child: 4000 s is above AWS's limit of 3600 s"
    );
    assert_eq!(
        e.errors[2].location,
        Location {
            line: 19,
            column: 23
        }
    );
    assert_eq!(e.errors[2].path, "tunnel[1].lifetimes.child");
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[router]\nname = \"x\"\n").unwrap();
    let e = Config::load(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}:1:1: router: missing field `wan`", path.display())
    );
    let e = Config::load(dir.path().join("absent.toml")).unwrap_err();
    assert!(
        e.to_string()
            .contains("absent.toml:1:1: cannot read the configuration")
    );
}

#[test]
fn structured_proposals() {
    let c = ok(&format!(
        "{ROUTER}{}",
        aws_tunnel(
            "aws-t1",
            10,
            "ike_proposals = [{ dh = [\"modp2048\", \"ecp256\"], encryption = \"aes256gcm16\", prf = \"prfsha256\" }, \"aes128-sha1-modp2048\"]\nesp_proposals = [{ encryption = [\"aes256gcm16\", \"aes128gcm16\"], dh = \"modp2048\", esn = \"esn\" }]\n"
        )
    ));
    let t = &c.tunnels[0];
    assert_eq!(
        t.ike_proposals[0].to_string(),
        "aes256gcm16-prfsha256-modp2048-ecp256"
    );
    assert_eq!(
        t.ike_proposals[1].to_string(),
        "aes128-sha1-prfsha1-modp2048"
    );
    assert_eq!(
        t.esp_proposals[0],
        Proposal {
            encryption: vec![Encryption::AesGcm16_256, Encryption::AesGcm16_128],
            integrity: vec![],
            prf: vec![],
            dh: vec![DhGroup::Modp2048],
            esn: vec![Esn::Yes],
        }
    );
    assert_eq!(
        errors(&format!(
            "{ROUTER}{}",
            aws_tunnel(
                "aws-t1",
                10,
                "ike_proposals = [{ cipher = \"aes256gcm16\" }]\nesp_proposals = [{ encryption = \"aes256gcm16\", dh = \"ecp224\" }]\n"
            )
        )),
        vec![
            "t.toml:12:18: tunnel[0].ike_proposals[0]: unknown field `cipher`, expected one of `encryption`, `integrity`, `prf`, `dh`, `esn`",
        ]
    );
    assert_eq!(
        errors(&format!(
            "{ROUTER}{}",
            aws_tunnel(
                "aws-t1",
                10,
                "esp_proposals = [{ encryption = \"aes256gcm16\", dh = \"ecp224\" }]\n"
            )
        )),
        vec![
            "t.toml:12:18: tunnel[0].esp_proposals[0]: unknown algorithm `ecp224` in proposal `aes256gcm16-ecp224`",
        ]
    );
}

#[test]
fn full_tunnel_selectors_are_allowed() {
    let c = ok(&format!(
        "{ROUTER}{}",
        policy_tunnel("hub", 2, "\"10.1.0.0/16\"", "\"0.0.0.0/0\"")
    ));
    assert_eq!(
        c.tunnels[0].selectors().1,
        vec!["0.0.0.0/0".parse::<ipnet::IpNet>().unwrap()]
    );
}

#[test]
fn route_to_a_tunnel_with_errors_is_not_reported_as_unknown() {
    let text = format!(
        "{ROUTER}{}[[route]]\nprefix = \"10.0.0.0/16\"\ntunnel = \"aws-t1\"\n",
        aws_tunnel("aws-t1", 10, "").replace("192.0.2.10", "192.0.2.300")
    );
    assert_eq!(
        errors(&text),
        vec!["t.toml:9:8: tunnel[0].peer: `192.0.2.300` is not an IP address"]
    );
}
