//! The tunnel datapath at run time: one crypto worker (receive queue 0 of the WAN and LAN
//! interfaces), its SAs, and the BPF map entries that steer traffic to it.
//!
//! Install order follows make-before-break: the worker learns an SA before any map entry
//! points at it; the tunnel's routes are written last.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
};

use anyhow::{Context as _, anyhow};
use vpn_common::tunnel::{Encapsulation, InboundSa, TunnelOut};
use vpn_esp::{InboundSa as EspInbound, OutboundSa as EspOutbound};

use super::{
    esp_sa::{Open, Seal},
    loader::Datapath,
    sa_table::{InboundEntry, OutboundEntry, SaCounters, SaEntry, Selectors},
    static_tunnels::{EncapsulationSpec, StaticTunnel},
    tables::TunnelTables,
    worker::{Control, Worker, WorkerReport},
    xsk::XskPair,
};

/// Queue served by the single worker; multi-queue NICs need one worker per queue (to come).
const QUEUE: u32 = 0;

/// What was written for one tunnel, so it can be taken out again in reverse order.
struct Installed {
    index: u32,
    out_slot: u32,
    in_slot: u32,
    in_spi: u32,
    routes: Vec<ipnet::Ipv4Net>,
}

pub struct TunnelRuntime {
    tables: TunnelTables,
    installed: Vec<Installed>,
    control: mpsc::Sender<Control>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
    report: Arc<Mutex<WorkerReport>>,
}

impl TunnelRuntime {
    pub fn start(datapath: &mut Datapath, tunnels: Vec<StaticTunnel>) -> anyhow::Result<Self> {
        let ifindex = |role: &str| {
            datapath
                .attached()
                .iter()
                .find(|i| i.role == role)
                .map(|i| i.ifindex)
                .ok_or_else(|| anyhow!("tunnels need a {role} interface"))
        };
        let (wan, lan) = (ifindex("wan")?, ifindex("lan")?);
        let mut tables = datapath.tunnel_tables()?;
        let xsk = XskPair::bind(wan, lan, QUEUE)?;
        tables.register_sockets(QUEUE, &xsk.wan.fd(), &xsk.lan.fd())?;

        let (control, receiver) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let report = Arc::new(Mutex::new(WorkerReport::default()));
        let worker = Worker::new(xsk, receiver, Arc::clone(&stop), Arc::clone(&report))?;
        let handle = std::thread::Builder::new()
            .name(format!("crypto-q{QUEUE}"))
            .spawn(move || worker.run())
            .context("starting the crypto worker")?;
        let mut runtime = TunnelRuntime {
            tables,
            installed: Vec::new(),
            control,
            stop,
            worker: Some(handle),
            report,
        };
        for (index, tunnel) in tunnels.into_iter().enumerate() {
            runtime.install(index as u32, tunnel)?;
        }
        Ok(runtime)
    }

    fn install(&mut self, index: u32, tunnel: StaticTunnel) -> anyhow::Result<()> {
        let (out_slot, in_slot) = (2 * index, 2 * index + 1);
        let encapsulation = match tunnel.encapsulation {
            EncapsulationSpec::Udp => Encapsulation::EspInUdp,
            EncapsulationSpec::Esp => Encapsulation::Esp,
        };
        let (out_spi, in_spi) = (tunnel.outbound.spi.get(), tunnel.inbound.spi.get());
        let send = |entry| {
            self.control
                .send(entry)
                .map_err(|_| anyhow!("the crypto worker has stopped"))
        };
        send(Control::Install {
            slot: in_slot,
            entry: SaEntry::Inbound(InboundEntry {
                name: tunnel.name.clone(),
                spi: in_spi,
                esp: Box::new(Open(EspInbound::new(tunnel.inbound))),
                selectors: Selectors {
                    local: tunnel.local_prefixes.clone(),
                    remote: tunnel.remote_prefixes.clone(),
                },
                mss: tunnel.mss,
                counters: SaCounters::default(),
            }),
        })?;
        send(Control::Install {
            slot: out_slot,
            entry: SaEntry::Outbound(OutboundEntry {
                name: tunnel.name.clone(),
                spi: out_spi,
                esp: Box::new(Seal(EspOutbound::new(tunnel.outbound))),
                local_address: tunnel.local_address,
                mtu: tunnel.mtu,
                counters: SaCounters::default(),
            }),
        })?;

        self.tables.set_inbound(
            in_spi,
            InboundSa {
                sa_slot: in_slot,
                encapsulation: encapsulation as u8,
                _pad: [0; 3],
            },
        )?;
        // XDP checks one local prefix; with several, the worker's selectors still apply on the
        // way in, and the LAN side accepts any source for this tunnel's routes.
        let (local_prefix, local_prefix_len) = match tunnel.local_prefixes.as_slice() {
            [one] => (one.network().octets(), one.prefix_len()),
            _ => ([0; 4], 0),
        };
        self.tables.set_tunnel(
            index,
            TunnelOut {
                active: 1,
                sa_slot: out_slot,
                local_addr: tunnel.local_address.octets(),
                peer_addr: tunnel.peer_address.octets(),
                local_prefix,
                local_prefix_len,
                encapsulation: encapsulation as u8,
                mss: tunnel.mss,
            },
        )?;
        for prefix in &tunnel.remote_prefixes {
            self.tables.add_route(*prefix, index)?;
        }
        self.installed.push(Installed {
            index,
            out_slot,
            in_slot,
            in_spi,
            routes: tunnel.remote_prefixes.clone(),
        });
        tracing::info!(
            tunnel = %tunnel.name,
            peer = %tunnel.peer_address,
            spi_out = format_args!("{out_spi:#010x}"),
            spi_in = format_args!("{in_spi:#010x}"),
            ?encapsulation,
            "static tunnel installed"
        );
        Ok(())
    }

    pub fn report(&self) -> WorkerReport {
        self.report.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Takes the tunnels out of the datapath: routes first (so nothing new is steered to the
    /// worker), then the tunnel and inbound SA entries, then the worker's SAs, whose keys are
    /// zeroized as they are dropped.
    fn uninstall_all(&mut self) {
        for tunnel in std::mem::take(&mut self.installed) {
            let steps = tunnel
                .routes
                .iter()
                .try_for_each(|prefix| self.tables.remove_route(*prefix))
                .and_then(|()| self.tables.deactivate_tunnel(tunnel.index))
                .and_then(|()| self.tables.remove_inbound(tunnel.in_spi));
            if let Err(err) = steps {
                tracing::warn!(error = %format!("{err:#}"), "removing a tunnel from the maps");
            }
            for slot in [tunnel.out_slot, tunnel.in_slot] {
                let _ = self.control.send(Control::Remove { slot });
            }
        }
    }

    pub fn stop(mut self) {
        self.uninstall_all();
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.worker.take() {
            let _ = handle.join();
        }
    }
}
