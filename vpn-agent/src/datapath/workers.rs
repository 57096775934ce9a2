//! The crypto worker pool: one worker per receive queue of the WAN and LAN interfaces.
//!
//! A NIC with several queues spreads flows over them by hash (RSS; on veth, the sender's
//! transmit queue), and the XDP programs redirect a frame to the AF_XDP socket registered for
//! the queue it arrived on (`ctx.rx_queue_index()` into the XSKMAPs). So worker `q` binds one
//! UMEM to queue `q` of both interfaces, receives that queue's frames on either side and
//! transmits on queue `q` of the other from the same frame. An AF_XDP socket only ever receives
//! from the queue it is bound to, so a queue without a worker has its tunnel traffic dropped
//! (counted as `no_worker`): fewer workers than queues is allowed but warned about.
//!
//! Every worker holds every SA (shared state, see `sa_table`). Installs are acknowledged by
//! each worker before the control plane goes on to point a BPF map at the new slot, so no
//! worker ever sees a frame for an SA it does not have yet (RFC 7296 2.8 make-before-break).

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc::{self, Sender},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context as _, anyhow};

use super::{
    local_tx::LocalPort,
    nat::worker_path::WorkerNat,
    sa_table::{SaEntry, SaSnapshot},
    tables::TunnelTables,
    worker::{Control, LifetimeEvent, SocketStats, Worker, WorkerReport},
    xsk::XskPair,
};

/// How long a worker may take to pick up an SA (its loop polls at least every 20 ms).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(2);

/// How many workers to run: one per queue both interfaces have, at most `cap`.
pub fn worker_count(wan_queues: u32, lan_queues: u32, cap: Option<u32>) -> u32 {
    let queues = wan_queues.min(lan_queues).max(1);
    cap.map_or(queues, |cap| cap.clamp(1, queues))
}

pub struct WorkerPool {
    controls: Vec<Sender<Control>>,
    handles: Vec<JoinHandle<()>>,
    reports: Vec<Arc<Mutex<WorkerReport>>>,
    stop: Arc<AtomicBool>,
}

