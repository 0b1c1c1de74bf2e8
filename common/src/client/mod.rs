//! The gateway client: reqwest over rustls, with every byte of I/O done on the calling thread. It owns the wire
//! exchange with the gateway and must never import a client's own crate (plugin, module): both build on it.
//!
//! A PKCS#11 caller may forbid the module to create threads (`CKF_LIBRARY_CANT_CREATE_OS_THREADS`, which GnuTLS
//! passes), and the Notation plugin is a short-lived process where a thread pool is pure cost. So each
//! [`Transport`] is a *current-thread* tokio runtime driven by `block_on` on the caller's thread, with a DNS
//! resolver that resolves inline (reqwest's default resolver would use tokio's blocking pool, i.e. a thread).
//! Transports are pooled: a thread checks one out for one call and returns it, so connections are reused and
//! threads sign in parallel without holding a lock across the network. A transport made before a `fork` is
//! dropped in the child (its epoll descriptor is shared with the parent).
//!
//! Retries follow SignPath's contract: only network errors, timeouts, 429, 502, 503 and 504, with exponential
//! backoff that honours `Retry-After`, inside the `ServiceUnavailableTimeoutInSeconds` budget — or the shorter
//! `UnreachableTimeoutInSeconds` while no attempt has ever connected ([`crate::retry`]). Every `SignHash`
//! carries an `Idempotency-Key`, so a retry after a lost response cannot sign twice.
//!
//! On GitHub Actions, a policy's CI identity token is fetched when the gateway asks for one, for the audience the
//! client chose, never one the server names ([`github_oidc`]).
//!
//! The token goes only to the API URL's origin: a `Location` elsewhere is refused, not followed. What the client
//! sends as audit metadata passes [`crate::secret::scrub`], so the token, PIN and identity token it holds are not
//! among it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode, Url};
use secrecy::ExposeSecret;

use crate::config::Config;
use crate::error::Error;
use crate::protocol::{
    MySigningPolicies, SignHashRequest, SignHashResponse, SigningPolicyInfo, IDEMPOTENCY_KEY,
};
use crate::retry::{decide, Budgets, Decision, RetryPolicy};
use crate::secret::ApiToken;
use response::{is_retryable_status, parse_json, retry_after, status_error, Failure, RawResponse};

mod github_oidc;
mod response;

/// Largest response body we read; a gateway answer is a few kilobytes (a policy list with chains).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Who is calling, for the User-Agent header (SignPath logs client versions from it).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub user_agent: String,
    pub retry: RetryPolicy,
}

impl ClientOptions {
    pub fn new(component: &str, version: &str) -> Self {
        Self {
            user_agent: format!(
                "SignPath.ContainerSigning.{component}/{version} (Rust; {})",
                std::env::consts::OS
            ),
            retry: RetryPolicy::default(),
        }
    }
}

struct Transport {
    pid: u32,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
}

