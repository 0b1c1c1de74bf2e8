//! `signpath-oci check-revocation`: checks signatures that carry no signing request id (cosign's, and Notary
//! signatures made through the hash path: the RAW plugin, `signpath-oci sign`) against the gateway's request
//! revocation list, by the SHA-256 of the signature bytes, which the list names for every signature its audit log
//! shows a revocation covers. The list must be signed by a CA the caller trusts (`--trusted-ca`, the issuing CA
//! of the policy's chain) and within its validity; otherwise the check fails closed.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use common::revocation_list::{SignatureFacts, SignedList};
use sha2::{Digest, Sha256};

/// The signature bytes a file holds: a Notary JWS envelope (`signature`, base64url), a COSE_Sign1 envelope (its
/// fourth element), or what `cosign download signature` prints (one JSON object per line, `Base64Signature`).
pub fn signatures_in(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if let Ok(message) = <coset::CoseSign1 as coset::TaggedCborSerializable>::from_tagged_slice(bytes) {
        return Ok(vec![message.signature]);
    }
    let text =
        std::str::from_utf8(bytes).map_err(|_| "the file is neither JSON nor a COSE envelope".to_owned())?;
    let mut found = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("a line is not JSON: {e}"))?;
        if let Some(jws) = value["signature"].as_str() {
            found.push(
                URL_SAFE_NO_PAD
                    .decode(jws)
                    .map_err(|e| format!("JWS signature: {e}"))?,
            );
        } else if let Some(cosign) = value["Base64Signature"].as_str() {
            found.push(
                STANDARD
                    .decode(cosign)
                    .map_err(|e| format!("Base64Signature: {e}"))?,
            );
        }
    }
    if found.is_empty() {
        return Err(
            "the file holds no signature (a JWS or COSE envelope, or `cosign download signature` output)"
                .into(),
        );
    }
    Ok(found)
}

/// Checks every signature in `signatures` against the list `list`, trusted if signed by a CA in `trusted_ca`.
pub fn run(list: &Path, trusted_ca: &[PathBuf], signatures: &Path) -> Result<(), String> {
    let mut trusted = Vec::new();
    for file in trusted_ca {
        let pem = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        trusted.extend(
            common::x509::pem_certificates(&pem, &file.display().to_string()).map_err(|e| e.to_string())?,
        );
    }
    let bytes = std::fs::read(list).map_err(|e| format!("cannot read {}: {e}", list.display()))?;
    let list = SignedList::parse(&bytes)
        .and_then(|s| s.verify(&trusted, time::OffsetDateTime::now_utc()))
        .map_err(|e| format!("{}: {e}", list.display()))?;
    let file = std::fs::read(signatures).map_err(|e| format!("cannot read {}: {e}", signatures.display()))?;
    let mut revoked = Vec::new();
    for signature in signatures_in(&file)? {
        let sha = hex::encode(Sha256::digest(&signature));
        let facts = SignatureFacts {
            signature_sha256: Some(&sha),
            ..SignatureFacts::default()
        };
        match list.revocation_of(&facts) {
            Some(r) => revoked.push(format!(
                "signature {sha}: {} was revoked at {}: {}",
                r.scope, r.revoked_at, r.reason
            )),
            None => println!("signature {sha}: not revoked (list issued {})", list.issued_at),
        }
    }
    if revoked.is_empty() {
        Ok(())
    } else {
        Err(revoked.join("; "))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn signatures_are_read_from_jws_and_cosign_output() {
        let jws = br#"{"payload":"e30","protected":"e30","header":{},"signature":"AQID"}"#;
        assert_eq!(signatures_in(jws).unwrap(), vec![vec![1, 2, 3]]);
        let cosign = b"{\"Base64Signature\":\"BAU=\",\"Payload\":\"\"}\n{\"Base64Signature\":\"Bg==\"}\n";
        assert_eq!(signatures_in(cosign).unwrap(), vec![vec![4, 5], vec![6]]);
        assert!(signatures_in(b"{}").unwrap_err().contains("holds no signature"));
    }
}
