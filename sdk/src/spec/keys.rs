//! The key catalogue: every key the Compose Specification allows in each
//! section atoll reads, and what atoll does with it.
//!
//! One table per section keeps three things in step: the converters (which
//! only see supported keys), the warnings for Compose keys atoll does not
//! implement yet, and `docs/compose.md` (a test checks every key here has a
//! row there with the same status). The lists follow the Compose
//! Specification's JSON schema (`compose-spec.json`).

use super::ctx::{Ctx, Entry, join};

/// What atoll does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// Read by the converters.
    Supported,
    /// A Compose key atoll ignores, with the warning's message.
    Warn(&'static str),
    /// Resolved by the command line before the file is parsed (override
    /// files, `extends`, `include`, `env_file`: they read other files). A
    /// text that reaches the parser with one (sent to the API unresolved)
    /// gets this warning.
    Cli,
}

/// The warning for a [`Status::Cli`] key found by the parser.
const CLI: &str = "resolved by the atoll command line (atoll deploy, atoll config), which reads the files it names; sent to the API unresolved it is ignored";

impl Section {
    /// Whether an unknown key is an error rather than a warning. Compose
    /// adds its new keys to the top level and to services (`models`,
    /// `pre_start`, `develop`…), so a file written for a newer Compose
    /// deploys with a warning there. The nested sections are small and
    /// stable (and `x-atoll` is atoll's own): a stray key there is a
    /// mistake.
    fn strict(&self) -> bool {
        !matches!(self.name, "top level" | "services.<name>")
    }
}

pub(super) struct Section {
    /// How `docs/compose.md` names the section (the heading of its table).
    pub name: &'static str,
    pub keys: &'static [(&'static str, Status)],
}

const S: Status = Status::Supported;
const N: Status = Status::Warn("not implemented yet, ignored");

pub(super) static TOP: Section = Section {
    name: "top level",
    keys: &[
        ("name", S),
        ("services", S),
        (
            "version",
            Status::Warn("obsolete in the Compose Specification, ignored"),
        ),
        ("include", Status::Cli),
        ("networks", N),
        ("volumes", S),
        ("configs", S),
        ("secrets", S),
        ("models", N),
    ],
};

pub(super) static SERVICE: Section = Section {
    name: "services.<name>",
    keys: &[
        ("image", S),
        ("x-atoll", S),
        ("environment", S),
        ("ports", S),
        ("deploy", S),
        // Container settings (see `container.rs`); components ignore them.
        ("entrypoint", S),
        ("command", S),
        ("working_dir", S),
        ("user", S),
        ("read_only", S),
        ("security_opt", S),
        ("cap_add", S),
        ("cap_drop", S),
        ("stop_grace_period", S),
        ("restart", S),
        // Named volumes (see `volumes.rs`); components ignore them too.
        ("volumes", S),
        ("annotations", N),
        ("attach", N),
        ("blkio_config", N),
        ("build", N),
        ("cgroup", S),
        ("cgroup_parent", N),
        ("configs", S),
        ("container_name", N),
        ("cpu_count", N),
        ("cpu_percent", N),
        ("cpu_period", N),
        ("cpu_quota", N),
        ("cpu_rt_period", N),
        ("cpu_rt_runtime", N),
        ("cpu_shares", N),
        (
            "cpus",
            Status::Warn("not implemented yet, ignored; use deploy.resources.limits.cpus"),
        ),
        ("cpuset", N),
        ("credential_spec", N),
        ("depends_on", N),
        ("develop", N),
        ("device_cgroup_rules", S),
        ("devices", S),
        ("dns", N),
        ("dns_opt", N),
        ("dns_search", N),
        ("domainname", N),
        ("env_file", Status::Cli),
        ("expose", S),
        ("extends", Status::Cli),
        ("external_links", N),
        ("extra_hosts", N),
        ("gpus", N),
        ("group_add", N),
        ("healthcheck", S),
        ("hostname", N),
        ("init", S),
        ("ipc", S),
        ("isolation", N),
        ("label_file", N),
        ("labels", N),
        ("links", N),
        ("logging", N),
        ("mac_address", N),
        (
            "mem_limit",
            Status::Warn("not implemented yet, ignored; use deploy.resources.limits.memory"),
        ),
        (
            "mem_reservation",
            Status::Warn("not implemented yet, ignored; use deploy.resources.reservations.memory"),
        ),
        ("mem_swappiness", N),
        ("memswap_limit", N),
        ("models", N),
        ("network_mode", S),
        ("networks", N),
        ("oom_kill_disable", N),
        ("oom_score_adj", N),
        ("pid", S),
        ("pids_limit", N),
        ("platform", N),
        ("post_start", N),
        ("pre_stop", N),
        ("privileged", S),
        ("profiles", S),
        ("provider", N),
        ("pull_policy", N),
        ("pull_refresh_after", N),
        ("runtime", N),
        (
            "scale",
            Status::Warn("not implemented yet, ignored; use deploy.replicas"),
        ),
        ("secrets", S),
        ("shm_size", S),
        ("stdin_open", N),
        ("stop_signal", S),
        ("storage_opt", N),
        ("sysctls", S),
        ("tmpfs", S),
        ("tty", N),
        ("ulimits", S),
        ("use_api_socket", N),
        ("userns_mode", N),
        ("uts", S),
        ("volumes_from", N),
    ],
};

