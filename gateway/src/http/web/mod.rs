//! The approvers' web page, server-rendered HTML without scripts: sign in with an approver token, see the
//! signing requests that wait (image reference, digest, policy, release group, what approving covers), approve or
//! deny them, and read the audit log of the policies one approves. The token travels once, in the sign-in form; the
//! browser then holds only a random session id (`sessions`), with an expiry and a logout, in an HttpOnly, Secure,
//! SameSite=Strict cookie scoped to /Web. Every form carries the session's CSRF token and every form post must come
//! from the gateway's own origin. Every page view and vote is audited.
//!
//! Routes and sign-in live here, the HTML in `pages`. Like the rest of `http/`, this folder calls the signing core
//! and never the other way round.

mod pages;
mod sessions;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::{any, get, post, MethodRouter};
use axum::Extension;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use super::call::{Call, Incoming};
use super::render::Render;
use super::CurrentCore;
use crate::signing::{refuse, Audited, Core, LiveCore, Reason, Refusal};
use crate::store::Record;
use pages::page;

pub use sessions::Sessions;

const COOKIE: &str = "signpath_session";

/// An HTML page (or a redirect) and its status.
#[derive(Debug)]
pub struct Page {
    status: StatusCode,
    html: String,
    headers: Vec<(HeaderName, String)>,
}

impl Page {
    fn html(status: StatusCode, html: String) -> Self {
        Self {
            status,
            html,
            headers: Vec::new(),
        }
    }
}

impl Audited for Page {
    fn status(&self) -> u16 {
        self.status.as_u16()
    }
}

impl Render for Page {
    fn render(self) -> Response {
        let mut response = Response::new(Body::from(self.html));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(name, value);
            }
        }
        response
    }
}

fn redirect(to: &str) -> Page {
    let mut page = Page::html(StatusCode::SEE_OTHER, String::new());
    page.headers.push((header::LOCATION, to.to_owned()));
    page
}

/// The headers on every response of the approvers' pages (pages, redirects, refusals): no other site may frame
/// them (clickjacking an Approve button), a browser takes each response as the type it says, and nothing of a
/// page (held requests, the audit log, the CSRF token) is kept in a cache. The pages use no scripts and only an
/// inline style, so the policy allows nothing else; form posts go to the gateway only.
static PAGE_HEADERS: [(HeaderName, &str); 4] = [
    (header::X_FRAME_OPTIONS, "DENY"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::CACHE_CONTROL, "no-store"),
];

/// The approvers' routes. Any other method on them, like any other page under `/Web`, is a 404 once signed in.
pub fn routes() -> Router<Arc<LiveCore>> {
    let signed_in = |route: MethodRouter<Arc<LiveCore>>| route.head(fallback).fallback(fallback);
    let routes = Router::new()
        .route("/web/login", any(login))
        .route("/web/logout", signed_in(post(logout)))
        .route("/web", signed_in(get(list)))
        .route("/web/signingrequests", signed_in(get(list)))
        .route("/web/signingrequests/{id}", signed_in(get(detail)))
        .route("/web/signingrequests/{id}/approve", signed_in(post(approve)))
        .route("/web/signingrequests/{id}/deny", signed_in(post(deny)));
    PAGE_HEADERS.iter().fold(routes, |routes, (name, value)| {
        routes.layer(SetResponseHeaderLayer::overriding(
            name.clone(),
            HeaderValue::from_static(value),
        ))
    })
}

/// Puts [`PAGE_HEADERS`] on a response made outside [`routes`] (a page under `/Web` that no route takes).
fn with_page_headers(mut response: Response) -> Response {
    for (name, value) in &PAGE_HEADERS {
        response
            .headers_mut()
            .insert(name.clone(), HeaderValue::from_static(value));
    }
    response
}

async fn fallback(
    CurrentCore(core): CurrentCore,
    Extension(sessions): Extension<Arc<Sessions>>,
    call: Call,
) -> Response {
    not_found(&core, sessions, call).await
}

/// A page that does not exist: sign in first, then 404.
pub async fn not_found(core: &Arc<Core>, sessions: Arc<Sessions>, call: Call) -> Response {
    let response = call
        .run(core, move |core, incoming, record| {
            as_approver(core, &sessions, incoming, record, |_, _| {
                Err(refuse(
                    Reason::NoSuchRoute,
                    format!("there is no page {}", incoming.path),
                ))
            })
        })
        .await;
    with_page_headers(response)
}

