//! The server's shared view of the cluster: mirrors of the JetStream
//! buckets plus the observed state fed by heartbeats and the load board
//! fed by load samples. The API, the controller and the autoscaler read
//! it; apps are written only by [`crate::revisions`], assignments only by
//! the controller.

use crate::observed::{Changes, Observed};
use crate::snapshot::{HostSnapshot, Snapshot, drop_removed};
use atoll_sdk::cluster::{Assignment, Capacity, HostInfo, HostState};
use atoll_sdk::nats::{Buckets, Mirror, MirrorView};
use atoll_sdk::protocol::{
    AppRecord, AppStatus, Beat, Endpoints, Event, RemovedHost, ScaleRecord, VERSION, Verdict,
    now_ms,
};
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub(crate) struct Cluster {
    pub buckets: Buckets,
    pub apps: MirrorView<AppRecord>,
    pub assignments: MirrorView<Assignment>,
    pub statuses: MirrorView<AppStatus>,
    pub endpoints: MirrorView<Endpoints>,
    pub removed_hosts: MirrorView<RemovedHost>,
    /// Hosts cordoned or draining, by name.
    pub availability: MirrorView<atoll_sdk::protocol::HostAvailability>,
    /// The autoscaler's decisions, by `app.service`.
    pub scale: MirrorView<ScaleRecord>,
    /// JetStream replicas of the cluster's buckets (as the server
    /// decided at start), for a bucket made again.
    pub replicas: usize,
    /// What deployed files may ask for (`--allow-cap`).
    pub policy: crate::policy::Policy,
    /// Secret and config values, sealed.
    pub vault: Arc<crate::secrets::Vault>,
    /// Counters for `/metrics`.
    pub telemetry: crate::telemetry::Telemetry,
    /// Read through [`Cluster::observed`].
    observed: Mutex<Observed>,
    /// The hosts' load samples, as rates; read through [`Cluster::load`].
    load: Mutex<crate::load_board::LoadBoard>,
    /// The leader lease as this server holds it (its task publishes it).
    fence: tokio::sync::watch::Receiver<crate::lease::Fence>,
    /// Woken when something changed that the controller acts on.
    observed_changed: Notify,
    /// How silence is judged.
    detection: Detection,
    started: Instant,
    /// When this server's own NATS connection last came back, while its
    /// reconnect grace runs; `None` once it has passed (or before any loss).
    nats_back: Mutex<Option<Instant>>,
    _mirrors: Mirrors,
}

/// How the server judges silence.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Detection {
    /// A host silent this long is `disconnected`.
    pub down_after: Duration,
    /// More than this share of the hosts silent within one window: hold.
    pub mass_loss: f64,
    /// After this server's NATS connection comes back, hosts have this
    /// long to be heard before any is declared silent.
    pub reconnect_grace: Duration,
}

impl Detection {
    /// The window within which hosts going silent count as one mass loss:
    /// a few heartbeat timeouts, at least 10 s (clients reconnect with
    /// backoff, and a cut link silences its hosts over a few beats).
    fn window_ms(&self) -> u64 {
        (self.down_after.as_millis() as u64 * 3).max(10_000)
    }
}

/// Mirrors stop their watch tasks when dropped; the cluster keeps them
/// alive.
type Mirrors = (
    Mirror<AppRecord>,
    Mirror<Assignment>,
    Mirror<AppStatus>,
    Mirror<Endpoints>,
    Mirror<RemovedHost>,
    Mirror<ScaleRecord>,
    Mirror<atoll_sdk::protocol::HostAvailability>,
);

