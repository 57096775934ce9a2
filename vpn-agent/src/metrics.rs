//! Prometheus metrics on a local address (`vpn-agent run --metrics 127.0.0.1:9469`): what
//! `vpn-agent status` shows, read on each scrape from the same sources (the pinned counter
//! maps, the worker's and the IKE thread's published state), in the OpenMetrics text format
//! of the official client crate.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::Context as _;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};
use vpn_common::{InterfaceRole, PacketClass};

use crate::{
    control::ike_report::IkeReport,
    datapath::{
        counters::{ClassCounters, read_pinned_events, read_pinned_nat},
        worker::WorkerReport,
    },
    instance::InstanceName,
};

type Labels = Vec<(&'static str, String)>;

/// One metric family: its samples with their labels.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    samples: Vec<(Labels, u64)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str, kind: MetricType) -> Self {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: Labels, value: u64) {
        self.samples.push((labels, value));
    }

    fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if self.samples.is_empty() {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(self.name, self.help, None, self.kind)?;
        for (labels, value) in &self.samples {
            let sample = family.encode_family(labels)?;
            match self.kind {
                MetricType::Counter => ConstCounter::new(*value).encode(sample)?,
                _ => ConstGauge::new(i64::try_from(*value).unwrap_or(i64::MAX)).encode(sample)?,
            }
        }
        Ok(())
    }
}

/// Reads the instance's state on each scrape.
#[derive(Debug)]
struct Appliance {
    name: InstanceName,
    pin_dir: PathBuf,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Option<T> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

impl Appliance {
    fn families(&self) -> Vec<Family> {
        let mut packets = Family::new(
            "vpn_interface_packets",
            "Frames XDP received, by interface role and class",
            MetricType::Counter,
        );
        let mut bytes = Family::new(
            "vpn_interface_bytes",
            "Bytes XDP received, by interface role and class",
            MetricType::Counter,
        );
        match ClassCounters::read_pinned(&self.pin_dir) {
            Ok(counters) => {
                for role in InterfaceRole::ALL {
                    for class in PacketClass::ALL {
                        let c = counters.get(role, class);
                        let labels =
                            || vec![("role", role.name().into()), ("class", class.name().into())];
                        packets.add(labels(), c.packets);
                        bytes.add(labels(), c.bytes);
                    }
                }
            }
            Err(err) => tracing::debug!(error = %format!("{err:#}"), "metrics: class counters"),
        }
        let mut events = Family::new(
            "vpn_datapath_events",
            "XDP tunnel events: frames handed to workers, drops by reason",
            MetricType::Counter,
        );
        for (event, n) in read_pinned_events(&self.pin_dir).unwrap_or_default() {
            events.add(vec![("event", event.into())], n);
        }

        let mut sa_packets = Family::new(
            "vpn_sa_packets",
            "Packets sealed (out) or opened (in) per SA",
            MetricType::Counter,
        );
        let mut sa_bytes = Family::new(
            "vpn_sa_bytes",
            "Inner bytes sealed (out) or opened (in) per SA",
            MetricType::Counter,
        );
        let mut drops = Family::new(
            "vpn_worker_drops",
            "Packets the crypto worker dropped, by reason",
            MetricType::Counter,
        );
        let mut worker_packets = Family::new(
            "vpn_worker_packets",
            "Packets each crypto worker (one per receive queue) sealed or opened",
            MetricType::Counter,
        );
        if let Some(w) = read_json::<WorkerReport>(&self.name.worker_file()) {
            for sa in &w.sas {
                let labels = || {
                    vec![
                        ("tunnel", sa.tunnel.clone()),
                        ("direction", sa.direction.clone()),
                        ("spi", format!("{:08x}", sa.spi)),
                    ]
                };
                sa_packets.add(labels(), sa.packets);
                sa_bytes.add(labels(), sa.bytes);
            }
            for (reason, n) in &w.dropped {
                drops.add(vec![("reason", reason.clone())], *n);
            }
            for each in &w.workers {
                let queue = || vec![("queue", each.queue.unwrap_or_default().to_string())];
                worker_packets.add(
                    [queue(), vec![("job", "encrypt".into())]].concat(),
                    each.encrypted,
                );
                worker_packets.add(
                    [queue(), vec![("job", "decrypt".into())]].concat(),
                    each.decrypted,
                );
            }
        }

        let mut up = Family::new(
            "vpn_tunnel_up",
            "1 while the tunnel has an established IKE SA with a CHILD_SA",
            MetricType::Gauge,
        );
        let mut rekeys = Family::new(
            "vpn_child_sa_rekeys",
            "CHILD_SAs replaced by a rekey",
            MetricType::Counter,
        );
        let mut closed = Family::new(
            "vpn_ike_sa_closed",
            "IKE SAs that ended, by reason (DeadPeer: DPD)",
            MetricType::Counter,
        );
        if let Some(ike) = read_json::<IkeReport>(&self.name.ike_file()) {
            let mut tunnels: std::collections::BTreeMap<&str, u64> =
                ike.tunnels.keys().map(|t| (t.as_str(), 0)).collect();
            for sa in &ike.ike_sas {
                let established = sa.state == "ESTABLISHED" && !sa.child_sas.is_empty();
                let entry = tunnels.entry(sa.tunnel.as_str()).or_default();
                *entry = (*entry).max(u64::from(established));
            }
            for (tunnel, state) in tunnels {
                up.add(vec![("tunnel", tunnel.into())], state);
            }
            for (tunnel, e) in &ike.tunnels {
                rekeys.add(vec![("tunnel", tunnel.clone())], e.child_rekeys);
                for (reason, n) in &e.ike_sa_closed {
                    closed.add(
                        vec![("tunnel", tunnel.clone()), ("reason", reason.clone())],
                        *n,
                    );
                }
            }
        }
        let mut nat_flows = Family::new(
            "vpn_nat_flows",
            "Flows the NAT masquerade tracks (its table size)",
            MetricType::Gauge,
        );
        let mut nat_events = Family::new(
            "vpn_nat_events",
            "NAT masquerade: packets translated, new flows, allocation failures, expired flows",
            MetricType::Counter,
        );
        match read_pinned_nat(&self.pin_dir) {
            Ok(nat) => {
                nat_flows.add(Vec::new(), nat.flows);
                for (event, n) in nat.events {
                    nat_events.add(vec![("event", event.into())], n);
                }
            }
            Err(err) => tracing::debug!(error = %format!("{err:#}"), "metrics: NAT counters"),
        }
        vec![
            packets,
            bytes,
            events,
            sa_packets,
            sa_bytes,
            drops,
            worker_packets,
            up,
            rekeys,
            closed,
            nat_flows,
            nat_events,
        ]
    }
}

impl Collector for Appliance {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in self.families() {
            family.encode(&mut encoder)?;
        }
        Ok(())
    }
}