/// A blocking client for the gateway API. Call it from ordinary threads, not from inside an async runtime.
pub struct GatewayClient {
    base: Url,
    token: ApiToken,
    tls: Arc<rustls::ClientConfig>,
    proxy: Option<reqwest::Proxy>,
    request_timeout: Duration,
    budgets: Budgets,
    /// Whether any attempt of this client ever reached the gateway (an HTTP answer, or a failure after connecting).
    connected: AtomicBool,
    approval_wait: Duration,
    release_group: Option<String>,
    id_token: Option<ApiToken>,
    /// Where to fetch an identity token when `id_token` is not set and a policy wants one (GitHub Actions).
    github: Option<github_oidc::TokenSource>,
    /// The audience of the tokens fetched from `github` (the client's choice) and the setting that chose it.
    identity_token_audience: (String, &'static crate::config::Setting),
    /// The token fetched from `github`, reused for every later request of this client.
    fetched_id_token: Mutex<Option<ApiToken>>,
    options: ClientOptions,
    transports: Mutex<Vec<Transport>>,
}

impl std::fmt::Debug for GatewayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl GatewayClient {
    /// Builds a client from the configuration; fails fast on a missing organization or token, a non-HTTPS URL or
    /// unreadable TLS files. Opens no connection.
    pub fn new(config: &Config, options: ClientOptions) -> Result<Self, Error> {
        let organization = config.require_organization_id()?;
        let token = config.require_api_token()?.clone();
        let base = api_base(&config.api_url, organization, config.allow_insecure_loopback_http)?;
        let tls = Arc::new(crate::tls::tls_config(config)?);
        crate::secret::remember_token(Some(organization), &token);
        if let Some(id_token) = &config.id_token {
            crate::secret::remember(id_token.expose_secret());
        }
        let proxy = match &config.http_proxy {
            Some(proxy) if !is_loopback_host(&base) => {
                let url = if proxy.contains("://") {
                    proxy.clone()
                } else {
                    format!("http://{proxy}")
                };
                Some(reqwest::Proxy::all(&url).map_err(|e| Error::InvalidApiUrl {
                    url: url.clone(),
                    reason: format!("HttpProxy is not a valid proxy: {e}"),
                })?)
            }
            _ => None,
        };
        Ok(Self {
            base,
            token,
            tls,
            proxy,
            request_timeout: config.http_request_timeout,
            budgets: Budgets {
                service_unavailable: config.service_unavailable_timeout,
                unreachable: config.unreachable_timeout,
            },
            connected: AtomicBool::new(false),
            approval_wait: config.approval_wait_timeout,
            release_group: config.release_group.clone(),
            id_token: config.id_token.clone(),
            github: match config.id_token {
                Some(_) => None,
                None => github_oidc::TokenSource::from_config(config),
            },
            identity_token_audience: config.identity_token_audience(),
            fetched_id_token: Mutex::new(None),
            options,
            transports: Mutex::new(Vec::new()),
        })
    }

    /// `{ApiUrl}/v1/{OrganizationId}/`.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `GET Cryptoki/MySigningPolicies`: every policy the token may submit to, or one when both slugs are given.
    pub fn my_signing_policies(
        &self,
        project: Option<&str>,
        policy: Option<&str>,
    ) -> Result<Vec<SigningPolicyInfo>, Error> {
        let mut url = self.url("Cryptoki/MySigningPolicies")?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(p) = project {
                query.append_pair("projectSlug", p);
            }
            if let Some(p) = policy {
                query.append_pair("signingPolicySlug", p);
            }
        }
        if project.is_none() && policy.is_none() {
            url.set_query(None);
        }
        let response = self.execute(Method::GET, url, None, None)?;
        let list: MySigningPolicies = parse_json(&response.body)?;
        Ok(list.signing_policies)
    }

    /// `POST SigningRequests/SignHash`, waiting (by polling) if the gateway answers 202 because the request needs
    /// approval. The same idempotency key is sent on every retry.
    pub fn sign_hash(&self, request: &SignHashRequest) -> Result<SignHashResponse, Error> {
        self.sign_hash_as(request, &crate::protocol::new_request_id())
    }

    /// [`Self::sign_hash`] under an idempotency key the caller chose: the client's id of the signing request,
    /// which the gateway records beside its own (a Notary envelope names the request by it).
    pub fn sign_hash_as(
        &self,
        request: &SignHashRequest,
        idempotency_key: &str,
    ) -> Result<SignHashResponse, Error> {
        let mut request = request.clone();
        if let Some(group) = &self.release_group {
            request
                .hash_signing_data
                .metadata
                .get_or_insert_with(Default::default)
                .release_group = Some(group.clone());
        }
        if let Some(metadata) = request.hash_signing_data.metadata.as_mut() {
            scrub_metadata(metadata);
        }
        if let Some(description) = request.description.as_mut() {
            *description = crate::secret::scrub(description);
        }
        let body = serde_json::to_vec(&request).map_err(|e| Error::InvalidResponse(e.to_string()))?;
        let url = self.url("SigningRequests/SignHash")?;
        let response = self.execute(Method::POST, url, Some(body), Some(idempotency_key))?;
        let parsed: SignHashResponse = parse_json(&response.body)?;
        if response.status == StatusCode::ACCEPTED {
            return self.wait_for_approval(parsed, &response.headers);
        }
        Ok(parsed)
    }

