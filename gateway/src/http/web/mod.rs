//! The approvers' web page, server-rendered HTML without scripts: sign in with an approver token, see the
//! signing requests that wait (image reference, digest, policy, release group), approve or deny them, and read the
//! audit log. The token travels once in a form and then in an HttpOnly, Secure, SameSite=Strict cookie scoped to
//! /Web, so another site cannot make an approver's browser approve anything. Every page view and vote is audited.
//!
//! Routes and sign-in live here, the HTML in `pages`. Like the rest of `http/`, this folder calls the signing core
//! and never the other way round.

mod pages;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::{any, get, post, MethodRouter};
use axum::Router;
use common::protocol::problem_types as pt;

use super::call::{Call, Incoming};
use super::render::Render;
use crate::signing::{refuse, Audited, Core, Kind, Refusal};
use crate::store::Record;
use pages::page;

const COOKIE: &str = "signpath_approver";

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

/// The approvers' routes. Any other method on them, like any other page under `/Web`, is a 404 once signed in.
pub fn routes() -> Router<Arc<Core>> {
    let signed_in = |route: MethodRouter<Arc<Core>>| route.head(fallback).fallback(fallback);
    Router::new()
        .route("/web/login", any(login))
        .route("/web", signed_in(get(list)))
        .route("/web/signingrequests", signed_in(get(list)))
        .route("/web/signingrequests/{id}", signed_in(get(detail)))
        .route("/web/signingrequests/{id}/approve", signed_in(post(approve)))
        .route("/web/signingrequests/{id}/deny", signed_in(post(deny)))
}

async fn fallback(State(core): State<Arc<Core>>, call: Call) -> Response {
    not_found(&core, call).await
}

/// A page that does not exist: sign in first, then 404.
pub async fn not_found(core: &Arc<Core>, call: Call) -> Response {
    call.run(core, |core, incoming, record| {
        as_approver(core, incoming, record, |_, _| {
            Err(refuse(
                Kind::NotFound,
                pt::NOT_FOUND,
                format!("there is no page {}", incoming.path),
            ))
        })
    })
    .await
}

/// Runs `then` for the signed-in approver; without one, a page view goes to the sign-in page and anything else is
/// refused.
fn as_approver(
    core: &Core,
    incoming: &Incoming,
    record: &mut Record,
    then: impl FnOnce(&str, &mut Record) -> Result<Page, Refusal>,
) -> Result<Page, Refusal> {
    let presented = cookie_token(incoming.header("cookie")).or_else(|| {
        incoming
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::trim)
    });
    let Some(approver) = presented.and_then(|t| core.approver(t)) else {
        if incoming.method == Method::GET {
            return Ok(redirect("/Web/Login"));
        }
        return Err(refuse(
            Kind::Unauthenticated,
            pt::UNAUTHENTICATED,
            "sign in at /Web/Login with an approver token",
        ));
    };
    record.token_id = Some(format!("approver:{approver}"));
    then(&approver, record)
}

fn cookie_token(cookie: Option<&str>) -> Option<&str> {
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
async fn list(State(core): State<Arc<Core>>, call: Call) -> Response {
    call.run(&core, |core, incoming, record| {
        as_approver(core, incoming, record, |approver, _| pages::list(core, approver))
    })
    .await
}

/// Handles the `GET /Web/SigningRequests/{id}` route.
async fn detail(State(core): State<Arc<Core>>, Path(id): Path<String>, call: Call) -> Response {
    call.run(&core, move |core, incoming, record| {
        as_approver(core, incoming, record, |approver, _| {
            pages::detail(core, approver, &id)
        })
    })
    .await
}

/// Handles the `POST /Web/SigningRequests/{id}/Approve` route.
async fn approve(State(core): State<Arc<Core>>, Path(id): Path<String>, call: Call) -> Response {
    vote(core, id, true, call).await
}

/// Handles the `POST /Web/SigningRequests/{id}/Deny` route (form field `reason`).
async fn deny(State(core): State<Arc<Core>>, Path(id): Path<String>, call: Call) -> Response {
    vote(core, id, false, call).await
}

async fn vote(core: Arc<Core>, id: String, approve: bool, call: Call) -> Response {
    call.run(&core, move |core, incoming, record| {
        as_approver(core, incoming, record, |approver, record| {
            let reason = form(&incoming.body)
                .remove("reason")
                .filter(|r| !r.trim().is_empty());
            core.vote(approver, &id, approve, reason.as_deref(), record)?;
            Ok(redirect("/Web/SigningRequests"))
        })
    })
    .await
}

/// Handles the `/Web/Login` route: the sign-in form (GET), and signing in (POST, form field `token`).
async fn login(State(core): State<Arc<Core>>, call: Call) -> Response {
    call.run(&core, |core, incoming, record| {
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
        let token = form(&incoming.body).remove("token").unwrap_or_default();
        let Some(name) = core.approver(token.trim()) else {
            let body = page(
                "Sign in",
                "<p id=\"error\">That is not an approver token.</p><p><a href=\"/Web/Login\">Try again</a></p>",
            );
            return Ok(Page::html(StatusCode::UNAUTHORIZED, body));
        };
        record.token_id = Some(format!("approver:{name}"));
        let mut page = redirect("/Web/SigningRequests");
        page.headers.push((
            header::SET_COOKIE,
            format!(
                "{COOKIE}={}; Path=/Web; HttpOnly; Secure; SameSite=Strict",
                token.trim()
            ),
        ));
        Ok(page)
    })
    .await
}
