//! The plain-data view of the cluster that decision code reads.

use atoll_sdk::cluster::{Assignment, HostInfo, HostState, InstanceState, InstanceStatus};
use atoll_sdk::protocol::{AppRecord, Availability, RemovedHost, UpdateDone};
use std::collections::BTreeMap;

/// A host as the controller sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HostSnapshot {
    pub info: HostInfo,
    /// `Ready` or `Disconnected` (silent); whether a silent host counts as
    /// `down` depends on its instances' policies (see `disconnect.rs`).
    pub state: HostState,
    /// When this run of the host was first heard (server clock, ms).
    pub joined_ms: u64,
    /// When it went silent (server clock, ms), while it is.
    pub silent_since_ms: Option<u64>,
    /// Cordoned or draining: it takes no new instances.
    pub availability: Availability,
    /// A drain moves its services with named volumes too.
    pub drain_volumes: bool,
}

impl HostSnapshot {
    pub(crate) fn name(&self) -> &str {
        &self.info.name
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.state == HostState::Ready
    }

    /// Whether new instances may be placed here: up, and not cordoned or
    /// draining.
    pub(crate) fn takes_new(&self) -> bool {
        self.is_ready() && self.availability == Availability::Active
    }

    /// Whether a drain moves `service`'s instances off this host: it is
    /// draining, and the service keeps no data here (named volumes) or
    /// the drain moves those too (`--volumes`).
    pub(crate) fn drains(&self, service: &atoll_sdk::spec::Service) -> bool {
        self.availability == Availability::Draining
            && (self.drain_volumes || !service.has_named_volumes())
    }
}

/// Leaves out the hosts an operator removed: a removed host's instances
/// then count as lost (named volumes or not) and nothing is placed on it.
/// A host that joined after its removal (both on the server's clock) is a
/// new host and stays.
pub(crate) fn drop_removed(hosts: &mut Vec<HostSnapshot>, removed: &BTreeMap<String, RemovedHost>) {
    hosts.retain(|h| {
        removed
            .get(h.name())
            .is_none_or(|r| h.joined_ms > r.removed_at_ms)
    });
}

/// Everything reconciliation needs, read by the controller shell from
/// JetStream (desired apps, assignments, the autoscaler's counts, what the
/// last pass said in the app statuses) and from heartbeats (hosts,
/// observed instance states).
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// Desired state: every deployed app, latest revision.
    pub apps: Vec<AppRecord>,
    /// Every known host, ready or down.
    pub hosts: Vec<HostSnapshot>,
    /// Current assignments by host name.
    pub assignments: BTreeMap<String, Assignment>,
    /// Last reported status of each instance on a host that is up, by
    /// instance id.
    pub observed: BTreeMap<String, InstanceStatus>,
    /// The host that reported each observed instance, by instance id
    /// (whether assigned there or not: a host whose assignment the
    /// cluster lost still reports what it runs, see `reconcile::adopt`).
    pub observed_on: BTreeMap<String, String>,
    /// Since when (server clock, ms) each observed instance has been in
    /// its state: the durations decisions wait are judged on this, never
    /// on a host's clock.
    pub seen_since: BTreeMap<String, u64>,
    /// The last status silent hosts reported of their instances.
    pub unconfirmed: BTreeMap<String, InstanceStatus>,
    /// Why nothing is taken off silent hosts now (this server lost NATS,
    /// or most of the fleet went silent at once), when it is held.
    pub hold: Option<String>,
    /// When the snapshot was taken (Unix milliseconds), for the waits of
    /// rolling updates.
    pub now_ms: u64,
    /// (app, service) → replicas the autoscaler decided, for services
    /// with `x-atoll.autoscale`.
    pub scale: BTreeMap<(String, String), u32>,
    /// (app, service) whose instances did not all find a host in the last
    /// pass (a start-first update then makes room by stopping first).
    pub unplaced: std::collections::BTreeSet<(String, String)>,
    /// app → service → when its last rolling update finished, for
    /// `monitor` (from the app statuses the controller wrote).
    pub updated: BTreeMap<String, BTreeMap<String, UpdateDone>>,
}