    fn wait_for_approval(
        &self,
        first: SignHashResponse,
        headers: &HeaderMap,
    ) -> Result<SignHashResponse, Error> {
        let request_id = first.signing_request_id.clone();
        let location = match headers.get(LOCATION).and_then(|v| v.to_str().ok()) {
            Some(l) => self.same_origin(l)?,
            None => self.url(&format!("SigningRequests/{request_id}"))?,
        };
        let mut web_link = first.web_link.clone();
        tracing::info!(
            request_id = %request_id,
            web_link = web_link.as_deref().unwrap_or(""),
            "signing request {request_id} waits for approval: approve it at {} or with `signpath-gateway approve {request_id} --as <approver>`; this client waits",
            web_link.as_deref().unwrap_or("the gateway's web page")
        );
        let deadline = Instant::now() + self.approval_wait;
        let mut delay = retry_after(headers).unwrap_or(Duration::from_secs(2));
        loop {
            let now = Instant::now();
            if now + delay > deadline {
                return Err(Error::ApprovalTimeout {
                    request_id,
                    web_link,
                    seconds: self.approval_wait.as_secs(),
                });
            }
            std::thread::sleep(delay);
            let response = self.execute(Method::GET, location.clone(), None, None)?;
            let current: SignHashResponse = parse_json(&response.body)?;
            web_link = current.web_link.clone().or(web_link);
            match current.status.as_deref() {
                Some("Completed") | None if current.hash_signing_result.is_some() => return Ok(current),
                Some("Denied" | "Failed" | "Canceled") => {
                    return Err(Error::Denied {
                        request_id,
                        detail: format!("status {}", current.status.unwrap_or_default()),
                    })
                }
                _ => {
                    delay = retry_after(&response.headers)
                        .unwrap_or(delay)
                        .min(Duration::from_secs(10))
                }
            }
        }
    }

    /// A `Location` resolved against the API URL, if it has the API URL's scheme, host and port: the token is sent
    /// to nothing else (a gateway, or whoever answers in its name, must not redirect it).
    fn same_origin(&self, location: &str) -> Result<Url, Error> {
        let url = self
            .base
            .join(location)
            .map_err(|e| Error::InvalidResponse(format!("bad Location {location:?}: {e}")))?;
        if url.origin() != self.base.origin() {
            let mut shown = url.clone();
            shown.set_query(None);
            return Err(Error::ForeignLocation {
                location: shown.to_string(),
                origin: self.base.origin().ascii_serialization(),
            });
        }
        Ok(url)
    }

