-- A release group's limit counts signatures (images × signature formats), not requests: the signatures each held
-- request makes and each use of a group counted. Requests held before were hashes: one signature each.
ALTER TABLE held ADD COLUMN signatures BIGINT NOT NULL DEFAULT 1;
ALTER TABLE group_uses ADD COLUMN signatures BIGINT NOT NULL DEFAULT 1;
CREATE INDEX held_policy ON held (project, policy, created);
