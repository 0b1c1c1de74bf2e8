//! The core's time-stamping authority (RFC 3161): a timestamp query read, signed with the TSA key in the HSM and
//! audited like every signature. Anyone may ask for a timestamp (as with public TSAs): a token says only that a
//! digest existed at a time, and the audit log keeps which digest, when, and for whom (the client address).
//! The token itself is built in `pki::tsa`; this file holds the key and decides the answer.

use std::path::Path;
use std::time::SystemTime;

use common::keys::{KeyKind, SignatureScheme};
use common::x509::pem_certificates;
use cryptoki::object::ObjectHandle;
use sha2::Digest as _;

use super::{refuse, Audited, Core, Reason, Refusal};
use crate::config::{resolve, TimestampingConfig};
use crate::error::BoxError;
use crate::hsm::Signer;
use crate::pki::tsa::{self, Authority};
use crate::store::Record;

/// The TSA a configuration names: its certificate and policy, and its key's handle in the HSM.
#[derive(Debug)]
pub struct Timestamping {
    authority: Authority,
    key: ObjectHandle,
}

impl Timestamping {
    /// Reads `[timestamping]`: the certificate chain's first certificate is the TSA's; its key must be in the HSM.
    pub fn load(config: &TimestampingConfig, base: &Path, signer: &Signer) -> Result<Self, BoxError> {
        let mut chain = Vec::new();
        for file in &config.certificate_chain {
            let path = resolve(base, file);
            let pem = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            chain.extend(pem_certificates(&pem, &path.display().to_string())?);
        }
        let certificate = chain.first().ok_or("[timestamping] names no certificate_chain")?;
        let policy = config.policy.parse().map_err(|e| {
            format!(
                "[timestamping] policy {:?} is not an object identifier: {e}",
                config.policy
            )
        })?;
        Ok(Self {
            authority: Authority::new(policy, certificate)?,
            key: signer.find_key(&config.key_label)?,
        })
    }
}

/// The answer to a timestamp query: a `TimeStampResp`, granted or carrying a failure status.
#[derive(Debug)]
pub struct TimestampReply {
    pub der: Vec<u8>,
    /// The reply grants nothing (the audit record says "refused").
    pub refused: bool,
}

impl Audited for TimestampReply {
    fn status(&self) -> u16 {
        200
    }

    fn refused(&self) -> bool {
        self.refused
    }
}

impl Core {
    /// Answers a DER `TimeStampQuery`. A query the TSA cannot grant gets a reply with status rejection and its
    /// failure bit (badAlg, badDataFormat, unacceptedPolicy, unacceptedExtension); a gateway without a TSA or an
    /// HSM that fails gets a refusal.
    pub fn timestamp(&self, query: &[u8], record: &mut Record) -> Result<TimestampReply, Refusal> {
        let Some(tsa) = &self.state.timestamping else {
            return Err(refuse(
                Reason::NotATimestampAuthority,
                "this gateway is not a time-stamping authority: its configuration has no [timestamping]",
            ));
        };
        let encoding_failed = |e: tsa::TsaError| {
            tracing::error!(error = %e, "timestamp reply not built");
            refuse(Reason::Internal, "the timestamp reply could not be built")
        };
        let query = match tsa::read_request(query, &tsa.authority.policy) {
            Ok(query) => query,
            Err(failure) => {
                record.error_type = Some(format!("{:?}", failure.info));
                record.error_detail = Some(failure.text.clone());
                return Ok(TimestampReply {
                    der: tsa::failure_reply(failure.info, &failure.text).map_err(encoding_failed)?,
                    refused: true,
                });
            }
        };
        record.hash_algorithm = Some(query.hash.signpath_name().to_owned());
        record.digest = Some(hex::encode(query.message_imprint.hashed_message.as_bytes()));
        record.certificate_sha256 = Some(hex::encode(tsa.authority.certificate_sha256));
        let scheme = match tsa.authority.kind {
            KeyKind::Ec(_) => SignatureScheme::EcdsaAsn1,
            KeyKind::Rsa { .. } => SignatureScheme::RsaPkcs1,
        };
        let granted = tsa::granted_reply(&tsa.authority, &query, SystemTime::now(), |digest| {
            self.state
                .signer
                .sign(
                    tsa.key,
                    tsa.authority.kind,
                    scheme,
                    tsa.authority.signature_hash,
                    digest,
                )
                .map_err(|e| e.to_string())
        });
        let granted = match granted {
            Ok(granted) => granted,
            Err(tsa::TsaError::Signing(e)) => {
                tracing::error!(error = %e, "the TSA key did not sign");
                return Err(refuse(
                    Reason::HsmUnavailable,
                    "the HSM could not sign the timestamp; try again later",
                ));
            }
            Err(e) => return Err(encoding_failed(e)),
        };
        record.algorithm = Some(format!("{}", tsa.authority.kind));
        record.signature_sha256 = Some(hex::encode(sha2::Sha256::digest(&granted.reply)));
        record.metadata = Some(
            serde_json::json!({
                "timestamp": {
                    "serialNumber": granted.serial,
                    "genTime": granted.gen_time,
                    "policy": tsa.authority.policy.to_string(),
                    "nonce": query.nonce.as_ref().map(|n| hex::encode(n.as_bytes())),
                }
            })
            .to_string(),
        );
        Ok(TimestampReply {
            der: granted.reply,
            refused: false,
        })
    }
}
