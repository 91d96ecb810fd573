//! IPv4 forwarding, which containers need to reach other networks: turned
//! on with a host's bridge, and back off with the last atoll bridge on the
//! machine if it was off before (a marker in the host's network dir says
//! so).

use std::path::Path;

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";
/// In the network dir: this host turned forwarding on (it was off).
const FORWARD_WAS_OFF: &str = "ip_forward.was-off";

/// Turns forwarding on, noting in `dir` if it was off.
pub(super) fn enable(dir: &Path) {
    let was = std::fs::read_to_string(IP_FORWARD).unwrap_or_default();
    if was.trim() == "0" {
        let _ = std::fs::write(dir.join(FORWARD_WAS_OFF), "");
    }
    if let Err(e) = std::fs::write(IP_FORWARD, "1") {
        tracing::warn!(error = %e, "could not enable IPv4 forwarding; containers cannot reach other networks");
    }
}

/// Turns forwarding back off if this host turned it on and no other
/// atoll bridge on the machine still needs it.
pub(super) fn restore(dir: &Path) {
    let marker = dir.join(FORWARD_WAS_OFF);
    if !marker.exists() {
        return;
    }
    let others = (std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten())
    .any(|e| {
        e.file_name().to_string_lossy().starts_with("atoll-") && e.path().join("bridge").exists()
    });
    if others {
        tracing::info!("IPv4 forwarding left on: another atoll bridge uses it");
    } else if let Err(e) = std::fs::write(IP_FORWARD, "0") {
        tracing::warn!(error = %e, "could not turn IPv4 forwarding back off");
    }
    let _ = std::fs::remove_file(marker);
}
