//! The JWS signing input / COSE Sig_structure parser that finds the signed manifest in notation's payload.
#![no_main]

#[allow(dead_code)]
#[path = "../../notation-plugin/src/payload.rs"]
mod payload;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = payload::target_artifact(data);
});
