//! Fulcio's REST API (v2), so cosign and sigstore-go get keyless certificates from the gateway
//! (docs/keyless.md): `POST /api/v2/signingCert` (an OIDC identity token, a public key and a proof of possession
//! in; a ten-minute code-signing certificate and its chain out), `GET /api/v2/trustBundle` (the CA chain) and
//! `GET /api/v2/configuration` (the issuers whose tokens are admitted); and the two documents cosign's
//! `--trusted-root` and `--signing-config` take, at `/sigstore/trusted_root.json` and
//! `/sigstore/signing_config.json`. The `/api` prefix is folded off before routing (`normalize.rs`). The decision
//! is the core's (`signing/keyless.rs`); this file parses and renders Fulcio's JSON.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::call::Call;
use super::render::{problem, Render};
use super::CurrentCore;
use crate::signing::keyless::{CertificateRequest, IssuedCertificate, Possession};
use crate::signing::{refuse, Core, Reason, Refusal};

/// Fulcio's `CreateSigningCertificateRequest`, in its JSON form.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SigningCertRequest {
    #[serde(default)]
    credentials: Option<Credentials>,
    #[serde(default)]
    public_key_request: Option<PublicKeyRequest>,
    #[serde(default)]
    certificate_signing_request: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    oidc_identity_token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyRequest {
    public_key: PublicKeyContent,
    proof_of_possession: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyContent {
    /// Fulcio's `PublicKeyAlgorithm` (`ECDSA`, `RSA_PSS`, `ED25519`): the key itself says which it is.
    #[serde(default)]
    #[allow(dead_code)]
    algorithm: Option<String>,
    /// PEM, or base64 DER.
    content: String,
}

/// Handles the `POST /api/v2/signingCert` route.
pub async fn signing_cert(CurrentCore(core): CurrentCore, call: Call) -> Response {
    call.run(&core, |core, incoming, record| {
        let request: SigningCertRequest = serde_json::from_slice(&incoming.body).map_err(|e| {
            refuse(
                Reason::MalformedRequest,
                format!("not a Fulcio CreateSigningCertificateRequest: {e}"),
            )
        })?;
        let bearer = incoming
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let identity_token = request
            .credentials
            .as_ref()
            .map(|c| c.oidc_identity_token.as_str())
            .or(bearer);
        let possession =
            match (request.public_key_request, request.certificate_signing_request) {
                (Some(key_request), None) => Possession::Signed {
                    public_key: public_key_der(&key_request.public_key.content)?,
                    proof: BASE64
                        .decode(key_request.proof_of_possession.trim())
                        .map_err(|e| {
                            refuse(
                                Reason::ProofOfPossessionFailed,
                                format!("proofOfPossession is not base64: {e}"),
                            )
                        })?,
                },
                (None, Some(csr)) => Possession::Csr(csr_der(&csr)?),
                _ => return Err(refuse(
                    Reason::MalformedRequest,
                    "send either publicKeyRequest (publicKey {algorithm, content} and proofOfPossession) or \
                     certificateSigningRequest",
                )),
            };
        core.issue_keyless_certificate(
            &CertificateRequest {
                identity_token,
                possession,
            },
            record,
        )
    })
    .await
}

/// The public key of a request: PEM (`-----BEGIN PUBLIC KEY-----`), or its DER in base64.
fn public_key_der(content: &str) -> Result<Vec<u8>, Refusal> {
    let malformed = |e: String| refuse(Reason::MalformedRequest, format!("publicKey.content: {e}"));
    if content.contains("-----BEGIN") {
        let (label, document) = der::Document::from_pem(content).map_err(|e| malformed(e.to_string()))?;
        if label != "PUBLIC KEY" {
            return Err(malformed(format!("a PEM {label}, not a PUBLIC KEY")));
        }
        Ok(document.as_bytes().to_vec())
    } else {
        BASE64
            .decode(content.trim())
            .map_err(|e| malformed(e.to_string()))
    }
}

/// A `certificateSigningRequest`: bytes in JSON, so base64, of a PEM (`CERTIFICATE REQUEST`) or DER request.
fn csr_der(field: &str) -> Result<Vec<u8>, Refusal> {
    let malformed = |e: String| {
        refuse(
            Reason::MalformedRequest,
            format!("certificateSigningRequest: {e}"),
        )
    };
    let bytes = BASE64
        .decode(field.trim())
        .map_err(|e| malformed(e.to_string()))?;
    if !bytes.starts_with(b"-----BEGIN") {
        return Ok(bytes);
    }
    let text = std::str::from_utf8(&bytes).map_err(|e| malformed(e.to_string()))?;
    let (label, document) = der::Document::from_pem(text).map_err(|e| malformed(e.to_string()))?;
    if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
        return Err(malformed(format!("a PEM {label}, not a CERTIFICATE REQUEST")));
    }
    Ok(document.as_bytes().to_vec())
}

fn pem_chain(chain: &[Vec<u8>]) -> Vec<String> {
    chain
        .iter()
        .map(|der| der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap_or_default())
        .collect()
}

impl Render for IssuedCertificate {
    fn render(self) -> Response {
        // No certificate transparency log: the certificate carries no SCT (docs/keyless.md).
        json_response(json!({
            "signedCertificateEmbeddedSct": {"chain": {"certificates": pem_chain(&self.chain)}}
        }))
    }
}

fn json_response(body: serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `answer` from the keyless CA, or the 404 of a gateway without `[keyless]`.
fn with_keyless(core: &Core, answer: impl FnOnce(&crate::signing::keyless::Keyless) -> Response) -> Response {
    match core.state.keyless.as_ref() {
        Some(keyless) => answer(keyless),
        None => {
            let refusal = refuse(
                Reason::KeylessOff,
                "this gateway issues no keyless certificates: its configuration has no [keyless]",
            );
            problem(&refusal, &uuid::Uuid::new_v4().to_string())
        }
    }
}

/// Handles the `GET /api/v2/trustBundle` route.
pub async fn trust_bundle(CurrentCore(core): CurrentCore) -> Response {
    with_keyless(&core, |ca| {
        json_response(json!({"chains": [{"certificates": pem_chain(ca.chain())}]}))
    })
}

/// Handles the `GET /api/v2/configuration` route: the issuers whose tokens the rules admit, with the audience
/// their tokens must carry and the claim the proof of possession signs.
pub async fn configuration(CurrentCore(core): CurrentCore) -> Response {
    with_keyless(&core, |ca| {
        let issuers: Vec<serde_json::Value> = ca
            .issuers(&core.state.origins)
            .into_iter()
            .map(|(issuer, audience)| json!({"issuerUrl": issuer, "audience": audience, "challengeClaim": "sub"}))
            .collect();
        json_response(json!({"issuers": issuers}))
    })
}

/// Handles the `GET /sigstore/trusted_root.json` route.
pub async fn trusted_root(CurrentCore(core): CurrentCore) -> Response {
    with_keyless(&core, |ca| document(ca.documents.trusted_root.clone()))
}

/// Handles the `GET /sigstore/signing_config.json` route.
pub async fn signing_config(CurrentCore(core): CurrentCore) -> Response {
    with_keyless(&core, |ca| document(ca.documents.signing_config.clone()))
}

fn document(text: String) -> Response {
    let mut response = Response::new(Body::from(text));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
