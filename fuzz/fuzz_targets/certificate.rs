//! Certificates and public keys from the gateway (DER and PEM), and verification with whatever key they hold.
#![no_main]

use common::keys::{HashAlgorithm, SignatureScheme};
use common::pubkey::PublicKey;
use common::x509::{pem_certificates, ParsedCertificate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cert) = ParsedCertificate::from_der(data) {
        let _ = (cert.subject(), cert.issuer(), cert.is_self_issued(), cert.sha256_fingerprint());
        if let Ok(key) = cert.public_key() {
            let _ = key.verify_digest(SignatureScheme::EcdsaAsn1, HashAlgorithm::Sha256, &[0; 32], data);
            let _ = key.verify_message(SignatureScheme::RsaPkcs1, HashAlgorithm::Sha256, data, data);
        }
    }
    let _ = PublicKey::from_spki_der(data);
    let _ = pem_certificates(data, "fuzz");
});
