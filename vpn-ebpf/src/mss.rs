//! TCP MSS clamping (RFC 879, RFC 6691) for packets entering a tunnel, so that TCP never builds
//! segments the tunnel would have to fragment: the MSS option of a SYN or SYN-ACK is lowered to
//! the tunnel's limit and the TCP checksum fixed incrementally (RFC 1624). Runs in XDP on LAN
//! ingress and in the crypto worker on decrypted traffic (same code).

use crate::packet::PacketBytesMut;

const IPPROTO_TCP: u8 = 6;
const TCP_MIN_HLEN: usize = 20;
const TCP_FLAG_SYN: u8 = 0x02;
const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;
/// At most 40 bytes of options; one iteration per option, NOPs included.
const MAX_OPTIONS: usize = 40;

/// What clamping did to a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clamp {
    /// Not a TCP SYN (or SYN-ACK) in a well-formed IPv4 packet: untouched.
    NotSyn,
    /// A SYN whose MSS was already at or below the limit, or that carries none.
    Unchanged,
    /// The MSS was lowered from the first value to the second.
    Lowered(u16, u16),
}

/// Clamps the MSS of a TCP SYN or SYN-ACK in the IPv4 packet at `l3` to `max_mss`.
#[inline(always)]
pub fn clamp_ipv4<P: PacketBytesMut + ?Sized>(p: &mut P, l3: usize, max_mss: u16) -> Clamp {
    let Some(ip) = p.bytes::<20>(l3) else {
        return Clamp::NotSyn;
    };
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
    if ip[0] >> 4 != 4
        || ihl < 20
        || ip[9] != IPPROTO_TCP
        || fragment != 0
        || l3 + total_len > p.len()
    {
        return Clamp::NotSyn;
    }
    let l4 = l3 + ihl;
    let Some(tcp) = p.bytes::<TCP_MIN_HLEN>(l4) else {
        return Clamp::NotSyn;
    };
    if tcp[13] & TCP_FLAG_SYN == 0 {
        return Clamp::NotSyn;
    }
    let doff = usize::from(tcp[12] >> 4) * 4;
    if doff < TCP_MIN_HLEN || ihl + doff > total_len {
        return Clamp::NotSyn;
    }
    let options_end = l4 + doff;
    let mut off = l4 + TCP_MIN_HLEN;
    for _ in 0..MAX_OPTIONS {
        if off >= options_end {
            break;
        }
        let Some(kind) = p.u8_at(off) else {
            return Clamp::Unchanged;
        };
        match kind {
            OPT_END => break,
            OPT_NOP => off += 1,
            _ => {
                let Some(opt) = p.bytes::<2>(off) else {
                    return Clamp::Unchanged;
                };
                let len = usize::from(opt[1]);
                if len < 2 || off + len > options_end {
                    return Clamp::Unchanged;
                }
                if kind == OPT_MSS && len == 4 {
                    return lower(p, l4, off + 2, max_mss);
                }
                off += len;
            }
        }
    }
    Clamp::Unchanged
}

