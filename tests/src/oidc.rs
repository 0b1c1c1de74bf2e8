//! A CI's OIDC side for origin tests: an issuer (an ES256 key, its JWKS, tokens with the claims a test picks) that
//! a gateway trusts through `jwks_file`, and a stand-in of GitHub Actions' token endpoint
//! (`ACTIONS_ID_TOKEN_REQUEST_URL`) that mints the issuer's tokens for the audience asked, over plain HTTP on a
//! loopback port, and records what it was asked.

#![allow(clippy::unwrap_used)] // test scaffolding: a failure here should stop the test loudly

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

/// The `iss` of [`Issuer`]'s tokens.
pub const ISSUER: &str = "https://ci.example";

/// A CI's token issuer.
#[derive(Debug)]
pub struct Issuer {
    key: p256::ecdsa::SigningKey,
}

impl Default for Issuer {
    fn default() -> Self {
        Self::new()
    }
}

impl Issuer {
    pub fn new() -> Self {
        Self {
            key: p256::ecdsa::SigningKey::random(&mut rand_core::OsRng),
        }
    }

    /// The issuer's keys, as its `jwks_uri` serves them (kid `ci-1`).
    pub fn jwks(&self) -> Value {
        let point = self.key.verifying_key().to_encoded_point(false);
        json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "ci-1", "alg": "ES256", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        }]})
    }

    /// Makes a gateway setup trust this issuer as `name` for `audience` (its JWKS in a file beside gateway.toml).
    pub fn trust_in(&self, setup: &Path, name: &str, audience: &str) {
        self.trust(setup, name, &format!("audience = \"{audience}\"\n"));
    }

    /// Makes a gateway setup trust this issuer as `name` for the default audience, the gateway's URL.
    pub fn trust_for_the_gateways_url(&self, setup: &Path, name: &str) {
        self.trust(setup, name, "");
    }

    fn trust(&self, setup: &Path, name: &str, audience_line: &str) {
        let file = format!("{name}-jwks.json");
        std::fs::write(setup.join(&file), self.jwks().to_string()).unwrap();
        let path = setup.join("gateway.toml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!(
            "\n[[trusted_issuers]]\nname = \"{name}\"\nissuer = \"{ISSUER}\"\n{audience_line}jwks_file = \"{file}\"\n"
        ));
        std::fs::write(&path, text).unwrap();
    }

    /// An ES256 token for `audience` with these claims (plus iss, aud, iat, exp unless given).
    pub fn token(&self, audience: &str, claims: &Value) -> String {
        use p256::pkcs8::EncodePrivateKey;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut all = json!({"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 300});
        for (k, v) in claims.as_object().unwrap() {
            all[k] = v.clone();
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("ci-1".into());
        let key = jsonwebtoken::EncodingKey::from_ec_der(self.key.to_pkcs8_der().unwrap().as_bytes());
        jsonwebtoken::encode(&header, &all, &key).unwrap()
    }
}

/// One request the token endpoint answered.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The `audience` query parameter, if any.
    pub audience: Option<String>,
    /// Whether the `Authorization` header was `Bearer <the request token>`.
    pub authorized: bool,
    /// The token handed out (empty when refused).
    pub token: String,
}

/// GitHub Actions' ID token endpoint, standing in on `http://127.0.0.1:<port>/token?api-version=2.0`: with the
/// right bearer it answers `{"count": 1, "value": "<JWT for the audience asked>"}`, else 401.
#[derive(Debug)]
pub struct GithubTokenEndpoint {
    pub url: String,
    pub request_token: String,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
}

impl GithubTokenEndpoint {
    /// Serves tokens of `issuer` with `claims`, until the test ends.
    pub fn start(issuer: Issuer, claims: Value) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/token?api-version=2.0", listener.local_addr().unwrap());
        let request_token = uuid::Uuid::new_v4().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (expected, seen) = (request_token.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let target = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
                let mut authorized = false;
                let mut length = 0usize;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                        break;
                    }
                    let (name, value) = header.split_once(':').unwrap_or_default();
                    match name.trim().to_ascii_lowercase().as_str() {
                        "authorization" => authorized = value.trim() == format!("Bearer {expected}"),
                        "content-length" => length = value.trim().parse().unwrap_or(0),
                        _ => {}
                    }
                }
                let _ = reader.by_ref().take(length as u64).read_to_end(&mut Vec::new());
                let audience = reqwest::Url::parse(&format!("http://localhost{target}"))
                    .ok()
                    .and_then(|u| {
                        u.query_pairs()
                            .find(|(k, _)| k == "audience")
                            .map(|(_, v)| v.into_owned())
                    });
                let token = match (&audience, authorized) {
                    (Some(audience), true) => issuer.token(audience, &claims),
                    _ => String::new(),
                };
                let (status, body) = if token.is_empty() {
                    ("401 Unauthorized", json!({"message": "Bad credentials"}))
                } else {
                    ("200 OK", json!({"count": 1, "value": token}))
                };
                seen.lock().unwrap().push(TokenRequest {
                    audience,
                    authorized,
                    token,
                });
                let body = body.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            url,
            request_token,
            requests,
        }
    }

    /// The requests answered so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// The variables of a GitHub Actions job with `id-token: write`, pointing at this endpoint.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            ("ACTIONS_ID_TOKEN_REQUEST_URL", self.url.clone()),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", self.request_token.clone()),
        ]
    }
}
