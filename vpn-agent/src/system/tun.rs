//! Layer-3 TUN devices: the interface each tunnel shows to the router's own traffic.
//!
//! XDP sees only what arrives on an interface, never what the host itself sends, so packets the
//! router originates towards a remote site are routed into the tunnel's TUN device, where the
//! crypto worker reads and seals them. Without `IFF_PERSIST` the device vanishes with its file
//! descriptor (and the kernel removes the routes through it), so a crashed agent leaves none.

use std::{
    ffi::CString,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

use anyhow::{Context as _, bail};

/// An open TUN device (no packet information header: reads and writes are bare IP packets).
#[derive(Debug)]
pub struct TunDevice {
    pub name: String,
    pub ifindex: u32,
    pub fd: OwnedFd,
}

impl TunDevice {
    /// Creates the device `name` (at most 15 bytes), non-blocking.
    pub fn create(name: &str) -> anyhow::Result<Self> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            bail!("interface name {name:?} is empty or longer than 15 bytes");
        }
        // SAFETY: a plain open(2) of a NUL-terminated path; the result is checked.
        let raw = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error()).context("opening /dev/net/tun");
        }
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: all-zero is a valid ifreq.
        let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
        for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
            *slot = byte as libc::c_char;
        }
        request.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF takes a pointer to an ifreq that lives across the call.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut request) } < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("creating the TUN device {name}"));
        }
        let c_name = CString::new(name).context("interface name")?;
        // SAFETY: a NUL-terminated name; 0 means not found.
        let ifindex = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
        if ifindex == 0 {
            bail!("the TUN device {name} vanished right after its creation");
        }
        Ok(TunDevice {
            name: name.to_owned(),
            ifindex,
            fd,
        })
    }
}

/// The TUN device name for a tunnel: `vt-` and the tunnel's name, shortened with a hash of it
/// when that would exceed the kernel's 15 bytes.
pub fn device_name(tunnel: &str) -> String {
    const PREFIX: &str = "vt-";
    if PREFIX.len() + tunnel.len() < libc::IFNAMSIZ {
        return format!("{PREFIX}{tunnel}");
    }
    // FNV-1a: stable across runs and builds (std's hasher is not).
    let hash = tunnel.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let head: String = tunnel.chars().take(7).collect();
    format!("{PREFIX}{head}{:04x}", hash & 0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_fit_and_differ() {
        assert_eq!(device_name("aws-t1"), "vt-aws-t1");
        let long = device_name("frankfurt-to-tokyo");
        let other = device_name("frankfurt-to-osaka");
        assert!(long.len() < libc::IFNAMSIZ, "{long}");
        assert!(long.starts_with("vt-frankfu"), "{long}");
        assert_ne!(long, other);
        assert_eq!(device_name("frankfurt-to-tokyo"), long, "stable");
    }
}
