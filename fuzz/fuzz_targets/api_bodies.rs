//! The API's request bodies (the first byte picks the route): JSON bodies
//! re-encode to what they decoded from; a deploy's Compose text goes
//! through the spec path; an import file either parses or is refused, and
//! what it holds passes the server's checks or is refused by them.
#![no_main]

use atoll_fuzz::{check_compose, check_round_trip};
use atoll_sdk::api;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match kind % 5 {
        0 => {
            check_round_trip::<api::DeployRequest>(body);
            if let Ok(req) = serde_json::from_slice::<api::DeployRequest>(body) {
                let _ = check_compose(&req.compose);
            }
        }
        1 => check_round_trip::<api::RollbackRequest>(body),
        2 => check_round_trip::<api::CreateTokenRequest>(body),
        3 => check_round_trip::<api::JoinRequest>(body),
        _ => {
            use atoll_sdk::export;
            if let Ok(file) = export::parse(body) {
                for app in &file.apps {
                    let checked = export::check_app(app);
                    assert!(checked.is_ok(), "parse let through {checked:?}");
                }
                // What an export of this state would write reads back equal.
                let written = serde_json::to_vec(&file).expect("encodes");
                let back = export::parse(&written)
                    .unwrap_or_else(|e| panic!("a parsed file written again is refused: {e}"));
                assert_eq!(back, file, "an import file changed on its way through");
            }
        }
    }
});
