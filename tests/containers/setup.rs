//! Set-up shared by the container tests: a cluster with a registry that
//! holds the test image, container hosts, pushing with the CLI.

use crate::cleanup::HostDirs;
use crate::common::Cluster;
use crate::image;
use crate::registry::Registry;
use std::path::Path;

/// A cluster and a registry holding the test image (busybox's httpd with
/// home page `index`) as `<registry>/web:1`, and the host data dirs to
/// clean up. Bind in this order — `let (mut dirs, mut c, registry) = …` —
/// so the registry and hosts are gone before the containers are cleaned up.
pub fn cluster_with_image(index: &str) -> (HostDirs, Cluster, Registry) {
    let dirs = HostDirs::new();
    let c = Cluster::start();
    let registry = Registry::start(c.dir.path());
    let layout = c.dir.path().join("web-image");
    image::busybox_httpd(&layout, image::host_arch(), index);
    push(&c, &layout, &format!("{}/web:1", registry.host));
    (dirs, c, registry)
}

/// Starts a container host that may pull from `registry` over plain HTTP,
/// with its own container subnet and `more` flags.
pub fn start_container_host(
    c: &mut Cluster,
    name: &str,
    bind: &str,
    data: &Path,
    registry: &str,
    subnet: &str,
    more: &[&str],
) {
    let flags = [
        &[
            "--insecure-registry",
            registry,
            "--container-subnet",
            subnet,
        ][..],
        more,
    ]
    .concat();
    c.start_host_at(name, bind, data, &flags);
}

/// Pushes with the CLI; returns the manifest digest it prints.
pub fn push(c: &Cluster, source: &Path, reference: &str) -> String {
    let out = c.atoll(&["push", &source.to_string_lossy(), reference, "--insecure"]);
    assert!(
        out.status.success(),
        "atoll push {reference} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
