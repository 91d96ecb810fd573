//! Structured YAML documents for the `yaml` target: Compose-shaped
//! mappings with anchors, aliases and merge keys (`<<`), written in flow
//! style so any tree renders to valid YAML.

use arbitrary::Arbitrary;

/// Keys of the Compose catalogue (docs/compose.md), so that generated
/// mappings reach the parser's checks of each key.
pub const KEYS: &[&str] = &[
    "annotations",
    "app_protocol",
    "attach",
    "autoscale",
    "bind",
    "blkio_config",
    "build",
    "canary",
    "cap_add",
    "cap_drop",
    "capabilities",
    "cgroup",
    "cgroup_parent",
    "command",
    "component",
    "condition",
    "configs",
    "consistency",
    "constraints",
    "container_name",
    "content",
    "cpu",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "credential_spec",
    "delay",
    "depends_on",
    "deploy",
    "develop",
    "device_cgroup_rules",
    "devices",
    "disable",
    "disconnect",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "driver",
    "driver_opts",
    "endpoint_mode",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "extends",
    "external",
    "external_links",
    "extra_hosts",
    "failure_action",
    "file",
    "generic_resources",
    "gid",
    "gpus",
    "group_add",
    "health",
    "healthcheck",
    "host_ip",
    "hostname",
    "http",
    "image",
    "include",
    "inflight",
    "init",
    "interval",
    "ipc",
    "isolation",
    "label_file",
    "labels",
    "limits",
    "links",
    "liveness",
    "logging",
    "lost_after",
    "mac_address",
    "max",
    "max_attempts",
    "max_failure_ratio",
    "max_replicas_per_node",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memory",
    "memswap_limit",
    "min",
    "mode",
    "models",
    "monitor",
    "name",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "order",
    "parallelism",
    "pid",
    "pids",
    "pids_limit",
    "placement",
    "platform",
    "port",
    "ports",
    "post_start",
    "pre_stop",
    "preferences",
    "privileged",
    "profiles",
    "protocol",
    "provider",
    "published",
    "pull_policy",
    "pull_refresh_after",
    "read_only",
    "reconcile",
    "replace",
    "replicas",
    "reservations",
    "resources",
    "restart",
    "restart_policy",
    "retries",
    "rollback_config",
    "rps",
    "runtime",
    "scale",
    "scale_down_window",
    "scale_up_window",
    "secrets",
    "security_opt",
    "services",
    "shm_size",
    "source",
    "spread",
    "start_interval",
    "start_period",
    "stdin_open",
    "stop_after",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "target",
    "template_driver",
    "test",
    "timeout",
    "tmpfs",
    "tty",
    "type",
    "uid",
    "ulimits",
    "update_config",
    "use_api_socket",
    "user",
    "userns",
    "userns_mode",
    "uts",
    "version",
    "volume",
    "volumes",
    "volumes_from",
    "weight",
    "window",
    "working_dir",
    "x-atoll",
];

#[derive(Arbitrary, Debug)]
pub enum Scalar {
    Key(u8),
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    /// Written plain, as it comes (may be invalid YAML: the error path).
    Plain(String),
    Duration(u16, u8),
}

#[derive(Arbitrary, Debug)]
pub enum Value {
    Scalar(Scalar),
    List(Vec<Value>),
    Map(Vec<(Scalar, Value)>),
    /// `&aN value`
    Anchor(u8, Box<Value>),
    /// `*aN`, of an anchor defined earlier (else null).
    Alias(u8),
    /// A mapping with `<<: *aN` (or a list of aliases) and its own keys.
    Merge(Vec<u8>, Vec<(Scalar, Value)>),
}

/// A Compose file: services, each a mapping, and top-level extras.
#[derive(Arbitrary, Debug)]
pub struct Doc {
    pub extras: Vec<(Scalar, Value)>,
    pub services: Vec<(String, Value)>,
}

struct Writer {
    out: String,
    anchors: Vec<u8>,
    depth: usize,
}

impl Doc {
    pub fn render(&self) -> String {
        let mut w = Writer {
            out: String::new(),
            anchors: Vec::new(),
            depth: 0,
        };
        w.out.push('{');
        for (k, v) in &self.extras {
            w.scalar(k);
            w.out.push_str(": ");
            w.value(v);
            w.out.push_str(", ");
        }
        w.out.push_str("services: {");
        for (name, v) in &self.services {
            w.text(name);
            w.out.push_str(": ");
            w.value(v);
            w.out.push_str(", ");
        }
        w.out.push_str("}}\n");
        w.out
    }
}

impl Writer {
    fn text(&mut self, s: &str) {
        // A JSON string is a valid double-quoted YAML scalar.
        self.out
            .push_str(&serde_json::to_string(s).unwrap_or_default());
    }

    fn scalar(&mut self, s: &Scalar) {
        match s {
            Scalar::Key(i) => self.out.push_str(KEYS[*i as usize % KEYS.len()]),
            Scalar::Text(t) => self.text(t),
            Scalar::Int(i) => self.out.push_str(&i.to_string()),
            Scalar::Float(f) => self.out.push_str(&format!("{f:?}")),
            Scalar::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Scalar::Null => self.out.push_str("null"),
            Scalar::Plain(p) => self.out.push_str(p),
            Scalar::Duration(n, u) => {
                let unit = ["ms", "s", "m", "h", "us", ""][*u as usize % 6];
                self.out.push_str(&format!("{n}{unit}"));
            }
        }
    }

    fn entries(&mut self, entries: &[(Scalar, Value)]) {
        for (k, v) in entries {
            self.scalar(k);
            self.out.push_str(": ");
            self.value(v);
            self.out.push_str(", ");
        }
    }

    fn alias(&mut self, n: u8) -> bool {
        match self.anchors.iter().find(|a| **a == n % 8).copied() {
            Some(a) => {
                self.out.push_str(&format!("*a{a}"));
                true
            }
            None => false,
        }
    }

    fn value(&mut self, v: &Value) {
        // Deep trees are the YAML layer's nesting guard's business: past
        // 80 levels, stop generating (the guard refuses at 64).
        if self.depth > 80 {
            self.out.push_str("null");
            return;
        }
        self.depth += 1;
        match v {
            Value::Scalar(s) => self.scalar(s),
            Value::List(items) => {
                self.out.push('[');
                for i in items {
                    self.value(i);
                    self.out.push_str(", ");
                }
                self.out.push(']');
            }
            Value::Map(entries) => {
                self.out.push('{');
                self.entries(entries);
                self.out.push('}');
            }
            Value::Anchor(n, inner) => {
                self.out.push_str(&format!("&a{} ", n % 8));
                self.value(inner);
                if !self.anchors.contains(&(n % 8)) {
                    self.anchors.push(n % 8);
                }
            }
            Value::Alias(n) => {
                if !self.alias(*n) {
                    self.out.push_str("null");
                }
            }
            Value::Merge(sources, entries) => {
                self.out.push('{');
                let before = self.out.len();
                self.out.push_str("<<: [");
                let mut any = false;
                for s in sources {
                    if self.alias(*s) {
                        self.out.push_str(", ");
                        any = true;
                    }
                }
                match any {
                    true => self.out.push_str("], "),
                    false => self.out.truncate(before),
                }
                self.entries(entries);
                self.out.push('}');
            }
        }
        self.depth -= 1;
    }
}
