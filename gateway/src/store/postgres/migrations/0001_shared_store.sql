-- The shared store of replicas: the audit log, idempotency records, held signing requests, votes, release-group
-- uses and revoked tokens. Times are Unix seconds (BIGINT), as in the embedded SQLite store.
CREATE TABLE audit (
    seq BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    received TEXT NOT NULL,
    completed TEXT NOT NULL,
    organization TEXT NOT NULL,
    project TEXT,
    policy TEXT,
    token_id TEXT,
    client_address TEXT NOT NULL,
    user_agent TEXT,
    method TEXT NOT NULL,
    route TEXT NOT NULL,
    algorithm TEXT,
    hash_algorithm TEXT,
    digest TEXT,
    signature_sha256 TEXT,
    certificate_sha256 TEXT,
    metadata TEXT,
    idempotency_key TEXT,
    outcome TEXT NOT NULL,
    status INTEGER NOT NULL,
    error_type TEXT,
    error_detail TEXT,
    origin TEXT,
    release_group TEXT,
    approval TEXT
);

CREATE TABLE idempotency (
    token_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_id TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    response TEXT NOT NULL,
    created BIGINT NOT NULL,
    PRIMARY KEY (token_id, key)
);
CREATE INDEX idempotency_request ON idempotency (request_id);

CREATE TABLE held (
    seq BIGSERIAL UNIQUE,
    request_id TEXT PRIMARY KEY,
    token_id TEXT NOT NULL,
    project TEXT NOT NULL,
    policy TEXT NOT NULL,
    request_json TEXT NOT NULL,
    status TEXT NOT NULL,
    required INTEGER NOT NULL,
    approvers TEXT NOT NULL,
    denied_by TEXT,
    reason TEXT,
    release_group TEXT,
    binding TEXT,
    image TEXT,
    digest TEXT NOT NULL,
    created BIGINT NOT NULL,
    decided BIGINT,
    -- When a replica took the request for signing: a claim older than the lease is a dead replica's.
    claimed BIGINT,
    response TEXT
);
CREATE INDEX held_status ON held (status);
CREATE INDEX held_group ON held (project, policy, release_group);

CREATE TABLE votes (
    request_id TEXT NOT NULL,
    approver TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT,
    at BIGINT NOT NULL,
    PRIMARY KEY (request_id, approver)
);

CREATE TABLE group_uses (
    covering TEXT NOT NULL,
    request_id TEXT PRIMARY KEY,
    at BIGINT NOT NULL
);
CREATE INDEX group_uses_covering ON group_uses (covering);

CREATE TABLE revoked_tokens (
    token_id TEXT PRIMARY KEY,
    revoked BIGINT NOT NULL
);