impl WorkerPool {
    /// Binds queues `0..count` of both interfaces, registers each queue's sockets in the
    /// XSKMAPs at that queue's index, and starts a worker thread for each.
    pub fn start(
        tables: &mut TunnelTables,
        (wan, lan): (u32, u32),
        count: u32,
        events: &Sender<LifetimeEvent>,
    ) -> anyhow::Result<Self> {
        let mut pool = WorkerPool {
            controls: Vec::new(),
            handles: Vec::new(),
            reports: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        for queue in 0..count {
            if let Err(err) = pool.spawn(tables, wan, lan, queue, events) {
                pool.stop();
                return Err(err);
            }
        }
        Ok(pool)
    }

    fn spawn(
        &mut self,
        tables: &mut TunnelTables,
        wan: u32,
        lan: u32,
        queue: u32,
        events: &Sender<LifetimeEvent>,
    ) -> anyhow::Result<()> {
        let xsk = XskPair::bind(wan, lan, queue)?;
        tables.register_sockets(queue, &xsk.wan.fd(), &xsk.lan.fd())?;
        let (control, receiver) = mpsc::channel();
        let report = Arc::new(Mutex::new(WorkerReport {
            queue: Some(queue),
            ..WorkerReport::default()
        }));
        let worker = Worker::new(
            queue,
            xsk,
            receiver,
            events.clone(),
            Arc::clone(&self.stop),
            Arc::clone(&report),
        )?;
        let handle = std::thread::Builder::new()
            .name(format!("crypto-q{queue}"))
            .spawn(move || worker.run())
            .context("starting a crypto worker")?;
        self.controls.push(control);
        self.handles.push(handle);
        self.reports.push(report);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.controls.len()
    }

    fn broadcast(&self, mut control: impl FnMut() -> Control) -> anyhow::Result<()> {
        for sender in &self.controls {
            sender
                .send(control())
                .map_err(|_| anyhow!("a crypto worker has stopped"))?;
        }
        Ok(())
    }

    /// Gives every worker `entry` for `slot` and returns once each has it.
    pub fn install(&self, slot: u32, entry: SaEntry) -> anyhow::Result<()> {
        let entry = Arc::new(entry);
        let (installed, acks) = mpsc::channel();
        self.broadcast(|| Control::Install {
            slot,
            entry: Arc::clone(&entry),
            installed: installed.clone(),
        })?;
        for _ in 0..self.controls.len() {
            acks.recv_timeout(INSTALL_TIMEOUT)
                .map_err(|_| anyhow!("a crypto worker did not take SA slot {slot}"))?;
        }
        Ok(())
    }

    /// Every worker drops `slot` (the keys are zeroized when the last one does).
    pub fn remove(&self, slot: u32) -> anyhow::Result<()> {
        self.broadcast(|| Control::Remove { slot })
    }

    /// Has every worker translate decrypted traffic that matches a NAT rule (each with its own
    /// handles on the shared NAT maps).
    pub fn enable_nat(&self, open: impl Fn() -> anyhow::Result<WorkerNat>) -> anyhow::Result<()> {
        for sender in &self.controls {
            sender
                .send(Control::Nat(Box::new(open()?)))
                .map_err(|_| anyhow!("a crypto worker has stopped"))?;
        }
        Ok(())
    }

    /// The tunnel devices of the router's own traffic go to the first worker only: each
    /// device is read by one thread, and that traffic is small.
    pub fn local_ports(&self, ports: Vec<LocalPort>) -> anyhow::Result<()> {
        self.controls
            .first()
            .ok_or_else(|| anyhow!("no crypto worker"))?
            .send(Control::LocalPorts(ports))
            .map_err(|_| anyhow!("a crypto worker has stopped"))
    }

    /// The sum over the workers, with each one's report in `workers`.
    pub fn report(&self) -> WorkerReport {
        let each: Vec<WorkerReport> = self
            .reports
            .iter()
            .filter_map(|r| r.lock().ok().map(|r| r.clone()))
            .collect();
        sum(each)
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
        self.controls.clear();
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Adds up workers' reports: counters summed, SAs matched by (tunnel, direction, SPI).
pub fn sum(each: Vec<WorkerReport>) -> WorkerReport {
    let mut total = WorkerReport::default();
    let mut sas: BTreeMap<(String, String, u32), SaSnapshot> = BTreeMap::new();
    let mut order = Vec::new();
    for w in &each {
        total.decrypted += w.decrypted;
        total.encrypted += w.encrypted;
        total.sent_xsk += w.sent_xsk;
        total.sent_kernel += w.sent_kernel;
        let (l, t) = (&w.loop_stats, &mut total.loop_stats);
        t.polls += l.polls;
        t.rx_batches += l.rx_batches;
        t.rx_frames += l.rx_frames;
        t.tx_kicks += l.tx_kicks;
        t.sendmmsg_calls += l.sendmmsg_calls;
        add_all(&mut total.dropped, &w.dropped);
        add_all(&mut total.lifetime_events, &w.lifetime_events);
        add_all(&mut total.nat, &w.nat);
        for (side, s) in &w.sockets {
            let t: &mut SocketStats = total.sockets.entry(side.clone()).or_default();
            t.rx_dropped += s.rx_dropped;
            t.rx_ring_full += s.rx_ring_full;
            t.rx_fill_ring_empty += s.rx_fill_ring_empty;
            t.rx_invalid_descs += s.rx_invalid_descs;
            t.tx_invalid_descs += s.tx_invalid_descs;
        }
        for sa in &w.sas {
            let key = (sa.tunnel.clone(), sa.direction.clone(), sa.spi);
            match sas.get_mut(&key) {
                Some(t) => {
                    t.packets += sa.packets;
                    t.bytes += sa.bytes;
                }
                None => {
                    order.push(key.clone());
                    sas.insert(key, sa.clone());
                }
            }
        }
    }
    // In the order the first worker lists them (by slot), as a single worker did.
    total.sas = order.iter().filter_map(|k| sas.remove(k)).collect();
    total.workers = each;
    total
}

fn add_all(total: &mut BTreeMap<String, u64>, more: &BTreeMap<String, u64>) {
    for (name, n) in more {
        *total.entry(name.clone()).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::worker::LoopStats;

    fn sa(direction: &str, spi: u32, packets: u64) -> SaSnapshot {
        SaSnapshot {
            tunnel: "t".into(),
            direction: direction.into(),
            spi,
            packets,
            bytes: packets * 100,
        }
    }

    #[test]
    fn sums_counters_and_sas_across_workers_and_keeps_each() {
        let q0 = WorkerReport {
            queue: Some(0),
            decrypted: 3,
            encrypted: 5,
            dropped: [("replayed".to_owned(), 1)].into(),
            loop_stats: LoopStats {
                polls: 2,
                tx_kicks: 1,
                ..LoopStats::default()
            },
            sas: vec![sa("in", 1, 3), sa("out", 2, 5)],
            sockets: [(
                "wan".to_owned(),
                SocketStats {
                    rx_ring_full: 2,
                    ..SocketStats::default()
                },
            )]
            .into(),
            ..WorkerReport::default()
        };
        let q1 = WorkerReport {
            queue: Some(1),
            decrypted: 4,
            encrypted: 6,
            dropped: [("replayed".to_owned(), 2), ("bad_icv".to_owned(), 1)].into(),
            loop_stats: LoopStats {
                polls: 3,
                ..LoopStats::default()
            },
            sas: vec![sa("in", 1, 4), sa("out", 2, 6)],
            sockets: [(
                "wan".to_owned(),
                SocketStats {
                    rx_ring_full: 1,
                    ..SocketStats::default()
                },
            )]
            .into(),
            ..WorkerReport::default()
        };
        let total = sum(vec![q0.clone(), q1.clone()]);
        assert_eq!((total.decrypted, total.encrypted), (7, 11));
        assert_eq!(total.dropped["replayed"], 3);
        assert_eq!(total.dropped["bad_icv"], 1);
        assert_eq!(total.sas, vec![sa("in", 1, 7), sa("out", 2, 11)]);
        assert_eq!(total.sockets["wan"].rx_ring_full, 3);
        assert_eq!((total.loop_stats.polls, total.loop_stats.tx_kicks), (5, 1));
        assert_eq!(total.queue, None);
        assert_eq!(total.workers, vec![q0, q1]);
    }

    #[test]
    fn one_worker_per_queue_both_sides_have_capped_by_the_setting() {
        assert_eq!(worker_count(1, 1, None), 1);
        assert_eq!(worker_count(4, 2, None), 2);
        assert_eq!(worker_count(4, 4, Some(3)), 3);
        assert_eq!(worker_count(2, 2, Some(8)), 2);
        assert_eq!(worker_count(2, 2, Some(0)), 1);
    }
}
