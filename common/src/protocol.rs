//! The wire protocol: SignPath's public hash-signing API, as JSON types; a signing request's own documents
//! (submitted, its data, its status) are in `protocol/signing_request.rs`.
//!
//! Both clients send these and the gateway serves them, so a client works unchanged against SignPath and against
//! our gateway. Field names are SignPath's (camelCase). Our extensions are marked; a SignPath server ignores what it
//! does not know and a client treats every extension as optional. `docs/gateway-api.md` is the prose version of
//! this file and `docs/openapi.yaml` the schema.

use serde::{Deserialize, Serialize};

mod signing_request;

pub use signing_request::{
    BuildData, BuildSettingsFile, Origin, RepositoryData, RequestStatus, SigningRequestData,
    SigningRequestStatus, SubmittedSigningRequest, WorkflowStatus,
};

/// `GET {ApiUrl}/v1/{OrganizationId}/Cryptoki/MySigningPolicies` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MySigningPolicies {
    pub signing_policies: Vec<SigningPolicyInfo>,
}

/// One signing policy the token may submit to, with its key and certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningPolicyInfo {
    pub signing_policy_slug: String,
    pub project_slug: String,
    pub signing_policy_id: String,
    /// `Rsa` or `Ecdsa`.
    pub key_type: WireKeyType,
    /// RSA modulus bits, or the curve's size (256, 384, 521).
    pub key_size_in_bits: u32,
    /// Base64 DER of the policy's (leaf) certificate.
    pub certificate_bytes: String,
    /// Base64 DER of the public key: PKCS#1 `RSAPublicKey` for RSA (as SignPath sends it), the SEC1 uncompressed
    /// point for ECDSA. Clients should prefer the certificate's SubjectPublicKeyInfo.
    pub public_key_bytes: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rsa_parameters: Option<RsaParameters>,
    /// Extension: base64 DER certificates, leaf first, ending at the self-signed root. SignPath sends only
    /// `certificateBytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_chain: Option<Vec<String>>,
    /// Extension: the hash algorithms the policy signs, in SignPath's names (`Sha256`, ..., `Sha1`), so that a
    /// client refuses what the gateway would refuse before it asks. SignPath does not send it: then the gateway
    /// decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_algorithms: Option<Vec<String>>,
}

impl SigningPolicyInfo {
    /// Whether the policy signs digests of `hash`: as its `hashAlgorithms` says, or yes when it says nothing.
    pub fn signs(&self, hash: crate::keys::HashAlgorithm) -> bool {
        self.hash_algorithms.as_ref().is_none_or(|names| {
            names
                .iter()
                .any(|name| name.eq_ignore_ascii_case(hash.signpath_name()))
        })
    }
}

/// RSA public key parameters, base64 big-endian unsigned integers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RsaParameters {
    pub public_exponent: String,
    pub modulus: String,
}

/// Key type names as SignPath spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WireKeyType {
    Rsa,
    Ecdsa,
}

/// `POST {ApiUrl}/v1/{OrganizationId}/SigningRequests/SignHash` request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignHashRequest {
    pub project_slug: String,
    pub signing_policy_slug: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_configuration_slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub hash_signing_data: HashSigningData,
}

/// What to sign and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HashSigningData {
    pub signature_algorithm: SignatureAlgorithm,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rsa_options: Option<RsaOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecdsa_options: Option<EcdsaOptions>,
    /// Base64 of the digest. Its length must match the hash algorithm.
    pub hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignatureAlgorithm {
    Rsa,
    Ecdsa,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RsaOptions {
    /// `Sha1`, `Sha256`, `Sha384` or `Sha512`; either this or `hashAlgorithmOid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_algorithm_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_algorithm_oid: Option<String>,
    /// `Pkcs1` (default) or `Pss`. PSS uses salt length = hash length and MGF1 with the same hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding_mode: Option<PaddingMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaddingMode {
    Pkcs1,
    Pss,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcdsaOptions {
    /// `Ieee` (default, fixed-length r||s) or `Asn1` (DER SEQUENCE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_format: Option<EcdsaSignatureFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EcdsaSignatureFormat {
    Ieee,
    Asn1,
}

/// Free-form audit metadata. `sourceProcess` is SignPath's; `oci` and `groupId` are our extensions.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_process: Option<SourceProcess>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci: Option<OciMetadata>,
    /// Release group (`ReleaseGroup`, SIGNPATH_RELEASE_GROUP): signatures that one approval may cover together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceProcess {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_line: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_system: Option<OperatingSystem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatingSystem {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub os_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
}

/// What was signed, when the client knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// `SignHash` response (200 when signed at once; 202 with `status` and no result while it waits for approval).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignHashResponse {
    pub signing_request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_link: Option<String>,
    /// Extension: `Completed`, `WaitingForApproval`, `Denied`, ... (see [`SigningRequestStatus`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_signing_data: Option<HashEcho>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_signing_result: Option<HashSigningResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HashEcho {
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HashSigningResult {
    /// Base64 of the signature.
    pub signature: String,
}

/// RFC 9457 problem document, the body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(rename = "type", default = "about_blank")]
    pub problem_type: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Extension member: the audit record of the refused request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Extension member of `origin-rejected` when no identity token was sent: the audience (`aud`) the policy's
    /// issuer must have minted it for. Clients on GitHub Actions fetch a token for it and retry, but only when it
    /// is the audience they chose themselves ([`identity_token_audience_of`] their `ApiUrl`, or
    /// `IdentityTokenAudience`): a server must not pick the audience of a token its clients hand it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_token_audience: Option<String>,
}

