//! The setup of `governance_e2e.rs`: a gateway whose demo policies need approvals (k of n, release groups) or a
//! CI identity token, the operator's commands on it (pending requests, votes, audit), identity tokens from the
//! local issuer, and notation signing in the background while a request waits for approval.

#![allow(clippy::unwrap_used)] // test scaffolding: a failure here should stop the test loudly

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use e2e_tests::gateway::{run_cli, Gateway};
use e2e_tests::notation::Notation;
use e2e_tests::registry::{ImageRef, Registry, SmallImage};
use e2e_tests::tools;
use serde_json::{json, Value};

pub const ISSUER: &str = "https://ci.example.test";
const AUDIENCE: &str = "signpath-gateway";

/// Edits one policy of project `demo` in gateway.toml.
fn edit_policy(setup: &Path, slug: &str, edit: impl FnOnce(&mut toml::Table)) {
    let path = setup.join("gateway.toml");
    let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let policies = config["projects"].as_array_mut().unwrap()[0]["policies"]
        .as_array_mut()
        .unwrap();
    let policy = policies
        .iter_mut()
        .find(|p| p["slug"].as_str() == Some(slug))
        .unwrap()
        .as_table_mut()
        .unwrap();
    edit(policy);
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
}

pub fn approval(approvers: &[&str], required: u32, group: Option<(u32, u64)>) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert(
        "approvers".into(),
        toml::Value::Array(approvers.iter().map(|a| toml::Value::from(*a)).collect()),
    );
    t.insert("required".into(), toml::Value::from(i64::from(required)));
    if let Some((max, window)) = group {
        let mut g = toml::Table::new();
        g.insert("max_signatures".into(), toml::Value::from(i64::from(max)));
        g.insert("window_seconds".into(), toml::Value::from(window as i64));
        t.insert("release_group".into(), toml::Value::Table(g));
    }
    toml::Value::Table(t)
}

/// The governance setup: approvers alice, bob and carol; demo/ec-256 needs 2 of alice and bob; demo/rsa-2048
/// needs 1 of carol; demo/rsa-3072 needs 1 of alice with release groups of 2 signatures in 10 minutes;
/// demo/ec-384 demands an identity token of the local CI issuer for acme/app on main.
pub struct Setup {
    pub gateway: Gateway,
    pub tokens: BTreeMap<String, String>,
    pub issuer_key: p256::ecdsa::SigningKey,
}

pub fn start() -> Setup {
    let issuer_key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let point = issuer_key.verifying_key().to_encoded_point(false);
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "ci-1", "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    }]});
    let mut tokens = BTreeMap::new();
    let gateway = Gateway::start_with(|setup| {
        for name in ["alice", "bob", "carol"] {
            let token = run_cli(setup, &["approver", "add", "--name", name])
                .trim()
                .to_owned();
            tokens.insert(name.to_owned(), token);
        }
        std::fs::write(setup.join("ci-jwks.json"), jwks.to_string()).unwrap();
        let path = setup.join("gateway.toml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!(
            "\n[[trusted_issuers]]\nname = \"ci\"\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_file = \"ci-jwks.json\"\n"
        ));
        std::fs::write(&path, text).unwrap();
        edit_policy(setup, "ec-256", |p| {
            p.insert("approval".into(), approval(&["alice", "bob"], 2, None));
        });
        edit_policy(setup, "rsa-2048", |p| {
            p.insert("approval".into(), approval(&["carol"], 1, None));
        });
        edit_policy(setup, "rsa-3072", |p| {
            p.insert("approval".into(), approval(&["alice"], 1, Some((2, 600))));
        });
        edit_policy(setup, "ec-384", |p| {
            let mut conditions = toml::Table::new();
            conditions.insert("repository".into(), "acme/app".into());
            conditions.insert("ref".into(), "refs/heads/main".into());
            let mut origin = toml::Table::new();
            origin.insert("issuer".into(), "ci".into());
            origin.insert("conditions".into(), toml::Value::Table(conditions));
            p.insert("origin".into(), toml::Value::Table(origin));
        });
    });
    Setup {
        gateway,
        tokens,
        issuer_key,
    }
}

impl Setup {
    pub fn setup_dir(&self) -> PathBuf {
        self.gateway.dir()
    }

    pub fn pending(&self) -> Vec<Value> {
        run_cli(&self.setup_dir(), &["pending", "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until `n` requests are pending; they, newest first.
    pub fn wait_pending(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let pending = self.pending();
            if pending.len() >= n {
                return pending;
            }
            assert!(Instant::now() < deadline, "no signing request waits for approval");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn vote(&self, verb: &str, id: &str, approver: &str, extra: &[&str]) -> String {
        let mut args = vec![verb, id, "--as", approver];
        args.extend_from_slice(extra);
        run_cli(&self.setup_dir(), &args)
    }

    /// `audit --json` with filters.
    pub fn audit(&self, filters: &[&str]) -> Vec<Value> {
        let mut args = vec!["audit", "--json"];
        args.extend_from_slice(filters);
        run_cli(&self.setup_dir(), &args)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// A CI identity token of the local issuer with these claims (plus iss, aud, iat, exp unless given).
    pub fn id_token(&self, claims: Value) -> String {
        id_token(&self.issuer_key, claims)
    }
}

/// An ES256 identity token signed with `key`, kid `ci-1`.
pub fn id_token(key: &p256::ecdsa::SigningKey, claims: Value) -> String {
    {
        use p256::pkcs8::EncodePrivateKey;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut all = json!({"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "sub": "repo:acme/app:ref:refs/heads/main"});
        for (k, v) in claims.as_object().unwrap() {
            all[k] = v.clone();
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("ci-1".into());
        let key = jsonwebtoken::EncodingKey::from_ec_der(key.to_pkcs8_der().unwrap().as_bytes());
        jsonwebtoken::encode(&header, &all, &key).unwrap()
    }
}

/// A notation of its own with our plugin (the release binary) and trust in the gateway's root.
pub fn notation(gateway: &Gateway) -> Notation {
    let notation = Notation::with_plugin(&tools::tool("notation"), gateway.env_vars());
    notation.trust(&gateway.root_ca_pem());
    notation
}

/// `notation sign` in the background (it may wait for approval), with `extra_env` added.
pub fn spawn_sign(notation: &Notation, key_id: &str, image: &ImageRef, extra_env: &[(&str, &str)]) -> Child {
    notation
        .command(&["sign", "--plugin", "signpath", "--id", key_id, &image.reference])
        .envs(extra_env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

pub fn sign(notation: &Notation, key_id: &str, image: &ImageRef, extra_env: &[(&str, &str)]) -> Output {
    finish(spawn_sign(notation, key_id, image, extra_env))
}

pub fn verify(notation: &Notation, image: &ImageRef) {
    let text = notation.ok(&["verify", &image.reference]);
    assert!(text.contains("Successfully verified"), "{text}");
}

/// Waits for a client process (at most two minutes), its output.
pub fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the client did not finish");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

pub fn text(out: &Output) -> String {
    tools::output_text(out)
}

pub fn push(registry: &Registry, repo: &str, content: &str) -> ImageRef {
    registry.push_image(repo, "v1", &SmallImage::with_content(content.as_bytes()))
}
