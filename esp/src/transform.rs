//! Tunnel-mode ESP with AES-GCM-16: encapsulate and decapsulate (RFC 4303, RFC 4106).
//!
//! Hand-written framing around the [`AeadBackend`]; no crate offers in-place ESP on a
//! caller-owned buffer. The packet layout (RFC 4303 section 2, RFC 4106 sections 3-5):
//!
//! ```text
//! 0        4        8                16                         len-16      len
//! | SPI    | seq lo | IV (8 bytes)    | ciphertext of             | ICV (16) |
//! |        |        |                 | inner | pad | pl | nh     |          |
//! ```
//!
//! - **IV**: the 64-bit sequence number, big-endian. RFC 4106 section 3.1 only requires the IV
//!   to be unique per key; the outbound counter never repeats or wraps within one SA (see
//!   `replay::SeqCounter`), so the IV is unique by construction and needs no random source.
//!   (This is what Linux's `seqiv` and strongSwan's libipsec do as well.)
//! - **Nonce**: salt (4 bytes, from KEYMAT) || IV (RFC 4106 section 4).
//! - **AAD**: SPI || seq-low, or SPI || seq-high || seq-low with ESN (RFC 4106 section 5).
//!   The sequence number is authenticated, not encrypted.
//! - **Padding**: RFC 4303 section 2.4. GCM needs no block padding, so we pad only to make
//!   inner + padding + 2 a multiple of 4, with bytes 1, 2, 3, ... The receiver checks that
//!   pattern and rejects anything else (`BadPadding`); TFC padding is not generated.
//! - **Next header**: 4 for an inner IPv4 packet, 41 for IPv6 (tunnel mode). On receive the
//!   value is returned to the caller (59, a dummy packet per RFC 4303 section 2.6, must be
//!   dropped there).
//!
//! Decapsulation order: length checks, SPI check, replay *check*, ICV verification, padding
//! check, replay *commit*. Every index is bounds-checked before use, so hostile input can only
//! produce an `EspError`, never a panic.

use core::ops::Range;
use core::sync::atomic::AtomicU16;
use std::sync::{Mutex, PoisonError};

use crate::aead::{AeadBackend, GcmAead, NONCE_LEN, TAG_LEN};
use crate::error::EspError;
use crate::replay::{ReplayWindow, SeqCounter};
use crate::sa::{OuterPolicy, SaParams, Salt, SeqNum, Spi, TunnelEndpoints, UdpEncap};

/// SPI + sequence number.
pub const ESP_HEADER_LEN: usize = 8;
/// Explicit IV of AES-GCM ESP (RFC 4106 section 3.1).
pub const IV_LEN: usize = 8;
/// Offset of the (encrypted) payload from the SPI.
pub const PAYLOAD_OFFSET: usize = ESP_HEADER_LEN + IV_LEN;
/// ICV length of AES-GCM-16.
pub const ICV_LEN: usize = TAG_LEN;
/// Smallest well-formed ESP packet: header, IV, pad length + next header, ICV.
pub const MIN_ESP_LEN: usize = PAYLOAD_OFFSET + 2 + ICV_LEN;
/// Next header value for an inner IPv4 packet.
pub const NH_IPV4: u8 = 4;
/// Next header value for an inner IPv6 packet.
pub const NH_IPV6: u8 = 41;
/// Next header value of a dummy packet (RFC 4303 section 2.6): decrypt, then drop.
pub const NH_NO_NEXT: u8 = 59;

/// Number of padding bytes for `payload_len` (RFC 4303 section 2.4, 4-byte alignment).
pub fn pad_len(payload_len: usize) -> usize {
    (4 - (payload_len + 2) % 4) % 4
}

/// Length of the ESP packet (SPI through ICV) carrying a `payload_len`-byte inner packet.
pub fn esp_len(payload_len: usize) -> usize {
    PAYLOAD_OFFSET + payload_len + pad_len(payload_len) + 2 + ICV_LEN
}

/// Outbound state of one SA: the AEAD, the sequence counter and the outer-header settings.
/// The raw key is dropped (and zeroized) once the backend is built. Sealing takes `&self`:
/// one SA may be used by several workers at once (the counter is atomic, see `replay`).
pub struct OutboundSa<A: AeadBackend = GcmAead> {
    pub(crate) spi: Spi,
    pub(crate) salt: Salt,
    pub(crate) esn: bool,
    pub(crate) udp_encap: Option<UdpEncap>,
    pub(crate) tunnel: TunnelEndpoints,
    pub(crate) outer: OuterPolicy,
    pub(crate) ip_id: AtomicU16,
    seq: SeqCounter,
    aead: A,
}

