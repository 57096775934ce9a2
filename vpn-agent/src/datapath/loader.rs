//! Loads the embedded eBPF object, attaches its XDP entry points to the router's interfaces and
//! pins its maps for `status` and later tools.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, anyhow};
use aya::{Ebpf, EbpfLoader, programs::Xdp};
use vpn_common::{InterfaceRole, names};

use crate::{
    cli::XdpAttachMode,
    instance::{AttachedInterface, create_private_dir},
};

/// The XDP object built by build.rs for bpfel-unknown-none, with BTF.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vpn-ebpf"));

/// File names of the pinned maps inside an instance's pin folder.
pub const PINNED_MAPS: &[(&str, &str)] = &[
    (names::CLASS_COUNTERS, "class_counters"),
    (names::DATAPATH_EVENTS, "datapath_events"),
    (names::NAT_EVENTS, "nat_events"),
    (names::NAT_OUT, "nat_out"),
    (names::NAT_IN, "nat_in"),
    (names::NAT_RULES, "nat_rules"),
    (names::NAT_SETTINGS, "nat_settings"),
    (names::NAT_RESERVED_PORTS, "nat_reserved_ports"),
];

/// An interface to attach one of the XDP entry points to.
#[derive(Clone, Debug)]
pub struct AttachRequest {
    pub role: InterfaceRole,
    pub ifname: String,
    pub mode: XdpAttachMode,
}

/// The loaded datapath. Dropping it detaches the programs (their links close with the object);
/// [`Datapath::shutdown`] also removes the pins.
pub struct Datapath {
    ebpf: Ebpf,
    links: Vec<(&'static str, aya::programs::xdp::XdpLinkId)>,
    pin_dir: PathBuf,
    attached: Vec<AttachedInterface>,
}

impl Datapath {
    pub fn load(pin_dir: &Path, requests: &[AttachRequest]) -> anyhow::Result<Self> {
        let ebpf = load_unattached(&[])?;
        let mut datapath = Datapath {
            ebpf,
            links: Vec::new(),
            pin_dir: pin_dir.to_owned(),
            attached: Vec::new(),
        };
        for request in requests {
            datapath.attach(request)?;
        }
        datapath.pin_maps()?;
        Ok(datapath)
    }

    fn attach(&mut self, request: &AttachRequest) -> anyhow::Result<()> {
        let program = match request.role {
            InterfaceRole::Wan => names::XDP_WAN,
            InterfaceRole::Lan => names::XDP_LAN,
        };
        let ifindex = nix::net::if_::if_nametoindex(request.ifname.as_str())
            .with_context(|| format!("no interface named {:?}", request.ifname))?;
        let link = xdp_program(&mut self.ebpf, program)?
            .attach_to_if_index(ifindex, request.mode.to_aya())
            .with_context(|| {
                format!(
                    "attaching {program} to {} in {:?} mode",
                    request.ifname, request.mode
                )
            })?;
        tracing::info!(program, interface = %request.ifname, ifindex, mode = ?request.mode, "attached XDP program");
        self.links.push((program, link));
        self.attached.push(AttachedInterface {
            role: request.role.name().to_owned(),
            name: request.ifname.clone(),
            ifindex,
            mode: request.mode,
        });
        Ok(())
    }

    fn pin_maps(&mut self) -> anyhow::Result<()> {
        create_private_dir(&self.pin_dir)?;
        for (map_name, file) in PINNED_MAPS {
            let map = self
                .ebpf
                .map(map_name)
                .ok_or_else(|| anyhow!("the eBPF object has no map {map_name}"))?;
            let path = self.pin_dir.join(file);
            map.pin(&path)
                .with_context(|| format!("pinning {map_name} at {}", path.display()))?;
        }
        Ok(())
    }

    /// The tunnel maps, for the control plane to write (taken once).
    pub fn tunnel_tables(&mut self) -> anyhow::Result<super::tables::TunnelTables> {
        super::tables::TunnelTables::take_from(&mut self.ebpf)
    }

    /// The NAT maps, for the NAT runtime (taken once).
    pub fn nat_maps(&mut self) -> anyhow::Result<super::nat::NatMaps> {
        super::nat::NatMaps::take_from(&mut self.ebpf)
    }

    pub fn attached(&self) -> &[AttachedInterface] {
        &self.attached
    }

    /// Detaches every program and removes the pinned maps.
    pub fn shutdown(mut self) -> anyhow::Result<()> {
        for (program, link) in std::mem::take(&mut self.links) {
            xdp_program(&mut self.ebpf, program)?
                .detach(link)
                .with_context(|| format!("detaching {program}"))?;
        }
        for interface in &self.attached {
            tracing::info!(interface = %interface.name, "detached XDP program");
        }
        remove_pins(&self.pin_dir)
    }
}

/// Loads the object with the named maps resized and verifies both XDP programs, attaching and
/// pinning nothing (`vpn-agent bench-xdp` times them with BPF_PROG_TEST_RUN this way).
pub fn load_unattached(max_entries: &[(&'static str, u32)]) -> anyhow::Result<Ebpf> {
    let mut loader = EbpfLoader::new();
    for (map, size) in max_entries {
        loader.map_max_entries(map, *size);
    }
    let mut ebpf = loader
        .load(EBPF_OBJECT)
        .context("loading the eBPF object into the kernel")?;
    for program in [names::XDP_WAN, names::XDP_LAN] {
        xdp_program(&mut ebpf, program)?
            .load()
            .with_context(|| format!("verifying XDP program {program}"))?;
    }
    Ok(ebpf)
}

fn xdp_program<'a>(ebpf: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut Xdp> {
    ebpf.program_mut(name)
        .ok_or_else(|| anyhow!("the eBPF object has no program {name}"))?
        .try_into()
        .with_context(|| format!("{name} is not an XDP program"))
}

/// Removes the pins this agent creates, then the folder if that left it empty. Pins left by a
/// crashed agent are removed the same way before a new one starts.
pub fn remove_pins(pin_dir: &Path) -> anyhow::Result<()> {
    for (_, file) in PINNED_MAPS {
        let path = pin_dir.join(file);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("unpinning {}", path.display())),
        }
    }
    match fs::remove_dir(pin_dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", pin_dir.display())),
    }
}
