//! One SA used by several workers at once (one per receive queue): sequence numbers, and so
//! IVs, never repeat (RFC 4106 3.1), and a packet arriving twice on two queues is accepted once
//! (RFC 4303 3.4.3: one window per SA).

mod common;

use std::{
    collections::HashSet,
    sync::{Arc, Barrier},
    thread,
};

use common::{inner_ipv4_udp, params};
use vpn_esp::replay::SeqCounter;
use vpn_esp::{EspError, InboundSa, OutboundSa, SeqNum, decapsulate, encapsulate};

const THREADS: usize = 4;

#[test]
fn threads_sealing_with_one_sa_never_share_a_sequence_number_or_iv() {
    for esn in [false, true] {
        let sa = Arc::new(OutboundSa::new(params(32, esn, false, 1024)));
        let start = Arc::new(Barrier::new(THREADS));
        let per_thread = 5_000;
        let seen: Vec<Vec<(u32, [u8; 8])>> = (0..THREADS)
            .map(|_| {
                let (sa, start) = (Arc::clone(&sa), Arc::clone(&start));
                thread::spawn(move || {
                    let inner = inner_ipv4_udp(64, 0, false, 1);
                    let mut out = vec![0u8; 256];
                    start.wait();
                    (0..per_thread)
                        .map(|_| {
                            encapsulate(&sa, &inner, &mut out).unwrap();
                            let seq = u32::from_be_bytes(out[4..8].try_into().unwrap());
                            (seq, out[8..16].try_into().unwrap())
                        })
                        .collect()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let seqs: HashSet<u32> = seen.iter().flatten().map(|(s, _)| *s).collect();
        let ivs: HashSet<[u8; 8]> = seen.iter().flatten().map(|(_, iv)| *iv).collect();
        let total = THREADS * per_thread;
        assert_eq!(seqs.len(), total, "a sequence number was sent twice");
        assert_eq!(ivs.len(), total, "an IV was used twice under one key");
        assert_eq!(seqs, (1..=total as u32).collect(), "numbers skipped");
        assert_eq!(sa.last_seq(), SeqNum(total as u64));
    }
}

#[test]
fn threads_racing_for_the_last_sequence_numbers_get_each_once() {
    for esn in [false, true] {
        let counter = Arc::new(SeqCounter::resume_after(
            esn,
            if esn { u64::MAX } else { u64::from(u32::MAX) } - 10,
        ));
        let start = Arc::new(Barrier::new(THREADS));
        let got: Vec<u64> = (0..THREADS)
            .map(|_| {
                let (counter, start) = (Arc::clone(&counter), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    (0..100)
                        .filter_map(|_| counter.next_seq().ok().map(|s| s.0))
                        .collect::<Vec<_>>()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let unique: HashSet<u64> = got.iter().copied().collect();
        assert_eq!(got.len(), 10, "exactly the numbers left were handed out");
        assert_eq!(unique.len(), 10);
        assert_eq!(counter.next_seq(), Err(EspError::SeqExhausted));
        assert_eq!(counter.remaining(), 0);
    }
}

#[test]
fn a_packet_opened_on_two_threads_at_once_is_accepted_once() {
    let tx = OutboundSa::new(params(16, false, false, 1024));
    let rx = Arc::new(InboundSa::new(params(16, false, false, 1024)));
    let inner = inner_ipv4_udp(1000, 0, false, 7);
    let rounds = 2_000;
    let mut accepted = 0;
    let mut replayed = 0;
    for _ in 0..rounds {
        let mut packet = vec![0u8; 1200];
        let n = encapsulate(&tx, &inner, &mut packet).unwrap();
        packet.truncate(n);
        let start = Arc::new(Barrier::new(2));
        let results: Vec<Result<(), EspError>> = (0..2)
            .map(|_| {
                let (rx, start, mut copy) = (Arc::clone(&rx), Arc::clone(&start), packet.clone());
                thread::spawn(move || {
                    start.wait();
                    decapsulate(&rx, &mut copy).map(|_| ())
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        for result in results {
            match result {
                Ok(()) => accepted += 1,
                Err(EspError::Replayed) => replayed += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(accepted, rounds, "every packet exactly once");
    assert_eq!(replayed, rounds, "every copy refused as a replay");
}
