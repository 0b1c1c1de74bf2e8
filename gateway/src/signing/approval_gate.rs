//! The approval gate every signing request passes, whichever route it came by (a hash, an artifact): a policy
//! without approval lets it through; with approval, an approved request of its release group may cover it,
//! otherwise it is held for the approvers and its client polls.

use super::refusal::{store_failure, Refusal};
use super::state::Policy;
use super::Core;
use crate::store::{GroupUse, NewHeld, Record};

/// What the gate decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    /// Sign now (no approval needed, or the release group's approval covers it).
    Sign,
    /// Held for the approvers.
    Held,
}

/// What a held request shows its approvers and keeps for signing it later.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hold<'a> {
    pub request_json: &'a str,
    pub image: Option<&'a str>,
    pub digest: &'a str,
    /// The signatures the request makes: 1 for a hash, images × signature formats for an artifact. A release
    /// group's limit counts these, so a request that would go past it waits for an approval of its own.
    pub signatures: u32,
}

impl Core {
    /// Applies `policy`'s approval to the request of `record` (its release group from `record.release_group`,
    /// its verified CI identity `binding`).
    pub(super) fn approval_gate(
        &self,
        policy: &Policy,
        token_id: &str,
        binding: Option<&str>,
        hold: Hold<'_>,
        record: &mut Record,
    ) -> Result<Gate, Refusal> {
        if policy.approval.is_none() {
            return Ok(Gate::Sign);
        }
        let Some(approval) = self.approval_in_force(&policy.project, &policy.slug) else {
            return Ok(Gate::Sign);
        };
        let covering = match (&record.release_group, &approval.release_group) {
            (Some(group), Some(_)) => self
                .stores
                .approvals
                .use_group(
                    &GroupUse {
                        project: &policy.project,
                        policy: &policy.slug,
                        group,
                        token_id,
                        binding,
                        request_id: &record.request_id,
                        signatures: hold.signatures,
                    },
                    &approval,
                )
                .map_err(|e| approval_store_failure(&e))?
                .map(|c| (group.clone(), c)),
            _ => None,
        };
        if let Some((group, covering)) = covering {
            record.approval = Some(format!("release group {group}, approved with {covering}"));
            return Ok(Gate::Sign);
        }
        self.stores
            .approvals
            .hold(&NewHeld {
                request_id: &record.request_id,
                token_id,
                project: &policy.project,
                policy: &policy.slug,
                request_json: hold.request_json,
                required: approval.required,
                approvers: &approval.approvers,
                release_group: record.release_group.as_deref(),
                binding,
                image: hold.image,
                digest: hold.digest,
                signatures: hold.signatures,
            })
            .map_err(|e| approval_store_failure(&e))?;
        record.approval = Some(format!(
            "waiting for {} of {}",
            approval.required,
            approval.approvers.join(", ")
        ));
        tracing::info!(request_id = %record.request_id, policy = %format!("{}/{}", policy.project, policy.slug),
            "signing request waits for approval");
        Ok(Gate::Held)
    }
}

/// The approval store failed: logged, and the client told to try again later.
fn approval_store_failure(e: &crate::store::StoreError) -> Refusal {
    tracing::error!(error = %e, "approval database");
    store_failure()
}
