//! What the load board shows users: the view of `atoll top` and the
//! server's Prometheus exposition (`/metrics`) — the board's sums joined
//! with what is deployed and where. Plain functions of plain data; the
//! HTTP handlers are in `api/load.rs`.

use crate::load_board::{HostLoad, ServiceLoad};
use crate::snapshot::Snapshot;
use crate::telemetry::RECONCILE_BOUNDS_S;
use atoll_sdk::api::{HostTop, ServiceTop, TopView};
use atoll_sdk::metrics::latency_bounds_s;
use atoll_sdk::prometheus::{Exposition, Kind};
use atoll_sdk::spec::{Mode, ScaleMetric};
use std::collections::BTreeMap;

pub(crate) type Loads = BTreeMap<(String, String), ServiceLoad>;

/// Every deployed service and every known host with their load.
pub(crate) fn view(snap: &Snapshot, loads: &Loads, hosts: &BTreeMap<String, HostLoad>) -> TopView {
    let views = crate::views::instances(snap, None);
    let mut services = Vec::new();
    for record in &snap.apps {
        for s in record.spec.services.values() {
            let key = (record.spec.name.clone(), s.name.clone());
            let mine = views
                .iter()
                .filter(|i| i.app == key.0 && i.service == key.1 && !i.canary);
            let (assigned, ready) = mine.fold((0, 0), |(a, r), i| (a + 1, r + u32::from(i.ready)));
            let replicas = match s.deploy.mode {
                Mode::Global => assigned,
                Mode::Replicated => crate::autoscale::replicas(s, snap.scale.get(&key).copied()),
            };
            let load = loads.get(&key).cloned().unwrap_or_default();
            services.push(ServiceTop {
                app: key.0.clone(),
                service: key.1.clone(),
                replicas,
                ready,
                rps: load.rps,
                inflight: load.concurrency,
                p99_ms: load.p99_ms(),
                cpu_percent: load.cpu_percent,
                memory: load.memory,
                autoscale: s.autoscale.map(|a| {
                    let (metric, unit) = match a.metric {
                        ScaleMetric::Inflight => ("inflight", ""),
                        ScaleMetric::Rps => ("rps", ""),
                        ScaleMetric::Cpu => ("cpu", "%"),
                    };
                    let target = a.target_milli as f64 / 1000.0;
                    format!("{}-{} on {metric} {target}{unit}", a.min, a.max)
                }),
            });
        }
    }
    let mut per_host: BTreeMap<&str, u32> = BTreeMap::new();
    for (host, a) in &snap.assignments {
        per_host.insert(host, a.instances.len() as u32);
    }
    let hosts = (snap.hosts.iter())
        .map(|h| {
            let load = hosts.get(h.name());
            HostTop {
                name: h.name().to_string(),
                state: h.state.as_str().to_string(),
                cpu_percent: load.map(|l| l.cpu_percent),
                memory_used: load.map_or(0, |l| l.memory_used),
                memory_total: load.map_or(0, |l| l.memory_total),
                instances: per_host.get(h.name()).copied().unwrap_or(0),
            }
        })
        .collect();
    TopView { services, hosts }
}

/// What the server counts itself.
pub(crate) struct ServerCounters {
    pub placements: u64,
    /// Per-bucket counts ([`RECONCILE_BOUNDS_S`], then +Inf) and the sum.
    pub reconciles: (Vec<u64>, f64),
    pub nats_reconnects: u64,
    pub leading: bool,
    /// The controller holds: desired state was lost.
    pub state_lost: bool,
}

/// The server's Prometheus exposition.
pub(crate) fn exposition(snap: &Snapshot, loads: &Loads, counters: &ServerCounters) -> String {
    let mut e = Exposition::new();
    instances_and_hosts(&mut e, snap);
    desired_replicas(&mut e, snap);
    service_load(&mut e, loads);
    server_counters(&mut e, counters);
    e.finish()
}

/// `atoll_instances` by app, service and state; `atoll_hosts` by state.
fn instances_and_hosts(e: &mut Exposition, snap: &Snapshot) {
    e.family(
        "atoll_instances",
        "Instances by app, service and state.",
        Kind::Gauge,
    );
    let mut by_state: BTreeMap<(String, String, &str), u64> = BTreeMap::new();
    for i in crate::views::instances(snap, None) {
        *by_state
            .entry((i.app, i.service, i.state.as_str()))
            .or_default() += 1;
    }
    for ((app, service, state), n) in &by_state {
        let labels = [
            ("app", app.as_str()),
            ("service", service.as_str()),
            ("state", state),
        ];
        e.sample("atoll_instances", &labels, *n as f64);
    }
    e.family("atoll_hosts", "Known hosts by state.", Kind::Gauge);
    let mut hosts: BTreeMap<&str, u64> = BTreeMap::new();
    for h in &snap.hosts {
        *hosts.entry(h.state.as_str()).or_default() += 1;
    }
    for (state, n) in hosts {
        e.sample("atoll_hosts", &[("state", state)], n as f64);
    }
}

/// `atoll_service_replicas_desired` of every replicated service.
fn desired_replicas(e: &mut Exposition, snap: &Snapshot) {
    e.family(
        "atoll_service_replicas_desired",
        "Instances a service should run.",
        Kind::Gauge,
    );
    for record in &snap.apps {
        for s in record.spec.services.values() {
            if s.deploy.mode == Mode::Replicated {
                let key = (record.spec.name.clone(), s.name.clone());
                let n = crate::autoscale::replicas(s, snap.scale.get(&key).copied());
                let labels = [("app", key.0.as_str()), ("service", key.1.as_str())];
                e.sample("atoll_service_replicas_desired", &labels, f64::from(n));
            }
        }
    }
}

