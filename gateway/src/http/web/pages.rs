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

pub fn list(core: &Core, approver: &str) -> Result<Page, Refusal> {
    let held = core.stores.approvals.list(None, 100).map_err(store_unavailable)?;
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
    let audit: String = core
        .stores
        .audit
        .records(Some(50))
        .map_err(store_unavailable)?
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
        row(&held),
        esc(&held.approved_by.join(", "))
    );
    Ok(Page::html(StatusCode::OK, page("Signing request", &body)))
}
