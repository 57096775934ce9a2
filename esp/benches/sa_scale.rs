//! The worker's per-packet cost as the number of SAs grows (issue 7's scale runs): AES-256-GCM
//! ESP encapsulation of a 1400-byte inner packet into a complete outer IPv4 packet, with the SA
//! taken by slot from a table of 1, 100 or 10,000 outbound SAs, as the crypto worker does with
//! the slot XDP writes into each frame's metadata (`vpn-agent`'s `SaTable` is a vector of
//! optional entries indexed by slot, like the table here).
//!
//! Two access patterns per table size:
//! - `same_sa`: every packet to one SA (one busy tunnel among many idle ones): the table's size
//!   matters only if finding the slot does;
//! - `spread`: consecutive packets to SAs in a pseudo-random order over the whole table (many
//!   busy tunnels): each SA's key schedule and counters are then likely out of the CPU caches
//!   once the table outgrows them.
//!
//! Criterion reports time per packet; throughput is in bytes of inner packet.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vpn_esp::outer::{encapsulate_packet, outer_overhead};
use vpn_esp::transform::esp_len;
use vpn_esp::{AeadKey, OutboundSa, SaParams, Salt, Spi, TunnelEndpoints};

const INNER: usize = 1400;
const COUNTS: [u32; 3] = [1, 100, 10_000];

fn params(spi: u32) -> SaParams {
    let key: Vec<u8> = (0..32u8).map(|b| b ^ spi as u8).collect();
    SaParams::new(
        Spi::new(spi).unwrap(),
        AeadKey::new(&key).unwrap(),
        Salt::new(spi.to_be_bytes()),
        TunnelEndpoints::new(
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
        )
        .unwrap(),
    )
}

fn inner() -> Vec<u8> {
    let mut p = vec![0xabu8; INNER];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(INNER as u16).to_be_bytes());
    p
}

/// A pseudo-random order over `0..n` (xorshift-driven Fisher-Yates): deterministic.
fn scattered(n: u32) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n).collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sa_scale");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30)
        .throughput(Throughput::Bytes(INNER as u64));
    let pkt = inner();
    for n in COUNTS {
        // Slots 1..=n, slot 0 unused (as in the agent, where slot numbers come from the maps).
        let mut table: Vec<Option<OutboundSa>> = std::iter::once(None)
            .chain((1..=n).map(|spi| Some(OutboundSa::new(params(spi)))))
            .collect();
        let mut out = vec![0u8; outer_overhead(table[1].as_ref().unwrap()) + esp_len(INNER)];

        let busy = n / 2 + 1;
        g.bench_function(format!("same_sa/{n}"), |b| {
            b.iter(|| {
                let sa = table
                    .get_mut(black_box(busy) as usize)
                    .and_then(Option::as_mut)
                    .unwrap();
                black_box(encapsulate_packet(sa, black_box(&pkt), &mut out).unwrap())
            })
        });

        let order = scattered(n);
        let mut next = 0usize;
        g.bench_function(format!("spread/{n}"), |b| {
            b.iter(|| {
                let slot = order[next] + 1;
                next = (next + 1) % order.len();
                let sa = table
                    .get_mut(black_box(slot) as usize)
                    .and_then(Option::as_mut)
                    .unwrap();
                black_box(encapsulate_packet(sa, black_box(&pkt), &mut out).unwrap())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
