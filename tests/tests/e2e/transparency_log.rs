//! The transparency log end to end: a signature made through the hash API becomes a leaf of the log, which a
//! verifier we did not write (tlog-verify: Go's golang.org/x/mod/sumdb/tlog and sumdb/note, pinned in
//! scripts/tools/tlog-verify) proves included in a checkpoint signed by the log's key in the HSM, reading only the
//! tiles and the checkpoint the gateway serves; `signpath-gateway log verify` holds the log and the audit log to
//! each other and fails on a leaf changed in the database.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use e2e_tests::gateway::{run_cli, sign_ec256, Gateway};
use e2e_tests::require_tool;
use sha2::{Digest, Sha256};

/// `GET /log/entries/{request_id}` once the sequencer has taken the entry in.
fn entry_of(gw: &Gateway, request_id: &str) -> serde_json::Value {
    let http = gw.https_client();
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let response = http
            .get(format!("{}/log/entries/{request_id}", gw.api_url()))
            .send()
            .expect("GET entry");
        if response.status() == 200 {
            return response.json().expect("entry JSON");
        }
        assert_eq!(response.status(), 404, "{:?}", response.text());
        assert!(
            Instant::now() < until,
            "the entry of {request_id} was never sequenced"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tlog_verify(verifier: &Path, gw: &Gateway, key: &Path, since: Option<&Path>) -> Output {
    let mut command = Command::new(verifier);
    command
        .arg("-url")
        .arg(gw.api_url())
        .arg("-key")
        .arg(key)
        .arg("-cacert")
        .arg(gw.tls_ca());
    if let Some(old) = since {
        command.arg("-since").arg(old);
    }
    command.output().expect("run tlog-verify")
}

/// Writes the PEM public key of a P-256 key that is not the log's, made by OpenSSL, to `path`.
fn write_other_log_key(path: &Path) {
    let made = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl ecparam -name prime256v1 -genkey -noout | openssl ec -pubout -out {}",
            path.display()
        ))
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
}

fn log_verify(gw: &Gateway, extra: &[&str]) -> Output {
    Command::new(Gateway::binary())
        .args(["log", "verify", "--config"])
        .arg(gw.config())
        .args(extra)
        .output()
        .expect("run log verify")
}

fn sign(gw: &Gateway, text: &str) -> (String, Vec<u8>) {
    let digest = Sha256::digest(text.as_bytes()).to_vec();
    let answer = sign_ec256(&gw.https_client(), &gw.api_base(), gw.api_token(), &digest)
        .expect("SignHash answered 200");
    let request_id = answer["signingRequestId"]
        .as_str()
        .expect("signingRequestId")
        .to_owned();
    (request_id, digest)
}

