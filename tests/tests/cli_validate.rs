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
