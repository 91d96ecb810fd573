//! Heartbeats between changes. A host sends its whole state (a
//! [`Heartbeat`]) when it changes, when a server asks, and rarely
//! otherwise; every other interval it sends a [`Pulse`] of a few dozen
//! bytes that says "alive, and the state I last sent in full still holds".
//! Each pulse names that full heartbeat (its number and the host's run),
//! so a server that missed it — lost on the way, or a server that started
//! since — sees the gap at the next pulse and asks for the whole state
//! again ([`judge`]), on the pulse's reply subject ([`resync_subject`]).

use super::Heartbeat;
use serde::{Deserialize, Serialize};

/// A host's heartbeat between changes. Short field names: at a pulse a
/// second from each of thousands of hosts, the bytes are the cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pulse {
    pub v: u32,
    /// This beat's number (full heartbeats and pulses count together).
    #[serde(rename = "s")]
    pub seq: u64,
    /// The number of the last full heartbeat sent: the state this pulse
    /// vouches for.
    #[serde(rename = "f")]
    pub full: u64,
    /// The run of the host process ([`Heartbeat::run`]).
    #[serde(rename = "r")]
    pub run: u64,
}

/// What a host's heartbeat subject carries.
#[derive(Debug, Clone)]
pub enum Beat {
    Full(Box<Heartbeat>),
    Pulse(Pulse),
}

impl Beat {
    /// A pulse, else a full heartbeat; the error is the full heartbeat's
    /// (a pulse is too small to be malformed interestingly).
    pub fn decode(bytes: &[u8]) -> Result<Beat, serde_json::Error> {
        if let Ok(p) = serde_json::from_slice::<Pulse>(bytes) {
            return Ok(Beat::Pulse(p));
        }
        serde_json::from_slice::<Heartbeat>(bytes).map(|hb| Beat::Full(Box::new(hb)))
    }
}

/// Where a host hears that a server wants its whole state: a pulse's
/// reply subject, under the host's own inbox (which only it reads).
pub fn resync_subject(host: &str) -> String {
    format!("{}.resync", super::host_inbox(host))
}

/// The full heartbeat a server holds from a host: which run sent it and
/// its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub run: u64,
    pub full: u64,
}

/// What a server makes of a pulse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The state it holds is the one the host vouches for.
    Current,
    /// It missed a full heartbeat (or never had one from this run): it
    /// asks for the whole state.
    Resync,
}

/// Whether the state a server holds from a host (`None`: none) is the one
/// a pulse vouches for.
pub fn judge(held: Option<Held>, pulse: &Pulse) -> Verdict {
    match held {
        Some(h) if h.run == pulse.run && h.full == pulse.full => Verdict::Current,
        _ => Verdict::Resync,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pulse(full: u64, run: u64) -> Pulse {
        Pulse {
            v: 1,
            seq: full + 3,
            full,
            run,
        }
    }

    #[test]
    fn a_pulse_is_current_only_for_the_full_heartbeat_it_names() {
        let held = Some(Held { run: 7, full: 4 });
        assert_eq!(judge(held, &pulse(4, 7)), Verdict::Current);
        assert_eq!(judge(held, &pulse(5, 7)), Verdict::Resync, "one was lost");
        assert_eq!(judge(held, &pulse(4, 8)), Verdict::Resync, "a new run");
        assert_eq!(judge(None, &pulse(4, 7)), Verdict::Resync, "never heard");
    }

    #[test]
    fn pulses_and_full_heartbeats_are_told_apart_and_pulses_are_small() {
        let bytes = serde_json::to_vec(&pulse(12, u64::MAX)).expect("json");
        assert!(bytes.len() <= 56, "{} bytes", bytes.len());
        assert!(matches!(Beat::decode(&bytes), Ok(Beat::Pulse(p)) if p.full == 12));
        let hb = Heartbeat {
            v: 1,
            host: crate::cluster::HostInfo {
                name: "h1".into(),
                address: "127.0.0.2".into(),
                mesh_port: crate::cluster::DEFAULT_MESH_PORT,
                labels: Default::default(),
                arch: "x86_64".into(),
                os: "linux".into(),
                capacity: Default::default(),
                started_at_ms: 1,
                version: "t".into(),
            },
            seq: 3,
            run: 9,
            instances: Vec::new(),
        };
        let bytes = serde_json::to_vec(&hb).expect("json");
        assert!(matches!(Beat::decode(&bytes), Ok(Beat::Full(b)) if b.run == 9 && b.seq == 3));
        let err = Beat::decode(b"{\"v\":1}").expect_err("neither");
        assert!(err.to_string().contains("host"), "{err}");
    }
}