/// One declaration under the top-level `volumes:`. atoll keeps every named
/// volume in a directory on its host, so the driver settings do not apply.
pub(super) static VOLUME: Section = Section {
    name: "volumes.<name>",
    keys: &[
        ("driver", VOLUME_IGNORED),
        ("driver_opts", VOLUME_IGNORED),
        ("external", VOLUME_IGNORED),
        ("labels", VOLUME_IGNORED),
        ("name", VOLUME_IGNORED),
    ],
};

const VOLUME_IGNORED: Status =
    Status::Warn("ignored: atoll keeps a named volume in a directory on its host");

/// One declaration under the top-level `secrets:` (see `secrets.rs`).
pub(super) static SECRET: Section = Section {
    name: "secrets.<name>",
    keys: &[
        ("file", S),
        ("environment", S),
        ("external", S),
        ("name", FILE_IGNORED),
        ("labels", FILE_IGNORED),
        ("driver", FILE_IGNORED),
        ("driver_opts", FILE_IGNORED),
        ("template_driver", FILE_IGNORED),
    ],
};

/// One declaration under the top-level `configs:`.
pub(super) static CONFIG: Section = Section {
    name: "configs.<name>",
    keys: &[
        ("file", S),
        ("environment", S),
        ("content", S),
        ("external", S),
        ("name", FILE_IGNORED),
        ("labels", FILE_IGNORED),
        ("template_driver", FILE_IGNORED),
    ],
};

const FILE_IGNORED: Status =
    Status::Warn("ignored: atoll keeps the value itself, encrypted, under the declared name");

/// The long form of a service's `secrets:` or `configs:` item.
pub(super) static FILE_MOUNT: Section = Section {
    name: "services.<name>.secrets[] and configs[]",
    keys: &[
        ("source", S),
        ("target", S),
        ("uid", S),
        ("gid", S),
        ("mode", S),
    ],
};

/// The long form of a service's `volumes:` item.
pub(super) static MOUNT: Section = Section {
    name: "services.<name>.volumes[]",
    keys: &[
        ("type", S),
        ("source", S),
        ("target", S),
        ("read_only", S),
        ("volume", S),
        ("bind", N),
        ("tmpfs", S),
        ("image", N),
        ("consistency", N),
    ],
};

pub(super) static X_ATOLL: Section = Section {
    name: "services.<name>.x-atoll",
    keys: &[
        ("component", S),
        ("timeout", S),
        ("autoscale", S),
        ("canary", S),
        ("health", S),
        ("capabilities", N),
        ("disconnect", S),
        ("userns", S),
    ],
};

/// `x-atoll.disconnect`: the edge policy (see `disconnect.rs`).
pub(super) static DISCONNECT: Section = Section {
    name: "services.<name>.x-atoll.disconnect",
    keys: &[
        ("lost_after", S),
        ("replace", S),
        ("reconcile", S),
        ("stop_after", S),
    ],
};

