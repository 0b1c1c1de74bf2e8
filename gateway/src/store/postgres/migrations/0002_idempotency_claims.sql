-- Claims on idempotency keys, shared by every replica: a request takes its (token, key) pair here before it signs
-- and gives it back once its answer is in `idempotency` (or it was refused), so a second request with the key, on
-- any replica, waits for that answer instead of signing again. `expires` is the end of the claim's lease in
-- milliseconds since the epoch by the database's clock (not a replica's): a claim past it is a dead replica's,
-- and the next request with the key takes it over.
CREATE TABLE idempotency_claims (
    token_id TEXT NOT NULL,
    key TEXT NOT NULL,
    holder TEXT NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (token_id, key)
);
