//! `vpn-agent import strongswan|aws`: the seeds' ipsec.conf/ipsec.secrets and a generic AWS
//! text convert to files that `vpn-agent validate` (and `validate --secrets`, which loads the
//! 0600 PSK files) accepts; the PSKs appear in no output but their own files; what cannot be
//! carried over is reported on stderr by conn and key; unusable input fails.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vpn_tests::agent_bin;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config-model/tests/fixtures")
}

fn agent(args: &[&std::ffi::OsStr]) -> anyhow::Result<Output> {
    Ok(Command::new(agent_bin()?).args(args).output()?)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn validate(file: &Path, secrets: bool) -> anyhow::Result<()> {
    let mut args = vec!["validate".as_ref()];
    if secrets {
        args.push("--secrets".as_ref());
    }
    args.push(file.as_os_str());
    let out = agent(&args)?;
    assert!(
        out.status.success(),
        "validate {}: {}\n{}",
        file.display(),
        text(&out.stderr),
        std::fs::read_to_string(file)?
    );
    Ok(())
}

/// Asserts that no PSK of the fixtures appears in `haystack`.
fn no_psk(haystack: &str) {
    for psk in [
        "FAKE.tunnel1.psk.not_real",
        "FAKE.tunnel2.psk.not_real",
        "FAKE_t1.key.not.a.real.one",
        "FAKE_t2.key.not.a.real.one",
    ] {
        assert!(!haystack.contains(psk), "{psk} leaked:\n{haystack}");
    }
}

fn psk_file(dir: &Path, tunnel: &str, expected: &str) -> anyhow::Result<()> {
    let path = dir.join(format!("psk-{tunnel}"));
    let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
    assert_eq!(std::fs::read_to_string(&path)?, format!("{expected}\n"));
    Ok(())
}

#[test]
fn seed_001_ipsec_conf_imports_and_validates() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let out_file = dir.path().join("seed-001.toml");
    let fx = fixtures();
    let out = agent(&[
        "import".as_ref(),
        "strongswan".as_ref(),
        fx.join("seed-001-aws.conf").as_os_str(),
        "--secrets".as_ref(),
        fx.join("seed-001-aws.secrets").as_os_str(),
        "--out".as_ref(),
        out_file.as_os_str(),
        "--name".as_ref(),
        "onprem-sim".as_ref(),
    ])?;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "--out given: nothing on stdout");
    // Reported by file, line, conn and key.
    assert!(
        stderr.contains(
            "seed-001-aws.conf:19: conn Tunnel1: leftsubnet: `192.168.1.0/16` has host bits set"
        ),
        "{stderr}"
    );
    no_psk(&stderr);
    let toml = std::fs::read_to_string(&out_file)?;
    no_psk(&toml);
    assert!(toml.contains("peer = \"198.51.100.31\""), "{toml}");
    assert!(
        toml.contains("selectors = { local = [\"192.168.0.0/16\"], remote = [\"10.0.0.0/16\"] }"),
        "{toml}"
    );
    assert!(
        toml.contains("dpd = { delay = 10, timeout = 30, action = \"restart\" }"),
        "{toml}"
    );
    psk_file(dir.path(), "Tunnel1", "FAKE.tunnel1.psk.not_real")?;
    psk_file(dir.path(), "Tunnel2", "FAKE.tunnel2.psk.not_real")?;
    validate(&out_file, false)?;
    validate(&out_file, true)?;

    // A second run does not replace the files without --force.
    let again = agent(&[
        "import".as_ref(),
        "strongswan".as_ref(),
        fx.join("seed-001-aws.conf").as_os_str(),
        "--secrets".as_ref(),
        fx.join("seed-001-aws.secrets").as_os_str(),
        "--out".as_ref(),
        out_file.as_os_str(),
    ])?;
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
    Ok(())
}

#[test]
fn seed_004_ipsec_conf_imports_to_stdout_and_validates() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let fx = fixtures();
    let out = agent(&[
        "import".as_ref(),
        "strongswan".as_ref(),
        fx.join("seed-004-us-east-1.conf").as_os_str(),
        "--secrets".as_ref(),
        fx.join("seed-004-us-east-1.secrets").as_os_str(),
        "--name".as_ref(),
        "us-east-1".as_ref(),
    ])?;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let toml = text(&out.stdout);
    assert!(toml.contains("force_encap = true"), "{toml}");
    assert!(toml.contains("fragmentation = true"), "{toml}");
    assert!(toml.contains("rsa_private_key"), "{toml}");
    assert!(
        stderr.contains("conn us-east-2: esp: `aes192` in `aes192gcm16-aes128gcm16-aes192-ecp256` has no integrity algorithm"),
        "{stderr}"
    );
    let file = dir.path().join("us-east-1.toml");
    std::fs::write(&file, &toml)?;
    validate(&file, false)?;
    Ok(())
}

#[test]
fn aws_generic_text_imports_and_validates_with_its_secrets() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let out_file = dir.path().join("aws.toml");
    let secrets_dir = dir.path().join("secrets");
    let out = agent(&[
        "import".as_ref(),
        "aws".as_ref(),
        fixtures().join("aws-generic-vpn.txt").as_os_str(),
        "--remote-prefix".as_ref(),
        "10.0.0.0/16".as_ref(),
        "--out".as_ref(),
        out_file.as_os_str(),
        "--secrets-dir".as_ref(),
        secrets_dir.as_os_str(),
    ])?;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    no_psk(&stderr);
    let toml = std::fs::read_to_string(&out_file)?;
    no_psk(&toml);
    assert_eq!(toml.matches("profile = \"aws\"").count(), 2, "{toml}");
    assert!(
        toml.contains("inside = { local = \"169.254.44.2/30\", remote = \"169.254.44.1\" }"),
        "{toml}"
    );
    assert!(toml.contains("priority = 200"), "{toml}");
    psk_file(&secrets_dir, "aws-t1", "FAKE_t1.key.not.a.real.one")?;
    psk_file(&secrets_dir, "aws-t2", "FAKE_t2.key.not.a.real.one")?;
    // --secrets loads the PSK files and checks AWS's PSK rules on them.
    validate(&out_file, true)?;
    Ok(())
}

#[test]
fn unusable_input_fails_and_psks_without_a_destination_are_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let junk = dir.path().join("junk.conf");
    std::fs::write(&junk, "conn x\n  right=%any\n\u{0}garbage ===\n")?;
    let out = agent(&["import".as_ref(), "strongswan".as_ref(), junk.as_os_str()])?;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("junk.conf: nothing usable"), "{stderr}");
    assert!(stderr.contains("junk.conf:2: conn x: right:"), "{stderr}");

    let fx = fixtures();
    let out = agent(&[
        "import".as_ref(),
        "aws".as_ref(),
        fx.join("aws-generic-vpn.txt").as_os_str(),
    ])?;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--secrets-dir"),
        "{}",
        text(&out.stderr)
    );
    no_psk(&text(&out.stdout));
    no_psk(&text(&out.stderr));
    Ok(())
}
