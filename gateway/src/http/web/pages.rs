//! The approvers' pages as HTML: the requests that wait (image reference, digest, policy, release group) with
//! their approve and deny forms, the decided ones, the audit log, and one request's detail. Every value a client
//! sent is escaped.

use axum::http::StatusCode;
use common::protocol::problem_types as pt;

use super::Page;
use crate::signing::{refuse, store_unavailable, Core, Kind, Refusal};
use crate::store::{Held, Status};

pub fn esc(s: &str) -> String {
    html_escape::encode_quoted_attribute(s).into_owned()
}

pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t} · SignPath Gateway</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:90%}}</style></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    )
}

/// What approving this request lets through: the request alone, or with its release group later requests of the
/// same token (and, on a policy with origin verification, the same CI identity) within the group's limits.
fn covers(core: &Core, h: &Held) -> String {
    let Some(group) = &h.release_group else {
        return "this request only".into();
    };
    let limits = core
        .state
        .policies
        .iter()
        .find(|p| p.project == h.project && p.slug == h.policy)
        .and_then(|p| p.approval.as_ref())
        .and_then(|a| a.release_group.as_ref());
    let Some(limits) = limits else {
        return "this request only".into();
    };
    let from = h
        .binding
        .as_deref()
        .map(|b| format!(", from {b}"))
        .unwrap_or_default();
    format!(
        "this request and up to {more} more of release group {group} within {window} s, \
         each submitted with token {token}{from}",
        more = limits.max_signatures.saturating_sub(1),
        window = limits.window_seconds,
        token = h.token_id,
    )
}

fn row(core: &Core, h: &Held) -> String {
    format!(
        "<tr id=\"request-{id}\"><td><a href=\"/Web/SigningRequests/{id}\">{id}</a></td><td>{policy}</td>\
         <td class=\"image\">{image}</td><td class=\"digest\">{digest}</td><td>{group}</td><td class=\"status\">{status:?}</td>\
         <td>{approved}/{required}</td><td class=\"covers\">{covers}</td></tr>",
        covers = esc(&covers(core, h)),
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

/// The policies `approver` decides on, as `project/policy`.
fn approved_policies(core: &Core, approver: &str) -> Vec<(String, String)> {
    core.state
        .policies
        .iter()
        .filter(|p| {
            p.approval
                .as_ref()
                .is_some_and(|a| a.approvers.iter().any(|n| n == approver))
        })
        .map(|p| (p.project.clone(), p.slug.clone()))
        .collect()
}

/// The hidden form field that carries the session's CSRF token back (none for a Bearer-authenticated client).
fn csrf_field(csrf: Option<&str>) -> String {
    csrf.map(|c| format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(c)))
        .unwrap_or_default()
}

/// The approver's overview: what waits for them, what they decided, and the audit log of their policies only.
pub fn list(core: &Core, approver: &str, csrf: Option<&str>) -> Result<Page, Refusal> {
    let hidden = csrf_field(csrf);
    let theirs = approved_policies(core, approver);
    let held = core.stores.approvals.list(None, 100).map_err(store_unavailable)?;
    let mine = |h: &&Held| h.approvers.iter().any(|a| a == approver);
    let pending: String = held
        .iter()
        .filter(mine)
        .filter(|h| h.status == Status::Pending)
        .map(|h| {
            format!(
                "{}<tr><td colspan=\"8\"><form method=\"post\" action=\"/Web/SigningRequests/{id}/Approve\" style=\"display:inline\">{hidden}\
                 <button type=\"submit\" class=\"approve\" id=\"approve-{id}\">Approve</button></form> \
                 <form method=\"post\" action=\"/Web/SigningRequests/{id}/Deny\" style=\"display:inline\">{hidden}\
                 <input name=\"reason\" placeholder=\"reason\"> <button type=\"submit\" class=\"deny\" id=\"deny-{id}\">Deny</button></form></td></tr>",
                row(core, h),
                id = esc(&h.request_id),
                hidden = hidden
            )
        })
        .collect();
    let decided: String = held
        .iter()
        .filter(mine)
        .filter(|h| h.status != Status::Pending)
        .map(|h| row(core, h))
        .collect();
    let audit: String = core
        .stores
        .audit
        .records(Some(500))
        .map_err(store_unavailable)?
        .iter()
        .rev()
        .filter(|r| match (&r.project, &r.policy) {
            (Some(project), Some(policy)) => theirs.iter().any(|(p, s)| p == project && s == policy),
            _ => false,
        })
        .take(50)
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
    let head = "<tr><th>Request</th><th>Policy</th><th>Image</th><th>Digest</th><th>Release group</th><th>Status</th><th>Approvals</th><th>Approving covers</th></tr>";
    let body = format!(
        "<p>Signed in as <b id=\"approver\">{who}</b>. <form method=\"post\" action=\"/Web/Logout\" \
         style=\"display:inline\">{hidden}<button type=\"submit\" id=\"logout\">Sign out</button></form></p>\
         <h2>Waiting for approval</h2><table id=\"pending\">{head}{pending}</table>\
         <h2>Decided</h2><table id=\"decided\">{head}{decided}</table>\
         <h2>Audit log</h2><table id=\"audit\"><tr><th>Time</th><th>Request</th><th>Outcome</th><th>Route</th><th>Policy</th><th>Approval</th></tr>{audit}</table>",
        who = esc(approver),
        hidden = hidden
    );
    Ok(Page::html(StatusCode::OK, page("Signing requests", &body)))
}

pub fn detail(core: &Core, approver: &str, id: &str) -> Result<Page, Refusal> {
    let held = core
        .stores
        .approvals
        .get(id)
        .map_err(store_unavailable)?
        .filter(|h| h.approvers.iter().any(|a| a == approver))
        .ok_or_else(|| {
            refuse(
                Kind::NotFound,
                pt::SIGNING_REQUEST_NOT_FOUND,
                format!("no signing request {id} waits for you"),
            )
        })?;
    let body = format!(
        "<table>{}</table><p>Approved by: {}</p><p><a href=\"/Web/SigningRequests\">All requests</a></p>",
        row(core, &held),
        esc(&held.approved_by.join(", "))
    );
    Ok(Page::html(StatusCode::OK, page("Signing request", &body)))
}
