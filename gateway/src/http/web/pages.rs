//! The approvers' pages as HTML: the approver's policies with their counts, the requests that wait (image
//! reference, digest, policy, release group) with their approve and deny forms, the decided ones, each a page at a
//! time and filtered by policy if asked, the audit log, and one request's detail. Every value a client sent is
//! escaped.

use axum::http::StatusCode;

use super::Page;
use crate::signing::{refuse, store_unavailable, Core, Reason, Refusal};
use crate::store::{rules, Held, HeldQuery, Stage};

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

/// Held requests on one page of a table.
const PER_PAGE: u32 = 50;

/// What the list page shows, from its query string: one policy (`policy=project/slug`) or all of the approver's,
/// and which page of the waiting (`page`) and of the decided (`decided_page`) requests, counted from 1.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub policy: Option<(String, String)>,
    pub page: u64,
    pub decided_page: u64,
}

impl Listing {
    /// Reads `policy`, `page` and `decided_page`; anything else, or a value that does not parse, is left out.
    pub fn parse(query: Option<&str>) -> Self {
        let mut listing = Self {
            page: 1,
            decided_page: 1,
            ..Self::default()
        };
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "policy" => {
                    listing.policy = value
                        .split_once('/')
                        .map(|(project, policy)| (project.to_owned(), policy.to_owned()))
                }
                "page" => listing.page = value.parse().unwrap_or(1).max(1),
                "decided_page" => listing.decided_page = value.parse().unwrap_or(1).max(1),
                _ => {}
            }
        }
        listing
    }

    /// The query string of this listing with `page` and `decided_page` replaced.
    fn link(&self, page: u64, decided_page: u64) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some((project, policy)) = &self.policy {
            query.append_pair("policy", &format!("{project}/{policy}"));
        }
        query.append_pair("page", &page.to_string());
        query.append_pair("decided_page", &decided_page.to_string());
        format!("/Web/SigningRequests?{}", query.finish())
    }
}

/// What approving this request lets through: the request alone, or with its release group later requests of the
/// same token (and, on a policy with origin verification, the same CI identity) within the group's limits, which
/// count signatures (an artifact makes one per image and signature format).
fn covers(core: &Core, h: &Held) -> String {
    let Some(group) = &h.release_group else {
        return "this request only".into();
    };
    let limits = core
        .approval_in_force(&h.project, &h.policy)
        .and_then(|a| a.release_group);
    let Some(limits) = limits else {
        return "this request only".into();
    };
    let from = h
        .binding
        .as_deref()
        .map(|b| format!(", from {b}"))
        .unwrap_or_default();
    format!(
        "this request ({own} signature{s}) and up to {more} more signatures of release group {group} within \
         {window} s, each request submitted with token {token}{from}",
        own = h.signatures,
        s = if h.signatures == 1 { "" } else { "s" },
        more = limits.max_signatures.saturating_sub(h.signatures),
        window = limits.window_seconds,
        token = h.token_id,
    )
}

fn row(core: &Core, h: &Held) -> String {
    // Approvals as they count now: those of approvers the policy names today.
    let (approved, required) = match core.approval_in_force(&h.project, &h.policy) {
        Some(approval) => (rules::counted(&approval, &h.approved_by), approval.required),
        None => (h.approved_by.len(), h.required),
    };
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
    )
}

/// The policies `approver` decides on now, as (project, policy), `keyless/<issuer>` for `[keyless]` rules' CI runs.
fn approved_policies(core: &Core, approver: &str) -> Vec<(String, String)> {
    core.approval_scopes()
        .into_iter()
        .filter(|(project, policy)| {
            core.approval_in_force(project, policy)
                .is_some_and(|a| a.approvers.iter().any(|n| n == approver))
        })
        .collect()
}

/// The hidden form field that carries the session's CSRF token back (none for a Bearer-authenticated client).
fn csrf_field(csrf: Option<&str>) -> String {
    csrf.map(|c| format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(c)))
        .unwrap_or_default()
}

