//! Replays the fuzz seed corpus (fuzz/corpus/decode/) through the checks of the fuzz target,
//! so every crasher added there stays a regression test. `cargo test -p vpn-ike --test corpus
//! -- --ignored` rewrites the generated seeds from the fixtures.

mod common;

use std::fs;
use std::path::PathBuf;

use common::*;
use vpn_ike::codec::*;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode")
}

/// The checks of fuzz_targets/decode.rs. Returns whether the input decoded as a message.
fn check(data: &[u8]) -> bool {
    let _ = Header::peek(data);
    let decoded = Message::decode(data);
    if let Ok(msg) = &decoded {
        let bytes = msg.encode().expect("a decoded message encodes");
        assert_eq!(
            bytes.len(),
            data.len(),
            "canonical encoding keeps the length"
        );
        let again = Message::decode(&bytes).expect("an encoded message decodes");
        assert_eq!(&again, msg);
        assert_eq!(again.encode().expect("encodes again"), bytes);
    }
    if let Some((&first, rest)) = data.split_first()
        && let Ok(payloads) = decode_payload_chain(PayloadType::from(first), rest)
    {
        let bytes = encode_payload_chain(&payloads).expect("a decoded chain encodes");
        let first = payloads
            .first()
            .map_or(PayloadType::NoNextPayload, Payload::payload_type);
        let again = decode_payload_chain(first, &bytes).expect("an encoded chain decodes");
        assert_eq!(again, payloads);
    }
    decoded.is_ok()
}

#[test]
fn replay_corpus() {
    let mut files: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("corpus directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= 12, "only {} corpus files", files.len());
    let mut valid = 0;
    for f in &files {
        let data = fs::read(f).unwrap();
        let ok = std::panic::catch_unwind(|| check(&data))
            .unwrap_or_else(|_| panic!("corpus file {} failed", f.display()));
        valid += usize::from(ok);
    }
    // The seeds are a mix of valid and invalid messages.
    assert!(
        valid >= 5 && valid < files.len(),
        "{valid} of {} valid",
        files.len()
    );
}

fn put(name: &str, bytes: &[u8]) {
    fs::write(corpus_dir().join(name), bytes).unwrap();
}

#[test]
#[ignore = "writes the seed corpus"]
fn write_seed_corpus() {
    fs::create_dir_all(corpus_dir()).unwrap();
    for (name, bytes) in valid_messages() {
        put(&format!("valid-{name}"), &bytes);
    }
    for (name, first, chain) in valid_chains() {
        let mut b = vec![first.value()];
        b.extend_from_slice(&chain);
        put(&format!("chain-{name}"), &b);
    }
    let all: Vec<Payload> = every_payload().into_iter().map(|(_, p)| p).collect();
    let mut with_sk = all.clone();
    with_sk.push(sk());
    put(
        "valid-every-payload-then-sk",
        &message(ExchangeType::IkeAuth, with_sk).encode().unwrap(),
    );
    put(
        "valid-header-only",
        &message(ExchangeType::Informational, vec![])
            .encode()
            .unwrap(),
    );

    let sa_init = hex(WIRESHARK_SA_INIT);
    put("invalid-truncated-sa-init", &sa_init[..150]);
    let mut b = sa_init.clone();
    b[27] += 1;
    put("invalid-header-length-plus-one", &b);
    let mut b = sa_init.clone();
    b[17] = 0x10;
    put("invalid-major-version-1", &b);
    let mut b = sa_init.clone();
    b[287] = 17; // last Notify one byte too long
    put("invalid-payload-overrun", &b);
    let mut b = sa_init.clone();
    b[39] = 4; // four transforms declared, three present
    put("invalid-transform-count", &b);
    let cookie = hex(HAND_SA_INIT_COOKIE);
    let mut b = cookie[..Header::LEN].to_vec();
    b[16] = 200;
    b.extend_from_slice(&[41, 0x80, 0, 5, 0xaa]);
    b.extend_from_slice(&cookie[Header::LEN..]);
    let len = b.len() as u32;
    b[24..28].copy_from_slice(&len.to_be_bytes());
    put("invalid-critical-unknown-payload", &b);
    b[29] = 0;
    put("valid-noncritical-unknown-payload", &b);
    put("invalid-empty", &[]);
}
