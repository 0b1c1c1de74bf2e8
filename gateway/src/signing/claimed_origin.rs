//! The `Origin.*` parts of a file-based signing request (SignPath's `Origin.RepositoryData.Url`, `.BranchName`,
//! `.CommitId`, ...) are what the submitter says about where the artifact was built. Where the policy verifies
//! origin, the identity token is the evidence, and a part that contradicts it is refused: otherwise the audit
//! record would carry a verified token beside a repository, branch or commit the submitter made up. Parts the
//! token says nothing about (the build URL, the SCM type) are kept as claims.
//!
//! A repository URL must name the token's repository on the issuer's host (`github.com` for GitHub Actions, the
//! GitLab instance for GitLab): `https://evil.example/acme/app` is not `acme/app` of GitHub.

use std::collections::BTreeMap;

use serde_json::Value;

/// Checks the claimed parts against the verified token's claims (GitHub Actions' and GitLab's names: `sha`,
/// `ref`, `repository`, `project_path`) and `repository_host`, the host of the token issuer's repositories.
/// `Err` names the first part that disagrees and what the token says.
pub fn check(
    claimed: &BTreeMap<String, String>,
    verified_claims: &str,
    repository_host: &str,
) -> Result<(), String> {
    let token: BTreeMap<String, Value> = serde_json::from_str(verified_claims).unwrap_or_default();
    let text = |name: &str| token.get(name).and_then(Value::as_str).map(str::to_owned);
    for (part, value) in claimed {
        let value = value.trim();
        let (agrees, evidence) = match part.to_ascii_lowercase().as_str() {
            "repositorydata.commitid" => match text("sha") {
                Some(sha) => (sha.eq_ignore_ascii_case(value), sha),
                None => continue,
            },
            "repositorydata.branchname" => match text("ref") {
                Some(r) => {
                    let branch = r.strip_prefix("refs/heads/").unwrap_or(&r);
                    let claimed = value.strip_prefix("refs/heads/").unwrap_or(value);
                    (branch == claimed, r)
                }
                None => continue,
            },
            "repositorydata.url" => match text("repository").or_else(|| text("project_path")) {
                Some(repository) => (
                    url_names(value, repository_host, &repository),
                    format!("{repository_host}/{repository}"),
                ),
                None => continue,
            },
            _ => continue,
        };
        if !agrees {
            return Err(format!(
                "Origin.{part} is {value:?}, but the verified identity token says {evidence:?}"
            ));
        }
    }
    Ok(())
}

/// Whether `url` (https, ssh or scp-like `git@host:path`, with or without `.git`) is the repository `path`
/// (`owner/name`, or GitLab's `group/subgroup/name`) on `host`: its host (port and user aside) and its whole path,
/// compared without case as the hosts do.
fn url_names(url: &str, host: &str, path: &str) -> bool {
    let url = url.trim().trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    let (authority, url_path) = match url.split_once("://") {
        Some((_, rest)) => rest.split_once('/').unwrap_or((rest, "")),
        // scp-like: `[user@]host:path`, and no `/` before the colon (that would be a local path).
        None => match url.split_once(':') {
            Some((authority, path)) if !authority.contains('/') => (authority, path),
            _ => return false,
        },
    };
    let url_host = authority.rsplit('@').next().unwrap_or_default();
    let url_host = match url_host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => url_host.split(':').next().unwrap_or_default(),
    };
    !url_host.is_empty()
        && url_host.eq_ignore_ascii_case(host.trim())
        && url_path
            .trim_matches('/')
            .eq_ignore_ascii_case(path.trim_matches('/'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const GITHUB: &str = r#"{"repository":"acme/app","ref":"refs/heads/main","sha":"0123abcd"}"#;

    fn url_check(url: &str) -> Result<(), String> {
        check(&parts(&[("RepositoryData.Url", url)]), GITHUB, "github.com")
    }

    #[test]
    fn parts_that_agree_with_the_token_pass_whatever_their_spelling() {
        let claimed = parts(&[
            ("RepositoryData.Url", "https://github.com/Acme/App.git"),
            ("repositoryData.branchName", "main"),
            ("RepositoryData.CommitId", "0123ABCD"),
            ("RepositoryData.SourceControlManagementType", "git"),
            ("BuildData.Url", "https://github.com/acme/app/actions/runs/1"),
        ]);
        assert_eq!(check(&claimed, GITHUB, "github.com"), Ok(()));
        assert_eq!(
            check(
                &parts(&[("RepositoryData.Url", "git@gitlab.example:group/sub/app.git")]),
                r#"{"project_path":"group/sub/app","ref":"main"}"#,
                "gitlab.example"
            ),
            Ok(())
        );
    }

    #[test]
    fn a_repository_url_on_another_host_is_refused_naming_both() {
        for url in [
            "https://evil.example/acme/app",
            "https://evil.example/acme/app.git",
            "git@evil.example:acme/app.git",
            "ssh://git@evil.example/acme/app",
            "https://github.com.evil.example/acme/app",
            "https://github.com@evil.example/acme/app",
            "https://evil.example:443/acme/app",
        ] {
            let error = url_check(url).unwrap_err();
            assert!(
                error.contains(url) && error.contains("github.com/acme/app"),
                "{url}: {error}"
            );
        }
    }

    #[test]
    fn a_repository_url_on_the_issuers_host_passes_in_any_case_with_or_without_git() {
        for url in [
            "https://github.com/acme/app",
            "https://github.com/acme/app.git",
            "https://GitHub.COM/acme/app",
            "https://GITHUB.com/Acme/App.git/",
            "https://github.com:443/acme/app",
            "git@github.com:acme/app.git",
            "git@GitHub.com:acme/app",
            "ssh://git@github.com:22/acme/app.git",
        ] {
            assert_eq!(url_check(url), Ok(()), "{url}");
        }
        // The host the issuer's configuration names, compared without case either way.
        assert_eq!(
            check(
                &parts(&[("RepositoryData.Url", "https://gitlab.example/group/app")]),
                r#"{"project_path":"group/app"}"#,
                "GitLab.Example"
            ),
            Ok(())
        );
    }

    #[test]
    fn a_part_that_contradicts_the_token_is_named() {
        for (part, value, says) in [
            ("RepositoryData.BranchName", "release", "refs/heads/main"),
            ("RepositoryData.CommitId", "ffff", "0123abcd"),
            (
                "RepositoryData.Url",
                "https://github.com/evil/acme/app",
                "acme/app",
            ),
            ("RepositoryData.Url", "https://github.com/other/app", "acme/app"),
            ("RepositoryData.Url", "acme/app", "acme/app"),
            ("RepositoryData.Url", "github.com/acme/app", "acme/app"),
        ] {
            let error = check(&parts(&[(part, value)]), GITHUB, "github.com").unwrap_err();
            assert!(error.contains(part) && error.contains(says), "{error}");
        }
    }

    #[test]
    fn parts_the_token_does_not_speak_of_are_kept_as_claims() {
        let claimed = parts(&[
            ("RepositoryData.BranchName", "main"),
            ("RepositoryData.CommitId", "x"),
        ]);
        assert_eq!(check(&claimed, r#"{"sub":"someone"}"#, "github.com"), Ok(()));
    }
}
