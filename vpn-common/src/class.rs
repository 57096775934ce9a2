//! What the classifier decides about a received frame, and where it was received.

/// The class of a frame received on an interface, as decided by the XDP classifier.
///
/// The discriminants index the counter array, so they are dense and stable.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketClass {
    /// IKE on UDP port 500 (RFC 7296 section 2).
    Ike = 0,
    /// IKE on UDP port 4500 behind the four-byte non-ESP marker (RFC 3948 section 2.2).
    IkeNatT = 1,
    /// ESP encapsulated in UDP port 4500, non-zero SPI (RFC 3948 section 2.1).
    EspInUdp = 2,
    /// ESP as IP protocol 50 (RFC 4303).
    Esp = 3,
    /// NAT-keepalive: a single 0xFF byte on UDP port 4500 (RFC 3948 section 2.3).
    NatKeepalive = 4,
    /// An IP fragment, the first included: what it carries is known only after reassembly.
    Fragment = 5,
    /// Any other IPv4 or IPv6 packet.
    Plain = 6,
    /// Not IP at all (ARP, LLDP, ...).
    NonIp = 7,
    /// Claimed lengths that do not fit the frame, or fields no valid packet has.
    Malformed = 8,
}

impl PacketClass {
    /// Number of classes; the size of one interface role's slice of the counter array.
    pub const COUNT: usize = 9;

    /// Every class, in discriminant order.
    pub const ALL: [PacketClass; Self::COUNT] = [
        PacketClass::Ike,
        PacketClass::IkeNatT,
        PacketClass::EspInUdp,
        PacketClass::Esp,
        PacketClass::NatKeepalive,
        PacketClass::Fragment,
        PacketClass::Plain,
        PacketClass::NonIp,
        PacketClass::Malformed,
    ];

    /// Stable name used in status output and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            PacketClass::Ike => "ike",
            PacketClass::IkeNatT => "ike_natt",
            PacketClass::EspInUdp => "esp_in_udp",
            PacketClass::Esp => "esp",
            PacketClass::NatKeepalive => "nat_keepalive",
            PacketClass::Fragment => "fragment",
            PacketClass::Plain => "plain",
            PacketClass::NonIp => "non_ip",
            PacketClass::Malformed => "malformed",
        }
    }
}

/// Which side of the router an interface is on; each role has its own XDP entry point.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InterfaceRole {
    /// Internet-facing: IKE and ESP arrive here.
    Wan = 0,
    /// Site-facing: clear traffic to be tunnelled arrives here.
    Lan = 1,
}

impl InterfaceRole {
    /// Number of roles.
    pub const COUNT: usize = 2;

    /// Every role, in discriminant order.
    pub const ALL: [InterfaceRole; Self::COUNT] = [InterfaceRole::Wan, InterfaceRole::Lan];

    /// Stable name used in status output and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            InterfaceRole::Wan => "wan",
            InterfaceRole::Lan => "lan",
        }
    }
}
