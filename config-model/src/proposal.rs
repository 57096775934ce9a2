//! IKE and ESP proposals in strongSwan's syntax (`aes256gcm16-prfsha256-modp2048`), parsed into
//! typed algorithm lists.
//!
//! As in strongSwan, one proposal string may list several algorithms of each kind, and may mix
//! AEAD and classic ciphers (`aes192gcm16-aes128gcm16-aes192-prfsha256-ecp256`, seed 004): the
//! IKE engine must then offer the AEAD ciphers and the classic ones as separate proposals
//! (RFC 7296 §3.3: an AEAD transform has no integrity transform).

use std::fmt;

/// Encryption transforms (IKEv2 transform type 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Encryption {
    AesCbc128,
    AesCbc192,
    AesCbc256,
    /// AES-GCM with a 16-octet ICV (RFC 4106 / RFC 5282).
    AesGcm16_128,
    AesGcm16_192,
    AesGcm16_256,
    ChaCha20Poly1305,
}

impl Encryption {
    pub fn is_aead(self) -> bool {
        matches!(
            self,
            Encryption::AesGcm16_128
                | Encryption::AesGcm16_192
                | Encryption::AesGcm16_256
                | Encryption::ChaCha20Poly1305
        )
    }
    pub fn key_bits(self) -> u16 {
        match self {
            Encryption::AesCbc128 | Encryption::AesGcm16_128 => 128,
            Encryption::AesCbc192 | Encryption::AesGcm16_192 => 192,
            Encryption::AesCbc256 | Encryption::AesGcm16_256 | Encryption::ChaCha20Poly1305 => 256,
        }
    }
    /// strongSwan's keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Encryption::AesCbc128 => "aes128",
            Encryption::AesCbc192 => "aes192",
            Encryption::AesCbc256 => "aes256",
            Encryption::AesGcm16_128 => "aes128gcm16",
            Encryption::AesGcm16_192 => "aes192gcm16",
            Encryption::AesGcm16_256 => "aes256gcm16",
            Encryption::ChaCha20Poly1305 => "chacha20poly1305",
        }
    }
}

/// Integrity transforms (type 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Integrity {
    HmacSha1_96,
    HmacSha256_128,
    HmacSha384_192,
    HmacSha512_256,
}

impl Integrity {
    pub fn keyword(self) -> &'static str {
        match self {
            Integrity::HmacSha1_96 => "sha1",
            Integrity::HmacSha256_128 => "sha256",
            Integrity::HmacSha384_192 => "sha384",
            Integrity::HmacSha512_256 => "sha512",
        }
    }
    /// The PRF strongSwan derives from this integrity algorithm when none is given.
    pub fn matching_prf(self) -> Prf {
        match self {
            Integrity::HmacSha1_96 => Prf::HmacSha1,
            Integrity::HmacSha256_128 => Prf::HmacSha256,
            Integrity::HmacSha384_192 => Prf::HmacSha384,
            Integrity::HmacSha512_256 => Prf::HmacSha512,
        }
    }
}

/// Pseudo-random functions (type 2), IKE only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prf {
    HmacSha1,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl Prf {
    pub fn keyword(self) -> &'static str {
        match self {
            Prf::HmacSha1 => "prfsha1",
            Prf::HmacSha256 => "prfsha256",
            Prf::HmacSha384 => "prfsha384",
            Prf::HmacSha512 => "prfsha512",
        }
    }
}

/// Key-exchange (Diffie-Hellman) groups (type 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DhGroup {
    Modp1024,
    Modp1536,
    Modp2048,
    Modp3072,
    Modp4096,
    Modp6144,
    Modp8192,
    Ecp256,
    Ecp384,
    Ecp521,
    Modp1024s160,
    Modp2048s224,
    Modp2048s256,
    Curve25519,
    Curve448,
}