    /// One `GET Cryptoki/MySigningPolicies` with the normal retries, returning the policies and the gateway's clock
    /// (its `Date` header): what `doctor` checks.
    pub fn probe(&self) -> Result<Probe, Error> {
        let url = self.url("Cryptoki/MySigningPolicies")?;
        let response = self.execute(Method::GET, url, None, None)?;
        let list: MySigningPolicies = parse_json(&response.body)?;
        let date = response
            .headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Probe {
            policies: list.signing_policies,
            date,
        })
    }

    fn url(&self, path: &str) -> Result<Url, Error> {
        self.base.join(path).map_err(|e| Error::InvalidApiUrl {
            url: self.base.to_string(),
            reason: e.to_string(),
        })
    }

    fn checkout(&self) -> Result<Transport, Error> {
        let pid = std::process::id();
        let pooled = {
            let mut pool = self.transports.lock().unwrap_or_else(|p| p.into_inner());
            // Transports inherited across fork are unusable here. They are leaked, not dropped: tearing down a
            // runtime deregisters its sockets from an epoll instance the child shares with the parent.
            let (mine, inherited): (Vec<_>, Vec<_>) = pool.drain(..).partition(|t| t.pid == pid);
            inherited.into_iter().for_each(std::mem::forget);
            *pool = mine;
            pool.pop()
        };
        match pooled {
            Some(t) => Ok(t),
            None => self.new_transport(pid),
        }
    }

    fn checkin(&self, transport: Transport) {
        if transport.pid == std::process::id() {
            self.transports
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(transport);
        }
    }

    fn new_transport(&self, pid: u32) -> Result<Transport, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::Tls(format!("cannot create the I/O driver: {e}")))?;
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls((*self.tls).clone())
            .dns_resolver(Arc::new(InlineResolver))
            .user_agent(&self.options.user_agent)
            .connect_timeout(self.request_timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .redirect(reqwest::redirect::Policy::none());
        builder = match &self.proxy {
            Some(proxy) => builder.proxy(proxy.clone()),
            None if is_loopback_host(&self.base) => builder.no_proxy(),
            None => builder,
        };
        let http = builder.build().map_err(|e| Error::Tls(e.to_string()))?;
        Ok(Transport { pid, runtime, http })
    }

    /// Sends one logical request with retries within the budget.
    fn execute(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<RawResponse, Error> {
        let start = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let (_, budget) = self.budgets.limit(self.connected.load(Ordering::Relaxed));
            let remaining = budget.saturating_sub(start.elapsed());
            let timeout = self
                .request_timeout
                .min(remaining.max(Duration::from_millis(100)));
            let transport = self.checkout()?;
            let outcome = self.send_once(
                &transport,
                &method,
                &url,
                body.as_deref(),
                idempotency_key,
                timeout,
            );
            self.checkin(transport);
            // Anything but a failure to connect means the gateway was reached: its budget is the long one.
            if !matches!(&outcome, Err(e) if e.is_connect()) {
                self.connected.store(true, Ordering::Relaxed);
            }
            let (failure, wait) = match outcome {
                Ok(r) if is_retryable_status(r.status) => {
                    let wait = retry_after(&r.headers);
                    (Failure::Status(r), wait)
                }
                Ok(r) if r.status.is_success() => return Ok(r),
                Ok(r) => match self.identity_token_wanted(&r, idempotency_key.is_some()) {
                    // Fetched once per client: a second refusal is the gateway's answer, not a missing token.
                    Some(audience) => {
                        self.fetch_identity_token(&audience)?;
                        continue;
                    }
                    None => return Err(status_error(&r)),
                },
                Err(e) => match crate::tls::handshake_failure(&e, &url) {
                    Some(permanent) => return Err(permanent),
                    None => (Failure::Network(e), None),
                },
            };
            let delay = self.options.retry.delay(attempt).max(wait.unwrap_or_default());
            let elapsed = start.elapsed();
            let ever_connected = self.connected.load(Ordering::Relaxed);
            let (left, limit) = match decide(&self.budgets, ever_connected, elapsed, delay) {
                Decision::GiveUp(limit) => {
                    let (_, budget) = self.budgets.limit(ever_connected);
                    return Err(failure.into_error(&url, attempt, elapsed.max(budget), limit));
                }
                Decision::Retry { left, .. } => (left, self.budgets.limit(ever_connected).0),
            };
            let mut shown = url.clone();
            shown.set_query(None);
            tracing::info!(
                attempt,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                left_s = left.as_secs(),
                reason = %failure.describe(),
                "{method} {shown} failed ({}); retrying in {:.1} s, {} s left of {}",
                failure.describe(),
                delay.as_secs_f64(),
                left.as_secs(),
                limit.setting().0,
            );
            std::thread::sleep(delay);
        }
    }

    fn send_once(
        &self,
        transport: &Transport,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
        idempotency_key: Option<&str>,
        timeout: Duration,
    ) -> Result<RawResponse, reqwest::Error> {
        let mut request = transport
            .http
            .request(method.clone(), url.clone())
            .timeout(timeout);
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.token.expose_secret()))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid"));
        auth.set_sensitive(true);
        request = request
            .header(AUTHORIZATION, auth)
            .header("Accept", "application/json");
        if let Some(key) = idempotency_key {
            // Only SignHash carries an idempotency key, and only SignHash needs the CI's identity token.
            request = request.header(IDEMPOTENCY_KEY, key);
            if let Some(token) = &self.current_id_token() {
                if let Ok(mut value) = HeaderValue::from_str(token.expose_secret().trim()) {
                    value.set_sensitive(true);
                    request = request.header(crate::protocol::ORIGIN_TOKEN_HEADER, value);
                }
            }
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        transport.runtime.block_on(async move {
            let mut response = request.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_BODY {
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(RawResponse {
                status,
                headers,
                body,
            })
        })
    }
}

