//! `signpath-gateway pending` as a table: request id (whole: it is what `approve` takes), policy, approvals so far,
//! release group and image, fitted to the terminal; `--wide` adds the approvers and the hash. Client data (image,
//! group) is escaped (`terminal`).

use super::terminal;
use crate::store::Held;

/// The lines `pending` prints for `held`, `width` columns at most unless `wide`.
pub fn table(held: &[Held], width: usize, wide: bool) -> Vec<String> {
    const ID: usize = 36;
    const POLICY: usize = 16;
    const VOTES: usize = 9;
    const GROUP: usize = 12;
    let image_width = if wide {
        usize::MAX
    } else {
        width.saturating_sub(ID + POLICY + VOTES + GROUP + 4).max(20)
    };
    let row = |id: &str, policy: &str, votes: &str, group: &str, image: &str| {
        let (policy, group) = if wide {
            (policy.to_owned(), group.to_owned())
        } else {
            (terminal::fit(policy, POLICY), terminal::fit(group, GROUP))
        };
        format!(
            "{} {} {} {} {}",
            terminal::pad(id, ID),
            terminal::pad(&policy, POLICY),
            terminal::pad(votes, VOTES),
            terminal::pad(&group, GROUP),
            image
        )
        .trim_end()
        .to_owned()
    };
    let mut lines = vec![row("REQUEST", "POLICY", "APPROVALS", "GROUP", "IMAGE")];
    for h in held {
        let policy = terminal::escape(&format!("{}/{}", h.project, h.policy)).into_owned();
        let votes = format!("{}/{}", h.approved_by.len(), h.required);
        let group = h
            .release_group
            .as_deref()
            .map_or_else(|| "-".to_owned(), |g| terminal::escape(g).into_owned());
        let image = match h.image.as_deref() {
            Some(image) if wide => terminal::escape(image).into_owned(),
            Some(image) => shorten_image(&terminal::escape(image), image_width),
            None => "-".to_owned(),
        };
        let mut line = row(&terminal::escape(&h.request_id), &policy, &votes, &group, &image);
        if wide {
            line.push_str(&format!(
                "  approvers {}  hash {}",
                terminal::escape(&h.approvers.join(",")),
                terminal::escape(&h.digest)
            ));
        }
        lines.push(line);
    }
    lines
}

/// `registry/repository:tag@sha256:<64 hex>` with the digest cut to 12 hex digits, then cut from the start.
fn shorten_image(image: &str, max: usize) -> String {
    let short = match image.rsplit_once('@') {
        Some((name, digest)) => format!("{name}@{}", terminal::short_digest(digest)),
        None => image.to_owned(),
    };
    terminal::fit_end(&short, max)
}
