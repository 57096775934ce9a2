//! Map keys and values of the tunnel datapath, and the metadata the XDP programs hand to the
//! AF_XDP crypto workers in front of each redirected frame.

/// Most tunnel slots (and SA slots) one datapath holds.
pub const MAX_TUNNELS: u32 = 1024;
/// Most inbound SAs: two per tunnel, so a rekey's new SA and the lingering old one coexist.
pub const MAX_INBOUND_SAS: u32 = 2 * MAX_TUNNELS;
/// Most IPv4 destination prefixes routed into tunnels.
pub const MAX_TUNNEL_ROUTES: u32 = 16 * 1024;
/// Most AF_XDP sockets per interface (one per receive queue).
pub const MAX_QUEUES: u32 = 64;

/// How ESP leaves a tunnel: as IP protocol 50, or inside UDP port 4500 (RFC 3948).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encapsulation {
    Esp = 0,
    EspInUdp = 1,
}

/// Value of the inbound SA map, keyed by the SPI in network byte order as found on the wire.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboundSa {
    /// The worker's slot for this SA's keys and replay window.
    pub sa_slot: u32,
    /// [`Encapsulation`] the SA was negotiated with; a packet arriving the other way is dropped.
    pub encapsulation: u8,
    pub _pad: [u8; 3],
}

/// Value of the tunnel array: where a tunnel's ESP goes and which SA seals it now.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelOut {
    /// 0 while the tunnel has no outbound SA: matching traffic is dropped, never sent clear.
    pub active: u32,
    /// The worker's slot for the current outbound SA (switched last in a make-before-break rekey).
    pub sa_slot: u32,
    /// Outer source address (network byte order), the router's WAN address.
    pub local_addr: [u8; 4],
    /// Outer destination address (network byte order), the peer.
    pub peer_addr: [u8; 4],
    /// Local traffic selector as a prefix (network order) and length; length 0 matches any
    /// source (route-based tunnels with 0.0.0.0/0 selectors).
    pub local_prefix: [u8; 4],
    pub local_prefix_len: u8,
    pub encapsulation: u8,
    /// TCP MSS that SYNs entering this tunnel are clamped to (0: no clamping).
    pub mss: u16,
}

/// Key of the LPM trie of tunnel routes: prefix length, then the IPv4 prefix in network order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteKey {
    pub prefix_len: u32,
    pub addr: [u8; 4],
}

/// What the worker is asked to do with a redirected frame.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XskJob {
    /// ESP from the WAN: verify, decrypt, check selectors, forward the inner packet.
    Decrypt = 1,
    /// Clear traffic from the LAN for a tunnel: encrypt and send to the peer.
    Encrypt = 2,
}

/// Written by XDP into the frame's metadata area (bpf_xdp_adjust_meta), immediately before the
/// Ethernet header; AF_XDP delivers it in the UMEM frame in copy and zero-copy mode alike.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XskMeta {
    /// [`XSK_META_MAGIC`]: tells a frame with metadata from one without.
    pub magic: u32,
    /// [`XskJob`] as u8.
    pub job: u8,
    /// 1 if `ifindex` and the MACs hold a usable next hop (bpf_fib_lookup succeeded).
    pub fib_ok: u8,
    pub _pad: [u8; 2],
    /// The worker slot of the SA to use: inbound (Decrypt) or the tunnel's current outbound
    /// SA (Encrypt), so that switching `TunnelOut::sa_slot` switches the traffic at once.
    pub slot: u32,
    /// Encrypt: egress interface for the ESP packet.
    pub ifindex: u32,
    /// Encrypt: next-hop and source MAC for the ESP packet's Ethernet header.
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
}

/// "VPNM".
pub const XSK_META_MAGIC: u32 = 0x5650_4e4d;
/// Metadata size: a multiple of four, at most 32 bytes, as bpf_xdp_adjust_meta requires.
pub const XSK_META_LEN: usize = core::mem::size_of::<XskMeta>();
const _: () = assert!(XSK_META_LEN.is_multiple_of(4) && XSK_META_LEN <= 32);

/// Why the tunnel datapath dropped or diverted a frame; indexes the per-CPU reason counters.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatapathEvent {
    /// Inbound ESP with a known SPI handed to a worker.
    InboundToWorker = 0,
    /// Inbound ESP whose SPI no SA has: passed to the kernel (which drops ESP here).
    UnknownSpi = 1,
    /// Inbound ESP arriving raw for a UDP-encapsulated SA or the other way round: dropped.
    WrongEncapsulation = 2,
    /// LAN traffic for a tunnel handed to a worker.
    OutboundToWorker = 3,
    /// LAN traffic for a tunnel with no outbound SA: dropped, never forwarded in the clear.
    TunnelDown = 4,
    /// No worker socket on this queue: dropped (outbound) or passed (inbound).
    NoWorker = 5,
    /// No next hop towards the peer in the FIB: the worker sends through the kernel instead.
    FibMiss = 6,
    /// Metadata could not be reserved in front of the frame: dropped.
    NoMetaRoom = 7,
}

impl DatapathEvent {
    pub const COUNT: usize = 8;
    pub const ALL: [DatapathEvent; Self::COUNT] = [
        DatapathEvent::InboundToWorker,
        DatapathEvent::UnknownSpi,
        DatapathEvent::WrongEncapsulation,
        DatapathEvent::OutboundToWorker,
        DatapathEvent::TunnelDown,
        DatapathEvent::NoWorker,
        DatapathEvent::FibMiss,
        DatapathEvent::NoMetaRoom,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            DatapathEvent::InboundToWorker => "inbound_to_worker",
            DatapathEvent::UnknownSpi => "unknown_spi",
            DatapathEvent::WrongEncapsulation => "wrong_encapsulation",
            DatapathEvent::OutboundToWorker => "outbound_to_worker",
            DatapathEvent::TunnelDown => "tunnel_down",
            DatapathEvent::NoWorker => "no_worker",
            DatapathEvent::FibMiss => "fib_miss",
            DatapathEvent::NoMetaRoom => "no_meta_room",
        }
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY (all): #[repr(C)], only integer and byte-array fields, explicit padding, every bit
    // pattern valid.
    unsafe impl aya::Pod for super::InboundSa {}
    unsafe impl aya::Pod for super::TunnelOut {}
    unsafe impl aya::Pod for super::RouteKey {}
}
