//! strongSwan's ipsec.secrets, as ipsec.secrets(5) describes it
//! (<https://man.archlinux.org/man/ipsec.secrets.5>): one entry per line,
//! `[ID selectors] : TYPE value`, e.g. `203.0.113.1 198.51.100.2 : PSK "key"` or
//! `: RSA us-east-1.key`. A PSK is a quoted string, `0x` hex or `0s` base64 (or a bare
//! token); a private key is a file name, relative to the `ipsec.d/private` directory next to
//! ipsec.secrets. The best entry for a pair of identities is the one whose selectors match
//! both, then one, then an entry without selectors (which matches any).
//!
//! Nothing here ever puts a secret in a warning: problems name the line and the rule only.

use std::path::Path;

use zeroize::Zeroizing;

use super::Warnings;

pub(crate) enum SecretValue {
    Psk(Zeroizing<Vec<u8>>),
    /// `RSA`, `ECDSA`, `PKCS8`, ... and the key file as written.
    PrivateKey {
        kind: String,
        file: String,
    },
}

pub(crate) struct Entry {
    pub line: usize,
    /// Selectors as written (`%any` included); empty: matches any.
    pub ids: Vec<String>,
    pub value: SecretValue,
}

pub(crate) struct SecretsFile {
    pub entries: Vec<Entry>,
}

const KNOWN_UNSUPPORTED: &[&str] = &["EAP", "XAUTH", "NTLM", "PIN", "P12", "PKCS12", "BLISS"];

pub(crate) fn parse(text: &str, w: &mut Warnings) -> SecretsFile {
    let mut entries = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if t.starts_with("include ") || t == "include" {
            w.push(
                line,
                "ipsec.secrets",
                "include",
                "include is not followed: give the file holding the secret with --secrets",
            );
            continue;
        }
        // The separator is a `:` standing alone (IPv6 selectors contain colons).
        let Some(pos) = separator(t) else {
            w.push(
                line,
                "ipsec.secrets",
                "",
                "no ` : ` between the selectors and the secret: line skipped",
            );
            continue;
        };
        let (sel, rest) = (&t[..pos], &t[pos + 1..]);
        let ids: Vec<String> = sel
            .split_whitespace()
            .map(|s| s.trim_matches('"').to_string())
            .collect();
        let rest = rest.trim_start();
        let (kind, value) = match rest.split_once(|c: char| c.is_whitespace()) {
            Some((k, v)) => (k.to_ascii_uppercase(), v.trim()),
            None => (rest.to_ascii_uppercase(), ""),
        };
        let value = match kind.as_str() {
            "PSK" => match psk_bytes(value) {
                Ok(b) => SecretValue::Psk(b),
                Err(why) => {
                    w.push(
                        line,
                        "ipsec.secrets",
                        "PSK",
                        format!("{why}: entry skipped"),
                    );
                    continue;
                }
            },
            "RSA" | "ECDSA" | "PKCS8" => {
                let (file, more) = match value.strip_prefix('"') {
                    Some(q) => match q.split_once('"') {
                        Some((f, m)) => (f.to_string(), m.trim()),
                        None => (q.to_string(), ""),
                    },
                    None => match value.split_once(char::is_whitespace) {
                        Some((f, m)) => (f.to_string(), m.trim()),
                        None => (value.to_string(), ""),
                    },
                };
                if file.is_empty() {
                    w.push(
                        line,
                        "ipsec.secrets",
                        &kind,
                        "no key file named: entry skipped",
                    );
                    continue;
                }
                if !more.is_empty() {
                    w.push(line, "ipsec.secrets", &kind, "the key has a passphrase: encrypted private keys are not supported (decrypt it with openssl pkey, keep it mode 0600)");
                }
                SecretValue::PrivateKey {
                    kind: kind.clone(),
                    file,
                }
            }
            other if KNOWN_UNSUPPORTED.contains(&other) => {
                w.push(
                    line,
                    "ipsec.secrets",
                    other,
                    "this secret type is not used by this appliance: entry skipped",
                );
                continue;
            }
            _ => {
                w.push(
                    line,
                    "ipsec.secrets",
                    "",
                    "unknown secret type (expected PSK, RSA, ECDSA): entry skipped",
                );
                continue;
            }
        };
        entries.push(Entry { line, ids, value });
    }
    SecretsFile { entries }
}

