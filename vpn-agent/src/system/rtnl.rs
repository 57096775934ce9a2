//! A small synchronous rtnetlink client: one request, one acknowledgement (or one dump).
//!
//! The agent's changes to the kernel's routing are few and happen on its main loop, between
//! other work, so a blocking socket is simpler than an async connection. Messages are built
//! and parsed by `netlink-packet-route`; only the request/acknowledge loop is ours.

use std::net::Ipv4Addr;

use anyhow::{Context as _, anyhow, bail};
use ipnet::Ipv4Net;
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    link::{LinkAttribute, LinkFlags, LinkMessage},
    route::{
        RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
        RouteType,
    },
    rule::{RuleAction, RuleAttribute, RuleMessage},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// Where a route sends its traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteTarget {
    /// Out of this interface (a tunnel device), with this preferred source address.
    Device {
        ifindex: u32,
        source: Option<Ipv4Addr>,
    },
    /// Nowhere: the sender gets "no route to host" (fail closed).
    Unreachable,
}

/// A route in the table the agent owns, tagged with its protocol number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnedRoute {
    pub table: u32,
    pub protocol: u8,
    pub prefix: Ipv4Net,
    pub target: RouteTarget,
}

pub struct Rtnl {
    socket: Socket,
    sequence: u32,
}

impl Rtnl {
    pub fn open() -> anyhow::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE).context("opening a netlink socket")?;
        socket.bind_auto().context("binding the netlink socket")?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .context("connecting the netlink socket")?;
        // Lets a dump be filtered by the kernel (one table, not a full BGP table each time);
        // kernels without it ignore the filter and [`Rtnl::routes`] filters again.
        let _ = socket.set_netlink_get_strict_chk(true);
        Ok(Rtnl {
            socket,
            sequence: 0,
        })
    }

    /// Adds or replaces `route` (same table, prefix and metric).
    pub fn replace_route(&mut self, route: &OwnedRoute) -> anyhow::Result<()> {
        let message = route_message(route);
        self.request(
            RouteNetlinkMessage::NewRoute(message),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .with_context(|| format!("installing the kernel route {}", route.prefix))
    }

    pub fn delete_route(&mut self, route: &OwnedRoute) -> anyhow::Result<()> {
        let mut message = route_message(route);
        // The kernel matches on table, prefix and protocol; the target need not be given.
        message
            .attributes
            .retain(|a| matches!(a, RouteAttribute::Destination(_) | RouteAttribute::Table(_)));
        message.header.kind = RouteType::Unspec;
        message.header.scope = RouteScope::NoWhere;
        match self.request(RouteNetlinkMessage::DelRoute(message), 0) {
            Err(err) if errno(&err) == Some(libc::ESRCH) => Ok(()),
            other => other.with_context(|| format!("removing the kernel route {}", route.prefix)),
        }
    }

    /// IPv4 routes of `table` tagged with `protocol` (left by an earlier run, say).
    pub fn routes(&mut self, table: u32, protocol: u8) -> anyhow::Result<Vec<Ipv4Net>> {
        let mut request = RouteMessage::default();
        request.header.address_family = AddressFamily::Inet;
        request.header.table = u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
        request.header.protocol = RouteProtocol::from(protocol);
        request.attributes = vec![RouteAttribute::Table(table)];
        let replies = self.dump(RouteNetlinkMessage::GetRoute(request))?;
        let mut found = Vec::new();
        for reply in replies {
            let RouteNetlinkMessage::NewRoute(route) = reply else {
                continue;
            };
            let in_table = route.attributes.contains(&RouteAttribute::Table(table))
                || u32::from(route.header.table) == table;
            if !in_table || u8::from(route.header.protocol) != protocol {
                continue;
            }
            let address = route.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(addr)) => Some(*addr),
                _ => None,
            });
            let prefix_len = route.header.destination_prefix_length;
            if let Ok(prefix) = Ipv4Net::new(address.unwrap_or(Ipv4Addr::UNSPECIFIED), prefix_len) {
                found.push(prefix);
            }
        }
        Ok(found)
    }

    /// Adds the policy rule "from all lookup `table`" at `priority`, unless it exists.
    pub fn add_rule(&mut self, table: u32, priority: u32, protocol: u8) -> anyhow::Result<()> {
        match self.request(
            RouteNetlinkMessage::NewRule(rule_message(table, priority, protocol)),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(err) if errno(&err) == Some(libc::EEXIST) => Ok(()),
            other => other.with_context(|| format!("adding the rule lookup {table}")),
        }
    }

    pub fn delete_rule(&mut self, table: u32, priority: u32, protocol: u8) -> anyhow::Result<()> {
        match self.request(
            RouteNetlinkMessage::DelRule(rule_message(table, priority, protocol)),
            0,
        ) {
            Err(err) if errno(&err) == Some(libc::ENOENT) => Ok(()),
            other => other.with_context(|| format!("removing the rule lookup {table}")),
        }
    }

    /// Sets an interface's MTU and brings it up.
    pub fn set_up(&mut self, ifindex: u32, mtu: u32) -> anyhow::Result<()> {
        let mut message = LinkMessage::default();
        message.header.index = ifindex;
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
        message.attributes = vec![LinkAttribute::Mtu(mtu)];
        self.request(RouteNetlinkMessage::SetLink(message), 0)
            .with_context(|| format!("setting ifindex {ifindex} up with MTU {mtu}"))
    }

    /// Sends one request and waits for its acknowledgement.
    fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> anyhow::Result<()> {
        let sequence = self.send(message, NLM_F_REQUEST | NLM_F_ACK | flags)?;
        loop {
            for reply in self.receive()? {
                if reply.header.sequence_number != sequence {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(error) => {
                        return match error.code {
                            None => Ok(()),
                            Some(code) => {
                                Err(anyhow!(std::io::Error::from_raw_os_error(-code.get())))
                            }
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(()),
                    _ => {}
                }
            }
        }
    }

    /// Sends a dump request and collects every reply until the end of the dump.
    fn dump(&mut self, message: RouteNetlinkMessage) -> anyhow::Result<Vec<RouteNetlinkMessage>> {
        let sequence = self.send(message, NLM_F_REQUEST | NLM_F_DUMP)?;
        let mut found = Vec::new();
        loop {
            for reply in self.receive()? {
                if reply.header.sequence_number != sequence {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::InnerMessage(inner) => found.push(inner),
                    NetlinkPayload::Done(_) => return Ok(found),
                    NetlinkPayload::Error(error) if error.code.is_some() => {
                        bail!("netlink dump failed: {}", error.raw_code())
                    }
                    _ => {}
                }
            }
        }
    }

    fn send(&mut self, message: RouteNetlinkMessage, flags: u16) -> anyhow::Result<u32> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buffer = vec![0; packet.buffer_len()];
        packet.serialize(&mut buffer);
        self.socket
            .send(&buffer, 0)
            .context("sending a netlink request")?;
        Ok(self.sequence)
    }

    /// One datagram's messages.
    fn receive(&mut self) -> anyhow::Result<Vec<NetlinkMessage<RouteNetlinkMessage>>> {
        let (buffer, _) = self
            .socket
            .recv_from_full()
            .context("reading a netlink reply")?;
        let mut messages = Vec::new();
        let mut offset = 0;
        while offset < buffer.len() {
            let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buffer[offset..])
                .map_err(|e| anyhow!("unreadable netlink reply: {e}"))?;
            let length = message.header.length as usize;
            messages.push(message);
            if length == 0 {
                break;
            }
            offset += (length + 3) & !3;
        }
        Ok(messages)
    }
}