/// Each service's load gauges and its request-latency histogram.
fn service_load(e: &mut Exposition, loads: &Loads) {
    type Pick = fn(&ServiceLoad) -> f64;
    let gauges: [(&str, &str, Pick); 4] = [
        (
            "atoll_service_requests_per_second",
            "Requests per second over the last sample.",
            |l| l.rps,
        ),
        (
            "atoll_service_requests_in_flight",
            "Average requests in flight over the last sample.",
            |l| l.concurrency,
        ),
        (
            "atoll_service_cpu_percent",
            "CPU of the service's instances, percent of one CPU.",
            |l| l.cpu_percent,
        ),
        (
            "atoll_service_memory_bytes",
            "Memory of the service's instances.",
            |l| l.memory as f64,
        ),
    ];
    for (name, help, pick) in gauges {
        e.family(name, help, Kind::Gauge);
        for ((app, service), l) in loads {
            e.sample(name, &[("app", app), ("service", service)], pick(l));
        }
    }
    let name = "atoll_service_request_duration_seconds";
    e.family(
        name,
        "Latency of the requests the service's current instances answered.",
        Kind::Histogram,
    );
    let bounds = latency_bounds_s();
    for ((app, service), l) in loads {
        let sum = l.totals.busy_us as f64 / 1e6;
        e.histogram(
            name,
            &[("app", app), ("service", service)],
            &bounds,
            &l.totals.latency,
            sum,
        );
    }
}

/// What the server counts itself: placements, reconcile durations, NATS
/// reconnects, leadership.
fn server_counters(e: &mut Exposition, counters: &ServerCounters) {
    e.family(
        "atoll_placements_total",
        "Instances the controller placed.",
        Kind::Counter,
    )
    .sample("atoll_placements_total", &[], counters.placements as f64);
    let (counts, sum) = &counters.reconciles;
    e.family(
        "atoll_reconcile_duration_seconds",
        "How long reconcile passes took.",
        Kind::Histogram,
    )
    .histogram(
        "atoll_reconcile_duration_seconds",
        &[],
        &RECONCILE_BOUNDS_S,
        counts,
        *sum,
    );
    e.family(
        "atoll_nats_reconnects_total",
        "Times this server reconnected to NATS.",
        Kind::Counter,
    )
    .sample(
        "atoll_nats_reconnects_total",
        &[],
        counters.nats_reconnects as f64,
    );
    e.family(
        "atoll_leader",
        "1 while this server holds the leader lease.",
        Kind::Gauge,
    )
    .sample(
        "atoll_leader",
        &[],
        if counters.leading { 1.0 } else { 0.0 },
    );
    e.family(
        "atoll_desired_state_lost",
        "1 while the controller holds because the apps bucket is gone or came back empty.",
        Kind::Gauge,
    )
    .sample(
        "atoll_desired_state_lost",
        &[],
        if counters.state_lost { 1.0 } else { 0.0 },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::reconcile;
    use crate::snapshot::fixtures::*;

    fn cluster() -> Snapshot {
        let mut api = service("api").replicas(2);
        api.autoscale = Some(atoll_sdk::spec::Autoscale {
            min: 1,
            max: 6,
            metric: ScaleMetric::Inflight,
            target_milli: 4_000,
            scale_up_window_ms: 6_000,
            scale_down_window_ms: 60_000,
        });
        let mut snap = snapshot(vec![host("h1")], vec![app("shop", vec![api])]);
        snap.scale.insert(("shop".into(), "api".into()), 3);
        let mut n = 0;
        let plan = reconcile(&snap, &mut |_, _| {
            n += 1;
            format!("i{n}")
        });
        snap.assignments = plan.assignments;
        snap
    }

    #[test]
    fn top_shows_the_autoscalers_count_and_the_load() {
        let snap = cluster();
        let mut loads = Loads::new();
        let load = ServiceLoad {
            instances: 3,
            rps: 12.0,
            concurrency: 5.5,
            ..Default::default()
        };
        loads.insert(("shop".into(), "api".into()), load);
        let v = view(&snap, &loads, &BTreeMap::new());
        let api = &v.services[0];
        assert_eq!(
            (api.replicas, api.ready, api.rps, api.inflight),
            (3, 0, 12.0, 5.5)
        );
        assert_eq!(api.autoscale.as_deref(), Some("1-6 on inflight 4"));
        assert_eq!((v.hosts[0].instances, v.hosts[0].cpu_percent), (3, None));
    }

    #[test]
    fn the_exposition_has_every_family_with_help_and_type() {
        let snap = cluster();
        let counters = ServerCounters {
            placements: 3,
            reconciles: (vec![1; RECONCILE_BOUNDS_S.len() + 1], 0.5),
            nats_reconnects: 0,
            leading: true,
            state_lost: true,
        };
        let text = exposition(&snap, &Loads::new(), &counters);
        for family in [
            "atoll_instances",
            "atoll_placements_total",
            "atoll_reconcile_duration_seconds",
            "atoll_nats_reconnects_total",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family}: {text}"
            );
        }
        assert!(
            text.contains("atoll_instances{app=\"shop\",service=\"api\",state=\"pending\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("atoll_service_replicas_desired{app=\"shop\",service=\"api\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("atoll_reconcile_duration_seconds_count 9\n"),
            "{text}"
        );
        assert!(text.contains("atoll_desired_state_lost 1\n"), "{text}");
    }
}
