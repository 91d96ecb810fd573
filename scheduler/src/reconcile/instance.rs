//! The [`InstanceSpec`] of a new instance, made from its app's desired
//! state.

use atoll_sdk::cluster::{ArtifactRef, InstanceSpec};
use atoll_sdk::digest::sha256;
use atoll_sdk::protocol::AppRecord;
use atoll_sdk::spec::{Artifact, Mode, Placement, Service};

/// Digest of what a service's instances run. Instances with the same hash
/// are interchangeable; a different hash means the service changed and its
/// instances must be replaced.
///
/// How many instances run and where (`replicas`, `mode`, `placement`) is
/// left out: scaling must not restart every instance, and reconcile
/// enforces placement on the instances it keeps (moving only those whose
/// host no longer matches). Everything else, including `deploy` fields
/// added later, counts, which errs on the side of replacing.
pub(crate) fn spec_hash(service: &Service) -> String {
    let mut what_runs = service.clone();
    what_runs.deploy.replicas = 0;
    what_runs.deploy.mode = Mode::default();
    what_runs.deploy.placement = Placement::default();
    // Rollout settings and the canary change how, not what, runs.
    what_runs.deploy.update = Default::default();
    what_runs.deploy.rollback = atoll_sdk::spec::UpdateConfig::rollback_default();
    what_runs.canary = None;
    // How many run is not what runs.
    what_runs.autoscale = None;
    // Nor what happens to them when their host is cut off.
    what_runs.disconnect = Default::default();
    // Maps in `Service` are BTreeMaps, so the JSON (and the hash) is stable.
    let json = serde_json::to_vec(&what_runs).expect("a Service always serializes to JSON");
    sha256(&json)
}

/// A service whose component is still a local path: the server uploads
/// local components and rewrites them to their digests before storing the
/// app, so seeing one here is a server bug, reported on the service rather
/// than crashing the controller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("component {path} was not uploaded to the artifact store; deploy it again")]
pub(super) struct NotUploaded {
    pub path: String,
}

/// An instance of `service` with an empty id, filled in once it has a host;
/// or why the service cannot run.
pub(super) fn template(
    record: &AppRecord,
    service: &Service,
    hash: &str,
) -> Result<InstanceSpec, NotUploaded> {
    let artifact = match &service.artifact {
        Artifact::Stored(digest) => ArtifactRef::Stored(digest.clone()),
        Artifact::Image(reference) => ArtifactRef::Image(reference.clone()),
        Artifact::Component(path) => return Err(NotUploaded { path: path.clone() }),
    };
    Ok(InstanceSpec {
        id: String::new(),
        app: record.spec.name.clone(),
        service: service.name.clone(),
        revision: record.revision,
        spec_hash: hash.to_string(),
        artifact,
        env: service.environment.clone(),
        ports: service.ports.clone(),
        limits: service.deploy.resources.limits,
        reservations: service.deploy.resources.reservations,
        timeout_ms: service.timeout_ms,
        container: service.container.clone(),
        app_services: record.spec.services.keys().cloned().collect(),
        service_vips: (record.spec.services.keys())
            .map(|s| (s.clone(), record.vip(s)))
            .collect(),
        volumes: service.volumes.clone(),
        files: service.files.clone(),
        health: service.health.clone(),
        canary: false,
        attempt: 0,
        avoid: Vec::new(),
        disconnect: service.disconnect,
        replaces: None,
    })
}
