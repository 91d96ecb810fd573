//! Every message a host or a server decodes from NATS (the first byte
//! picks the type, the rest is the payload): a decoded message re-encodes
//! to an equal value.
#![no_main]

use atoll_fuzz::{check_round_trip, check_round_trip_eq};
use atoll_sdk::{cluster, metrics, protocol};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, payload)) = data.split_first() else {
        return;
    };
    match kind % 16 {
        0 => check_round_trip::<protocol::Heartbeat>(payload),
        1 => check_round_trip_eq::<metrics::HostSample>(payload),
        2 => check_round_trip_eq::<cluster::Assignment>(payload),
        3 => check_round_trip_eq::<protocol::AppRecord>(payload),
        4 => check_round_trip_eq::<protocol::AppStatus>(payload),
        5 => check_round_trip_eq::<protocol::Endpoints>(payload),
        6 => check_round_trip_eq::<protocol::RemovedHost>(payload),
        7 => check_round_trip_eq::<protocol::ScaleRecord>(payload),
        8 => check_round_trip_eq::<protocol::Event>(payload),
        9 => check_round_trip_eq::<protocol::Wake>(payload),
        10 => check_round_trip_eq::<protocol::StateGrantRequest>(payload),
        11 => check_round_trip_eq::<protocol::StateGrant>(payload),
        12 => check_round_trip_eq::<protocol::FileValuesRequest>(payload),
        13 => check_round_trip_eq::<protocol::FileValues>(payload),
        14 => check_round_trip_eq::<protocol::LogRequest>(payload),
        _ => check_round_trip_eq::<protocol::LogChunk>(payload),
    }
});
