//! Cost of the ESP transform relative to the raw AEAD it wraps.
//!
//! For inner packets of 64, 512 and 1400 bytes: `raw_seal` / `raw_open` time the AEAD backend
//! alone on a buffer of the same size (same key object), `encapsulate` / `decapsulate` time the
//! whole ESP transform (header, IV, padding, trailer, AAD, replay check and commit). Throughput
//! is in bytes of inner packet, so the ratio of the two is the transform's overhead.
//!
//! `raw_seal` reuses one nonce: fine for timing, never for traffic. `decapsulate` gets a fresh,
//! in-order packet per iteration (made in the untimed setup) so the replay window accepts it;
//! `raw_open` likewise gets a fresh copy of a sealed buffer per iteration.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use vpn_esp::aead::AeadBackend;
use vpn_esp::transform::esp_len;
use vpn_esp::{
    AeadKey, InboundSa, OutboundSa, SaParams, Salt, Spi, TunnelEndpoints, decapsulate, encapsulate,
};

const SIZES: [usize; 3] = [64, 512, 1400];

fn params(key_len: usize) -> SaParams {
    let key: Vec<u8> = (0..key_len as u8).collect();
    SaParams::new(
        Spi::new(0x0102_0304).unwrap(),
        AeadKey::new(&key).unwrap(),
        Salt::new([1, 2, 3, 4]),
        TunnelEndpoints::new(
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
        )
        .unwrap(),
    )
}

fn inner(len: usize) -> Vec<u8> {
    let mut p = vec![0xabu8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p
}

fn bench(c: &mut Criterion) {
    for key_len in [16usize, 24, 32] {
        let bits = key_len * 8;
        let sizes: &[usize] = if key_len == 24 { &[1400] } else { &SIZES };
        let mut g = c.benchmark_group(format!("aes{bits}gcm"));
        g.measurement_time(Duration::from_secs(2))
            .warm_up_time(Duration::from_millis(500))
            .sample_size(30);
        for &n in sizes {
            g.throughput(Throughput::Bytes(n as u64));

            let out_sa = OutboundSa::new(params(key_len));
            let nonce = [7u8; 12];
            let aad = [9u8; 8];
            let mut buf = vec![0u8; n];
            g.bench_function(format!("raw_seal/{n}"), |b| {
                b.iter(|| {
                    let tag = out_sa
                        .aead()
                        .seal_in_place(&nonce, &aad, black_box(&mut buf))
                        .unwrap();
                    black_box(tag);
                })
            });

            let mut sealed = vec![0x11u8; n];
            let tag = out_sa
                .aead()
                .seal_in_place(&nonce, &aad, &mut sealed)
                .unwrap();
            g.bench_function(format!("raw_open/{n}"), |b| {
                b.iter_batched_ref(
                    || sealed.clone(),
                    |ct| {
                        out_sa
                            .aead()
                            .open_in_place(&nonce, &aad, black_box(ct), &tag)
                            .unwrap()
                    },
                    BatchSize::SmallInput,
                )
            });

            let enc_sa = OutboundSa::new(params(key_len));
            let pkt = inner(n);
            let mut out = vec![0u8; esp_len(n)];
            g.bench_function(format!("encapsulate/{n}"), |b| {
                b.iter(|| {
                    let len = encapsulate(&enc_sa, black_box(&pkt), &mut out).unwrap();
                    black_box(len);
                })
            });

            let tx = OutboundSa::new(params(key_len));
            let rx = InboundSa::new(params(key_len));
            g.bench_function(format!("decapsulate/{n}"), |b| {
                b.iter_batched_ref(
                    || {
                        let mut o = vec![0u8; esp_len(n)];
                        encapsulate(&tx, &pkt, &mut o).unwrap();
                        o
                    },
                    |esp| {
                        let d = decapsulate(&rx, black_box(esp)).unwrap();
                        black_box(d);
                    },
                    BatchSize::SmallInput,
                )
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