impl Cluster {
    pub(crate) async fn open(
        buckets: Buckets,
        detection: Detection,
        fence: tokio::sync::watch::Receiver<crate::lease::Fence>,
        replicas: usize,
        policy: crate::policy::Policy,
        vault: Arc<crate::secrets::Vault>,
    ) -> Arc<Cluster> {
        let apps = Mirror::start(buckets.apps.clone()).await;
        let assignments = Mirror::start(buckets.assignments.clone()).await;
        let statuses = Mirror::start(buckets.status.clone()).await;
        let endpoints = Mirror::start(buckets.endpoints.clone()).await;
        let removed_hosts = Mirror::start(buckets.removed_hosts.clone()).await;
        let availability = Mirror::start(buckets.availability.clone()).await;
        let scale = Mirror::start(buckets.scale.clone()).await;
        Arc::new(Cluster {
            scale: scale.view(),
            load: Mutex::default(),
            fence,
            telemetry: Default::default(),
            apps: apps.view(),
            assignments: assignments.view(),
            statuses: statuses.view(),
            endpoints: endpoints.view(),
            removed_hosts: removed_hosts.view(),
            availability: availability.view(),
            buckets,
            observed: Mutex::new(Observed::default()),
            observed_changed: Notify::new(),
            detection,
            started: Instant::now(),
            replicas,
            policy,
            vault,
            nats_back: Mutex::default(),
            _mirrors: (
                apps,
                assignments,
                statuses,
                endpoints,
                removed_hosts,
                scale,
                availability,
            ),
        })
    }

    pub(crate) fn observed(&self) -> std::sync::MutexGuard<'_, Observed> {
        self.observed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits (at most 2 s) until the mirrors satisfy `done`, after a write
    /// whose effect the next step reads from them.
    pub(crate) async fn wait_for_mirror(&self, done: impl Fn(&Cluster) -> bool) {
        // Polled, so it serves every mirror (apps, removed hosts…); bounded.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while !done(self) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await;
    }

    /// Wakes the controller for a pass now (it also runs every second).
    pub(crate) fn wake_controller(&self) {
        self.observed_changed.notify_one();
    }

    /// Completes when something woke the controller (see
    /// [`Cluster::wake_controller`]).
    pub(crate) async fn controller_woken(&self) {
        self.observed_changed.notified().await;
    }

    /// Whether this server holds the leader lease.
    pub(crate) fn is_leading(&self) -> bool {
        self.fence().leading()
    }

    /// The lease as it stands: check it before every write.
    pub(crate) fn fence(&self) -> crate::lease::Fence {
        *self.fence.borrow()
    }

    /// Changes when the lease is taken, renewed or lost.
    pub(crate) fn fence_changes(&self) -> tokio::sync::watch::Receiver<crate::lease::Fence> {
        self.fence.clone()
    }

