//! The configuration's `[[nat]]` rules as entries of the XDP rule array: one entry per
//! (rule, destination prefix), with the out interface resolved to its index and address.

use std::net::Ipv4Addr;

use ipnet::IpNet;
use vpn_common::nat::{MAX_NAT_RULES, NatRuleEntry};
use vpn_config::{NatAction, NatRule};

/// An interface as a rule needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutInterface {
    pub ifindex: u32,
    /// The masquerade source: the interface's (first) IPv4 address, as MASQUERADE takes the
    /// out interface's primary address.
    pub addr: Ipv4Addr,
}

/// What could not become an entry (reported once, the rest still applies).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleProblem {
    #[error("nat[{0}]: IPv6 prefixes are not translated (IPv4 masquerade only)")]
    Ipv6(usize),
    #[error("nat[{0}]: interface {1} has no IPv4 address (yet): the rule waits for one")]
    NoAddress(usize, String),
    #[error("more than {MAX_NAT_RULES} (rule, destination) pairs: the rest are ignored")]
    TooMany,
}

/// The entries for `rules`, given how to resolve an interface name.
pub fn entries(
    rules: &[NatRule],
    resolve: impl Fn(&str) -> Option<OutInterface>,
) -> (Vec<NatRuleEntry>, Vec<RuleProblem>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        match rule.action {
            NatAction::Masquerade => {}
        }
        let IpNet::V4(from) = rule.from else {
            problems.push(RuleProblem::Ipv6(i));
            continue;
        };
        let Some(out) = resolve(&rule.out) else {
            problems.push(RuleProblem::NoAddress(i, rule.out.clone()));
            continue;
        };
        for to in &rule.to {
            let IpNet::V4(to) = to else {
                problems.push(RuleProblem::Ipv6(i));
                continue;
            };
            if entries.len() == MAX_NAT_RULES as usize {
                problems.push(RuleProblem::TooMany);
                return (entries, problems);
            }
            entries.push(NatRuleEntry {
                from: from.network().octets(),
                to: to.network().octets(),
                from_len: from.prefix_len(),
                to_len: to.prefix_len(),
                valid: 1,
                _pad: 0,
                out_ifindex: out.ifindex,
                out_addr: out.addr.octets(),
            });
        }
    }
    (entries, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(from: &str, to: &[&str], out: &str) -> NatRule {
        NatRule {
            action: NatAction::Masquerade,
            from: from.parse().unwrap(),
            to: to.iter().map(|t| t.parse().unwrap()).collect(),
            out: out.into(),
        }
    }

    #[test]
    fn one_entry_per_destination_with_the_interface_address() {
        // Seed 002's rule.
        let rules = [rule(
            "172.16.168.0/24",
            &["10.110.0.0/16", "10.120.0.0/16"],
            "ens6",
        )];
        let ens6 = OutInterface {
            ifindex: 3,
            addr: Ipv4Addr::new(10, 100, 0, 5),
        };
        let (entries, problems) = entries(&rules, |name| (name == "ens6").then_some(ens6));
        assert!(problems.is_empty());
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].from, [172, 16, 168, 0]);
        assert_eq!(entries[0].from_len, 24);
        assert_eq!(entries[1].to, [10, 120, 0, 0]);
        assert_eq!(entries[1].to_len, 16);
        assert!(entries.iter().all(|e| e.valid == 1 && e.out_ifindex == 3));
        assert!(entries.iter().all(|e| e.out_addr == [10, 100, 0, 5]));
    }

    #[test]
    fn unresolvable_and_ipv6_rules_are_reported_and_skipped() {
        let rules = [
            rule("fd00::/64", &["fd01::/64"], "ens6"),
            rule("10.1.0.0/24", &["10.2.0.0/24"], "missing"),
            rule("10.1.0.0/24", &["10.3.0.0/24", "fd02::/64"], "ens6"),
        ];
        let any = OutInterface {
            ifindex: 1,
            addr: Ipv4Addr::new(192, 0, 2, 1),
        };
        let (entries, problems) = entries(&rules, |name| (name == "ens6").then_some(any));
        assert_eq!(entries.len(), 1);
        assert_eq!(
            problems,
            [
                RuleProblem::Ipv6(0),
                RuleProblem::NoAddress(1, "missing".into()),
                RuleProblem::Ipv6(2)
            ]
        );
    }
}