#[test]
fn a_hash_signature_is_proven_included_by_an_independent_verifier() {
    let verifier = require_tool!("tlog-verify");
    let gw = Gateway::start();
    let (request_id, digest) = sign(&gw, "logged");
    let entry = entry_of(&gw, &request_id);
    // The leaf is the record's signing facts, as canonical JSON.
    let body = STANDARD
        .decode(entry["body"].as_str().expect("body"))
        .expect("base64");
    let facts: serde_json::Value = serde_json::from_slice(&body).expect("leaf JSON");
    assert_eq!(facts["requestId"], request_id.as_str());
    assert_eq!(facts["digest"], hex::encode(&digest));
    assert_eq!(facts["kind"], "signpath-gateway/signature/v1");
    assert!(entry["checkpoint"]
        .as_str()
        .expect("checkpoint")
        .starts_with(&format!("127.0.0.1\n{}\n", entry["treeSize"])));

    let key = gw.dir().join("log-key.pem");
    std::fs::write(&key, run_cli(&gw.dir(), &["log", "key"])).expect("write key");
    let checked = tlog_verify(&verifier, &gw, &key, None);
    let printed = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "tlog-verify: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let index = entry["logIndex"].as_u64().expect("logIndex");
    let line = printed
        .lines()
        .find(|l| l.starts_with(&format!("{index} ")))
        .unwrap_or_else(|| panic!("tlog-verify did not prove leaf {index}: {printed}"));
    assert_eq!(
        line.split_once(' ').map(|(_, b)| b.as_bytes()),
        Some(body.as_slice())
    );

    // The same log against another key: the checkpoint does not verify, so nothing is proven.
    let other = gw.dir().join("other-key.pem");
    write_other_log_key(&other);
    let refused = tlog_verify(&verifier, &gw, &other, None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("the checkpoint: "),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(refused.stdout.is_empty());
}

#[test]
fn the_log_grows_consistently_and_log_verify_agrees_with_the_audit_log() {
    let verifier = require_tool!("tlog-verify");
    let gw = Gateway::start();
    let (first, _) = sign(&gw, "first");
    entry_of(&gw, &first);
    let old = gw.dir().join("old-checkpoint");
    std::fs::write(&old, run_cli(&gw.dir(), &["log", "checkpoint"])).expect("write checkpoint");
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(sign(&gw, &format!("more {n}")).0);
    }
    entry_of(&gw, ids.last().expect("ids"));

    let key = gw.dir().join("log-key.pem");
    std::fs::write(&key, run_cli(&gw.dir(), &["log", "key"])).expect("write key");
    let checked = tlog_verify(&verifier, &gw, &key, Some(&old));
    assert!(
        checked.status.success(),
        "tlog-verify -since: {}",
        String::from_utf8_lossy(&checked.stderr)
    );

    let verified = log_verify(&gw, &["--since", old.to_str().expect("path")]);
    let said = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success(),
        "log verify: {}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(said.contains("(6 signatures)"), "{said}");
    assert!(said.contains("consistent with the older checkpoint"), "{said}");

    // A leaf changed in the database: `log verify` names it and fails.
    let database = gw.dir().join("audit.db");
    let changed = Command::new("sqlite3")
        .arg(&database)
        .arg(format!(
            "UPDATE tlog_leaves SET body = CAST('{{\"forged\":true}}' AS BLOB) WHERE request_id = '{}'",
            ids[2]
        ))
        .output()
        .expect("sqlite3");
    assert!(
        changed.status.success(),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    let failed = log_verify(&gw, &[]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "log verify passed a changed leaf");
    assert!(
        stderr.contains(&format!(
            "the leaf of {} is not its audit record's signing facts",
            ids[2]
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("is not the hash of the leaves below it"),
        "{stderr}"
    );
}

/// A Sigstore trusted root naming only this gateway's log (Rekor v2) with `log_key` (PEM) as its key.
fn trusted_root(gw: &Gateway, log_key: &str) -> serde_json::Value {
    let der = STANDARD
        .decode(
            log_key
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .expect("PEM body");
    serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [{
            "baseUrl": gw.api_url(),
            "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": STANDARD.encode(&der), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": "2020-01-01T00:00:00Z"}},
            "logId": {"keyId": STANDARD.encode(Sha256::digest(&der))},
        }],
        "certificateAuthorities": [], "ctlogs": [], "timestampAuthorities": [],
    })
}

#[test]
fn stock_cosign_uploads_to_the_log_and_verifies_inclusion_against_its_key_only() {
    let cosign = require_tool!("cosign-release");
    let gw = Gateway::start();
    let work = gw.dir().join("cosign");
    std::fs::create_dir_all(&work).expect("mkdir");
    let run = |args: &[&str]| {
        Command::new(&cosign)
            .args(args)
            .current_dir(&work)
            .env("COSIGN_PASSWORD", "blob signer")
            .env("SSL_CERT_FILE", gw.tls_ca())
            .output()
            .expect("run cosign")
    };
    let write_json = |name: &str, value: &serde_json::Value| {
        std::fs::write(work.join(name), value.to_string()).expect("write");
    };
    let made = run(&["generate-key-pair"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    std::fs::write(work.join("blob"), b"release 1.0\n").expect("blob");
    let log_key = run_cli(&gw.dir(), &["log", "key"]);
    write_json("trusted_root.json", &trusted_root(&gw, &log_key));
    // Only our log, as Rekor v2; no CA, no TSA: the signature is made with the local key.
    write_json(
        "signing_config.json",
        &serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [], "oidcUrls": [], "tsaUrls": [], "tsaConfig": {"selector": "ANY"},
            "rekorTlogUrls": [{"url": gw.api_url(), "majorApiVersion": 2, "operator": "signpath-gateway",
                "validFor": {"start": "2020-01-01T00:00:00Z"}}],
            "rekorTlogConfig": {"selector": "ANY"},
        }),
    );

    let signed = run(&[
        "sign-blob",
        "--yes",
        "--key",
        "cosign.key",
        "--signing-config",
        "signing_config.json",
        "--trusted-root",
        "trusted_root.json",
        "--bundle",
        "blob.bundle",
        "blob",
    ]);
    assert!(
        signed.status.success(),
        "cosign sign-blob: {}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("blob.bundle")).expect("bundle"))
            .expect("bundle JSON");
    let logged = &bundle["verificationMaterial"]["tlogEntries"][0];
    assert_eq!(
        logged["kindVersion"],
        serde_json::json!({"kind": "hashedrekord", "version": "0.0.2"})
    );
    assert!(logged["inclusionProof"]["checkpoint"]["envelope"]
        .as_str()
        .is_some_and(|c| c.starts_with("127.0.0.1\n")));

    let verified = run(&[
        "verify-blob",
        "--key",
        "cosign.pub",
        "--bundle",
        "blob.bundle",
        "--trusted-root",
        "trusted_root.json",
        "blob",
    ]);
    assert!(
        verified.status.success(),
        "cosign verify-blob: {}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(String::from_utf8_lossy(&verified.stderr).contains("Verified OK"));

    // The upload is an audit record and a leaf of the log, which still verifies.
    let audit = gw.audit_json();
    assert!(
        audit
            .iter()
            .any(|r| r["route"] == "/api/v2/log/entries" && r["outcome"] == "allowed"),
        "{audit:?}"
    );
    let verified_log = log_verify(&gw, &[]);
    assert!(
        verified_log.status.success(),
        "{}",
        String::from_utf8_lossy(&verified_log.stderr)
    );

    // Against a trusted root with another log key, cosign finds no verifiable checkpoint.
    let other = work.join("other.pub");
    write_other_log_key(&other);
    let other_key = std::fs::read_to_string(&other).expect("other key");
    write_json("other_root.json", &trusted_root(&gw, &other_key));
    let refused = run(&[
        "verify-blob",
        "--key",
        "cosign.pub",
        "--bundle",
        "blob.bundle",
        "--trusted-root",
        "other_root.json",
        "blob",
    ]);
    assert!(
        !refused.status.success(),
        "verify-blob passed under another log key"
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("failed to verify log inclusion"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn bad_uploads_get_problem_documents() {
    let gw = Gateway::start();
    let http = gw.https_client();
    let post = |content_type: &str, body: &str| {
        let response = http
            .post(format!("{}/api/v2/log/entries", gw.api_url()))
            .header("Content-Type", content_type)
            .body(body.to_owned())
            .send()
            .expect("POST");
        let status = response.status().as_u16();
        let problem: serde_json::Value = response.json().expect("problem JSON");
        (
            status,
            problem["type"].as_str().unwrap_or_default().to_owned(),
            problem["detail"].to_string(),
        )
    };
    // A DSSE upload whose verifier is an Ed25519 key: the log takes ECDSA P-256 only.
    let ed25519 = r#"{"dsseRequestV002": {"envelope": {"payload": "e30=", "payloadType": "application/vnd.in-toto+json",
        "signatures": [{"sig": "AAAA", "keyid": ""}]},
        "verifiers": [{"publicKey": {"rawBytes": "AAAA"}, "keyDetails": "PKIX_ED25519"}]}}"#;
    let (status, kind, detail) = post("application/json", ed25519);
    assert_eq!(status, 400, "{detail}");
    assert!(kind.ends_with("unsupported-algorithm"), "{kind} {detail}");
    let (status, kind, detail) = post("application/json", "{\"dsseRequestV002\": {}}");
    assert_eq!(status, 400, "{detail}");
    assert!(
        kind.ends_with("malformed-request") && detail.contains("envelope"),
        "{kind} {detail}"
    );
    let (status, kind, detail) = post("application/json", "[1, 2");
    assert_eq!(status, 400, "{detail}");
    assert!(
        kind.ends_with("malformed-request") && detail.contains("CreateEntryRequest"),
        "{kind} {detail}"
    );
    let (status, _, _) = post("text/plain", "{}");
    assert_eq!(status, 415);
    let (status, _, detail) = post("application/json", &"x".repeat(200 * 1024));
    assert_eq!(status, 413, "{detail}");
    let missing = http
        .get(format!("{}/tile/0/000", gw.api_url()))
        .send()
        .expect("GET tile");
    assert_eq!(missing.status(), 404);
}

#[test]
fn replicas_on_postgresql_grow_one_log() {
    let Some((haproxy, bin)) = e2e_tests::replicas::haproxy_and_postgres() else {
        return;
    };
    let verifier = require_tool!("tlog-verify");
    let pg = e2e_tests::postgres::Postgres::start(&bin);
    let replicas = e2e_tests::replicas::Replicas::start(2, &pg.url(), &haproxy, |_| {});
    let organization = replicas.env("SIGNPATH_ORGANIZATION_ID");
    let token = replicas.env("SIGNPATH_API_TOKEN");
    // Both replicas sign at once, each sequencing the shared log.
    let signers: Vec<_> = (0..2)
        .map(|i| {
            let (http, base, token) = (
                replicas.https_client(),
                format!("{}/v1/{organization}", replicas.replica_url(i)),
                token.clone(),
            );
            std::thread::spawn(move || {
                (0..8)
                    .map(|n| {
                        let digest = Sha256::digest(format!("replica {i} signature {n}").as_bytes());
                        let answer = sign_ec256(&http, &base, &token, &digest).expect("signed");
                        answer["signingRequestId"].as_str().expect("id").to_owned()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: Vec<String> = signers
        .into_iter()
        .flat_map(|s| s.join().expect("signer"))
        .collect();
    let http = replicas.https_client();
    for id in &ids {
        let until = Instant::now() + Duration::from_secs(15);
        while http
            .get(format!("{}/log/entries/{id}", replicas.api_url()))
            .send()
            .expect("GET entry")
            .status()
            != 200
        {
            assert!(Instant::now() < until, "{id} was never sequenced");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let said = replicas.gateway_command(1, &["log", "verify"]);
    assert!(said.contains("16 leaves (16 signatures)"), "{said}");
    let key = replicas.setup().join("log-key.pem");
    std::fs::write(&key, replicas.gateway_command(0, &["log", "key"])).expect("write key");
    let checked = Command::new(&verifier)
        .arg("-url")
        .arg(replicas.api_url())
        .arg("-key")
        .arg(&key)
        .arg("-cacert")
        .arg(replicas.setup().join("tls-ca.pem"))
        .output()
        .expect("tlog-verify");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let printed = String::from_utf8_lossy(&checked.stdout);
    for id in &ids {
        assert!(printed.contains(id.as_str()), "{id} not proven: {printed}");
    }
}

#[test]
fn the_log_survives_a_restart_and_grows_consistently_from_its_last_checkpoint() {
    let mut gw = Gateway::start();
    let (first, _) = sign(&gw, "before the restart");
    entry_of(&gw, &first);
    let old = gw.dir().join("before-restart");
    std::fs::write(&old, run_cli(&gw.dir(), &["log", "checkpoint"])).expect("write checkpoint");
    // SIGKILL, as a crash would, then the same database and HSM again.
    gw.restart();
    let (second, _) = sign(&gw, "after the restart");
    assert_eq!(entry_of(&gw, &second)["logIndex"], 1);
    assert_eq!(entry_of(&gw, &first)["logIndex"], 0);
    let verified = log_verify(&gw, &["--since", old.to_str().expect("path")]);
    assert!(
        verified.status.success(),
        "log verify: {}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(String::from_utf8_lossy(&verified.stdout).contains("2 leaves (2 signatures)"));
}
