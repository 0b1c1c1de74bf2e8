//! SignPath's paths are matched case-insensitively and may sit under `/Api`. This layer rewrites a request's path
//! to the one canonical form the router knows (no `/Api` prefix, route words in lower case, no empty segments)
//! before routing, and keeps the path as the client sent it for the audit record.

use axum::http::{Request, Uri};

/// The words of the router's paths. Only these are folded to lower case; the values between them
/// (organization ids, request ids) are passed on as sent.
const ROUTE_WORDS: &[&str] = &[
    "v1",
    "cryptoki",
    "mysigningpolicies",
    "signingrequests",
    "signhash",
    "submitwithartifact",
    "signedartifact",
    "unsignedartifact",
    "status",
    "resubmit",
    "sign",
    "web",
    "login",
    "logout",
    "approve",
    "deny",
];

/// The path as the client sent it, for the audit record.
#[derive(Debug, Clone)]
pub struct OriginalPath(pub String);

/// The layer's function: `/Api/V1/Org/SigningRequests/SignHash` → `/v1/Org/signingrequests/signhash`.
pub fn normalize<B>(mut request: Request<B>) -> Request<B> {
    let original = request.uri().path().to_owned();
    let canonical = canonical_path(&original);
    if canonical != original {
        let path_and_query = match request.uri().query() {
            Some(query) => format!("{canonical}?{query}"),
            None => canonical,
        };
        let mut parts = request.uri().clone().into_parts();
        if let Ok(pq) = path_and_query.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    request.extensions_mut().insert(OriginalPath(original));
    request
}

fn canonical_path(path: &str) -> String {
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.first().is_some_and(|s| s.eq_ignore_ascii_case("api")) {
        segments.remove(0);
    }
    let mut out = String::with_capacity(path.len());
    for segment in segments {
        out.push('/');
        match ROUTE_WORDS.iter().find(|w| w.eq_ignore_ascii_case(segment)) {
            Some(word) => out.push_str(word),
            None => out.push_str(segment),
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_words_fold_and_values_keep_their_case() {
        assert_eq!(
            canonical_path("/Api/V1/Org-ID/SigningRequests/SignHash"),
            "/v1/Org-ID/signingrequests/signhash"
        );
        assert_eq!(
            canonical_path("/v1/o/SIGNINGREQUESTS/AbC-123/Status"),
            "/v1/o/signingrequests/AbC-123/status"
        );
        assert_eq!(canonical_path("//Web//Login/"), "/web/login");
        assert_eq!(canonical_path("/"), "/");
        assert_eq!(canonical_path("/api"), "/");
    }

    #[test]
    fn the_query_survives_and_the_original_path_is_kept() {
        let request = Request::builder()
            .uri("/API/v1/o/Cryptoki/MySigningPolicies?ProjectSlug=Demo")
            .body(())
            .unwrap_or_default();
        let request = normalize(request);
        assert_eq!(
            request.uri().to_string(),
            "/v1/o/cryptoki/mysigningpolicies?ProjectSlug=Demo"
        );
        assert_eq!(
            request.extensions().get::<OriginalPath>().map(|p| p.0.as_str()),
            Some("/API/v1/o/Cryptoki/MySigningPolicies")
        );
    }
}
