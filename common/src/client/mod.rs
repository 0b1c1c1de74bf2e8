//! The gateway client: reqwest over rustls, with every byte of I/O done on the calling thread.
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
//! backoff that honours `Retry-After`, inside the `ServiceUnavailableTimeoutInSeconds` budget. Every `SignHash`
//! carries an `Idempotency-Key`, so a retry after a lost response cannot sign twice.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use secrecy::ExposeSecret;

use crate::config::Config;
use crate::error::Error;
use crate::protocol::{
    MySigningPolicies, Problem, SignHashRequest, SignHashResponse, SigningPolicyInfo, IDEMPOTENCY_KEY,
};
use crate::secret::ApiToken;

/// Largest response body we read; a gateway answer is a few kilobytes (a policy list with chains).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Exponential backoff: `first`, doubling, capped at `max`, plus up to 20 % jitter.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // SignPath's Crypto Providers start at 1.16 s and double.
        Self {
            first_delay: Duration::from_millis(1000),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .first_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let base = exp.min(self.max_delay);
        // Jitter from the OS random source via a v4 UUID: enough to spread clients, no extra dependency.
        let jitter = f64::from(uuid::Uuid::new_v4().as_bytes()[0]) / 255.0 * 0.2;
        base.mul_f64(1.0 + jitter)
    }
}

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
    budget: Duration,
    approval_wait: Duration,
    release_group: Option<String>,
    id_token: Option<ApiToken>,
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
        let tls = Arc::new(tls_config(config)?);
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
            budget: config.service_unavailable_timeout,
            approval_wait: config.approval_wait_timeout,
            release_group: config.release_group.clone(),
            id_token: config.id_token.clone(),
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
        let idempotency_key = uuid::Uuid::new_v4().to_string();
        // Copied only when the release group has to be added; most signatures go out as they came.
        let request = match &self.release_group {
            Some(group) => {
                let mut grouped = request.clone();
                grouped
                    .hash_signing_data
                    .metadata
                    .get_or_insert_with(Default::default)
                    .release_group = Some(group.clone());
                std::borrow::Cow::Owned(grouped)
            }
            None => std::borrow::Cow::Borrowed(request),
        };
        let body = serde_json::to_vec(&*request).map_err(|e| Error::InvalidResponse(e.to_string()))?;
        let url = self.url("SigningRequests/SignHash")?;
        let response = self.execute(Method::POST, url, Some(body), Some(&idempotency_key))?;
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
            Some(l) => self
                .base
                .join(l)
                .map_err(|e| Error::InvalidResponse(format!("bad Location {l:?}: {e}")))?,
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
            let remaining = self.budget.saturating_sub(start.elapsed());
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
            let (failure, wait) = match outcome {
                Ok(r) if is_retryable_status(r.status) => {
                    let wait = retry_after(&r.headers);
                    (Failure::Status(r), wait)
                }
                Ok(r) if r.status.is_success() => return Ok(r),
                Ok(r) => return Err(status_error(&r)),
                Err(e) => match tls_handshake_failure(&e, &url) {
                    Some(permanent) => return Err(permanent),
                    None => (Failure::Network(e), None),
                },
            };
            let delay = self.options.retry.delay(attempt).max(wait.unwrap_or_default());
            let elapsed = start.elapsed();
            if elapsed + delay >= self.budget {
                return Err(failure.into_error(&url, attempt, elapsed.max(self.budget)));
            }
            tracing::warn!(
                attempt,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                reason = %failure.describe(),
                "gateway request failed transiently; retrying"
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
            if let Some(token) = &self.id_token {
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

struct RawResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

enum Failure {
    Status(RawResponse),
    Network(reqwest::Error),
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Self::Status(r) => format!("HTTP {}", r.status.as_u16()),
            Self::Network(e) => error_chain(e),
        }
    }

    fn into_error(self, url: &Url, attempts: u32, elapsed: Duration) -> Error {
        let seconds = elapsed.as_secs();
        match self {
            Self::Status(r) if r.status == StatusCode::TOO_MANY_REQUESTS => Error::Throttled {
                seconds,
                detail: problem_detail(&r),
            },
            Self::Status(r) => Error::Unavailable {
                status: r.status.as_u16(),
                seconds,
                detail: problem_detail(&r),
            },
            Self::Network(e) if e.is_timeout() => Error::Timeout { attempts, seconds },
            Self::Network(e) => {
                let mut shown = url.clone();
                shown.set_query(None);
                Error::Unreachable {
                    url: shown.to_string(),
                    attempts,
                    seconds,
                    reason: error_chain(&e),
                }
            }
        }
    }
}

