//! Who may do what, on the command line: `token add` and `token revoke`, `approver add` and `approver remove`, and
//! the owners of tokens and approvers. Each command rewrites gateway.toml atomically; a running `serve` picks the
//! change up by itself. They read the file with `GatewayConfig::read` (its types, not the rules between values),
//! so an operator can build it up in steps and can always revoke a token; `serve` refuses what breaks a rule.

use std::path::Path;

use sha2::Digest as _;

use super::CliResult;
use crate::config::{ApproverConfig, GatewayConfig, TokenConfig, TokenSha256};
use crate::fsutil::random_token;
use crate::signing::revoked::approver_revocation;
use crate::store::postgres::is_postgres;
use crate::store::Stores;

pub type AccessError = crate::error::BoxError;

/// A new token: its value (256 random bits, printed once) and its configuration, with an id of 128 random bits
/// (`tok_` + 32 hex digits), so ids never collide by chance.
pub fn new_token_config(name: &str) -> (TokenConfig, String) {
    let token = random_token();
    let mut id_bits = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id_bits);
    let id = format!("tok_{}", hex::encode(id_bits));
    let config = TokenConfig {
        id,
        name: name.to_owned(),
        sha256: TokenSha256(sha2::Sha256::digest(token.as_bytes()).into()),
        owner: None,
    };
    (config, token)
}

/// `signpath-gateway token add`: a new token with submitter permission on the given `project/policy` list,
/// belonging to `owner` (an approver with the same owner cannot approve its requests). Returns the token's value.
pub fn add_token(
    config_path: &Path,
    name: &str,
    policies: &[String],
    owner: Option<&str>,
) -> Result<String, AccessError> {
    let (mut config, _) = GatewayConfig::read(config_path)?;
    if config.tokens.iter().any(|t| t.name == name) {
        return Err(format!(
            "there is already a token named {name:?}; choose another name (or revoke the old token first)"
        )
        .into());
    }
    let (mut token_config, token) = new_token_config(name);
    if config.tokens.iter().any(|t| t.id == token_config.id) {
        return Err(format!(
            "token id {} is already in use; run the command again",
            token_config.id
        )
        .into());
    }
    for wanted in policies {
        let (project, policy) = wanted
            .split_once('/')
            .ok_or_else(|| format!("{wanted:?} is not Project/Policy"))?;
        let found = config
            .projects
            .iter_mut()
            .filter(|p| p.slug == project)
            .flat_map(|p| p.policies.iter_mut())
            .find(|p| p.slug == policy)
            .ok_or_else(|| format!("there is no signing policy {wanted}"))?;
        found.submitters.push(token_config.id.clone());
    }
    token_config.owner = owner.map(str::to_owned);
    config.tokens.push(token_config);
    config.save(config_path)?;
    Ok(token)
}

/// `signpath-gateway approver add`: an approver with a new token (printed once, stored as its SHA-256), behind whom
/// is `owner` (they cannot approve requests of tokens with the same owner). Returns the token's value.
pub fn add_approver(config_path: &Path, name: &str, owner: Option<&str>) -> Result<String, AccessError> {
    let (mut config, _) = GatewayConfig::read(config_path)?;
    if config.approvers.iter().any(|a| a.name == name) {
        return Err(format!("there is already an approver {name:?}").into());
    }
    let (token_config, token) = new_token_config(name);
    config.approvers.push(ApproverConfig {
        name: name.to_owned(),
        sha256: token_config.sha256,
        owner: owner.map(str::to_owned),
    });
    config.save(config_path)?;
    Ok(token)
}

/// Revokes a token by name or id: it is removed from the tokens and from every policy's submitters. With a shared
/// (PostgreSQL) store the revocation is written there first, for the replicas whose gateway.toml still names it.
pub fn revoke_token(config_path: &Path, name_or_id: &str) -> CliResult {
    let (mut config, base) = GatewayConfig::read(config_path)?;
    let id = config
        .tokens
        .iter()
        .find(|t| t.name == name_or_id || t.id == name_or_id)
        .map(|t| t.id.clone())
        .ok_or_else(|| format!("there is no token named {name_or_id:?} (name or id)"))?;
    if config.audit_db.to_str().is_some_and(is_postgres) {
        if let Some(shared) = Stores::open(&base, &config.audit_db)?.revocations {
            shared.revoke(&id)?;
        }
    }
    config.tokens.retain(|t| t.id != id);
    for policy in config.projects.iter_mut().flat_map(|p| p.policies.iter_mut()) {
        policy.submitters.retain(|s| *s != id);
    }
    config.save(config_path)?;
    println!("token {id} revoked; a running gateway refuses it within 2 seconds");
    Ok(())
}