fn about_blank() -> String {
    "about:blank".to_owned()
}

/// The audience of the identity tokens a gateway verifies unless configured otherwise, and that clients fetch them
/// for: the gateway's URL as clients are configured with it (`ApiUrl`), in one form whatever its spelling — lower
/// case scheme and host, no default port, no trailing `/` and no trailing `/Api` (SignPath's URLs end in it; the
/// gateway serves the API with and without it). `https://GW.example:443/Api/` is `https://gw.example`. A text that
/// is not a URL is only trimmed.
pub fn identity_token_audience_of(api_url: &str) -> String {
    let api_url = api_url.trim();
    let url = match url::Url::parse(api_url) {
        Ok(url) if url.origin().is_tuple() => url,
        _ => return api_url.trim_end_matches('/').to_owned(),
    };
    let mut path = url.path().trim_end_matches('/');
    if path.len() >= 4 && path[path.len() - 4..].eq_ignore_ascii_case("/api") {
        path = &path[..path.len() - 4];
    }
    format!(
        "{}{}",
        url.origin().ascii_serialization(),
        path.trim_end_matches('/')
    )
}

/// Media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The stable `type` values our gateway uses, so clients can branch on them rather than on prose.
pub mod problem_types {
    const PREFIX: &str = "urn:signpath-gateway:problem:";
    macro_rules! types {
        ($($name:ident = $slug:literal;)*) => {
            $(pub const $name: &str = concat!("urn:signpath-gateway:problem:", $slug);)*
            /// Every type, for documentation and schema tests.
            pub const ALL: &[&str] = &[$($name),*];
        };
    }
    types! {
        UNAUTHENTICATED = "unauthenticated";
        FORBIDDEN = "forbidden";
        ORGANIZATION_NOT_FOUND = "organization-not-found";
        POLICY_NOT_FOUND = "signing-policy-not-found";
        SIGNING_REQUEST_NOT_FOUND = "signing-request-not-found";
        MALFORMED_REQUEST = "malformed-request";
        INVALID_HASH = "invalid-hash";
        UNSUPPORTED_ALGORITHM = "unsupported-algorithm";
        IDEMPOTENCY_KEY_REUSED = "idempotency-key-reused";
        REQUEST_DENIED = "signing-request-denied";
        ORIGIN_REJECTED = "origin-rejected";
        THROTTLED = "throttled";
        HSM_UNAVAILABLE = "hsm-unavailable";
        INTERNAL = "internal-error";
        NOT_FOUND = "not-found";
        METHOD_NOT_ALLOWED = "method-not-allowed";
        INVALID_ARTIFACT = "invalid-artifact";
        ARTIFACT_NOT_AVAILABLE = "artifact-not-available";
        CERTIFICATE_REVOKED = "signing-certificate-revoked";
        REQUEST_TIMEOUT = "request-timeout";
        INVALID_PROOF_OF_POSSESSION = "invalid-proof-of-possession";
    }

    /// The short name after the prefix, for messages.
    pub fn short(problem_type: &str) -> &str {
        problem_type.strip_prefix(PREFIX).unwrap_or(problem_type)
    }
}

/// Request header carrying the CI's OIDC identity token, for policies that verify a request's origin.
pub const ORIGIN_TOKEN_HEADER: &str = "X-SignPath-Origin-Token";