    pub(crate) fn load(&self) -> std::sync::MutexGuard<'_, crate::load_board::LoadBoard> {
        self.load.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A consistent-enough copy of everything decision code reads. Hosts
    /// named in assignments but never heard from are listed as down once
    /// the start-up grace period is over (their heartbeats would have
    /// arrived by then). Hosts an operator removed are left out.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let observed = self.observed();
        let mut hosts = observed.hosts();
        let assignments: std::collections::BTreeMap<String, Assignment> = self
            .assignments
            .all()
            .into_iter()
            .map(|(k, v)| (k, v.value))
            .collect();
        // Never heard since this server started: silent since the start-up
        // grace ended (the controller does not act before).
        let grace_end = now_ms().saturating_sub(self.started.elapsed().as_millis() as u64)
            + self.detection.down_after.as_millis() as u64;
        for host in assignments.keys() {
            if !observed.knows(host) {
                hosts.push(HostSnapshot {
                    info: unknown_host(host),
                    state: HostState::Disconnected,
                    joined_ms: 0,
                    silent_since_ms: Some(grace_end),
                    availability: Default::default(),
                    drain_volumes: false,
                });
            }
        }
        drop_removed(&mut hosts, &self.removed());
        for h in &mut hosts {
            if let Some(a) = self.availability.get(h.name()) {
                h.availability = a.value.availability;
                h.drain_volumes = a.value.volumes;
            }
        }
        // What the controller's last pass said of each app.
        let statuses = self.statuses.all();
        let unplaced = (statuses.iter())
            .flat_map(|(app, s)| (s.value.unplaced.keys()).map(|svc| (app.clone(), svc.clone())))
            .collect();
        let updated = (statuses.into_iter())
            .filter(|(_, s)| !s.value.updated.is_empty())
            .map(|(app, s)| (app, s.value.updated))
            .collect();
        let hold = self.hold_reason(&hosts);
        Snapshot {
            apps: self.apps.all().into_values().map(|v| v.value).collect(),
            hosts,
            assignments,
            observed: observed.instances(),
            observed_on: observed.locations(),
            seen_since: observed.seen_since(),
            unconfirmed: observed.unconfirmed(),
            hold,
            now_ms: now_ms(),
            scale: (self.scale.all().into_values())
                .map(|r| ((r.value.app, r.value.service), r.value.replicas))
                .collect(),
            unplaced,
            updated,
        }
    }

    /// Why the controller holds now, if it does: this server lost NATS
    /// (or got it back so recently that hosts may not have reconnected
    /// yet), or more than the mass-loss share of the hosts went silent
    /// together.
    fn hold_reason(&self, hosts: &[HostSnapshot]) -> Option<String> {
        let client = self.buckets.js.client();
        if client.connection_state() != async_nats::connection::State::Connected {
            return Some("this server lost its connection to NATS".into());
        }
        if self.in_reconnect_grace() {
            return Some("this server's connection to NATS just came back".into());
        }
        let silent: Vec<u64> = hosts.iter().filter_map(|h| h.silent_since_ms).collect();
        let d = &self.detection;
        crate::mass_loss::holding(&silent, hosts.len(), d.window_ms(), d.mass_loss).then(|| {
            format!(
                "{} of {} hosts went silent together (more than {:.0}%)",
                silent.len(),
                hosts.len(),
                d.mass_loss * 100.0
            )
        })
    }

    fn in_reconnect_grace(&self) -> bool {
        let back = self.nats_back.lock().unwrap_or_else(|e| e.into_inner());
        back.is_some_and(|t| t.elapsed() < self.detection.reconnect_grace)
    }

    /// Hosts an operator removed, by name.
    pub(crate) fn removed(&self) -> std::collections::BTreeMap<String, RemovedHost> {
        (self.removed_hosts.all().into_iter())
            .map(|(k, v)| (k, v.value))
            .collect()
    }

    /// Whether every host with an assignment has been heard from, or the
    /// grace period after start is over. Before that, a restarted server
    /// would take live hosts for dead ones (removed hosts are not waited
    /// for).
    pub(crate) fn settled(&self) -> bool {
        // An apps mirror that has not loaded yet looks like "no apps", and
        // reconciling that would stop everything.
        let loaded = self.apps.loaded()
            && self.assignments.loaded()
            && self.statuses.loaded()
            && self.endpoints.loaded()
            && self.removed_hosts.loaded()
            && self.availability.loaded()
            && self.scale.loaded();
        if !loaded {
            return false;
        }
        if self.started.elapsed() > self.detection.down_after {
            return true;
        }
        let observed = self.observed();
        let removed = self.removed();
        (self.assignments.all().keys()).all(|h| observed.knows(h) || removed.contains_key(h))
    }

    /// A subscription to `subject` (`what` names it in the error logged
    /// when there is none).
    pub(crate) async fn subscribe(
        &self,
        subject: String,
        what: &str,
    ) -> Option<async_nats::Subscriber> {
        let client = self.buckets.js.client();
        match client.subscribe(subject.clone()).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(%subject, error = %e, "cannot subscribe to {what}");
                None
            }
        }
    }

    pub(crate) async fn publish_event(&self, kind: &str, app: Option<&str>, message: String) {
        let event = Event {
            v: VERSION,
            at_ms: now_ms(),
            kind: kind.to_string(),
            app: app.map(str::to_string),
            message,
        };
        tracing::info!(kind, app, "{}", event.message);
        if let Ok(bytes) = serde_json::to_vec(&event) {
            let client = self.buckets.js.client();
            let _ = client
                .publish(self.buckets.names.events(), bytes.into())
                .await;
        }
    }
}

fn unknown_host(name: &str) -> HostInfo {
    HostInfo {
        name: name.to_string(),
        address: String::new(),
        mesh_port: atoll_sdk::cluster::DEFAULT_MESH_PORT,
        labels: Default::default(),
        arch: String::new(),
        os: String::new(),
        capacity: Capacity::default(),
        started_at_ms: 0,
        version: String::new(),
    }
}