/// Removes an approver; policies (and `[keyless]` rules, named `keyless/<issuer>`) that still name them must be
/// changed first. A running gateway ends their web sessions and stops counting their votes as soon as it reads the
/// change (and as soon as they are out of a policy, for that policy). With a shared (PostgreSQL) store the removal
/// is written there first, by their token's SHA-256, for the replicas whose gateway.toml still names them.
pub fn remove_approver(config_path: &Path, name: &str) -> CliResult {
    let (mut config, base) = GatewayConfig::read(config_path)?;
    let Some(sha256) = config
        .approvers
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.sha256.to_string())
    else {
        return Err(format!("there is no approver {name:?}").into());
    };
    let mut policies: Vec<String> = config
        .approvals()
        .into_iter()
        .filter(|(_, _, a)| a.approvers.iter().any(|n| n == name))
        .map(|(project, policy, _)| format!("{project}/{policy}"))
        .collect();
    policies.sort();
    policies.dedup();
    if !policies.is_empty() {
        return Err(format!(
            "{name} approves {}; take them out of those policies' approvers first",
            policies.join(", ")
        )
        .into());
    }
    if config.audit_db.to_str().is_some_and(is_postgres) {
        if let Some(shared) = Stores::open(&base, &config.audit_db)?.revocations {
            shared.revoke(&approver_revocation(&sha256))?;
        }
    }
    config.approvers.retain(|a| a.name != name);
    config.save(config_path)?;
    println!(
        "approver {name} removed; within 2 seconds a running gateway refuses their token, ends their sessions and \
         no longer counts their votes"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HsmConfig, TlsConfig};

    fn config_with(tokens: Vec<TokenConfig>) -> GatewayConfig {
        GatewayConfig {
            listen: "127.0.0.1:0".into(),
            public_url: "https://127.0.0.1:0".into(),
            organization_id: "org".into(),
            audit_db: "audit.db".into(),
            tls: TlsConfig {
                certificate: "tls/server.pem".into(),
                key: "tls/server.key".into(),
            },
            hsm: HsmConfig {
                module: "module.so".into(),
                softhsm2_conf: None,
                token_label: "t".into(),
                pin_file: "hsm-pin".into(),
            },
            tokens,
            projects: Vec::new(),
            approvers: Vec::new(),
            trusted_issuers: Vec::new(),
            server: Default::default(),
            pki: None,
            timestamping: None,
            artifacts: Default::default(),
            github: None,
            keyless: None,
        }
    }

    #[test]
    fn token_ids_carry_128_random_bits() {
        let (a, _) = new_token_config("a");
        let (b, _) = new_token_config("b");
        let hex_part = a.id.strip_prefix("tok_").expect("tok_ prefix");
        assert_eq!(hex_part.len(), 32);
        assert!(hex_part.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn token_add_refuses_a_duplicate_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gateway.toml");
        let (existing, _) = new_token_config("ci");
        config_with(vec![existing]).save(&path).expect("save");
        let error = add_token(&path, "ci", &[], None).expect_err("a second token named ci");
        assert!(
            error.to_string().contains("already a token named \"ci\""),
            "{error}"
        );
        let (config, _) = GatewayConfig::load(&path).expect("load");
        assert_eq!(config.tokens.len(), 1);
        add_token(&path, "other", &[], Some("team@example.com")).expect("another name is fine");
        let (config, _) = GatewayConfig::load(&path).expect("load");
        assert_eq!(config.tokens[1].owner.as_deref(), Some("team@example.com"));
    }

    /// An approver a policy names before they exist can be added: the commands that edit gateway.toml do not
    /// refuse the half-built file `serve` refuses, and the file is whole again after the command.
    #[test]
    fn an_approver_a_policy_already_names_can_be_added() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gateway.toml");
        let mut config = config_with(Vec::new());
        config.projects.push(crate::config::ProjectConfig {
            slug: "demo".into(),
            policies: vec![crate::config::PolicyConfig {
                slug: "release".into(),
                id: "p1".into(),
                key_label: "k".into(),
                certificate_chain: vec!["c.pem".into()],
                submitters: Vec::new(),
                hash_algorithms: crate::config::default_hash_algorithms(),
                approval: Some(crate::config::ApprovalConfig {
                    approvers: vec!["alice".into()],
                    required: 1,
                    release_group: None,
                }),
                origin: None,
            }],
            artifact_configurations: Vec::new(),
        });
        config.save(&path).expect("save");
        let refused = GatewayConfig::load(&path).expect_err("alice is not an approver yet");
        assert!(
            refused.to_string().contains("there is no approver \"alice\""),
            "{refused}"
        );
        let token = add_approver(&path, "alice", Some("alice@example.com")).expect("approver add");
        let (config, _) = GatewayConfig::load(&path).expect("whole again");
        assert_eq!(
            config.approvers[0].sha256.0,
            crate::signing::state::token_sha256(&token)
        );
        assert_eq!(config.approvers[0].owner.as_deref(), Some("alice@example.com"));
    }
}
