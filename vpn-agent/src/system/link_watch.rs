//! Notifications of link, address and route changes (rtnetlink multicast groups), so the agent
//! re-reads the state it depends on when the kernel says it changed, not on a timer.

use anyhow::Context as _;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

pub struct LinkWatch {
    socket: Socket,
    buffer: Vec<u8>,
}

impl LinkWatch {
    pub fn open() -> anyhow::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE).context("opening a netlink socket")?;
        let groups =
            (libc::RTMGRP_LINK | libc::RTMGRP_IPV4_IFADDR | libc::RTMGRP_IPV4_ROUTE) as u32;
        socket
            .bind(&SocketAddr::new(0, groups))
            .context("subscribing to link, address and route notifications")?;
        socket
            .set_non_blocking(true)
            .context("netlink socket non-blocking")?;
        Ok(LinkWatch {
            socket,
            buffer: vec![0; 64 * 1024],
        })
    }

    /// Whether any link, IPv4 address or IPv4 route changed since the last call. The messages themselves
    /// are not needed: the caller re-reads what it depends on. A lost notification (the
    /// socket's buffer overflowed) counts as a change.
    pub fn changed(&mut self) -> bool {
        let mut changed = false;
        loop {
            match self.socket.recv(&mut &mut self.buffer[..], 0) {
                Ok(0) => return changed,
                Ok(_) => changed = true,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return changed,
                Err(err) => {
                    tracing::debug!(error = %err, "netlink notifications lost: re-reading the interfaces");
                    return true;
                }
            }
        }
    }
}
