//! The lab removes exactly what it created: on `down`, when its owner panics, and (through the
//! registry) when its owner died without cleaning up.

use std::sync::{Arc, Mutex};

use vpn_lab::{
    Lab, LabSpec, Node, addr, netns,
    registry::{LabRecord, Owner},
};

#[test]
fn lab_routes_between_sites_and_goes_away_on_down() -> anyhow::Result<()> {
    for nat in [false, true] {
        let lab = Lab::up(LabSpec {
            nat,
            ..LabSpec::default()
        })?;
        assert_eq!(lab.namespaces().len(), if nat { 5 } else { 4 });
        let present = netns::list()?;
        assert!(lab.namespaces().iter().all(|ns| present.contains(ns)));
        lab.exec(
            Node::HostA,
            "ping",
            &["-c", "1", "-W", "2", &addr::HOST_B.to_string()],
        )?;
        let namespaces = lab.namespaces().to_vec();
        lab.down()?;
        let left = netns::list()?;
        assert!(namespaces.iter().all(|ns| !left.contains(ns)));
        assert!(!LabRecord::path(namespaces[0].split('-').next().unwrap()).exists());
    }
    Ok(())
}

#[test]
fn lab_is_removed_when_its_owner_panics() -> anyhow::Result<()> {
    let created = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&created);
    let result = std::panic::catch_unwind(move || {
        let lab = Lab::up(LabSpec::default()).expect("lab up");
        *seen.lock().unwrap() = lab.namespaces().to_vec();
        panic!("a test failing half-way");
    });
    assert!(result.is_err());
    let created = created.lock().unwrap().clone();
    assert_eq!(created.len(), 4);
    let left = netns::list()?;
    assert!(created.iter().all(|ns| !left.contains(ns)), "{left:?}");
    Ok(())
}

#[test]
fn a_dead_owners_lab_is_removed_by_the_next_lab() -> anyhow::Result<()> {
    // A lab record whose owner has exited, as after `kill -9` of a test run.
    let mut child = std::process::Command::new("true").spawn()?;
    let dead_pid = child.id();
    child.wait()?;
    let id = format!("vlorph{:x}", std::process::id() & 0xffff);
    let ns = format!("{id}-router-a");
    netns::ip(&["netns", "add", &ns])?;
    LabRecord {
        id: id.clone(),
        owner: Some(Owner {
            pid: dead_pid,
            start_ticks: 0,
        }),
        nat: false,
        namespaces: vec![ns.clone()],
    }
    .store()?;

    let lab = Lab::up(LabSpec::default())?;
    assert!(
        !netns::list()?.contains(&ns),
        "orphaned namespace {ns} still there"
    );
    assert!(!LabRecord::path(&id).exists());
    lab.down()
}
