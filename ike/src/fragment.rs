//! IKE fragmentation, receiving side (RFC 7383): when both peers announced
//! IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT, an encrypted message may arrive as SKF
//! fragments, each encrypted and authenticated on its own (associated data: the header, the
//! SKF payload header and its Fragment Number / Total Fragments fields). Each fragment is
//! verified before it is kept; the message is decoded once all have arrived.
//!
//! Limits (section 2.6.1 asks for them): at most [`MAX_FRAGMENTS`] fragments and
//! [`MAX_MESSAGE`] bytes of plaintext per message, one message in reassembly at a time (a
//! newer message ID replaces it). Sending fragments ourselves is not done yet: what we send
//! (PSK and raw public-key AUTH, no certificates) fits in one datagram.

use std::collections::BTreeMap;

use crate::codec::{self, EncryptedFragment, Message, PayloadType};
use crate::sa::SaCore;
use crate::sk::Opened;
use crate::stats::DropReason;

/// Most fragments one message may have.
pub const MAX_FRAGMENTS: u16 = 64;
/// Most plaintext bytes one reassembled message may have.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// The fragments of one message received so far.
pub(crate) struct Reassembly {
    message_id: u32,
    total: u16,
    first: Option<PayloadType>,
    parts: BTreeMap<u16, Vec<u8>>,
    size: usize,
}

impl SaCore {
    /// Verifies and keeps one fragment; the whole message once the last one is in.
    pub(crate) fn reassemble(
        &mut self,
        bytes: &[u8],
        msg: &Message,
        f: &EncryptedFragment,
    ) -> Option<Opened> {
        if !self.fragmentation_agreed {
            self.drop_msg(
                DropReason::InvalidContent,
                "fragment, but fragmentation was not agreed",
            );
            return None;
        }
        let id = msg.message_id.0;
        if f.total_fragments > MAX_FRAGMENTS {
            self.drop_msg(DropReason::InvalidContent, "too many fragments");
            return None;
        }
        let Some(keyed) = self.state.keyed() else {
            self.drop_msg(DropReason::WrongState, "no keys");
            return None;
        };
        let Some(aad_len) = bytes.len().checked_sub(f.data.len()) else {
            self.drop_msg(DropReason::Malformed, "fragment length");
            return None;
        };
        let Ok(piece) = keyed.rx.decrypt(&bytes[..aad_len], &bytes[aad_len..]) else {
            self.drop_msg(DropReason::IntegrityCheckFailed, "SKF payload");
            return None;
        };
        // Section 2.6.1: a fragment of a newer message discards an incomplete older one.
        let stale = self
            .reassembly
            .as_ref()
            .is_some_and(|r| r.message_id != id || r.total != f.total_fragments);
        if stale {
            let newer = self.reassembly.as_ref().is_some_and(|r| id > r.message_id);
            if !newer {
                self.drop_msg(DropReason::InvalidContent, "fragment of another message");
                return None;
            }
            self.reassembly = None;
        }
        let r = self.reassembly.get_or_insert_with(|| Reassembly {
            message_id: id,
            total: f.total_fragments,
            first: None,
            parts: BTreeMap::new(),
            size: 0,
        });
        if r.parts.contains_key(&f.fragment_number) {
            return None;
        }
        if r.size + piece.len() > MAX_MESSAGE {
            self.reassembly = None;
            self.drop_msg(DropReason::InvalidContent, "reassembled message too large");
            return None;
        }
        if f.fragment_number == 1 {
            r.first = Some(f.inner_next);
        }
        r.size += piece.len();
        r.parts.insert(f.fragment_number, piece.to_vec());
        if r.parts.len() < usize::from(r.total) {
            return None;
        }
        let r = self.reassembly.take()?;
        let first = r.first?;
        let plaintext: Vec<u8> = r.parts.into_values().flatten().collect();
        match codec::decode_payload_chain(first, &plaintext) {
            Ok(payloads) => Some(Opened {
                payloads,
                plaintext,
                first,
            }),
            Err(_) => {
                self.drop_msg(DropReason::Malformed, "reassembled inner payloads");
                None
            }
        }
    }
}
