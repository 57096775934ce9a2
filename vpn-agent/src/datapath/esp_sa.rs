//! The worker's ESP transforms, backed by `vpn-esp` (RFC 4106 AES-GCM-16, RFC 3948 UDP
//! encapsulation), working in place in AF_XDP frames.

use std::ops::Range;

use vpn_esp::{
    EspError, InboundSa, OutboundSa,
    outer::{encapsulate_packet_in_place, outer_overhead},
    transform::{PAYLOAD_OFFSET, decapsulate},
};

use super::sa_table::{DropReason, EspOpen, EspSeal};

fn reason(err: EspError) -> DropReason {
    DropReason::Esp(err.as_str())
}

pub struct Seal(pub OutboundSa);

impl EspSeal for Seal {
    fn seal(&self, frame: &mut [u8], inner: Range<usize>) -> Result<Range<usize>, DropReason> {
        // The outer IPv4 (+UDP) header, ESP header and IV go in the frame's headroom, right in
        // front of the inner packet, so nothing is copied.
        let front = outer_overhead(&self.0) + PAYLOAD_OFFSET;
        let start = inner
            .start
            .checked_sub(front)
            .ok_or(DropReason::Malformed)?;
        let len = encapsulate_packet_in_place(&self.0, &mut frame[start..], inner.len())
            .map_err(reason)?;
        Ok(start..start + len)
    }
}

pub struct Open(pub InboundSa);

impl EspOpen for Open {
    fn open(&self, frame: &mut [u8], esp: Range<usize>) -> Result<(Range<usize>, u8), DropReason> {
        let packet = frame.get_mut(esp.clone()).ok_or(DropReason::Malformed)?;
        let opened = decapsulate(&self.0, packet).map_err(reason)?;
        Ok((
            esp.start + opened.inner.start..esp.start + opened.inner.end,
            opened.next_header,
        ))
    }
}
