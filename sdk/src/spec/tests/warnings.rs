//! Warnings: Compose keys atoll ignores, each naming its path and line.

use super::{ok, web};

#[test]
fn top_level_keys_not_implemented_yet() {
    let text = "version: '3.8'\nname: shop\nservices:\n  web:\n    image: nginx\nnetworks: {}\nvolumes: {}\nconfigs: {}\nsecrets: {}\ninclude: []\nmodels: {}\nx-anything: 1\n";
    assert_eq!(
        ok(text).warnings,
        [
            "version: obsolete in the Compose Specification, ignored (line 1)",
            "networks: not implemented yet, ignored (line 6)",
            "include: resolved by the atoll command line (atoll deploy, atoll config), which reads the files it names; sent to the API unresolved it is ignored (line 10)",
            "models: not implemented yet, ignored (line 11)",
        ]
    );
}

#[test]
fn service_keys_not_implemented_yet() {
    let text = web("tty: true\nstdin_open: true\ncpus: 2\nscale: 3");
    assert_eq!(
        ok(&text).warnings,
        [
            "services.web.tty: not implemented yet, ignored (line 4)",
            "services.web.stdin_open: not implemented yet, ignored (line 5)",
            "services.web.cpus: not implemented yet, ignored; use deploy.resources.limits.cpus (line 6)",
            "services.web.scale: not implemented yet, ignored; use deploy.replicas (line 7)",
        ]
    );
}

#[test]
fn every_compose_service_key_is_known() {
    // None of these may be an error: all are Compose keys. (The container
    // keys atoll reads, such as `command`, are tested in `container.rs`.)
    let keys = [
        "annotations",
        "attach",
        "blkio_config",
        "build",
        "cgroup_parent",
        "container_name",
        "cpu_count",
        "cpu_percent",
        "cpu_period",
        "cpu_quota",
        "cpu_rt_period",
        "cpu_rt_runtime",
        "cpu_shares",
        "cpus",
        "cpuset",
        "credential_spec",
        "depends_on",
        "develop",
        "dns",
        "dns_opt",
        "dns_search",
        "domainname",
        "external_links",
        "extra_hosts",
        "gpus",
        "group_add",
        "hostname",
        "isolation",
        "label_file",
        "labels",
        "links",
        "logging",
        "mac_address",
        "mem_limit",
        "mem_reservation",
        "mem_swappiness",
        "memswap_limit",
        "models",
        "networks",
        "oom_kill_disable",
        "oom_score_adj",
        "pids_limit",
        "platform",
        "post_start",
        "pre_stop",
        "provider",
        "pull_policy",
        "pull_refresh_after",
        "runtime",
        "scale",
        "stdin_open",
        "storage_opt",
        "tty",
        "use_api_socket",
        "userns_mode",
        "volumes_from",
    ];
    let body: String = keys.iter().map(|k| format!("{k}: x\n")).collect();
    let warnings = ok(&web(&body)).warnings;
    assert_eq!(warnings.len(), keys.len());
    for (k, w) in keys.iter().zip(&warnings) {
        assert!(
            w.starts_with(&format!("services.web.{k}: not implemented yet")),
            "{w}"
        );
    }
}

#[test]
fn deploy_keys_not_implemented_yet() {
    let text = web(
        "deploy:\n  update_config: {parallelism: 1}\n  rollback_config: {}\n  restart_policy: {condition: any}\n  labels: {a: b}\n  endpoint_mode: vip\n  resources:\n    limits:\n      pids: 10\n    reservations:\n      devices: []\n      generic_resources: []",
    );
    assert_eq!(
        ok(&text).warnings,
        [
            "services.web.deploy.labels: not implemented yet, ignored (line 8)",
            "services.web.deploy.endpoint_mode: not implemented yet, ignored (line 9)",
            "services.web.deploy.resources.reservations.devices: not implemented yet, ignored (line 14)",
            "services.web.deploy.resources.reservations.generic_resources: not implemented yet, ignored (line 15)",
        ]
    );
}

#[test]
fn x_atoll_keys_of_later_versions() {
    let text =
        "services:\n  api:\n    x-atoll:\n      component: api.wasm\n      capabilities: [http]\n";
    assert_eq!(
        ok(text).warnings,
        ["services.api.x-atoll.capabilities: not implemented yet, ignored (line 5)"]
    );
}

#[test]
fn port_details_that_are_ignored() {
    let text = web(
        "ports:\n  - 127.0.0.1:8080:80\n  - target: 81\n    published: 8081\n    host_ip: 0.0.0.0\n    app_protocol: http\n    mode: host",
    );
    assert_eq!(
        ok(&text).warnings,
        [
            "services.web.ports[0]: the host IP 127.0.0.1 is ignored: ports are published on every host's bind address (line 5)",
            "services.web.ports[1].host_ip: ignored: ports are published on every host's bind address (line 8)",
            "services.web.ports[1].app_protocol: not implemented yet, ignored (line 9)",
            "services.web.ports[1].mode: host mode is not implemented yet; the port is published on every host (ingress) (line 10)",
        ]
    );
}

#[test]
fn replicas_in_global_mode() {
    let text = web("deploy:\n  mode: global\n  replicas: 3");
    assert_eq!(
        ok(&text).warnings,
        [
            "services.web.deploy.replicas: ignored in global mode (one instance per matching host) (line 6)"
        ]
    );
}

#[test]
fn warnings_are_sorted_by_line_across_services() {
    let text = "services:\n  a:\n    image: x\n    tty: true\n  b:\n    image: y\n    stdin_open: true\nversion: '3'\n";
    assert_eq!(
        ok(text).warnings,
        [
            "services.a.tty: not implemented yet, ignored (line 4)",
            "services.b.stdin_open: not implemented yet, ignored (line 7)",
            "version: obsolete in the Compose Specification, ignored (line 8)",
        ]
    );
}

#[test]
fn keys_the_command_line_resolves_warn_when_they_reach_the_parser() {
    let p = ok(&web("extends: base\nenv_file: a.env"));
    assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    for w in &p.warnings {
        assert!(w.contains("resolved by the atoll command line"), "{w}");
    }
}
