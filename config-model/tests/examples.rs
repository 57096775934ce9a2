//! Every example in config/ validates with zero errors, and its secrets resolve when they are
//! provided: files (moved from /etc/vpn/ to a temp dir, created with mode 0600) and environment
//! variables.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use vpn_config::*;

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_example_validates_and_resolves() {
    let files = examples();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "aws-two-tunnels.toml",
        "onprem-strongswan-side.toml",
        "vpc-peering-transit-masquerade.toml",
        "aws-gcp-ha-four-tunnels.toml",
        "mesh-node-us-east-1.toml",
    ] {
        assert!(names.iter().any(|n| n == expected), "missing {expected}");
    }
    let tmp = tempfile::tempdir().unwrap();
    for path in &files {
        // Zero errors as written.
        let c = Config::load(path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!c.tunnels.is_empty(), "{}", path.display());

        // Secrets: the same file with /etc/vpn/ moved into the temp dir.
        let text = fs::read_to_string(path)
            .unwrap()
            .replace("/etc/vpn/", &format!("{}/", tmp.path().display()));
        let c = Config::from_str(&text, &path.display().to_string()).unwrap();
        let mut refs: Vec<&SecretRef> = c.tunnels.iter().map(|t| &t.auth.secret).collect();
        refs.extend(c.router.auth.iter().map(|a| &a.secret));
        for r in refs {
            match &r.source {
                SecretSource::File(p) => {
                    fs::create_dir_all(p.parent().unwrap()).unwrap();
                    fs::write(p, "Example.psk_0123456789\n").unwrap();
                    fs::set_permissions(p, fs::Permissions::from_mode(0o600)).unwrap();
                }
                SecretSource::Env(var) => {
                    // SAFETY: this is the only test of this binary that touches or reads
                    // the environment.
                    unsafe { std::env::set_var(var, "Example.env_0123456789") };
                }
            }
        }
        let s = c.resolve_secrets().unwrap_or_else(|e| panic!("{e}"));
        for t in &c.tunnels {
            assert!(
                s.tunnel(&t.name).is_some(),
                "{}: {}",
                path.display(),
                t.name
            );
        }
    }
}

#[test]
fn readme_schema_block_validates() {
    let readme = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/README.md");
    let text = fs::read_to_string(&readme).unwrap();
    let start = text.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + text[start..].find("```").unwrap();
    let c =
        Config::from_str(&text[start..end], "config/README.md").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.tunnels[0].esp_proposals.len(), 2);
    assert_eq!(c.nat.len(), 1);
}