/// The HTTP endpoint: `GET /metrics`.
pub struct MetricsServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    pub fn start(listen: SocketAddr, name: &InstanceName) -> anyhow::Result<Self> {
        let server = tiny_http::Server::http(listen)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("listening for metrics on {listen}"))?;
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Appliance {
            name: name.clone(),
            pin_dir: name.pin_dir(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || serve(&server, &registry, &flag))
            .context("starting the metrics thread")?;
        tracing::info!(%listen, "serving Prometheus metrics on /metrics");
        Ok(MetricsServer {
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(server: &tiny_http::Server, registry: &Registry, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let request = match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(request)) => request,
            Ok(None) => continue,
            Err(err) => {
                tracing::warn!(error = %err, "metrics endpoint");
                continue;
            }
        };
        let response = if request.url() == "/metrics" {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, registry) {
                Ok(()) => {
                    let response = tiny_http::Response::from_string(body);
                    match tiny_http::Header::from_bytes(
                        &b"Content-Type"[..],
                        &b"application/openmetrics-text; version=1.0.0; charset=utf-8"[..],
                    ) {
                        Ok(header) => response.with_header(header),
                        Err(()) => response,
                    }
                }
                Err(_) => tiny_http::Response::from_string("encoding failed").with_status_code(500),
            }
        } else {
            tiny_http::Response::from_string("see /metrics\n").with_status_code(404)
        };
        if let Err(err) = request.respond(response) {
            tracing::debug!(error = %err, "metrics: answering a scrape");
        }
    }
}
