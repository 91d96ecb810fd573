//! What reconciliation decides on: every deployed service (canaries and
//! the autoscaler's counts included) and every assigned instance, keyed by
//! (app, service). Built from the snapshot before any decision.

use super::instance::spec_hash;
use crate::snapshot::Snapshot;
use atoll_sdk::cluster::InstanceSpec;
use atoll_sdk::protocol::AppRecord;
use atoll_sdk::spec::Service;
use std::collections::{BTreeMap, BTreeSet};

/// (app, service): the unit reconciliation decides on.
pub(super) type Key<'a> = (&'a str, &'a str);

/// A service as currently deployed.
#[derive(Debug, Clone)]
pub(super) struct Desired<'a> {
    pub record: &'a AppRecord,
    pub service: &'a Service,
    pub hash: String,
    /// For a service's canary (`x-atoll.canary`, decided on as a service
    /// of its own): the service it is the canary of.
    pub canary_of: Option<&'a str>,
}

/// What a canary is decided as: `<service>~canary` (`~` cannot appear in a
/// Compose service name), its instances named and routed as the service's.
const CANARY_SUFFIX: &str = "~canary";

/// The canaries of deployed services as services of their own: the
/// service with the canary's artifact and replica count, by (app, parent).
pub(super) fn canary_services(snap: &Snapshot) -> BTreeMap<(String, String), Service> {
    let mut out = BTreeMap::new();
    for record in &snap.apps {
        for service in record.spec.services.values() {
            let Some(canary) = &service.canary else {
                continue;
            };
            let mut s = service.clone();
            s.name = format!("{}{CANARY_SUFFIX}", service.name);
            s.artifact = canary.artifact.clone();
            s.deploy.replicas = canary.replicas;
            s.canary = None;
            out.insert((record.spec.name.clone(), service.name.clone()), s);
        }
    }
    out
}

/// The deployed service a decision key stands for: a canary's parent, or
/// the service itself.
pub(super) fn decided_for(key: &str) -> &str {
    key.strip_suffix(CANARY_SUFFIX).unwrap_or(key)
}

/// The decision key of every canary instance's group, owned here because
/// the instances only carry their parent's name.
pub(super) fn canary_keys(snap: &Snapshot) -> BTreeSet<(String, String)> {
    (snap.assignments.values().flat_map(|a| &a.instances))
        .filter(|i| i.canary)
        .map(|i| (i.app.clone(), format!("{}{CANARY_SUFFIX}", i.service)))
        .collect()
}

/// An instance where it is currently assigned.
#[derive(Debug, Clone, Copy)]
pub(super) struct Placed<'a> {
    pub host: &'a str,
    pub spec: &'a InstanceSpec,
}

/// Autoscaled services whose replica count is not the file's: the
/// service with the autoscaler's count, by (app, service).
pub(super) fn scaled_services(snap: &Snapshot) -> BTreeMap<(String, String), Service> {
    let mut out = BTreeMap::new();
    for record in &snap.apps {
        for service in record.spec.services.values() {
            let key = (record.spec.name.clone(), service.name.clone());
            let n = crate::autoscale::replicas(service, snap.scale.get(&key).copied());
            if n != service.deploy.replicas {
                let mut s = service.clone();
                s.deploy.replicas = n;
                out.insert(key, s);
            }
        }
    }
    out
}

/// Every deployed service (and canary) by (app, service), in name order so
/// that plans are deterministic whatever order the apps were read in.
pub(super) fn desired<'a>(
    snap: &'a Snapshot,
    canaries: &'a BTreeMap<(String, String), Service>,
    scaled: &'a BTreeMap<(String, String), Service>,
) -> BTreeMap<Key<'a>, Desired<'a>> {
    let mut out = BTreeMap::new();
    // A stopped app (`atoll stop`) stays deployed with nothing running.
    for record in snap.apps.iter().filter(|r| !r.stopped) {
        for service in record.spec.services.values() {
            let key = (record.spec.name.as_str(), service.name.as_str());
            let owned = (record.spec.name.clone(), service.name.clone());
            let service = scaled.get(&owned).unwrap_or(service);
            let hash = spec_hash(service);
            out.entry(key).or_insert(Desired {
                record,
                service,
                hash,
                canary_of: None,
            });
            let parent = (record.spec.name.clone(), service.name.clone());
            if let Some(canary) = canaries.get(&parent) {
                let key = (record.spec.name.as_str(), canary.name.as_str());
                out.entry(key).or_insert(Desired {
                    record,
                    service: canary,
                    hash: spec_hash(canary),
                    canary_of: Some(service.name.as_str()),
                });
            }
        }
    }
    out
}

/// Every assigned instance by (app, service) — canary instances under
/// their canary's key — sorted by host then id.
pub(super) fn existing<'a>(
    snap: &'a Snapshot,
    canary_keys: &'a BTreeSet<(String, String)>,
) -> BTreeMap<Key<'a>, Vec<Placed<'a>>> {
    let mut out: BTreeMap<Key<'a>, Vec<Placed<'a>>> = BTreeMap::new();
    for (host, assignment) in &snap.assignments {
        for spec in &assignment.instances {
            let mut key = (spec.app.as_str(), spec.service.as_str());
            if spec.canary {
                let name = format!("{}{CANARY_SUFFIX}", spec.service);
                if let Some((_, owned)) = canary_keys.get(&(spec.app.clone(), name)) {
                    key.1 = owned.as_str();
                }
            }
            out.entry(key).or_default().push(Placed { host, spec });
        }
    }
    for placed in out.values_mut() {
        placed.sort_by(|a, b| (a.host, &a.spec.id).cmp(&(b.host, &b.spec.id)));
    }
    out
}
