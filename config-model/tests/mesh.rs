//! Seed 004's mesh inventory: checked, and each rendered node file is a valid configuration.

use vpn_config::*;

const INVENTORY: &str = r#"[mesh]
key_type = "rsa"
ike_proposals = ["aes192gcm16-aes128gcm16-prfsha256-ecp256-ecp521", "aes192-sha256-modp3072"]
esp_proposals = ["aes192gcm16-aes128gcm16-ecp256", "aes192-sha256-modp3072"]

[[node]]
name = "us-east-1"
public_address = "203.0.113.1"
wan = "ens5"
lan = ["ens6"]
prefixes = ["172.16.0.0/16"]
private_key = "/etc/vpn/keys/us-east-1.key"
public_key = "/etc/vpn/certs/us-east-1.pub"

[[node]]
name = "us-east-2"
public_address = "198.51.100.2"
wan = "ens5"
lan = ["ens6"]
prefixes = ["172.31.0.0/16"]
private_key = "/etc/vpn/keys/us-east-2.key"
public_key = "/etc/vpn/certs/us-east-2.pub"

[[node]]
name = "us-west-2"
public_address = "198.51.100.3"
wan = "eth0"
lan = ["eth1"]
prefixes = ["10.50.0.0/16"]
private_key = "/etc/vpn/keys/us-west-2.key"
public_key = "/etc/vpn/certs/us-west-2.pub"
"#;

#[test]
fn every_rendered_node_is_a_valid_config() {
    let inv = MeshInventory::from_str(INVENTORY, "mesh.toml").unwrap();
    assert_eq!(inv.nodes.len(), 3);
    for node in &inv.nodes {
        let text = inv.render(&node.name).unwrap();
        let c = Config::from_str(&text, &format!("{}.toml", node.name))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(c.router.name, node.name);
        assert_eq!(c.tunnels.len(), 2);
        assert_eq!(c.routes.len(), 2);
        for t in &c.tunnels {
            assert_eq!(t.auth.method, AuthMethod::Rsa);
            assert!(t.force_encap && t.fragmentation);
            assert_eq!(t.dpd.action, DpdAction::Restart);
            let (local, _) = t.selectors();
            assert_eq!(local, node.prefixes);
        }
    }
    // The us-east-1 file matches the hand-written example's tunnels.
    let rendered = Config::from_str(&inv.render("us-east-1").unwrap(), "r.toml").unwrap();
    let example = Config::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/mesh-node-us-east-1.toml"
    ))
    .unwrap();
    // Equal but for where the key reference was written in each file.
    let strip = |c: &Config| {
        let mut t = c.tunnels.clone();
        for t in &mut t {
            t.auth.secret.location = Location::default();
        }
        t
    };
    assert_eq!(strip(&rendered), strip(&example));
    assert_eq!(rendered.routes, example.routes);
    assert!(inv.render("eu-west-1").is_none());
}

#[test]
fn inventory_errors() {
    let bad = INVENTORY
        .replace("name = \"us-west-2\"", "name = \"us-east-2\"")
        .replace("\"10.50.0.0/16\"", "\"172.31.128.0/17\"")
        .replace(
            "public_address = \"198.51.100.3\"",
            "public_address = \"198.51.100.2\"",
        )
        .replace("\"/etc/vpn/keys/us-west-2.key\"", "\"keys/us-west-2.key\"")
        .replace("key_type = \"rsa\"", "key_type = \"dsa\"");
    let e = MeshInventory::from_str(&bad, "mesh.toml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "mesh.toml:2:12: mesh.key_type: `dsa` is not rsa, ecdsa or ed25519\n\
         mesh.toml:25:8: node[2].name: duplicate node name `us-east-2` (first defined on line 16)\n\
         mesh.toml:26:18: node[2].public_address: 198.51.100.2 is already the address of another node (line 17)\n\
         mesh.toml:29:13: node[2].prefixes[0]: 172.31.128.0/17 overlaps 172.31.0.0/16 of node `us-east-2` (line 20): mesh nodes route by prefix\n\
         mesh.toml:30:15: node[2].private_key: `keys/us-west-2.key` must be an absolute path"
    );
}