/// The byte offset of the `:` that stands alone (start of line or white space before it,
/// end of line or white space after it): IPv6 selectors contain colons too.
fn separator(t: &str) -> Option<usize> {
    let b = t.as_bytes();
    (0..b.len()).find(|&i| {
        b[i] == b':'
            && (i == 0 || b[i - 1].is_ascii_whitespace())
            && (i + 1 == b.len() || b[i + 1].is_ascii_whitespace())
    })
}

/// The PSK bytes of a value: `"quoted"`, `'quoted'`, `0x` hex, `0s` base64 or a bare token.
/// Errors describe the rule, never the value.
fn psk_bytes(v: &str) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    let v = v.trim();
    if v.is_empty() {
        return Err("empty pre-shared key");
    }
    for q in ['"', '\''] {
        if let Some(rest) = v.strip_prefix(q) {
            let Some(end) = rest.find(q) else {
                return Err("unterminated quoted pre-shared key");
            };
            if !rest[end + 1..].trim().is_empty() {
                return Err("text after the quoted pre-shared key");
            }
            if end == 0 {
                return Err("empty pre-shared key");
            }
            return Ok(Zeroizing::new(rest.as_bytes()[..end].to_vec()));
        }
    }
    if v.split_whitespace().count() > 1 {
        return Err("an unquoted pre-shared key cannot contain white space");
    }
    if let Some(hex) = v.strip_prefix("0x") {
        return decode_hex(hex).ok_or("invalid 0x hex pre-shared key");
    }
    if let Some(b64) = v.strip_prefix("0s") {
        return decode_base64(b64).ok_or("invalid 0s base64 pre-shared key");
    }
    Ok(Zeroizing::new(v.as_bytes().to_vec()))
}

fn decode_hex(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    let s: Vec<u8> = s.bytes().filter(|b| *b != b'_').collect();
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    let nib = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() / 2));
    for pair in s.chunks(2) {
        out.push(nib(pair[0])? << 4 | nib(pair[1])?);
    }
    Some(out)
}