impl OutboundSa<GcmAead> {
    /// Outbound SA with the default backend for the key size.
    pub fn new(params: SaParams) -> Self {
        let aead = GcmAead::new(&params.key);
        Self::with_backend(params, aead)
    }
}

impl<A: AeadBackend> OutboundSa<A> {
    /// Outbound SA with an explicit AEAD backend (already keyed with `params.key`).
    pub fn with_backend(params: SaParams, aead: A) -> Self {
        OutboundSa {
            spi: params.spi,
            salt: params.salt.clone(),
            esn: params.esn,
            udp_encap: params.udp_encap,
            tunnel: params.tunnel,
            outer: params.outer,
            ip_id: AtomicU16::new(0),
            seq: SeqCounter::new(params.esn),
            aead,
        }
    }

    /// Replace the sequence counter (hand-over of an SA between workers; exhaustion tests).
    pub fn set_seq_counter(&mut self, counter: SeqCounter) {
        self.seq = counter;
    }

    /// The SPI written into every packet.
    pub fn spi(&self) -> Spi {
        self.spi
    }

    /// Whether ESN is on.
    pub fn esn(&self) -> bool {
        self.esn
    }

    /// The last sequence number sent (0 before the first packet).
    pub fn last_seq(&self) -> SeqNum {
        self.seq.last()
    }

    /// Sequence numbers left before the SA must be rekeyed.
    pub fn seq_remaining(&self) -> u64 {
        self.seq.remaining()
    }

    /// UDP encapsulation ports, if NAT-T is on.
    pub fn udp_encap(&self) -> Option<UdpEncap> {
        self.udp_encap
    }

    /// The AEAD backend (for benchmarks that measure raw crypto with the same key object).
    pub fn aead(&self) -> &A {
        &self.aead
    }
}

impl<A: AeadBackend> core::fmt::Debug for OutboundSa<A> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OutboundSa")
            .field("spi", &self.spi)
            .field("esn", &self.esn)
            .field("last_seq", &self.seq.last())
            .field("udp_encap", &self.udp_encap)
            .finish_non_exhaustive()
    }
}

/// Inbound state of one SA: the AEAD and the replay window. Opening takes `&self`: one SA
/// may be used by several workers at once, which share its window (see `replay`).
pub struct InboundSa<A: AeadBackend = GcmAead> {
    pub(crate) spi: Spi,
    salt: Salt,
    esn: bool,
    pub(crate) udp_encap: Option<UdpEncap>,
    window: Mutex<ReplayWindow>,
    aead: A,
}

impl InboundSa<GcmAead> {
    /// Inbound SA with the default backend for the key size.
    pub fn new(params: SaParams) -> Self {
        let aead = GcmAead::new(&params.key);
        Self::with_backend(params, aead)
    }
}

impl<A: AeadBackend> InboundSa<A> {
    /// Inbound SA with an explicit AEAD backend (already keyed with `params.key`).
    pub fn with_backend(params: SaParams, aead: A) -> Self {
        InboundSa {
            spi: params.spi,
            salt: params.salt.clone(),
            esn: params.esn,
            udp_encap: params.udp_encap,
            window: Mutex::new(ReplayWindow::new(params.replay_window, params.esn)),
            aead,
        }
    }

    /// The SPI this SA accepts.
    pub fn spi(&self) -> Spi {
        self.spi
    }

    /// Whether ESN is on.
    pub fn esn(&self) -> bool {
        self.esn
    }

    /// Replace the replay window (SA hand-over between workers; tests far into the sequence
    /// space). Its size and ESN setting should be the SA's.
    pub fn set_window(&mut self, window: ReplayWindow) {
        *self
            .window
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = window;
    }

    /// A copy of the replay window (it only moves through [`decapsulate`]).
    pub fn window(&self) -> ReplayWindow {
        self.lock_window().clone()
    }

    /// The window; a panic elsewhere cannot leave it half-updated (`commit` writes it whole
    /// after its checks), so a poisoned lock is still usable.
    fn lock_window(&self) -> std::sync::MutexGuard<'_, ReplayWindow> {
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// UDP encapsulation expected on receive, if NAT-T is on.
    pub fn udp_encap(&self) -> Option<UdpEncap> {
        self.udp_encap
    }
}