/// What [`GatewayClient::probe`] learnt.
#[derive(Debug, Clone)]
pub struct Probe {
    pub policies: Vec<SigningPolicyInfo>,
    /// The gateway's `Date` header, as sent.
    pub date: Option<String>,
}

/// Removes the secrets this process holds from every string of the audit metadata.
fn scrub_metadata(metadata: &mut crate::protocol::Metadata) {
    use crate::secret::scrub;
    let scrub_opt = |value: &mut Option<String>| {
        if let Some(v) = value.as_mut() {
            *v = scrub(v);
        }
    };
    if let Some(process) = metadata.source_process.as_mut() {
        scrub_opt(&mut process.command_line);
        scrub_opt(&mut process.user);
    }
    if let Some(oci) = metadata.oci.as_mut() {
        for field in [
            &mut oci.registry,
            &mut oci.repository,
            &mut oci.tag,
            &mut oci.digest,
            &mut oci.media_type,
        ] {
            scrub_opt(field);
        }
    }
    scrub_opt(&mut metadata.release_group);
}

/// `{ApiUrl}/v1/{OrganizationId}/`, enforcing HTTPS (plain HTTP only to loopback, and only when allowed).
pub fn api_base(api_url: &str, organization: &str, allow_loopback_http: bool) -> Result<Url, Error> {
    let invalid = |reason: &str| Error::InvalidApiUrl {
        url: api_url.to_owned(),
        reason: reason.to_owned(),
    };
    let mut url = Url::parse(api_url.trim()).map_err(|e| invalid(&e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback_http && is_loopback_host(&url) => {}
        "http" if is_loopback_host(&url) => {
            return Err(invalid(
                "plain http is refused; use https, or set AllowInsecureLoopbackHttp (SIGNPATH_ALLOW_INSECURE_LOOPBACK_HTTP=true) for a gateway on this machine",
            ))
        }
        "http" => return Err(invalid("plain http is refused for anything but a loopback address; use https")),
        _ => return Err(invalid("the scheme must be https")),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid(
            "the URL must not carry a query, a fragment or credentials",
        ));
    }
    if organization.is_empty()
        || organization.contains(['/', '?', '#', '\\'])
        || organization.trim() != organization
    {
        return Err(Error::Config(crate::config::ConfigError::Invalid {
            setting: crate::config::ORGANIZATION_ID.key,
            reason: "it must be an organization id such as a UUID".into(),
        }));
    }
    {
        let mut segments = url
            .path_segments_mut()
            .map_err(|_| invalid("the URL cannot be a base"))?;
        segments.pop_if_empty().push("v1").push(organization).push("");
    }
    Ok(url)
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Resolves names on the calling thread (inside `block_on`), so no resolver thread is ever created.
struct InlineResolver;

impl reqwest::dns::Resolve for InlineResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let result: Result<Vec<SocketAddr>, std::io::Error> =
            (name.as_str(), 0).to_socket_addrs().map(|addrs| addrs.collect());
        Box::pin(std::future::ready(
            result
                .map(|addrs| Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
        ))
    }
}