/// Feeds the hosts' load samples into the load board.
pub(crate) async fn watch_load(cluster: Arc<Cluster>) {
    let subject = cluster.buckets.names.metrics_all();
    let Some(mut sub) = cluster.subscribe(subject, "load samples").await else {
        return;
    };
    while let Some(msg) = sub.next().await {
        match serde_json::from_slice::<atoll_sdk::metrics::HostSample>(&msg.payload) {
            Ok(s) if cluster.buckets.names.sender(&msg.subject) != Some(s.host.as_str()) => {
                tracing::warn!(subject = %msg.subject, host = %s.host, "ignoring a load sample sent on another host's subject");
            }
            Ok(s) if s.v == VERSION => cluster.load().record(s, now_ms()),
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(subject = %msg.subject, error = %e, "ignoring a malformed load sample")
            }
        }
    }
}

/// Feeds heartbeats into observed state, and marks silent hosts down.
pub(crate) async fn watch_heartbeats(cluster: Arc<Cluster>) {
    let subject = cluster.buckets.names.heartbeat_all();
    let Some(mut sub) = cluster.subscribe(subject, "heartbeats").await else {
        return;
    };
    let sweeper = tokio::spawn(sweep_loop(cluster.clone()));
    while let Some(msg) = sub.next().await {
        let beat = match Beat::decode(&msg.payload) {
            Ok(beat) => beat,
            Err(e) => {
                tracing::warn!(subject = %msg.subject, error = %e, "ignoring a malformed heartbeat");
                continue;
            }
        };
        // The subject is what NATS permissions tie to a host's
        // credentials: a heartbeat speaks for the host it names only.
        let Some(sender) = cluster.buckets.names.sender(&msg.subject) else {
            continue;
        };
        let changes = match beat {
            Beat::Full(hb) if hb.host.name != sender => {
                tracing::warn!(subject = %msg.subject, host = %hb.host.name, "ignoring a heartbeat sent on another host's subject");
                continue;
            }
            Beat::Full(hb) if hb.v != VERSION => {
                tracing::warn!(host = %hb.host.name, v = hb.v, "ignoring a heartbeat of another protocol version");
                continue;
            }
            Beat::Full(hb) => cluster.observed().record(*hb, Instant::now(), now_ms()),
            Beat::Pulse(p) if p.v != VERSION => continue,
            Beat::Pulse(p) => {
                let (changes, verdict) =
                    (cluster.observed()).pulse(sender, &p, Instant::now(), now_ms());
                if verdict == Verdict::Resync
                    && let Some(reply) = msg.reply
                {
                    tracing::debug!(host = sender, "asking for a host's whole state");
                    let client = cluster.buckets.js.client();
                    let _ = client.publish(reply, Default::default()).await;
                }
                changes
            }
        };
        announce(&cluster, changes).await;
    }
    sweeper.abort();
}

/// Silence means a host is gone only while this server itself hears NATS:
/// while disconnected every host counts as just seen, and after
/// reconnecting no host is declared silent within the reconnect grace
/// (hosts reconnect with backoff too); each has its full timeout from
/// when it is heard again.
async fn sweep_loop(cluster: Arc<Cluster>) {
    let client = cluster.buckets.js.client();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut was_connected = true;
    loop {
        tick.tick().await;
        let now = Instant::now();
        let connected = client.connection_state() == async_nats::connection::State::Connected;
        if !connected {
            was_connected = false;
            cluster.observed().touch_all(now);
            continue;
        }
        if !was_connected {
            was_connected = true;
            let grace = cluster
                .detection
                .reconnect_grace
                .max(cluster.detection.down_after);
            cluster.observed().grace(now, now + grace);
            *cluster.nats_back.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
            tracing::info!(
                ?grace,
                "NATS is back: hosts have the reconnect grace to be heard"
            );
        }
        let changes = cluster
            .observed()
            .sweep(now, now_ms(), cluster.detection.down_after);
        announce(&cluster, changes).await;
    }
}

async fn announce(cluster: &Cluster, changes: Changes) {
    if !changes.any() {
        return;
    }
    cluster.observed_changed.notify_one();
    for h in changes.hosts_up {
        cluster
            .publish_event("host-up", None, format!("host {h} is ready"))
            .await;
    }
    for h in changes.hosts_down {
        cluster
            .publish_event(
                "disconnected",
                None,
                format!("host {h} missed its heartbeats: disconnected"),
            )
            .await;
    }
}
