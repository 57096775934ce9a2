//! `vpn-agent bench-xdp` (hidden; run by `cargo xtask bench`): the XDP programs' per-packet
//! cost with BPF_PROG_TEST_RUN, on representative frames and with 1, 100 and 10,000 SAs and
//! tunnel routes in the maps. Prints one JSON document on stdout.
//!
//! Everything happens in a private network namespace of this process (see [`netns`]) on
//! objects loaded for the purpose and never attached: nothing on the host changes, and a
//! running agent is not disturbed.

mod cases;
mod frames;
mod measure;
mod nat;
mod netns;
mod tables;
mod test_run;

use std::os::fd::{AsFd as _, BorrowedFd};

use anyhow::{Context as _, anyhow, bail};
use aya::{Ebpf, maps::PerCpuArray, programs::ProgramFd};
use serde_json::json;
use vpn_common::{
    CLASS_COUNTER_ENTRIES, InterfaceRole, TrafficCounter, class_counter_index, names,
    nat::{MAX_NAT_FLOWS, NatEvent},
    tunnel::{DatapathEvent, MAX_INBOUND_SAS, MAX_TUNNEL_ROUTES},
};

use crate::datapath::{loader, tables::TunnelTables, xsk::XskPair};
use cases::{Case, Program};
use measure::{Settings, Target};
use test_run::Ingress;

#[derive(Debug, clap::Args)]
pub struct BenchXdpArgs {
    /// Rounds over all cases (interleaved).
    #[arg(long, default_value_t = 20)]
    pub rounds: u32,
    /// Single test runs per case and round.
    #[arg(long, default_value_t = 5000)]
    pub batch: u32,
    /// Repetitions of the one `repeat` loop per case and round (0: none).
    #[arg(long, default_value_t = 100_000)]
    pub loop_repeat: u32,
    /// Numbers of inbound SAs and tunnel routes for the scale runs.
    #[arg(long, value_delimiter = ',', default_value = "1,100,10000")]
    pub sas: Vec<u32>,
    /// Numbers of established NAT flows (an entry in NAT_OUT and one in NAT_IN each) for the
    /// NAT scale runs.
    #[arg(long, value_delimiter = ',', default_value = "1,1000000")]
    pub nat_flows: Vec<u32>,
    /// Smoke-test sizes: 2 rounds of 200 runs, loops of 1000.
    #[arg(long)]
    pub quick: bool,
}

/// INBOUND_SAS size in the scale objects: the production object holds MAX_INBOUND_SAS (2048),
/// fewer than the largest scale run, so the scale objects are all loaded with this size (the
/// same for every SA count, so that only the occupancy differs between them).
const SCALE_INBOUND_SAS: u32 = 16 * 1024;
/// NAT_OUT and NAT_IN size in the NAT scale objects (production: MAX_NAT_FLOWS, 65,536): room
/// for 1,000,000 flows with a margin, since an LRU map may evict before it is quite full.
const SCALE_NAT_FLOWS: u32 = 1_200_000;