/// The signed-in approver: by session cookie (a browser), or by `Authorization: Bearer <approver token>` (a
/// script, which no other site can make a browser send).
struct Approver {
    name: String,
    /// The session's CSRF token; None for a Bearer-authenticated caller.
    csrf: Option<String>,
    session: Option<String>,
}

/// Runs `then` for the signed-in approver; without one, a page view goes to the sign-in page and anything else is
/// refused. A form post in a browser session must carry the session's CSRF token and come from our own origin.
fn as_approver(
    core: &Core,
    sessions: &Sessions,
    incoming: &Incoming,
    record: &mut Record,
    then: impl FnOnce(&Approver, &mut Record) -> Result<Page, Refusal>,
) -> Result<Page, Refusal> {
    let presented = incoming
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::trim);
    let bearer = match presented.map(|token| core.approver(token)) {
        Some(Some(name)) => Some(Approver {
            name,
            csrf: None,
            session: None,
        }),
        // A wrong token is a failed authentication (401, counted by the failed-authentication limit) whatever the
        // method: sent to the sign-in page instead, a script could try tokens unhindered.
        Some(None) => {
            return Err(refuse(
                Reason::Unauthenticated,
                "the Bearer token is not an approver token",
            ))
        }
        None => None,
    };
    let mut ended = None;
    let approver = bearer.or_else(|| {
        let id = cookie_value(incoming.header("cookie"))?;
        let session = sessions.get(id)?;
        // The approver was removed (or their token replaced) since signing in: the session ends here.
        if !core.approver_session_stands(&session.approver, &session.token_sha256) {
            sessions.end(id);
            ended = Some(session.approver);
            return None;
        }
        Some(Approver {
            name: session.approver,
            csrf: Some(session.csrf),
            session: Some(id.to_owned()),
        })
    });
    if let Some(name) = ended {
        record.token_id = Some(format!("approver:{name}"));
        if incoming.method != Method::GET {
            return Err(refuse(
                Reason::NotAnApprover,
                format!("{name} is no longer an approver of this gateway; the session has ended"),
            ));
        }
    }
    let Some(approver) = approver else {
        if incoming.method == Method::GET {
            return Ok(redirect("/Web/Login"));
        }
        return Err(refuse(
            Reason::Unauthenticated,
            "sign in at /Web/Login with an approver token",
        ));
    };
    record.token_id = Some(format!("approver:{}", approver.name));
    if incoming.method == Method::POST {
        if let Some(csrf) = &approver.csrf {
            check_same_origin(core, incoming)?;
            let presented = form(&incoming.body).remove("csrf").unwrap_or_default();
            if !sessions::csrf_matches(csrf, &presented) {
                return Err(refuse(
                    Reason::CrossSiteForm,
                    "the form carries no valid CSRF token; reload the page and try again",
                ));
            }
        }
    }
    then(&approver, record)
}

/// A browser's form post must come from a page of this gateway: its `Origin` (or, without one, its `Referer`) is
/// the gateway's public URL.
fn check_same_origin(core: &Core, incoming: &Incoming) -> Result<(), Refusal> {
    let ours = core.state.public_url.trim_end_matches('/');
    let same = match (incoming.header("origin"), incoming.header("referer")) {
        (Some(origin), _) => origin.trim_end_matches('/').eq_ignore_ascii_case(ours),
        (None, Some(referer)) => referer
            .strip_prefix(ours)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        (None, None) => false,
    };
    if same {
        Ok(())
    } else {
        Err(refuse(
            Reason::CrossSiteForm,
            format!("form posts are taken only from pages of {ours}"),
        ))
    }
}