impl DhGroup {
    /// IANA group number.
    pub fn number(self) -> u16 {
        match self {
            DhGroup::Modp1024 => 2,
            DhGroup::Modp1536 => 5,
            DhGroup::Modp2048 => 14,
            DhGroup::Modp3072 => 15,
            DhGroup::Modp4096 => 16,
            DhGroup::Modp6144 => 17,
            DhGroup::Modp8192 => 18,
            DhGroup::Ecp256 => 19,
            DhGroup::Ecp384 => 20,
            DhGroup::Ecp521 => 21,
            DhGroup::Modp1024s160 => 22,
            DhGroup::Modp2048s224 => 23,
            DhGroup::Modp2048s256 => 24,
            DhGroup::Curve25519 => 31,
            DhGroup::Curve448 => 32,
        }
    }
    pub fn keyword(self) -> &'static str {
        match self {
            DhGroup::Modp1024 => "modp1024",
            DhGroup::Modp1536 => "modp1536",
            DhGroup::Modp2048 => "modp2048",
            DhGroup::Modp3072 => "modp3072",
            DhGroup::Modp4096 => "modp4096",
            DhGroup::Modp6144 => "modp6144",
            DhGroup::Modp8192 => "modp8192",
            DhGroup::Ecp256 => "ecp256",
            DhGroup::Ecp384 => "ecp384",
            DhGroup::Ecp521 => "ecp521",
            DhGroup::Modp1024s160 => "modp1024s160",
            DhGroup::Modp2048s224 => "modp2048s224",
            DhGroup::Modp2048s256 => "modp2048s256",
            DhGroup::Curve25519 => "curve25519",
            DhGroup::Curve448 => "curve448",
        }
    }
}

/// Extended sequence numbers (type 5), ESP only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Esn {
    No,
    Yes,
}

/// Which SA a proposal is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalKind {
    Ike,
    Esp,
}

/// One proposal: the algorithms of each kind, in preference order. For IKE, `prf` is never
/// empty after parsing (derived from `integrity` when not given, as strongSwan does). For ESP,
/// an empty `dh` means no PFS and an empty `esn` means no ESN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub encryption: Vec<Encryption>,
    pub integrity: Vec<Integrity>,
    pub prf: Vec<Prf>,
    pub dh: Vec<DhGroup>,
    pub esn: Vec<Esn>,
}

fn token(t: &str) -> Option<Token> {
    use Encryption as E;
    Some(match t {
        "aes128" | "aes128cbc" => Token::Enc(E::AesCbc128),
        "aes192" | "aes192cbc" => Token::Enc(E::AesCbc192),
        "aes256" | "aes256cbc" => Token::Enc(E::AesCbc256),
        "aes128gcm16" | "aes128gcm128" | "aes128gcm" => Token::Enc(E::AesGcm16_128),
        "aes192gcm16" | "aes192gcm128" | "aes192gcm" => Token::Enc(E::AesGcm16_192),
        "aes256gcm16" | "aes256gcm128" | "aes256gcm" => Token::Enc(E::AesGcm16_256),
        "chacha20poly1305" => Token::Enc(E::ChaCha20Poly1305),
        "sha1" | "sha" => Token::Integ(Integrity::HmacSha1_96),
        "sha256" | "sha2_256" => Token::Integ(Integrity::HmacSha256_128),
        "sha384" | "sha2_384" => Token::Integ(Integrity::HmacSha384_192),
        "sha512" | "sha2_512" => Token::Integ(Integrity::HmacSha512_256),
        "prfsha1" => Token::Prf(Prf::HmacSha1),
        "prfsha256" => Token::Prf(Prf::HmacSha256),
        "prfsha384" => Token::Prf(Prf::HmacSha384),
        "prfsha512" => Token::Prf(Prf::HmacSha512),
        "modp1024" => Token::Dh(DhGroup::Modp1024),
        "modp1536" => Token::Dh(DhGroup::Modp1536),
        "modp2048" => Token::Dh(DhGroup::Modp2048),
        "modp3072" => Token::Dh(DhGroup::Modp3072),
        "modp4096" => Token::Dh(DhGroup::Modp4096),
        "modp6144" => Token::Dh(DhGroup::Modp6144),
        "modp8192" => Token::Dh(DhGroup::Modp8192),
        "ecp256" => Token::Dh(DhGroup::Ecp256),
        "ecp384" => Token::Dh(DhGroup::Ecp384),
        "ecp521" => Token::Dh(DhGroup::Ecp521),
        "modp1024s160" => Token::Dh(DhGroup::Modp1024s160),
        "modp2048s224" => Token::Dh(DhGroup::Modp2048s224),
        "modp2048s256" => Token::Dh(DhGroup::Modp2048s256),
        "curve25519" | "x25519" => Token::Dh(DhGroup::Curve25519),
        "curve448" | "x448" => Token::Dh(DhGroup::Curve448),
        "esn" => Token::Esn(Esn::Yes),
        "noesn" => Token::Esn(Esn::No),
        _ => return None,
    })
}

