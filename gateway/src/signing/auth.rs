//! Who is asking: an API token (SignPath's `Authorization: Bearer`), or an approver's token on the web page, each
//! found by its SHA-256 in constant time. The organization in the route must be the gateway's.

use subtle::ConstantTimeEq;

use super::refusal::{refuse, Reason, Refusal};
use super::revoked::approver_revocation;
use super::Core;
use crate::store::Record;

impl Core {
    /// The id of the API token in `authorization`, recorded in `record`; then the organization in the route is
    /// checked against the gateway's.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        organization: &str,
        record: &mut Record,
    ) -> Result<String, Refusal> {
        let unauthenticated = |detail: &str| {
            refuse(
                Reason::Unauthenticated,
                format!("{detail}; send Authorization: Bearer <API token> (SIGNPATH_API_TOKEN)"),
            )
        };
        let value = authorization.ok_or_else(|| unauthenticated("no API token"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| unauthenticated("the Authorization header is not a Bearer token"))?
            .trim();
        // SignPath's trusted-build-system form `token:tbsToken`: the API token is the part before the colon.
        let token = token.split(':').next().unwrap_or_default();
        let token_id = self
            .state
            .token_id(token)
            .filter(|id| !self.revoked.contains(id))
            .ok_or_else(|| unauthenticated("the API token is not valid"))?;
        record.token_id = Some(token_id.clone());
        if organization != self.state.organization_id {
            return Err(refuse(
                Reason::ForeignOrganization,
                format!("this token does not belong to organization {organization}; check OrganizationId (SIGNPATH_ORGANIZATION_ID)"),
            ));
        }
        Ok(token_id)
    }

    /// The approver whose token this is, if any (and not removed through another replica).
    pub fn approver(&self, token: &str) -> Option<String> {
        self.state
            .approver(token)
            .filter(|name| self.is_approver_in_force(name))
    }

    /// Whether `name` is an approver now: named in the configuration in force and not removed through another
    /// replica. Every vote and every page of a signed-in approver asks again, so a removal ends their sessions.
    pub fn is_approver_in_force(&self, name: &str) -> bool {
        self.state
            .approver_token_sha256(name)
            .is_some_and(|hash| !self.revoked.contains(&approver_revocation(&hex::encode(hash))))
    }

    /// Whether a session begun with an approver token of SHA-256 `token_sha256` still belongs to approver `name`:
    /// the approver is in force with that same token (a token replaced since ends the session too).
    pub fn approver_session_stands(&self, name: &str, token_sha256: &[u8; 32]) -> bool {
        self.is_approver_in_force(name)
            && self
                .state
                .approver_token_sha256(name)
                .is_some_and(|hash| bool::from(hash.ct_eq(token_sha256)))
    }
}
