//! User namespaces (a host's default), end to end with real
//! containers through youki: root inside is host uid 100000, the image,
//! a named volume and a secret are usable through idmapped mounts and
//! shifted owners, an exec health check passes, and a service that opts
//! out shares the host's user namespace.

#[path = "containers/cleanup.rs"]
mod cleanup;
mod common;
#[allow(dead_code)]
#[path = "containers/image.rs"]
mod image;
#[allow(dead_code)]
#[path = "containers/registry.rs"]
mod registry;
#[path = "containers/setup.rs"]
mod setup;

use common::*;
use setup::{cluster_with_image, start_container_host};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The pids cgroup of an instance, v1 or v2.
fn pids_cgroup(id: &str) -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup/pids/atoll").join(id);
    match v1.exists() {
        true => v1,
        false => Path::new("/sys/fs/cgroup/atoll").join(id),
    }
}

/// The fields of the container's `/proc/self/uid_map` behind `at`.
fn uid_map(at: &str) -> Vec<String> {
    let (_, map) = http_get(at, "/cgi-bin/file?/proc/self/uid_map").expect("uid_map");
    let last = map.lines().last().unwrap_or_default();
    last.split_whitespace().map(str::to_string).collect()
}

#[test]
fn container_root_is_an_unprivileged_host_id_unless_the_service_opts_out() {
    let (mut dirs, mut c, registry) = cluster_with_image("mapped\n");
    let reg = registry.host.clone();
    let data = dirs.data("h1");
    let bind = "127.0.24.3";
    start_container_host(&mut c, "h1", bind, &data, &reg, "10.89.227.0/24", &[]);
    std::fs::write(c.dir.path().join("pw.txt"), "mapped-secret").expect("secret");
    let (port, host_port) = (free_port(), free_port());
    let file = c.compose(
        "mapped.yaml",
        &format!(
            "name: mapped
services:
  web:
    image: {reg}/web:1
    ports: [\"{port}:8080\"]
    stop_grace_period: 1s
    volumes: [\"data:/data\"]
    secrets: [pw]
    healthcheck:
      test: [\"CMD-SHELL\", \"test -f /www/index.html\"]
      interval: 1s
  host:
    image: {reg}/web:1
    ports: [\"{host_port}:8080\"]
    stop_grace_period: 1s
    x-atoll:
      userns: false
volumes:
  data: {{}}
secrets:
  pw:
    file: ./pw.txt
"
        ),
    );
    c.deploy_wait(&file);
    let at = format!("{bind}:{port}");
    // Served once its health check (run with `youki exec` in its user
    // namespace) passed.
    let body = wait_until("the container to serve", Duration::from_secs(30), || {
        http_get(&at, "/")
            .ok()
            .filter(|(s, _)| *s == 200)
            .map(|(_, b)| b)
    });
    assert!(body.contains("mapped"), "{body}");
    assert_eq!(uid_map(&at), ["0", "100000", "65536"]);
    // Root inside writes its image's files and its volume.
    let (_, note) = http_get(&at, "/cgi-bin/note?kept").expect("note");
    assert_eq!(note.trim(), "kept", "{note}");
    let on_disk = data.join("volumes/mapped/data/note");
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&on_disk).expect("the note on the host");
        assert_eq!(
            (meta.uid(), meta.gid()),
            (0, 0),
            "kept with the container's view of owners"
        );
    }
    let (_, secret) = http_get(&at, "/cgi-bin/file?/run/secrets/pw").expect("secret");
    assert!(secret.contains("mapped-secret"), "{secret}");
    assert!(secret.contains("-r--------    1 0        0"), "{secret}");
    // The service that opted out shares the host's.
    let host_at = format!("{bind}:{host_port}");
    assert_eq!(uid_map(&host_at), ["0", "0", "4294967295"]);
    // On the host, its processes run as 100000.
    let id = (c.instances("mapped").into_iter())
        .find(|r| r["service"] == "web")
        .and_then(|r| r["id"].as_str().map(str::to_string))
        .expect("web's instance");
    let pids = std::fs::read_to_string(pids_cgroup(&id).join("cgroup.procs")).unwrap_or_default();
    let pid = pids
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no process of {id}"));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let uid = (status.lines())
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .expect("Uid");
    assert_eq!(uid, "100000", "{status}");
    // The containers' roots pass through the data dir to their bundles;
    // nobody else lists it.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&data)
        .expect("data dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o711, "the data dir");
}
