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
