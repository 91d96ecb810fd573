//! Autoscaling, scale to zero and metrics, end to end: a component service
//! scaled on requests in flight under a ramped load (up within 10 s, never
//! past max, back to min after the load, no failed request), a container
//! service scaled on CPU, a component scaled to zero and woken by a
//! request, and both `/metrics` endpoints parsed as Prometheus text.

#[path = "containers/cleanup.rs"]
mod cleanup;
mod common;
#[allow(dead_code)]
#[path = "containers/image.rs"]
mod image;
#[allow(dead_code)]
#[path = "containers/registry.rs"]
mod registry;
#[allow(dead_code)]
#[path = "containers/setup.rs"]
mod setup;

use common::load::Load;
use common::*;
use std::time::{Duration, Instant};

fn hello(port: u16, autoscale: &str) -> String {
    format!(
        "name: scale
services:
  web:
    x-atoll:
      component: {wasm}
      autoscale: {autoscale}
    ports: [\"{port}:80\"]
",
        wasm = sample_wasm("hello").display()
    )
}

/// Instances of `app` that are running.
fn running(c: &Cluster, app: &str) -> usize {
    (c.instances(app).iter())
        .filter(|r| r["state"] == "running")
        .count()
}

fn assigned(c: &Cluster, app: &str) -> usize {
    c.instances(app).len()
}

#[test]
fn a_component_service_follows_requests_in_flight_between_min_and_max() {
    let mut c = Cluster::start();
    let events = c.follow_events();
    c.start_host("h1", "127.0.10.2", &[]);
    events.wait_for_event("host-up", "host h1", Duration::from_secs(10));
    c.start_host("h2", "127.0.10.3", &[]);
    let port = free_port();
    let auto = "{ min: 1, max: 6, target: { inflight: 4 }, scale_down_window: 5s }";
    c.deploy_wait(&c.compose("s.yaml", &hello(port, auto)));
    assert_eq!(assigned(&c, "scale"), 1, "starts at min");
    let addrs = vec![format!("127.0.10.2:{port}"), format!("127.0.10.3:{port}")];

    // 32 clients whose requests each take 100 ms: about 32 in flight, 8
    // instances' worth at 4 each; max is 6.
    let ramp = Instant::now();
    let load = Load::start(&addrs, "/sleep?ms=100", 32, |_| "ok".into());
    wait_until("more replicas", Duration::from_secs(10), || {
        (assigned(&c, "scale") > 1).then_some(())
    });
    let grew_after = ramp.elapsed();
    let mut most = 0;
    wait_until("6 replicas", Duration::from_secs(20), || {
        let n = assigned(&c, "scale");
        most = most.max(n);
        (n == 6 && running(&c, "scale") == 6).then_some(())
    });
    // Hold the load a little longer: the count must stay at max.
    let held = Instant::now();
    while held.elapsed() < Duration::from_secs(3) {
        most = most.max(assigned(&c, "scale"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen = load.finish();
    assert!(most <= 6, "never past max: saw {most}");
    assert_eq!(
        seen.failed, 0,
        "no failed request while scaling up: {:?}",
        seen.failures
    );

    // A trickle of load while it scales down: nothing fails either.
    let trickle = Load::start(&addrs, "/sleep?ms=10", 1, |_| "ok".into());
    wait_until("back to min", Duration::from_secs(30), || {
        (assigned(&c, "scale") == 1).then_some(())
    });
    let seen = trickle.finish();
    assert!(seen.ok > 0);
    assert_eq!(
        seen.failed, 0,
        "no failed request while scaling down: {:?}",
        seen.failures
    );
    let up = events.wait_for_event("autoscale", "web: 1 →", Duration::from_secs(5));
    let msg = up["message"].as_str().unwrap_or_default();
    assert!(msg.contains("requests in flight for a target of 4"), "{up}");
    events.wait_for_event("autoscale", "→ 1 (", Duration::from_secs(5));
    eprintln!("replicas grew {grew_after:?} after the ramp began");

    // `atoll top` shows the service with its bounds.
    let top = c.json(&["top", "-o", "json"]);
    let web = &top["services"][0];
    assert_eq!(web["service"], "web", "{top}");
    assert_eq!(web["autoscale"], "1-6 on inflight 4", "{top}");
    assert_eq!(top["hosts"].as_array().map(Vec::len), Some(2), "{top}");
}

#[test]
fn a_component_scaled_to_zero_is_woken_by_its_first_request() {
    let mut c = Cluster::start();
    let events = c.follow_events();
    c.start_host("h1", "127.0.10.4", &[]);
    events.wait_for_event("host-up", "host h1", Duration::from_secs(10));
    let port = free_port();
    let auto = "{ min: 0, max: 2, target: { rps: 50 }, scale_down_window: 2s }";
    c.deploy_wait(&c.compose("s.yaml", &hello(port, auto)));
    wait_until("zero instances once idle", Duration::from_secs(20), || {
        (assigned(&c, "scale") == 0).then_some(())
    });
    events.wait_for_event("autoscale", "web: 1 → 0", Duration::from_secs(5));
    let started = Instant::now();
    let (status, body) = http_get(&format!("127.0.10.4:{port}"), "/").expect("GET");
    let took = started.elapsed();
    assert_eq!(status, 200, "the first request is served: {body}");
    assert!(body.starts_with("hello from scale-web-"), "{body}");
    events.wait_for_event(
        "autoscale",
        "web: 0 → 1 (a request is waiting)",
        Duration::from_secs(5),
    );
    eprintln!("first request from zero answered in {took:?}");
    assert_eq!(assigned(&c, "scale"), 1);
}

#[test]
fn a_request_held_past_the_limit_gets_503_with_retry_after() {
    let mut c = Cluster::start();
    c.start_host("h1", "127.0.10.5", &[]);
    let port = free_port();
    // Never ready: its health check fails, so nothing can take the
    // request it holds.
    let file = c.compose(
        "s.yaml",
        &format!(
            "name: stuck
services:
  web:
    x-atoll:
      component: {wasm}
      autoscale: {{ min: 0, max: 1, target: {{ rps: 50 }}, scale_down_window: 1s }}
      health: {{ http: /health, interval: 200ms, retries: 1, liveness: false }}
    environment:
      UNHEALTHY: \"1\"
    ports: [\"{port}:80\"]
",
            wasm = sample_wasm("hello").display()
        ),
    );
    c.atoll_ok(&["deploy", "-f", &file.to_string_lossy()]);
    wait_until("zero instances", Duration::from_secs(20), || {
        (assigned(&c, "stuck") == 0).then_some(())
    });
    let addr = format!("127.0.10.5:{port}");
    let raw = http_get_raw(&addr, "/", &[], Duration::from_secs(30)).expect("GET");
    assert!(raw.starts_with("HTTP/1.1 503"), "{raw}");
    assert!(
        raw.to_ascii_lowercase().contains("retry-after: 1\r\n"),
        "{raw}"
    );
    assert!(raw.contains("starting from zero"), "{raw}");
}

#[test]
fn a_container_service_scales_on_cpu() {
    let (mut dirs, mut c, registry) = setup::cluster_with_image("web\n");
    let reg = registry.host.clone();
    let (d1, d2) = (dirs.data("h1"), dirs.data("h2"));
    setup::start_container_host(&mut c, "h1", "127.0.10.6", &d1, &reg, "10.89.223.0/24", &[]);
    setup::start_container_host(&mut c, "h2", "127.0.10.7", &d2, &reg, "10.89.224.0/24", &[]);
    let port = free_port();
    let file = c.compose(
        "burn.yaml",
        &format!(
            "name: burn
services:
  web:
    image: {reg}/web:1
    ports: [\"{port}:8080\"]
    stop_grace_period: 1s
    x-atoll:
      autoscale: {{ min: 1, max: 3, target: {{ cpu: 20 }}, scale_down_window: 5s }}
"
        ),
    );
    c.deploy_wait(&file);
    assert_eq!(assigned(&c, "burn"), 1);
    let addrs = vec![format!("127.0.10.6:{port}"), format!("127.0.10.7:{port}")];
    let load = Load::start(&addrs, "/cgi-bin/burn", 4, |b| b.trim().to_string());
    wait_until("more replicas for the CPU", Duration::from_secs(30), || {
        (assigned(&c, "burn") > 1).then_some(())
    });
    let top = c.json(&["top", "burn", "-o", "json"]);
    let seen = load.finish();
    assert_eq!(seen.failed, 0, "{:?}", seen.failures);
    assert!(seen.kinds.contains_key("burnt"), "{seen:?}");
    let cpu = top["services"][0]["cpu_percent"].as_f64().unwrap_or(0.0);
    assert!(cpu > 20.0, "top shows the CPU the instances burn: {top}");
    drop(registry);
}

#[test]
fn server_and_host_metrics_parse_as_prometheus_text() {
    let mut c = Cluster::start();
    c.start_host("h1", "127.0.10.8", &[]);
    let port = free_port();
    let auto = "{ min: 1, max: 2, target: { rps: 1000 } }";
    c.deploy_wait(&c.compose("s.yaml", &hello(port, auto)));
    let addr = format!("127.0.10.8:{port}");
    // Requests go on until the server has counted 20 of them: a new
    // instance's first sample is its baseline, so the count lags a little.
    let api = c.api.trim_start_matches("http://").to_string();
    let server = wait_until(
        "the server to count the requests",
        Duration::from_secs(15),
        || {
            let (status, _) = http_get(&addr, "/").expect("GET");
            assert_eq!(status, 200);
            let (status, text) = http_get(&api, "/metrics").ok()?;
            assert_eq!(status, 200);
            let total =
                prometheus::parse(&text).unwrap_or_else(|e| panic!("server /metrics: {e}\n{text}"));
            let counted = total.iter().any(|s| {
                s.name == "atoll_service_request_duration_seconds_count"
                    && s.label("service") == Some("web")
                    && s.value >= 20.0
            });
            counted.then_some(total)
        },
    );
    for family in [
        "atoll_instances",
        "atoll_placements_total",
        "atoll_reconcile_duration_seconds_count",
        "atoll_nats_reconnects_total",
        "atoll_service_requests_per_second",
    ] {
        assert!(
            server.iter().any(|s| s.name == family),
            "server has {family}"
        );
    }
    let (status, text) = http_get("127.0.10.8:7421", "/metrics").expect("host /metrics");
    assert_eq!(status, 200);
    let host = prometheus::parse(&text).unwrap_or_else(|e| panic!("host /metrics: {e}\n{text}"));
    let requests = host
        .iter()
        .find(|s| s.name == "atoll_instance_requests_total");
    assert!(requests.is_some_and(|s| s.value >= 20.0), "{text}");
    for family in [
        "atoll_host_instances",
        "atoll_instance_request_duration_seconds_bucket",
        "atoll_host_cpu_seconds_total",
        "atoll_nats_reconnects_total",
    ] {
        assert!(host.iter().any(|s| s.name == family), "host has {family}");
    }
}

/// A strict reader of the Prometheus text format (0.0.4): every sample
/// belongs to a family declared by `# TYPE` before it, names and labels are
/// well formed, values are numbers, and histogram buckets grow.
mod prometheus {
    #[derive(Debug)]
    pub struct Sample {
        pub name: String,
        pub labels: Vec<(String, String)>,
        pub value: f64,
    }

    impl Sample {
        pub fn label(&self, key: &str) -> Option<&str> {
            self.labels
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        }
    }

    fn valid_name(s: &str) -> bool {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
        let mut types: std::collections::BTreeMap<String, String> = Default::default();
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let at = |m: String| format!("line {}: {m}: {line}", n + 1);
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest
                    .split_once(' ')
                    .ok_or_else(|| at("TYPE without a type".into()))?;
                if !valid_name(name)
                    || !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind)
                {
                    return Err(at("bad TYPE".into()));
                }
                if types.insert(name.to_string(), kind.to_string()).is_some() {
                    return Err(at("family declared twice".into()));
                }
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (head, value) = line.rsplit_once(' ').ok_or_else(|| at("no value".into()))?;
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().map_err(|_| at("value is not a number".into()))?,
            };
            let (name, labels) = match head.split_once('{') {
                None => (head.to_string(), Vec::new()),
                Some((name, rest)) => {
                    let body = rest
                        .strip_suffix('}')
                        .ok_or_else(|| at("unclosed labels".into()))?;
                    (name.to_string(), labels(body).map_err(at)?)
                }
            };
            if !valid_name(&name) {
                return Err(at("bad metric name".into()));
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
                })
                .unwrap_or(&name);
            if !types.contains_key(family) {
                return Err(at("sample before its # TYPE".into()));
            }
            out.push(Sample {
                name,
                labels,
                value,
            });
        }
        check_buckets(&out)?;
        Ok(out)
    }

    fn labels(body: &str) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let (key, after) = rest.split_once("=\"").ok_or("label without =\"")?;
            if !valid_name(key) {
                return Err(format!("bad label name {key}"));
            }
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c @ ('\\' | '"'))) => value.push(c),
                        _ => return Err("bad escape".into()),
                    },
                    Some((i, '"')) => break i,
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated label value".into()),
                }
            };
            out.push((key.to_string(), value));
            rest = &after[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        Ok(out)
    }

    /// Buckets of one series never decrease and end with `+Inf`, which
    /// equals `_count`.
    fn check_buckets(samples: &[Sample]) -> Result<(), String> {
        type Labels = Vec<(String, String)>;
        let mut last: Option<(String, Labels, f64)> = None;
        for s in samples {
            let Some(family) = s.name.strip_suffix("_bucket") else {
                continue;
            };
            let series: Vec<(String, String)> = s
                .labels
                .iter()
                .filter(|(k, _)| k != "le")
                .cloned()
                .collect();
            if let Some((f, l, v)) = &last
                && f == family
                && *l == series
                && s.value < *v
            {
                return Err(format!("bucket of {family} decreases"));
            }
            if s.label("le") == Some("+Inf") {
                let count = samples
                    .iter()
                    .find(|c| c.name == format!("{family}_count") && c.labels == series);
                if count.is_none_or(|c| c.value != s.value) {
                    return Err(format!("{family}: +Inf bucket differs from _count"));
                }
            }
            last = Some((family.to_string(), series, s.value));
        }
        Ok(())
    }
}
