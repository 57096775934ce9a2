//! The microbenchmark section of `cargo xtask bench`: the XDP programs' per-packet cost from
//! BPF_PROG_TEST_RUN (`vpn-agent bench-xdp`, which times them in a private network namespace),
//! per program and case, and with 1, 100 and 10,000 SAs and tunnel routes in the maps.
//!
//! This module runs the agent's subcommand, adds the ratios to the 1-SA case and whether each
//! is flat (the difference within this run's round-to-round noise), and renders the tables.

use std::{
    fmt::Write as _,
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// SA counts the smoke test requires (the agent's default).
pub const SCALE_SAS: [u64; 3] = [1, 100, 10_000];
/// NAT flow counts the smoke test requires (the agent's default).
pub const NAT_FLOWS: [u64; 2] = [1, 1_000_000];

/// Runs `vpn-agent bench-xdp` and returns its report with the scale ratios added.
pub fn run(agent: &Path, quick: bool) -> anyhow::Result<Value> {
    let mut cmd = Command::new(agent);
    cmd.arg("bench-xdp");
    if quick {
        cmd.arg("--quick");
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {} bench-xdp", agent.display()))?;
    if !out.status.success() {
        bail!("{} bench-xdp failed ({})", agent.display(), out.status);
    }
    let mut report: Value =
        serde_json::from_slice(&out.stdout).context("parsing the bench-xdp report")?;
    add_scale_ratios(&mut report);
    Ok(report)
}

fn median(v: &Value) -> Option<f64> {
    v["ns"]["median_ns"].as_f64().filter(|x| x.is_finite())
}

/// (min, max) of the per-round medians.
fn round_range(v: &Value) -> Option<(f64, f64)> {
    let r: Vec<f64> = v["ns"]["round_medians_ns"]
        .as_array()?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    let lo = r.iter().copied().reduce(f64::min)?;
    let hi = r.iter().copied().reduce(f64::max)?;
    Some((lo, hi))
}

/// The scale sections: the report key, the field holding the count, the counts required.
pub const SCALE_SECTIONS: [(&str, &str, &[u64]); 2] = [
    ("scale", "sas", &SCALE_SAS),
    ("nat_scale", "flows", &NAT_FLOWS),
];

fn is_copy(e: &Value, field: &str, count: u64, copy: u64) -> bool {
    e[field] == json!(count) && e["copy"].as_u64().unwrap_or(1) == copy
}

/// For every entry of both scale sections: `ratio_to_1` (its median over the median of the
/// same case with 1 SA, or 1 NAT flow) and `flat`: the difference of the medians is within the
/// noise, the largest of: the round-to-round spread (max - min of the per-round medians) of
/// either, the difference between two separately loaded copies of the count-1 object (where
/// measured), and the 1 ns resolution.
pub fn add_scale_ratios(report: &mut Value) {
    for (section, field, _) in SCALE_SECTIONS {
        let Some(scale) = report[section].as_array().cloned() else {
            continue;
        };
        let find = |e: &Value, copy: u64| {
            scale
                .iter()
                .find(|b| {
                    is_copy(b, field, 1, copy)
                        && b["program"] == e["program"]
                        && b["case"] == e["case"]
                })
                .cloned()
        };
        let Some(entries) = report[section].as_array_mut() else {
            continue;
        };
        for e in entries.iter_mut() {
            let Some(base) = find(e, 1) else { continue };
            let (Some(m), Some(b)) = (median(e), median(&base)) else {
                continue;
            };
            e["ratio_to_1"] = if b > 0.0 { json!(m / b) } else { Value::Null };
            let spread = |v: &Value| round_range(v).map(|(lo, hi)| hi - lo).unwrap_or(0.0);
            let between_copies = find(e, 2)
                .and_then(|c| median(&c))
                .map(|c| (c - b).abs())
                .unwrap_or(0.0);
            let noise = spread(e).max(spread(&base)).max(between_copies).max(1.0);
            e["noise_ns"] = json!(noise);
            e["flat"] = json!((m - b).abs() <= noise);
        }
    }
}

/// Names what the section lacks (every case and SA count needs a finite median and a ratio).
pub fn missing(report: &Value) -> Vec<String> {
    let mut missing = Vec::new();
    if report.is_null() {
        return vec!["xdp".into()];
    }
    if !report["floor"]["median_ns"]
        .as_f64()
        .is_some_and(f64::is_finite)
    {
        missing.push("xdp.floor".into());
    }
    let per_program = report["per_program"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if per_program.is_empty() {
        missing.push("xdp.per_program".into());
    }
    for e in &per_program {
        if median(e).is_none() {
            missing.push(format!("xdp.{}.{}", e["program"], e["case"]));
        }
    }
    for (section, field, counts) in SCALE_SECTIONS {
        let scale = report[section].as_array().cloned().unwrap_or_default();
        let cases: Vec<(Value, Value)> = scale
            .iter()
            .map(|e| (e["program"].clone(), e["case"].clone()))
            .collect();
        if cases.is_empty() {
            missing.push(format!("xdp.{section}"));
        }
        for (program, case) in &cases {
            for &n in counts {
                let found = scale.iter().find(|e| {
                    &e["program"] == program && &e["case"] == case && is_copy(e, field, n, 1)
                });
                match found {
                    Some(e) if median(e).is_some() && e["ratio_to_1"].is_f64() => {}
                    _ => missing.push(format!("xdp.{section}.{program}.{case}.{n}")),
                }
            }
        }
    }
    missing.sort();
    missing.dedup();
    missing
}

fn ns(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.0}")).unwrap_or_else(|| "-".into())
}

fn scale_table(s: &mut String, entries: &Value, field: &str, title: &str) {
    let _ = writeln!(
        s,
        "| program | case | {title} | ns/packet | ratio to 1 | flat |\n|---|---|---|---|---|---|"
    );
    for e in entries.as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "| {} | {} | {}{} | {} ({}-{}) | {} | {} |",
            e["program"].as_str().unwrap_or("?"),
            e["case"].as_str().unwrap_or("?"),
            e[field],
            if e["copy"].as_u64() == Some(2) {
                " (2nd copy)"
            } else {
                ""
            },
            ns(median(e)),
            ns(e["ns"]["p10_ns"].as_f64()),
            ns(e["ns"]["p90_ns"].as_f64()),
            e["ratio_to_1"]
                .as_f64()
                .map(|r| format!("{r:.2}x"))
                .unwrap_or_else(|| "-".into()),
            match e["flat"].as_bool() {
                Some(true) => "flat",
                Some(false) => "not flat",
                None => "-",
            },
        );
    }
}