fn errno(err: &anyhow::Error) -> Option<i32> {
    err.downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::raw_os_error)
}

fn route_message(route: &OwnedRoute) -> RouteMessage {
    let mut message = RouteMessage::default();
    message.header.address_family = AddressFamily::Inet;
    message.header.destination_prefix_length = route.prefix.prefix_len();
    message.header.table = u8::try_from(route.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    message.header.protocol = RouteProtocol::from(route.protocol);
    message.attributes = vec![
        RouteAttribute::Destination(RouteAddress::Inet(route.prefix.network())),
        RouteAttribute::Table(route.table),
    ];
    match route.target {
        RouteTarget::Device { ifindex, source } => {
            message.header.kind = RouteType::Unicast;
            message.header.scope = RouteScope::Link;
            message.attributes.push(RouteAttribute::Oif(ifindex));
            if let Some(source) = source {
                message
                    .attributes
                    .push(RouteAttribute::PrefSource(RouteAddress::Inet(source)));
            }
        }
        RouteTarget::Unreachable => {
            message.header.kind = RouteType::Unreachable;
            message.header.scope = RouteScope::Universe;
        }
    }
    message
}

fn rule_message(table: u32, priority: u32, protocol: u8) -> RuleMessage {
    let mut message = RuleMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.table = u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    message.header.action = RuleAction::ToTable;
    message.attributes = vec![
        RuleAttribute::Table(table),
        RuleAttribute::Priority(priority),
        RuleAttribute::Protocol(RouteProtocol::from(protocol)),
    ];
    message
}