/// Compose's `healthcheck` (see `health.rs`).
pub(super) static HEALTHCHECK: Section = Section {
    name: "services.<name>.healthcheck",
    keys: &[
        ("test", S),
        ("interval", S),
        ("timeout", S),
        ("retries", S),
        ("start_period", S),
        ("disable", S),
        (
            "start_interval",
            Status::Warn("ignored: atoll probes every `interval`, during the start period too"),
        ),
    ],
};

/// `x-atoll.health`: atoll's HTTP probe.
pub(super) static HEALTH: Section = Section {
    name: "services.<name>.x-atoll.health",
    keys: &[
        ("http", S),
        ("port", S),
        ("interval", S),
        ("timeout", S),
        ("retries", S),
        ("start_period", S),
        ("liveness", S),
    ],
};

/// `x-atoll.health.liveness` as a mapping: `health` without `liveness`.
pub(super) static LIVENESS: Section = Section {
    name: "services.<name>.x-atoll.health.liveness",
    keys: &[
        ("http", S),
        ("port", S),
        ("interval", S),
        ("timeout", S),
        ("retries", S),
        ("start_period", S),
    ],
};

pub(super) static AUTOSCALE: Section = Section {
    name: "services.<name>.x-atoll.autoscale",
    keys: &[
        ("min", S),
        ("max", S),
        ("target", S),
        ("scale_up_window", S),
        ("scale_down_window", S),
    ],
};

pub(super) static AUTOSCALE_TARGET: Section = Section {
    name: "services.<name>.x-atoll.autoscale.target",
    keys: &[("inflight", S), ("rps", S), ("cpu", S)],
};

pub(super) static CANARY: Section = Section {
    name: "services.<name>.x-atoll.canary",
    keys: &[
        ("image", S),
        ("component", S),
        ("weight", S),
        ("replicas", S),
    ],
};

pub(super) static PORT: Section = Section {
    name: "services.<name>.ports[]",
    keys: &[
        ("target", S),
        ("published", S),
        ("protocol", S),
        ("mode", S),
        ("name", S),
        (
            "host_ip",
            Status::Warn("ignored: ports are published on every host's bind address"),
        ),
        ("app_protocol", N),
    ],
};

pub(super) static DEPLOY: Section = Section {
    name: "services.<name>.deploy",
    keys: &[
        ("mode", S),
        ("replicas", S),
        ("placement", S),
        ("resources", S),
        ("restart_policy", S),
        ("endpoint_mode", N),
        ("labels", N),
        ("rollback_config", S),
        ("update_config", S),
    ],
};

/// The keys of `update_config` and `rollback_config`.
const UPDATE_KEYS: &[(&str, Status)] = &[
    ("parallelism", S),
    ("delay", S),
    ("order", S),
    ("monitor", S),
    ("failure_action", S),
    ("max_failure_ratio", S),
];

pub(super) static UPDATE_CONFIG: Section = Section {
    name: "services.<name>.deploy.update_config",
    keys: UPDATE_KEYS,
};

pub(super) static ROLLBACK_CONFIG: Section = Section {
    name: "services.<name>.deploy.rollback_config",
    keys: UPDATE_KEYS,
};

pub(super) static RESTART_POLICY: Section = Section {
    name: "services.<name>.deploy.restart_policy",
    keys: &[
        ("condition", S),
        ("delay", S),
        ("max_attempts", S),
        ("window", S),
    ],
};

pub(super) static PLACEMENT: Section = Section {
    name: "services.<name>.deploy.placement",
    keys: &[
        ("constraints", S),
        ("preferences", S),
        ("max_replicas_per_node", S),
    ],
};

pub(super) static PREFERENCE: Section = Section {
    name: "services.<name>.deploy.placement.preferences[]",
    keys: &[("spread", S)],
};

pub(super) static RESOURCES: Section = Section {
    name: "services.<name>.deploy.resources",
    keys: &[("limits", S), ("reservations", S)],
};

pub(super) static LIMITS: Section = Section {
    name: "services.<name>.deploy.resources.limits",
    keys: &[("cpus", S), ("memory", S), ("pids", S)],
};

