//! The gateway's wire format as both sides parse it: SignHash requests and answers, the policy list, problem
//! documents, and a policy's key and chain built from a MySigningPolicies entry.
#![no_main]

use common::protocol::{MySigningPolicies, Problem, SignHashRequest, SignHashResponse};
use common::remote_key::RemoteKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<SignHashRequest>(data) {
        let again = serde_json::to_vec(&request).expect("serializes");
        assert_eq!(serde_json::from_slice::<SignHashRequest>(&again).expect("round trip"), request);
    }
    let _ = serde_json::from_slice::<SignHashResponse>(data);
    let _ = serde_json::from_slice::<Problem>(data);
    if let Ok(list) = serde_json::from_slice::<MySigningPolicies>(data) {
        for info in list.signing_policies {
            let _ = RemoteKey::from_policy_info(info, None);
        }
    }
});
