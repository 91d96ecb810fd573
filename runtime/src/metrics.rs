//! The host's load metrics: a [`HostSample`] published on NATS about once a
//! second while its instances are busy and once a minute while they are
//! quiet (the controller's autoscaler and `atoll top` read them), and the
//! same figures as Prometheus text at `/metrics` on the mesh port.

use crate::joined::Joined;
use crate::supervisor::Supervisor;
use atoll_sdk::metrics::{
    HostSample, InstanceSample, QUIET_SAMPLE_MS, SAMPLE_MS, latency_bounds_s, sample_due,
};
use atoll_sdk::prometheus::{Exposition, Kind};
use atoll_sdk::protocol::{VERSION, now_ms};
use std::sync::Arc;
use std::time::Duration;

/// Takes a sample every [`SAMPLE_MS`] and publishes the ones
/// [`sample_due`] says are news (a quiet host's about once a minute).
pub(crate) async fn publish_samples(
    client: async_nats::Client,
    subject: String,
    sample: impl Fn() -> HostSample,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(SAMPLE_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent: Option<HostSample> = None;
    loop {
        tick.tick().await;
        let now = sample();
        if !sample_due(sent.as_ref(), &now) {
            continue;
        }
        if let Ok(bytes) = serde_json::to_vec(&now)
            && let Err(e) = client.publish(subject.clone(), bytes.into()).await
        {
            tracing::debug!(error = %e, "load sample not sent");
        }
        sent = Some(now);
    }
}

pub struct HostMetrics {
    host: String,
    supervisor: Arc<Supervisor>,
    /// For its reconnect count, once the host has joined.
    client: Joined<async_nats::Client>,
}

impl HostMetrics {
    pub fn new(
        host: &str,
        supervisor: Arc<Supervisor>,
        client: Joined<async_nats::Client>,
    ) -> Arc<Self> {
        Arc::new(HostMetrics {
            host: host.to_string(),
            supervisor,
            client,
        })
    }

    pub fn sample(&self) -> HostSample {
        let (cpu_busy_us, cpus, memory_used, memory_total) = crate::host_info::machine_usage();
        HostSample {
            v: VERSION,
            host: self.host.clone(),
            at_ms: now_ms(),
            cpu_busy_us,
            cpus,
            memory_used,
            memory_total,
            instances: self.supervisor.load_samples(),
            next_ms: QUIET_SAMPLE_MS,
        }
    }

    /// Publishes samples, forever (once the host has joined: `/metrics`
    /// works before): see [`publish_samples`].
    pub async fn publish(self: Arc<Self>, client: async_nats::Client, subject: String) {
        publish_samples(client, subject, move || self.sample()).await
    }

    /// The Prometheus exposition of this host.
    pub fn render(&self) -> String {
        let sample = self.sample();
        let mut e = Exposition::new();
        e.family(
            "atoll_host_instances",
            "Instances assigned to this host, by state.",
            Kind::Gauge,
        );
        let mut by_state = std::collections::BTreeMap::new();
        for s in self.supervisor.statuses() {
            *by_state.entry(s.state.as_str()).or_insert(0u64) += 1;
        }
        for (state, n) in by_state {
            e.sample("atoll_host_instances", &[("state", state)], n as f64);
        }
        let bounds = latency_bounds_s();
        type Pick = fn(&InstanceSample) -> f64;
        let families: [(&str, &str, Kind, Pick); 4] = [
            (
                "atoll_instance_requests_total",
                "Requests (and TCP connections) an instance finished.",
                Kind::Counter,
                |i| i.requests as f64,
            ),
            (
                "atoll_instance_requests_in_flight",
                "Requests an instance is serving.",
                Kind::Gauge,
                |i| i.inflight as f64,
            ),
            (
                "atoll_instance_cpu_seconds_total",
                "CPU time of an instance (a container's cgroup, a component's time in Wasm).",
                Kind::Counter,
                |i| i.cpu_us as f64 / 1e6,
            ),
            (
                "atoll_instance_memory_bytes",
                "Memory of an instance (a container's cgroup, a component's last store).",
                Kind::Gauge,
                |i| i.memory as f64,
            ),
        ];
        for (name, help, kind, value) in families {
            e.family(name, help, kind);
            for i in &sample.instances {
                e.sample(name, &labels(i), value(i));
            }
        }
        let name = "atoll_instance_request_duration_seconds";
        e.family(
            name,
            "How long an instance took to answer.",
            Kind::Histogram,
        );
        for i in &sample.instances {
            e.histogram(
                name,
                &labels(i),
                &bounds,
                &i.latency,
                i.busy_us as f64 / 1e6,
            );
        }
        e.family(
            "atoll_host_cpu_seconds_total",
            "CPU time the machine spent busy, all CPUs.",
            Kind::Counter,
        )
        .sample(
            "atoll_host_cpu_seconds_total",
            &[],
            sample.cpu_busy_us as f64 / 1e6,
        );
        e.family(
            "atoll_host_memory_used_bytes",
            "Memory in use on the machine.",
            Kind::Gauge,
        )
        .sample(
            "atoll_host_memory_used_bytes",
            &[],
            sample.memory_used as f64,
        );
        e.family(
            "atoll_host_memory_total_bytes",
            "Memory of the machine.",
            Kind::Gauge,
        )
        .sample(
            "atoll_host_memory_total_bytes",
            &[],
            sample.memory_total as f64,
        );
        let connects = (self.client.now()).map_or(0, |c| {
            (c.statistics().connects).load(std::sync::atomic::Ordering::Relaxed)
        });
        e.family(
            "atoll_nats_reconnects_total",
            "Times this host reconnected to NATS.",
            Kind::Counter,
        )
        .sample(
            "atoll_nats_reconnects_total",
            &[],
            connects.saturating_sub(1) as f64,
        );
        e.finish()
    }
}

/// An instance's labels in the exposition.
fn labels(i: &InstanceSample) -> [(&'static str, &str); 3] {
    [
        ("app", i.app.as_str()),
        ("service", i.service.as_str()),
        ("instance_id", i.id.as_str()),
    ]
}
