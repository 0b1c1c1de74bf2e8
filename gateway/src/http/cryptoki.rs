//! SignPath's `Cryptoki` resource: the signing policies a token may use, as SignPath's PKCS#11 library and our
//! clients read them.

use axum::extract::Path;
use axum::response::Response;

use super::call::Call;
use super::CurrentCore;

/// Handles the `GET /v1/{org}/Cryptoki/MySigningPolicies` route (`?ProjectSlug=&SigningPolicySlug=`, keys in any
/// case).
pub async fn my_signing_policies(
    CurrentCore(core): CurrentCore,
    Path(organization): Path<String>,
    call: Call,
) -> Response {
    call.run(&core, move |core, incoming, record| {
        let token_id = core.authenticate(incoming.header("authorization"), &organization, record)?;
        let mut project = None;
        let mut policy = None;
        for (k, v) in form_urlencoded::parse(incoming.query.as_deref().unwrap_or_default().as_bytes()) {
            match k.to_ascii_lowercase().as_str() {
                "projectslug" => project = Some(v.into_owned()),
                "signingpolicyslug" => policy = Some(v.into_owned()),
                _ => {}
            }
        }
        core.my_signing_policies(&token_id, project.as_deref(), policy.as_deref())
    })
    .await
}
