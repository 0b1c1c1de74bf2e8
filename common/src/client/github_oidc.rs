//! CI identity tokens fetched on GitHub Actions, so that a workflow signing with a policy that verifies origin
//! needs no step of its own to mint one. A job with `permissions: id-token: write` gets
//! `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN`; a GET of that URL with
//! `&audience=<aud>` and the request token as bearer answers `{"value": "<JWT>"}`.
//!
//! When: the gateway names an audience in its `origin-rejected` answer to a `SignHash` that carried no identity token
//! (`identityTokenAudience`), so the client fetches a token only for a policy that wants one. For which audience:
//! the client's own choice, never the server's — the gateway's URL as this client is configured with it (`ApiUrl`),
//! or `IdentityTokenAudience`. A server that names another audience gets no token and the client says why: a
//! token for `sts.amazonaws.com`, handed to a fake or compromised gateway, would be exchanged for the repository's
//! cloud credentials. `SIGNPATH_ID_TOKEN`, when set (GitLab's `id_tokens`, or a workflow's own step), always
//! wins. Both the request token and the identity token are secrets: they are registered with [`crate::secret`] so
//! that no log line or metadata carries them, and no error names them.
//!
//! Part of the client folder: it must never import a client's own crate (plugin, module).

use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;

use super::response::RawResponse;
use crate::error::Error;
use crate::secret::ApiToken;

use crate::config::{
    ID_TOKEN_REQUEST_TOKEN_VAR as REQUEST_TOKEN_VAR, ID_TOKEN_REQUEST_URL_VAR as REQUEST_URL_VAR,
};

/// The longest answer read from the token endpoint (a JWT is a few kilobytes).
const MAX_ANSWER: usize = 64 * 1024;

/// Where and how to ask GitHub Actions for an identity token.
pub struct TokenSource {
    url: Url,
    request_token: ApiToken,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.url.clone();
        shown.set_query(None);
        f.debug_struct("TokenSource")
            .field("url", &shown.as_str())
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// The job's token endpoint, when both variables are set (else this is not GitHub Actions, or the job may not
    /// mint tokens). A URL that is not https (or http on a loopback address, a test's stand-in) is ignored with a
    /// warning: the request token must not travel in clear text.
    pub fn from_config(config: &crate::config::Config) -> Option<Self> {
        let request = config.id_token_request.as_ref()?;
        crate::secret::remember(request.token.expose_secret());
        let url = match Url::parse(&request.url) {
            Ok(url) if secure(&url) => url,
            _ => {
                tracing::warn!("{REQUEST_URL_VAR} is not an https:// URL; identity tokens are not fetched");
                return None;
            }
        };
        Some(Self {
            url,
            request_token: request.token.clone(),
        })
    }

    /// The URL of a token for `audience`: GitHub's URL already has a query (`api-version`), the audience is added.
    fn url_for(&self, audience: &str) -> Url {
        let mut url = self.url.clone();
        url.query_pairs_mut().append_pair("audience", audience);
        url
    }

    /// Fetches an identity token for `audience` on `runtime` (the caller's transport: no thread is created).
    pub fn fetch(
        &self,
        runtime: &tokio::runtime::Runtime,
        user_agent: &str,
        timeout: Duration,
        audience: &str,
    ) -> Result<ApiToken, Error> {
        let failed = |reason: String| {
            Error::Forbidden {
            detail: format!(
                "this signing policy needs a CI identity token for the audience {audience:?}, and fetching one from {REQUEST_URL_VAR} failed: {reason}; check that the job has `permissions: id-token: write`, or set SIGNPATH_ID_TOKEN"
            ),
        }
        };
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(web_pki_tls().map_err(failed)?)
            .dns_resolver(std::sync::Arc::new(super::InlineResolver))
            .user_agent(user_agent)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        if is_loopback(&self.url) {
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| failed(e.to_string()))?;
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", self.request_token.expose_secret().trim()))
                .map_err(|_| failed(format!("{REQUEST_TOKEN_VAR} is not a valid header value")))?;
        auth.set_sensitive(true);
        let request = http
            .get(self.url_for(audience))
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "application/json");
        let body = runtime.block_on(async move {
            let mut response = request.send().await.map_err(|e| e.without_url().to_string())?;
            let status = response.status();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| e.without_url().to_string())? {
                if body.len() + chunk.len() > MAX_ANSWER {
                    return Err(format!("the answer is larger than {MAX_ANSWER} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            if !status.is_success() {
                return Err(format!("the endpoint answered HTTP {}", status.as_u16()));
            }
            Ok(body)
        });
        let body = body.map_err(failed)?;
        #[derive(serde::Deserialize)]
        struct Answer {
            value: String,
        }
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|_| failed("the answer is not a JSON object with a `value`".into()))?;
        let token = answer.value.trim().to_owned();
        if token.is_empty() {
            return Err(failed("the answer's `value` is empty".into()));
        }
        crate::secret::remember(&token);
        tracing::info!(audience, "fetched a CI identity token from GitHub Actions");
        Ok(ApiToken::from(token))
    }
}

