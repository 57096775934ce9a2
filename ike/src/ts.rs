//! Traffic selector negotiation (RFC 7296 section 2.9).
//!
//! The responder narrows: each proposed selector is intersected with each of its configured
//! ones (addresses, ports and protocol), keeping the non-empty intersections; nothing left on
//! either side is TS_UNACCEPTABLE. The initiator accepts a reply only if every returned
//! selector lies inside what it proposed. The `0.0.0.0/0` pair intersects to itself.

use std::net::IpAddr;

use crate::codec::{self, AddressRange};
use crate::config::TrafficSelector;

/// To the wire form.
#[must_use]
pub fn to_payload(ts: &[TrafficSelector]) -> codec::TrafficSelectors {
    codec::TrafficSelectors {
        selectors: ts
            .iter()
            .map(|t| codec::TrafficSelector {
                ip_protocol: t.protocol,
                start_port: t.start_port,
                end_port: t.end_port,
                range: match (t.start, t.end) {
                    (IpAddr::V4(start), IpAddr::V4(end)) => AddressRange::V4 { start, end },
                    (IpAddr::V6(start), IpAddr::V6(end)) => AddressRange::V6 { start, end },
                    // validate() refuses mixed families; send an empty v4 range if it slips.
                    _ => AddressRange::V4 {
                        start: std::net::Ipv4Addr::BROADCAST,
                        end: std::net::Ipv4Addr::UNSPECIFIED,
                    },
                },
            })
            .collect(),
    }
}

/// From the wire form; selectors of unknown types are skipped.
#[must_use]
pub fn from_payload(ts: &codec::TrafficSelectors) -> Vec<TrafficSelector> {
    ts.selectors
        .iter()
        .filter_map(|s| {
            let (start, end) = match s.range {
                AddressRange::V4 { start, end } => (IpAddr::V4(start), IpAddr::V4(end)),
                AddressRange::V6 { start, end } => (IpAddr::V6(start), IpAddr::V6(end)),
                AddressRange::Other { .. } => return None,
            };
            Some(TrafficSelector {
                protocol: s.ip_protocol,
                start_port: s.start_port,
                end_port: s.end_port,
                start,
                end,
            })
        })
        .collect()
}

fn key(a: IpAddr) -> (u8, u128) {
    match a {
        IpAddr::V4(v) => (4, u128::from(u32::from(v))),
        IpAddr::V6(v) => (6, u128::from(v)),
    }
}

/// The intersection of two selectors, if any.
#[must_use]
pub fn intersect(a: &TrafficSelector, b: &TrafficSelector) -> Option<TrafficSelector> {
    let protocol = match (a.protocol, b.protocol) {
        (0, p) | (p, 0) => p,
        (p, q) if p == q => p,
        _ => return None,
    };
    let start_port = a.start_port.max(b.start_port);
    let end_port = a.end_port.min(b.end_port);
    if start_port > end_port {
        return None;
    }
    let (fa, sa) = key(a.start);
    let (fb, sb) = key(b.start);
    let (fae, ea) = key(a.end);
    let (fbe, eb) = key(b.end);
    if fa != fb || fa != fae || fb != fbe {
        return None;
    }
    let start = if sa >= sb { a.start } else { b.start };
    let end_addr = if ea <= eb { a.end } else { b.end };
    if sa.max(sb) > ea.min(eb) {
        return None;
    }
    Some(TrafficSelector {
        protocol,
        start_port,
        end_port,
        start,
        end: end_addr,
    })
}

/// Whether `inner` lies inside `outer`.
#[must_use]
pub fn contains(outer: &TrafficSelector, inner: &TrafficSelector) -> bool {
    intersect(outer, inner).is_some_and(|i| i == *inner)
}

/// Responder narrowing of `proposed` against `configured`; empty means unacceptable.
#[must_use]
pub fn narrow(
    proposed: &[TrafficSelector],
    configured: &[TrafficSelector],
) -> Vec<TrafficSelector> {
    let mut out = Vec::new();
    for p in proposed {
        for c in configured {
            if let Some(i) = intersect(p, c)
                && !out.contains(&i)
            {
                out.push(i);
            }
        }
    }
    out
}

/// Initiator check: every returned selector lies inside one we proposed.
#[must_use]
pub fn within(returned: &[TrafficSelector], proposed: &[TrafficSelector]) -> bool {
    !returned.is_empty()
        && returned
            .iter()
            .all(|r| proposed.iter().any(|p| contains(p, r)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn narrowing() {
        let any = TrafficSelector::any_v4();
        let net = TrafficSelector::v4_prefix(Ipv4Addr::new(10, 1, 0, 0), 16);
        assert_eq!(narrow(&[any], &[net]), vec![net]);
        assert_eq!(narrow(&[any], &[any]), vec![any]);
        let other = TrafficSelector::v4_prefix(Ipv4Addr::new(10, 2, 0, 0), 16);
        assert!(narrow(&[net], &[other]).is_empty());
        assert!(within(&[net], &[any]));
        assert!(!within(&[any], &[net]));
        let tcp = TrafficSelector { protocol: 6, ..net };
        assert_eq!(intersect(&tcp, &any), Some(tcp));
        let udp = TrafficSelector {
            protocol: 17,
            ..net
        };
        assert_eq!(intersect(&tcp, &udp), None);
    }
}
