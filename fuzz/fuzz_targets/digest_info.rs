//! DigestInfo parsing (what CKM_RSA_PKCS callers pass the module): whatever parses must encode to DER that
//! parses to the same hash and digest.
#![no_main]

use common::encoding::{encode_digest_info, parse_digest_info};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((hash, digest)) = parse_digest_info(data) {
        let encoded = encode_digest_info(hash, &digest);
        let (again_hash, again_digest) = parse_digest_info(&encoded).expect("our own encoding parses");
        assert_eq!((again_hash, again_digest), (hash, digest));
    }
});
