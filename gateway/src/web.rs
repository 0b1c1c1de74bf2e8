//! The approvers' web page, server-rendered HTML without scripts: sign in with an approver token, see the
//! signing requests that wait (image reference, digest, policy, release group), approve or deny them, and read the
//! audit log. The token travels once in a form and then in an HttpOnly, Secure, SameSite=Strict cookie scoped to
//! /Web, so another site cannot make an approver's browser approve anything. Every page view and vote is audited.

use hyper::{Method, StatusCode};

use crate::api::{refuse, Api, Incoming, Refusal, Success};
use crate::approval::{Held, Status, VoteError};
use crate::audit::Record;
use common::protocol::problem_types as pt;

const COOKIE: &str = "signpath_approver";

fn esc(s: &str) -> String {
    html_escape::encode_quoted_attribute(s).into_owned()
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t} · SignPath Gateway</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:90%}}</style></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    )
}

fn redirect(to: &str) -> Success {
    let mut s = Success::html(StatusCode::SEE_OTHER, String::new());
    s.headers.push(("location", to.to_owned()));
    s
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

/// `/Web/...`: `segments` is the path after `Web`.
pub fn route(
    api: &Api,
    incoming: &Incoming<'_>,
    segments: &[&str],
    record: &mut Record,
) -> Result<Success, Refusal> {
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let method = incoming.method;
    if lower.as_slice() == ["login"] {
        return login(api, incoming, record);
    }
    let presented = cookie_token(incoming.cookie).or_else(|| {
        incoming
            .authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::trim)
    });
    let Some(approver) = presented.and_then(|t| api.state.approver(t)) else {
        if *method == Method::GET {
            return Ok(redirect("/Web/Login"));
        }
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            pt::UNAUTHENTICATED,
            "sign in at /Web/Login with an approver token",
        ));
    };
    record.token_id = Some(format!("approver:{approver}"));
    match (method, lower.as_slice()) {
        (&Method::GET, [] | ["signingrequests"]) => list(api, &approver),
        (&Method::GET, ["signingrequests", _]) => detail(api, &approver, segments[1]),
        (&Method::POST, ["signingrequests", _, action @ ("approve" | "deny")]) => {
            let reason = form(incoming.body)
                .remove("reason")
                .filter(|r| !r.trim().is_empty());
            vote(
                api,
                &approver,
                segments[1],
                *action == "approve",
                reason.as_deref(),
                record,
            )?;
            Ok(redirect("/Web/SigningRequests"))
        }
        _ => Err(refuse(
            StatusCode::NOT_FOUND,
            pt::NOT_FOUND,
            format!("there is no page {}", incoming.path),
        )),
    }
}

fn login(api: &Api, incoming: &Incoming<'_>, record: &mut Record) -> Result<Success, Refusal> {
    if *incoming.method == Method::POST {
        let token = form(incoming.body).remove("token").unwrap_or_default();
        let Some(name) = api.state.approver(token.trim()) else {
            let body = page(
                "Sign in",
                "<p id=\"error\">That is not an approver token.</p><p><a href=\"/Web/Login\">Try again</a></p>",
            );
            return Ok(Success::html(StatusCode::UNAUTHORIZED, body));
        };
        record.token_id = Some(format!("approver:{name}"));
        let mut s = redirect("/Web/SigningRequests");
        s.headers.push((
            "set-cookie",
            format!(
                "{COOKIE}={}; Path=/Web; HttpOnly; Secure; SameSite=Strict",
                token.trim()
            ),
        ));
        return Ok(s);
    }
    Ok(Success::html(
        StatusCode::OK,
        page(
            "Sign in",
            "<form method=\"post\" action=\"/Web/Login\"><label>Approver token \
             <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"off\"></label> \
             <button type=\"submit\" id=\"sign-in\">Sign in</button></form>",
        ),
    ))
}

fn row(h: &Held) -> String {
    format!(
        "<tr id=\"request-{id}\"><td><a href=\"/Web/SigningRequests/{id}\">{id}</a></td><td>{policy}</td>\
         <td class=\"image\">{image}</td><td class=\"digest\">{digest}</td><td>{group}</td><td class=\"status\">{status:?}</td>\
         <td>{approved}/{required}</td></tr>",
        id = esc(&h.request_id),
        policy = esc(&format!("{}/{}", h.project, h.policy)),
        image = esc(h.image.as_deref().unwrap_or("–")),
        digest = esc(&h.digest),
        group = esc(h.release_group.as_deref().unwrap_or("–")),
        status = h.status,
        approved = h.approved_by.len(),
        required = h.required,
    )
}

fn db_error<E: std::fmt::Display>(e: E) -> Refusal {
    tracing::error!(error = %e, "approval database");
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        pt::INTERNAL,
        "the approval database is not available; try again later",
    )
}

