//! ECDSA signature conversions between DER (ASN.1) and fixed-length r||s, for every curve: a DER signature that
//! converts must convert back to the same r||s.
#![no_main]

use common::encoding::{ecdsa_der_to_raw, ecdsa_raw_to_der};
use common::keys::Curve;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for curve in [Curve::P256, Curve::P384, Curve::P521] {
        if let Ok(raw) = ecdsa_der_to_raw(curve, data) {
            let der = ecdsa_raw_to_der(curve, &raw).expect("a converted signature converts back");
            assert_eq!(ecdsa_der_to_raw(curve, &der).expect("our own DER parses"), raw);
        }
        let _ = ecdsa_raw_to_der(curve, data);
    }
});
