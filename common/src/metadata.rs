//! The audit metadata a client sends with each signature: who asked (SignPath's `sourceProcess`) and what was
//! signed (our `oci` extension: from the pipeline's `SIGNPATH_OCI_*` variables, or read from the signed payload).

use std::sync::OnceLock;

use crate::protocol::{OciMetadata, OperatingSystem, SourceProcess};
use crate::secret::{redact_command_line, scrub};

/// Describes the current process, with secrets removed from its command line: the exact values this process holds
/// (see [`crate::secret::scrub`]; applied on every call, since a PIN may be learnt after the first) and whatever
/// looks like a secret. Read once per process: the PKCS#11 module calls this on every C_Sign, and neither the
/// command line nor the kernel changes under a process.
pub fn current_source_process() -> SourceProcess {
    static CURRENT: OnceLock<SourceProcess> = OnceLock::new();
    let mut process = CURRENT.get_or_init(read_source_process).clone();
    process.command_line = process.command_line.map(|line| scrub(&line));
    process
}

fn read_source_process() -> SourceProcess {
    let command_line = std::fs::read("/proc/self/cmdline").ok().map(|raw| {
        let words: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        redact_command_line(&words.join(" "))
    });
    let user = std::env::var("USER")
        .ok()
        .or_else(|| std::env::var("LOGNAME").ok());
    let version = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|v| v.trim().to_owned());
    SourceProcess {
        command_line,
        user,
        operating_system: Some(OperatingSystem {
            os_type: Some(std::env::consts::OS.to_owned()),
            version,
            architecture: Some(std::env::consts::ARCH.to_owned()),
        }),
    }
}

/// What a pipeline says it signs, from `SIGNPATH_OCI_REGISTRY`, `SIGNPATH_OCI_REPOSITORY`, `SIGNPATH_OCI_TAG` and
/// `SIGNPATH_OCI_DIGEST` (the names are the contract with pipelines); `None` when none is set.
pub fn oci_from_environment() -> Option<OciMetadata> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let oci = OciMetadata {
        registry: var("SIGNPATH_OCI_REGISTRY"),
        repository: var("SIGNPATH_OCI_REPOSITORY"),
        tag: var("SIGNPATH_OCI_TAG"),
        digest: var("SIGNPATH_OCI_DIGEST"),
        media_type: None,
    };
    let any = oci.registry.is_some() || oci.repository.is_some() || oci.tag.is_some() || oci.digest.is_some();
    any.then_some(oci)
}

/// The image a signed message names, when the message is one cosign signs for an image: its simple-signing payload
/// (`cosign sign`: `critical.identity.docker-reference` and `critical.image.docker-manifest-digest`, sigstore/cosign
/// `specs/SIGNATURE_SPEC.md`) or the DSSE pre-authentication encoding of an in-toto statement (`cosign attest`:
/// the statement's first subject). Best effort: anything else gives `None`, never an error, because the signature
/// does not depend on it.
pub fn oci_from_signed_payload(message: &[u8]) -> Option<OciMetadata> {
    simple_signing(message).or_else(|| in_toto_statement(message))
}

/// Every image cosign signs through `cosign sign` carries this type, and `cosign verify` checks it.
const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";
const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

fn simple_signing(message: &[u8]) -> Option<OciMetadata> {
    let payload: serde_json::Value = serde_json::from_slice(message).ok()?;
    let critical = payload.get("critical")?;
    if critical.get("type")?.as_str()? != SIMPLE_SIGNING_TYPE {
        return None;
    }
    let reference = critical.get("identity")?.get("docker-reference")?.as_str()?;
    let digest = critical.get("image")?.get("docker-manifest-digest")?.as_str()?;
    Some(image(reference, digest.to_owned()))
}

/// DSSE's PAE: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal.
fn in_toto_statement(message: &[u8]) -> Option<OciMetadata> {
    let rest = message.strip_prefix(b"DSSEv1 ")?;
    let (payload_type, rest) = length_prefixed(rest)?;
    if payload_type != IN_TOTO_PAYLOAD_TYPE.as_bytes() {
        return None;
    }
    let (body, rest) = length_prefixed(rest)?;
    if !rest.is_empty() {
        return None;
    }
    let statement: serde_json::Value = serde_json::from_slice(body).ok()?;
    let subject = statement.get("subject")?.as_array()?.first()?;
    let name = subject.get("name")?.as_str()?;
    let digests = subject.get("digest")?.as_object()?;
    let (algorithm, hex) = digests
        .get_key_value("sha256")
        .or_else(|| digests.iter().next())?;
    Some(image(name, format!("{algorithm}:{}", hex.as_str()?)))
}

