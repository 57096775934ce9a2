//! `vpn-agent validate`: the shipped examples pass, and a broken file fails with every problem
//! located as FILE:LINE:COLUMN: FIELD: REASON.

use std::process::Command;

use vpn_tests::agent_bin;

#[test]
fn every_example_configuration_validates() -> anyhow::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = Command::new(agent_bin()?)
                .arg("validate")
                .arg(&path)
                .output()?;
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} examples found");
    Ok(())
}

#[test]
fn a_broken_file_fails_with_located_errors() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[router]\nname = \"edge\"\nwan = \"eth0\"\nlan = [\"eth0\"]\n\n[[tunnel]]\nname = \"aws-t1\"\n\
         peer = \"192.0.2.1\"\nprofile = \"aws\"\nlifetimes = { child = 4000 }\n\
         auth = { psk = { file = \"/etc/vpn/psk\" } }\n\
         inside = { local = \"169.254.44.2/30\", remote = \"169.254.44.1\" }\n",
    )?;
    let out = Command::new(agent_bin()?)
        .arg("validate")
        .arg(&path)
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    assert!(
        stderr.contains(&format!("{file}:4:8: router.lan[0]:")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{file}:10:23: tunnel[0].lifetimes.child: 4000 s is above AWS's limit of 3600 s"
        )),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn every_node_of_the_mesh_inventory_renders_to_a_valid_configuration() -> anyhow::Result<()> {
    let inventory = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/mesh/seed-004-inventory.toml");
    let dir = tempfile::tempdir()?;
    for node in ["us-east-1", "us-east-2", "us-west-2"] {
        let out = Command::new(agent_bin()?)
            .args(["mesh", "render"])
            .arg(&inventory)
            .args(["--node", node])
            .output()?;
        assert!(
            out.status.success(),
            "{node}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout)?;
        // A tunnel to each of the two other nodes.
        assert_eq!(text.matches("[[tunnel]]").count(), 2, "{node}:\n{text}");
        let file = dir.path().join(format!("{node}.toml"));
        std::fs::write(&file, &text)?;
        let check = Command::new(agent_bin()?)
            .arg("validate")
            .arg(&file)
            .output()?;
        assert!(
            check.status.success(),
            "{node}: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let missing = Command::new(agent_bin()?)
        .args(["mesh", "render"])
        .arg(&inventory)
        .args(["--node", "eu-west-1"])
        .output()?;
    assert!(!missing.status.success());
    Ok(())
}

/// `validate --secrets` loads the key files of key tunnels: a private key that is not one,
/// and a missing peer key, are reported by tunnel without showing the file's content.
#[test]
fn validate_secrets_checks_key_files() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir()?;
    let keys = vpn_lab::strongswan::KeyFiles::generate(
        dir.path(),
        "node",
        vpn_lab::strongswan::KeyAlgorithm::EcdsaP256,
    )?;
    let not_a_key = dir.path().join("not-a-key");
    std::fs::write(&not_a_key, "SECRET-CONTENT")?;
    std::fs::set_permissions(&not_a_key, std::fs::Permissions::from_mode(0o600))?;
    let config = |key: &std::path::Path, peer: &std::path::Path| {
        format!(
            "[router]\nname = \"edge\"\nwan = \"eth0\"\nlan = [\"eth1\"]\n\n[[tunnel]]\n\
             name = \"mesh-b\"\npeer = \"198.51.100.2\"\n\
             auth = {{ ecdsa_private_key = {{ file = \"{}\" }} }}\n\
             peer_public_key = \"{}\"\n\
             selectors = {{ local = [\"10.1.0.0/16\"], remote = [\"10.2.0.0/16\"] }}\n",
            key.display(),
            peer.display()
        )
    };
    let path = dir.path().join("mesh.toml");
    let validate = |text: String| -> anyhow::Result<std::process::Output> {
        std::fs::write(&path, text)?;
        Ok(Command::new(agent_bin()?)
            .args(["validate", "--secrets"])
            .arg(&path)
            .output()?)
    };
    let ok = validate(config(&keys.private_key, &keys.public_key))?;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let bad = validate(config(&not_a_key, &keys.public_key))?;
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        stderr.contains("tunnel `mesh-b`: unusable private key"),
        "{stderr}"
    );
    assert!(!stderr.contains("SECRET-CONTENT"), "{stderr}");

    let gone = dir.path().join("gone.pub");
    let bad = validate(config(&keys.private_key, &gone))?;
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(stderr.contains("gone.pub"), "{stderr}");
    Ok(())
}
