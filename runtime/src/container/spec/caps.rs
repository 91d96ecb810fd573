//! Capabilities: Docker's default set less `NET_RAW` and `MKNOD` (as
//! Kubernetes' "restricted" profile drops them: raw sockets forge packets
//! on the bridge, device nodes are not needed to run a service), adjusted
//! by `cap_add` / `cap_drop`. Asking for either back needs no policy; a
//! capability beyond Docker's set does (checked by the server).

use std::collections::BTreeSet;
use std::str::FromStr;

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

/// atoll's default capabilities: Docker's (moby `oci/caps/defaults.go`)
/// without `NET_RAW` and `MKNOD`.
pub const DEFAULT: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Every capability the runtime knows, for `cap_add: [ALL]`.
const ALL: &[&str] = &[
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "SYSLOG",
    "WAKE_ALARM",
];

/// Capability names, upper case without `CAP_`.
pub type CapSet = BTreeSet<String>;

/// The default set, with `ALL` or single names added, then dropped (a drop
/// wins over an add of the same name, as in Docker).
pub fn effective(add: &[String], drop: &[String]) -> CapSet {
    let norm = |c: &String| c.trim_start_matches("CAP_").to_ascii_uppercase();
    let mut set: CapSet = DEFAULT.iter().map(|c| c.to_string()).collect();
    for c in add.iter().map(norm) {
        if c == "ALL" {
            set.extend(ALL.iter().map(|c| c.to_string()));
        } else {
            set.insert(c);
        }
    }
    for c in drop.iter().map(norm) {
        if c == "ALL" {
            set.clear();
        } else {
            set.remove(&c);
        }
    }
    set
}

/// The runtime's capability sets. Root gets the set as bounding,
/// permitted and effective; another user keeps only the bounding set (its
/// permitted set is cleared by `execve`, as with Docker), so `cap_add` on a
/// non-root user needs file capabilities in the image.
pub fn to_linux(set: &CapSet, root: bool) -> LinuxCapabilities {
    let caps: Capabilities = set
        .iter()
        .filter_map(|c| Capability::from_str(c).ok())
        .collect();
    let mut out = LinuxCapabilities::default();
    out.set_bounding(Some(caps.clone()));
    let granted = if root { caps } else { Capabilities::new() };
    out.set_permitted(Some(granted.clone()));
    out.set_effective(Some(granted));
    out.set_inheritable(Some(Capabilities::new()));
    out.set_ambient(Some(Capabilities::new()));
    out
}