impl<A: AeadBackend> core::fmt::Debug for InboundSa<A> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InboundSa")
            .field("spi", &self.spi)
            .field("esn", &self.esn)
            .field("window_top", &self.lock_window().top())
            .field("udp_encap", &self.udp_encap)
            .finish_non_exhaustive()
    }
}

/// Result of a successful decapsulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decapsulated {
    /// Where the decrypted inner packet is, in the buffer passed to `decapsulate`.
    pub inner: Range<usize>,
    /// The ESP next header (4 = IPv4, 41 = IPv6, 59 = dummy; anything else is the caller's
    /// to drop).
    pub next_header: u8,
    /// The full (ESN-inferred) sequence number of the packet.
    pub seq: SeqNum,
}

fn nonce(salt: &Salt, iv: &[u8; IV_LEN]) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..4].copy_from_slice(salt.expose());
    n[4..].copy_from_slice(iv);
    n
}

/// AAD of RFC 4106 section 5; returns the buffer and the used length (8 or 12).
fn aad(spi: u32, seq: SeqNum, esn: bool) -> ([u8; 12], usize) {
    let mut a = [0u8; 12];
    a[..4].copy_from_slice(&spi.to_be_bytes());
    if esn {
        a[4..8].copy_from_slice(&seq.high().to_be_bytes());
        a[8..12].copy_from_slice(&seq.low().to_be_bytes());
        (a, 12)
    } else {
        a[4..8].copy_from_slice(&seq.low().to_be_bytes());
        (a, 8)
    }
}

/// Parameters of one ESP seal, for [`seal_esp_in_place`].
#[derive(Debug, Clone, Copy)]
pub struct SealInput {
    /// SPI to write.
    pub spi: Spi,
    /// Full sequence number (its low half is written; with ESN its high half is in the AAD).
    pub seq: SeqNum,
    /// ESN on/off (AAD layout).
    pub esn: bool,
    /// Explicit IV to write. [`encapsulate`] always uses the sequence number; known-answer tests
    /// pass the IVs of published vectors.
    pub iv: [u8; IV_LEN],
    /// Next header value for the trailer.
    pub next_header: u8,
}

/// Build an ESP packet in `buf` whose payload already sits at
/// `buf[PAYLOAD_OFFSET..][..payload_len]`: writes header, IV, padding and trailer, encrypts,
/// appends the ICV. Returns the ESP length.
/// This is the primitive under [`encapsulate`]; it is public for AF_XDP frames that already
/// have the inner packet at the right offset, and for known-answer tests with fixed IVs.
pub fn seal_esp_in_place<A: AeadBackend>(
    aead: &A,
    salt: &Salt,
    input: &SealInput,
    buf: &mut [u8],
    payload_len: usize,
) -> Result<usize, EspError> {
    let total = esp_len(payload_len);
    if buf.len() < total {
        return Err(EspError::BufferTooSmall);
    }
    let pad = pad_len(payload_len);
    buf[..4].copy_from_slice(&input.spi.to_be_bytes());
    buf[4..8].copy_from_slice(&input.seq.low().to_be_bytes());
    buf[8..PAYLOAD_OFFSET].copy_from_slice(&input.iv);
    let mut pos = PAYLOAD_OFFSET + payload_len;
    for i in 0..pad {
        buf[pos] = (i + 1) as u8;
        pos += 1;
    }
    buf[pos] = pad as u8;
    buf[pos + 1] = input.next_header;
    let ct_end = pos + 2;
    let (a, alen) = aad(input.spi.get(), input.seq, input.esn);
    let n = nonce(salt, &input.iv);
    let tag = aead
        .seal_in_place(&n, &a[..alen], &mut buf[PAYLOAD_OFFSET..ct_end])
        // Backends refuse only inputs far beyond any packet size (ring: ~64 GiB).
        .map_err(|_| EspError::TooBig)?;
    buf[ct_end..ct_end + ICV_LEN].copy_from_slice(&tag);
    Ok(total)
}

/// Next header for an inner packet, from its IP version (with a minimal length check).
pub fn next_header_for(inner: &[u8]) -> Result<u8, EspError> {
    match inner.first().map(|b| b >> 4) {
        Some(4) if inner.len() >= 20 => Ok(NH_IPV4),
        Some(6) if inner.len() >= 40 => Ok(NH_IPV6),
        _ => Err(EspError::InvalidInner),
    }
}

