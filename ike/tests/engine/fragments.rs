//! RFC 7383 on the receiving side, hostile cases: forged SKF fragments and fragment counts
//! above the limit are dropped and counted, and the established IKE SA goes on as before.

use vpn_ike::codec::{
    EncryptedFragment, ExchangeType, Flags, Message, MessageId, Payload, PayloadType,
};
use vpn_ike::fragment::MAX_FRAGMENTS;
use vpn_ike::{DropReason, SaState};

use crate::harness::*;

/// An SKF-carrying INFORMATIONAL request on A's IKE SA towards B, with `data` as its
/// encrypted body.
fn skf(net: &Net, number: u16, total: u16, data: Vec<u8>) -> Vec<u8> {
    let first = net
        .log
        .iter()
        .find(|f| f.dir == Dir::BtoA)
        .expect("B's IKE_SA_INIT");
    let reply = Message::decode(&first.payload).expect("B's IKE_SA_INIT response");
    Message {
        initiator_spi: reply.initiator_spi,
        responder_spi: reply.responder_spi,
        exchange_type: ExchangeType::Informational,
        flags: Flags::new(true, false),
        message_id: MessageId(2),
        payloads: vec![Payload::EncryptedFragment(EncryptedFragment {
            inner_next: PayloadType::NoNextPayload,
            fragment_number: number,
            total_fragments: total,
            data,
        })],
    }
    .encode()
    .expect("encode")
}

#[test]
fn forged_and_oversized_fragments_change_nothing() {
    let mut net = Net::new(config_a(), config_b());
    net.start();
    assert_eq!(net.a.state(), SaState::Established);
    let before = net.b.stats();
    let (from, to) = (sock(A_IP, 500), sock(B_IP, 500));
    // A fragment that does not verify under the SA's keys.
    let forged = skf(&net, 1, 2, vec![0x5a; 64]);
    net.b.handle_datagram(net.now, from, to, &forged);
    // More fragments than anyone should need.
    let huge = skf(&net, 1, MAX_FRAGMENTS + 1, vec![0x5a; 64]);
    net.b.handle_datagram(net.now, from, to, &huge);
    let after = net.b.stats();
    assert_eq!(
        after.dropped(DropReason::IntegrityCheckFailed),
        before.dropped(DropReason::IntegrityCheckFailed) + 1
    );
    assert_eq!(
        after.dropped(DropReason::InvalidContent),
        before.dropped(DropReason::InvalidContent) + 1
    );
    assert!(
        net.b.poll_transmit().is_none(),
        "B answered a forged fragment"
    );
    // The SA still works: a DPD round trip goes through.
    net.run_until(60);
    assert_eq!(net.a.state(), SaState::Established);
    assert_eq!(established(&net.b_events), 1);
}

/// Both sides agree on fragments of at most 200 bytes: IKE_AUTH goes as SKF fragments both
/// ways, is reassembled, and the SAs come up with matching keys.
#[test]
fn small_fragments_carry_the_handshake() {
    let (mut a, mut b) = (config_a(), config_b());
    a.fragmentation = Some(200);
    b.fragmentation = Some(200);
    let mut net = Net::new(a, b);
    net.start();
    assert_eq!(net.a.state(), SaState::Established);
    assert_eq!(established(&net.b_events), 1);
    let fragments = |dir: Dir| {
        net.log
            .iter()
            .filter(|f| f.dir == dir)
            .filter_map(|f| Message::decode(&f.payload).ok())
            .filter(|m| matches!(m.payloads.last(), Some(Payload::EncryptedFragment(_))))
            .count()
    };
    assert!(fragments(Dir::AtoB) >= 2, "A sent IKE_AUTH whole");
    assert!(fragments(Dir::BtoA) >= 2, "B sent IKE_AUTH whole");
    // Every encrypted datagram fits the size (IKE_SA_INIT is never fragmented).
    let encrypted = net.log.iter().filter(|f| {
        Message::decode(&f.payload).is_ok_and(|m| m.exchange_type != ExchangeType::IkeSaInit)
    });
    assert!(encrypted.clone().count() >= 4);
    assert!(
        encrypted.clone().all(|f| f.payload.len() <= 200 - 28),
        "{:?}",
        encrypted.map(|f| f.payload.len()).collect::<Vec<_>>()
    );
    let (ia, ib) = (installed(&net.a_events), installed(&net.b_events));
    assert_eq!((ia.len(), ib.len()), (1, 1));
    assert_eq!(ia[0].spi_in, ib[0].spi_out);
}

/// Without the peer's announcement nothing is fragmented, whatever the size.
#[test]
fn no_fragments_unless_both_announce() {
    let (mut a, mut b) = (config_a(), config_b());
    a.fragmentation = Some(300);
    b.fragmentation = None;
    let mut net = Net::new(a, b);
    net.start();
    assert_eq!(net.a.state(), SaState::Established);
    assert!(net.log.iter().all(|f| {
        Message::decode(&f.payload)
            .map(|m| !matches!(m.payloads.last(), Some(Payload::EncryptedFragment(_))))
            .unwrap_or(true)
    }));
}
