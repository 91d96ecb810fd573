//! The autoscaler's I/O loop: every second, on the leader, it adds each
//! autoscaled service's load to its history, asks [`super::decide`] for a
//! count, and writes a changed count to the scale bucket (the
//! controller places or stops instances to match). It also answers the
//! gateways' wake-ups for services scaled to zero.

use super::decide::{self, Histories, Tick};
use crate::cluster::Cluster;
use atoll_sdk::protocol::{ScaleRecord, VERSION, Wake, endpoints_key, now_ms};
use atoll_sdk::spec::Autoscale;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How often the autoscaler looks at the load.
const TICK: Duration = Duration::from_secs(1);

type Key = (String, String);

pub(crate) async fn run(cluster: Arc<Cluster>) {
    let subject = cluster.buckets.names.wake();
    let mut wakes = cluster.subscribe(subject.clone(), "wake-ups").await;
    let mut histories = Histories::default();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let wake = async {
            match wakes.as_mut() {
                Some(w) => w.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tick.tick() => {
                if acting(&cluster) {
                    step(&cluster, &mut histories).await;
                }
            }
            Some(msg) = wake => {
                let sent = atoll_sdk::nats::published_to(&msg, &subject);
                if let (true, true, Ok(w)) = (sent, acting(&cluster), serde_json::from_slice::<Wake>(&msg.payload)) {
                    wake_up(&cluster, &w).await;
                }
            }
        }
    }
}

/// Only the leader decides, and only once it has read the apps and the
/// earlier decisions (an unread bucket looks empty).
fn acting(cluster: &Cluster) -> bool {
    cluster.is_leading() && cluster.settled()
}

/// Every autoscaled service of every app, with its settings.
fn autoscaled(cluster: &Cluster) -> BTreeMap<Key, (Autoscale, u32, u64)> {
    let mut out = BTreeMap::new();
    for record in cluster.apps.all().into_values().map(|v| v.value) {
        for s in record.spec.services.values() {
            if let Some(a) = s.autoscale {
                let key = (record.spec.name.clone(), s.name.clone());
                out.insert(key, (a, s.deploy.replicas, record.deployed_at_ms));
            }
        }
    }
    out
}

/// The count last decided for a service and when: its record, or the
/// initial count as of its deploy.
fn current(
    cluster: &Cluster,
    key: &Key,
    a: &Autoscale,
    replicas: u32,
    deployed_ms: u64,
) -> (u32, u64) {
    match cluster.scale.get(&endpoints_key(&key.0, &key.1)) {
        Some(r) => (r.value.replicas, r.value.at_ms),
        None => (decide::initial_replicas(a, replicas), deployed_ms),
    }
}

async fn step(cluster: &Cluster, histories: &mut Histories<Key>) {
    let now = now_ms();
    let loads = cluster.load().services(now);
    let services = autoscaled(cluster);
    let statuses = cluster.statuses.all();
    let ticks = (services.iter())
        .map(|(key, (a, replicas, deployed_ms))| {
            let (current, changed_ms) = current(cluster, key, a, *replicas, *deployed_ms);
            // Some instances found no host: grow no further than what runs.
            let status = statuses.get(&key.0).map(|s| &s.value);
            let room = status
                .filter(|s| s.unplaced.contains_key(&key.1))
                .map(|s| s.assigned.get(&key.1).copied().unwrap_or(0));
            let tick = Tick {
                cfg: *a,
                current,
                changed_ms,
                room,
                load: loads.get(key).map_or(0.0, |l| l.metric(a.metric)),
            };
            (key.clone(), tick)
        })
        .collect();
    for (key, from, d) in histories.tick(&ticks, now) {
        set(cluster, &key, from, d.replicas, d.reason).await;
    }
    // Decisions for services that are gone, or no longer autoscaled.
    for (name, _) in cluster.scale.all() {
        let known = (services.keys()).any(|(app, s)| endpoints_key(app, s) == name);
        if !known && cluster.fence().check(std::time::Instant::now()).is_ok() {
            let expected = cluster.scale.get(&name).map(|v| v.revision);
            let _ = crate::cas::compare_and_delete(&cluster.buckets.scale, &name, expected).await;
        }
    }
}

/// A gateway holds a request for a service with no instance: one now.
async fn wake_up(cluster: &Cluster, w: &Wake) {
    let key = (w.app.clone(), w.service.clone());
    let Some((a, replicas, deployed_ms)) = autoscaled(cluster).remove(&key) else {
        return;
    };
    let (current, _) = current(cluster, &key, &a, replicas, deployed_ms);
    if current == 0 {
        set(cluster, &key, 0, 1, "a request is waiting".into()).await;
    }
}

async fn set(cluster: &Cluster, key: &Key, from: u32, to: u32, reason: String) {
    let record = ScaleRecord {
        v: VERSION,
        app: key.0.clone(),
        service: key.1.clone(),
        replicas: to,
        at_ms: now_ms(),
        reason: reason.clone(),
    };
    let Ok(bytes) = serde_json::to_vec(&record) else {
        return;
    };
    let name = endpoints_key(&key.0, &key.1);
    // Fenced as the controller's writes: only while the lease holds, and
    // only over the record this decision was made from.
    if let Err(why) = cluster.fence().check(std::time::Instant::now()) {
        tracing::warn!(service = name, %why, "not recording a scaling decision");
        return;
    }
    let expected = cluster.scale.get(&name).map(|v| v.revision);
    let kv = &cluster.buckets.scale;
    if let Err(e) = crate::cas::compare_and_set(kv, &name, bytes.into(), expected).await {
        tracing::warn!(service = name, error = %e, "cannot record a scaling decision");
        return;
    }
    let msg = format!("{}: {from} → {to} ({reason})", key.1);
    cluster.publish_event("autoscale", Some(&key.0), msg).await;
    // The controller's snapshot reads the mirror: wake it once that shows
    // the decision.
    cluster
        .wait_for_mirror(|c| c.scale.get(&name).is_some_and(|r| r.value == record))
        .await;
    cluster.wake_controller();
}