/// The tables: ns per packet per program and case, per SA count and per NAT flow count, with
/// the ratios to the count-1 case.
pub fn markdown(report: &Value) -> String {
    let mut s = String::new();
    let st = &report["settings"];
    let floor = report["floor"]["median_ns"].as_f64();
    let _ = writeln!(
        s,
        "XDP per-packet cost, BPF_PROG_TEST_RUN (`vpn-agent bench-xdp`): {} rounds x {} single runs per case, the kernel's timing of each run; median (p10-p90) in ns. \
         The empty program costs {} ns measured the same way (the harness's share of every figure); \
         \"loop\" is the average of a `repeat` loop where the program stays on its path in one.\n",
        st["rounds"],
        st["runs_per_case_and_round"],
        ns(floor),
    );
    let _ = writeln!(
        s,
        "| program | case | verdict | ns/packet | minus empty program | loop |\n|---|---|---|---|---|---|"
    );
    for e in report["per_program"].as_array().into_iter().flatten() {
        let m = median(e);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} ({}-{}) | {} | {} |",
            e["program"].as_str().unwrap_or("?"),
            e["case"].as_str().unwrap_or("?"),
            e["verdict"].as_str().unwrap_or("?"),
            ns(m),
            ns(e["ns"]["p10_ns"].as_f64()),
            ns(e["ns"]["p90_ns"].as_f64()),
            ns(m.zip(floor).map(|(m, f)| m - f)),
            ns(e["ns"]["loop_ns"].as_f64()),
        );
    }
    let maps = &report["maps"];
    let _ = writeln!(
        s,
        "\nScale: the same object with N inbound SAs and N tunnel routes installed (INBOUND_SAS \
         resized to {} entries for all N; production holds {}). \"flat\": the difference from \
         1 SA is within this run's noise (the round-to-round spread, or the difference between two \
         separately loaded 1-SA copies, whichever is larger).\n",
        maps["scale_inbound_sas_max"], maps["production_inbound_sas_max"],
    );
    scale_table(&mut s, &report["scale"], "sas", "SAs/routes");
    let _ = writeln!(
        s,
        "\nNAT: the same object with N established flows (an entry in NAT_OUT and one in NAT_IN \
         each; both resized to {} entries for all N, production holds {}). \"flat\": within the \
         round-to-round spread.\n",
        maps["scale_nat_flows_max"], maps["production_nat_flows_max"],
    );
    scale_table(&mut s, &report["nat_scale"], "flows", "NAT flows");
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn entry(program: &str, case: &str, sas: u64, rounds: &[f64], med: f64) -> Value {
        json!({"program": program, "case": case, "sas": sas,
               "ns": {"median_ns": med, "p10_ns": med, "p90_ns": med, "round_medians_ns": rounds}})
    }

    pub(crate) fn sample_report() -> Value {
        let mut scale = Vec::new();
        for n in SCALE_SAS {
            let med = if n == 10_000 { 80.0 } else { 50.0 };
            scale.push(entry("xdp_wan", "esp", n, &[med - 1.0, med + 1.0], med));
        }
        let mut nat = Vec::new();
        for n in NAT_FLOWS {
            let mut e = entry("xdp_lan", "nat", 0, &[100.0], 100.0);
            e["flows"] = json!(n);
            nat.push(e);
        }
        let mut r = json!({
            "settings": {"rounds": 2, "runs_per_case_and_round": 10},
            "maps": {"scale_inbound_sas_max": 16384, "production_inbound_sas_max": 2048,
                     "scale_nat_flows_max": 1200000, "production_nat_flows_max": 65536},
            "floor": {"median_ns": 20.0},
            "per_program": [entry("xdp_wan", "udp-pass", 0, &[30.0], 30.0)],
            "scale": scale,
            "nat_scale": nat,
        });
        add_scale_ratios(&mut r);
        r
    }

    #[test]
    fn ratios_and_flatness_against_the_one_sa_case() {
        let r = sample_report();
        let s = r["scale"].as_array().unwrap();
        assert_eq!(s[0]["ratio_to_1"], json!(1.0));
        assert_eq!(s[1]["flat"], json!(true));
        assert_eq!(s[2]["ratio_to_1"], json!(1.6));
        assert_eq!(r["nat_scale"][1]["flat"], json!(true));
        assert_eq!(s[2]["flat"], json!(false));
        assert!(missing(&r).is_empty(), "{:?}", missing(&r));
        let md = markdown(&r);
        assert!(
            md.contains("| xdp_wan | esp | 10000 | 80 (80-80) | 1.60x | not flat |"),
            "{md}"
        );
        assert!(
            md.contains("| xdp_lan | nat | 1000000 | 100 (100-100) | 1.00x | flat |"),
            "{md}"
        );
    }

    #[test]
    fn a_missing_section_or_sa_count_is_reported() {
        assert_eq!(missing(&Value::Null), vec!["xdp".to_string()]);
        let mut r = sample_report();
        r["scale"].as_array_mut().unwrap().pop();
        assert!(missing(&r).iter().any(|m| m.ends_with(".10000")));
        r["nat_scale"] = Value::Null;
        assert!(missing(&r).contains(&"xdp.nat_scale".to_string()));
    }
}