fn cookie_value(cookie: Option<&str>) -> Option<&str> {
    cookie?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

fn form(body: &[u8]) -> std::collections::BTreeMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// Handles the `GET /Web` and `GET /Web/SigningRequests` routes.
async fn list(
    CurrentCore(core): CurrentCore,
    Extension(sessions): Extension<Arc<Sessions>>,
    call: Call,
) -> Response {
    call.run(&core, move |core, incoming, record| {
        as_approver(core, &sessions, incoming, record, |approver, _| {
            let listing = pages::Listing::parse(incoming.query.as_deref());
            pages::list(core, &approver.name, approver.csrf.as_deref(), &listing)
        })
    })
    .await
}

/// Handles the `GET /Web/SigningRequests/{id}` route.
async fn detail(
    CurrentCore(core): CurrentCore,
    Extension(sessions): Extension<Arc<Sessions>>,
    Path(id): Path<String>,
    call: Call,
) -> Response {
    call.run(&core, move |core, incoming, record| {
        as_approver(core, &sessions, incoming, record, |approver, _| {
            pages::detail(core, &approver.name, &id)
        })
    })
    .await
}

/// Handles the `POST /Web/SigningRequests/{id}/Approve` route (form field `csrf` in a browser session).
async fn approve(
    CurrentCore(core): CurrentCore,
    Extension(sessions): Extension<Arc<Sessions>>,
    Path(id): Path<String>,
    call: Call,
) -> Response {
    vote(core, sessions, id, true, call).await
}

/// Handles the `POST /Web/SigningRequests/{id}/Deny` route (form fields `reason`, and `csrf` in a browser session).
async fn deny(
    CurrentCore(core): CurrentCore,
    Extension(sessions): Extension<Arc<Sessions>>,
    Path(id): Path<String>,
    call: Call,
) -> Response {
    vote(core, sessions, id, false, call).await
}

async fn vote(core: Arc<Core>, sessions: Arc<Sessions>, id: String, approve: bool, call: Call) -> Response {
    call.run(&core, move |core, incoming, record| {
        as_approver(core, &sessions, incoming, record, |approver, record| {
            let reason = form(&incoming.body)
                .remove("reason")
                .filter(|r| !r.trim().is_empty());
            core.vote(&approver.name, &id, approve, reason.as_deref(), record)?;
            Ok(redirect("/Web/SigningRequests"))
        })
    })
    .await
}

/// Handles the `POST /Web/Logout` route: the session ends and the cookie is cleared.
async fn logout(
    CurrentCore(core): CurrentCore,
    Extension(sessions): Extension<Arc<Sessions>>,
    call: Call,
) -> Response {
    call.run(&core, move |core, incoming, record| {
        as_approver(core, &sessions, incoming, record, |approver, _| {
            if let Some(id) = &approver.session {
                sessions.end(id);
            }
            let mut page = redirect("/Web/Login");
            page.headers.push((
                header::SET_COOKIE,
                format!("{COOKIE}=; Path=/Web; HttpOnly; Secure; SameSite=Strict; Max-Age=0"),
            ));
            Ok(page)
        })
    })
    .await
}

/// Handles the `/Web/Login` route: the sign-in form (GET), and signing in (POST, form field `token`), which starts
/// a session.
async fn login(
    CurrentCore(core): CurrentCore,
    Extension(sessions): Extension<Arc<Sessions>>,
    call: Call,
) -> Response {
    call.run(&core, move |core, incoming, record| {
        if incoming.method != Method::POST {
            return Ok(Page::html(
                StatusCode::OK,
                page(
                    "Sign in",
                    "<form method=\"post\" action=\"/Web/Login\"><label>Approver token \
                     <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"off\"></label> \
                     <button type=\"submit\" id=\"sign-in\">Sign in</button></form>",
                ),
            ));
        }
        check_same_origin(core, incoming)?;
        let token = form(&incoming.body).remove("token").unwrap_or_default();
        let Some(name) = core.approver(token.trim()) else {
            let body = page(
                "Sign in",
                "<p id=\"error\">That is not an approver token.</p><p><a href=\"/Web/Login\">Try again</a></p>",
            );
            return Ok(Page::html(StatusCode::UNAUTHORIZED, body));
        };
        record.token_id = Some(format!("approver:{name}"));
        let (id, _) = sessions.start(&name, crate::signing::state::token_sha256(token.trim()));
        let mut page = redirect("/Web/SigningRequests");
        page.headers.push((
            header::SET_COOKIE,
            format!(
                "{COOKIE}={id}; Path=/Web; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
                sessions::SESSION_LIFETIME.as_secs()
            ),
        ));
        Ok(page)
    })
    .await
}