/// `LEN SP BYTES` followed by a space or the end: the bytes and what follows the space.
fn length_prefixed(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = text.iter().position(|b| *b == b' ')?;
    let length: usize = std::str::from_utf8(&text[..space]).ok()?.parse().ok()?;
    let rest = &text[space + 1..];
    if rest.len() < length {
        return None;
    }
    let (bytes, rest) = rest.split_at(length);
    match rest.split_first() {
        None => Some((bytes, rest)),
        Some((b' ', rest)) => Some((bytes, rest)),
        Some(_) => None,
    }
}

/// Splits a repository name as Docker does: the first component is a registry when it holds a `.` or a `:` or is
/// `localhost` (cosign writes the registry out, `index.docker.io/library/app` for Docker Hub).
fn image(reference: &str, digest: String) -> OciMetadata {
    let (registry, repository) = match reference.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (Some(first.to_owned()), rest.to_owned())
        }
        _ => (None, reference.to_owned()),
    };
    OciMetadata {
        registry,
        repository: Some(repository),
        tag: None,
        digest: Some(digest),
        media_type: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:4f2c3b8a9d6e1f0a5b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c";

    fn simple_signing_payload(reference: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": DIGEST},
                "type": "cosign container image signature",
            },
            "optional": null,
        }))
        .unwrap()
    }

    #[test]
    fn a_simple_signing_payload_names_registry_repository_and_digest() {
        let oci = oci_from_signed_payload(&simple_signing_payload("localhost:5000/team/app")).unwrap();
        assert_eq!(oci.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(oci.repository.as_deref(), Some("team/app"));
        assert_eq!(oci.digest.as_deref(), Some(DIGEST));
        let hub = oci_from_signed_payload(&simple_signing_payload("index.docker.io/library/app")).unwrap();
        assert_eq!(hub.registry.as_deref(), Some("index.docker.io"));
        assert_eq!(hub.repository.as_deref(), Some("library/app"));
        let bare = oci_from_signed_payload(&simple_signing_payload("team/app")).unwrap();
        assert_eq!(
            (bare.registry, bare.repository.as_deref()),
            (None, Some("team/app"))
        );
    }

    #[test]
    fn an_in_toto_statement_in_dsse_names_its_first_subject() {
        let hex = DIGEST.trim_start_matches("sha256:");
        let statement = serde_json::to_vec(&serde_json::json!({
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://cosign.sigstore.dev/attestation/v1",
            "subject": [{"name": "registry.example.com/team/app", "digest": {"sha256": hex}}],
            "predicate": {},
        }))
        .unwrap();
        let mut pae = format!(
            "DSSEv1 {} {IN_TOTO_PAYLOAD_TYPE} {} ",
            IN_TOTO_PAYLOAD_TYPE.len(),
            statement.len()
        )
        .into_bytes();
        pae.extend_from_slice(&statement);
        let oci = oci_from_signed_payload(&pae).unwrap();
        assert_eq!(oci.registry.as_deref(), Some("registry.example.com"));
        assert_eq!(oci.repository.as_deref(), Some("team/app"));
        assert_eq!(oci.digest.as_deref(), Some(DIGEST));
        // A length that does not match the body is not a PAE.
        pae.push(b'x');
        assert_eq!(oci_from_signed_payload(&pae), None);
    }

    #[test]
    fn other_messages_name_nothing() {
        for message in [
            &b""[..],
            b"a blob",
            b"{\"critical\": {\"type\": \"something else\"}}",
            b"DSSEv1 4 text 2 hi",
        ] {
            assert_eq!(oci_from_signed_payload(message), None, "{message:?}");
        }
        let mut other_type: serde_json::Value =
            serde_json::from_slice(&simple_signing_payload("localhost:5000/app")).unwrap();
        other_type["critical"]["type"] = "atomic container signature".into();
        assert_eq!(
            oci_from_signed_payload(&serde_json::to_vec(&other_type).unwrap()),
            None
        );
    }
}
