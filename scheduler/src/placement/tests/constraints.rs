//! Constraint filters: `==`, `!=`, labels, hostname, arch, os.

use super::*;

fn zones() -> Vec<HostSnapshot> {
    vec![
        host("h1").label("zone", "west"),
        host("h2").label("zone", "east"),
        host("h3"),
    ]
}

#[test]
fn label_equality_keeps_only_matching_hosts() {
    let svc = service("api").constraint("node.labels.zone == east");
    assert_eq!(choose(&zones(), &svc).unwrap(), "h2");
}

#[test]
fn a_missing_label_never_equals() {
    let svc = service("api").constraint("node.labels.zone == ");
    let err = choose(&zones(), &svc).unwrap_err();
    assert_eq!(
        err.rejected.len(),
        3,
        "h3 has no zone label, not an empty one"
    );
}

#[test]
fn a_missing_label_always_differs() {
    let svc = service("api").constraint("node.labels.zone != west");
    let hosts = zones();
    let mut cands = empty(&hosts);
    let chosen = place_n(&mut cands, &svc, 2);
    assert_eq!(tally(&chosen), BTreeMap::from([("h2", 1), ("h3", 1)]));
}

#[test]
fn hostname_inequality_avoids_a_host() {
    let svc = service("api").constraint("node.hostname != h1");
    let hosts = vec![host("h1"), host("h2")];
    assert_eq!(choose(&hosts, &svc).unwrap(), "h2");
    let svc = service("api").constraint("node.hostname == h1");
    assert_eq!(choose(&hosts, &svc).unwrap(), "h1");
}

#[test]
fn arch_and_os_read_the_platform() {
    let hosts = vec![
        host("pi").arch("aarch64"),
        host("mac").arch("aarch64").os("macos"),
        host("pc"),
    ];
    let svc = service("api")
        .constraint("node.platform.arch == aarch64")
        .constraint("node.platform.os == linux");
    assert_eq!(choose(&hosts, &svc).unwrap(), "pi");
}

#[test]
fn platform_fields_ignore_same_named_labels() {
    // `node.platform.arch` reads the reported arch, not a user label that
    // happens to be called `arch`.
    let hosts = vec![host("h1").label("arch", "aarch64")];
    let svc = service("api").constraint("node.platform.arch == aarch64");
    assert!(choose(&hosts, &svc).is_err());
}

#[test]
fn the_first_unmet_constraint_is_the_reason() {
    let hosts = vec![host("h1").label("zone", "east")];
    let svc = service("api")
        .constraint("node.labels.zone == east")
        .constraint("node.labels.disk == ssd")
        .constraint("node.hostname == h9");
    let err = choose(&hosts, &svc).unwrap_err();
    assert_eq!(
        err.rejected["h1"],
        Rejection::Constraint(constraint("node.labels.disk == ssd"))
    );
}

#[test]
fn a_down_host_is_reported_down_before_anything_else() {
    let hosts = vec![host("h1").down()];
    let svc = service("api").constraint("node.labels.zone == east");
    let err = choose(&hosts, &svc).unwrap_err();
    assert_eq!(err.rejected["h1"], Rejection::Down);
}

#[test]
fn satisfies_reads_one_constraint() {
    let info = host("h1").label("zone", "east").info;
    assert!(satisfies(&info, &constraint("node.labels.zone == east")));
    assert!(!satisfies(&info, &constraint("node.labels.zone != east")));
    assert!(satisfies(&info, &constraint("node.labels.rack != r1")));
    assert!(!satisfies(&info, &constraint("node.labels.rack == r1")));
}