fn list(api: &Api, approver: &str) -> Result<Success, Refusal> {
    let held = api.approvals.list(None, 100).map_err(db_error)?;
    let mine = |h: &&Held| h.approvers.iter().any(|a| a == approver);
    let pending: String = held
        .iter()
        .filter(mine)
        .filter(|h| h.status == Status::Pending)
        .map(|h| {
            format!(
                "{}<tr><td colspan=\"7\"><form method=\"post\" action=\"/Web/SigningRequests/{id}/Approve\" style=\"display:inline\">\
                 <button type=\"submit\" class=\"approve\" id=\"approve-{id}\">Approve</button></form> \
                 <form method=\"post\" action=\"/Web/SigningRequests/{id}/Deny\" style=\"display:inline\">\
                 <input name=\"reason\" placeholder=\"reason\"> <button type=\"submit\" class=\"deny\" id=\"deny-{id}\">Deny</button></form></td></tr>",
                row(h),
                id = esc(&h.request_id)
            )
        })
        .collect();
    let decided: String = held
        .iter()
        .filter(mine)
        .filter(|h| h.status != Status::Pending)
        .map(row)
        .collect();
    let audit: String = api
        .audit
        .records(Some(50))
        .map_err(db_error)?
        .iter()
        .rev()
        .map(|r| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(r.received.get(..19).unwrap_or(&r.received)),
                esc(&r.request_id),
                esc(&r.outcome),
                esc(r.route.rsplit('/').next().unwrap_or_default()),
                esc(&format!(
                    "{}/{}",
                    r.project.as_deref().unwrap_or("-"),
                    r.policy.as_deref().unwrap_or("-")
                )),
                esc(r.approval.as_deref().unwrap_or("")),
            )
        })
        .collect();
    let head = "<tr><th>Request</th><th>Policy</th><th>Image</th><th>Digest</th><th>Release group</th><th>Status</th><th>Approvals</th></tr>";
    let body = format!(
        "<p>Signed in as <b id=\"approver\">{who}</b>.</p>\
         <h2>Waiting for approval</h2><table id=\"pending\">{head}{pending}</table>\
         <h2>Decided</h2><table id=\"decided\">{head}{decided}</table>\
         <h2>Audit log</h2><table id=\"audit\"><tr><th>Time</th><th>Request</th><th>Outcome</th><th>Route</th><th>Policy</th><th>Approval</th></tr>{audit}</table>",
        who = esc(approver)
    );
    Ok(Success::html(StatusCode::OK, page("Signing requests", &body)))
}

fn detail(api: &Api, approver: &str, id: &str) -> Result<Success, Refusal> {
    let held = api
        .approvals
        .get(id)
        .map_err(db_error)?
        .filter(|h| h.approvers.iter().any(|a| a == approver))
        .ok_or_else(|| {
            refuse(
                StatusCode::NOT_FOUND,
                pt::SIGNING_REQUEST_NOT_FOUND,
                format!("no signing request {id} waits for you"),
            )
        })?;
    let body = format!(
        "<table>{}</table><p>Approved by: {}</p><p><a href=\"/Web/SigningRequests\">All requests</a></p>",
        row(&held),
        esc(&held.approved_by.join(", "))
    );
    Ok(Success::html(StatusCode::OK, page("Signing request", &body)))
}

/// A vote from the web page or the command line, audited as its own record.
pub fn vote(
    api: &Api,
    approver: &str,
    id: &str,
    approve: bool,
    reason: Option<&str>,
    record: &mut Record,
) -> Result<(), Refusal> {
    let held = api
        .approvals
        .vote(id, approver, approve, reason)
        .map_err(|e| match e {
            VoteError::NotFound(_) => refuse(
                StatusCode::NOT_FOUND,
                pt::SIGNING_REQUEST_NOT_FOUND,
                e.to_string(),
            ),
            VoteError::NotAnApprover { .. } => refuse(StatusCode::FORBIDDEN, pt::FORBIDDEN, e.to_string()),
            VoteError::Decided { .. } | VoteError::AlreadyVoted { .. } => {
                refuse(StatusCode::CONFLICT, pt::REQUEST_DENIED, e.to_string())
            }
            VoteError::Db(e) => db_error(e),
        })?;
    record.project = Some(held.project.clone());
    record.policy = Some(held.policy.clone());
    record.release_group = held.release_group.clone();
    record.digest = Some(held.digest.clone());
    record.approval = Some(format!(
        "{} {} by {approver}{}",
        if approve { "approved" } else { "denied" },
        held.request_id,
        reason.map(|r| format!(": {r}")).unwrap_or_default()
    ));
    Ok(())
}
