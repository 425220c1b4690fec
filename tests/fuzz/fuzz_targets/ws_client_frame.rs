//! Any text as a WebSocket client frame, read as the edge reads it: the frame, and the lenient
//! read of its `ref` that every error frame echoes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_edge::protocol::{ClientFrame, reference_of};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(frame) = serde_json::from_str::<ClientFrame>(text) {
        // What parses must print back as a frame that parses to the same.
        let again = serde_json::to_string(&frame).expect("a parsed frame serializes");
        assert_eq!(
            serde_json::from_str::<ClientFrame>(&again).ok(),
            Some(frame)
        );
    }
    let _ = reference_of(text);
});
