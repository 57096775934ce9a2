//! Decodes arbitrary bytes as an IKE message and as a decrypted payload chain (first byte =
//! first payload type). Decoding must not panic; whatever decodes must re-encode to bytes that
//! decode to the same value and re-encode identically.
//! tests/corpus.rs replays the corpus through the same checks.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vpn_ike::codec::{Header, Message, PayloadType, decode_payload_chain, encode_payload_chain};

fuzz_target!(|data: &[u8]| {
    let _ = Header::peek(data);
    if let Ok(msg) = Message::decode(data) {
        let bytes = msg.encode().expect("a decoded message encodes");
        assert_eq!(
            bytes.len(),
            data.len(),
            "canonical encoding keeps the length"
        );
        let again = Message::decode(&bytes).expect("an encoded message decodes");
        assert_eq!(again, msg);
        assert_eq!(again.encode().expect("encodes again"), bytes);
    }
    if let Some((&first, rest)) = data.split_first()
        && let Ok(payloads) = decode_payload_chain(PayloadType::from(first), rest)
    {
        let bytes = encode_payload_chain(&payloads).expect("a decoded chain encodes");
        let first = payloads
            .first()
            .map_or(PayloadType::NoNextPayload, |p| p.payload_type());
        let again = decode_payload_chain(first, &bytes).expect("an encoded chain decodes");
        assert_eq!(again, payloads);
    }
});