fn decode_base64(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    if s.is_empty() || s.len() % 4 == 1 {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() * 3 / 4));
    for chunk in s.chunks(4) {
        let mut acc: u32 = 0;
        for (i, c) in chunk.iter().enumerate() {
            acc |= val(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

fn score(e: &Entry, local: &[String], remote: &[String]) -> Option<u8> {
    if e.ids.is_empty() {
        return Some(1);
    }
    let matches = |wanted: &[String]| e.ids.iter().any(|id| wanted.iter().any(|w| same_id(id, w)));
    let any = e.ids.iter().any(|id| id == "%any");
    let (l, r) = (matches(local), matches(remote));
    match (l, r) {
        (true, true) => Some(5),
        (true, false) | (false, true) => Some(if any { 4 } else { 3 }),
        (false, false) if any => Some(2),
        _ => None,
    }
}

fn same_id(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.trim_start_matches('@').to_ascii_lowercase();
    norm(a) == norm(b)
}

impl SecretsFile {
    /// The best PSK for our identities `local` and the peer's `remote`, and its line.
    pub fn psk(&self, local: &[String], remote: &[String]) -> Option<(&Zeroizing<Vec<u8>>, usize)> {
        self.best(local, remote, |v| matches!(v, SecretValue::Psk(_)))
            .and_then(|e| match &e.value {
                SecretValue::Psk(b) => Some((b, e.line)),
                _ => None,
            })
    }

    /// The best private key for our identities: (type, file as written, line).
    pub fn private_key(&self, local: &[String]) -> Option<(&str, &str, usize)> {
        self.best(local, &[], |v| matches!(v, SecretValue::PrivateKey { .. }))
            .and_then(|e| match &e.value {
                SecretValue::PrivateKey { kind, file } => {
                    Some((kind.as_str(), file.as_str(), e.line))
                }
                _ => None,
            })
    }

    fn best(
        &self,
        local: &[String],
        remote: &[String],
        want: impl Fn(&SecretValue) -> bool,
    ) -> Option<&Entry> {
        let mut best: Option<(u8, &Entry)> = None;
        for e in self.entries.iter().filter(|e| want(&e.value)) {
            if let Some(s) = score(e, local, remote)
                && best.is_none_or(|(b, _)| s > b)
            {
                best = Some((s, e));
            }
        }
        best.map(|(_, e)| e)
    }
}

/// A key file name from ipsec.secrets as an absolute path: relative names are relative to
/// `ipsec.d/private` next to ipsec.secrets (`/etc/ipsec.secrets` -> `/etc/ipsec.d/private/`,
/// `/etc/strongswan/ipsec.secrets` -> `/etc/strongswan/ipsec.d/private/`).
pub(crate) fn key_path(secrets_dir: &Path, file: &str, subdir: &str) -> String {
    if file.starts_with('/') {
        file.to_string()
    } else {
        secrets_dir
            .join("ipsec.d")
            .join(subdir)
            .join(file)
            .display()
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (SecretsFile, Vec<String>) {
        let mut w = Warnings::new("ipsec.secrets");
        let f = parse(text, &mut w);
        (f, w.list.iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn matches_by_identities() {
        let (f, w) = parsed(
            "# c\n203.0.113.1 198.51.100.1 : PSK \"Fake.one\"\n203.0.113.1 198.51.100.2 : PSK 0x466b32\n: PSK 0sRmFrZQ==\n: RSA \"my key.pem\"\n",
        );
        assert!(w.is_empty(), "{w:?}");
        let ids = |s: &str| vec![s.to_string()];
        let (k, line) = f.psk(&ids("203.0.113.1"), &ids("198.51.100.1")).unwrap();
        assert_eq!((k.as_slice(), line), (&b"Fake.one"[..], 2));
        let (k, _) = f.psk(&ids("203.0.113.1"), &ids("198.51.100.2")).unwrap();
        assert_eq!(k.as_slice(), b"Fk2");
        let (k, _) = f.psk(&ids("192.0.2.9"), &ids("192.0.2.8")).unwrap();
        assert_eq!(k.as_slice(), b"Fake", "the wildcard entry");
        assert_eq!(
            f.private_key(&ids("x")).map(|(k, f, _)| (k, f)),
            Some(("RSA", "my key.pem"))
        );
    }

    #[test]
    fn bad_entries_are_reported_without_their_secret() {
        let (f, w) = parsed(
            "a b : PSK \"TopSecretValue\nc d : PSK 0xZZTopSecret\ne f PSK NoColonSecret\ng : XAUTH \"x\"\n: PSK two words\n",
        );
        assert!(f.entries.is_empty());
        assert_eq!(w.len(), 5, "{w:?}");
        for m in &w {
            assert!(
                !m.contains("TopSecret") && !m.contains("NoColonSecret") && !m.contains("words"),
                "{m}"
            );
        }
    }

    #[test]
    fn base64_and_hex() {
        assert_eq!(decode_base64("Zm9vYmFy").unwrap().as_slice(), b"foobar");
        assert_eq!(decode_base64("Zm9vYg==").unwrap().as_slice(), b"foob");
        assert!(decode_base64("Z").is_none());
        assert!(decode_base64("Zm9v!").is_none());
        assert_eq!(decode_hex("6869").unwrap().as_slice(), b"hi");
        assert!(decode_hex("686").is_none());
        assert!(decode_hex("é1").is_none());
    }
}