/// The client's side of it: when to fetch, and which token a request carries.
impl super::GatewayClient {
    /// The audience of the identity token a refused `SignHash` asks for, when this client can fetch one and has
    /// not yet: the answer is `origin-rejected` with `identityTokenAudience`, no `SIGNPATH_ID_TOKEN` is set, and
    /// this is a GitHub Actions job that may mint tokens.
    pub(super) fn identity_token_wanted(&self, response: &RawResponse, sign_hash: bool) -> Option<String> {
        if !sign_hash || response.status != StatusCode::FORBIDDEN || self.github.is_none() {
            return None;
        }
        if self.current_id_token().is_some() {
            return None;
        }
        let problem: crate::protocol::Problem = serde_json::from_slice(&response.body).ok()?;
        if problem.problem_type != crate::protocol::problem_types::ORIGIN_REJECTED {
            return None;
        }
        problem.identity_token_audience.filter(|a| !a.is_empty())
    }

    /// Fetches the identity token the gateway asked for (`named`), if `named` is the audience this client chose;
    /// otherwise fetches nothing and fails naming both audiences and the setting.
    pub(super) fn fetch_identity_token(&self, named: &str) -> Result<(), Error> {
        let Some(source) = &self.github else {
            return Ok(());
        };
        let (audience, chosen_by) = &self.identity_token_audience;
        if named != audience {
            tracing::warn!(
                named,
                audience = audience.as_str(),
                "the gateway asked for an identity token for another audience than this client's; none was fetched"
            );
            return Err(Error::ForeignIdentityTokenAudience {
                named: named.to_owned(),
                own: audience.clone(),
                chosen_by: chosen_by.key,
                env: chosen_by.env[0],
            });
        }
        let transport = self.checkout()?;
        let fetched = source.fetch(
            &transport.runtime,
            &self.options.user_agent,
            self.request_timeout,
            audience,
        );
        self.checkin(transport);
        *self.fetched_id_token.lock().unwrap_or_else(|p| p.into_inner()) = Some(fetched?);
        Ok(())
    }

    /// `SIGNPATH_ID_TOKEN`, else the token fetched from GitHub Actions.
    pub(super) fn current_id_token(&self) -> Option<ApiToken> {
        self.id_token.clone().or_else(|| {
            self.fetched_id_token
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        })
    }
}

/// TLS for GitHub's endpoint: the system's CAs (the gateway's `TlsCaBundle` is for the gateway alone).
fn web_pki_tls() -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system store may hold certificates rustls cannot use; skipping them is what browsers do.
        let _ = roots.add(cert);
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(host)) => host.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// https, or http to a loopback address only.
fn secure(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => is_loopback(url),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audience_is_added_to_the_query_github_gives() {
        let source = TokenSource {
            url: Url::parse("https://pipelines.example/token?api-version=2.0")
                .unwrap_or_else(|e| panic!("{e}")),
            request_token: ApiToken::from("request".to_owned()),
        };
        assert_eq!(
            source.url_for("https://gw.example/ci aud").as_str(),
            "https://pipelines.example/token?api-version=2.0&audience=https%3A%2F%2Fgw.example%2Fci+aud"
        );
    }

    #[test]
    fn only_https_or_loopback_http_carries_the_request_token() {
        let parse = |u: &str| Url::parse(u).unwrap_or_else(|e| panic!("{e}"));
        assert!(secure(&parse("https://pipelines.example/token")));
        assert!(secure(&parse("http://127.0.0.1:9/token")));
        assert!(!secure(&parse("http://pipelines.example/token")));
    }
}