/// What one strongSwan proposal keyword is (for the importers); `None` if this crate does not
/// know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeywordClass {
    AeadCipher,
    Cipher,
    Integrity,
    Prf,
    Dh,
    Esn,
}

pub(crate) fn keyword_class(t: &str) -> Option<KeywordClass> {
    Some(match token(&t.trim().to_ascii_lowercase())? {
        Token::Enc(e) if e.is_aead() => KeywordClass::AeadCipher,
        Token::Enc(_) => KeywordClass::Cipher,
        Token::Integ(_) => KeywordClass::Integrity,
        Token::Prf(_) => KeywordClass::Prf,
        Token::Dh(_) => KeywordClass::Dh,
        Token::Esn(_) => KeywordClass::Esn,
    })
}

enum Token {
    Enc(Encryption),
    Integ(Integrity),
    Prf(Prf),
    Dh(DhGroup),
    Esn(Esn),
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

impl Proposal {
    /// Parses a strongSwan proposal string. The error is a sentence for the user.
    pub fn parse(kind: ProposalKind, s: &str) -> Result<Proposal, String> {
        let mut p = Proposal {
            encryption: Vec::new(),
            integrity: Vec::new(),
            prf: Vec::new(),
            dh: Vec::new(),
            esn: Vec::new(),
        };
        if s.trim().is_empty() {
            return Err("empty proposal".into());
        }
        for raw in s.split('-') {
            let t = raw.trim().to_ascii_lowercase();
            match token(&t) {
                None => return Err(format!("unknown algorithm `{raw}` in proposal `{s}`")),
                Some(Token::Enc(e)) => push_unique(&mut p.encryption, e),
                Some(Token::Integ(i)) => push_unique(&mut p.integrity, i),
                Some(Token::Prf(f)) => {
                    if kind == ProposalKind::Esp {
                        return Err(format!(
                            "`{raw}` is a PRF, which ESP proposals do not take (proposal `{s}`)"
                        ));
                    }
                    push_unique(&mut p.prf, f)
                }
                Some(Token::Dh(g)) => push_unique(&mut p.dh, g),
                Some(Token::Esn(e)) => {
                    if kind == ProposalKind::Ike {
                        return Err(format!(
                            "`{raw}` is only valid in ESP proposals (proposal `{s}`)"
                        ));
                    }
                    push_unique(&mut p.esn, e)
                }
            }
        }
        if p.encryption.is_empty() {
            return Err(format!("proposal `{s}` has no encryption algorithm"));
        }
        if p.encryption.iter().any(|e| !e.is_aead()) && p.integrity.is_empty() {
            return Err(format!(
                "proposal `{s}` has a non-AEAD cipher but no integrity algorithm (add e.g. sha256)"
            ));
        }
        if kind == ProposalKind::Ike {
            if p.dh.is_empty() {
                return Err(format!(
                    "IKE proposal `{s}` has no Diffie-Hellman group (add e.g. modp2048)"
                ));
            }
            if p.prf.is_empty() {
                if p.integrity.is_empty() {
                    return Err(format!(
                        "IKE proposal `{s}` has an AEAD cipher but no PRF (add e.g. prfsha256)"
                    ));
                }
                p.prf = p.integrity.iter().map(|i| i.matching_prf()).collect();
            }
        }
        Ok(p)
    }
}

impl fmt::Display for Proposal {
    /// strongSwan syntax, with every algorithm explicit (derived PRFs included).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = self
            .encryption
            .iter()
            .map(|e| e.keyword())
            .chain(self.integrity.iter().map(|i| i.keyword()))
            .chain(self.prf.iter().map(|p| p.keyword()))
            .chain(self.dh.iter().map(|d| d.keyword()))
            .chain(self.esn.iter().map(|e| match e {
                Esn::Yes => "esn",
                Esn::No => "noesn",
            }));
        let mut first = true;
        for p in parts {
            if !first {
                f.write_str("-")?;
            }
            first = false;
            f.write_str(p)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_aead_ike() {
        let p = Proposal::parse(ProposalKind::Ike, "aes256gcm16-prfsha256-modp2048").unwrap();
        assert_eq!(p.encryption, vec![Encryption::AesGcm16_256]);
        assert_eq!(p.prf, vec![Prf::HmacSha256]);
        assert_eq!(p.dh, vec![DhGroup::Modp2048]);
        assert!(p.integrity.is_empty());
        assert_eq!(p.to_string(), "aes256gcm16-prfsha256-modp2048");
    }

    #[test]
    fn derives_prf_from_integrity() {
        let p = Proposal::parse(ProposalKind::Ike, "aes256-sha256-modp1024").unwrap();
        assert_eq!(p.prf, vec![Prf::HmacSha256]);
        assert_eq!(p.to_string(), "aes256-sha256-prfsha256-modp1024");
    }

    #[test]
    fn seed_004_mixed_proposal() {
        let p = Proposal::parse(
            ProposalKind::Ike,
            "aes192gcm16-aes128gcm16-aes192-prfsha256-ecp256-ecp521",
        );
        // aes192 (CBC) has no integrity algorithm: refused, where strongSwan would fail later.
        assert_eq!(
            p.unwrap_err(),
            "proposal `aes192gcm16-aes128gcm16-aes192-prfsha256-ecp256-ecp521` has a non-AEAD cipher but no integrity algorithm (add e.g. sha256)"
        );
        let p = Proposal::parse(
            ProposalKind::Ike,
            "aes192gcm16-aes128gcm16-aes192-sha256-prfsha256-ecp256-ecp521",
        )
        .unwrap();
        assert_eq!(p.encryption.len(), 3);
        assert_eq!(p.dh, vec![DhGroup::Ecp256, DhGroup::Ecp521]);
    }

    #[test]
    fn esp_rules() {
        let p = Proposal::parse(ProposalKind::Esp, "aes256gcm16-modp2048-esn").unwrap();
        assert_eq!(p.esn, vec![Esn::Yes]);
        assert!(
            Proposal::parse(ProposalKind::Esp, "aes256gcm16")
                .unwrap()
                .dh
                .is_empty()
        );
        assert_eq!(
            Proposal::parse(ProposalKind::Esp, "aes256gcm16-prfsha256").unwrap_err(),
            "`prfsha256` is a PRF, which ESP proposals do not take (proposal `aes256gcm16-prfsha256`)"
        );
        assert_eq!(
            Proposal::parse(ProposalKind::Ike, "aes256gcm16-prfsha256-modp2048-esn").unwrap_err(),
            "`esn` is only valid in ESP proposals (proposal `aes256gcm16-prfsha256-modp2048-esn`)"
        );
    }

    #[test]
    fn ike_needs_dh_and_prf() {
        assert_eq!(
            Proposal::parse(ProposalKind::Ike, "aes256gcm16-prfsha256").unwrap_err(),
            "IKE proposal `aes256gcm16-prfsha256` has no Diffie-Hellman group (add e.g. modp2048)"
        );
        assert_eq!(
            Proposal::parse(ProposalKind::Ike, "aes256gcm16-modp2048").unwrap_err(),
            "IKE proposal `aes256gcm16-modp2048` has an AEAD cipher but no PRF (add e.g. prfsha256)"
        );
        assert_eq!(
            Proposal::parse(ProposalKind::Ike, "aes256-sha265-modp2048").unwrap_err(),
            "unknown algorithm `sha265` in proposal `aes256-sha265-modp2048`"
        );
        assert_eq!(
            Proposal::parse(ProposalKind::Esp, "sha256").unwrap_err(),
            "proposal `sha256` has no encryption algorithm"
        );
    }
}