impl Snapshot {
    /// The host named `name`, if it ever joined.
    pub(crate) fn host(&self, name: &str) -> Option<&HostSnapshot> {
        self.hosts.iter().find(|h| h.info.name == name)
    }

    /// The desired state of the app named `name`.
    pub(crate) fn app(&self, name: &str) -> Option<&AppRecord> {
        self.apps.iter().find(|a| a.spec.name == name)
    }

    /// The last state an instance's host reported for it; `None` when no
    /// report arrived yet (a freshly assigned instance).
    pub(crate) fn observed_state(&self, id: &str) -> Option<InstanceState> {
        self.observed.get(id).map(|s| s.state)
    }
}

/// Small builders of hosts, services and apps for unit tests of the
/// decision code (placement, reconcile and whoever reads a [`Snapshot`]).
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use atoll_sdk::cluster::Capacity;
    use atoll_sdk::spec::{
        App, Artifact, Constraint, ConstraintField, ConstraintOp, Deploy, Mode, Preference, Service,
    };

    pub const MIB: u64 = 1024 * 1024;

    /// A ready `x86_64`/`linux` host with 1 GiB and 4 CPUs, labelled like a
    /// real host (`hostname`, `arch`, `os`).
    pub fn host(name: &str) -> HostSnapshot {
        let joined_ms = 1;
        let labels = [("hostname", name), ("arch", "x86_64"), ("os", "linux")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HostSnapshot {
            info: HostInfo {
                name: name.into(),
                address: format!("{name}.test:7000"),
                mesh_port: atoll_sdk::cluster::DEFAULT_MESH_PORT,
                labels,
                arch: "x86_64".into(),
                os: "linux".into(),
                capacity: Capacity {
                    memory: 1024 * MIB,
                    cpus_milli: 4000,
                },
                started_at_ms: 1,
                version: "test".into(),
            },
            state: HostState::Ready,
            joined_ms,
            silent_since_ms: None,
            availability: Default::default(),
            drain_volumes: false,
        }
    }

    /// Chained tweaks of a fixture host.
    pub trait HostExt {
        fn label(self, key: &str, value: &str) -> Self;
        fn arch(self, arch: &str) -> Self;
        fn os(self, os: &str) -> Self;
        fn capacity(self, memory: u64, cpus_milli: u32) -> Self;
        fn down(self) -> Self;
        fn silent_since(self, ms: u64) -> Self;
    }

    impl HostExt for HostSnapshot {
        fn label(mut self, key: &str, value: &str) -> Self {
            self.info.labels.insert(key.into(), value.into());
            self
        }
        fn arch(mut self, arch: &str) -> Self {
            self.info.arch = arch.into();
            self.label("arch", arch)
        }
        fn os(mut self, os: &str) -> Self {
            self.info.os = os.into();
            self.label("os", os)
        }
        fn capacity(mut self, memory: u64, cpus_milli: u32) -> Self {
            self.info.capacity = Capacity { memory, cpus_milli };
            self
        }
        fn down(mut self) -> Self {
            self.state = HostState::Disconnected;
            self.silent_since_ms = Some(0);
            self
        }
        fn silent_since(mut self, ms: u64) -> Self {
            self.state = HostState::Disconnected;
            self.silent_since_ms = Some(ms);
            self
        }
    }

    /// A replicated service with one replica of an image and no placement
    /// rules.
    pub fn service(name: &str) -> Service {
        Service {
            name: name.into(),
            artifact: Artifact::Image(format!("registry.test/{name}:1")),
            timeout_ms: 30_000,
            environment: BTreeMap::new(),
            ports: Vec::new(),
            deploy: Deploy::default(),
            container: Default::default(),
            volumes: Vec::new(),
            health: None,
            canary: None,
            autoscale: None,
            disconnect: Default::default(),
            files: Vec::new(),
            restarted_at_ms: None,
        }
    }

    /// Chained tweaks of a fixture service.
    pub trait ServiceExt {
        fn replicas(self, n: u32) -> Self;
        fn global(self) -> Self;
        /// `"node.labels.zone == east"`, as written in a Compose file.
        fn constraint(self, text: &str) -> Self;
        fn spread(self, label: &str) -> Self;
        fn max_per_node(self, n: u32) -> Self;
        fn reserve(self, memory: u64, cpus_milli: u32) -> Self;
        fn env(self, key: &str, value: &str) -> Self;
    }

    impl ServiceExt for Service {
        fn replicas(mut self, n: u32) -> Self {
            self.deploy.replicas = n;
            self
        }
        fn global(mut self) -> Self {
            self.deploy.mode = Mode::Global;
            self
        }
        fn constraint(mut self, text: &str) -> Self {
            self.deploy.placement.constraints.push(constraint(text));
            self
        }
        fn spread(mut self, label: &str) -> Self {
            let spread_label = label.into();
            self.deploy
                .placement
                .preferences
                .push(Preference { spread_label });
            self
        }
        fn max_per_node(mut self, n: u32) -> Self {
            self.deploy.placement.max_replicas_per_node = Some(n);
            self
        }
        fn reserve(mut self, memory: u64, cpus_milli: u32) -> Self {
            let r = &mut self.deploy.resources.reservations;
            r.memory = (memory > 0).then_some(memory);
            r.cpus_milli = (cpus_milli > 0).then_some(cpus_milli);
            self
        }
        fn env(mut self, key: &str, value: &str) -> Self {
            self.environment.insert(key.into(), value.into());
            self
        }
    }

    /// Parses the few constraint spellings tests use; the real parser lives
    /// in `atoll_sdk::spec`.
    pub fn constraint(text: &str) -> Constraint {
        let (field, op, value) = if let Some((f, v)) = text.split_once("==") {
            (f, ConstraintOp::Eq, v)
        } else if let Some((f, v)) = text.split_once("!=") {
            (f, ConstraintOp::Ne, v)
        } else {
            panic!("fixture constraint without == or !=: {text}")
        };
        let field = match field.trim() {
            "node.hostname" => ConstraintField::Hostname,
            "node.platform.arch" => ConstraintField::Arch,
            "node.platform.os" => ConstraintField::Os,
            f => ConstraintField::Label(
                f.strip_prefix("node.labels.")
                    .unwrap_or_else(|| panic!("unknown fixture field {f}"))
                    .into(),
            ),
        };
        Constraint {
            field,
            op,
            value: value.trim().into(),
        }
    }

    /// Revision 1 of an app made of `services`.
    pub fn app(name: &str, services: Vec<Service>) -> AppRecord {
        AppRecord {
            v: 1,
            revision: 1,
            spec: App {
                name: name.into(),
                services: services.into_iter().map(|s| (s.name.clone(), s)).collect(),
            },
            compose: String::new(),
            deployed_at_ms: 0,
            warnings: Vec::new(),
            rollback_of: None,
            cause: None,
            importing_since_ms: None,
            vips: Default::default(),
            stopped: false,
        }
    }

    /// A cluster with nothing assigned yet.
    pub fn snapshot(hosts: Vec<HostSnapshot>, apps: Vec<AppRecord>) -> Snapshot {
        Snapshot {
            apps,
            hosts,
            ..Snapshot::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_sdk::cluster::Capacity;

    fn host(name: &str, joined_ms: u64, state: HostState) -> HostSnapshot {
        HostSnapshot {
            joined_ms,
            silent_since_ms: None,
            availability: Default::default(),
            drain_volumes: false,
            info: HostInfo {
                name: name.into(),
                address: String::new(),
                mesh_port: 0,
                labels: Default::default(),
                arch: String::new(),
                os: String::new(),
                capacity: Capacity::default(),
                started_at_ms: 0,
                version: String::new(),
            },
            state,
        }
    }

    #[test]
    fn removed_hosts_drop_out_until_one_starts_after_the_removal() {
        let removed = BTreeMap::from(["old", "back"].map(|n| {
            (
                n.to_string(),
                RemovedHost {
                    name: n.into(),
                    removed_at_ms: 100,
                },
            )
        }));
        let mut hosts = vec![
            host("old", 50, HostState::Down),
            host("back", 150, HostState::Down),
            host("other", 50, HostState::Down),
        ];
        drop_removed(&mut hosts, &removed);
        let names: Vec<&str> = hosts.iter().map(HostSnapshot::name).collect();
        assert_eq!(
            names,
            ["back", "other"],
            "a restarted host is a new host, even when down again"
        );
    }
}
