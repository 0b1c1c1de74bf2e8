//! The plugin's request parsing: the JSON notation writes to the plugin's stdin, for each command, and the payload
//! inside a generate-signature request.
#![no_main]

#[allow(dead_code)]
#[path = "../../notation-plugin/src/protocol.rs"]
mod protocol;
#[allow(dead_code)]
#[path = "../../notation-plugin/src/payload.rs"]
mod payload;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<protocol::MetadataRequest>(data);
    let _ = serde_json::from_slice::<protocol::DescribeKeyRequest>(data);
    if let Ok(request) = serde_json::from_slice::<protocol::GenerateSignatureRequest>(data) {
        let payload = request.payload.unwrap_or_default();
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(payload.as_bytes()) {
            let _ = payload::target_artifact(&bytes);
        }
    }
});
