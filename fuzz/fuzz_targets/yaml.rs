//! YAML with anchors, aliases and merge keys, shaped like Compose files,
//! through the whole spec path: whatever the tree, the parse answers (no
//! panic, no stack overflow, bounded time) and passes `check_compose`.
#![no_main]

use atoll_fuzz::yaml_doc::Doc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|doc: Doc| {
    let text = doc.render();
    let _ = atoll_fuzz::check_compose(&text);
});
