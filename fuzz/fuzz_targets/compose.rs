//! A Compose file from bytes to a validated app (the whole `sdk` spec
//! path): see `check_compose` for what must hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = atoll_fuzz::check_compose(text);
    }
});
