//! What a Compose file asks for beyond a default container: capabilities
//! past Docker's default set, `privileged`, the host's namespaces and its
//! devices. The parser only lists them, each with its path and line; the
//! server decides against its policy (`atoll server --allow-cap`), so a
//! file is judged by the cluster that runs it.

use super::model::App;

/// Docker's default capabilities (moby `oci/caps/defaults.go`): what a
/// container may ask for with no policy. atoll's own default set is
/// smaller (no `NET_RAW`, no `MKNOD`); `cap_add` gives those back freely.
pub const DOCKER_DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// One thing a file asks for that a server's policy must allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privilege {
    /// `services.web.cap_add[0]`.
    pub path: String,
    /// The line it is on; 0 when judged from a stored revision.
    pub line: usize,
    pub kind: PrivilegeKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivilegeKind {
    /// A capability beyond [`DOCKER_DEFAULT_CAPS`] (or `ALL`).
    Capability(String),
    /// `privileged: true`.
    Privileged,
    /// `pid: host` and the like: the key named.
    HostNamespace(String),
    /// `devices:` (or `device_cgroup_rules:`): the entry as written.
    Device(String),
}

/// Linux capabilities (`capabilities(7)`), without the `CAP_` prefix.
pub const CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A capability as stored: upper case without `CAP_` (`net_admin`,
/// `CAP_NET_ADMIN` → `NET_ADMIN`), or `ALL`; `None` if Linux has no such
/// capability.
pub fn capability(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    (bare == "ALL" || CAPABILITIES.contains(&bare)).then(|| bare.to_string())
}

/// Whether `cap` (upper case, no `CAP_`) needs a policy.
pub fn beyond_default(cap: &str) -> bool {
    !DOCKER_DEFAULT_CAPS.contains(&cap)
}

/// The capabilities a stored app asks for beyond the defaults, for
/// judging a revision written again (a rollback, an import) without its
/// file's lines. The other privileges are refused when a file is parsed
/// and never reach a stored revision.
pub fn of_app(app: &App) -> Vec<Privilege> {
    let mut out = Vec::new();
    for (name, service) in &app.services {
        for (i, cap) in service.container.cap_add.iter().enumerate() {
            if beyond_default(cap) {
                out.push(Privilege {
                    path: format!("services.{name}.cap_add[{i}]"),
                    line: 0,
                    kind: PrivilegeKind::Capability(cap.clone()),
                });
            }
        }
    }
    out
}