/// A TLS handshake that failed on a certificate: the gateway's is not trusted or not for this host, or the gateway
/// refused ours. Retrying cannot change that, so it ends the call at once with the reason.
fn tls_handshake_failure(error: &reqwest::Error, url: &Url) -> Option<Error> {
    use rustls::AlertDescription as Alert;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            let hint = match tls {
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                    "TlsCaBundle (SIGNPATH_TLS_CA_BUNDLE) must hold the CA of the gateway's certificate, and ApiUrl must name a host that certificate is for"
                }
                rustls::Error::AlertReceived(
                    Alert::BadCertificate
                    | Alert::UnsupportedCertificate
                    | Alert::CertificateRevoked
                    | Alert::CertificateExpired
                    | Alert::CertificateUnknown
                    | Alert::UnknownCA
                    | Alert::CertificateRequired
                    | Alert::AccessDenied,
                ) => "the gateway refused this client's certificate; check TlsClientCertificateFile and TlsClientKeyFile",
                _ => return None,
            };
            let mut shown = url.clone();
            shown.set_query(None);
            return Some(Error::TlsHandshake {
                url: shown.to_string(),
                reason: tls.to_string(),
                hint,
            });
        }
        // An io::Error's `source` is its wrapped error's source: descend into the wrapped error itself.
        current = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// `Retry-After` in seconds (the HTTP-date form is not used by gateways; it is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn status_error(response: &RawResponse) -> Error {
    let detail = problem_detail(response);
    match response.status.as_u16() {
        401 => Error::Unauthenticated { detail },
        403 => Error::Forbidden { detail },
        404 => Error::NotFound { detail },
        status @ 400..=499 => {
            let problem_type = serde_json::from_slice::<Problem>(&response.body)
                .map(|p| crate::protocol::problem_types::short(&p.problem_type).to_owned())
                .unwrap_or_else(|_| "about:blank".to_owned());
            Error::Rejected {
                status,
                problem_type,
                detail,
            }
        }
        status => Error::Server { status, detail },
    }
}

/// The problem document's detail (or title); a non-problem body is summarised, never echoed at length.
fn problem_detail(response: &RawResponse) -> String {
    if let Ok(problem) = serde_json::from_slice::<Problem>(&response.body) {
        if let Some(detail) = problem.detail.filter(|d| !d.is_empty()) {
            return detail;
        }
        if !problem.title.is_empty() {
            return problem.title;
        }
    }
    let text: String = String::from_utf8_lossy(&response.body)
        .chars()
        .take(200)
        .collect();
    let text = text.trim();
    if text.is_empty() || text.contains('\u{fffd}') {
        response
            .status
            .canonical_reason()
            .unwrap_or("no details")
            .to_owned()
    } else {
        text.to_owned()
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::InvalidResponse(format!("unexpected JSON ({e})")))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
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

fn tls_config(config: &Config) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    match &config.tls_ca_bundle {
        // An explicit bundle is the whole trust: a private gateway's CA, not the web PKI.
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| Error::File {
                path: path.display().to_string(),
                reason: format!("{e} (TlsCaBundle / SIGNPATH_TLS_CA_BUNDLE)"),
            })?;
            for der in crate::x509::pem_certificates(&pem, &path.display().to_string())
                .map_err(|e| Error::Tls(format!("TlsCaBundle: {e}")))?
            {
                roots
                    .add(der.into())
                    .map_err(|e| Error::Tls(format!("TlsCaBundle {}: {e}", path.display())))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                // A system store may hold certificates rustls cannot use; skipping them is what browsers do.
                let _ = roots.add(cert);
            }
        }
    }
    let builder = builder.with_root_certificates(roots);
    match (&config.tls_client_certificate_file, &config.tls_client_key_file) {
        (Some(cert_path), Some(key_path)) => {
            let read = |p: &std::path::Path| {
                std::fs::read(p).map_err(|e| Error::File { path: p.display().to_string(), reason: e.to_string() })
            };
            let chain = crate::x509::pem_certificates(&read(cert_path)?, &cert_path.display().to_string())
                .map_err(|e| Error::Tls(format!("TlsClientCertificateFile: {e}")))?
                .into_iter()
                .map(rustls_pki_types::CertificateDer::from)
                .collect();
            let key_pem = read(key_path)?;
            let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
                .map_err(|e| Error::Tls(format!("TlsClientKeyFile: {e}")))?
                .ok_or_else(|| Error::Tls(format!("TlsClientKeyFile {}: no private key", key_path.display())))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| Error::Tls(format!("client certificate: {e}")))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(Error::Tls(
            "mutual TLS needs both TlsClientCertificateFile and TlsClientKeyFile (SIGNPATH_TLS_CLIENT_CERTIFICATE_FILE, SIGNPATH_TLS_CLIENT_KEY_FILE)".into(),
        )),
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