pub fn run(args: &BenchXdpArgs) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("bench-xdp loads eBPF programs and creates a network namespace: run it as root");
    }
    let settings = if args.quick {
        Settings {
            rounds: 2,
            batch: 200,
            loop_repeat: 1000,
        }
    } else {
        Settings {
            rounds: args.rounds.max(1),
            batch: args.batch.max(1),
            loop_repeat: args.loop_repeat,
        }
    };
    for &n in &args.nat_flows {
        if n == 0 || n > 1_000_000 {
            bail!("--nat-flows {n}: between 1 and 1000000");
        }
    }
    for &n in &args.sas {
        if n == 0 || n > SCALE_INBOUND_SAS.min(MAX_TUNNEL_ROUTES) {
            bail!(
                "--sas {n}: between 1 and {}",
                SCALE_INBOUND_SAS.min(MAX_TUNNEL_ROUTES)
            );
        }
    }
    let net = netns::enter_private()?;
    let wan_in = Ingress {
        ifindex: net.wan_ifindex,
        rx_queue: 0,
    };
    let lan_in = Ingress {
        ifindex: net.lan_ifindex,
        rx_queue: 0,
    };
    let ingress = |p: Program| match p {
        Program::Wan => wan_in,
        Program::Lan => lan_in,
    };
    // One pair of AF_XDP sockets, registered in every object's XSKMAPs (a socket may be in
    // several maps): the programs redirect only where a worker's socket is registered.
    let sockets = XskPair::bind(net.wan_ifindex, net.lan_ifindex, 0)
        .context("binding AF_XDP sockets to the benchmark's veth pairs")?;

    let mut production = Loaded::load(&[])?;
    production
        .tables
        .register_sockets(0, &sockets.wan.fd(), &sockets.lan.fd())?;
    tables::install_probes(&mut production.tables, true)?;
    // Every object has the same NAT rule and probe flow (NAT is on every plain frame's path:
    // the reverse lookup and the rule check run on both sides).
    production.nat.install(net.wan_ifindex, 1)?;
    // The smallest count is loaded twice: the second copy measures how much two loads of the
    // same object with the same contents differ (memory placement), a noise floor that the
    // round-to-round spread does not show.
    let mut counts: Vec<(u32, u32)> = args.sas.iter().map(|&n| (n, 1)).collect();
    if let Some(&smallest) = args.sas.iter().min() {
        counts.push((smallest, 2));
    }
    let mut scaled = Vec::new();
    for &(n, copy) in &counts {
        let mut loaded = Loaded::load(&[(names::INBOUND_SAS, SCALE_INBOUND_SAS)])?;
        loaded
            .tables
            .register_sockets(0, &sockets.wan.fd(), &sockets.lan.fd())?;
        let sas = tables::install_probes(&mut loaded.tables, false)?;
        tables::fill_synthetic(&mut loaded.tables, n, sas)
            .with_context(|| format!("filling the maps with {n} SAs and routes"))?;
        loaded.nat.install(net.wan_ifindex, 1)?;
        scaled.push((n, copy, loaded));
    }
    let mut nat_scaled = Vec::new();
    for &n in &args.nat_flows {
        let started = std::time::Instant::now();
        let mut loaded = Loaded::load(&[
            (names::NAT_OUT, SCALE_NAT_FLOWS),
            (names::NAT_IN, SCALE_NAT_FLOWS),
        ])?;
        loaded
            .tables
            .register_sockets(0, &sockets.wan.fd(), &sockets.lan.fd())?;
        tables::install_probes(&mut loaded.tables, false)?;
        loaded
            .nat
            .install(net.wan_ifindex, n)
            .with_context(|| format!("filling the NAT tables with {n} flows"))?;
        tracing::info!(
            flows = n,
            secs = started.elapsed().as_secs_f64(),
            "NAT tables filled"
        );
        nat_scaled.push((n, loaded));
    }
    let floor = test_run::load_floor_program().context("loading the empty reference program")?;

    let per_program = cases::per_program();
    let scale_cases = cases::scale();
    let nat_cases = cases::nat_scale();
    for case in &per_program {
        production.verify(case, ingress(case.program))?;
    }
    for (n, _, loaded) in &scaled {
        for case in &scale_cases {
            loaded
                .verify(case, ingress(case.program))
                .with_context(|| format!("with {n} SAs"))?;
        }
    }
    for (n, loaded) in &nat_scaled {
        for case in &nat_cases {
            loaded
                .verify(case, ingress(case.program))
                .with_context(|| format!("with {n} NAT flows"))?;
        }
    }

    let floor_frame = cases::floor_frame();
    let mut targets = vec![Target {
        label: "floor".into(),
        fd: floor.as_fd(),
        frame: &floor_frame,
        ingress: wan_in,
        verdict: cases::XDP_PASS,
        loopable: true,
    }];
    for case in &per_program {
        targets.push(production.target(case, ingress(case.program), "production".into()));
    }
    for (n, copy, loaded) in &scaled {
        for case in &scale_cases {
            let what = format!("{n} SAs, copy {copy}");
            targets.push(loaded.target(case, ingress(case.program), what));
        }
    }
    for (n, loaded) in &nat_scaled {
        for case in &nat_cases {
            let what = format!("{n} NAT flows");
            targets.push(loaded.target(case, ingress(case.program), what));
        }
    }
    tracing::info!(
        targets = targets.len(),
        rounds = settings.rounds,
        batch = settings.batch,
        "timing XDP test runs"
    );
    let timings = measure::measure(&targets, &settings)?;
    let mut timings = timings.into_iter();

    let floor_json = timings
        .next()
        .map(|t| t.to_json(cases::XDP_PASS, true))
        .unwrap_or_default();
    let case_json = |case: &Case, timing: measure::Timing| {
        json!({
            "program": case.program.name(),
            "case": case.name,
            "what": case.what,
            "frame_bytes": case.frame.len(),
            "verdict": cases::verdict_name(case.verdict),
            "class": case.class.name(),
            "event": case.event.map(DatapathEvent::name),
            "nat_event": case.nat_event.map(NatEvent::name),
            "ns": timing.to_json(case.verdict, !case.modifies_frame),
        })
    };
    let mut per_program_json = Vec::new();
    for case in &per_program {
        let t = timings.next().ok_or_else(|| anyhow!("timing missing"))?;
        per_program_json.push(case_json(case, t));
    }
    let mut scale_json = Vec::new();
    for (n, copy, _) in &scaled {
        for case in &scale_cases {
            let t = timings.next().ok_or_else(|| anyhow!("timing missing"))?;
            let mut v = case_json(case, t);
            v["sas"] = json!(n);
            v["routes"] = json!(n);
            v["copy"] = json!(copy);
            scale_json.push(v);
        }
    }
    let mut nat_json = Vec::new();
    for (n, _) in &nat_scaled {
        for case in &nat_cases {
            let t = timings.next().ok_or_else(|| anyhow!("timing missing"))?;
            let mut v = case_json(case, t);
            v["flows"] = json!(n);
            nat_json.push(v);
        }
    }
    let doc = json!({
        "schema": 1,
        "method": "BPF_PROG_TEST_RUN, one run per call (repeat = 1), the kernel's own timing of the run (duration, ns); rounds interleave every case, order rotated per round",
        "settings": {
            "rounds": settings.rounds,
            "runs_per_case_and_round": settings.batch,
            "loop_repeat": settings.loop_repeat,
        },
        "maps": {
            "production_inbound_sas_max": MAX_INBOUND_SAS,
            "scale_inbound_sas_max": SCALE_INBOUND_SAS,
            "tunnel_routes_max": MAX_TUNNEL_ROUTES,
            "production_nat_flows_max": MAX_NAT_FLOWS,
            "scale_nat_flows_max": SCALE_NAT_FLOWS,
        },
        "floor": floor_json,
        "per_program": per_program_json,
        "scale": scale_json,
        "nat_scale": nat_json,
        "notes": [
            "Each case is checked before it is timed: the verdict, the class counter and the datapath event it must produce (and no other).",
            "The runs happen in a private network namespace: veth pairs for WAN and LAN, AF_XDP sockets bound to their queue 0 and registered in the XSKMAPs (the programs redirect only to a registered socket; in test-run mode the redirect is not carried out), a permanent neighbour for the peer so bpf_fib_lookup succeeds.",
            "floor is the empty program (r0 = XDP_PASS; exit) timed the same way: the harness's own cost per run, one clock read included, which repeat loops would amortise.",
            "loop_ns: the kernel's average over one repeat loop (median over rounds), only where every repetition stays on the case's path; the redirecting cases cannot be looped (XSK metadata accumulates).",
            "Scale objects are loaded with INBOUND_SAS resized to scale_inbound_sas_max for every SA count (the production object holds production_inbound_sas_max inbound SAs); SPIs are pseudo-random, routes are distinct pseudo-random /16-/32 prefixes in 10.0.0.0/8 over min(SAs, 1024) tunnel slots.",
            "The smallest SA count is loaded twice (copy 2): the difference between the two copies is the noise between separately loaded objects.",
            "Every object holds one NAT masquerade rule (10.1.0.0/24 to 203.0.113.0/24 out of the WAN) and one established probe flow. NAT scale objects are loaded with NAT_OUT and NAT_IN resized to scale_nat_flows_max for every flow count (production: production_nat_flows_max) and hold that many established UDP flows, one entry in each table per flow.",
            "Cases that rewrite the frame (NAT, the MSS clamp) have no loop figure: from the second repetition on, a loop would see the rewritten frame."
        ],
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    drop(sockets);
    Ok(())
}

/// One loaded (verified, not attached) copy of the datapath object with its tunnel and NAT
/// tables.
struct Loaded {
    ebpf: Ebpf,
    tables: TunnelTables,
    nat: nat::NatTables,
    wan: ProgramFd,
    lan: ProgramFd,
}

impl Loaded {
    fn load(max_entries: &[(&'static str, u32)]) -> anyhow::Result<Self> {
        let mut ebpf = loader::load_unattached(max_entries)?;
        let tables = TunnelTables::take_from(&mut ebpf)?;
        let nat = nat::NatTables::take_from(&mut ebpf)?;
        let fd = |name: &str| -> anyhow::Result<ProgramFd> {
            let program = ebpf
                .program(name)
                .ok_or_else(|| anyhow!("the eBPF object has no program {name}"))?;
            Ok(program.fd()?.try_clone()?)
        };
        let (wan, lan) = (fd(names::XDP_WAN)?, fd(names::XDP_LAN)?);
        Ok(Loaded {
            ebpf,
            tables,
            nat,
            wan,
            lan,
        })
    }

    fn fd(&self, p: Program) -> BorrowedFd<'_> {
        match p {
            Program::Wan => self.wan.as_fd(),
            Program::Lan => self.lan.as_fd(),
        }
    }

    fn target<'a>(&'a self, case: &'a Case, ingress: Ingress, what: String) -> Target<'a> {
        Target {
            label: format!("{} {} ({what})", case.program.name(), case.name),
            fd: self.fd(case.program),
            frame: &case.frame,
            ingress,
            verdict: case.verdict,
            loopable: !case.modifies_frame,
        }
    }

    /// Class counters (packets), datapath events and NAT events, summed over CPUs.
    fn counters(&self) -> anyhow::Result<(Vec<u64>, Vec<u64>, Vec<u64>)> {
        let map = |name: &str| {
            self.ebpf
                .map(name)
                .ok_or_else(|| anyhow!("the eBPF object has no map {name}"))
        };
        let classes: PerCpuArray<_, TrafficCounter> =
            PerCpuArray::try_from(map(names::CLASS_COUNTERS)?)?;
        let events: PerCpuArray<_, u64> = PerCpuArray::try_from(map(names::DATAPATH_EVENTS)?)?;
        let mut c = Vec::new();
        for i in 0..CLASS_COUNTER_ENTRIES {
            c.push(classes.get(&i, 0)?.iter().map(|v| v.packets).sum());
        }
        let mut e = Vec::new();
        for i in 0..DatapathEvent::COUNT as u32 {
            e.push(events.get(&i, 0)?.iter().sum());
        }
        let nat_events: PerCpuArray<_, u64> = PerCpuArray::try_from(map(names::NAT_EVENTS)?)?;
        let mut n = Vec::new();
        for i in 0..NatEvent::COUNT as u32 {
            n.push(nat_events.get(&i, 0)?.iter().sum());
        }
        Ok((c, e, n))
    }

    /// Runs the case once and checks that it took its path: verdict, exactly one count of its
    /// class, its datapath event and no other.
    fn verify(&self, case: &Case, ingress: Ingress) -> anyhow::Result<()> {
        let label = format!("{} {}", case.program.name(), case.name);
        let (classes_before, events_before, nat_before) = self.counters()?;
        let run = test_run::test_run(self.fd(case.program), &case.frame, ingress, 1)
            .with_context(|| format!("{label}: BPF_PROG_TEST_RUN"))?;
        let (classes_after, events_after, nat_after) = self.counters()?;
        if run.retval != case.verdict {
            bail!(
                "{label}: {} instead of {}",
                cases::verdict_name(run.retval),
                cases::verdict_name(case.verdict)
            );
        }
        let role = match case.program {
            Program::Wan => InterfaceRole::Wan,
            Program::Lan => InterfaceRole::Lan,
        };
        let want_class = class_counter_index(role, case.class) as usize;
        for (i, (a, b)) in classes_after.iter().zip(&classes_before).enumerate() {
            let want = u64::from(i == want_class);
            if a - b != want {
                bail!(
                    "{label}: class counter {i} moved by {} (expected {want})",
                    a - b
                );
            }
        }
        for (event, (a, b)) in DatapathEvent::ALL
            .iter()
            .zip(events_after.iter().zip(&events_before))
        {
            let want = u64::from(case.event == Some(*event));
            if a - b != want {
                bail!(
                    "{label}: datapath event {} moved by {} (expected {want})",
                    event.name(),
                    a - b
                );
            }
        }
        for (event, (a, b)) in NatEvent::ALL.iter().zip(nat_after.iter().zip(&nat_before)) {
            let want = u64::from(case.nat_event == Some(*event));
            if a - b != want {
                bail!(
                    "{label}: NAT event {} moved by {} (expected {want})",
                    event.name(),
                    a - b
                );
            }
        }
        Ok(())
    }
}