/// The header that makes a retried `SignHash` return the first result instead of signing twice.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// A new signing request id (the gateway's) or idempotency key (a client's): a UUID, as SignPath's are, of
/// version 7, whose first 48 bits are the time in milliseconds and the other 74 random. The gateway indexes every
/// audit record, log leaf and stored answer by these; ids that grow with time add each to the end of its index,
/// where random ones dirtied a page anywhere in it, so one audit commit wrote 27-42% fewer WAL bytes at 8 to 32
/// clients (docs/performance.md). Nothing relies on the id being unguessable: the routes that give out a request's
/// data authenticate their caller, and the revocation answer for an id tells no more than the signatures that
/// carry it.
pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The SignPath parameter (`Parameters.ImageReference` of a file-based signing request) that names the repository
/// of images an OCI layout tarball names only by a tag (`ref.name` = `1.0`, as skopeo and oras write it).
pub const IMAGE_REFERENCE_PARAMETER: &str = "ImageReference";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_request_ids_are_version_7_uuids_that_sort_by_time() {
        let first = new_request_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = new_request_id();
        for id in [&first, &second] {
            let uuid = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(uuid.get_version_num(), 7, "{id}");
            assert_eq!(id.len(), 36, "{id}: not the hyphenated form");
        }
        // As text, the order the indexes keep.
        assert!(first < second, "{first} sorts after {second}");
    }

    #[test]
    fn the_default_audience_is_the_gateway_url_in_one_form() {
        for url in [
            "https://gw.example:8443",
            "https://gw.example:8443/",
            "https://GW.example:8443/Api",
            "https://gw.example:8443/api/",
            " https://gw.example:8443/Api ",
        ] {
            assert_eq!(
                identity_token_audience_of(url),
                "https://gw.example:8443",
                "{url}"
            );
        }
        assert_eq!(
            identity_token_audience_of("https://gw.example:443/Api"),
            "https://gw.example"
        );
        assert_eq!(
            identity_token_audience_of("https://gw.example/signing/Api"),
            "https://gw.example/signing"
        );
        assert_eq!(
            identity_token_audience_of("https://gw.example/capi"),
            "https://gw.example/capi"
        );
        assert_eq!(identity_token_audience_of("signpath-gateway"), "signpath-gateway");
        assert_eq!(identity_token_audience_of("urn:acme:gw"), "urn:acme:gw");
    }

    #[test]
    fn sign_hash_request_matches_signpath_shape() {
        let request = SignHashRequest {
            project_slug: "demo".into(),
            signing_policy_slug: "rsa-2048".into(),
            artifact_configuration_slug: None,
            description: None,
            hash_signing_data: HashSigningData {
                signature_algorithm: SignatureAlgorithm::Rsa,
                rsa_options: Some(RsaOptions {
                    hash_algorithm_name: Some("Sha256".into()),
                    hash_algorithm_oid: None,
                    padding_mode: Some(PaddingMode::Pss),
                }),
                ecdsa_options: None,
                hash: "AAAA".into(),
                metadata: None,
            },
        };
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            r#"{"projectSlug":"demo","signingPolicySlug":"rsa-2048","hashSigningData":{"signatureAlgorithm":"Rsa","rsaOptions":{"hashAlgorithmName":"Sha256","paddingMode":"Pss"},"hash":"AAAA"}}"#
        );
    }

    #[test]
    fn signpath_policy_without_extensions_parses() {
        let json = r#"{"signingPolicies":[{"signingPolicySlug":"test-signing","projectSlug":"p","keySizeInBits":2048,
            "rsaParameters":{"publicExponent":"AQAB","modulus":"2e4J"},"signingPolicyId":"id",
            "certificateBytes":"MIIC","keyType":"Rsa","publicKeyBytes":"MIIB"}]}"#;
        let parsed: MySigningPolicies = serde_json::from_str(json).unwrap();
        assert_eq!(parsed.signing_policies[0].key_type, WireKeyType::Rsa);
        assert!(parsed.signing_policies[0].certificate_chain.is_none());
        // Without our extension, every hash is left to the gateway to decide.
        assert!(parsed.signing_policies[0].signs(crate::keys::HashAlgorithm::Sha1));
    }

    #[test]
    fn a_policy_that_lists_its_hashes_signs_only_those() {
        let mut policy: SigningPolicyInfo = serde_json::from_value(serde_json::json!({
            "signingPolicySlug": "s", "projectSlug": "p", "signingPolicyId": "id", "keyType": "Rsa",
            "keySizeInBits": 2048, "certificateBytes": "", "publicKeyBytes": "",
            "hashAlgorithms": ["Sha256", "sha384"]}))
        .unwrap();
        use crate::keys::HashAlgorithm::{Sha1, Sha256, Sha384, Sha512};
        assert_eq!(
            [Sha1, Sha256, Sha384, Sha512].map(|h| policy.signs(h)),
            [false, true, true, false]
        );
        policy.hash_algorithms = None;
        assert!(policy.signs(Sha1));
    }

    #[test]
    fn every_problem_type_is_in_the_openapi_schema_and_the_docs() {
        let openapi = include_str!("../../docs/openapi.yaml");
        let docs = include_str!("../../docs/gateway-api.md");
        for t in problem_types::ALL {
            assert!(
                openapi.contains(&format!("- {t}\n")),
                "{t} is not in docs/openapi.yaml"
            );
            assert!(
                docs.contains(&format!("`{}`", problem_types::short(t))),
                "{t} is not in docs/gateway-api.md"
            );
        }
    }

    #[test]
    fn problem_without_type_is_about_blank() {
        let parsed: Problem = serde_json::from_str(r#"{"title":"Unauthorized","status":401}"#).unwrap();
        assert_eq!(parsed.problem_type, "about:blank");
        assert_eq!(problem_types::short(problem_types::FORBIDDEN), "forbidden");
    }
}
