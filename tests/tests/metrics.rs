//! `vpn-agent run --metrics ADDR`: Prometheus scrapes what status shows, in the OpenMetrics
//! text format: per-SA packets, tunnel state, interface classes, rekeys.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    time::Duration,
};

use vpn_lab::{
    Lab, LabSpec, Node, addr,
    ike_tunnel::{IkeOptions, IkeTunnelFiles},
};
use vpn_tests::{agent_bin, poll_until, traffic::ping};

const LISTEN: &str = "127.0.0.1:9469";

/// `GET path` on the metrics port inside router-a; the status line and body.
fn scrape(lab: &Lab, path: &'static str) -> anyhow::Result<(String, String)> {
    lab.run_in(Node::RouterA, move || {
        let mut stream = TcpStream::connect(LISTEN)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {LISTEN}\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head.lines().next().unwrap_or_default().to_owned();
        Ok((status, body.to_owned()))
    })
}

/// The value of the sample whose line starts with `prefix` (name and labels).
fn value(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn prometheus_sees_the_tunnel_and_its_traffic() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec::default())?;
    let files = IkeTunnelFiles::write(lab.id(), &IkeOptions::default())?;
    let bin = agent_bin()?;
    let b = files.start_agent(&lab, Node::RouterB, &bin)?;
    let a = files.start_agent_with(&lab, Node::RouterA, &bin, &["--metrics", LISTEN])?;
    poll_until(
        Duration::from_secs(20),
        || a.status(),
        |s| s.worker.as_ref().is_some_and(|w| w.sas.len() == 2),
    )?;
    assert_eq!(ping(&lab, Node::HostA, addr::HOST_B, 7)?, 7);

    let (status, body) = poll_until(
        Duration::from_secs(5),
        || scrape(&lab, "/metrics"),
        // Counters are published a few times a second: the last reply may be opened after
        // the snapshot that counts the last request sealed.
        |(_, body)| {
            ["out", "in"].iter().all(|direction| {
                value(
                    body,
                    &format!(
                        "vpn_sa_packets_total{{tunnel=\"to-site-b\",direction=\"{direction}\""
                    ),
                )
                .is_some_and(|n| n >= 7.0)
            })
        },
    )?;
    assert!(status.contains("200"), "{status}");
    let sealed = value(
        &body,
        "vpn_sa_packets_total{tunnel=\"to-site-b\",direction=\"out\"",
    );
    assert!(sealed.is_some_and(|n| n >= 7.0), "{body}");
    let opened = value(
        &body,
        "vpn_sa_packets_total{tunnel=\"to-site-b\",direction=\"in\"",
    );
    assert!(opened.is_some_and(|n| n >= 7.0), "{body}");
    assert_eq!(
        value(&body, "vpn_tunnel_up{tunnel=\"to-site-b\"}"),
        Some(1.0),
        "{body}"
    );
    // Raw ESP on the WAN (no NAT in this lab): the echo replies, at least.
    let esp = value(
        &body,
        "vpn_interface_packets_total{role=\"wan\",class=\"esp\"}",
    );
    assert!(esp.is_some_and(|n| n >= 7.0), "{body}");
    assert!(body.contains("# TYPE vpn_sa_packets counter"), "{body}");
    assert!(
        body.trim_end().ends_with("# EOF"),
        "not OpenMetrics text: {body}"
    );

    let (status, _) = scrape(&lab, "/other")?;
    assert!(status.contains("404"), "{status}");

    a.stop()?;
    b.stop()?;
    lab.down()
}
