//! Secrets: by reference only, loaded separately from validation, refused when group- or
//! world-readable or not regular files, and never printed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Mutex;

use vpn_config::*;

/// Tests in this binary that touch the process environment take this lock.
static ENV: Mutex<()> = Mutex::new(());

fn write_secret(path: &Path, content: &str, mode: u32) {
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn config_with_psk_file(path: &Path) -> String {
    format!(
        r#"[router]
name = "edge"
wan = "ens5"
lan = ["ens6"]
auth = {{ psk = {{ file = "{}" }} }}

[[tunnel]]
name = "aws-t1"
peer = "192.0.2.10"
profile = "aws"
inside = {{ local = "169.254.10.2/30", remote = "169.254.10.1" }}

[[tunnel]]
name = "aws-t2"
peer = "192.0.2.11"
profile = "aws"
inside = {{ local = "169.254.11.2/30", remote = "169.254.11.1" }}
"#,
        path.display()
    )
}

#[test]
fn owner_only_secret_file_is_loaded_once_and_shared() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("psk");
    write_secret(&path, "Good.psk_value1\n", 0o600);
    let c = Config::from_str(&config_with_psk_file(&path), "t.toml").unwrap();
    let s = c.resolve_secrets().unwrap();
    // One trailing newline is removed.
    assert_eq!(s.tunnel("aws-t1").unwrap().expose(), b"Good.psk_value1");
    assert_eq!(s.tunnel("aws-t2").unwrap().expose(), b"Good.psk_value1");
    assert!(s.tunnel("nope").is_none());
    // 0400 is fine too.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    c.resolve_secrets().unwrap();
}

#[test]
fn group_or_world_readable_secret_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("psk");
    for mode in [0o644, 0o640, 0o604, 0o660] {
        write_secret(&path, "Good.psk_value1", mode);
        let c = Config::from_str(&config_with_psk_file(&path), "t.toml").unwrap();
        let e = c.resolve_secrets().unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "t.toml:5:16: router.auth.psk: refusing secret file {}: mode {mode:04o} lets group or others read it (chmod 600 it)",
                path.display()
            )
        );
        assert!(!e.to_string().contains("Good.psk_value1"));
    }
}

#[test]
fn secret_that_is_not_a_regular_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("psk.d");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
    let c = Config::from_str(&config_with_psk_file(&sub), "t.toml").unwrap();
    assert_eq!(
        c.resolve_secrets().unwrap_err().to_string(),
        format!(
            "t.toml:5:16: router.auth.psk: refusing secret file {}: not a regular file",
            sub.display()
        )
    );
    let e = load_secret_file(&sub).unwrap_err();
    assert_eq!(e, SecretError::NotRegular { path: sub.clone() });
}

#[test]
fn missing_secrets_fail_resolution_not_validation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent");
    // Validation runs without the secret present...
    let c = Config::from_str(&config_with_psk_file(&path), "t.toml").unwrap();
    // ...and resolving reports it, at the line of the reference.
    assert_eq!(
        c.resolve_secrets().unwrap_err().to_string(),
        format!(
            "t.toml:5:16: router.auth.psk: cannot read secret file {}: No such file or directory (os error 2)",
            path.display()
        )
    );
}

#[test]
fn environment_secrets() {
    let _g = ENV.lock().unwrap();
    let text = r#"[router]
name = "edge"
wan = "ens5"
lan = ["ens6"]

[[tunnel]]
name = "aws-t1"
peer = "192.0.2.10"
profile = "aws"
auth = { psk = { env = "VPN_CONFIG_TEST_PSK_T1" } }
inside = { local = "169.254.10.2/30", remote = "169.254.10.1" }
"#;
    let c = Config::from_str(text, "t.toml").unwrap();
    // SAFETY: every test of this binary that touches the environment holds ENV.
    unsafe { std::env::remove_var("VPN_CONFIG_TEST_PSK_T1") };
    assert_eq!(
        c.resolve_secrets().unwrap_err().to_string(),
        "t.toml:10:16: tunnel[0].auth.psk: environment variable VPN_CONFIG_TEST_PSK_T1 is not set"
    );
    unsafe { std::env::set_var("VPN_CONFIG_TEST_PSK_T1", "From.env_12345") };
    let s = c.resolve_secrets().unwrap();
    assert_eq!(s.tunnel("aws-t1").unwrap().expose(), b"From.env_12345");
    unsafe { std::env::set_var("VPN_CONFIG_TEST_PSK_T1", "") };
    assert_eq!(
        c.resolve_secrets().unwrap_err().to_string(),
        "t.toml:10:16: tunnel[0].auth.psk: environment variable VPN_CONFIG_TEST_PSK_T1 is empty"
    );
    unsafe { std::env::remove_var("VPN_CONFIG_TEST_PSK_T1") };
}

#[test]
fn aws_psk_rules_are_checked_without_printing_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("psk");
    let cases = [
        ("0Starts.with.zero", "it must not start with '0'"),
        ("short", "it must be 8 to 64 characters long"),
        (
            "this-has-hyphens",
            "it may only contain letters, digits, '.' and '_'",
        ),
    ];
    for (psk, rule) in cases {
        write_secret(&path, psk, 0o600);
        let c = Config::from_str(&config_with_psk_file(&path), "t.toml").unwrap();
        let e = c.resolve_secrets().unwrap_err();
        let first = format!(
            "t.toml:5:16: router.auth.psk: the pre-shared key in file {} (used by AWS tunnel `aws-t1`) breaks AWS's rules: {rule}",
            path.display()
        );
        assert_eq!(e.errors.len(), 2, "{e}");
        assert_eq!(e.errors[0].to_string(), first);
        assert!(!e.to_string().contains(psk), "{e}");
        assert!(!format!("{e:?}").contains(psk));
    }
    let long = "a".repeat(65);
    write_secret(&path, &long, 0o600);
    let c = Config::from_str(&config_with_psk_file(&path), "t.toml").unwrap();
    assert!(c.resolve_secrets().is_err());
    write_secret(&path, &"a".repeat(64), 0o600);
    c.resolve_secrets().unwrap();
}

#[test]
fn secrets_never_appear_in_debug_display_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("psk");
    let value = "Very.secret_value_42";
    write_secret(&path, value, 0o600);
    let c = Config::from_str(&config_with_psk_file(&path), "t.toml").unwrap();
    let s = c.resolve_secrets().unwrap();
    let secret = s.tunnel("aws-t1").unwrap();
    assert_eq!(format!("{secret:?}"), "<redacted>");
    assert_eq!(format!("{secret}"), "<redacted>");
    for text in [
        format!("{s:?}"),
        format!("{s:#?}"),
        format!("{c:?}"),
        format!("{c:#?}"),
    ] {
        assert!(!text.contains(value), "{text}");
    }
    assert_eq!(
        format!("{s:?}"),
        r#"{"aws-t1": "<redacted>", "aws-t2": "<redacted>"}"#
    );
    // The same value written inline is refused and not echoed, wherever it is put.
    for field in ["psk", "rsa_private_key"] {
        let text = format!(
            "[router]\nname = \"edge\"\nwan = \"ens5\"\nlan = [\"ens6\"]\nauth = {{ {field} = \"{value}\" }}\n"
        );
        let e = Config::from_str(&text, "t.toml").unwrap_err();
        assert!(!e.to_string().contains(value), "{e}");
        assert!(!format!("{e:?}").contains(value), "{e:?}");
    }
    // Changed permissions: the error names the file and the reason, not the contents.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let e = c.resolve_secrets().unwrap_err();
    assert!(!e.to_string().contains(value));
    assert!(!format!("{e:?}").contains(value));
}
