//! Any bytes as the JSON body of each command route of ingest's HTTP API, through the same
//! conversion to a command the handlers run. (The query service's HTTP routes take no body.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = switchboard_ingest::api::http::parse_bodies("c-1", data);
});