#[inline(always)]
fn lower<P: PacketBytesMut + ?Sized>(p: &mut P, l4: usize, at: usize, max_mss: u16) -> Clamp {
    let (Some(mss), Some(sum)) = (p.be16_at(at), p.be16_at(l4 + 16)) else {
        return Clamp::Unchanged;
    };
    if mss <= max_mss {
        return Clamp::Unchanged;
    }
    // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), in ones' complement arithmetic.
    let mut acc = u32::from(!sum) + u32::from(!mss) + u32::from(max_mss);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    let new_sum = !(acc as u16);
    if !p.write_bytes(at, max_mss.to_be_bytes()) {
        return Clamp::Unchanged;
    }
    if !p.write_bytes(l4 + 16, new_sum.to_be_bytes()) {
        // Cannot happen (the checksum was read above); restore the MSS to stay consistent.
        p.write_bytes(at, mss.to_be_bytes());
        return Clamp::Unchanged;
    }
    Clamp::Lowered(mss, max_mss)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Full TCP checksum over the IPv4 pseudo-header, for checking the incremental update.
    fn tcp_checksum(packet: &[u8]) -> u16 {
        let ihl = usize::from(packet[0] & 0x0f) * 4;
        let tcp = &packet[ihl..];
        let mut sum: u32 = 0;
        let mut add = |bytes: &[u8]| {
            for chunk in bytes.chunks(2) {
                let word = if chunk.len() == 2 {
                    u16::from_be_bytes([chunk[0], chunk[1]])
                } else {
                    u16::from_be_bytes([chunk[0], 0])
                };
                sum += u32::from(word);
            }
        };
        add(&packet[12..20]);
        add(&[0, IPPROTO_TCP]);
        add(&(tcp.len() as u16).to_be_bytes());
        let mut zeroed = tcp.to_vec();
        zeroed[16] = 0;
        zeroed[17] = 0;
        add(&zeroed);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    fn syn(flags: u8, options: &[u8]) -> Vec<u8> {
        let doff = 20 + options.len();
        assert_eq!(doff % 4, 0);
        let total = 20 + doff + 4;
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, IPPROTO_TCP, 0, 0];
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p.extend_from_slice(&[10, 1, 0, 10, 10, 2, 0, 10]);
        p.extend_from_slice(&[0x9c, 0x40, 0x14, 0x51, 0, 0, 0, 1, 0, 0, 0, 0]);
        p.push(((doff / 4) as u8) << 4);
        p.push(flags);
        p.extend_from_slice(&[0xfa, 0xf0, 0, 0, 0, 0]);
        p.extend_from_slice(options);
        p.extend_from_slice(b"data");
        let sum = tcp_checksum(&p);
        p[36..38].copy_from_slice(&sum.to_be_bytes());
        p
    }

    const MSS_1460: [u8; 4] = [OPT_MSS, 4, 0x05, 0xb4];

    #[test]
    fn lowers_the_mss_of_a_syn_and_keeps_the_checksum_valid() {
        let mut p = syn(TCP_FLAG_SYN, &MSS_1460);
        assert_eq!(clamp_ipv4(&mut p[..], 0, 1360), Clamp::Lowered(1460, 1360));
        assert_eq!(u16::from_be_bytes([p[42], p[43]]), 1360);
        assert_eq!(u16::from_be_bytes([p[36], p[37]]), tcp_checksum(&p));
    }

    #[test]
    fn finds_the_mss_behind_other_options_in_a_syn_ack() {
        // NOP, NOP, SACK-permitted, window scale, timestamps, then MSS.
        let mut options = vec![1, 1, 4, 2, 3, 3, 7, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1];
        options.extend_from_slice(&MSS_1460);
        options.extend_from_slice(&[1, 1]);
        let mut p = syn(TCP_FLAG_SYN | 0x10, &options);
        assert_eq!(clamp_ipv4(&mut p[..], 0, 1379), Clamp::Lowered(1460, 1379));
        assert_eq!(u16::from_be_bytes([p[36], p[37]]), tcp_checksum(&p));
    }

    #[test]
    fn leaves_small_mss_non_syn_and_other_protocols_alone() {
        let mut small = syn(TCP_FLAG_SYN, &[OPT_MSS, 4, 0x04, 0x00]);
        let before = small.clone();
        assert_eq!(clamp_ipv4(&mut small[..], 0, 1360), Clamp::Unchanged);
        assert_eq!(small, before);

        let mut ack = syn(0x10, &MSS_1460);
        assert_eq!(clamp_ipv4(&mut ack[..], 0, 1360), Clamp::NotSyn);

        let mut udp = syn(TCP_FLAG_SYN, &MSS_1460);
        udp[9] = 17;
        assert_eq!(clamp_ipv4(&mut udp[..], 0, 1360), Clamp::NotSyn);
    }

    #[test]
    fn malformed_options_and_truncation_never_write() {
        // An option claiming to run past the header, then the MSS.
        let mut bad = syn(TCP_FLAG_SYN, &[8, 40, 0, 0, 2, 4, 5, 0xb4]);
        let before = bad.clone();
        assert_eq!(clamp_ipv4(&mut bad[..], 0, 1360), Clamp::Unchanged);
        assert_eq!(bad, before);
        let full = syn(TCP_FLAG_SYN, &MSS_1460);
        // A frame shorter than the IP total length is never touched.
        for len in 0..full.len() {
            let mut cut = full[..len].to_vec();
            let copy = cut.clone();
            assert_eq!(
                clamp_ipv4(&mut cut[..], 0, 1360),
                Clamp::NotSyn,
                "cut to {len}"
            );
            assert_eq!(cut, copy);
        }
    }
}
