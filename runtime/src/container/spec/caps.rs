//! Capabilities: Docker's default set less `NET_RAW` and `MKNOD` (as
//! Kubernetes' "restricted" profile drops them: raw sockets forge packets
//! on the bridge, device nodes are not needed to run a service), adjusted
//! by `cap_add` / `cap_drop`. Asking for either back needs no policy; a
//! capability beyond Docker's set does (checked by the server).

use std::collections::BTreeSet;
use std::str::FromStr;

use atoll_sdk::spec::privilege::{CAPABILITIES, DOCKER_DEFAULT_CAPS};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

/// Dropped from Docker's default set
/// ([`atoll_sdk::spec::privilege::DOCKER_DEFAULT_CAPS`]).
const DROPPED: &[&str] = &["NET_RAW", "MKNOD"];

/// atoll's default capabilities: Docker's without [`DROPPED`].
pub fn default_set() -> impl Iterator<Item = &'static str> {
    (DOCKER_DEFAULT_CAPS.iter().copied()).filter(|c| !DROPPED.contains(c))
}

/// Capability names, upper case without `CAP_`.
pub type CapSet = BTreeSet<String>;

/// The default set, with `ALL` or single names added, then dropped (a drop
/// wins over an add of the same name, as in Docker).
pub fn effective(add: &[String], drop: &[String]) -> CapSet {
    let norm = |c: &String| c.trim_start_matches("CAP_").to_ascii_uppercase();
    let mut set: CapSet = default_set().map(String::from).collect();
    for c in add.iter().map(norm) {
        if c == "ALL" {
            set.extend(CAPABILITIES.iter().map(|c| c.to_string()));
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
