-- Request revocations (`signpath-gateway revoke --request | --release-group | --policy --signed-after`): what one
-- signing request, one release group, or a policy after a moment signed, withdrawn without revoking the key. One
-- row per revoked scope (`scope` is its key), so revoking the same thing again keeps the first; `entry` is the
-- revocation as the revocation list publishes it (JSON).
CREATE TABLE request_revocations (
    seq BIGSERIAL PRIMARY KEY,
    scope TEXT NOT NULL UNIQUE,
    entry TEXT NOT NULL
);
CREATE INDEX audit_idempotency_key ON audit (idempotency_key);
CREATE INDEX audit_release_group ON audit (release_group);