/// One page of the requests of `policies` in `stage`: the rows, and a line saying which page of how many with
/// links to the others (`link(n)`).
fn page_of(
    core: &Core,
    policies: &[(String, String)],
    stage: Stage,
    page: u64,
    total: u64,
    link: impl Fn(u64) -> String,
) -> Result<(Vec<Held>, String), Refusal> {
    let pages = total.div_ceil(u64::from(PER_PAGE)).max(1);
    let page = page.min(pages);
    let held = core
        .stores
        .approvals
        .list(&HeldQuery {
            policies: Some(policies),
            stage: Some(stage),
            offset: (page - 1) * u64::from(PER_PAGE),
            limit: PER_PAGE,
        })
        .map_err(store_unavailable)?;
    let name = match stage {
        Stage::Waiting => "waiting",
        Stage::Decided => "decided",
    };
    let mut pager = format!("<p class=\"pager\" id=\"{name}-pages\">{total} {name}; page {page} of {pages}");
    if page > 1 {
        pager.push_str(&format!(
            " <a href=\"{}\" rel=\"prev\">previous</a>",
            esc(&link(page - 1))
        ));
    }
    if page < pages {
        pager.push_str(&format!(
            " <a href=\"{}\" rel=\"next\" id=\"{name}-next\">next</a>",
            esc(&link(page + 1))
        ));
    }
    pager.push_str("</p>");
    Ok((held, pager))
}

/// The approver's overview: the policies they decide on with how many requests wait and how many are decided
/// (each a link to that policy's requests alone), a page of the requests that wait for them, a page of the
/// decided ones, and the audit log of their policies only. Every held request is on some page.
pub fn list(core: &Core, approver: &str, csrf: Option<&str>, listing: &Listing) -> Result<Page, Refusal> {
    let hidden = csrf_field(csrf);
    let theirs = approved_policies(core, approver);
    let shown: Vec<(String, String)> = match &listing.policy {
        Some(one) => theirs.iter().filter(|p| *p == one).cloned().collect(),
        None => theirs.clone(),
    };
    let counts = core
        .stores
        .approvals
        .count(Some(&theirs))
        .map_err(store_unavailable)?;
    let (waiting_total, decided_total) = counts
        .iter()
        .filter(|c| shown.iter().any(|(p, s)| *p == c.project && *s == c.policy))
        .fold((0, 0), |(w, d), c| (w + c.waiting, d + c.decided));
    let policy_rows: String = theirs
        .iter()
        .map(|(project, policy)| {
            let count = counts.iter().find(|c| c.project == *project && c.policy == *policy);
            let name = format!("{project}/{policy}");
            let only = Listing {
                policy: Some((project.clone(), policy.clone())),
                page: 1,
                decided_page: 1,
            };
            format!(
                "<tr><td><a href=\"{link}\" class=\"policy\">{name}</a></td><td class=\"waiting\">{waiting}</td>\
                 <td class=\"decided\">{decided}</td></tr>",
                link = esc(&only.link(1, 1)),
                name = esc(&name),
                waiting = count.map_or(0, |c| c.waiting),
                decided = count.map_or(0, |c| c.decided),
            )
        })
        .collect();
    let (waiting, waiting_pager) = page_of(core, &shown, Stage::Waiting, listing.page, waiting_total, |n| {
        listing.link(n, listing.decided_page)
    })?;
    let (decided, decided_pager) = page_of(
        core,
        &shown,
        Stage::Decided,
        listing.decided_page,
        decided_total,
        |n| listing.link(listing.page, n),
    )?;
    let pending: String = waiting
        .iter()
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
    let decided: String = decided.iter().map(|h| row(core, h)).collect();
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
    let showing = match &listing.policy {
        Some((project, policy)) => format!(
            "<p id=\"showing\">Showing {} only. <a href=\"/Web/SigningRequests\">All your policies</a></p>",
            esc(&format!("{project}/{policy}"))
        ),
        None => String::new(),
    };
    let head = "<tr><th>Request</th><th>Policy</th><th>Image</th><th>Digest</th><th>Release group</th><th>Status</th><th>Approvals</th><th>Approving covers</th></tr>";
    let body = format!(
        "<p>Signed in as <b id=\"approver\">{who}</b>. <form method=\"post\" action=\"/Web/Logout\" \
         style=\"display:inline\">{hidden}<button type=\"submit\" id=\"logout\">Sign out</button></form></p>\
         <h2>Your policies</h2><table id=\"policies\"><tr><th>Policy</th><th>Waiting</th><th>Decided</th></tr>{policy_rows}</table>{showing}\
         <h2>Waiting for approval</h2>{waiting_pager}<table id=\"pending\">{head}{pending}</table>\
         <h2>Decided</h2>{decided_pager}<table id=\"decided\">{head}{decided}</table>\
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
        .filter(|h| approved_policies(core, approver).contains(&(h.project.clone(), h.policy.clone())))
        .ok_or_else(|| {
            refuse(
                Reason::UnknownSigningRequest,
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
