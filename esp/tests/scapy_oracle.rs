//! Independent oracle: scapy's `scapy.layers.ipsec` (with `cryptography`) decrypts what we
//! encapsulate, and encrypts what we decapsulate, for every key size, ESN on/off and UDP
//! encapsulation on/off. The Python side is `tests/scapy_oracle.py` (it runs
//! `pip install scapy cryptography` if they are missing).
//!
//! If python3 or scapy cannot be had, the test fails; set `VPN_ESP_SKIP_SCAPY=1` to skip it
//! explicitly (it then prints that it skipped).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{LOCAL, REMOTE, hex, inner_ipv4_udp, params, to_hex};
use vpn_esp::outer::{decapsulate_packet, encapsulate_packet};
use vpn_esp::replay::{ReplayWindow, SeqCounter};
use vpn_esp::{InboundSa, OutboundSa, ReplayWindowSize, SeqNum};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scapy_oracle.py");

/// Run the oracle on `jobs` (one per line); returns one output line per job.
fn oracle(jobs: &[String]) -> Option<Vec<String>> {
    if std::env::var_os("VPN_ESP_SKIP_SCAPY").is_some() {
        eprintln!("scapy oracle SKIPPED (VPN_ESP_SKIP_SCAPY set)");
        return None;
    }
    let mut child = Command::new("python3")
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 must be available for the scapy oracle (or set VPN_ESP_SKIP_SCAPY=1)");
    let input = jobs.join("\n") + "\n";
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "scapy oracle failed to start (status {:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), jobs.len(), "one answer per job: {lines:?}");
    Some(lines)
}

struct Combo {
    key_len: usize,
    esn: bool,
    udp: bool,
}

fn combos() -> Vec<Combo> {
    let mut v = Vec::new();
    for key_len in [16, 24, 32] {
        for esn in [false, true] {
            for udp in [false, true] {
                v.push(Combo { key_len, esn, udp });
            }
        }
    }
    v
}

/// Sequence number to start from: far past 2^32 with ESN, so the high half matters.
fn start_seq(esn: bool) -> u64 {
    if esn { (5u64 << 32) | 0x10 } else { 0x10 }
}

fn key_salt_hex(key_len: usize) -> (String, String) {
    let p = params(key_len, false, false, 64);
    (to_hex(p.key.expose()), to_hex(p.salt.expose()))
}

#[test]
fn scapy_decrypts_what_we_encapsulate() {
    let mut jobs = Vec::new();
    let mut expected = Vec::new();
    for c in combos() {
        let mut o = OutboundSa::new(params(c.key_len, c.esn, c.udp, 1024));
        o.set_seq_counter(SeqCounter::resume_after(c.esn, start_seq(c.esn)));
        let (k, s) = key_salt_hex(c.key_len);
        for (n, len) in [28usize, 61, 512, 1400].into_iter().enumerate() {
            let inner = inner_ipv4_udp(len, 0x28, n % 2 == 0, n as u8 + 1);
            let mut pkt = vec![0u8; 1600];
            let total = encapsulate_packet(&o, &inner, &mut pkt).unwrap();
            let seq = o.last_seq();
            let job = |p: &[u8]| {
                format!(
                    "decrypt {k} {s} {} {} {} {} {}",
                    0x1234_5678u32,
                    u8::from(c.esn),
                    seq.high(),
                    u8::from(c.udp),
                    to_hex(p)
                )
            };
            jobs.push(job(&pkt[..total]));
            expected.push(Ok(to_hex(&inner)));
            // Negative control: the oracle must reject a flipped ciphertext byte.
            if n == 0 {
                let mut bad = pkt[..total].to_vec();
                let last = bad.len() - 20;
                bad[last] ^= 0x01;
                jobs.push(job(&bad));
                expected.push(Err(()));
            }
        }
    }
    let Some(answers) = oracle(&jobs) else { return };
    for (i, (a, e)) in answers.iter().zip(&expected).enumerate() {
        match e {
            Ok(inner) => assert_eq!(a, inner, "job {i}: {}", &jobs[i][..60]),
            Err(()) => assert!(a.starts_with("ERR"), "job {i}: tampered packet accepted"),
        }
    }
}

#[test]
fn we_decapsulate_what_scapy_encrypts() {
    let mut jobs = Vec::new();
    let mut inners = Vec::new();
    let all = combos();
    for c in &all {
        let (k, s) = key_salt_hex(c.key_len);
        for (n, len) in [28usize, 61, 512, 1400].into_iter().enumerate() {
            let inner = inner_ipv4_udp(len, 0, false, 0x40 + n as u8);
            let seq = SeqNum(start_seq(c.esn) + n as u64 + 1);
            jobs.push(format!(
                "encrypt {k} {s} {} {} {} {} {} {LOCAL} {REMOTE} {}",
                0x1234_5678u32,
                u8::from(c.esn),
                seq.high(),
                u8::from(c.udp),
                seq.low(),
                to_hex(&inner)
            ));
            inners.push(inner);
        }
    }
    let Some(answers) = oracle(&jobs) else { return };
    let mut k = 0;
    for c in &all {
        let mut i = InboundSa::new(params(c.key_len, c.esn, c.udp, 1024));
        i.set_window(ReplayWindow::resume_at(
            ReplayWindowSize::DEFAULT,
            c.esn,
            SeqNum(start_seq(c.esn)),
        ));
        for n in 0..4u64 {
            let a = &answers[k];
            assert!(!a.starts_with("ERR"), "scapy encrypt failed: {a}");
            let mut pkt = hex(a);
            let d = decapsulate_packet(&i, &mut pkt)
                .unwrap_or_else(|e| panic!("key {} esn {} udp {}: {e}", c.key_len, c.esn, c.udp));
            assert_eq!(to_hex(&pkt[d.inner.clone()]), to_hex(&inners[k]));
            assert_eq!(d.seq, SeqNum(start_seq(c.esn) + n + 1));
            assert_eq!(d.outer_src, LOCAL);
            assert_eq!(d.src_port, c.udp.then_some(4500));
            // And scapy's packet replayed is refused.
            let mut again = hex(a);
            assert_eq!(
                decapsulate_packet(&i, &mut again),
                Err(vpn_esp::EspError::Replayed)
            );
            k += 1;
        }
    }
}