/// Encapsulate with the inner packet already at `buf[PAYLOAD_OFFSET..][..inner_len]`
/// (zero-copy path for frames with headroom). Returns the ESP length.
pub fn encapsulate_in_place<A: AeadBackend>(
    sa: &OutboundSa<A>,
    buf: &mut [u8],
    inner_len: usize,
) -> Result<usize, EspError> {
    let inner = buf
        .get(PAYLOAD_OFFSET..PAYLOAD_OFFSET + inner_len)
        .ok_or(EspError::BufferTooSmall)?;
    let next_header = next_header_for(inner)?;
    if buf.len() < esp_len(inner_len) {
        return Err(EspError::BufferTooSmall);
    }
    let seq = sa.seq.next_seq()?;
    let input = SealInput {
        spi: sa.spi,
        seq,
        esn: sa.esn,
        iv: seq.0.to_be_bytes(),
        next_header,
    };
    seal_esp_in_place(&sa.aead, &sa.salt, &input, buf, inner_len)
}

/// Encapsulate `inner` (an IPv4 or IPv6 packet) into `out`, starting at the SPI. Returns the
/// ESP length. Uses the next outbound sequence number; fails with `SeqExhausted` at the end
/// of the space, and with `BufferTooSmall` (without consuming a number) if `out` is short.
pub fn encapsulate<A: AeadBackend>(
    sa: &OutboundSa<A>,
    inner: &[u8],
    out: &mut [u8],
) -> Result<usize, EspError> {
    next_header_for(inner)?;
    if out.len() < esp_len(inner.len()) {
        return Err(EspError::BufferTooSmall);
    }
    out[PAYLOAD_OFFSET..PAYLOAD_OFFSET + inner.len()].copy_from_slice(inner);
    encapsulate_in_place(sa, out, inner.len())
}

/// Decapsulate the ESP packet `esp` (from the SPI to the end of the ICV) in place. On success
/// the inner packet is `esp[result.inner]`; the replay window has recorded the packet.
/// On any error the replay window is unchanged. The window is locked only around the check
/// and the commit, so several threads may open packets of one SA at once.
pub fn decapsulate<A: AeadBackend>(
    sa: &InboundSa<A>,
    esp: &mut [u8],
) -> Result<Decapsulated, EspError> {
    if esp.len() < MIN_ESP_LEN {
        return Err(EspError::Truncated);
    }
    let ct_len = esp.len() - PAYLOAD_OFFSET - ICV_LEN;
    if !ct_len.is_multiple_of(4) {
        return Err(EspError::BadLength);
    }
    let spi = u32::from_be_bytes([esp[0], esp[1], esp[2], esp[3]]);
    if spi != sa.spi.get() {
        return Err(EspError::WrongSpi);
    }
    let wire_seq = u32::from_be_bytes([esp[4], esp[5], esp[6], esp[7]]);
    let candidate = sa.lock_window().check(wire_seq)?;
    let seq = candidate.seq();

    let mut iv = [0u8; IV_LEN];
    iv.copy_from_slice(&esp[8..PAYLOAD_OFFSET]);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&esp[esp.len() - ICV_LEN..]);
    let (a, alen) = aad(spi, seq, sa.esn);
    let n = nonce(&sa.salt, &iv);
    let ct = &mut esp[PAYLOAD_OFFSET..PAYLOAD_OFFSET + ct_len];
    sa.aead
        .open_in_place(&n, &a[..alen], ct, &tag)
        .map_err(|_| EspError::BadIcv)?;

    // ct_len >= 4 here (at least 2 by MIN_ESP_LEN, and a multiple of 4).
    let pad = usize::from(ct[ct_len - 2]);
    let next_header = ct[ct_len - 1];
    if pad + 2 > ct_len {
        return Err(EspError::BadPadding);
    }
    let inner_len = ct_len - 2 - pad;
    let padding_ok = ct[inner_len..inner_len + pad]
        .iter()
        .enumerate()
        .all(|(i, &b)| usize::from(b) == i + 1);
    if !padding_ok {
        return Err(EspError::BadPadding);
    }
    // Re-checked under the lock: a copy of this packet opened meanwhile on another queue
    // made this candidate stale, and it is refused as a replay.
    sa.lock_window().commit(candidate)?;
    Ok(Decapsulated {
        inner: PAYLOAD_OFFSET..PAYLOAD_OFFSET + inner_len,
        next_header,
        seq,
    })
}
