//! Any bytes as a Confluent-framed Avro event: an event or a typed error, never a panic, and
//! no allocation beyond the input's size (libFuzzer's `-rss_limit_mb` and `-malloc_limit_mb`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_events::codec::decode_any;

fuzz_target!(|data: &[u8]| {
    let _ = decode_any(data);
});