pub(super) static RESERVATIONS: Section = Section {
    name: "services.<name>.deploy.resources.reservations",
    keys: &[
        ("cpus", S),
        ("memory", S),
        ("devices", N),
        ("generic_resources", N),
    ],
};

/// Every section, for the documentation check.
#[cfg(test)]
pub(super) static ALL: &[&Section] = &[
    &TOP,
    &VOLUME,
    &SECRET,
    &CONFIG,
    &FILE_MOUNT,
    &SERVICE,
    &MOUNT,
    &HEALTHCHECK,
    &X_ATOLL,
    &HEALTH,
    &LIVENESS,
    &AUTOSCALE,
    &AUTOSCALE_TARGET,
    &CANARY,
    &DISCONNECT,
    &PORT,
    &DEPLOY,
    &UPDATE_CONFIG,
    &ROLLBACK_CONFIG,
    &RESTART_POLICY,
    &PLACEMENT,
    &PREFERENCE,
    &RESOURCES,
    &LIMITS,
    &RESERVATIONS,
];

/// Keeps the supported entries of a mapping. Compose keys atoll ignores get
/// a warning, `x-` extension keys are dropped silently (Compose allows them
/// anywhere), and anything else is an `unknown key` error.
/// The warning for a key the catalogue does not know.
const UNKNOWN: &str =
    "unknown key, ignored (not in atoll's Compose catalogue: newer than this release, or misspelt)";

pub(super) fn filter<'n, 'a>(
    ctx: &mut Ctx,
    section: &Section,
    path: &str,
    entries: Vec<Entry<'n, 'a>>,
) -> Vec<Entry<'n, 'a>> {
    let mut kept = Vec::with_capacity(entries.len());
    for e in entries {
        match section.keys.iter().find(|(k, _)| *k == e.key) {
            Some((_, Status::Supported)) => kept.push(e),
            Some((_, Status::Warn(message))) => ctx.warn(&join(path, &e.key), e.line, message),
            Some((_, Status::Cli)) => ctx.warn(&join(path, &e.key), e.line, CLI),
            None if e.key.starts_with("x-") => {}
            // A misspelt key is an error: ignoring it would hide the typo.
            // In an open section only a near miss counts as one
            // (`pre_start` is a newer Compose key, not `restart` misspelt).
            None => match suggest(section, &e.key) {
                Some((k, d)) if section.strict() || d <= 1 => {
                    let message = format!("unknown key (did you mean `{k}`?)");
                    ctx.error(&join(path, &e.key), e.line, message);
                }
                // Likely a key newer than this catalogue (see `strict`).
                _ if !section.strict() => ctx.warn(&join(path, &e.key), e.line, UNKNOWN),
                _ => ctx.error(&join(path, &e.key), e.line, "unknown key"),
            },
        }
    }
    kept
}

/// The section's key closest to a misspelt one, if it is close enough to
/// be a typo (`replica` → `replicas`, `enviroment` → `environment`).
/// With its edit distance.
fn suggest(section: &Section, key: &str) -> Option<(&'static str, usize)> {
    let budget = if key.chars().count() <= 4 { 1 } else { 2 };
    section
        .keys
        .iter()
        .map(|(k, _)| (edit_distance(k, key), *k))
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, _)| *d)
        .map(|(d, k)| (k, d))
}

/// Levenshtein distance over characters, case-insensitive.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest(&DEPLOY, "replica"), Some(("replicas", 1)));
        assert_eq!(suggest(&SERVICE, "enviroment"), Some(("environment", 1)));
        assert_eq!(suggest(&SERVICE, "Image"), Some(("image", 0)));
        assert_eq!(suggest(&SERVICE, "pre_start"), Some(("restart", 2)));
        assert_eq!(suggest(&SERVICE, "frobnicate"), None);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn no_section_lists_a_key_twice() {
        for section in ALL {
            for (i, (k, _)) in section.keys.iter().enumerate() {
                let again = section.keys[i + 1..].iter().any(|(o, _)| o == k);
                assert!(!again, "{} lists {k} twice", section.name);
            }
        }
    }
}
